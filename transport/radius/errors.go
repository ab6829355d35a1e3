package radius

import (
	"errors"
	"strconv"

	radius "layeh.com/radius"
	"layeh.com/radius/rfc3576"
)

// Sentinel errors. Callers test them with errors.Is.
var (
	// ErrServerClosed is returned by Server.Serve after Server.Shutdown.
	ErrServerClosed = errors.New("radius: server closed")

	// ErrClientClosed is returned by Client.Exchange after Client.Close.
	ErrClientClosed = errors.New("radius: client closed")

	// ErrTimeout is wrapped by Client.Exchange when every try timed out
	// (RFC 5080 §2.2.1 retransmission behaviour).
	ErrTimeout = errors.New("radius: no reply")

	// ErrMalformed reports a packet that breaks RFC 2865 §3 (length) or
	// §5 (attribute format), or carries more than one Message-Authenticator.
	ErrMalformed = errors.New("radius: malformed packet")

	// ErrMissingMessageAuthenticator reports a packet without the
	// Message-Authenticator (RFC 2869 §5.14) this package requires.
	ErrMissingMessageAuthenticator = errors.New("radius: missing Message-Authenticator")

	// ErrBadMessageAuthenticator reports a Message-Authenticator that does
	// not verify (RFC 2869 §5.14, RFC 3579 §3.2).
	ErrBadMessageAuthenticator = errors.New("radius: bad Message-Authenticator")

	// ErrBadAuthenticator reports a Request Authenticator (RFC 2866 §3,
	// RFC 5176 §2.3) or Response Authenticator (RFC 2865 §3) that does not
	// verify.
	ErrBadAuthenticator = errors.New("radius: bad authenticator")

	// ErrUnsupportedCode reports a packet Code the operation does not
	// handle (RFC 2865 §3).
	ErrUnsupportedCode = errors.New("radius: unsupported code")

	// ErrNoSecret reports an operation that needs a shared secret
	// (RFC 2865 §3) but was given none.
	ErrNoSecret = errors.New("radius: no shared secret")

	// ErrUnexpectedReply reports a reply whose Identifier or Code does not
	// answer the request (RFC 2865 §3, §4).
	ErrUnexpectedReply = errors.New("radius: unexpected reply")

	// ErrNAK is matched (errors.Is) by every *NAKError.
	ErrNAK = errors.New("radius: NAK")
)

// NAKError is returned by Client.DynamicAuth when the NAS answers with a
// CoA-NAK or Disconnect-NAK (RFC 5176 §2.1, §2.2). ErrorCause is the first
// Error-Cause attribute of the NAK (RFC 5176 §3.6), 0 if it carried none.
type NAKError struct {
	Code       radius.Code
	ErrorCause rfc3576.ErrorCause
}

// Error implements error.
func (e *NAKError) Error() string {
	s := "radius: " + e.Code.String()
	if e.ErrorCause != 0 {
		s += " (Error-Cause " + strconv.FormatUint(uint64(e.ErrorCause), 10)
		if name, ok := rfc3576.ErrorCause_Strings[e.ErrorCause]; ok {
			s += " " + name
		}
		s += ")"
	}
	return s
}

// Is reports whether target is ErrNAK.
func (e *NAKError) Is(target error) bool { return target == ErrNAK }
