package ttls

import (
	"encoding/binary"
	"fmt"
)

// Flags is the first octet of EAP-TTLS type-data (RFC 5281 §9.1): L M S R R V V V.
type Flags uint8

// EAP-TTLS flags (RFC 5281 §9.1).
const (
	FlagLength  Flags = 0x80 // L: a 4-octet TLS Message Length follows
	FlagMore    Flags = 0x40 // M: more fragments follow
	FlagStart   Flags = 0x20 // S: start of EAP-TTLS (server only)
	VersionMask Flags = 0x07 // the EAP-TTLS version; trustnac speaks version 0
)

// Message is the type-data of one EAP-TTLS Request or Response (RFC 5281 §9.1): Flags, the
// TLS Message Length when Flags has FlagLength, and TLS data (a whole message or a fragment).
type Message struct {
	Flags  Flags
	Length uint32 // total length of the fragmented TLS message; meaningful only with FlagLength
	Data   []byte
}

// Version is the EAP-TTLS version in the flags octet.
func (m *Message) Version() uint8 { return uint8(m.Flags & VersionMask) }

// IsAck reports whether m is an acknowledgement: no data, no L, M or S flag (RFC 5281 §9.2.2).
func (m *Message) IsAck() bool {
	return len(m.Data) == 0 && m.Flags&(FlagLength|FlagMore|FlagStart) == 0
}

// AppendBinary appends the encoded type-data. It does not fail.
func (m *Message) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, byte(m.Flags))
	if m.Flags&FlagLength != 0 {
		b = binary.BigEndian.AppendUint32(b, m.Length)
	}
	return append(b, m.Data...), nil
}

// MarshalBinary encodes the type-data.
func (m *Message) MarshalBinary() ([]byte, error) {
	return m.AppendBinary(make([]byte, 0, 5+len(m.Data)))
}

// UnmarshalBinary decodes EAP-TTLS type-data; Data is copied out of b.
func (m *Message) UnmarshalBinary(b []byte) error {
	if len(b) < 1 {
		return fmt.Errorf("%w: EAP-TTLS type-data without a flags octet", ErrMalformed)
	}
	f := Flags(b[0])
	b = b[1:]
	var length uint32
	if f&FlagLength != 0 {
		if len(b) < 4 {
			return fmt.Errorf("%w: L flag with %d bytes for the 4-byte TLS Message Length", ErrMalformed, len(b))
		}
		length = binary.BigEndian.Uint32(b)
		b = b[4:]
	}
	*m = Message{Flags: f, Length: length}
	if len(b) > 0 {
		m.Data = append([]byte(nil), b...)
	}
	return nil
}

// ack is the type-data of an acknowledgement (RFC 5281 §9.2.2): version 0, no flags, no data.
func ack() []byte { return []byte{0} }

// reassembler collects the fragments of one incoming TLS message (RFC 5281 §9.2.2). Memory grows
// with the data received, never with the length announced.
type reassembler struct {
	maxMessage int
	active     bool
	want       int // announced TLS Message Length
	frags      int
	buf        []byte
}

// maxFragments is the most fragments a message of n bytes may come in: a fragment flood of
// empty or tiny fragments fails early. Peers fragmenting below 64 bytes are refused.
func maxFragments(n int) int { return n/64 + 4 }

// add takes one received message. It returns the complete TLS message once the last fragment
// is in (complete = true), or complete = false when an acknowledgement is due.
func (r *reassembler) add(m *Message) (msg []byte, complete bool, err error) {
	hasL := m.Flags&FlagLength != 0
	more := m.Flags&FlagMore != 0
	if !r.active {
		if hasL && int64(m.Length) > int64(r.maxMessage) {
			return nil, false, fmt.Errorf("%w: TLS Message Length %d exceeds %d", ErrTooLarge, m.Length, r.maxMessage)
		}
		if !more {
			if len(m.Data) > r.maxMessage {
				return nil, false, fmt.Errorf("%w: TLS message of %d bytes exceeds %d", ErrTooLarge, len(m.Data), r.maxMessage)
			}
			if hasL && int(m.Length) != len(m.Data) {
				return nil, false, fmt.Errorf("%w: TLS Message Length %d on an unfragmented message of %d bytes", ErrFragment, m.Length, len(m.Data))
			}
			return m.Data, true, nil
		}
		if !hasL {
			return nil, false, fmt.Errorf("%w: first fragment without a TLS Message Length", ErrFragment)
		}
		if len(m.Data) >= int(m.Length) {
			return nil, false, fmt.Errorf("%w: first fragment of %d bytes, TLS Message Length %d, more to follow", ErrFragment, len(m.Data), m.Length)
		}
		r.active, r.want, r.frags = true, int(m.Length), 1
		r.buf = append(r.buf[:0], m.Data...)
		return nil, false, nil
	}
	if m.Flags&FlagStart != 0 {
		return nil, false, fmt.Errorf("%w: S flag inside a fragmented message", ErrFragment)
	}
	if hasL && int(m.Length) != r.want {
		return nil, false, fmt.Errorf("%w: TLS Message Length changed from %d to %d", ErrFragment, r.want, m.Length)
	}
	r.frags++
	if r.frags > maxFragments(r.want) {
		return nil, false, fmt.Errorf("%w: more than %d fragments for a %d-byte message", ErrFragment, maxFragments(r.want), r.want)
	}
	if len(m.Data) > r.want-len(r.buf) {
		return nil, false, fmt.Errorf("%w: fragments carry more than the announced %d bytes", ErrFragment, r.want)
	}
	r.buf = append(r.buf, m.Data...)
	if more {
		return nil, false, nil
	}
	if len(r.buf) != r.want {
		return nil, false, fmt.Errorf("%w: last fragment leaves %d of the announced %d bytes", ErrFragment, len(r.buf), r.want)
	}
	msg, r.buf, r.active = r.buf, nil, false
	return msg, true, nil
}

// fragmenter cuts one outgoing TLS message into fragments of at most max bytes, the first with
// L and M, the following with M, the last with neither (RFC 5281 §9.2.2).
type fragmenter struct {
	max     int
	pending []byte
	total   int
	sent    bool // a fragment of the pending message went out
}

func (f *fragmenter) busy() bool { return len(f.pending) > 0 }

// load queues msg and returns the type-data of its first (or only) fragment.
func (f *fragmenter) load(msg []byte) []byte {
	f.pending, f.total, f.sent = msg, len(msg), false
	return f.next()
}

// next returns the type-data of the next fragment.
func (f *fragmenter) next() []byte {
	m := Message{}
	if len(f.pending) > f.max {
		m.Flags = FlagMore
		if !f.sent {
			m.Flags |= FlagLength
			m.Length = uint32(f.total)
		}
		m.Data, f.pending = f.pending[:f.max], f.pending[f.max:]
	} else {
		m.Data, f.pending = f.pending, nil
	}
	f.sent = true
	b, _ := m.MarshalBinary()
	return b
}
