package tpmimc

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
	"time"

	"github.com/emmansun/gmsm/sm3"
	"github.com/google/go-tpm/tpm2"

	"trustnac/imc"
	"trustnac/transport/patnc"
)

// pskKeyLen bounds the key a PSK grant may deliver: a credential secret
// is at most one EK nameAlg digest.
const (
	minPSKKey = 16
	maxPSKKey = 64
)

// wantsPSK reports whether the agent asks for a PSK in this handshake.
func (c *Collector) wantsPSK() bool {
	return c.cfg.Enroll != nil && c.cfg.OnPSK != nil && c.cfg.Enroll()
}

// ActivatePSK recovers the key of a PSK grant of kind patnc.PSKKindTPM with
// TPM2_ActivateCredential (see ActivateCredential): only the TPM of the EK
// the grant was wrapped to, holding the AK it names, recovers it.
func (c *Collector) ActivatePSK(ctx context.Context, g *patnc.PSKGrant) ([]byte, error) {
	if g == nil || g.Refused || g.Kind != patnc.PSKKindTPM || g.Identity == "" {
		return nil, fmt.Errorf("%w: not a TPM PSK grant", ErrBadRequest)
	}
	key, err := c.ActivateCredential(ctx, &patnc.TPMCredentialChallenge{IDObject: g.IDObject, EncSecret: g.EncSecret})
	if err != nil {
		return nil, err
	}
	if len(key) < minPSKKey || len(key) > maxPSKKey {
		return nil, fmt.Errorf("%w: PSK of %d bytes", ErrBadResponse, len(key))
	}
	return key, nil
}

// pskGrant handles a PSK grant: a refusal is logged with its reason; a
// grant is activated and handed to Config.OnPSK. The key is never logged.
func (c *Collector) pskGrant(ctx context.Context, g *patnc.PSKGrant) {
	if g.Refused {
		c.log.Warn("PDP refused the SM channel key", "reason", g.Reason)
		return
	}
	key, err := c.ActivatePSK(ctx, g)
	if err != nil {
		c.log.Warn("cannot activate the SM channel key", "identity", g.Identity, "err", err)
		return
	}
	c.log.Info("received SM channel key", "identity", g.Identity, "expires", g.Expires.Format(time.RFC3339))
	c.cfg.OnPSK(g.Identity, key, g.Expires)
}

// boundNonce returns the qualifying data of a quote over nonce: the nonce,
// or with a channel binding in ctx H(nonce || binding) with the AK's
// scheme hash, as the verifier expects (patnc.ChannelBindingLabel).
func (c *Collector) boundNonce(ctx context.Context, nonce []byte) ([]byte, error) {
	binding := imc.ChannelBinding(ctx)
	if len(binding) == 0 {
		return nonce, nil
	}
	ak, err := c.AK(ctx)
	if err != nil {
		return nil, err
	}
	h, err := bindingHash(ak.SchemeHash)
	if err != nil {
		return nil, err
	}
	h.Write(nonce)
	h.Write(binding)
	return h.Sum(nil), nil
}

// bindingHash returns the hash of a TPM_ALG_ID for the channel binding.
func bindingHash(alg tpm2.TPMAlgID) (hash.Hash, error) {
	switch alg {
	case tpm2.TPMAlgSHA256:
		return sha256.New(), nil
	case tpm2.TPMAlgSHA384:
		return sha512.New384(), nil
	case tpm2.TPMAlgSM3256:
		return sm3.New(), nil
	}
	return nil, fmt.Errorf("tpmimc: no channel binding with AK hash %#04x", uint16(alg))
}
