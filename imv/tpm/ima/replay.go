package ima

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"fmt"
	"hash"

	"github.com/emmansun/gmsm/sm3"
)

// TPM_ALG_ID values of the banks Replay supports (TCG Algorithm Registry, section 6).
const (
	AlgSHA1   uint16 = 0x0004
	AlgSHA256 uint16 = 0x000B
	AlgSHA384 uint16 = 0x000C
	AlgSHA512 uint16 = 0x000D
	AlgSM3256 uint16 = 0x0012
)

func newHash(alg uint16) (hash.Hash, error) {
	switch alg {
	case AlgSHA1:
		return sha1.New(), nil
	case AlgSHA256:
		return sha256.New(), nil
	case AlgSHA384:
		return sha512.New384(), nil
	case AlgSHA512:
		return sha512.New(), nil
	case AlgSM3256:
		return sm3.New(), nil
	}
	return nil, fmt.Errorf("ima: unsupported PCR bank 0x%04x", alg)
}

// Replay computes the value of PCR 10 in bank hash (a TPM_ALG_ID: 0x0004 sha1, 0x000B sha256,
// 0x000C sha384, 0x000D sha512, 0x0012 sm3_256) from entries, starting from zeros and
// extending, for each entry of PCR 10 in order, PCR = H(PCR || template digest).
//
// The template digest of a bank is H over the template fields, each preceded by its 32-bit
// length, exactly as logged (ima_calc_field_array_hash); for the "ima" template, H over the
// 20-byte digest and the file name zero-padded to 256 bytes, without lengths. A measurement
// violation (all-zero logged template hash) extends all 0xFF of the bank's size instead. When
// an entry's logged TemplateHash has the bank's size (the SHA-1 hash of
// binary_runtime_measurements in the sha1 bank) it must equal the computed digest, so the
// file digest and path the allowlist checks are bound to the PCR: an error says which entry
// lies. This is the behaviour of Linux 5.11 and later; see ReplayPaddedSHA1 for older kernels.
func Replay(entries []Entry, hash uint16) ([]byte, error) {
	return replay(entries, hash, PCR, false)
}

// ReplayPCR is Replay for entries of another PCR (an IMA policy rule with pcr=).
func ReplayPCR(entries []Entry, hash uint16, pcr int) ([]byte, error) {
	return replay(entries, hash, pcr, false)
}

// ReplayPaddedSHA1 computes PCR 10 as kernels before 5.11 extended non-SHA-1 banks: with the
// SHA-1 template digest zero-padded to the bank size (all 0xFF for a violation).
func ReplayPaddedSHA1(entries []Entry, hash uint16) ([]byte, error) {
	return replay(entries, hash, PCR, true)
}

// ReplayPrefixes is Replay for every prefix at once: element i is the PCR 10 value after
// entries[:from+i], for from <= n <= len(entries). A verifier that reads the list after the
// quote finds the prefix the quote covers in one pass instead of one Replay per candidate.
func ReplayPrefixes(entries []Entry, hash uint16, from int) ([][]byte, error) {
	if from < 0 || from > len(entries) {
		return nil, fmt.Errorf("ima: prefix %d of %d entries", from, len(entries))
	}
	out := make([][]byte, 0, len(entries)-from+1)
	_, err := replayEach(entries, hash, PCR, false, func(n int, v []byte) {
		if n >= from {
			out = append(out, bytes.Clone(v))
		}
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func replay(entries []Entry, alg uint16, pcr int, padded bool) ([]byte, error) {
	return replayEach(entries, alg, pcr, padded, nil)
}

// replayEach replays entries and, when each is set, calls it with the value after every prefix
// entries[:n], n from 0 to len(entries).
func replayEach(entries []Entry, alg uint16, pcr int, padded bool, each func(n int, v []byte)) ([]byte, error) {
	h, err := newHash(alg)
	if err != nil {
		return nil, err
	}
	size := h.Size()
	var sha1h hash.Hash
	if padded {
		sha1h = sha1.New()
	}
	value := make([]byte, size)
	digest := make([]byte, 0, size)
	ff := bytes.Repeat([]byte{0xff}, size)
	if each != nil {
		each(0, value)
	}
	for i := range entries {
		e := &entries[i]
		if e.PCR != pcr {
			if each != nil {
				each(i+1, value)
			}
			continue
		}
		var d []byte
		switch {
		case e.IsViolation():
			d = ff
		case padded:
			td, err := templateDigest(sha1h, e, digest[:0])
			if err != nil {
				return nil, fmt.Errorf("ima: entry %d: %w", i, err)
			}
			if !bytes.Equal(td, e.TemplateHash) {
				return nil, fmt.Errorf("ima: entry %d (%s): logged template hash does not match the template data", i, e.Path)
			}
			d = append(td, make([]byte, size-len(td))...)
			if len(d) > size {
				d = d[:size]
			}
		default:
			td, err := templateDigest(h, e, digest[:0])
			if err != nil {
				return nil, fmt.Errorf("ima: entry %d: %w", i, err)
			}
			if len(e.TemplateHash) == size && !bytes.Equal(td, e.TemplateHash) {
				return nil, fmt.Errorf("ima: entry %d (%s): logged template hash does not match the template data", i, e.Path)
			}
			d = td
		}
		h.Reset()
		h.Write(value)
		h.Write(d)
		value = h.Sum(value[:0])
		if each != nil {
			each(i+1, value)
		}
	}
	return value, nil
}

// templateDigest computes the template digest of e with h, appending it to dst.
func templateDigest(h hash.Hash, e *Entry, dst []byte) ([]byte, error) {
	h.Reset()
	if e.Template == TemplateIMA {
		// The "ima" template hashes the digest and the name padded to
		// IMA_EVENT_NAME_LEN_MAX + 1 bytes, without length fields.
		if len(e.TemplateData) < 24 {
			return nil, fmt.Errorf("ima template data of %d bytes", len(e.TemplateData))
		}
		n := binary.LittleEndian.Uint32(e.TemplateData[20:])
		name := e.TemplateData[24:]
		if uint64(n) != uint64(len(name)) || len(name) > MaxNameLen {
			return nil, fmt.Errorf("ima template name of %d bytes", len(name))
		}
		var padded [MaxNameLen + 1]byte
		copy(padded[:], name)
		h.Write(e.TemplateData[:20])
		h.Write(padded[:])
		return h.Sum(dst), nil
	}
	h.Write(e.TemplateData)
	return h.Sum(dst), nil
}
