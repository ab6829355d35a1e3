package pbtnc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Sentinel errors callers test with errors.Is.
var (
	// ErrPeerError marks an error that reports a PB-Error message received
	// from the peer (RFC 5793 §4.9). The *Error the peer sent is reachable
	// with errors.As.
	ErrPeerError = errors.New("pbtnc: peer sent a PB-Error")
	// ErrClosed is returned by Step once the session is in the End state.
	ErrClosed = errors.New("pbtnc: session ended")
	// ErrState is returned when a method is called in a state where the
	// RFC 5793 §3.2 state machine does not allow the batch it would send.
	ErrState = errors.New("pbtnc: batch not allowed in this state")
	// ErrEncode is wrapped by the encoders when a field does not fit its
	// wire format (a 24-bit vendor ID above 0xFFFFFF, a reserved value,
	// a string that is not valid UTF-8, ...).
	ErrEncode = errors.New("pbtnc: cannot encode")
	// ErrBatchTooLarge is wrapped when a batch to send exceeds
	// Config.MaxBatchSize; the session ends with a fatal Local Error.
	ErrBatchTooLarge = errors.New("pbtnc: batch exceeds the maximum batch size")
	// ErrTooManyRounds is wrapped when a handshake exceeds Config.MaxRounds;
	// the session ends with a fatal Local Error.
	ErrTooManyRounds = errors.New("pbtnc: too many rounds in one handshake")
	// ErrHandler is wrapped when the ClientHandler or ServerHandler fails;
	// the session ends with a fatal Local Error.
	ErrHandler = errors.New("pbtnc: handler failed")
)

// ErrorCode is a PB-TNC error code (RFC 5793 §4.9, IANA "PB-TNC Error
// Codes"). Codes are scoped by Error.Vendor; the constants are IETF codes.
type ErrorCode uint16

// IETF PB-TNC error codes (RFC 5793 §4.9).
const (
	// ErrUnexpectedBatchType: the batch type is not allowed in the
	// receiver's state or from the sender's side.
	ErrUnexpectedBatchType ErrorCode = 0
	// ErrInvalidParameter: a field is malformed; Error.Offset locates it.
	ErrInvalidParameter ErrorCode = 1
	// ErrLocalError: the sender of the PB-Error failed internally.
	ErrLocalError ErrorCode = 2
	// ErrUnsupportedMandatoryMessage: a message with NOSKIP set has a
	// vendor/type the receiver does not support; Error.Header copies it.
	ErrUnsupportedMandatoryMessage ErrorCode = 3
	// ErrVersionNotSupported: the batch version is not supported;
	// Error.MaxVersion/MinVersion give the supported range.
	ErrVersionNotSupported ErrorCode = 4
)

// String returns the IANA name of an IETF error code.
func (c ErrorCode) String() string {
	switch c {
	case ErrUnexpectedBatchType:
		return "Unexpected Batch Type"
	case ErrInvalidParameter:
		return "Invalid Parameter"
	case ErrLocalError:
		return "Local Error"
	case ErrUnsupportedMandatoryMessage:
		return "Unsupported Mandatory Message"
	case ErrVersionNotSupported:
		return "Version Not Supported"
	}
	return "ErrorCode(" + strconv.Itoa(int(c)) + ")"
}

const (
	errorFlagFatal = 0x80
	errorBodyLen   = 8 // flags, vendor, code, reserved (RFC 5793 §4.9)
)

// Error is the body of a PB-Error message (RFC 5793 §4.9) and also the Go
// error type for PB-TNC protocol errors: Step and ParseBatch return an
// *Error describing what the receiver detected (and sends back), reachable
// with errors.As.
//
// Error Parameters (RFC 5793 §4.9.1–§4.9.3) are decoded by code for the
// IETF vendor: Invalid Parameter carries Offset (32 bits); Version Not
// Supported carries BadVersion, MaxVersion and MinVersion; Unsupported
// Mandatory Message carries Header, the first 8 octets (Flags, PB-TNC
// Vendor ID, PB-TNC Message Type) of the offending message. Parameters of
// other codes and vendors are kept verbatim in Params.
type Error struct {
	Fatal                  bool
	Vendor                 uint32 // Error Code Vendor ID, 24 bits
	Code                   ErrorCode
	Offset                 uint32 // Invalid Parameter: batch offset of the bad field
	BadVersion             uint8  // Version Not Supported: the version received
	MaxVersion, MinVersion uint8  // Version Not Supported: the versions supported
	Header                 []byte // Unsupported Mandatory Message: copy of the message header
	Params                 []byte // Error Parameters of other codes and vendors

	detail string // local explanation, never sent
}

// Error describes the PB-Error.
func (e *Error) Error() string { return "pbtnc: " + e.describe() }

func (e *Error) describe() string {
	var sb strings.Builder
	if e.Fatal {
		sb.WriteString("fatal ")
	}
	if e.Vendor == VendorIETF {
		sb.WriteString(e.Code.String())
		switch e.Code {
		case ErrInvalidParameter:
			fmt.Fprintf(&sb, " at offset %d", e.Offset)
		case ErrVersionNotSupported:
			fmt.Fprintf(&sb, " (version %d, supported %d..%d)", e.BadVersion, e.MinVersion, e.MaxVersion)
		case ErrUnsupportedMandatoryMessage:
			if len(e.Header) >= 8 {
				fmt.Fprintf(&sb, " (vendor %#x type %d)",
					uint32(e.Header[1])<<16|uint32(e.Header[2])<<8|uint32(e.Header[3]),
					binary.BigEndian.Uint32(e.Header[4:8]))
			}
		}
	} else {
		fmt.Fprintf(&sb, "PB-Error vendor %#x code %d", e.Vendor, e.Code)
	}
	if e.detail != "" {
		sb.WriteString(": ")
		sb.WriteString(e.detail)
	}
	return sb.String()
}

// Is reports whether target is an *Error with the same vendor and code, so
// that errors.Is(err, &Error{Code: ErrInvalidParameter}) matches any
// Invalid Parameter error.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Vendor == e.Vendor && t.Code == e.Code
}

// AppendBinary appends the PB-Error message value (RFC 5793 §4.9).
func (e Error) AppendBinary(dst []byte) ([]byte, error) {
	if e.Vendor > maxVendor {
		return dst, fmt.Errorf("%w: PB-Error vendor ID %#x exceeds 24 bits", ErrEncode, e.Vendor)
	}
	var flags byte
	if e.Fatal {
		flags = errorFlagFatal
	}
	dst = append(dst, flags, byte(e.Vendor>>16), byte(e.Vendor>>8), byte(e.Vendor))
	dst = binary.BigEndian.AppendUint16(dst, uint16(e.Code))
	dst = append(dst, 0, 0)
	if e.Vendor == VendorIETF {
		switch e.Code {
		case ErrInvalidParameter:
			return binary.BigEndian.AppendUint32(dst, e.Offset), nil
		case ErrVersionNotSupported:
			return append(dst, e.BadVersion, e.MaxVersion, e.MinVersion, 0), nil
		case ErrUnsupportedMandatoryMessage:
			return append(dst, e.Header...), nil
		}
	}
	return append(dst, e.Params...), nil
}

// UnmarshalBinary decodes a PB-Error message value (RFC 5793 §4.9). On
// failure it returns an *Error whose Offset is relative to data.
func (e *Error) UnmarshalBinary(data []byte) error {
	if pe := e.unmarshal(data, false); pe != nil {
		return pe
	}
	return nil
}

func (e *Error) unmarshal(data []byte, alias bool) *Error {
	if len(data) < errorBodyLen {
		return invalidParam(0, "PB-Error value is %d bytes, shorter than %d", len(data), errorBodyLen)
	}
	out := Error{
		Fatal:  data[0]&errorFlagFatal != 0,
		Vendor: uint32(data[1])<<16 | uint32(data[2])<<8 | uint32(data[3]),
		Code:   ErrorCode(binary.BigEndian.Uint16(data[4:6])),
	}
	params := data[errorBodyLen:]
	switch {
	case out.Vendor == VendorIETF && out.Code == ErrInvalidParameter:
		if len(params) != 4 {
			return invalidParam(errorBodyLen, "Invalid Parameter error needs a 4-byte offset, got %d bytes", len(params))
		}
		out.Offset = binary.BigEndian.Uint32(params)
	case out.Vendor == VendorIETF && out.Code == ErrVersionNotSupported:
		if len(params) != 4 {
			return invalidParam(errorBodyLen, "Version Not Supported error needs 4 bytes of parameters, got %d", len(params))
		}
		out.BadVersion, out.MaxVersion, out.MinVersion = params[0], params[1], params[2]
	case out.Vendor == VendorIETF && out.Code == ErrUnsupportedMandatoryMessage:
		out.Header = cloneOrAlias(params, alias)
	default:
		out.Params = cloneOrAlias(params, alias)
	}
	*e = out
	return nil
}

// Message returns the PB-Error as a PB-TNC message; NOSKIP is set as
// RFC 5793 §4.9 requires. An unencodable vendor ID yields an empty value;
// use AppendBinary to detect it.
func (e Error) Message() Message {
	v, _ := e.AppendBinary(nil)
	return Message{NoSkip: true, Vendor: VendorIETF, Type: MsgError, Value: v}
}

func newError(code ErrorCode, format string, args ...any) *Error {
	return &Error{Fatal: true, Code: code, detail: fmt.Sprintf(format, args...)}
}

func invalidParam(offset uint32, format string, args ...any) *Error {
	e := newError(ErrInvalidParameter, format, args...)
	e.Offset = offset
	return e
}

func versionNotSupported(bad uint8) *Error {
	return &Error{Fatal: true, Code: ErrVersionNotSupported, BadVersion: bad,
		MaxVersion: Version, MinVersion: Version}
}

// unsupportedMandatory builds the error for a NOSKIP message this side does
// not support, copying the first 8 octets of its header.
func unsupportedMandatory(m *Message, offset uint32) *Error {
	h := make([]byte, 8)
	h[0] = flagNoSkip
	h[1], h[2], h[3] = byte(m.Vendor>>16), byte(m.Vendor>>8), byte(m.Vendor)
	binary.BigEndian.PutUint32(h[4:], uint32(m.Type))
	e := newError(ErrUnsupportedMandatoryMessage, "message at offset %d", offset)
	e.Header = h
	return e
}

// peerError reports PB-Errors the peer sent; it unwraps to ErrPeerError and
// to the first (fatal, if any) *Error received.
type peerError struct {
	e *Error
}

func (p *peerError) Error() string   { return "pbtnc: peer sent " + p.e.describe() }
func (p *peerError) Unwrap() []error { return []error{ErrPeerError, p.e} }

// orNil returns p as an error, or a nil error for a nil p.
func (p *peerError) orNil() error {
	if p == nil {
		return nil
	}
	return p
}

func cloneOrAlias(b []byte, alias bool) []byte {
	if alias || len(b) == 0 {
		if len(b) == 0 {
			return nil
		}
		return b[:len(b):len(b)]
	}
	return append([]byte(nil), b...)
}
