package pttls

import (
	"encoding/binary"
	"fmt"
	"strconv"
)

// VersionRequest is the value of a Version Request message (RFC 6876
// §3.7.1), the first message a client sends:
//
//	Reserved (8) | Min Vers (8) | Max Vers (8) | Pref Vers (8)
type VersionRequest struct {
	Min, Max, Preferred uint8
}

const versionValueLen = 4

// AppendBinary appends the 4-byte Version Request value to dst.
func (v VersionRequest) AppendBinary(dst []byte) ([]byte, error) {
	return append(dst, 0, v.Min, v.Max, v.Preferred), nil
}

// UnmarshalBinary decodes a Version Request value; it must be exactly 4
// bytes (a Message Length of 20). The reserved byte is ignored.
func (v *VersionRequest) UnmarshalBinary(b []byte) error {
	if len(b) != versionValueLen {
		return malformed("Version Request value of %d bytes, want %d", len(b), versionValueLen)
	}
	*v = VersionRequest{Min: b[1], Max: b[2], Preferred: b[3]}
	return nil
}

// Includes reports whether version lies in the request's range.
func (v VersionRequest) Includes(version uint8) bool {
	return v.Min <= version && version <= v.Max
}

// VersionResponse is the value of a Version Response message (RFC 6876
// §3.7.2):
//
//	Reserved (24) | Selected Version (8)
type VersionResponse struct {
	Version uint8
}

// AppendBinary appends the 4-byte Version Response value to dst.
func (v VersionResponse) AppendBinary(dst []byte) ([]byte, error) {
	return append(dst, 0, 0, 0, v.Version), nil
}

// UnmarshalBinary decodes a Version Response value; it must be exactly 4
// bytes. The reserved bits are ignored.
func (v *VersionResponse) UnmarshalBinary(b []byte) error {
	if len(b) != versionValueLen {
		return malformed("Version Response value of %d bytes, want %d", len(b), versionValueLen)
	}
	v.Version = b[3]
	return nil
}

// SASL mechanism name limits: RFC 4422 §3.1 names are 1 to 20 characters
// from A–Z, 0–9, '-' and '_'; PT-TLS gives the length 5 bits (RFC 6876
// §3.8.7).
const (
	MaxSASLMechanismNameLen = 20
	// MaxSASLMechanisms caps the names in one SASL Mechanisms message.
	MaxSASLMechanisms = 64
	mechLenMask       = 0x1f
)

// ValidSASLMechanismName reports whether name is a well-formed SASL
// mechanism name (RFC 4422 §3.1).
func ValidSASLMechanismName(name string) bool {
	if len(name) == 0 || len(name) > MaxSASLMechanismNameLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// SASLMechanisms is the value of a SASL Mechanisms message (RFC 6876
// §3.8.7): a list of entries, each
//
//	Rsvd (3) | Mech Len (5) | Mechanism Name (Mech Len bytes)
//
// The server sends it after the Version Response; an empty list means no
// (further) client authentication is needed and ends the negotiation phase.
type SASLMechanisms struct {
	Names []string
}

// AppendBinary appends the mechanism list to dst.
func (s SASLMechanisms) AppendBinary(dst []byte) ([]byte, error) {
	if len(s.Names) > MaxSASLMechanisms {
		return dst, fmt.Errorf("pttls: %d SASL mechanisms, limit %d", len(s.Names), MaxSASLMechanisms)
	}
	for _, n := range s.Names {
		if !ValidSASLMechanismName(n) {
			return dst, fmt.Errorf("pttls: invalid SASL mechanism name %q", n)
		}
		dst = append(dst, byte(len(n)))
		dst = append(dst, n...)
	}
	return dst, nil
}

// UnmarshalBinary decodes a mechanism list. Each name must be a valid SASL
// mechanism name; the reserved bits are ignored.
func (s *SASLMechanisms) UnmarshalBinary(b []byte) error {
	var names []string
	for len(b) > 0 {
		if len(names) == MaxSASLMechanisms {
			return invalidParameter("more than %d SASL mechanisms", MaxSASLMechanisms)
		}
		n := int(b[0] & mechLenMask)
		if n > len(b)-1 {
			return malformed("SASL mechanism name of %d bytes overruns the value", n)
		}
		name := string(b[1 : 1+n])
		if !ValidSASLMechanismName(name) {
			return invalidParameter("invalid SASL mechanism name %q", name)
		}
		names = append(names, name)
		b = b[1+n:]
	}
	s.Names = names
	return nil
}

// SASLMechanismSelection is the value of a SASL Mechanism Selection message
// (RFC 6876 §3.8.8), sent by the client:
//
//	Rsvd (3) | Mech Len (5) | Mechanism Name | optional initial response
type SASLMechanismSelection struct {
	Name    string
	Initial []byte
}

// AppendBinary appends the selection to dst.
func (s SASLMechanismSelection) AppendBinary(dst []byte) ([]byte, error) {
	if !ValidSASLMechanismName(s.Name) {
		return dst, fmt.Errorf("pttls: invalid SASL mechanism name %q", s.Name)
	}
	dst = append(dst, byte(len(s.Name)))
	dst = append(dst, s.Name...)
	return append(dst, s.Initial...), nil
}

// UnmarshalBinary decodes a selection. An absent initial response decodes
// as nil; the bytes are copied.
func (s *SASLMechanismSelection) UnmarshalBinary(b []byte) error {
	if len(b) == 0 {
		return malformed("empty SASL Mechanism Selection")
	}
	n := int(b[0] & mechLenMask)
	if n > len(b)-1 {
		return malformed("SASL mechanism name of %d bytes overruns the value", n)
	}
	name := string(b[1 : 1+n])
	if !ValidSASLMechanismName(name) {
		return invalidParameter("invalid SASL mechanism name %q", name)
	}
	*s = SASLMechanismSelection{Name: name}
	if rest := b[1+n:]; len(rest) > 0 {
		s.Initial = append([]byte(nil), rest...)
	}
	return nil
}

// SASLResultCode is the result of one SASL authentication (RFC 6876
// §3.8.10).
type SASLResultCode uint16

// SASL result codes (RFC 6876 §3.8.10).
const (
	SASLSuccess          SASLResultCode = 0
	SASLFailure          SASLResultCode = 1
	SASLAbort            SASLResultCode = 2
	SASLMechanismFailure SASLResultCode = 3
)

// String returns the RFC name of the result code.
func (c SASLResultCode) String() string {
	switch c {
	case SASLSuccess:
		return "Success"
	case SASLFailure:
		return "Failure"
	case SASLAbort:
		return "Abort"
	case SASLMechanismFailure:
		return "Mechanism Failure"
	}
	return "SASLResultCode(" + strconv.FormatUint(uint64(c), 10) + ")"
}

// SASLResult is the value of a SASL Result message (RFC 6876 §3.8.10), sent
// by the server at the end of one SASL authentication:
//
//	Result Code (16) | Result Data (optional; only with Success)
//
// Implementations disagree on the width of the result code: the RFC figure
// gives 16 bits, some peers send 32 bits and some 8. AppendBinary always
// sends the RFC's 16 bits; UnmarshalBinary accepts all three (see there).
type SASLResult struct {
	Code SASLResultCode
	Data []byte
}

// AppendBinary appends the result in the RFC form: a 16-bit code and the
// result data. It refuses a Success whose data would read back as a 32-bit
// code (data starting 0x00 0x00–0x03), which UnmarshalBinary could not tell
// apart.
func (r SASLResult) AppendBinary(dst []byte) ([]byte, error) {
	if r.Code == SASLSuccess && len(r.Data) >= 2 && r.Data[0] == 0 &&
		(len(r.Data) == 2 && r.Data[1] <= 3 || len(r.Data) > 2 && r.Data[1] >= 1 && r.Data[1] <= 3) {
		return dst, fmt.Errorf("pttls: SASL Success result data %x is ambiguous on the wire", r.Data[:2])
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(r.Code))
	return append(dst, r.Data...), nil
}

// UnmarshalBinary decodes a SASL Result value of any of the widths seen in
// the wild:
//
//   - 1 byte: an 8-bit result code;
//   - exactly 4 bytes 00 00 00 0c with c ≤ 3: a 32-bit result code;
//   - more than 4 bytes 00 00 00 0c with 1 ≤ c ≤ 3: a 32-bit failure code
//     followed by data (read as a failure, never as a success);
//   - anything else of 2 bytes or more: the RFC's 16-bit code and data.
//
// A 16-bit Success whose data starts 0x00 0x00–0x03 is read as a 32-bit
// code; AppendBinary never sends one.
func (r *SASLResult) UnmarshalBinary(b []byte) error {
	switch {
	case len(b) == 0:
		return malformed("empty SASL Result")
	case len(b) == 1:
		*r = SASLResult{Code: SASLResultCode(b[0])}
		return nil
	case len(b) >= 4 && b[0] == 0 && b[1] == 0 && b[2] == 0 &&
		(len(b) == 4 && b[3] <= 3 || len(b) > 4 && b[3] >= 1 && b[3] <= 3):
		*r = SASLResult{Code: SASLResultCode(b[3])}
		if len(b) > 4 {
			r.Data = append([]byte(nil), b[4:]...)
		}
		return nil
	}
	*r = SASLResult{Code: SASLResultCode(binary.BigEndian.Uint16(b))}
	if len(b) > 2 {
		r.Data = append([]byte(nil), b[2:]...)
	}
	return nil
}
