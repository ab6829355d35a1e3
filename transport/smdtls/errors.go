package smdtls

import (
	"errors"
	"os"
	"strconv"
)

// Sentinel errors, for errors.Is.
var (
	// ErrAuthFailed reports that handshake records failed authentication:
	// the two sides derived different keys, which with PSK key exchange
	// means they hold different pre-shared keys (RFC 4279 §2, alert
	// bad_record_mac / decrypt_error).
	ErrAuthFailed = errors.New("smdtls: handshake authentication failed (pre-shared keys differ)")

	// ErrUnknownIdentity reports a PSK identity the server does not know
	// or has revoked (RFC 4279 §2, alert unknown_psk_identity). A PSKStore
	// returns it (wrapped) for identities it refuses.
	ErrUnknownIdentity = errors.New("smdtls: unknown or revoked PSK identity")

	// ErrNoSharedSuite reports that the peers share no cipher suite: the
	// peer does not speak TLS_PSK_WITH_SM4_GCM_SM3 (alert
	// insufficient_security or handshake_failure, RFC 5246 §7.2.2).
	ErrNoSharedSuite = errors.New("smdtls: no shared cipher suite")

	// ErrTooLarge reports a message larger than the configured maximum,
	// on either side: a local write, or a peer's message whose announced
	// length exceeds the reassembly cap (the connection is then closed).
	ErrTooLarge = errors.New("smdtls: message too large")

	// ErrMalformed reports input that does not follow the wire layout of
	// a record, fragment or handshake message.
	ErrMalformed = errors.New("smdtls: malformed input")

	// ErrPeerUnreachable reports that a message was not acknowledged
	// after repeated retransmissions.
	ErrPeerUnreachable = errors.New("smdtls: peer does not acknowledge")
)

// TLS alert descriptions (RFC 5246 §7.2, RFC 4279 §2) this package names.
const (
	AlertCloseNotify          = 0
	AlertBadRecordMAC         = 20
	AlertHandshakeFailure     = 40
	AlertDecryptError         = 51
	AlertInsufficientSecurity = 71
	AlertInternalError        = 80
	AlertUnknownPSKIdentity   = 115
)

// AlertError is a TLS alert (RFC 5246 §7.2) that ended a handshake or a
// connection. errors.Is maps it to the sentinels: bad_record_mac and
// decrypt_error to ErrAuthFailed, unknown_psk_identity to
// ErrUnknownIdentity, insufficient_security and handshake_failure to
// ErrNoSharedSuite.
type AlertError struct {
	// Level is 1 (warning) or 2 (fatal).
	Level uint8
	// Description is the alert description code.
	Description uint8
	// Remote is true when the peer sent the alert.
	Remote bool
}

// Error returns the alert in words.
func (e *AlertError) Error() string {
	who := "local"
	if e.Remote {
		who = "peer"
	}
	lvl := "warning"
	if e.Level == 2 {
		lvl = "fatal"
	}
	return "smdtls: " + who + " sent " + lvl + " alert " + alertName(e.Description)
}

// Is reports whether the alert means target (see the type comment).
func (e *AlertError) Is(target error) bool {
	switch target {
	case ErrAuthFailed:
		return e.Description == AlertBadRecordMAC || e.Description == AlertDecryptError
	case ErrUnknownIdentity:
		return e.Description == AlertUnknownPSKIdentity
	case ErrNoSharedSuite:
		return e.Description == AlertInsufficientSecurity || e.Description == AlertHandshakeFailure
	}
	return false
}

func alertName(d uint8) string {
	switch d {
	case AlertCloseNotify:
		return "close_notify"
	case AlertBadRecordMAC:
		return "bad_record_mac"
	case AlertHandshakeFailure:
		return "handshake_failure"
	case AlertDecryptError:
		return "decrypt_error"
	case AlertInsufficientSecurity:
		return "insufficient_security"
	case AlertInternalError:
		return "internal_error"
	case AlertUnknownPSKIdentity:
		return "unknown_psk_identity"
	}
	return "(" + strconv.Itoa(int(d)) + ")"
}

// timeoutError is returned when a read or write deadline passes. It is a
// net.Error with Timeout() true and wraps os.ErrDeadlineExceeded.
type timeoutError struct{ op string }

func (e *timeoutError) Error() string   { return "smdtls: " + e.op + ": i/o timeout" }
func (e *timeoutError) Timeout() bool   { return true }
func (e *timeoutError) Temporary() bool { return true }
func (e *timeoutError) Unwrap() error   { return os.ErrDeadlineExceeded }
