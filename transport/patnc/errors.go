package patnc

import (
	"errors"
	"fmt"
)

// Sentinel errors callers test with errors.Is.
var (
	// ErrUnknownAttribute reports an attribute DecodeAttribute has no typed
	// value for (not IETF types 1–12 nor trustnac types 1–7); the caller keeps
	// the raw Attribute.
	ErrUnknownAttribute = errors.New("patnc: unknown attribute type")

	// ErrMalformed is wrapped by every error about bytes that do not follow
	// the layouts of RFC 5792 §4.1 and §4.2.
	ErrMalformed = errors.New("patnc: malformed")

	// ErrUnsupportedVersion reports a PA-TNC message version other than 1
	// (RFC 5792 §4.1).
	ErrUnsupportedVersion = errors.New("patnc: unsupported version")

	// ErrTooManyAttributes reports a message with more attributes than the
	// parser's cap.
	ErrTooManyAttributes = errors.New("patnc: too many attributes")

	// ErrInvalidValue reports a value that cannot be encoded: a vendor ID
	// over 24 bits, a string over its length field, a value out of range.
	ErrInvalidValue = errors.New("patnc: invalid value")
)

// ParseError is a failure to parse a PA-TNC message or attribute value. It
// carries the IETF PA-TNC error code to answer with (RFC 5792 §4.2.8):
// ErrInvalidParameter or ErrVersionNotSupported.
//
// Offset counts octets from the start of what was parsed: the message for
// Message.UnmarshalBinary and ParseMessage and (*Message).DecodeAt, the
// attribute value for DecodeAttribute and the values' UnmarshalBinary.
type ParseError struct {
	Code   uint32 // ErrInvalidParameter or ErrVersionNotSupported
	Offset uint32 // octet offset of the field in error
	Err    error  // what is wrong; wraps ErrMalformed or ErrUnsupportedVersion
}

// Error implements error.
func (e *ParseError) Error() string {
	what := "invalid parameter"
	if e.Code == ErrVersionNotSupported {
		what = "version not supported"
	}
	return fmt.Sprintf("patnc: %s at offset %d: %v", what, e.Offset, e.Err)
}

// Unwrap returns the underlying cause.
func (e *ParseError) Unwrap() error { return e.Err }

// PAError returns the PA-TNC Error attribute to answer the faulty message
// with (RFC 5792 §4.2.8): Version Not Supported listing version 1 as both
// the maximum and the minimum, or Invalid Parameter carrying Offset.
// msgHeader is the received message's first 8 octets (shorter input is
// padded with zeros).
func (e *ParseError) PAError(msgHeader []byte) *PAError {
	if e.Code == ErrVersionNotSupported {
		return NewVersionNotSupportedError(msgHeader, Version, Version)
	}
	return NewInvalidParameterError(msgHeader, e.Offset)
}

// malformed builds an Invalid Parameter ParseError wrapping ErrMalformed.
func malformed(off int, format string, args ...any) *ParseError {
	return &ParseError{
		Code:   ErrInvalidParameter,
		Offset: clampOffset(off),
		Err:    fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...),
	}
}

// invalid builds an encoding error wrapping ErrInvalidValue.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidValue}, args...)...)
}

// clampOffset converts a non-negative int offset to the 32-bit wire field.
func clampOffset(off int) uint32 {
	if off < 0 {
		return 0
	}
	if uint64(off) > 0xffffffff {
		return 0xffffffff
	}
	return uint32(off)
}
