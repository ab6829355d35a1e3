package pttls

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Protocol constants (RFC 6876).
const (
	// DefaultPort is the TCP port IANA assigned to PT-TLS (RFC 6876, "pt-tls").
	DefaultPort = 271
	// HeaderLen is the length of the PT-TLS message header (RFC 6876 §3.5).
	HeaderLen = 16
	// Version is the only PT-TLS version defined (RFC 6876 §3.7).
	Version = 1
	// VendorIETF is the Message Type Vendor ID of the IETF namespace.
	VendorIETF = 0

	// DefaultMaxMessageSize is the largest message (header included) a
	// peer accepts when no other limit is configured.
	DefaultMaxMessageSize = 1 << 20
	// MaxMessageSizeLimit is the hard upper bound on any configured
	// maximum message size.
	MaxMessageSizeLimit = 64 << 20
	// MinMaxMessageSize is the smallest maximum message size a Client or
	// Server accepts in its configuration: room for a PT-TLS Error with a
	// full copy of the offending message.
	MinMaxMessageSize = 4096

	maxVendor = 1<<24 - 1
)

// MessageType is a PT-TLS message type (RFC 6876 §3.6). The numbers below are
// in the IETF namespace (vendor 0).
type MessageType uint32

// IETF PT-TLS message types (RFC 6876 §3.6, IANA "PT-TLS Message Types").
const (
	TypeExperimental           MessageType = 0
	TypeVersionRequest         MessageType = 1
	TypeVersionResponse        MessageType = 2
	TypeSASLMechanisms         MessageType = 3
	TypeSASLMechanismSelection MessageType = 4
	TypeSASLAuthData           MessageType = 5
	TypeSASLResult             MessageType = 6
	TypePBBatch                MessageType = 7
	TypeError                  MessageType = 8
)

// String returns the RFC name of an IETF message type.
func (t MessageType) String() string {
	switch t {
	case TypeExperimental:
		return "Experimental"
	case TypeVersionRequest:
		return "Version Request"
	case TypeVersionResponse:
		return "Version Response"
	case TypeSASLMechanisms:
		return "SASL Mechanisms"
	case TypeSASLMechanismSelection:
		return "SASL Mechanism Selection"
	case TypeSASLAuthData:
		return "SASL Authentication Data"
	case TypeSASLResult:
		return "SASL Result"
	case TypePBBatch:
		return "PB-TNC Batch"
	case TypeError:
		return "PT-TLS Error"
	}
	return "MessageType(" + strconv.FormatUint(uint64(t), 10) + ")"
}

// known reports whether t is an IETF type this package implements.
func (t MessageType) known() bool { return t >= TypeVersionRequest && t <= TypeError }

// Message is one PT-TLS message (RFC 6876 §3.5):
//
//	Reserved (8) | Message Type Vendor ID (24)
//	Message Type (32)
//	Message Length (32, header included)
//	Message Identifier (32)
//	Message Value (Message Length - 16 bytes)
type Message struct {
	// Vendor is the Message Type Vendor ID (24 bits), VendorIETF for the
	// types in this package.
	Vendor uint32
	// Type is the message type in Vendor's namespace.
	Type MessageType
	// ID is the Message Identifier: each sender counts its messages from
	// zero, one up per message, so a PT-TLS Error can name the message it
	// is about.
	ID uint32
	// Value is the message value (body).
	Value []byte
}

// AppendBinary appends the wire form of m (header and value) to dst. The
// reserved bits are sent as zero.
func (m *Message) AppendBinary(dst []byte) ([]byte, error) {
	if m.Vendor > maxVendor {
		return dst, fmt.Errorf("pttls: message vendor ID %#x does not fit in 24 bits", m.Vendor)
	}
	if len(m.Value) > MaxMessageSizeLimit-HeaderLen {
		return dst, fmt.Errorf("%w: value of %d bytes, limit %d", ErrTooLarge, len(m.Value), MaxMessageSizeLimit-HeaderLen)
	}
	dst = appendHeader(dst, m.Vendor, m.Type, uint32(HeaderLen+len(m.Value)), m.ID)
	return append(dst, m.Value...), nil
}

func appendHeader(dst []byte, vendor uint32, typ MessageType, length, id uint32) []byte {
	dst = binary.BigEndian.AppendUint32(dst, vendor&maxVendor)
	dst = binary.BigEndian.AppendUint32(dst, uint32(typ))
	dst = binary.BigEndian.AppendUint32(dst, length)
	return binary.BigEndian.AppendUint32(dst, id)
}

// header is a decoded PT-TLS message header.
type header struct {
	vendor uint32
	typ    MessageType
	length uint32
	id     uint32
}

// effectiveMax maps a caller's maximum message size to the one enforced:
// 0 means DefaultMaxMessageSize, and no maximum exceeds MaxMessageSizeLimit.
func effectiveMax(limit uint32) uint32 {
	switch {
	case limit == 0:
		return DefaultMaxMessageSize
	case limit > MaxMessageSizeLimit:
		return MaxMessageSizeLimit
	case limit < HeaderLen:
		return HeaderLen
	}
	return limit
}

// parseHeader decodes and checks a 16-byte header against limit (already
// passed through effectiveMax). Errors are *Error values carrying a copy of
// the header.
func parseHeader(b []byte, limit uint32) (header, error) {
	h := header{
		vendor: binary.BigEndian.Uint32(b[0:4]) & maxVendor, // reserved bits ignored
		typ:    MessageType(binary.BigEndian.Uint32(b[4:8])),
		length: binary.BigEndian.Uint32(b[8:12]),
		id:     binary.BigEndian.Uint32(b[12:16]),
	}
	if h.length < HeaderLen {
		return h, protoError(CodeMalformedMessage, b[:HeaderLen],
			fmt.Errorf("%w: Message Length %d is shorter than the header", ErrMalformed, h.length))
	}
	if h.length > limit {
		return h, protoError(CodeInvalidMessage, b[:HeaderLen],
			fmt.Errorf("%w: Message Length %d, maximum %d", ErrTooLarge, h.length, limit))
	}
	return h, nil
}

// ParseMessage decodes the PT-TLS message at the start of data and returns it
// with the number of bytes it took. max is the largest Message Length
// accepted (0 means DefaultMaxMessageSize; it is capped at
// MaxMessageSizeLimit). When data holds less than a whole message the error
// wraps ErrShort; a header that announces too much is rejected at once with
// an *Error (Invalid Message, wrapping ErrTooLarge) before the body arrives.
// The returned Value is a copy.
func ParseMessage(data []byte, max uint32) (*Message, int, error) {
	if len(data) < HeaderLen {
		return nil, 0, fmt.Errorf("%w: %d of %d header bytes", ErrShort, len(data), HeaderLen)
	}
	h, err := parseHeader(data, effectiveMax(max))
	if err != nil {
		return nil, 0, err
	}
	if uint64(len(data)) < uint64(h.length) {
		return nil, 0, fmt.Errorf("%w: %d of %d bytes", ErrShort, len(data), h.length)
	}
	m := &Message{Vendor: h.vendor, Type: h.typ, ID: h.id}
	if h.length > HeaderLen {
		m.Value = append([]byte(nil), data[HeaderLen:h.length]...)
	}
	return m, int(h.length), nil
}

// ReadMessage reads one PT-TLS message from r. max is as for ParseMessage.
// The announced length is checked before the body is read; a body is
// allocated as it arrives, so a peer that announces a large message and
// stalls does not pin max bytes of memory. A clean end of stream before the
// first header byte returns io.EOF; a stream that ends inside a message
// returns io.ErrUnexpectedEOF.
func ReadMessage(r io.Reader, max uint32) (*Message, error) {
	var hb [HeaderLen]byte
	m, _, err := readMessage(r, effectiveMax(max), &hb)
	return m, err
}

// eagerBody is the largest body ReadMessage allocates in one piece; larger
// bodies grow as their bytes arrive.
const eagerBody = 64 << 10

// readMessage reads one message into a fresh Message, using hb for the
// header. It returns the header bytes as read (for PT-TLS Error copies).
func readMessage(r io.Reader, limit uint32, hb *[HeaderLen]byte) (*Message, []byte, error) {
	if _, err := io.ReadFull(r, hb[:]); err != nil {
		return nil, nil, err
	}
	h, err := parseHeader(hb[:], limit)
	if err != nil {
		return nil, hb[:], err
	}
	m := &Message{Vendor: h.vendor, Type: h.typ, ID: h.id}
	n := int64(h.length) - HeaderLen
	switch {
	case n == 0:
	case n <= eagerBody:
		m.Value = make([]byte, n)
		if _, err := io.ReadFull(r, m.Value); err != nil {
			return nil, hb[:], unexpectedEOF(err)
		}
	default:
		v, err := readGrowing(r, int(n))
		if err != nil {
			return nil, hb[:], unexpectedEOF(err)
		}
		m.Value = v
	}
	return m, hb[:], nil
}

// readGrowing reads exactly n bytes into a buffer that starts at eagerBody
// and doubles (up to n) only as bytes arrive.
func readGrowing(r io.Reader, n int) ([]byte, error) {
	buf := make([]byte, 0, eagerBody)
	for len(buf) < n {
		if len(buf) == cap(buf) {
			buf = append(make([]byte, 0, min(2*cap(buf), n)), buf...)
		}
		k, err := io.ReadFull(r, buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+k]
		if err != nil {
			return nil, err
		}
	}
	return buf, nil
}

func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
