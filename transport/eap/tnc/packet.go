package tnc

import (
	"encoding/binary"
	"fmt"
)

// Header flags of EAP-TNC (TCG IF-T for Tunneled EAP Methods, EAP-TNC
// message format; the same layout as EAP-TLS, RFC 5216 §3.1).
const (
	TNCFlagLength = 0x80 // L: the 4-octet Message Length follows
	TNCFlagMore   = 0x40 // M: more fragments follow
	TNCFlagStart  = 0x20 // S: EAP-TNC Start
)

// PTEAPFlagStart is the S flag of PT-EAP (RFC 7171 §4.1): the first bit of the
// five-bit Flags field. The other four flag bits are reserved.
const PTEAPFlagStart = 0x80

// Versions this package speaks (RFC 7171 §4.1 and the IANA "PT-EAP Versions"
// registry; EAP-TNC version 1).
const (
	PTEAPVersion = 1
	TNCVersion   = 1
)

// versionMask selects the 3-bit version in the low bits of the flags octet
// (RFC 7171 §4.1; EAP-TNC likewise).
const versionMask = 0x07

// TNCPacket is the type-data of one EAP-TNC packet (TCG IF-T for Tunneled EAP
// Methods): flags and version, the message length when LengthIncluded, then
// a fragment of a PB-TNC batch. Reserved flag bits are ignored on receipt and
// sent as zero.
type TNCPacket struct {
	LengthIncluded bool   // L
	More           bool   // M
	Start          bool   // S
	Version        uint8  // 0..7
	MessageLength  uint32 // total length of the batch; meaningful with LengthIncluded
	Data           []byte // the fragment
}

// Len is the encoded length of the packet.
func (p *TNCPacket) Len() int {
	n := 1 + len(p.Data)
	if p.LengthIncluded {
		n += 4
	}
	return n
}

// AppendBinary appends the encoded type-data to b. It fails only on a version
// above 7.
func (p *TNCPacket) AppendBinary(b []byte) ([]byte, error) {
	if p.Version > versionMask {
		return b, fmt.Errorf("tnc: EAP-TNC version %d does not fit in 3 bits", p.Version)
	}
	f := p.Version
	if p.LengthIncluded {
		f |= TNCFlagLength
	}
	if p.More {
		f |= TNCFlagMore
	}
	if p.Start {
		f |= TNCFlagStart
	}
	b = append(b, f)
	if p.LengthIncluded {
		b = binary.BigEndian.AppendUint32(b, p.MessageLength)
	}
	return append(b, p.Data...), nil
}

// MarshalBinary encodes the type-data.
func (p *TNCPacket) MarshalBinary() ([]byte, error) {
	return p.AppendBinary(make([]byte, 0, p.Len()))
}

// UnmarshalBinary decodes EAP-TNC type-data. Data is copied out of b. Only
// the structure is checked here; the reassembly rules (caps, L against the
// data) are the Server's and Peer's.
func (p *TNCPacket) UnmarshalBinary(b []byte) error {
	if len(b) < 1 {
		return fmt.Errorf("%w: EAP-TNC packet without flags", ErrMalformed)
	}
	f := b[0]
	*p = TNCPacket{
		LengthIncluded: f&TNCFlagLength != 0,
		More:           f&TNCFlagMore != 0,
		Start:          f&TNCFlagStart != 0,
		Version:        f & versionMask,
	}
	rest := b[1:]
	if p.LengthIncluded {
		if len(rest) < 4 {
			return fmt.Errorf("%w: EAP-TNC L flag with %d octets for the 4-octet length", ErrMalformed, len(rest))
		}
		p.MessageLength = binary.BigEndian.Uint32(rest)
		rest = rest[4:]
	}
	if len(rest) > 0 {
		p.Data = append([]byte(nil), rest...)
	}
	return nil
}

// PTEAPPacket is the type-data of one PT-EAP packet (RFC 7171 §4.1): five
// bits of flags, of which only S is defined, a 3-bit version, then a whole
// PB-TNC batch (PT-EAP does not fragment; the tunnel method does).
type PTEAPPacket struct {
	Start   bool  // S
	Version uint8 // 0..7
	Data    []byte
}

// Len is the encoded length of the packet.
func (p *PTEAPPacket) Len() int { return 1 + len(p.Data) }

// AppendBinary appends the encoded type-data to b. It fails only on a version
// above 7.
func (p *PTEAPPacket) AppendBinary(b []byte) ([]byte, error) {
	if p.Version > versionMask {
		return b, fmt.Errorf("tnc: PT-EAP version %d does not fit in 3 bits", p.Version)
	}
	f := p.Version
	if p.Start {
		f |= PTEAPFlagStart
	}
	return append(append(b, f), p.Data...), nil
}

// MarshalBinary encodes the type-data.
func (p *PTEAPPacket) MarshalBinary() ([]byte, error) {
	return p.AppendBinary(make([]byte, 0, p.Len()))
}

// UnmarshalBinary decodes PT-EAP type-data; reserved flag bits are ignored
// (RFC 7171 §4.1). Data is copied out of b.
func (p *PTEAPPacket) UnmarshalBinary(b []byte) error {
	if len(b) < 1 {
		return fmt.Errorf("%w: PT-EAP packet without flags", ErrMalformed)
	}
	*p = PTEAPPacket{Start: b[0]&PTEAPFlagStart != 0, Version: b[0] & versionMask}
	if len(b) > 1 {
		p.Data = append([]byte(nil), b[1:]...)
	}
	return nil
}
