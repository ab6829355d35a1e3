package mschapv2

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// OpCode is the first octet of EAP-MSCHAPv2 type-data
// (draft-kamath-pppext-eap-mschapv2 §2).
type OpCode uint8

// OpCodes (draft-kamath-pppext-eap-mschapv2 §2; RFC 2759 §3 for the codes).
const (
	OpChallenge      OpCode = 1
	OpResponse       OpCode = 2
	OpSuccess        OpCode = 3
	OpFailure        OpCode = 4
	OpChangePassword OpCode = 7 // not supported by this package
)

// String names the OpCode.
func (o OpCode) String() string {
	switch o {
	case OpChallenge:
		return "Challenge"
	case OpResponse:
		return "Response"
	case OpSuccess:
		return "Success"
	case OpFailure:
		return "Failure"
	case OpChangePassword:
		return "Change-Password"
	}
	return fmt.Sprintf("OpCode(%d)", uint8(o))
}

// Sizes and limits.
const (
	// ChallengeSize is the Value-Size of a Challenge (RFC 2759 §4).
	ChallengeSize = 16
	// ResponseSize is the Value-Size of a Response: Peer-Challenge (16),
	// Reserved (8), NT-Response (24), Flags (1) (RFC 2759 §4).
	ResponseSize = 49
	// MaxName caps the Name of a Challenge or Response (RFC 2759 §8.2
	// allows user names of up to 256 characters).
	MaxName = 256
	// MaxMessage caps the text of a Success or Failure Request.
	MaxMessage = 1024
	// headerLen is OpCode, MS-CHAPv2-ID and MS-Length.
	headerLen = 4
	// maxTypeData is the largest type-data an EAP packet holds.
	maxTypeData = 0xffff - 5
)

// ErrMalformed is matched by every decoding error.
var ErrMalformed = errors.New("mschapv2: malformed packet")

// Packet is the type-data of one EAP-MSCHAPv2 packet
// (draft-kamath-pppext-eap-mschapv2 §2.1–§2.6). Challenge and Response carry
// Value and Name; Success and Failure Requests carry Message; the Success
// and Failure Responses are the OpCode alone (Short).
type Packet struct {
	OpCode OpCode
	// Short marks the one-octet Success Response or Failure Response
	// (§2.4, §2.6); the other fields are then absent.
	Short bool
	// ID is the MS-CHAPv2-ID that matches Responses with Requests.
	ID uint8
	// Value is the 16-octet challenge or the 49-octet response.
	Value []byte
	// Name is the authenticator's name (Challenge) or the user name
	// (Response).
	Name string
	// Message is the text of a Success or Failure Request: "S=... M=..."
	// or "E=... R=... C=... V=... M=...".
	Message string
}

// Len is the encoded length of the packet.
func (p *Packet) Len() int {
	if p.Short {
		return 1
	}
	switch p.OpCode {
	case OpChallenge, OpResponse:
		return headerLen + 1 + len(p.Value) + len(p.Name)
	}
	return headerLen + len(p.Message)
}

// AppendBinary appends the encoded type-data to b; MS-Length is set to the
// length of the type-data (the EAP Length less 5).
func (p *Packet) AppendBinary(b []byte) ([]byte, error) {
	if p.Short {
		if p.OpCode != OpSuccess && p.OpCode != OpFailure {
			return b, fmt.Errorf("mschapv2: a short %v packet does not exist", p.OpCode)
		}
		return append(b, byte(p.OpCode)), nil
	}
	n := p.Len()
	if n > maxTypeData {
		return b, fmt.Errorf("mschapv2: %v packet of %d octets exceeds %d", p.OpCode, n, maxTypeData)
	}
	switch p.OpCode {
	case OpChallenge, OpResponse:
		want := ChallengeSize
		if p.OpCode == OpResponse {
			want = ResponseSize
		}
		if len(p.Value) != want {
			return b, fmt.Errorf("mschapv2: %v value of %d octets, want %d", p.OpCode, len(p.Value), want)
		}
		if len(p.Name) > MaxName {
			return b, fmt.Errorf("mschapv2: name of %d octets exceeds %d", len(p.Name), MaxName)
		}
		b = append(b, byte(p.OpCode), p.ID)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
		b = append(b, byte(len(p.Value)))
		b = append(b, p.Value...)
		return append(b, p.Name...), nil
	case OpSuccess, OpFailure:
		if len(p.Message) > MaxMessage {
			return b, fmt.Errorf("mschapv2: message of %d octets exceeds %d", len(p.Message), MaxMessage)
		}
		b = append(b, byte(p.OpCode), p.ID)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
		return append(b, p.Message...), nil
	}
	return b, fmt.Errorf("mschapv2: cannot encode %v", p.OpCode)
}

// MarshalBinary encodes the type-data.
func (p *Packet) MarshalBinary() ([]byte, error) {
	return p.AppendBinary(make([]byte, 0, p.Len()))
}

// UnmarshalBinary decodes EAP-MSCHAPv2 type-data. MS-Length must equal the
// length of b; the Value-Size must be 16 for a Challenge and 49 for a
// Response; Change-Password and unknown OpCodes are rejected.
func (p *Packet) UnmarshalBinary(b []byte) error {
	if len(b) < 1 {
		return fmt.Errorf("%w: no OpCode", ErrMalformed)
	}
	op := OpCode(b[0])
	if (op == OpSuccess || op == OpFailure) && len(b) == 1 {
		*p = Packet{OpCode: op, Short: true}
		return nil
	}
	if len(b) < headerLen {
		return fmt.Errorf("%w: %v packet of %d octets", ErrMalformed, op, len(b))
	}
	if n := int(binary.BigEndian.Uint16(b[2:4])); n != len(b) {
		return fmt.Errorf("%w: MS-Length %d with %d octets", ErrMalformed, n, len(b))
	}
	q := Packet{OpCode: op, ID: b[1]}
	rest := b[headerLen:]
	switch op {
	case OpChallenge, OpResponse:
		want := ChallengeSize
		if op == OpResponse {
			want = ResponseSize
		}
		if len(rest) < 1 || int(rest[0]) != want {
			return fmt.Errorf("%w: %v without a Value-Size of %d", ErrMalformed, op, want)
		}
		rest = rest[1:]
		if len(rest) < want {
			return fmt.Errorf("%w: %v value truncated", ErrMalformed, op)
		}
		if len(rest)-want > MaxName {
			return fmt.Errorf("%w: name of %d octets exceeds %d", ErrMalformed, len(rest)-want, MaxName)
		}
		q.Value = append([]byte(nil), rest[:want]...)
		q.Name = string(rest[want:])
	case OpSuccess, OpFailure:
		if len(rest) > MaxMessage {
			return fmt.Errorf("%w: message of %d octets exceeds %d", ErrMalformed, len(rest), MaxMessage)
		}
		q.Message = string(rest)
	default:
		return fmt.Errorf("%w: unsupported OpCode %v", ErrMalformed, op)
	}
	*p = q
	return nil
}

// ResponseValue is the 49-octet value of a Response (RFC 2759 §4):
// Peer-Challenge, 8 reserved octets (zero), NT-Response and Flags (zero).
type ResponseValue struct {
	PeerChallenge [16]byte
	NTResponse    [24]byte
	Flags         uint8
}

// AppendBinary appends the 49-octet value.
func (r *ResponseValue) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, r.PeerChallenge[:]...)
	b = append(b, make([]byte, 8)...)
	b = append(b, r.NTResponse[:]...)
	return append(b, r.Flags), nil
}

// UnmarshalBinary decodes a 49-octet value; the reserved octets are ignored.
func (r *ResponseValue) UnmarshalBinary(b []byte) error {
	if len(b) != ResponseSize {
		return fmt.Errorf("%w: response value of %d octets, want %d", ErrMalformed, len(b), ResponseSize)
	}
	copy(r.PeerChallenge[:], b[:16])
	copy(r.NTResponse[:], b[24:48])
	r.Flags = b[48]
	return nil
}
