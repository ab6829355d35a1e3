package eventlog

import (
	"crypto"
	"errors"

	"github.com/google/go-attestation/attest"
)

// attestSecureBoot is go-attestation's view of Secure Boot.
type attestSecureBoot struct {
	alg     uint16
	ok      bool // attest.ParseSecurebootState accepted the events
	enabled bool
}

// attestParse parses log with go-attestation; nil when it cannot (a log that declares an SM3
// bank, for one: go-attestation v0.6.4 knows no SM3).
func attestParse(log []byte) *attest.EventLog {
	el, err := attest.ParseEventLog(log)
	if err != nil {
		return nil
	}
	return el
}

// attestResult is what go-attestation says about a bank.
type attestResult struct {
	// disagree lists PCRs our replay matched but go-attestation's did not.
	disagree []int
	// secureBoot is set when secureBoot was asked for.
	secureBoot *attestSecureBoot
}

// attestVerify replays the PCRs our replay matched in bank alg (sha1 or sha256) with
// go-attestation ((*attest.EventLog).Verify on the log attestParse parsed) and, when wantSB is
// set, parses the Secure Boot state from the events it verified (attest.ParseSecurebootState).
// It returns nil when there is nothing to check or go-attestation fails for another reason
// than a replay mismatch.
func attestVerify(el *attest.EventLog, alg uint16, quoted map[int][]byte, matched *[NumPCRs]bool, wantSB bool) *attestResult {
	var h crypto.Hash
	switch alg {
	case AlgSHA1:
		h = crypto.SHA1
	case AlgSHA256:
		h = crypto.SHA256
	default:
		return nil
	}
	var pcrs []attest.PCR
	for idx, ok := range matched {
		if ok {
			pcrs = append(pcrs, attest.PCR{Index: idx, Digest: quoted[idx], DigestAlg: h})
		}
	}
	if len(pcrs) == 0 {
		return nil
	}
	events, err := el.Verify(pcrs)
	if err != nil {
		var re attest.ReplayError
		if errors.As(err, &re) {
			return &attestResult{disagree: re.InvalidPCRs}
		}
		return nil
	}
	r := &attestResult{}
	if wantSB {
		st, err := attest.ParseSecurebootState(events)
		r.secureBoot = &attestSecureBoot{alg: alg, ok: err == nil, enabled: err == nil && st.Enabled}
	}
	return r
}
