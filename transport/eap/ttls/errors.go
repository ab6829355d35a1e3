package ttls

import (
	"errors"
	"fmt"
)

// Sentinel errors callers test with errors.Is.
var (
	// ErrMalformed is wrapped by every error about bytes that do not parse: EAP-TTLS type-data
	// (RFC 5281 §9.1), AVPs (RFC 5281 §10.1), inner EAP packets.
	ErrMalformed = errors.New("ttls: malformed data")
	// ErrFragment is wrapped when the peer breaks the fragmentation rules of RFC 5281 §9.2.2:
	// a first fragment without a length, a length that changes or is exceeded, too many
	// fragments, data where an acknowledgement was due.
	ErrFragment = errors.New("ttls: fragmentation violated")
	// ErrTooLarge is wrapped when a TLS message or a conversation exceeds its configured cap.
	ErrTooLarge = errors.New("ttls: message too large")
	// ErrNoExtendedMasterSecret is wrapped when a TLS 1.2 handshake lacks the Extended Master
	// Secret (RFC 7627), without which no keys are exported.
	ErrNoExtendedMasterSecret = errors.New("ttls: TLS 1.2 without Extended Master Secret (RFC 7627)")
	// ErrStalled is wrapped when TLS neither asks for input nor ends within the step timeout.
	ErrStalled = errors.New("ttls: TLS engine stalled")
	// ErrClosed is returned after Close, and after a conversation ended.
	ErrClosed = errors.New("ttls: conversation closed")
	// ErrUnsupportedAVP is matched by *UnsupportedAVPError.
	ErrUnsupportedAVP = errors.New("ttls: unsupported mandatory AVP")
	// ErrPhase2 is wrapped when the phase 2 exchange goes wrong (not when it merely fails to
	// authenticate): AVPs missing or out of place, an inner EAP packet to discard.
	ErrPhase2 = errors.New("ttls: phase 2 protocol error")
)

// UnsupportedAVPError reports an AVP with the M (mandatory) bit set that the receiver does not
// support; RFC 5281 §10.1 makes the receiver fail the negotiation. It matches
// ErrUnsupportedAVP.
type UnsupportedAVPError struct {
	Code   uint32 // AVP Code
	Vendor uint32 // Vendor-ID, 0 for none
}

// Error names the AVP.
func (e *UnsupportedAVPError) Error() string {
	if e.Vendor != 0 {
		return fmt.Sprintf("ttls: unsupported mandatory AVP %d of vendor %d", e.Code, e.Vendor)
	}
	return fmt.Sprintf("ttls: unsupported mandatory AVP %d", e.Code)
}

// Is makes errors.Is(err, ErrUnsupportedAVP) true.
func (e *UnsupportedAVPError) Is(target error) bool { return target == ErrUnsupportedAVP }
