package tpmimv

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"trustnac/imv"
	"trustnac/imv/tpm/eventlog"
	"trustnac/imv/tpm/ima"
	"trustnac/transport/patnc"
	"trustnac/transport/pbtnc"
)

// Defaults of Config.
var (
	// DefaultPCRs are the PCRs quoted when Config.PCRs is empty: the
	// firmware and boot loader PCRs 0–7 and IMA's PCR 10.
	DefaultPCRs = []int{0, 1, 2, 3, 4, 5, 6, 7, 10}
	// DefaultBanks are the banks asked for when Config.Banks is empty;
	// the collector quotes those its TPM has.
	DefaultBanks = []uint16{algSHA256, algSHA1}
)

// DefaultLogCacheAKs is how many AKs' logs the verifier keeps when
// Config.LogCacheAKs is 0; the cache holds at most that many times
// eventlog.MaxLogSize bytes.
const DefaultLogCacheAKs = 16

// Bounds of one assessment.
const (
	maxRounds         = 80   // quote requests per session (16 MiB of log at 256 KiB a round, and then some)
	maxQuotesPerBatch = 4    // quotes kept per batch; more are refused as replays
	maxPiecesPerBatch = 64   // measurement log pieces per batch
	logOverlap        = 4096 // bytes of a cached log asked for again to check it still holds
	maxIMAEntries     = 1 << 18
	imaTail           = 8 // IMA entries appended after the quote that replay tolerates
	keyCacheSize      = 4096
)

// Config sets what the TPM verifier trusts and asks for.
type Config struct {
	// AKs keeps attestation key records; nil keeps them in memory.
	AKs AKStore
	// EKRoots are the CAs (roots and intermediates) of EK certificates;
	// nil accepts no EK certificate.
	EKRoots *x509.CertPool
	// Enrollment gives the enrollment mode for an endpoint's new AK:
	// EnrollCredential (the default, also for nil or ""), EnrollTOFU or
	// EnrollNone.
	Enrollment func(ep imv.Endpoint) string
	// References gives the reference sets for an endpoint; none means no
	// reference check (tpm.pcrs_match false, tpm.reference "").
	References func(ep imv.Endpoint) []ReferenceSet
	// PCRs to quote; default DefaultPCRs.
	PCRs []int
	// Banks to ask for (TPM_ALG_IDs); default DefaultBanks.
	Banks []uint16
	// IMAAllowlist, when set, is checked against the IMA log.
	IMAAllowlist *ima.Allowlist
	// Now is the clock (default time.Now).
	Now func() time.Time
	// LogCacheAKs is how many AKs' replayed logs are kept to ask only
	// for what was appended since (default DefaultLogCacheAKs; negative
	// keeps none).
	LogCacheAKs int
	// RequireBootLog and RequireIMALog make a missing log a reason to
	// isolate; otherwise its facts only say it did not replay.
	RequireBootLog, RequireIMALog bool
	// PSKIssuer issues the SM channel's PSKs that collectors ask for with
	// a PSK Request; nil answers every request with a refused grant.
	PSKIssuer PSKIssuer
}

// Verifier is the TPM 2.0 attestation IMV (PA subtype
// pbtnc.SubtypeTrustnacTPM). It implements imv.Verifier. Its facts are
// those of namespace "tpm", with those of namespace "ima" in the member
// FactsIMA (see SplitFacts).
type Verifier struct {
	cfg   Config
	log   *slog.Logger
	keys  *keyCache
	logs  *logCache
	store sync.Mutex // serializes the AK counter check-and-update
}

var _ imv.Verifier = (*Verifier)(nil)

// New returns a TPM verifier. A nil log discards.
func New(cfg Config, log *slog.Logger) *Verifier {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.AKs == nil {
		log.Warn("no AK store configured; enrollments are kept in memory only")
		cfg.AKs = NewMemAKStore()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	pcrs := slices.DeleteFunc(slices.Clone(cfg.PCRs), func(i int) bool { return i < 0 || i > maxPCRIndex })
	if len(pcrs) == 0 {
		pcrs = slices.Clone(DefaultPCRs)
	}
	slices.Sort(pcrs)
	cfg.PCRs = slices.Compact(pcrs)
	var banks []uint16
	for _, b := range cfg.Banks {
		if patnc.TPMDigestSize(b) > 0 && !slices.Contains(banks, b) && len(banks) < patnc.MaxPCRSelections {
			banks = append(banks, b)
		}
	}
	if len(banks) == 0 {
		banks = slices.Clone(DefaultBanks)
	}
	cfg.Banks = banks
	if cfg.LogCacheAKs == 0 {
		cfg.LogCacheAKs = DefaultLogCacheAKs
	}
	v := &Verifier{cfg: cfg, log: log, keys: newKeyCache(keyCacheSize)}
	if cfg.LogCacheAKs > 0 {
		v.logs = newLogCache(cfg.LogCacheAKs * eventlog.MaxLogSize)
	}
	return v
}

// Name returns "tpm", the policy namespace of its facts.
func (v *Verifier) Name() string { return "tpm" }

// Subtype returns trustnac's TPM attestation PA subtype.
func (v *Verifier) Subtype() pbtnc.PASubtype { return pbtnc.SubtypeTrustnacTPM }

// NewSession starts assessing one endpoint.
func (v *Verifier) NewSession(ctx context.Context, ep imv.Endpoint) (imv.Session, error) {
	mode := EnrollCredential
	if v.cfg.Enrollment != nil {
		switch m := v.cfg.Enrollment(ep); m {
		case EnrollCredential, EnrollTOFU, EnrollNone:
			mode = m
		case "":
		default:
			v.log.Warn("unknown enrollment mode; no new AK is enrolled", "endpoint", ep.ID, "mode", m)
			mode = EnrollNone
		}
	}
	return &session{v: v, ep: ep, mode: mode, log: v.log.With("endpoint", ep.ID)}, nil
}

// session is the verifier's state for one endpoint in one handshake. The
// collector's attributes are collected by Receive and acted on at
// BatchEnding, so their order within a batch does not matter.
type session struct {
	v    *Verifier
	ep   imv.Endpoint
	mode string
	log  *slog.Logger

	mu       sync.Mutex
	received bool
	done     bool

	// evidence of the current batch
	inAK, inEK *patnc.TPMKey
	inResp     []*patnc.TPMCredentialResponse
	inQuotes   []*patnc.TPMQuote
	inLogs     []*patnc.MeasurementLog

	askedKeys bool
	ak        *akKey
	ekPublic  []byte
	ekCert    []byte
	rec       *AKRecord // nil while the AK is unknown to the store

	challenged bool
	secret     []byte // of the outstanding credential challenge
	ekCertErr  error  // why the EK certificate was not accepted

	nonce   []byte   // of the outstanding quote request
	spent   [][]byte // nonces already answered
	asked   int      // quote requests sent
	quote   *verifiedQuote
	logs    [3]*logState // by kind
	result  *evaluation
	denied  []string // reasons for NoAccess
	isolate []string // reasons for Isolate
	notes   []string // other reasons

	pskKind     uint8 // kind of the collector's PSK request, 0 for none
	pskAnswered bool  // a grant or refusal was sent
	pskGranted  bool
	grantOnly   bool // the last batch sent only the PSK answer
}

// verifiedQuote is a quote whose signature, nonce, counters and PCR digest
// checked out.
type verifiedQuote struct {
	clock                    uint64
	resetCount, restartCount uint32
	pcrs                     map[uint16]map[int][]byte
}

// Receive collects one PA-TNC message from the collector. An unsupported
// attribute with NOSKIP set is answered with Attribute Type Not Supported,
// one that does not parse with Invalid Parameter (RFC 5792 §4.2, §4.2.8);
// either way nothing of that message is used, and a malformed trustnac
// attribute refuses access (a genuine collector never sends one).
func (s *session) Receive(ctx context.Context, msg *patnc.Message) ([]patnc.Attribute, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.received = true
	values, rejected := msg.DecodeAll()
	if len(rejected) > 0 {
		for _, r := range rejected {
			if r.Unsupported {
				s.note("the endpoint sent an unsupported mandatory attribute " + r.Attr.ID().String())
			} else {
				s.deny("the endpoint sent malformed TPM evidence (" + attrName(r.Attr.ID()) + ")")
			}
			s.log.Warn("rejecting PA-TNC message", "attr", r.Attr.ID().String(), "err", r.Err)
		}
		return patnc.Answers(rejected)
	}
	for _, val := range values {
		switch v := val.(type) {
		case *patnc.TPMKey:
			if v.IsEK() {
				s.inEK = v
			} else {
				s.inAK = v
			}
		case *patnc.TPMQuote:
			if len(s.inQuotes) >= maxQuotesPerBatch {
				s.deny("the endpoint sent more quotes than it was asked for (replay)")
				continue
			}
			s.inQuotes = append(s.inQuotes, v)
		case *patnc.TPMCredentialResponse:
			if len(s.inResp) >= maxQuotesPerBatch {
				s.deny("the endpoint sent more credential responses than it was asked for")
				continue
			}
			s.inResp = append(s.inResp, v)
		case *patnc.MeasurementLog:
			if len(s.inLogs) >= maxPiecesPerBatch {
				s.deny("the endpoint sent more measurement log pieces than the PDP accepts")
				continue
			}
			s.inLogs = append(s.inLogs, v)
		case *patnc.PSKRequest:
			s.pskRequested(v)
		case *patnc.PAError:
			s.log.Warn("collector reported a PA-TNC error", "vendor", v.Vendor, "code", v.Code)
			s.note(fmt.Sprintf("the endpoint's TPM collector reported an error (code %d/%d)", v.Vendor, v.Code))
		default:
			s.log.Debug("ignoring attribute", "attr", val.AttrID().String())
		}
	}
	return nil, nil
}

// BatchEnding acts on the batch's evidence in order — keys, credential
// responses, quotes, log pieces — and returns what to ask for next: the
// AK and EK (once), a credential challenge (once), and a quote request
// with a fresh nonce while the quote or the logs are missing.
func (s *session) BatchEnding(ctx context.Context) ([]patnc.Attribute, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.clearBatch()
	if s.done {
		return nil, nil
	}
	s.applyKeys()
	if len(s.denied) > 0 {
		s.done = true
		return nil, nil
	}
	if s.ak == nil {
		// The TPM collector sends its keys unasked in the endpoint's first
		// batch, so an endpoint that sent nothing of this subtype there has
		// no TPM collector: asking would only cost a round trip.
		if s.askedKeys || !s.received {
			s.done = true
			return nil, nil
		}
		s.askedKeys = true
		req := patnc.AttributeRequest{
			{Vendor: patnc.VendorTrustnac, Type: patnc.AttrTPMAK},
			{Vendor: patnc.VendorTrustnac, Type: patnc.AttrTPMEK},
		}
		a, err := patnc.EncodeAttribute(&req, false)
		if err != nil {
			return nil, fmt.Errorf("tpmimv: encode attribute request: %w", err)
		}
		return []patnc.Attribute{a}, nil
	}
	for _, step := range []func(){s.applyResponses, s.applyQuotes, s.applyLogs} {
		if len(s.denied) == 0 {
			step()
		}
	}
	if len(s.denied) > 0 {
		s.done = true
		return nil, nil
	}
	out, err := s.next()
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		s.done = true
	}
	return out, nil
}

func (s *session) clearBatch() {
	s.inAK, s.inEK, s.inResp, s.inQuotes, s.inLogs = nil, nil, nil, nil, nil
}

// applyKeys takes the AK and EK the collector reported, looks the AK up in
// the store, and refuses keys that change within the assessment.
func (s *session) applyKeys() {
	if ek := s.inEK; ek != nil {
		if s.ekPublic != nil && (!bytes.Equal(s.ekPublic, ek.Public) || !bytes.Equal(s.ekCert, ek.Cert)) {
			s.deny("the endpoint changed its endorsement key during the assessment")
			return
		}
		s.ekPublic, s.ekCert = ek.Public, ek.Cert
	}
	in := s.inAK
	if in == nil {
		return
	}
	if s.ak != nil {
		if !bytes.Equal(s.ak.public, in.Public) {
			s.deny("the endpoint changed its attestation key during the assessment")
		}
		return
	}
	k, err := s.v.keys.get(in.Public)
	if err != nil {
		s.log.Warn("unusable attestation key", "err", err)
		s.deny("the endpoint's attestation key is not one the PDP can verify (ECC NIST P-256 with ECDSA or SM2 P-256 with SM2)")
		return
	}
	if !k.restricted {
		s.log.Warn("attestation key is not a restricted signing key", "ak", k.id)
		s.deny("the endpoint's attestation key is not a restricted signing key fixed to its TPM, so its quotes prove nothing")
		return
	}
	s.ak = k
	s.log = s.log.With("ak", k.id)
	rec, err := s.v.cfg.AKs.GetAK(k.id)
	switch {
	case errors.Is(err, ErrUnknownAK):
	case err != nil:
		s.log.Error("AK store lookup failed", "err", err)
		s.deny("the PDP could not look up the attestation key")
		return
	default:
		s.rec = rec
		if rec.Status == StatusRevoked {
			s.log.Warn("revoked attestation key presented")
			s.deny("the attestation key " + k.id + " has been revoked")
		}
	}
}

// applyResponses checks the answers to the credential challenge: the
// secret compared in constant time, each challenge answered once.
func (s *session) applyResponses() {
	for _, r := range s.inResp {
		if s.secret == nil {
			s.deny("the endpoint sent a credential response the PDP did not ask for")
			return
		}
		secret := s.secret
		s.secret = nil
		if !constantTimeEqual(secret, r.Secret) {
			s.log.Warn("credential activation failed")
			s.deny("the endpoint failed TPM credential activation: its attestation key is not proven to be in the TPM of its endorsement key")
			return
		}
		s.enroll()
	}
}

// enroll records the AK after a successful credential activation.
func (s *session) enroll() {
	now := s.v.cfg.Now()
	rec := &AKRecord{Name: s.ak.id, Public: s.ak.public, EKPublic: s.ekPublic, EKCert: s.ekCert,
		EndpointID: s.ep.ID, EnrolledAt: now, LastSeen: now}
	switch {
	case s.ekCertErr == nil:
		rec.Status, rec.Method = StatusApproved, MethodEKCert
	case s.mode == EnrollTOFU:
		rec.Status, rec.Method = StatusApproved, MethodTOFU
	default:
		rec.Status, rec.Method = StatusPending, MethodCredential
	}
	s.v.store.Lock()
	defer s.v.store.Unlock()
	if old, err := s.v.cfg.AKs.GetAK(s.ak.id); err == nil {
		if old.Status == StatusRevoked {
			s.deny("the attestation key " + s.ak.id + " has been revoked")
			return
		}
		rec.Clock, rec.ResetCount, rec.RestartCount = old.Clock, old.ResetCount, old.RestartCount
	}
	if err := s.v.cfg.AKs.PutAK(rec); err != nil {
		s.log.Error("AK store update failed", "err", err)
		s.deny("the PDP could not record the attestation key's enrollment")
		return
	}
	s.rec = rec
	s.log.Info("attestation key enrolled", "status", rec.Status, "method", rec.Method)
}

// applyQuotes verifies the batch's quotes: each must answer the
// outstanding nonce, which it uses up.
func (s *session) applyQuotes() {
	for _, q := range s.inQuotes {
		if s.nonce == nil {
			s.deny("the endpoint sent a quote the PDP did not ask for, or a second quote for one nonce (replay)")
			return
		}
		nonce := s.nonce
		s.nonce = nil
		s.spent = append(s.spent, nonce)
		if !s.verifyQuote(q, nonce) {
			return
		}
	}
}

// verifyQuote runs every check of one quote and keeps it when all pass.
func (s *session) verifyQuote(q *patnc.TPMQuote, nonce []byte) bool {
	binding := s.ep.ChannelBinding
	a, pcrs, err := verifyTPMQuote(s.ak, q, qualifyingData(s.ak, nonce, binding), s.v.cfg.Banks, s.v.cfg.PCRs)
	switch {
	case err == nil:
	case errors.Is(err, ErrBadSignature), errors.Is(err, errScheme):
		s.log.Warn("quote signature does not verify", "err", err)
		s.deny("the quote's signature does not verify with the endpoint's attestation key")
		return false
	case errors.Is(err, ErrNonce):
		if slices.ContainsFunc(s.spent[:len(s.spent)-1], func(n []byte) bool { return bytes.Equal(qualifyingData(s.ak, n, binding), a.ExtraData) }) {
			s.deny("the quote answers an earlier nonce of this assessment (replay)")
		} else if len(binding) > 0 && bytes.Equal(a.ExtraData, nonce) {
			s.deny("the quote is not bound to this channel: the endpoint quoted the bare nonce where the channel binding was required")
		} else if len(binding) > 0 {
			s.deny("the quote was made for another channel or session: its nonce is not bound to this channel (relayed quote)")
		} else {
			s.deny("the quote does not carry the PDP's nonce (replayed or forged quote)")
		}
		s.log.Warn("quote nonce mismatch")
		return false
	case errors.Is(err, errSelection):
		s.log.Warn("quote selection", "err", err)
		s.deny("the quote does not cover the PCRs the PDP asked for")
		return false
	case errors.Is(err, ErrPCRDigest):
		s.log.Warn("PCR digest mismatch", "err", err)
		s.deny("the reported PCR values do not match the quoted PCR digest")
		return false
	default:
		s.log.Warn("not a TPM quote", "err", err)
		s.deny("the endpoint's quote is not a TPM quote")
		return false
	}
	if !s.checkCounters(a) {
		return false
	}
	s.quote = &verifiedQuote{clock: a.Clock, resetCount: a.ResetCount, restartCount: a.RestartCount, pcrs: pcrs.banks()}
	s.result = nil
	s.log.Info("quote verified", "reset", a.ResetCount, "restart", a.RestartCount, "clock", a.Clock)
	return true
}

// checkCounters refuses a quote whose TPM counters went back against the
// AK's record, and records the new ones: reset count back; restart count
// back within one reset; clock back within one reset and restart (TPM 2.0
// TPM 2.0 Part 1, Clock: it only advances while the TPM runs). An AK the store
// does not know is recorded as pending, so an admin can approve it.
func (s *session) checkCounters(a *attest) bool {
	v := s.v
	v.store.Lock()
	defer v.store.Unlock()
	rec, err := v.cfg.AKs.GetAK(s.ak.id)
	switch {
	case errors.Is(err, ErrUnknownAK):
		rec = &AKRecord{Name: s.ak.id, Public: s.ak.public, EndpointID: s.ep.ID, Status: StatusPending}
	case err != nil:
		s.log.Error("AK store lookup failed", "err", err)
		s.deny("the PDP could not look up the attestation key")
		return false
	case rec.Status == StatusRevoked:
		s.deny("the attestation key " + s.ak.id + " has been revoked")
		return false
	}
	switch {
	case a.ResetCount < rec.ResetCount:
		s.log.Warn("TPM reset count went back", "was", rec.ResetCount, "now", a.ResetCount)
		s.deny("the TPM's reset counter went back: the quote is replayed or the TPM state was cloned")
		return false
	case a.ResetCount == rec.ResetCount && a.RestartCount < rec.RestartCount:
		s.log.Warn("TPM restart count went back", "was", rec.RestartCount, "now", a.RestartCount)
		s.deny("the TPM's restart counter went back: the quote is replayed or the TPM state was cloned")
		return false
	case a.ResetCount == rec.ResetCount && a.RestartCount == rec.RestartCount && a.Clock < rec.Clock:
		s.log.Warn("TPM clock went back", "was", rec.Clock, "now", a.Clock)
		s.deny("the TPM's clock went back: the quote is replayed or the TPM state was cloned")
		return false
	}
	rec.Clock, rec.ResetCount, rec.RestartCount = a.Clock, a.ResetCount, a.RestartCount
	rec.LastSeen = v.cfg.Now()
	if err := v.cfg.AKs.PutAK(rec); err != nil {
		s.log.Error("AK store update failed", "err", err)
		s.deny("the PDP could not record the attestation key's counters")
		return false
	}
	s.rec = rec
	return true
}

// applyLogs adds the batch's log pieces.
func (s *session) applyLogs() {
	var got [3]bool
	for _, p := range s.inLogs {
		if p.Kind != patnc.LogBoot && p.Kind != patnc.LogIMA {
			continue
		}
		if p.Total > eventlog.MaxLogSize {
			s.log.Warn("measurement log too large", "kind", p.Kind, "total", p.Total)
			s.deny(fmt.Sprintf("the endpoint's %s is larger than the PDP accepts (%d MiB)", logName(p.Kind), eventlog.MaxLogSize>>20))
			return
		}
		ls := s.logState(p.Kind)
		got[p.Kind] = true
		ls.add(p)
	}
	for kind, ls := range s.logs {
		if ls != nil && ls.asked && !got[kind] {
			ls.silent = true
		}
	}
}

// logState returns the session's state of a log kind, seeded from the
// verifier's cache.
func (s *session) logState(kind uint8) *logState {
	if s.logs[kind] == nil {
		ls := &logState{kind: kind}
		if data := s.v.logs.get(s.ak.id, kind); data != nil {
			ls.buf, ls.fromCache = data, true
		}
		s.logs[kind] = ls
	}
	return s.logs[kind]
}

// next decides what to ask for after a batch: the credential challenge
// once, and a quote request while there is no quote yet or a log is still
// coming. When nothing more is asked for, the evidence is evaluated.
func (s *session) next() ([]patnc.Attribute, error) {
	if s.grantOnly {
		s.grantOnly = false
		s.finish()
		return nil, nil
	}
	if s.nonce != nil {
		// The last quote request went unanswered: stop asking.
		s.nonce = nil
		s.finish()
		return s.pskOnly()
	}
	var out []patnc.Attribute
	if s.needChallenge() {
		a, err := s.challenge()
		if err != nil {
			return nil, err
		}
		if a != nil {
			out = append(out, *a)
		}
	}
	more := s.quote == nil && s.asked == 0
	if s.quote != nil {
		more = s.logsPending() || s.evaluate(true)
	}
	if more && s.asked < maxRounds {
		a, err := s.quoteRequest()
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		s.finish()
		return s.pskOnly()
	}
	a, err := s.pskAnswer(false)
	if err != nil {
		return nil, fmt.Errorf("tpmimv: encode PSK grant: %w", err)
	}
	if a != nil {
		out = append(out, *a)
	}
	return out, nil
}

// pskOnly answers an outstanding PSK request when nothing else is asked
// for: one more round, which ends the session.
func (s *session) pskOnly() ([]patnc.Attribute, error) {
	a, err := s.pskAnswer(true)
	if err != nil {
		return nil, fmt.Errorf("tpmimv: encode PSK grant: %w", err)
	}
	if a == nil {
		return nil, nil
	}
	s.grantOnly = true
	return []patnc.Attribute{*a}, nil
}

// finish evaluates the evidence once nothing more will be asked for.
func (s *session) finish() {
	if s.quote != nil && s.result == nil {
		s.evaluate(false)
	}
}

// needChallenge: the AK is new (or pending) and this endpoint may enroll.
func (s *session) needChallenge() bool {
	if s.challenged || s.mode == EnrollNone {
		return false
	}
	return s.rec == nil || s.rec.Status == StatusPending
}

// challenge builds the credential challenge to the endpoint's EK, or nil
// when the EK is unusable (the reason is noted).
func (s *session) challenge() (*patnc.Attribute, error) {
	s.challenged = true
	if s.ekPublic == nil {
		s.note("the endpoint did not report its endorsement key, so its attestation key could not be enrolled")
		return nil, nil
	}
	ek, err := parseEK(s.ekPublic)
	if err != nil {
		s.log.Warn("unusable endorsement key", "err", err)
		s.note("the endpoint's endorsement key is unusable, so its attestation key could not be enrolled")
		return nil, nil
	}
	s.ekCertErr = checkEKCert(s.ekCert, ek, s.v.cfg.EKRoots, s.v.cfg.Now())
	if s.ekCertErr != nil {
		s.log.Info("EK certificate not accepted", "err", s.ekCertErr)
	}
	idObject, encSecret, secret, err := makeChallenge(ek, s.ak.name)
	if err != nil {
		s.log.Warn("cannot make a credential challenge", "err", err)
		s.note("the endpoint's endorsement key is unusable, so its attestation key could not be enrolled")
		return nil, nil
	}
	s.secret = secret
	a, err := patnc.EncodeAttribute(&patnc.TPMCredentialChallenge{IDObject: idObject, EncSecret: encSecret}, false)
	if err != nil {
		return nil, fmt.Errorf("tpmimv: encode credential challenge: %w", err)
	}
	return &a, nil
}

// quoteRequest asks for a quote over a fresh nonce and for the logs still
// missing.
func (s *session) quoteRequest() (patnc.Attribute, error) {
	nonce := make([]byte, 32)
	if _, err := rand.Read(nonce); err != nil {
		return patnc.Attribute{}, fmt.Errorf("tpmimv: %w", err)
	}
	req := patnc.TPMQuoteRequest{Nonce: nonce}
	pcrs := make([]uint8, len(s.v.cfg.PCRs))
	for i, p := range s.v.cfg.PCRs {
		pcrs[i] = uint8(p)
	}
	for _, b := range s.v.cfg.Banks {
		req.Selections = append(req.Selections, patnc.PCRSelection{Hash: b, PCRs: pcrs})
	}
	for _, kind := range []uint8{patnc.LogBoot, patnc.LogIMA} {
		ls := s.logState(kind)
		off := patnc.NoLog
		if !ls.finished() {
			off = ls.requestOffset()
			ls.asked, ls.silent, ls.progress, ls.restarted = true, false, false, false
		}
		req.Logs = append(req.Logs, patnc.LogRequest{Kind: kind, Offset: off})
	}
	a, err := patnc.EncodeAttribute(&req, false)
	if err != nil {
		return patnc.Attribute{}, fmt.Errorf("tpmimv: encode quote request: %w", err)
	}
	s.nonce = nonce
	s.asked++
	return a, nil
}

// logsPending reports whether a log is still incomplete and worth another
// round: the last round made progress, or the log was dropped to be asked
// for from 0. A collector that sent nothing for a log asked for from a
// cached copy's offset (its log may now be shorter) is asked once from 0.
func (s *session) logsPending() bool {
	pending := false
	for _, ls := range s.logs {
		if ls == nil || ls.finished() {
			continue
		}
		if ls.silent && ls.fromCache && !ls.got && !ls.retried {
			ls.restart()
			ls.retried = true
		}
		if ls.silent || (ls.asked && !ls.progress && !ls.restarted) || s.asked >= maxRounds {
			ls.gaveUp = true
			continue
		}
		pending = true
	}
	return pending
}

// logName names a log kind for reasons.
func logName(kind uint8) string {
	if kind == patnc.LogIMA {
		return "IMA measurement log"
	}
	return "measured-boot event log"
}

// attrName names a trustnac attribute for reasons.
func attrName(id patnc.AttrID) string {
	if id.Vendor == patnc.VendorTrustnac {
		switch id.Type {
		case patnc.AttrTPMQuoteRequest:
			return "quote request"
		case patnc.AttrTPMQuote:
			return "quote"
		case patnc.AttrTPMAK:
			return "attestation key"
		case patnc.AttrTPMEK:
			return "endorsement key"
		case patnc.AttrTPMCredentialChallenge:
			return "credential challenge"
		case patnc.AttrTPMCredentialResponse:
			return "credential response"
		case patnc.AttrMeasurementLog:
			return "measurement log"
		case patnc.AttrPSKRequest:
			return "PSK request"
		}
	}
	return "attribute " + id.String()
}

func (s *session) deny(reason string) {
	if !slices.Contains(s.denied, reason) {
		s.denied = append(s.denied, reason)
	}
}

func (s *session) isolated(reason string) {
	if !slices.Contains(s.isolate, reason) {
		s.isolate = append(s.isolate, reason)
	}
}

func (s *session) note(reason string) {
	if !slices.Contains(s.notes, reason) {
		s.notes = append(s.notes, reason)
	}
}
