package tnc

import (
	"errors"
	"fmt"

	"trustnac/transport/eap"
)

// Sentinel errors; callers test them with errors.Is.
var (
	// ErrMalformed: type-data that does not parse.
	ErrMalformed = errors.New("tnc: malformed packet")
	// ErrVersion: the other side speaks another PT-EAP or EAP-TNC version
	// (RFC 7171 §4.1). Reported as a *VersionError.
	ErrVersion = errors.New("tnc: unsupported version")
	// ErrTNCCS11: the batch is an IF-TNCCS 1.1 XML TNCCS-Batch, which this
	// package does not speak.
	ErrTNCCS11 = errors.New("tnc: IF-TNCCS 1.1 not supported")
	// ErrTooLarge: a batch above the reassembly cap (MaxMessage), announced
	// in L or reached by the data.
	ErrTooLarge = errors.New("tnc: batch exceeds the size limit")
	// ErrFragment: EAP-TNC fragments that break the rules: a first fragment
	// without L, data beyond L, a changed L, an empty fragment, a message
	// shorter than its L.
	ErrFragment = errors.New("tnc: invalid fragmentation")
	// ErrTooManyFragments: more fragments of one batch than MaxFragments.
	ErrTooManyFragments = errors.New("tnc: too many fragments")
	// ErrProtocol: a packet that has no place in the exchange (S from the
	// peer or a second S, data while a fragment acknowledgement is due, an
	// empty message where a batch is due, a packet after the end).
	ErrProtocol = errors.New("tnc: protocol violation")
	// ErrSession: the PB-TNC session ended without a result (a PB-TNC
	// error on either side, or a CLOSE before any RESULT). The PB-TNC error,
	// if any, is wrapped as well.
	ErrSession = errors.New("tnc: PB-TNC session failed")
	// ErrConfig: the method was configured with an EAP type other than
	// TypePTEAP or TypeTNC.
	ErrConfig = errors.New("tnc: invalid configuration")
)

// VersionError reports a packet carrying a version other than the one this
// side speaks (RFC 7171 §4.1). It matches ErrVersion.
type VersionError struct {
	Type eap.Type
	Got  uint8
	Want uint8
}

// Error describes the version mismatch.
func (e *VersionError) Error() string {
	return fmt.Sprintf("tnc: %s version %d, want %d", e.Type, e.Got, e.Want)
}

// Unwrap returns ErrVersion.
func (e *VersionError) Unwrap() error { return ErrVersion }
