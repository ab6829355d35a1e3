package eventlog

// bankReplay is the replay of one bank.
type bankReplay struct {
	alg  uint16
	size int
	// pcr holds the replayed values; nil for a PCR the log never extends.
	pcr [NumPCRs][]byte
	// broken marks PCRs extended by an event that lacks a digest of this bank.
	broken [NumPCRs]bool
}

// replayed is the replay of every bank of a log this package can hash.
type replayed struct {
	banks       []*bankReplay
	locality    byte
	hasLocality bool
}

func (rp *replayed) bank(alg uint16) *bankReplay {
	for _, b := range rp.banks {
		if b.alg == alg {
			return b
		}
	}
	return nil
}

// resetValue is the value of PCR index after TPM2_Startup: all zeros, except PCR 0 whose
// last byte is the startup locality (PFP 10.4.5.3).
func (rp *replayed) resetValue(index, size int) []byte {
	v := make([]byte, size)
	if index == 0 {
		v[size-1] = rp.locality
	}
	return v
}

// replay extends every bank: PCR_new = H(PCR_old || digest) for every event but EV_NO_ACTION
// (TPM 2.0 Part 1, 17.2; PFP 10.4.5). PCR 0 starts from the startup locality.
func (l *parsedLog) replay() *replayed {
	rp := &replayed{locality: l.locality, hasLocality: l.hasLocality}
	for bi, a := range l.algs {
		newHash := hashFor(a.id)
		if newHash == nil {
			continue
		}
		br := &bankReplay{alg: a.id, size: a.size}
		h := newHash()
		for i, e := range l.events {
			if e.typ == evNoAction {
				continue
			}
			d := l.digest(i, bi)
			if d == nil {
				br.broken[e.pcr] = true
				continue
			}
			cur := br.pcr[e.pcr]
			if cur == nil {
				cur = rp.resetValue(int(e.pcr), a.size)
			}
			h.Reset()
			h.Write(cur)
			h.Write(d)
			br.pcr[e.pcr] = h.Sum(cur[:0])
		}
		if l.hasLocality && br.pcr[0] == nil {
			br.pcr[0] = rp.resetValue(0, a.size)
		}
		rp.banks = append(rp.banks, br)
	}
	return rp
}

// values returns fresh maps of the replayed values, without broken PCRs.
func (rp *replayed) values() map[uint16]map[int][]byte {
	out := make(map[uint16]map[int][]byte, len(rp.banks))
	for _, b := range rp.banks {
		m := make(map[int][]byte)
		for i, v := range b.pcr {
			if v != nil && !b.broken[i] {
				m[i] = append([]byte(nil), v...)
			}
		}
		out[b.alg] = m
	}
	return out
}
