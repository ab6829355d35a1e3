// Package imv holds the PDP side of TNC assessment: the Verifier interface
// that Integrity Measurement Verifiers implement (after TCG IF-IMV), their
// results (facts for the policy, a recommendation, reasons), and how the
// results of several verifiers combine.
package imv

import (
	"context"

	"trustnac/transport/patnc"
	"trustnac/transport/pbtnc"
)

// Verifier is an Integrity Measurement Verifier: it checks one kind of
// evidence and speaks one PA subtype with the collector of the same subtype.
type Verifier interface {
	// Name is the verifier's short name and the policy namespace of its
	// facts: "os", "tpm", "ima", "vm".
	Name() string
	// Subtype is the PA subtype of the messages it sends and receives.
	Subtype() pbtnc.PASubtype
	// NewSession starts assessing one endpoint in one handshake.
	NewSession(ctx context.Context, ep Endpoint) (Session, error)
}

// Endpoint is what the PDP knows of the endpoint under assessment before any
// evidence arrives.
type Endpoint struct {
	ID       string // stable endpoint ID the PDP keys its records by
	MAC      string // lower-case colon form, "" when unknown
	Identity string // authenticated identity (SASL or EAP), "" when none
	Channel  string // "pt-tls", "eap", "sm-dtls"
	Remote   string // remote address, for logs
	// ChannelBinding is the channel's RFC 5705 exporter value with label
	// patnc.ChannelBindingLabel (patnc.ChannelBindingLen bytes, no
	// context), set by the PDP for channels that have one (SM-DTLS,
	// PT-TLS). When set, the TPM verifier expects the quote's
	// qualifying data to be H(nonce || ChannelBinding) with the hash of
	// the AK's signing scheme, so a quote relayed from another channel
	// fails; empty means the nonce alone.
	ChannelBinding []byte
}

// Session is a verifier's state while it assesses one endpoint.
type Session interface {
	// Receive handles one PA-TNC message from the collector and returns the
	// attributes to answer with at once; none means nothing to say.
	Receive(ctx context.Context, msg *patnc.Message) ([]patnc.Attribute, error)
	// BatchEnding is called after each batch from the endpoint has been
	// delivered (IF-IMV BatchEnding). A verifier that still lacks evidence
	// returns attributes that ask for it (an Attribute Request, a nonce);
	// when every verifier returns none, the PDP decides.
	BatchEnding(ctx context.Context) ([]patnc.Attribute, error)
	// Result reports what the verifier has found so far.
	Result() Result
}

// Recommendation is a verifier's access recommendation (TNC IF-IMV).
type Recommendation int

// Recommendations, from least to most restrictive. NoRecommendation means
// the verifier saw nothing it could judge; it never means allow.
const (
	NoRecommendation Recommendation = iota
	Allow
	Isolate
	NoAccess
)

// Result is what one verifier concluded about one endpoint.
type Result struct {
	// Facts are the values the policy's CEL conditions see under the
	// verifier's name: strings, int64, bool, float64, []any, map[string]any.
	Facts          map[string]any
	Recommendation Recommendation
	// Assessment is a PA-TNC assessment result (patnc.Assessment*).
	Assessment uint32
	// Reasons explain the recommendation to an admin and to the endpoint;
	// they never carry internal error text.
	Reasons []string
}
