package pbtnc

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"
)

// Wire constants (RFC 5793 §4.1, §4.2).
const (
	// Version is the PB-TNC batch version this package speaks (§4.1).
	Version = 2
	// BatchHeaderLen is the size of the PB-TNC batch header (§4.1).
	BatchHeaderLen = 8
	// MessageHeaderLen is the size of a PB-TNC message header (§4.2).
	MessageHeaderLen = 12
)

// Batch size limits.
const (
	// DefaultMaxBatchSize bounds the batches a Client or Server accepts and
	// sends when Config.MaxBatchSize is 0, and ParseBatch when maxSize is 0.
	DefaultMaxBatchSize = 1 << 20
	// EAPMaxBatchSize is the largest PB-TNC batch carried in PT-EAP
	// (RFC 7171 §3.1): 65,535 minus the EAP and PT-EAP headers.
	EAPMaxBatchSize = 65522
	// MaxMessages caps the number of messages decoded from one batch.
	MaxMessages = 1 << 17
)

// VendorIETF is the SMI Private Enterprise Number of the IETF, the vendor
// of the standard message types, error codes and PA subtypes.
const VendorIETF = 0

// AnyID is the Posture Collector / Posture Validator Identifier meaning
// "not addressed to a particular collector or validator" (RFC 5793 §4.5,
// TNC IF-IMC/IF-IMV TNC_IMCID_ANY / TNC_IMVID_ANY).
const AnyID = 0xFFFF

const (
	flagDirection  = 0x80 // D bit, byte 1 of the batch header (§4.1)
	flagNoSkip     = 0x80 // NOSKIP, byte 0 of the message header (§4.2)
	batchTypeMask  = 0x0F
	maxVendor      = 0xFFFFFF
	reservedVendor = 0xFFFFFF   // §4.2: Vendor ID 0xffffff is reserved
	reservedType   = 0xFFFFFFFF // §4.2: message type 0xffffffff is reserved
)

// BatchType is the B-Type field of the batch header (RFC 5793 §4.1).
type BatchType uint8

// Batch types (RFC 5793 §4.1).
const (
	// BatchCDATA carries messages from the PB-TNC Client.
	BatchCDATA BatchType = 1
	// BatchSDATA carries messages from the PB-TNC Server.
	BatchSDATA BatchType = 2
	// BatchResult ends a handshake with the server's assessment.
	BatchResult BatchType = 3
	// BatchCRetry is the client's request for a new handshake; always empty.
	BatchCRetry BatchType = 4
	// BatchSRetry is the server's request for a new handshake; always empty.
	BatchSRetry BatchType = 5
	// BatchClose announces the end of the session, possibly with a PB-Error.
	BatchClose BatchType = 6
)

// String returns the RFC 5793 name of the batch type.
func (t BatchType) String() string {
	switch t {
	case BatchCDATA:
		return "CDATA"
	case BatchSDATA:
		return "SDATA"
	case BatchResult:
		return "RESULT"
	case BatchCRetry:
		return "CRETRY"
	case BatchSRetry:
		return "SRETRY"
	case BatchClose:
		return "CLOSE"
	}
	return "BatchType(" + strconv.Itoa(int(t)) + ")"
}

func (t BatchType) valid() bool { return t >= BatchCDATA && t <= BatchClose }

// MessageType is the PB-TNC Message Type field (RFC 5793 §4.2), scoped by
// the message's vendor ID; the constants are the IETF types (§4.3).
type MessageType uint32

// IETF PB-TNC message types (RFC 5793 §4.3).
const (
	MsgExperimental          MessageType = 0
	MsgPA                    MessageType = 1
	MsgAssessmentResult      MessageType = 2
	MsgAccessRecommendation  MessageType = 3
	MsgRemediationParameters MessageType = 4
	MsgError                 MessageType = 5
	MsgLanguagePreference    MessageType = 6
	MsgReasonString          MessageType = 7
)

// String returns the RFC 5793 name of an IETF message type.
func (t MessageType) String() string {
	switch t {
	case MsgExperimental:
		return "PB-Experimental"
	case MsgPA:
		return "PB-PA"
	case MsgAssessmentResult:
		return "PB-Assessment-Result"
	case MsgAccessRecommendation:
		return "PB-Access-Recommendation"
	case MsgRemediationParameters:
		return "PB-Remediation-Parameters"
	case MsgError:
		return "PB-Error"
	case MsgLanguagePreference:
		return "PB-Language-Preference"
	case MsgReasonString:
		return "PB-Reason-String"
	}
	return "MessageType(" + strconv.FormatUint(uint64(t), 10) + ")"
}

// Message is one PB-TNC message (RFC 5793 §4.2): the header fields and the
// undecoded message value. The typed bodies (PA, Error, ...) convert to and
// from Message.
type Message struct {
	NoSkip bool
	Vendor uint32 // PB-TNC Vendor ID, 24 bits
	Type   MessageType
	Value  []byte
}

// Batch is one PB-TNC batch (RFC 5793 §4.1): header and messages.
type Batch struct {
	FromServer bool // the D bit: set when the PB-TNC Server sends
	Type       BatchType
	Messages   []Message
}

// AppendBinary appends the encoded batch to dst. It checks the batch type,
// the 24-bit vendor IDs, the reserved vendor ID and message type, and the
// 32-bit lengths; reserved bits are sent as zero.
func (b *Batch) AppendBinary(dst []byte) ([]byte, error) {
	if !b.Type.valid() {
		return dst, fmt.Errorf("%w: batch type %d", ErrEncode, b.Type)
	}
	total := uint64(BatchHeaderLen)
	for i := range b.Messages {
		m := &b.Messages[i]
		if m.Vendor >= reservedVendor {
			return dst, fmt.Errorf("%w: message %d: vendor ID %#x is reserved or exceeds 24 bits", ErrEncode, i, m.Vendor)
		}
		if uint32(m.Type) == reservedType {
			return dst, fmt.Errorf("%w: message %d: message type %#x is reserved", ErrEncode, i, uint32(m.Type))
		}
		total += MessageHeaderLen + uint64(len(m.Value))
	}
	if total > math.MaxUint32 {
		return dst, fmt.Errorf("%w: batch length %d exceeds 32 bits", ErrEncode, total)
	}
	dst = slices.Grow(dst, int(total))
	var d byte
	if b.FromServer {
		d = flagDirection
	}
	dst = append(dst, Version, d, 0, byte(b.Type))
	dst = binary.BigEndian.AppendUint32(dst, uint32(total))
	for i := range b.Messages {
		m := &b.Messages[i]
		var flags byte
		if m.NoSkip {
			flags = flagNoSkip
		}
		dst = append(dst, flags, byte(m.Vendor>>16), byte(m.Vendor>>8), byte(m.Vendor))
		dst = binary.BigEndian.AppendUint32(dst, uint32(m.Type))
		dst = binary.BigEndian.AppendUint32(dst, uint32(MessageHeaderLen+len(m.Value)))
		dst = append(dst, m.Value...)
	}
	return dst, nil
}

// MarshalBinary encodes the batch.
func (b *Batch) MarshalBinary() ([]byte, error) { return b.AppendBinary(nil) }

// UnmarshalBinary decodes the structure of a batch of any size: the header
// (version, batch type, length) and the framing of every message (§4.1,
// §4.2). It does not interpret message values; ParseBatch does. Message
// values are copied out of data. Errors are *Error with the PB-Error code
// and batch offset the receiver would report.
func (b *Batch) UnmarshalBinary(data []byte) error {
	h, pe := parseHeader(data, 0)
	if pe != nil {
		return pe
	}
	nb, pe := decodeMessages(data, h)
	if pe != nil {
		return pe
	}
	*b = *nb
	return nil
}

// ParseBatch decodes a received batch and applies the receiver's checks of
// RFC 5793 §4: the batch must not exceed maxSize (0 means
// DefaultMaxBatchSize); IETF messages must carry the right NOSKIP flag, be
// allowed in the batch type and have well-formed values; an unknown message
// with NOSKIP set is an Unsupported Mandatory Message. Unknown messages
// without NOSKIP stay in the batch (receivers skip them). Direction (the D
// bit) and state are checked by Client and Server, not here.
//
// Every error is an *Error carrying the PB-Error code and batch offset to
// report to the sender.
func ParseBatch(data []byte, maxSize uint32) (*Batch, error) {
	b, _, pe := parseBatch(data, maxSize)
	if pe != nil {
		return nil, pe
	}
	return b, nil
}

func parseBatch(data []byte, maxSize uint32) (*Batch, *content, *Error) {
	if maxSize == 0 {
		maxSize = DefaultMaxBatchSize
	}
	h, pe := parseHeader(data, maxSize)
	if pe != nil {
		return nil, nil, pe
	}
	b, pe := decodeMessages(data, h)
	if pe != nil {
		return nil, nil, pe
	}
	c, pe := validate(b)
	if pe != nil {
		return nil, nil, pe
	}
	return b, c, nil
}

type header struct {
	fromServer bool
	typ        BatchType
}

// parseHeader checks the batch header (§4.1). maxSize 0 means no limit.
func parseHeader(data []byte, maxSize uint32) (header, *Error) {
	if len(data) < BatchHeaderLen {
		return header{}, invalidParam(0, "batch of %d bytes is shorter than the %d-byte header", len(data), BatchHeaderLen)
	}
	if data[0] != Version {
		return header{}, versionNotSupported(data[0])
	}
	h := header{
		fromServer: data[1]&flagDirection != 0,
		typ:        BatchType(data[3] & batchTypeMask),
	}
	if !h.typ.valid() {
		return header{}, invalidParam(3, "unknown batch type %d", h.typ)
	}
	length := binary.BigEndian.Uint32(data[4:8])
	if maxSize != 0 && (length > maxSize || uint64(len(data)) > uint64(maxSize)) {
		return header{}, invalidParam(4, "batch length %d exceeds the limit of %d bytes", max(uint64(length), uint64(len(data))), maxSize)
	}
	if uint64(length) != uint64(len(data)) {
		return header{}, invalidParam(4, "batch length field %d but %d bytes received", length, len(data))
	}
	return h, nil
}

// decodeMessages checks the framing of every message (§4.2) and copies the
// message values out of data into one buffer owned by the batch.
func decodeMessages(data []byte, h header) (*Batch, *Error) {
	n := 0
	for off := BatchHeaderLen; off < len(data); {
		rest := len(data) - off
		if rest < MessageHeaderLen {
			return nil, invalidParam(uint32(off), "%d trailing bytes are shorter than a message header", rest)
		}
		vendor := uint32(data[off+1])<<16 | uint32(data[off+2])<<8 | uint32(data[off+3])
		if vendor == reservedVendor {
			return nil, invalidParam(uint32(off+1), "message vendor ID %#x is reserved", vendor)
		}
		if binary.BigEndian.Uint32(data[off+4:]) == reservedType {
			return nil, invalidParam(uint32(off+4), "message type %#x is reserved", uint32(reservedType))
		}
		length := binary.BigEndian.Uint32(data[off+8:])
		if length < MessageHeaderLen || uint64(length) > uint64(rest) {
			return nil, invalidParam(uint32(off+8), "message length %d outside %d..%d", length, MessageHeaderLen, rest)
		}
		if n++; n > MaxMessages {
			return nil, newError(ErrLocalError, "batch holds more than %d messages", MaxMessages)
		}
		off += int(length)
	}
	b := &Batch{FromServer: h.fromServer, Type: h.typ}
	if n == 0 {
		return b, nil
	}
	own := append([]byte(nil), data[BatchHeaderLen:]...)
	b.Messages = make([]Message, 0, n)
	for off := 0; off < len(own); {
		length := int(binary.BigEndian.Uint32(own[off+8:]))
		b.Messages = append(b.Messages, Message{
			NoSkip: own[off]&flagNoSkip != 0,
			Vendor: uint32(own[off+1])<<16 | uint32(own[off+2])<<8 | uint32(own[off+3]),
			Type:   MessageType(binary.BigEndian.Uint32(own[off+4:])),
			Value:  own[off+MessageHeaderLen : off+length : off+length],
		})
		off += length
	}
	return b, nil
}
