package eventlog

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Event types of the TCG PC Client Platform Firmware Profile, section 10.4.1, used here.
const (
	evNoAction                   uint32 = 0x00000003
	evSeparator                  uint32 = 0x00000004
	evEventTag                   uint32 = 0x00000006
	evIPL                        uint32 = 0x0000000D
	evEFIVariableDriverConfig    uint32 = 0x80000001
	evEFIBootServicesApplication uint32 = 0x80000003
	evEFIAction                  uint32 = 0x80000007
	sha1EventHeaderSize                 = 4 + 4 + 20 + 4 // TCG_PCR_EVENT without the event data
	startupLocalityEventSize            = 17
)

var (
	// specIDSignature03 opens TCG_EfiSpecIDEvent in a crypto-agile log (PFP 10.4.5.1).
	specIDSignature03 = []byte("Spec ID Event03\x00")
	// startupLocalitySignature opens TCG_EfiStartupLocalityEvent (PFP 10.4.5.3).
	startupLocalitySignature = []byte("StartupLocality\x00")
)

// algSize is one TCG_EfiSpecIdEventAlgorithmSize entry of the Spec ID event.
type algSize struct {
	id   uint16
	size int
}

// event is one parsed measurement. data aliases the input log; digests of event i are
// parsedLog.digests[i*len(algs) : (i+1)*len(algs)], nil where the event has no digest for
// that bank.
type event struct {
	pcr  uint32
	typ  uint32
	data []byte
}

// parsedLog is a parsed measured-boot log. It aliases the input and never leaves the package.
type parsedLog struct {
	algs    []algSize
	agile   bool
	events  []event
	digests [][]byte
	// locality is the startup locality from the StartupLocality event (PFP 10.4.5.3), 0 when
	// the log has none.
	locality byte
	// hasLocality is true when the log has a StartupLocality event.
	hasLocality bool
}

func (l *parsedLog) digest(i, bank int) []byte { return l.digests[i*len(l.algs)+bank] }

// bankIndex returns the index of alg in l.algs, or -1.
func (l *parsedLog) bankIndex(alg uint16) int {
	for i, a := range l.algs {
		if a.id == alg {
			return i
		}
	}
	return -1
}

// reader is a bounds-checked little-endian cursor over the log. Every read checks the
// remaining length first; the first failure sticks.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: offset %d: %s", ErrMalformed, r.off, fmt.Sprintf(format, args...))
	}
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.off {
		r.fail("need %d bytes, %d left", n, len(r.b)-r.off)
		return nil
	}
	s := r.b[r.off : r.off+n : r.off+n]
	r.off += n
	return s
}

func (r *reader) u32() uint32 {
	s := r.take(4)
	if s == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(s)
}

func (r *reader) u16() uint16 {
	s := r.take(2)
	if s == nil {
		return 0
	}
	return binary.LittleEndian.Uint16(s)
}

func (r *reader) u8() byte {
	s := r.take(1)
	if s == nil {
		return 0
	}
	return s[0]
}

func (r *reader) left() int { return len(r.b) - r.off }

// eventData reads a UINT32 EventSize and the event data it announces.
func (r *reader) eventData() []byte {
	n := r.u32()
	if r.err != nil {
		return nil
	}
	if n > MaxEventSize {
		r.err = fmt.Errorf("%w: offset %d: event data of %d bytes exceeds %d", ErrTooLarge, r.off, n, MaxEventSize)
		return nil
	}
	return r.take(int(n))
}

// parse parses a TCG PC Client measured-boot log. The first event is always in the SHA-1
// format (TCG_PCR_EVENT, PFP 10.2.1); when it is the Spec ID Event03 (PFP 10.4.5.1) the rest
// of the log is crypto-agile (TCG_PCR_EVENT2, PFP 10.2.2), otherwise the whole log is in the
// SHA-1 format.
func parse(log []byte) (*parsedLog, error) {
	if len(log) > MaxLogSize {
		return nil, fmt.Errorf("%w: %d bytes exceeds %d", ErrTooLarge, len(log), MaxLogSize)
	}
	if len(log) == 0 {
		return nil, fmt.Errorf("%w: empty log", ErrMalformed)
	}
	r := &reader{b: log}
	l := &parsedLog{}

	// First event, TCG_PCR_EVENT.
	pcr := r.u32()
	typ := r.u32()
	d := r.take(20)
	data := r.eventData()
	if r.err != nil {
		return nil, r.err
	}
	if typ == evNoAction && pcr == 0 && bytes.HasPrefix(data, specIDSignature03) {
		algs, err := parseSpecID(data)
		if err != nil {
			return nil, err
		}
		l.algs = algs
		l.agile = true
	} else {
		l.algs = []algSize{{AlgSHA1, 20}}
		if err := l.add(pcr, typ, data, [][]byte{d}); err != nil {
			return nil, err
		}
	}

	// Size the event slices by a lower bound on the event size so that a lying log cannot
	// make us allocate more than it could hold.
	minEvent := sha1EventHeaderSize
	if l.agile {
		minEvent = 4 + 4 + 4 + 4 // PCRIndex, EventType, TPML_DIGEST_VALUES.count, EventSize
	}
	if guess := r.left()/minEvent + len(l.events); guess < MaxEvents {
		l.events = append(make([]event, 0, guess), l.events...)
	}

	digs := make([][]byte, len(l.algs))
	for r.left() > 0 {
		if len(l.events) >= MaxEvents {
			return nil, fmt.Errorf("%w: more than %d events", ErrTooLarge, MaxEvents)
		}
		clear(digs)
		if l.agile {
			pcr = r.u32()
			typ = r.u32()
			count := r.u32()
			if r.err == nil && count > uint32(len(l.algs)) {
				if count > MaxAlgorithms {
					return nil, fmt.Errorf("%w: offset %d: %d digests in one event", ErrTooLarge, r.off, count)
				}
				r.fail("%d digests but the Spec ID event declares %d algorithms", count, len(l.algs))
			}
			for k := uint32(0); k < count && r.err == nil; k++ {
				alg := r.u16()
				bi := l.bankIndex(alg)
				if r.err != nil {
					break
				}
				if bi < 0 {
					r.fail("digest of algorithm 0x%04x not declared in the Spec ID event", alg)
					break
				}
				if digs[bi] != nil {
					r.fail("two digests of algorithm 0x%04x in one event", alg)
					break
				}
				digs[bi] = r.take(l.algs[bi].size)
			}
			data = r.eventData()
		} else {
			pcr = r.u32()
			typ = r.u32()
			digs[0] = r.take(20)
			data = r.eventData()
		}
		if r.err != nil {
			return nil, fmt.Errorf("event %d: %w", len(l.events), r.err)
		}
		if err := l.add(pcr, typ, data, digs); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// add appends one event after checking its PCR index and, for EV_NO_ACTION, the
// StartupLocality event.
func (l *parsedLog) add(pcr, typ uint32, data []byte, digs [][]byte) error {
	n := len(l.events)
	if typ == evNoAction {
		// EV_NO_ACTION events are not extended (PFP 10.4.5); only StartupLocality matters.
		if pcr == 0 && len(data) == startupLocalityEventSize && bytes.HasPrefix(data, startupLocalitySignature) {
			loc := data[16]
			if loc != 0 && loc != 3 && loc != 4 {
				return fmt.Errorf("%w: event %d: startup locality %d", ErrMalformed, n, loc)
			}
			if l.hasLocality {
				return fmt.Errorf("%w: event %d: second StartupLocality event", ErrMalformed, n)
			}
			for _, e := range l.events {
				if e.pcr == 0 && e.typ != evNoAction {
					return fmt.Errorf("%w: event %d: StartupLocality event after PCR 0 was extended", ErrMalformed, n)
				}
			}
			l.locality = loc
			l.hasLocality = true
		}
	} else if pcr >= NumPCRs {
		return fmt.Errorf("%w: event %d: PCR index %d", ErrMalformed, n, pcr)
	}
	l.events = append(l.events, event{pcr: pcr, typ: typ, data: data})
	l.digests = append(l.digests, digs...)
	return nil
}

// parseSpecID parses TCG_EfiSpecIDEvent (PFP 10.4.5.1) and returns its algorithm list.
func parseSpecID(b []byte) ([]algSize, error) {
	r := &reader{b: b}
	r.take(16) // signature, checked by the caller
	r.u32()    // platformClass
	r.u8()     // specVersionMinor
	major := r.u8()
	r.u8() // specErrata
	uintn := r.u8()
	n := r.u32()
	if r.err != nil {
		return nil, fmt.Errorf("spec ID event: %w", r.err)
	}
	if major != 2 {
		return nil, fmt.Errorf("%w: spec ID event: specVersionMajor %d, want 2", ErrMalformed, major)
	}
	if uintn != 1 && uintn != 2 {
		return nil, fmt.Errorf("%w: spec ID event: uintnSize %d", ErrMalformed, uintn)
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: spec ID event: no algorithms", ErrMalformed)
	}
	if n > MaxAlgorithms {
		return nil, fmt.Errorf("%w: spec ID event: %d algorithms", ErrTooLarge, n)
	}
	if uint64(n)*4 > uint64(r.left()) {
		return nil, fmt.Errorf("%w: spec ID event: %d algorithms in %d bytes", ErrMalformed, n, r.left())
	}
	algs := make([]algSize, 0, n)
	for i := uint32(0); i < n; i++ {
		id := r.u16()
		size := int(r.u16())
		if size == 0 || size > MaxDigestSize {
			return nil, fmt.Errorf("%w: spec ID event: algorithm 0x%04x digest size %d", ErrMalformed, id, size)
		}
		if want := digestSize(id); want != 0 && want != size {
			return nil, fmt.Errorf("%w: spec ID event: algorithm 0x%04x digest size %d, want %d", ErrMalformed, id, size, want)
		}
		for _, a := range algs {
			if a.id == id {
				return nil, fmt.Errorf("%w: spec ID event: algorithm 0x%04x twice", ErrMalformed, id)
			}
		}
		algs = append(algs, algSize{id, size})
	}
	vendor := int(r.u8())
	if r.err != nil {
		return nil, fmt.Errorf("spec ID event: %w", r.err)
	}
	if r.left() != vendor {
		return nil, fmt.Errorf("%w: spec ID event: vendorInfoSize %d but %d bytes left", ErrMalformed, vendor, r.left())
	}
	return algs, nil
}
