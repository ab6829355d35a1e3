package smkeyimv

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/emmansun/gmsm/sm2"

	"trustnac/imv"
	"trustnac/transport/patnc"
	"trustnac/transport/pbtnc"
)

// Subtype is the PA subtype of SM2 key-pair enrollment.
var Subtype = pbtnc.PASubtype{Vendor: patnc.VendorTrustnac, Subtype: patnc.PASubtypeTrustnacSMKey}

// PSKIssuer issues the SM channel's PSK for endpoint whose registered SM2
// key has fingerprint keyFingerprint. The PDP's PSK store provides one
// (pdp.PSKIssuer with kind "sm2"); it may hand out the current PSK again.
type PSKIssuer interface {
	IssuePSK(endpoint, keyFingerprint string) (identity string, key []byte, expires time.Time, err error)
}

// Config configures the verifier.
type Config struct {
	// Keys are the registered keys; nil registers none.
	Keys KeyRegistry
	// Allow is the policy hook: whether the endpoint under assessment may
	// enroll with an SM2 key pair. Nil allows none.
	Allow func(ep imv.Endpoint) bool
	// Issuer issues the PSKs; nil refuses every request.
	Issuer PSKIssuer
}

// Reasons of a refused grant, for the endpoint and the admin; they carry
// no internal error text.
const (
	ReasonNoKey        = "the endpoint did not send an SM2 public key"
	ReasonBadKey       = "the endpoint's public key is not an SM2 public key"
	ReasonUnregistered = "the endpoint's SM2 public key is not registered with the PDP"
	ReasonOtherEP      = "the endpoint's SM2 public key is registered for another endpoint"
	ReasonPolicy       = "the policy does not allow SM2 key-pair enrollment for this endpoint"
	ReasonNoIssuer     = "this PDP does not issue SM channel keys"
	ReasonWrongKind    = "SM2 key-pair enrollment issues only SM2-encrypted SM channel keys"
	ReasonFailed       = "the PDP could not issue an SM channel key"
)

// Verifier issues PSKs to registered SM2 keys. It implements imv.Verifier.
type Verifier struct {
	cfg Config
	log *slog.Logger
}

var _ imv.Verifier = (*Verifier)(nil)

// New returns the verifier. A nil log discards.
func New(cfg Config, log *slog.Logger) *Verifier {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Verifier{cfg: cfg, log: log.With("imv", "smkey")}
}

// Name returns "smkey", the policy namespace of its facts.
func (v *Verifier) Name() string { return "smkey" }

// Subtype returns Subtype.
func (v *Verifier) Subtype() pbtnc.PASubtype { return Subtype }

// NewSession starts the verifier's part of one assessment.
func (v *Verifier) NewSession(ctx context.Context, ep imv.Endpoint) (imv.Session, error) {
	return &session{v: v, ep: ep, log: v.log.With("endpoint", ep.ID)}, nil
}

type session struct {
	v   *Verifier
	ep  imv.Endpoint
	log *slog.Logger

	mu        sync.Mutex
	received  bool
	pkix      []byte // the key the endpoint sent
	kind      uint8  // of its PSK request, 0 for none
	answered  bool
	reg       *Registration // the key, when registered
	granted   string        // identity granted
	refused   string        // reason of a refusal
	malformed bool
}

// Receive collects the endpoint's key and PSK request. A message with an
// attribute that does not parse, or an unsupported NOSKIP one, is answered
// with a PA-TNC error and otherwise ignored (RFC 5792 §4.2.8).
func (s *session) Receive(ctx context.Context, msg *patnc.Message) ([]patnc.Attribute, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.received = true
	values, rejected := msg.DecodeAll()
	if len(rejected) > 0 {
		for _, r := range rejected {
			s.log.Warn("rejecting PA-TNC message", "attr", r.Attr.ID().String(), "err", r.Err)
			if !r.Unsupported {
				s.malformed = true
			}
		}
		return patnc.Answers(rejected)
	}
	for _, val := range values {
		switch v := val.(type) {
		case *patnc.SM2PublicKey:
			if s.pkix == nil {
				s.pkix = v.PKIX
			}
		case *patnc.PSKRequest:
			if s.kind == 0 {
				s.kind = v.Kind
			}
		}
	}
	return nil, nil
}

// BatchEnding answers the PSK request once, with a grant or a refusal.
func (s *session) BatchEnding(ctx context.Context) ([]patnc.Attribute, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.kind == 0 || s.answered {
		return nil, nil
	}
	s.answered = true
	g := s.decide()
	a, err := patnc.EncodeAttribute(g, false)
	if err != nil {
		return nil, fmt.Errorf("smkeyimv: encode PSK grant: %w", err)
	}
	return []patnc.Attribute{a}, nil
}

// decide builds the answer to the PSK request.
func (s *session) decide() *patnc.PSKGrant {
	refuse := func(reason string) *patnc.PSKGrant {
		s.refused = reason
		s.log.Info("SM channel key refused", "reason", reason)
		return &patnc.PSKGrant{Kind: patnc.PSKKindSM2, Refused: true, Reason: reason}
	}
	if s.kind != patnc.PSKKindSM2 {
		return refuse(ReasonWrongKind)
	}
	if s.pkix == nil {
		return refuse(ReasonNoKey)
	}
	_, fp, err := ParsePublicKey(s.pkix)
	if err != nil {
		s.log.Warn("unusable public key", "err", err)
		return refuse(ReasonBadKey)
	}
	s.log = s.log.With("key", fp)
	var reg Registration
	ok := false
	if s.v.cfg.Keys != nil {
		reg, ok = s.v.cfg.Keys.Lookup(fp)
	}
	if !ok {
		s.log.Warn("SM2 key not registered")
		return refuse(ReasonUnregistered)
	}
	s.reg = &reg
	if reg.Endpoint != s.ep.ID && reg.Endpoint != s.ep.Identity {
		s.log.Warn("SM2 key registered for another endpoint", "registered", reg.Endpoint)
		return refuse(ReasonOtherEP)
	}
	if s.v.cfg.Allow == nil || !s.v.cfg.Allow(s.ep) {
		return refuse(ReasonPolicy)
	}
	if s.v.cfg.Issuer == nil {
		return refuse(ReasonNoIssuer)
	}
	endpoint := s.ep.ID
	if endpoint == "" {
		endpoint = reg.Endpoint
	}
	identity, key, expires, err := s.v.cfg.Issuer.IssuePSK(endpoint, fp)
	if err != nil || len(key) == 0 {
		s.log.Error("PSK issuer failed", "err", err)
		return refuse(ReasonFailed)
	}
	// Encrypted to the registered key (the same key the endpoint sent:
	// their fingerprints match).
	ct, err := sm2.Encrypt(rand.Reader, reg.Public, key, nil) // C1 uncompressed || C3 || C2
	if err != nil {
		s.log.Error("SM2 encryption failed", "err", err)
		return refuse(ReasonFailed)
	}
	s.granted = identity
	exp := expires.UTC().Truncate(time.Second)
	s.log.Info("SM channel key granted", "identity", identity, "expires", exp)
	return &patnc.PSKGrant{Kind: patnc.PSKKindSM2, Identity: identity, Expires: exp, Ciphertext: ct}
}

// Result reports what happened; SM2 key enrollment makes no access
// recommendation. Facts: requested, registered, key (fingerprint),
// endpoint (the registered endpoint ID), granted.
func (s *session) Result() imv.Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := map[string]any{
		"requested":  s.kind != 0,
		"registered": s.reg != nil,
		"key":        "",
		"endpoint":   "",
		"granted":    s.granted != "",
	}
	if s.reg != nil {
		f["key"], f["endpoint"] = s.reg.Fingerprint, s.reg.Endpoint
	}
	r := imv.Result{Facts: f, Recommendation: imv.NoRecommendation, Assessment: patnc.AssessmentDontKnow}
	if s.refused != "" {
		r.Reasons = append(r.Reasons, s.refused)
	}
	if s.malformed {
		r.Reasons = append(r.Reasons, "the endpoint sent a malformed SM2 enrollment attribute")
	}
	return r
}
