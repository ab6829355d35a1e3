package pdp

import (
	"crypto/sha256"
	"encoding/binary"
)

// decisionDigest identifies what rec decides: every field but the facts
// and the counters (FirstSeen, Assessments, DecidedAt), plus whether
// DecidedAt is zero, which marks a posture record stale. Two records with
// the same digest give the endpoint the same role, for the same reasons,
// under the same policy; BoltStore writes the second one's facts and
// counters behind. The facts are left out because some change on every
// assessment (a TPM's clock) while the decision does not.
func decisionDigest(rec *Record) [sha256.Size]byte {
	var buf [512]byte
	b := buf[:0]
	for _, s := range [...]string{rec.ID, rec.MAC, rec.Identity, rec.Channel, rec.Remote,
		rec.Role, rec.Rule, rec.Recommendation, rec.Policy} {
		b = appendDigestString(b, s)
	}
	for _, l := range [...][]string{rec.Groups, rec.Reasons, rec.Remediation} {
		b = binary.AppendUvarint(b, uint64(len(l)))
		for _, s := range l {
			b = appendDigestString(b, s)
		}
	}
	if rec.DecidedAt.IsZero() {
		b = append(b, 'z')
	}
	return sha256.Sum256(b)
}

// appendDigestString appends s with its length, so that no two different
// records share an encoding.
func appendDigestString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}
