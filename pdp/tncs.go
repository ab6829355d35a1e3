package pdp

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"trustnac/imv"
	tpmimv "trustnac/imv/tpm"
	"trustnac/policies"
	"trustnac/transport/patnc"
	"trustnac/transport/pbtnc"
	"trustnac/transport/pttls"
	"trustnac/transport/smdtls"
)

// maxAttributes caps the attributes of one PA-TNC message from an endpoint.
const maxAttributes = 4096

// TNCSConfig configures a TNCS.
type TNCSConfig struct {
	Verifiers []imv.Verifier
	Policy    *PolicySource
	Store     Store
	// Log is for operations; Audit receives one structured line per
	// decision. Either may be nil.
	Log   *slog.Logger
	Audit *slog.Logger
	// MaxBatchSize and MaxRounds bound each PB-TNC session (0: defaults).
	MaxBatchSize uint32
	MaxRounds    int
	// OnDecision, if set, is called after each decision was recorded. It
	// must not block: the RADIUS side uses it to send CoA.
	OnDecision func(d *Decision)
	// EndpointOfPSK names the endpoint an SM-DTLS client's PSK identity was
	// issued to (the PSK store's record of it); an error (unknown, revoked,
	// expired) ends the session before any assessment. Nil refuses every
	// SM-DTLS session.
	EndpointOfPSK func(identity string) (endpoint string, err error)
}

// TNCS is the TNC server: it assesses endpoints with the verifiers, decides
// with the policy, answers with a PB-TNC RESULT and records the decision.
type TNCS struct {
	cfg   TNCSConfig
	log   *slog.Logger
	audit *slog.Logger
	now   func() time.Time
}

// NewTNCS returns a TNCS.
func NewTNCS(cfg TNCSConfig) *TNCS {
	t := &TNCS{cfg: cfg, log: cfg.Log, audit: cfg.Audit, now: time.Now}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	if t.audit == nil {
		t.audit = t.log
	}
	return t
}

// PBConfig is the PB-TNC configuration of the TNCS's sessions.
func (t *TNCS) PBConfig() pbtnc.Config {
	return pbtnc.Config{MaxBatchSize: t.cfg.MaxBatchSize, MaxRounds: t.cfg.MaxRounds}
}

// Decision is the outcome of one assessment.
type Decision struct {
	Endpoint    imv.Endpoint
	Role        string
	Params      policies.Role
	Rule        string
	Groups      []string
	Reasons     []string
	Remediation *policies.Remediation
	Combined    imv.Combined
	Facts       policies.Facts
	// Policy is the digest of the policy file that decided.
	Policy string
	// InReply is set when the decision travels in the reply of the RADIUS
	// exchange that made it (MAB, PAP, posture inside EAP), so no CoA is
	// needed to enforce it.
	InReply bool
}

// Assessment is the TNCS side of one PB-TNC session with one endpoint; it
// implements pbtnc.ServerHandler. Not safe for concurrent use: PB-TNC is
// half duplex.
type Assessment struct {
	tncs     *TNCS
	ep       imv.Endpoint
	sessions []imv.Session
	nextID   uint32
	decision *Decision
}

var _ pbtnc.ServerHandler = (*Assessment)(nil)

// NewAssessment starts the TNCS side of a session with ep.
func (t *TNCS) NewAssessment(ep imv.Endpoint) *Assessment {
	return &Assessment{tncs: t, ep: ep}
}

// Decision returns the last decision of the session, nil before the first.
func (a *Assessment) Decision() *Decision { return a.decision }

// BeginHandshake opens a session on every verifier.
func (a *Assessment) BeginHandshake(ctx context.Context) error {
	a.sessions = make([]imv.Session, len(a.tncs.cfg.Verifiers))
	for i, v := range a.tncs.cfg.Verifiers {
		s, err := v.NewSession(ctx, a.ep)
		if err != nil {
			return fmt.Errorf("pdp: verifier %s: %w", v.Name(), err)
		}
		a.sessions[i] = s
	}
	return nil
}

// Receive delivers the endpoint's messages to the verifiers, then asks every
// verifier whether it wants more. When none does, the policy decides.
func (a *Assessment) Receive(ctx context.Context, msgs []pbtnc.PA) ([]pbtnc.PA, *pbtnc.Result, error) {
	if a.sessions == nil {
		if err := a.BeginHandshake(ctx); err != nil {
			return nil, nil, err
		}
	}
	verifiers := a.tncs.cfg.Verifiers
	var out []pbtnc.PA
	for _, m := range msgs {
		for i, v := range verifiers {
			if v.Subtype() != m.Subtype || (m.Exclusive && m.ValidatorID != uint16(i)) {
				continue
			}
			attrs := a.deliver(ctx, i, m.Body)
			if pa, err := a.message(i, m.CollectorID, attrs); err != nil {
				return nil, nil, err
			} else if pa != nil {
				out = append(out, *pa)
			}
		}
	}
	for i, s := range a.sessions {
		attrs, err := s.BatchEnding(ctx)
		if err != nil {
			a.tncs.log.Warn("verifier failed", "verifier", verifiers[i].Name(), "endpoint", a.ep.ID, "err", err)
			continue
		}
		if pa, err := a.message(i, pbtnc.AnyID, attrs); err != nil {
			return nil, nil, err
		} else if pa != nil {
			out = append(out, *pa)
		}
	}
	if len(out) > 0 {
		return out, nil, nil
	}
	d, err := a.tncs.decide(a.ep, a.sessions)
	if err != nil {
		return nil, nil, err
	}
	a.decision = d
	a.tncs.record(d)
	res, err := a.result(d)
	if err != nil {
		return nil, nil, err
	}
	return nil, res, nil
}

// deliver hands one PA-TNC message to verifier i and returns its answer. A
// message that does not parse is answered with a PA-TNC Error attribute.
func (a *Assessment) deliver(ctx context.Context, i int, body []byte) []patnc.Attribute {
	name := a.tncs.cfg.Verifiers[i].Name()
	msg, err := patnc.ParseMessage(body, maxAttributes)
	if err != nil {
		a.tncs.log.Warn("malformed PA-TNC message", "verifier", name, "endpoint", a.ep.ID, "err", err)
		var pe *patnc.ParseError
		if errors.As(err, &pe) {
			if attr, err := patnc.EncodeAttribute(pe.PAError(body[:min(len(body), patnc.HeaderLen)]), false); err == nil {
				return []patnc.Attribute{attr}
			}
		}
		return nil
	}
	attrs, err := a.sessions[i].Receive(ctx, msg)
	if err != nil {
		a.tncs.log.Warn("verifier failed", "verifier", name, "endpoint", a.ep.ID, "err", err)
		return nil
	}
	return attrs
}

// message wraps attrs from verifier i in a PB-PA message to collector; nil
// when there is nothing to send.
func (a *Assessment) message(i int, collector uint16, attrs []patnc.Attribute) (*pbtnc.PA, error) {
	if len(attrs) == 0 {
		return nil, nil
	}
	a.nextID++
	m := patnc.Message{ID: a.nextID, Attributes: attrs}
	body, err := m.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("pdp: verifier %s: %w", a.tncs.cfg.Verifiers[i].Name(), err)
	}
	return &pbtnc.PA{
		Exclusive:   collector != pbtnc.AnyID,
		Subtype:     a.tncs.cfg.Verifiers[i].Subtype(),
		CollectorID: collector,
		ValidatorID: uint16(i),
		Body:        body,
	}, nil
}

// recommendationRole is the least restrictive role a combined verifier
// recommendation allows.
func recommendationRole(r imv.Recommendation) string {
	switch r {
	case imv.Allow:
		return "admit"
	case imv.NoAccess:
		return "deny"
	}
	return "isolate"
}

// decide joins the verifiers' results with the policy. The policy picks a
// role from the facts; a verifier that recommends isolation or no access
// makes the role at least that strict.
func (t *TNCS) decide(ep imv.Endpoint, sessions []imv.Session) (*Decision, error) {
	pol := t.cfg.Policy.Policy()
	if pol == nil {
		return nil, errors.New("pdp: no policy in force")
	}
	results := make([]imv.Result, len(sessions))
	facts := policies.Facts{}
	for i, s := range sessions {
		results[i] = s.Result()
		if results[i].Facts == nil {
			continue
		}
		name := t.cfg.Verifiers[i].Name()
		if name == "tpm" {
			// The TPM verifier also judges the IMA log, whose facts
			// go to their own namespace.
			facts["tpm"], facts[tpmimv.FactsIMA] = tpmimv.SplitFacts(results[i].Facts)
			continue
		}
		facts[name] = results[i].Facts
	}
	combined := imv.Combine(results)
	pep := policyEndpoint(ep)
	// An attestation key counts for group membership only once its quote
	// verified.
	if tf := facts["tpm"]; tf != nil && tf["quote_verified"] == true {
		pep.AK, _ = tf["ak"].(string)
	}
	pd := pol.Decide(pep, facts)
	d := t.Decide(ep, pd, facts)
	d.Combined = combined
	d.InReply = ep.Channel == "eap"
	if final := policies.Stricter(pd.Role, recommendationRole(combined.Recommendation)); final != pd.Role {
		d.Role = final
		d.Params = pol.RoleParams(final)
		d.Rule = ""
		d.Reasons = append(append([]string(nil), combined.Reasons...), pd.Reasons...)
		d.Remediation = d.Params.Remediation
	}
	return d, nil
}

// roleResult encodes a role as PB-TNC's access recommendation and
// assessment result; imc.OutcomeOf reads it back.
func roleResult(role string, combined imv.Combined) (pbtnc.AccessRecommendation, uint32) {
	switch role {
	case "admit":
		return pbtnc.RecommendationAllowed, patnc.AssessmentCompliant
	case "remediate":
		return pbtnc.RecommendationQuarantined, patnc.AssessmentMinor
	case "assess":
		return pbtnc.RecommendationQuarantined, patnc.AssessmentDontKnow
	case "isolate":
		if combined.Assessment == patnc.AssessmentError {
			return pbtnc.RecommendationQuarantined, patnc.AssessmentError
		}
		return pbtnc.RecommendationQuarantined, patnc.AssessmentMajor
	}
	return pbtnc.RecommendationDenied, patnc.AssessmentMajor
}

// result builds the RESULT batch contents: the recommendation, the
// assessment, remediation as PB-TNC parameters and as PA-TNC Remediation
// Instructions, and the reasons.
func (a *Assessment) result(d *Decision) (*pbtnc.Result, error) {
	rec, assessment := roleResult(d.Role, d.Combined)
	ar := pbtnc.AssessmentResult(assessment)
	res := &pbtnc.Result{Assessment: &ar, Recommendation: rec}
	for _, r := range d.Reasons {
		res.Reasons = append(res.Reasons, pbtnc.ReasonString{Reason: r, Lang: "en"})
	}
	var instr []patnc.Value
	if rem := d.Remediation; rem != nil && d.Role != "admit" {
		if rem.URI != "" {
			res.Remediation = append(res.Remediation, pbtnc.RemediationParameters{Type: patnc.RemediationURI, URI: rem.URI})
			instr = append(instr, &patnc.RemediationInstructions{Type: patnc.RemediationURI, URI: rem.URI})
		}
		if rem.Text != "" {
			res.Remediation = append(res.Remediation, pbtnc.RemediationParameters{Type: patnc.RemediationString, Text: rem.Text, Lang: "en"})
			instr = append(instr, &patnc.RemediationInstructions{Type: patnc.RemediationString, Text: rem.Text, Lang: "en"})
		}
	}
	// Each verifier's collector learns the assessment, and the remediation
	// instructions when there are any (RFC 5792 §4.2.9, §4.2.10).
	for i, v := range a.tncs.cfg.Verifiers {
		attrs := make([]patnc.Attribute, 0, 1+len(instr))
		values := append([]patnc.Value{ptr(patnc.AssessmentResult(assessment))}, instr...)
		for _, val := range values {
			attr, err := patnc.EncodeAttribute(val, false)
			if err != nil {
				return nil, fmt.Errorf("pdp: result for %s: %w", v.Name(), err)
			}
			attrs = append(attrs, attr)
		}
		pa, err := a.message(i, pbtnc.AnyID, attrs)
		if err != nil {
			return nil, err
		}
		res.PA = append(res.PA, *pa)
	}
	return res, nil
}

func ptr[T any](v T) *T { return &v }

// Decide turns a policy decision made without an assessment (MAB,
// password only, a re-decision after a policy change) into a Decision.
func (t *TNCS) Decide(ep imv.Endpoint, pd policies.Decision, facts policies.Facts) *Decision {
	return &Decision{
		Endpoint:    ep,
		Role:        pd.Role,
		Params:      pd.Params,
		Rule:        pd.Rule,
		Groups:      pd.Groups,
		Reasons:     pd.Reasons,
		Remediation: pd.Remediation,
		Facts:       facts,
		Policy:      pd.PolicyDigest,
	}
}

// Record saves a decision, writes its audit line and tells OnDecision.
func (t *TNCS) Record(d *Decision) { t.record(d) }

// record saves the decision and writes its audit line.
func (t *TNCS) record(d *Decision) {
	rec := &Record{
		ID:             d.Endpoint.ID,
		MAC:            d.Endpoint.MAC,
		Identity:       d.Endpoint.Identity,
		Channel:        d.Endpoint.Channel,
		Remote:         d.Endpoint.Remote,
		Role:           d.Role,
		Rule:           d.Rule,
		Groups:         d.Groups,
		Recommendation: d.Combined.Recommendation.String(),
		Reasons:        d.Reasons,
		Facts:          d.Facts,
		Policy:         d.Policy,
		DecidedAt:      t.now().UTC(),
	}
	if r := d.Remediation; r != nil && d.Role != "admit" {
		for _, s := range []string{r.Text, r.URI} {
			if s != "" {
				rec.Remediation = append(rec.Remediation, s)
			}
		}
	}
	if t.cfg.Store != nil {
		if err := t.cfg.Store.Put(rec); err != nil {
			t.log.Error("store decision", "endpoint", d.Endpoint.ID, "err", err)
		}
	}
	t.Audit(d)
	if t.cfg.OnDecision != nil {
		t.cfg.OnDecision(d)
	}
}

// Audit writes the decision's audit line without storing it: for a RADIUS
// decision that repeats the stored one.
func (t *TNCS) Audit(d *Decision) {
	// The arguments cost allocations even when the logger drops them.
	if !t.audit.Enabled(context.Background(), slog.LevelInfo) {
		return
	}
	t.audit.Info("decision",
		"endpoint", d.Endpoint.ID,
		"identity", d.Endpoint.Identity,
		"mac", d.Endpoint.MAC,
		"channel", d.Endpoint.Channel,
		"remote", d.Endpoint.Remote,
		"role", d.Role,
		"rule", d.Rule,
		"groups", d.Groups,
		"verifiers", d.Combined.Recommendation.String(),
		"reasons", d.Reasons,
		"policy", d.Policy,
	)
}

// EndpointOfPTTLS names the endpoint behind a PT-TLS connection: by its SASL
// identity, else by its TLS client certificate, else by its IP address.
func EndpointOfPTTLS(c *pttls.Conn) imv.Endpoint {
	ep := imv.Endpoint{Channel: "pt-tls", Identity: c.Identity()}
	nc := c.NetConn()
	if addr := nc.RemoteAddr(); addr != nil {
		ep.Remote = addr.String()
	}
	switch {
	case ep.Identity != "":
		ep.ID = "id:" + ep.Identity
	default:
		if tc, ok := nc.(*tls.Conn); ok {
			if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 {
				sum := sha256.Sum256(certs[0].Raw)
				ep.ID = "cert:" + hex.EncodeToString(sum[:])
				break
			}
		}
		host, _, err := net.SplitHostPort(ep.Remote)
		if err != nil {
			host = ep.Remote
		}
		ep.ID = "ip:" + host
	}
	ep.ChannelBinding = channelBinding(nc)
	return ep
}

// channelBinding is the connection's RFC 5705 exporter value under
// patnc.ChannelBindingLabel, which the endpoint's TPM quote is bound to;
// nil when the connection cannot export (the quote is then bound to the
// nonce alone).
func channelBinding(nc net.Conn) []byte {
	var b []byte
	var err error
	switch c := nc.(type) {
	case *tls.Conn:
		cs := c.ConnectionState()
		b, err = cs.ExportKeyingMaterial(patnc.ChannelBindingLabel, nil, patnc.ChannelBindingLen)
	case *smdtls.Conn:
		b, err = c.ExportKeyingMaterial(patnc.ChannelBindingLabel, nil, patnc.ChannelBindingLen)
	}
	if err != nil {
		return nil
	}
	return b
}

// ErrUnknownPSK is returned by EndpointOfSM when the connection's PSK
// identity names no endpoint (unknown, revoked or expired since the
// handshake).
var ErrUnknownPSK = errors.New("pdp: unknown PSK identity")

// EndpointOfSM names the endpoint behind an SM-DTLS connection: the
// endpoint its PSK was issued to, as endpointOf reports it. The channel is
// "sm-dtls", the identity the one the endpoint enrolled under (an "id:"
// endpoint ID), and the channel binding the connection's exporter value.
func EndpointOfSM(c *pttls.Conn, endpointOf func(identity string) (string, error)) (imv.Endpoint, error) {
	sc, ok := c.NetConn().(*smdtls.Conn)
	if !ok {
		return imv.Endpoint{}, errors.New("pdp: not an SM-DTLS connection")
	}
	ep := imv.Endpoint{Channel: policies.ChannelSMDTLS, Remote: sc.RemoteAddr().String()}
	if endpointOf == nil {
		return ep, ErrUnknownPSK
	}
	id, err := endpointOf(string(sc.PeerIdentity()))
	if err != nil {
		return ep, fmt.Errorf("%w: %w", ErrUnknownPSK, err)
	}
	if id == "" {
		return ep, ErrUnknownPSK
	}
	ep.ID = id
	if name, ok := strings.CutPrefix(id, "id:"); ok {
		ep.Identity = name
	}
	ep.ChannelBinding = channelBinding(sc)
	return ep, nil
}

// ServePTTLS runs PB-TNC sessions over one PT-TLS connection, over TLS or
// SM-DTLS; it implements pttls.Handler.
func (t *TNCS) ServePTTLS(ctx context.Context, c *pttls.Conn) {
	var ep imv.Endpoint
	if _, sm := c.NetConn().(*smdtls.Conn); sm {
		var err error
		if ep, err = EndpointOfSM(c, t.cfg.EndpointOfPSK); err != nil {
			t.log.Warn("SM-DTLS session refused", "remote", ep.Remote, "err", err)
			return
		}
	} else {
		ep = EndpointOfPTTLS(c)
	}
	a := t.NewAssessment(ep)
	srv := pbtnc.NewServer(a, t.PBConfig())
	log := t.log.With("endpoint", ep.ID, "remote", ep.Remote)
	for {
		in, err := c.ReadBatch()
		if err != nil {
			if srv.State() != pbtnc.StateDecided {
				log.Info("PT-TLS session ended", "state", srv.State().String(), "err", err)
			}
			return
		}
		out, err := srv.Step(ctx, in)
		if out != nil {
			if werr := c.WriteBatch(out); werr != nil {
				log.Info("PT-TLS write failed", "err", werr)
				return
			}
		}
		if err != nil {
			log.Warn("PB-TNC error", "err", err)
		}
		if srv.State() == pbtnc.StateEnd {
			return
		}
	}
}
