package eapol

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"

	"trustnac/transport/eap"
)

// PacketType is the EAPOL Packet Type (IEEE 802.1X-2010 §11.3.2, Table 11-3).
type PacketType uint8

// EAPOL packet types (IEEE 802.1X-2010 Table 11-3).
const (
	TypeEAPPacket            PacketType = 0 // EAPOL-EAP: carries one EAP packet
	TypeStart                PacketType = 1 // EAPOL-Start
	TypeLogoff               PacketType = 2 // EAPOL-Logoff
	TypeKey                  PacketType = 3 // EAPOL-Key
	TypeASFAlert             PacketType = 4 // EAPOL-Encapsulated-ASF-Alert
	TypeMKA                  PacketType = 5 // EAPOL-MKA
	TypeAnnouncementGeneric  PacketType = 6 // EAPOL-Announcement (Generic)
	TypeAnnouncementSpecific PacketType = 7 // EAPOL-Announcement (Specific)
	TypeAnnouncementReq      PacketType = 8 // EAPOL-Announcement-Req
)

func (t PacketType) String() string {
	switch t {
	case TypeEAPPacket:
		return "EAP-Packet"
	case TypeStart:
		return "Start"
	case TypeLogoff:
		return "Logoff"
	case TypeKey:
		return "Key"
	case TypeASFAlert:
		return "Encapsulated-ASF-Alert"
	case TypeMKA:
		return "MKA"
	case TypeAnnouncementGeneric:
		return "Announcement-Generic"
	case TypeAnnouncementSpecific:
		return "Announcement-Specific"
	case TypeAnnouncementReq:
		return "Announcement-Req"
	}
	return fmt.Sprintf("PacketType(%d)", uint8(t))
}

// Protocol versions (IEEE 802.1X-2010 §11.3.1): 1 is 802.1X-2001, 2 is 802.1X-2004, 3 is
// 802.1X-2010.
const (
	Version2001 uint8 = 1
	Version2004 uint8 = 2
	Version2010 uint8 = 3
	// DefaultVersion is what the PAEs of this package send: 802.1X-2004 carries everything they
	// use, and every peer since 2004 accepts it.
	DefaultVersion = Version2004
)

// Wire constants (IEEE 802.1X-2010 §11.1, §11.3).
const (
	// EtherType is the PAE EtherType, 0x888E (§11.1.4).
	EtherType = 0x888e
	// HeaderLen is the EAPOL header: Protocol Version, Packet Type, Packet Body Length (§11.3).
	HeaderLen = 4
	// EthernetHeaderLen is destination, source and EtherType of an untagged Ethernet frame.
	EthernetHeaderLen = 14
	// MinEthernetFrame is the shortest Ethernet frame without its FCS; shorter EAPOL frames are
	// padded to it on send and the padding is ignored on receipt (§11.3.3).
	MinEthernetFrame = 60
	// MaxBody is the largest body the 16-bit Packet Body Length can describe.
	MaxBody = 0xffff
)

// PAEGroupAddr is the Port Access Entity group address 01-80-C2-00-00-03 (IEEE 802.1X-2010
// §11.1.1, Table 11-1), the destination of EAPOL frames on a point-to-point LAN whose peer's
// address is not yet known. Treat it as read-only.
var PAEGroupAddr = net.HardwareAddr{0x01, 0x80, 0xc2, 0x00, 0x00, 0x03}

// Errors callers test with errors.Is.
var (
	// ErrMalformed is matched by every decoding error of this package.
	ErrMalformed = errors.New("eapol: malformed frame")
	// ErrNotEAPOL is matched (besides ErrMalformed) when an Ethernet frame has another EtherType.
	ErrNotEAPOL = errors.New("eapol: not an EAPOL frame")
)

// Frame is one EAPOL PDU (IEEE 802.1X-2010 §11.3): Protocol Version, Packet Type and the Packet
// Body, whose length is the Packet Body Length field.
type Frame struct {
	Version uint8
	Type    PacketType
	Body    []byte
}

// Len is the length of the encoded PDU.
func (f *Frame) Len() int { return HeaderLen + len(f.Body) }

// AppendBinary appends the encoded PDU to b (§11.3). It fails on a version of 0 and on a body
// longer than MaxBody.
func (f *Frame) AppendBinary(b []byte) ([]byte, error) {
	if f.Version == 0 {
		return b, errors.New("eapol: protocol version 0")
	}
	if len(f.Body) > MaxBody {
		return b, fmt.Errorf("eapol: body of %d bytes exceeds %d", len(f.Body), MaxBody)
	}
	b = append(b, f.Version, byte(f.Type), byte(len(f.Body)>>8), byte(len(f.Body)))
	return append(b, f.Body...), nil
}

// MarshalBinary encodes the PDU.
func (f *Frame) MarshalBinary() ([]byte, error) { return f.AppendBinary(make([]byte, 0, f.Len())) }

// UnmarshalBinary decodes one PDU from b (§11.3, §11.4). The Packet Body Length must fit in b;
// octets after the body are Ethernet padding and are ignored. A version of 0 is rejected; later
// versions than 3 are kept as received (§11.4 b: a receiver acts on what it understands). An
// EAP-Packet body must hold an EAP header whose Length fits in the body. Body is copied out of b.
func (f *Frame) UnmarshalBinary(b []byte) error {
	if len(b) < HeaderLen {
		return fmt.Errorf("%w: %d bytes, want at least %d", ErrMalformed, len(b), HeaderLen)
	}
	if b[0] == 0 {
		return fmt.Errorf("%w: protocol version 0", ErrMalformed)
	}
	n := int(binary.BigEndian.Uint16(b[2:4]))
	if n > len(b)-HeaderLen {
		return fmt.Errorf("%w: body length %d with %d bytes present", ErrMalformed, n, len(b)-HeaderLen)
	}
	body := b[HeaderLen : HeaderLen+n]
	if PacketType(b[1]) == TypeEAPPacket {
		if err := checkEAP(body); err != nil {
			return err
		}
	}
	f.Version, f.Type = b[0], PacketType(b[1])
	f.Body = nil
	if n > 0 {
		f.Body = append(make([]byte, 0, n), body...)
	}
	return nil
}

// checkEAP bounds the EAP packet inside an EAP-Packet body: a full EAP header whose Length is at
// least the header and at most the body (RFC 3748 §4: octets past Length are padding).
func checkEAP(body []byte) error {
	if len(body) < eap.HeaderLen {
		return fmt.Errorf("%w: EAP-Packet body of %d bytes, want at least %d", ErrMalformed, len(body), eap.HeaderLen)
	}
	l := int(binary.BigEndian.Uint16(body[2:4]))
	if l < eap.HeaderLen || l > len(body) {
		return fmt.Errorf("%w: EAP Length %d in a body of %d bytes", ErrMalformed, l, len(body))
	}
	return nil
}

// EAP decodes the EAP packet of an EAP-Packet frame (RFC 3748 §4 inside §11.3.3). Errors match
// ErrMalformed.
func (f *Frame) EAP() (*eap.Packet, error) {
	if f.Type != TypeEAPPacket {
		return nil, fmt.Errorf("%w: EAPOL-%s carries no EAP", ErrMalformed, f.Type)
	}
	p, err := eap.Parse(f.Body)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return p, nil
}

// NewEAPFrame returns an EAP-Packet frame of version v carrying p.
func NewEAPFrame(v uint8, p *eap.Packet) (*Frame, error) {
	body, err := p.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("eapol: %w", err)
	}
	return &Frame{Version: v, Type: TypeEAPPacket, Body: body}, nil
}

func (f *Frame) String() string {
	if f.Type == TypeEAPPacket {
		if p, err := eap.Parse(f.Body); err == nil {
			return fmt.Sprintf("EAPOL v%d %s", f.Version, p)
		}
	}
	return fmt.Sprintf("EAPOL v%d %s len=%d", f.Version, f.Type, len(f.Body))
}

// AppendEthernet appends an untagged Ethernet frame carrying f from src to dst with EtherType
// 0x888E (§11.1), padded with zeros to MinEthernetFrame.
func AppendEthernet(b []byte, dst, src net.HardwareAddr, f *Frame) ([]byte, error) {
	if len(dst) != 6 || len(src) != 6 {
		return b, fmt.Errorf("eapol: MAC addresses of %d and %d bytes, want 6", len(dst), len(src))
	}
	start := len(b)
	b = append(b, dst...)
	b = append(b, src...)
	b = append(b, EtherType>>8, EtherType&0xff)
	b, err := f.AppendBinary(b)
	if err != nil {
		return b[:start], err
	}
	for len(b)-start < MinEthernetFrame {
		b = append(b, 0)
	}
	return b, nil
}

// ParseEthernet decodes an untagged Ethernet frame carrying an EAPOL PDU: destination, source
// and the PDU (padding ignored). The addresses and the body are copied out of b. A frame with
// another EtherType fails with ErrNotEAPOL.
func ParseEthernet(b []byte) (dst, src net.HardwareAddr, f *Frame, err error) {
	if len(b) < EthernetHeaderLen {
		return nil, nil, nil, fmt.Errorf("%w: Ethernet frame of %d bytes", ErrMalformed, len(b))
	}
	if et := binary.BigEndian.Uint16(b[12:14]); et != EtherType {
		return nil, nil, nil, fmt.Errorf("%w: %w: EtherType %#04x", ErrMalformed, ErrNotEAPOL, et)
	}
	f = new(Frame)
	if err := f.UnmarshalBinary(b[EthernetHeaderLen:]); err != nil {
		return nil, nil, nil, err
	}
	dst = append(net.HardwareAddr(nil), b[0:6]...)
	src = append(net.HardwareAddr(nil), b[6:12]...)
	return dst, src, f, nil
}
