package pttls

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
)

// Sentinel errors. Callers test them with errors.Is; protocol errors also
// carry an *Error with the PT-TLS error code (errors.As).
var (
	// ErrShort reports that the input ends before a whole message: the
	// caller should read more bytes and parse again.
	ErrShort = errors.New("pttls: incomplete message")

	// ErrTooLarge reports a Message Length above the receiver's maximum
	// message size (RFC 6876 §3.5). The body is never read.
	ErrTooLarge = errors.New("pttls: message too large")

	// ErrMalformed reports a message or message value whose layout is
	// wrong (RFC 6876 §3.9, Malformed Message).
	ErrMalformed = errors.New("pttls: malformed message")

	// ErrUnexpected reports a message type that is not allowed in the
	// current phase (RFC 6876 §3.6, Invalid Message).
	ErrUnexpected = errors.New("pttls: unexpected message")

	// ErrVersion reports that the peers share no PT-TLS version
	// (RFC 6876 §3.7).
	ErrVersion = errors.New("pttls: no common PT-TLS version")

	// ErrSASLFailed reports that SASL client authentication did not
	// succeed (RFC 6876 §3.8).
	ErrSASLFailed = errors.New("pttls: SASL authentication failed")

	// ErrNoSASLMechanism reports that the client supports none of the SASL
	// mechanisms the server offered (RFC 6876 §3.8.7).
	ErrNoSASLMechanism = errors.New("pttls: no common SASL mechanism")

	// ErrServerClosed is returned by Server.Serve after Shutdown.
	ErrServerClosed = errors.New("pttls: server closed")
)

// ErrorCode is a PT-TLS error code in the IETF namespace (RFC 6876 §3.9,
// IANA "PT-TLS Error Codes").
type ErrorCode uint32

// IETF PT-TLS error codes (RFC 6876 §3.9).
const (
	CodeReserved            ErrorCode = 0
	CodeMalformedMessage    ErrorCode = 1
	CodeVersionNotSupported ErrorCode = 2
	CodeTypeNotSupported    ErrorCode = 3
	CodeInvalidMessage      ErrorCode = 4
	CodeSASLMechanismError  ErrorCode = 5
	CodeInvalidParameter    ErrorCode = 6
)

// String returns the RFC name of an IETF error code.
func (c ErrorCode) String() string {
	switch c {
	case CodeReserved:
		return "Reserved"
	case CodeMalformedMessage:
		return "Malformed Message"
	case CodeVersionNotSupported:
		return "Version Not Supported"
	case CodeTypeNotSupported:
		return "Type Not Supported"
	case CodeInvalidMessage:
		return "Invalid Message"
	case CodeSASLMechanismError:
		return "SASL Mechanism Error"
	case CodeInvalidParameter:
		return "Invalid Parameter"
	}
	return "ErrorCode(" + strconv.FormatUint(uint64(c), 10) + ")"
}

// MaxErrorCopy is the most bytes of the offending message a PT-TLS Error
// message carries (RFC 6876 §3.9).
const MaxErrorCopy = 1024

// errorValueLen is the fixed part of a PT-TLS Error value: reserved (8 bits),
// Error Code Vendor ID (24 bits), Error Code (32 bits).
const errorValueLen = 8

// Error is a PT-TLS Error message (RFC 6876 §3.9) and the Go error for a
// PT-TLS protocol failure. Remote tells an error the peer sent from one this
// side detected (and sent to the peer). Use errors.As to get at the code.
//
// Wire layout of the message value:
//
//	Reserved (8) | Error Code Vendor ID (24) | Error Code (32) | copy of the original message (≤ 1024 bytes)
type Error struct {
	// Vendor is the Error Code Vendor ID (24 bits); VendorIETF for the
	// codes in this package.
	Vendor uint32
	// Code is the error code in Vendor's namespace.
	Code ErrorCode
	// Header is the copy of the message that caused the error: its 16-byte
	// header and up to MaxErrorCopy bytes in all. It may be empty when
	// the error is not about one message.
	Header []byte
	// Remote is true for an Error the peer sent, false for one detected
	// here.
	Remote bool

	err error // the local cause, for errors detected here
}

// Error returns a description of the PT-TLS error.
func (e *Error) Error() string {
	name := e.Code.String()
	if e.Vendor != VendorIETF {
		name = fmt.Sprintf("vendor %d code %d", e.Vendor, uint32(e.Code))
	}
	var about string
	if len(e.Header) >= HeaderLen {
		about = fmt.Sprintf(" (about %v message ID %d)",
			MessageType(binary.BigEndian.Uint32(e.Header[4:8])), binary.BigEndian.Uint32(e.Header[12:16]))
	}
	if e.Remote {
		return "pttls: peer sent error: " + name + about
	}
	if e.err != nil {
		return "pttls: " + name + about + ": " + e.err.Error()
	}
	return "pttls: " + name + about
}

// Unwrap returns the local cause of the error, if any.
func (e *Error) Unwrap() error { return e.err }

// AppendBinary appends the PT-TLS Error message value (not the PT-TLS
// header) to dst. The copy of the original message is cut to MaxErrorCopy
// bytes (RFC 6876 §3.9).
func (e *Error) AppendBinary(dst []byte) ([]byte, error) {
	if e.Vendor > maxVendor {
		return dst, fmt.Errorf("pttls: error vendor ID %#x does not fit in 24 bits", e.Vendor)
	}
	dst = binary.BigEndian.AppendUint32(dst, e.Vendor) // reserved byte is zero
	dst = binary.BigEndian.AppendUint32(dst, uint32(e.Code))
	h := e.Header
	if len(h) > MaxErrorCopy {
		h = h[:MaxErrorCopy]
	}
	return append(dst, h...), nil
}

// UnmarshalBinary decodes a PT-TLS Error message value. The reserved bits are
// ignored; a copy longer than MaxErrorCopy is cut to MaxErrorCopy. The
// decoded Error has Remote set.
func (e *Error) UnmarshalBinary(b []byte) error {
	if len(b) < errorValueLen {
		return malformed("PT-TLS Error value of %d bytes, want at least %d", len(b), errorValueLen)
	}
	copyLen := min(len(b)-errorValueLen, MaxErrorCopy)
	*e = Error{
		Vendor: binary.BigEndian.Uint32(b[0:4]) & maxVendor,
		Code:   ErrorCode(binary.BigEndian.Uint32(b[4:8])),
		Remote: true,
	}
	if copyLen > 0 {
		e.Header = append([]byte(nil), b[errorValueLen:errorValueLen+copyLen]...)
	}
	return nil
}

// protoError builds a local *Error with an IETF code, a copy of the
// offending message and a cause.
func protoError(code ErrorCode, offending []byte, cause error) *Error {
	e := &Error{Vendor: VendorIETF, Code: code, err: cause}
	if len(offending) > 0 {
		e.Header = append([]byte(nil), offending[:min(len(offending), MaxErrorCopy)]...)
	}
	return e
}

// malformed returns a local Malformed Message error wrapping ErrMalformed.
func malformed(format string, args ...any) *Error {
	return protoError(CodeMalformedMessage, nil, fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...))
}

// invalidParameter returns a local Invalid Parameter error wrapping
// ErrMalformed.
func invalidParameter(format string, args ...any) *Error {
	return protoError(CodeInvalidParameter, nil, fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...))
}
