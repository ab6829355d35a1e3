package tpmimc

import (
	"context"

	"trustnac/transport/patnc"
)

// session is the collector's part of one handshake. It keeps no state but
// whether it asked for a PSK: every request is answered from the TPM and
// the logs as they are now.
type session struct {
	c        *Collector
	askedPSK bool // a PSK Request went out; the first grant is taken
}

// Begin returns the AK (AttrTPMAK) and the EK with its certificate
// (AttrTPMEK). Without an AK it sends nothing: the verifier cannot attest
// this endpoint and will say so. An EK that cannot be read is left out.
//
// With Config.Enroll saying so, a PSK Request for the SM channel goes
// with them.
func (s *session) Begin(ctx context.Context) ([]patnc.Attribute, error) {
	out := s.c.keyAttributes(ctx, true, true)
	if len(out) > 0 && s.c.wantsPSK() {
		if a, ok := s.c.encode(&patnc.PSKRequest{Kind: patnc.PSKKindTPM}); ok {
			out = append(out, a)
			s.askedPSK = true
		}
	}
	return out, nil
}

// Receive answers the verifier (see README.md):
//   - a PSK Grant by activating its key and handing it to Config.OnPSK;
//   - a TPM Credential Challenge with a TPM Credential Response;
//   - a TPM Quote Request with a TPM Quote (none when the request selects
//     no PCRs: a request for more log only) and one Measurement Log piece
//     per requested log;
//   - an Attribute Request naming AttrTPMAK or AttrTPMEK with those.
//
// A NOSKIP attribute it does not know, or one that does not parse, makes
// it ignore the whole message and answer with a PA-TNC Error (RFC 5792
// §4.2, §4.2.8). TPM failures are logged and leave their answer out.
func (s *session) Receive(ctx context.Context, msg *patnc.Message) ([]patnc.Attribute, error) {
	values, rejected := msg.DecodeAll()
	if len(rejected) > 0 {
		for _, r := range rejected {
			s.c.log.Warn("rejecting PA-TNC message from verifier", "attr", r.Attr.ID().String(), "err", r.Err)
		}
		return patnc.Answers(rejected)
	}
	var (
		req            *patnc.TPMQuoteRequest
		ch             *patnc.TPMCredentialChallenge
		grant          *patnc.PSKGrant
		wantAK, wantEK bool
	)
	for _, v := range values {
		switch v := v.(type) {
		case *patnc.TPMQuoteRequest:
			if req == nil {
				req = v
			}
		case *patnc.TPMCredentialChallenge:
			if ch == nil {
				ch = v
			}
		case *patnc.PSKGrant:
			if grant == nil {
				grant = v
			}
		case *patnc.AttributeRequest:
			for _, id := range *v {
				if id.Vendor != patnc.VendorTrustnac {
					continue
				}
				switch id.Type {
				case patnc.AttrTPMAK:
					wantAK = true
				case patnc.AttrTPMEK:
					wantEK = true
				}
			}
		case *patnc.PAError:
			s.c.log.Warn("verifier reported a PA-TNC error", "vendor", v.Vendor, "code", v.Code)
		}
	}
	var out []patnc.Attribute
	if wantAK || wantEK {
		out = append(out, s.c.keyAttributes(ctx, wantAK, wantEK)...)
	}
	if ch != nil {
		if a, ok := s.c.credentialResponse(ctx, ch); ok {
			out = append(out, a)
		}
	}
	if req != nil {
		out = append(out, s.c.quoteAttributes(ctx, req)...)
	}
	if grant != nil {
		if s.askedPSK {
			s.askedPSK = false
			s.c.pskGrant(ctx, grant)
		} else {
			s.c.log.Warn("PSK grant that was not asked for ignored")
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// encode encodes v, logging a failure.
func (c *Collector) encode(v patnc.Value) (patnc.Attribute, bool) {
	a, err := patnc.EncodeAttribute(v, false)
	if err != nil {
		c.log.Warn("cannot encode attribute", "attr", v.AttrID().String(), "err", err)
		return patnc.Attribute{}, false
	}
	return a, true
}

// keyAttributes returns the AK and EK attributes asked for. Without an AK,
// nothing.
func (c *Collector) keyAttributes(ctx context.Context, ak, ek bool) []patnc.Attribute {
	var out []patnc.Attribute
	if ak {
		k, err := c.AK(ctx)
		if err != nil {
			c.log.Warn("no attestation key", "err", err)
			return nil
		}
		if a, ok := c.encode(patnc.NewTPMAK(k.PublicBytes)); ok {
			out = append(out, a)
		}
	}
	if ek {
		pub, cert, err := c.EK(ctx)
		if err != nil {
			c.log.Warn("no endorsement key", "err", err)
		} else if a, ok := c.encode(patnc.NewTPMEK(pub, cert)); ok {
			out = append(out, a)
		}
	}
	return out
}

// credentialResponse activates the credential of a challenge. The secret
// is never logged.
func (c *Collector) credentialResponse(ctx context.Context, ch *patnc.TPMCredentialChallenge) (patnc.Attribute, bool) {
	secret, err := c.ActivateCredential(ctx, ch)
	if err != nil {
		c.log.Warn("credential activation failed", "err", err)
		return patnc.Attribute{}, false
	}
	c.log.Info("activated credential")
	return c.encode(&patnc.TPMCredentialResponse{Secret: secret})
}

// quoteAttributes answers a quote request: the quote when PCRs are
// selected, then one piece of each requested log, read after the quote so
// that the log covers at least what the quote does.
func (c *Collector) quoteAttributes(ctx context.Context, req *patnc.TPMQuoteRequest) []patnc.Attribute {
	var out []patnc.Attribute
	if len(req.Selections) > 0 {
		nonce, err := c.boundNonce(ctx, req.Nonce)
		var q *patnc.TPMQuote
		if err == nil {
			q, err = c.Quote(ctx, nonce, req.Selections)
		}
		if err != nil {
			c.log.Warn("quote failed", "err", err)
		} else if a, ok := c.encode(q); ok {
			out = append(out, a)
			c.log.Debug("quoted", "pcrs", len(q.PCRs))
		}
	}
	done := map[uint8]bool{}
	for _, l := range req.Logs {
		if l.Offset == patnc.NoLog || done[l.Kind] {
			continue
		}
		done[l.Kind] = true
		piece, err := c.LogPiece(l.Kind, l.Offset)
		if err != nil {
			c.log.Debug("measurement log not sent", "kind", l.Kind, "err", err)
			continue
		}
		if piece == nil {
			continue
		}
		if a, ok := c.encode(piece); ok {
			out = append(out, a)
		}
	}
	return out
}
