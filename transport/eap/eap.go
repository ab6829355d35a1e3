package eap

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Code is the EAP packet code (RFC 3748 §4).
type Code uint8

// EAP codes (RFC 3748 §4).
const (
	CodeRequest  Code = 1
	CodeResponse Code = 2
	CodeSuccess  Code = 3
	CodeFailure  Code = 4
)

func (c Code) String() string {
	switch c {
	case CodeRequest:
		return "Request"
	case CodeResponse:
		return "Response"
	case CodeSuccess:
		return "Success"
	case CodeFailure:
		return "Failure"
	}
	return fmt.Sprintf("Code(%d)", uint8(c))
}

// Type is the EAP method type of a Request or Response (RFC 3748 §5, IANA "Method Types").
type Type uint8

// Method types trustnac knows.
const (
	TypeIdentity     Type = 1
	TypeNotification Type = 2
	TypeNak          Type = 3 // Legacy Nak, Response only (RFC 3748 §5.3.1)
	TypeMD5          Type = 4
	TypeTLS          Type = 13
	TypeTTLS         Type = 21 // RFC 5281
	TypePEAP         Type = 25
	TypeMSCHAPv2     Type = 26
	TypeTNC          Type = 38 // EAP-TNC (TCG EAP Mapping for IF-TNCCS)
	TypePTEAP        Type = 54 // RFC 7171
	TypeExpanded     Type = 254
)

func (t Type) String() string {
	switch t {
	case TypeIdentity:
		return "Identity"
	case TypeNotification:
		return "Notification"
	case TypeNak:
		return "Nak"
	case TypeMD5:
		return "MD5-Challenge"
	case TypeTLS:
		return "TLS"
	case TypeTTLS:
		return "TTLS"
	case TypePEAP:
		return "PEAP"
	case TypeMSCHAPv2:
		return "MSCHAPv2"
	case TypeTNC:
		return "EAP-TNC"
	case TypePTEAP:
		return "PT-EAP"
	case TypeExpanded:
		return "Expanded"
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// HeaderLen is the length of the EAP header (Code, Identifier, Length); Requests and Responses
// add one Type octet.
const HeaderLen = 4

// MaxLength is the largest EAP packet the Length field can describe.
const MaxLength = 0xffff

// MinMTU is the EAP packet size every lower layer must carry (RFC 3748 §3.1).
const MinMTU = 1020

// ErrMalformed is matched (errors.Is) by every error of Parse.
var ErrMalformed = errors.New("eap: malformed packet")

// Packet is one EAP packet. Type and Data are those of a Request or Response; Success and Failure
// carry neither.
type Packet struct {
	Code Code
	ID   uint8
	Type Type
	Data []byte // type-data, after the Type octet
}

// Len is the value of the packet's Length field.
func (p *Packet) Len() int {
	if p.Code == CodeSuccess || p.Code == CodeFailure {
		return HeaderLen
	}
	return HeaderLen + 1 + len(p.Data)
}

// AppendBinary appends the encoded packet to b. It fails only when the packet would exceed
// MaxLength or has an unknown code.
func (p *Packet) AppendBinary(b []byte) ([]byte, error) {
	n := p.Len()
	if n > MaxLength {
		return b, fmt.Errorf("eap: packet of %d bytes exceeds %d", n, MaxLength)
	}
	switch p.Code {
	case CodeRequest, CodeResponse:
		b = append(b, byte(p.Code), p.ID, 0, 0, byte(p.Type))
		binary.BigEndian.PutUint16(b[len(b)-3:], uint16(n))
		return append(b, p.Data...), nil
	case CodeSuccess, CodeFailure:
		b = append(b, byte(p.Code), p.ID, 0, HeaderLen)
		return b, nil
	}
	return b, fmt.Errorf("eap: cannot encode code %d", p.Code)
}

// MarshalBinary encodes the packet.
func (p *Packet) MarshalBinary() ([]byte, error) { return p.AppendBinary(make([]byte, 0, p.Len())) }

// Parse decodes one EAP packet. The Length field must not exceed the buffer; octets beyond it are
// link-layer padding and are ignored (RFC 3748 §4). Data is copied out of b.
func Parse(b []byte) (*Packet, error) {
	if len(b) < HeaderLen {
		return nil, fmt.Errorf("%w: %d bytes, want at least %d", ErrMalformed, len(b), HeaderLen)
	}
	n := int(binary.BigEndian.Uint16(b[2:4]))
	if n < HeaderLen || n > len(b) {
		return nil, fmt.Errorf("%w: Length %d with %d bytes present", ErrMalformed, n, len(b))
	}
	p := &Packet{Code: Code(b[0]), ID: b[1]}
	switch p.Code {
	case CodeRequest, CodeResponse:
		if n < HeaderLen+1 {
			return nil, fmt.Errorf("%w: %s without a Type", ErrMalformed, p.Code)
		}
		p.Type = Type(b[4])
		if n > HeaderLen+1 {
			p.Data = append([]byte(nil), b[HeaderLen+1:n]...)
		}
	case CodeSuccess, CodeFailure:
		if n != HeaderLen {
			return nil, fmt.Errorf("%w: %s with Length %d", ErrMalformed, p.Code, n)
		}
	default:
		return nil, fmt.Errorf("%w: unknown code %d", ErrMalformed, b[0])
	}
	return p, nil
}

func (p *Packet) String() string {
	if p.Code == CodeSuccess || p.Code == CodeFailure {
		return fmt.Sprintf("EAP-%s id=%d", p.Code, p.ID)
	}
	return fmt.Sprintf("EAP-%s/%s id=%d len=%d", p.Code, p.Type, p.ID, p.Len())
}
