package patnc

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// PA-TNC Error attribute (RFC 5792 §4.2.8): reserved 8, error code vendor
// 24, error code 32, error information laid out by code. For the IETF codes
// the information starts with a copy of the original 8-byte message header
// and continues with:
//
//	Invalid Parameter:            offset 32
//	Version Not Supported:        max version 8, min version 8, reserved 16
//	Attribute Type Not Supported: flags 8, attribute vendor 24, type 32
const (
	paErrorFixedLen   = 8
	paErrorInfoLen    = HeaderLen + 4 // Invalid Parameter, Version Not Supported
	paErrorAttrTNSLen = HeaderLen + 8 // Attribute Type Not Supported
)

// AttrID returns IETF type 8.
func (*PAError) AttrID() AttrID { return ietf(AttrPATNCError) }

// AppendBinary appends the PA-TNC Error value (RFC 5792 §4.2.8). For IETF
// codes 0–2 Info must have the length the RFC lays out.
func (e *PAError) AppendBinary(b []byte) ([]byte, error) {
	if e.Vendor == VendorIETF {
		if want, ok := ietfErrorInfoLen(e.Code); ok && len(e.Info) != want {
			return b, invalid("PA-TNC error code %d info is %d bytes, want %d", e.Code, len(e.Info), want)
		}
	}
	if uint64(len(e.Info)) > maxValueLen-paErrorFixedLen {
		return b, invalid("PA-TNC error info of %d bytes is too long", len(e.Info))
	}
	b, err := appendVendor(b, e.Vendor, "PA-TNC error code")
	if err != nil {
		return b, err
	}
	b = binary.BigEndian.AppendUint32(b, e.Code)
	return append(b, e.Info...), nil
}

// UnmarshalBinary decodes a PA-TNC Error (RFC 5792 §4.2.8). For IETF codes
// 0–2 the information must have exactly the RFC's length; for other codes it
// is kept as it is. Info is copied; empty Info decodes to nil.
func (e *PAError) UnmarshalBinary(b []byte) error {
	if len(b) < paErrorFixedLen {
		return malformed(0, "PA-TNC error of %d bytes is shorter than %d", len(b), paErrorFixedLen)
	}
	out := PAError{Vendor: vendor24(b[1:]), Code: binary.BigEndian.Uint32(b[4:])}
	info := b[paErrorFixedLen:]
	if out.Vendor == VendorIETF {
		if want, ok := ietfErrorInfoLen(out.Code); ok && len(info) != want {
			return malformed(paErrorFixedLen, "PA-TNC error code %d info is %d bytes, want %d", out.Code, len(info), want)
		}
	}
	if len(info) > 0 {
		out.Info = append([]byte(nil), info...)
	}
	*e = out
	return nil
}

// ietfErrorInfoLen returns the information length of an IETF error code.
func ietfErrorInfoLen(code uint32) (int, bool) {
	switch code {
	case ErrInvalidParameter, ErrVersionNotSupported:
		return paErrorInfoLen, true
	case ErrAttributeTypeNotSupported:
		return paErrorAttrTNSLen, true
	}
	return 0, false
}

// Error describes the PA-TNC error, so a *PAError can be returned as a Go
// error too.
func (e *PAError) Error() string {
	if e.Vendor != VendorIETF {
		return fmt.Sprintf("patnc: PA-TNC error %d/%d", e.Vendor, e.Code)
	}
	switch e.Code {
	case ErrInvalidParameter:
		if off, ok := e.Offset(); ok {
			return fmt.Sprintf("patnc: PA-TNC error: invalid parameter at offset %d", off)
		}
	case ErrVersionNotSupported:
		if max, min, ok := e.Versions(); ok {
			return fmt.Sprintf("patnc: PA-TNC error: version not supported (peer supports %d–%d)", min, max)
		}
	case ErrAttributeTypeNotSupported:
		if a, ok := e.UnsupportedAttribute(); ok {
			return fmt.Sprintf("patnc: PA-TNC error: attribute type %v not supported", a.ID())
		}
	}
	return fmt.Sprintf("patnc: PA-TNC error code %d", e.Code)
}

// header8 copies the first 8 octets of msgHeader into a new info buffer of
// capacity n, padding a short header with zeros.
func header8(msgHeader []byte, n int) []byte {
	info := make([]byte, HeaderLen, n)
	copy(info, msgHeader)
	return info
}

// NewInvalidParameterError returns the IETF Invalid Parameter error (RFC
// 5792 §4.2.8): a copy of the original message header (its first 8
// octets; shorter input is padded with zeros) and the offset in octets from
// the start of the message to the field in error.
func NewInvalidParameterError(msgHeader []byte, offset uint32) *PAError {
	info := header8(msgHeader, paErrorInfoLen)
	info = binary.BigEndian.AppendUint32(info, offset)
	return &PAError{Vendor: VendorIETF, Code: ErrInvalidParameter, Info: info}
}

// NewVersionNotSupportedError returns the IETF Version Not Supported error
// (RFC 5792 §4.2.8): a copy of the original message header and the highest
// and lowest PA-TNC versions the sender supports.
func NewVersionNotSupportedError(msgHeader []byte, max, min uint8) *PAError {
	info := header8(msgHeader, paErrorInfoLen)
	info = append(info, max, min, 0, 0)
	return &PAError{Vendor: VendorIETF, Code: ErrVersionNotSupported, Info: info}
}

// NewAttributeTypeNotSupportedError returns the IETF Attribute Type Not
// Supported error (RFC 5792 §4.2.8): a copy of the original message header
// and the flags, vendor ID and type of the unsupported attribute. The
// vendor is masked to 24 bits.
func NewAttributeTypeNotSupportedError(msgHeader []byte, attr Attribute) *PAError {
	info := header8(msgHeader, paErrorAttrTNSLen)
	var flags byte
	if attr.NoSkip {
		flags = FlagNoSkip
	}
	v := attr.Vendor & MaxVendorID
	info = append(info, flags, byte(v>>16), byte(v>>8), byte(v))
	info = binary.BigEndian.AppendUint32(info, attr.Type)
	return &PAError{Vendor: VendorIETF, Code: ErrAttributeTypeNotSupported, Info: info}
}

// ietfInfo returns Info if e is the IETF error code with its RFC layout.
func (e *PAError) ietfInfo(code uint32) ([]byte, bool) {
	if e == nil || e.Vendor != VendorIETF || e.Code != code {
		return nil, false
	}
	want, _ := ietfErrorInfoLen(code)
	if len(e.Info) != want {
		return nil, false
	}
	return e.Info, true
}

// MessageHeader returns a copy of the original message header carried by
// an IETF error of code 0–2 (RFC 5792 §4.2.8).
func (e *PAError) MessageHeader() ([]byte, bool) {
	if e == nil || e.Vendor != VendorIETF {
		return nil, false
	}
	info, ok := e.ietfInfo(e.Code)
	if !ok {
		return nil, false
	}
	return append([]byte(nil), info[:HeaderLen]...), true
}

// Offset returns the offset of an Invalid Parameter error (RFC 5792
// §4.2.8).
func (e *PAError) Offset() (uint32, bool) {
	info, ok := e.ietfInfo(ErrInvalidParameter)
	if !ok {
		return 0, false
	}
	return binary.BigEndian.Uint32(info[HeaderLen:]), true
}

// Versions returns the highest and lowest versions of a Version Not
// Supported error (RFC 5792 §4.2.8).
func (e *PAError) Versions() (max, min uint8, ok bool) {
	info, ok := e.ietfInfo(ErrVersionNotSupported)
	if !ok {
		return 0, 0, false
	}
	return info[HeaderLen], info[HeaderLen+1], true
}

// UnsupportedAttribute returns the header fields (NoSkip, vendor, type; no
// value) of the attribute an Attribute Type Not Supported error names (RFC
// 5792 §4.2.8).
func (e *PAError) UnsupportedAttribute() (Attribute, bool) {
	info, ok := e.ietfInfo(ErrAttributeTypeNotSupported)
	if !ok {
		return Attribute{}, false
	}
	f := info[HeaderLen:]
	return Attribute{
		NoSkip: f[0]&FlagNoSkip != 0,
		Vendor: vendor24(f[1:]),
		Type:   binary.BigEndian.Uint32(f[4:]),
	}, true
}

// ErrorFor returns the PA-TNC Error that answers attribute i of msg, which
// failed to decode with err (from msg.DecodeAt(i)); ok is false when the
// attribute is to be skipped: unknown and without NOSKIP (RFC 5792 §4.2).
func ErrorFor(msg *Message, i int, err error) (e *PAError, ok bool) {
	a := msg.Attributes[i]
	if errors.Is(err, ErrUnknownAttribute) {
		if !a.NoSkip {
			return nil, false
		}
		return NewAttributeTypeNotSupportedError(msg.Header(), a), true
	}
	var pe *ParseError
	if errors.As(err, &pe) {
		return pe.PAError(msg.Header()), true
	}
	off, _ := msg.ValueOffset(i)
	return NewInvalidParameterError(msg.Header(), off), true
}

// Rejected is an attribute of a received message that cannot be used.
type Rejected struct {
	Attr Attribute
	Err  error
	// Unsupported is set for an unknown attribute with NOSKIP; otherwise
	// the attribute did not parse.
	Unsupported bool
	// Answer is the PA-TNC Error that tells the sender.
	Answer *PAError
}

// DecodeAll decodes every attribute of m. Unknown attributes without NOSKIP
// are left out of both results; the others that cannot be used come back
// as rejected, each with its PA-TNC Error. RFC 5792 §4.2: when any is
// rejected, nothing of the message is to be used.
func (m *Message) DecodeAll() (values []Value, rejected []Rejected) {
	values = make([]Value, 0, len(m.Attributes))
	for i, a := range m.Attributes {
		v, err := m.DecodeAt(i)
		if err == nil {
			values = append(values, v)
			continue
		}
		if e, ok := ErrorFor(m, i, err); ok {
			rejected = append(rejected, Rejected{Attr: a, Err: err, Unsupported: errors.Is(err, ErrUnknownAttribute), Answer: e})
		}
	}
	return values, rejected
}

// Answers encodes the PA-TNC Error attributes for rejected attributes.
func Answers(rejected []Rejected) ([]Attribute, error) {
	out := make([]Attribute, 0, len(rejected))
	for _, r := range rejected {
		a, err := EncodeAttribute(r.Answer, false)
		if err != nil {
			return nil, fmt.Errorf("patnc: encode PA-TNC error: %w", err)
		}
		out = append(out, a)
	}
	return out, nil
}
