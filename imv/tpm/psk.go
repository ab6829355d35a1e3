package tpmimv

import (
	"bytes"
	"time"

	"trustnac/transport/patnc"
)

// PSKIssuer issues the PSK of the SM channel (DESIGN.md, "The SM channel")
// for an endpoint whose attestation key akName ("sha256:<hex>", as
// AKRecord.Name) is approved. It returns the PSK identity, the key (at
// most 32 bytes: the credential secret is bounded by the EK's nameAlg
// digest) and when it expires. The PDP's PSK store provides one
// (pdp.PSKIssuer); it may hand out an endpoint's current PSK again.
type PSKIssuer interface {
	IssuePSK(endpoint, akName string) (identity string, key []byte, expires time.Time, err error)
}

// Reasons sent in a refused PSK grant. They are for the endpoint and carry
// no internal error text.
const (
	pskNoIssuer   = "this PDP does not issue SM channel keys"
	pskWrongKind  = "the TPM verifier issues only TPM-wrapped SM channel keys"
	pskNoQuote    = "no quote over this session's nonce verified, so no SM channel key is issued"
	pskNotTrusted = "the attestation key is not approved, so no SM channel key is issued"
	pskNoEK       = "the endorsement key the attestation key was enrolled with is unknown or unusable, so no SM channel key is issued"
	pskEKChanged  = "the endpoint reported another endorsement key than its attestation key was enrolled with, so no SM channel key is issued"
	pskFailed     = "the PDP could not issue an SM channel key"
)

// pskRequested records a PSK Request of the collector.
func (s *session) pskRequested(r *patnc.PSKRequest) {
	if s.pskKind == 0 {
		s.pskKind = r.Kind
	}
}

// pskAnswer returns the answer to an outstanding PSK request once it can
// be given: a grant once the AK is approved and a quote over this
// session's nonce verified, a refusal when that cannot happen in this
// session (final), or nothing yet. The key is wrapped by
// TPM2_MakeCredential to the EK the AK was enrolled with and the AK's
// name, so only the TPM that holds both can recover it.
func (s *session) pskAnswer(final bool) (*patnc.Attribute, error) {
	if s.pskKind == 0 || s.pskAnswered {
		return nil, nil
	}
	refuse := func(reason string) (*patnc.Attribute, error) {
		s.pskAnswered = true
		s.log.Info("SM channel key refused", "reason", reason)
		a, err := patnc.EncodeAttribute(&patnc.PSKGrant{Kind: s.pskKind, Refused: true, Reason: reason}, false)
		if err != nil {
			return nil, err
		}
		return &a, nil
	}
	switch {
	case s.pskKind != patnc.PSKKindTPM:
		return refuse(pskWrongKind)
	case s.v.cfg.PSKIssuer == nil:
		return refuse(pskNoIssuer)
	case s.rec != nil && s.rec.Status != StatusApproved && s.rec.Status != StatusPending:
		return refuse(pskNotTrusted)
	case s.quote == nil || s.rec == nil || s.rec.Status != StatusApproved:
		if !final {
			return nil, nil
		}
		if s.quote == nil {
			return refuse(pskNoQuote)
		}
		return refuse(pskNotTrusted)
	}
	ekPublic := s.rec.EKPublic
	if len(ekPublic) == 0 {
		ekPublic = s.ekPublic
	} else if s.ekPublic != nil && !bytes.Equal(ekPublic, s.ekPublic) {
		s.log.Warn("endpoint reports another EK than its AK was enrolled with")
		return refuse(pskEKChanged)
	}
	if len(ekPublic) == 0 {
		return refuse(pskNoEK)
	}
	ek, err := parseEK(ekPublic)
	if err != nil {
		s.log.Warn("unusable endorsement key for the SM channel key", "err", err)
		return refuse(pskNoEK)
	}
	identity, key, expires, err := s.v.cfg.PSKIssuer.IssuePSK(s.ep.ID, s.ak.id)
	if err != nil {
		s.log.Error("PSK issuer failed", "err", err)
		return refuse(pskFailed)
	}
	idObject, encSecret, err := makeCredential(ek, s.ak.name, key)
	if err != nil {
		s.log.Error("cannot wrap the SM channel key", "err", err)
		return refuse(pskFailed)
	}
	g := &patnc.PSKGrant{Kind: patnc.PSKKindTPM, Identity: identity, Expires: expires.UTC().Truncate(time.Second),
		IDObject: idObject, EncSecret: encSecret}
	a, err := patnc.EncodeAttribute(g, false)
	if err != nil {
		s.log.Error("cannot encode the PSK grant", "err", err)
		return refuse(pskFailed)
	}
	s.pskAnswered, s.pskGranted = true, true
	s.log.Info("SM channel key granted", "identity", identity, "expires", g.Expires)
	return &a, nil
}

// bindingHash is the hash a channel binding is combined with for an AK:
// the hash of its signing scheme, or its nameAlg for a key without one.
func (k *akKey) bindingHash() uint16 {
	if k.area.Scheme != algNull && digestSize(k.area.SchemeHash) > 0 {
		return k.area.SchemeHash
	}
	return k.area.NameAlg
}

// qualifyingData is what the quote over nonce must carry as extraData: the
// nonce, or with a channel binding H(nonce || binding) with the AK's
// bindingHash (SHA-256 or SM3-256 for trustnac's AKs).
func qualifyingData(k *akKey, nonce, binding []byte) []byte {
	if len(binding) == 0 {
		return nonce
	}
	h := newHash(k.bindingHash())
	h.Write(nonce)
	h.Write(binding)
	return h.Sum(nil)
}
