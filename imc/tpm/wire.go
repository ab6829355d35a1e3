package tpmimc

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// errShort is wrapped by every byte-level parse error of a TPM structure.
var errShort = errors.New("truncated TPM structure")

// reader reads TPM 2.0 canonical (big-endian) structures (Part 1, "Canonical form")
// with one sticky error: after the first short read every later read
// returns zero values, and err says what was missing.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) fail(what string, n int) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s needs %d bytes at offset %d, %d left", errShort, what, n, r.off, len(r.b)-r.off)
	}
}

// bytes returns the next n bytes (aliasing the input) or nil.
func (r *reader) bytes(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b)-r.off < n {
		r.fail(what, n)
		return nil
	}
	v := r.b[r.off : r.off+n : r.off+n]
	r.off += n
	return v
}

func (r *reader) u8(what string) uint8 {
	b := r.bytes(1, what)
	if b == nil {
		return 0
	}
	return b[0]
}

func (r *reader) u16(what string) uint16 {
	b := r.bytes(2, what)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint16(b)
}

func (r *reader) u32(what string) uint32 {
	b := r.bytes(4, what)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint32(b)
}

// tpm2b reads a TPM2B: a 16-bit size and that many bytes (Part 2 §10.4).
func (r *reader) tpm2b(what string) []byte {
	n := r.u16(what + " size")
	return r.bytes(int(n), what)
}

// rest is the number of unread bytes.
func (r *reader) rest() int { return len(r.b) - r.off }

// done returns the sticky error, or an error if bytes are left over.
func (r *reader) done(what string) error {
	if r.err != nil {
		return r.err
	}
	if r.rest() != 0 {
		return fmt.Errorf("%d bytes after %s", r.rest(), what)
	}
	return nil
}

// append2B appends a TPM2B with the 16-bit size of b.
func append2B(dst, b []byte) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(b)))
	return append(dst, b...)
}
