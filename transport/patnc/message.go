package patnc

import (
	"encoding/binary"
	"fmt"
	"math"
)

// DefaultMaxAttributes caps the attributes a message may carry when
// ParseMessage is given 0 and in Message.UnmarshalBinary.
const DefaultMaxAttributes = 1024

// MaxVendorID is the largest 24-bit SMI private enterprise number a vendor
// ID field holds (RFC 5792 §4.2).
const MaxVendorID = 0xffffff

// maxValueLen is the longest attribute value whose 32-bit length field
// (header included, RFC 5792 §4.2) can describe it.
const maxValueLen = math.MaxUint32 - AttrHeaderLen

// String formats the ID as vendor/type, e.g. "0/2" for IETF Product
// Information.
func (id AttrID) String() string { return fmt.Sprintf("%d/%d", id.Vendor, id.Type) }

// ID returns the attribute's vendor and type.
func (a Attribute) ID() AttrID { return AttrID{Vendor: a.Vendor, Type: a.Type} }

// AppendBinary appends the attribute: the 12-byte header of RFC 5792 §4.2
// (flags, 24-bit vendor, type, length including the header) and the value.
func (a Attribute) AppendBinary(dst []byte) ([]byte, error) {
	if a.Vendor > MaxVendorID {
		return dst, invalid("attribute vendor %#x exceeds 24 bits", a.Vendor)
	}
	if uint64(len(a.Value)) > maxValueLen {
		return dst, invalid("attribute %v value of %d bytes is too long", a.ID(), len(a.Value))
	}
	var flags byte
	if a.NoSkip {
		flags = FlagNoSkip
	}
	dst = append(dst, flags, byte(a.Vendor>>16), byte(a.Vendor>>8), byte(a.Vendor))
	dst = binary.BigEndian.AppendUint32(dst, a.Type)
	dst = binary.BigEndian.AppendUint32(dst, uint32(AttrHeaderLen+len(a.Value)))
	return append(dst, a.Value...), nil
}

// Header returns the message's 8-byte header (RFC 5792 §4.1): version 1,
// 24 reserved bits set to zero, the message ID. The PA-TNC Error
// constructors take it as the "Copy of Original PA-TNC Message Header";
// since reserved bits must be sent as zero, it equals the received header
// of any conforming message.
func (m *Message) Header() []byte {
	return binary.BigEndian.AppendUint32([]byte{Version, 0, 0, 0}, m.ID)
}

// AppendBinary appends the message (RFC 5792 §4.1): the 8-byte header and
// every attribute. On error dst is returned unchanged.
func (m *Message) AppendBinary(dst []byte) ([]byte, error) {
	orig := len(dst)
	dst = append(dst, Version, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, m.ID)
	for i := range m.Attributes {
		var err error
		dst, err = m.Attributes[i].AppendBinary(dst)
		if err != nil {
			return dst[:orig], fmt.Errorf("patnc: attribute %d: %w", i, err)
		}
	}
	return dst, nil
}

// MarshalBinary encodes the message (RFC 5792 §4.1).
func (m *Message) MarshalBinary() ([]byte, error) {
	n := HeaderLen
	for i := range m.Attributes {
		n += AttrHeaderLen + len(m.Attributes[i].Value)
	}
	return m.AppendBinary(make([]byte, 0, n))
}

// UnmarshalBinary decodes a PA-TNC message (RFC 5792 §4.1, §4.2) with at
// most DefaultMaxAttributes attributes. Errors are *ParseError. See
// ParseMessage.
func (m *Message) UnmarshalBinary(data []byte) error {
	p, err := ParseMessage(data, DefaultMaxAttributes)
	if err != nil {
		return err
	}
	*m = *p
	return nil
}

// ParseMessage decodes a PA-TNC message (RFC 5792 §4.1, §4.2) with at most
// maxAttrs attributes (0 or less: DefaultMaxAttributes). It is strict: the
// version must be 1, every attribute length must be at least 12 and fit the
// bytes present, and nothing may follow the last attribute. Reserved bits
// and unknown flags are ignored, as the RFC requires of receivers. Values
// are copied out of data. Errors are *ParseError whose Offset counts from
// the start of data; answer them with (*ParseError).PAError.
func ParseMessage(data []byte, maxAttrs int) (*Message, error) {
	if maxAttrs <= 0 {
		maxAttrs = DefaultMaxAttributes
	}
	if len(data) < HeaderLen {
		return nil, malformed(0, "message of %d bytes is shorter than its %d-byte header", len(data), HeaderLen)
	}
	if data[0] != Version {
		return nil, &ParseError{
			Code:   ErrVersionNotSupported,
			Offset: 0,
			Err:    fmt.Errorf("%w: %d", ErrUnsupportedVersion, data[0]),
		}
	}
	m := &Message{ID: binary.BigEndian.Uint32(data[4:8])}

	// First pass: validate the headers and count the attributes, so the
	// slice is allocated once at its final size.
	n := 0
	for off := HeaderLen; off < len(data); {
		if n == maxAttrs {
			return nil, &ParseError{
				Code:   ErrInvalidParameter,
				Offset: clampOffset(off),
				Err:    fmt.Errorf("%w: more than %d", ErrTooManyAttributes, maxAttrs),
			}
		}
		if len(data)-off < AttrHeaderLen {
			return nil, malformed(off, "%d bytes left, attribute header needs %d", len(data)-off, AttrHeaderLen)
		}
		l := uint64(binary.BigEndian.Uint32(data[off+8:]))
		if l < AttrHeaderLen {
			return nil, malformed(off+8, "attribute length %d is shorter than its header", l)
		}
		if l > uint64(len(data)-off) {
			return nil, malformed(off+8, "attribute length %d exceeds the %d bytes left", l, len(data)-off)
		}
		off += int(l)
		n++
	}
	if n == 0 {
		return m, nil
	}

	// Second pass: copy all values out in one allocation; each value is
	// capped so appending to it cannot overwrite its neighbour.
	buf := make([]byte, len(data)-HeaderLen)
	copy(buf, data[HeaderLen:])
	m.Attributes = make([]Attribute, 0, n)
	for off := 0; off < len(buf); {
		h := buf[off:]
		l := int(binary.BigEndian.Uint32(h[8:]))
		a := Attribute{
			NoSkip: h[0]&FlagNoSkip != 0,
			Vendor: uint32(h[1])<<16 | uint32(h[2])<<8 | uint32(h[3]),
			Type:   binary.BigEndian.Uint32(h[4:]),
		}
		if l > AttrHeaderLen {
			a.Value = buf[off+AttrHeaderLen : off+l : off+l]
		}
		m.Attributes = append(m.Attributes, a)
		off += l
	}
	return m, nil
}

// Add encodes v as an attribute (see EncodeAttribute) and appends it.
func (m *Message) Add(v Value, noSkip bool) error {
	a, err := EncodeAttribute(v, noSkip)
	if err != nil {
		return err
	}
	m.Attributes = append(m.Attributes, a)
	return nil
}

// ValueOffset returns the offset of attribute i's value from the start of
// the encoded message, as the Offset of an Invalid Parameter error
// counts it (RFC 5792 §4.2.8). ok is false if i is out of range.
func (m *Message) ValueOffset(i int) (off uint32, ok bool) {
	if i < 0 || i >= len(m.Attributes) {
		return 0, false
	}
	o := uint64(HeaderLen)
	for j := 0; j < i; j++ {
		o += AttrHeaderLen + uint64(len(m.Attributes[j].Value))
	}
	o += AttrHeaderLen
	if o > math.MaxUint32 {
		return math.MaxUint32, true
	}
	return uint32(o), true
}

// DecodeAt decodes attribute i with DecodeAttribute; a *ParseError's Offset
// is moved to count from the start of the message, ready for
// (*ParseError).PAError.
func (m *Message) DecodeAt(i int) (Value, error) {
	base, ok := m.ValueOffset(i)
	if !ok {
		return nil, fmt.Errorf("patnc: attribute index %d out of range [0,%d)", i, len(m.Attributes))
	}
	v, err := DecodeAttribute(m.Attributes[i])
	if err != nil {
		if pe, ok := err.(*ParseError); ok {
			moved := *pe
			moved.Offset = clampOffset(int(uint64(base) + uint64(pe.Offset)))
			return nil, &moved
		}
		return nil, err
	}
	return v, nil
}
