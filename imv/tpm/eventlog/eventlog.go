package eventlog

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"hash"

	"github.com/emmansun/gmsm/sm3"
)

// MaxLogSize caps the size in bytes of a measured-boot log accepted by Replay and Compute.
const MaxLogSize = 16 << 20

// Parser caps. A real firmware log holds a few hundred to a few thousand events; the largest
// single events are the Secure Boot databases (db, dbx) at tens of KiB.
const (
	// MaxEvents caps the number of events in one log.
	MaxEvents = 100000
	// MaxEventSize caps the event data of one event.
	MaxEventSize = 1 << 20
	// MaxAlgorithms caps numberOfAlgorithms in the Spec ID event and the digest count of
	// TPML_DIGEST_VALUES in one event.
	MaxAlgorithms = 16
	// MaxDigestSize caps the digest size the Spec ID event may declare for an algorithm.
	MaxDigestSize = 64
	// NumPCRs is the number of PCRs of a PC Client TPM (PC Client Platform TPM Profile, 4.6).
	NumPCRs = 24
)

// TPM_ALG_ID values of the PCR banks (TCG Algorithm Registry, section 6).
const (
	AlgSHA1   uint16 = 0x0004
	AlgSHA256 uint16 = 0x000B
	AlgSHA384 uint16 = 0x000C
	AlgSHA512 uint16 = 0x000D
	AlgSM3256 uint16 = 0x0012
)

// ErrMalformed is wrapped by every error about a log that cannot be parsed: a truncated
// structure, a length that lies, an unknown algorithm in an event, a bad Spec ID event.
var ErrMalformed = errors.New("eventlog: malformed log")

// ErrTooLarge is wrapped by the errors for a log larger than MaxLogSize or one that exceeds
// MaxEvents, MaxEventSize or MaxAlgorithms.
var ErrTooLarge = errors.New("eventlog: log too large")

// BankName returns the name this project uses for a PCR bank ("sha1", "sha256", "sha384",
// "sha512", "sm3_256"), or "alg0x…" for other TPM_ALG_IDs.
func BankName(alg uint16) string {
	switch alg {
	case AlgSHA1:
		return "sha1"
	case AlgSHA256:
		return "sha256"
	case AlgSHA384:
		return "sha384"
	case AlgSHA512:
		return "sha512"
	case AlgSM3256:
		return "sm3_256"
	}
	const hexdig = "0123456789abcdef"
	return "alg0x" + string([]byte{hexdig[alg>>12], hexdig[alg>>8&15], hexdig[alg>>4&15], hexdig[alg&15]})
}

// hashFor returns the hash function of a bank, or nil when this package cannot replay it.
func hashFor(alg uint16) func() hash.Hash {
	switch alg {
	case AlgSHA1:
		return sha1.New
	case AlgSHA256:
		return sha256.New
	case AlgSHA384:
		return sha512.New384
	case AlgSHA512:
		return sha512.New
	case AlgSM3256:
		return sm3.New
	}
	return nil
}

// digestSize returns the digest size of a known bank algorithm, 0 for unknown ones.
func digestSize(alg uint16) int {
	switch alg {
	case AlgSHA1:
		return sha1.Size
	case AlgSHA256, AlgSM3256:
		return 32
	case AlgSHA384:
		return 48
	case AlgSHA512:
		return 64
	}
	return 0
}

// Compute parses log (SHA-1 format or crypto-agile, TCG PC Client Platform Firmware Profile
// 10.2) and replays every bank it can hash (sha1, sha256, sha384, sha512, sm3_256) without
// checking against quoted values: bank TPM_ALG_ID → PCR index → value. A PCR appears only if
// the log extends it (or, for PCR 0, sets its locality); a PCR of a bank for which some event
// lacks a digest is left out. The maps are fresh; the caller may keep and modify them.
func Compute(log []byte) (map[uint16]map[int][]byte, error) {
	l, err := parse(log)
	if err != nil {
		return nil, err
	}
	return l.replay().values(), nil
}
