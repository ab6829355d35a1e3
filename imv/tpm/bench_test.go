package tpmimv

import (
	"crypto/ecdsa"
	"testing"

	"github.com/emmansun/gmsm/sm2"

	"trustnac/transport/patnc"
)

// The goal: quote verification at ≥ 90% of the rate of bare
// signature verification with the same keys. BenchmarkVerifyQuote runs
// everything the session checks in a quote except the store's counter
// update: AK lookup in the key cache, TPMT_SIGNATURE and TPMS_ATTEST
// parsing, the signature, magic, type, nonce, selection and PCR digest
// (PCRs 0–7 and 10 in the sha256 and sha1 banks). BenchmarkBareVerify is
// crypto/ecdsa or gmsm's sm2 verifying the same digest with the same key.

var benchAlgs = []struct{ name, alg string }{{"ecdsa", AKAlgECDSAP256}, {"sm2", AKAlgSM2}}

func benchQuote(b *testing.B, alg string) (*testAK, *patnc.TPMQuote, []byte, *Verifier) {
	ak := newTestAK(b, alg, 0)
	tp := newTestTPM(b, ak)
	for i := range 24 {
		tp.extend(i, []byte{byte(i)})
	}
	v := New(Config{}, nil)
	nonce := make([]byte, 32)
	req := &patnc.TPMQuoteRequest{Nonce: nonce}
	for _, bank := range v.cfg.Banks {
		req.Selections = append(req.Selections, patnc.PCRSelection{Hash: bank, PCRs: []uint8{0, 1, 2, 3, 4, 5, 6, 7, 10}})
	}
	return ak, tp.quote(b, req), nonce, v
}

func BenchmarkVerifyQuote(b *testing.B) {
	for _, a := range benchAlgs {
		b.Run(a.name, func(b *testing.B) {
			ak, q, nonce, v := benchQuote(b, a.alg)
			b.SetBytes(int64(len(q.Attest)))
			b.ReportAllocs()
			for b.Loop() {
				k, err := v.keys.get(ak.public)
				if err != nil {
					b.Fatal(err)
				}
				if _, _, err := verifyTPMQuote(k, q, nonce, v.cfg.Banks, v.cfg.PCRs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkBareVerify(b *testing.B) {
	for _, a := range benchAlgs {
		b.Run(a.name, func(b *testing.B) {
			ak, q, _, _ := benchQuote(b, a.alg)
			sig, err := parseSignature(q.Signature)
			if err != nil {
				b.Fatal(err)
			}
			digest := sum(sig.Hash, nil, q.Attest)
			der, _ := appendDERSignature(nil, sig.R, sig.S)
			pub := ak.key.pub
			verify := ecdsa.VerifyASN1
			if a.alg == AKAlgSM2 {
				verify = sm2.VerifyASN1
			}
			b.SetBytes(int64(len(q.Attest)))
			b.ReportAllocs()
			for b.Loop() {
				if !verify(pub, digest, der) {
					b.Fatal("does not verify")
				}
			}
		})
	}
}

// BenchmarkSession runs a whole assessment of an enrolled AK: quote
// request, quote, store update, facts.
func BenchmarkSession(b *testing.B) {
	l := newLab(b, AKAlgECDSAP256, Config{})
	approve(b, l.store, l.ak, MethodEKCert)
	b.ReportAllocs()
	for b.Loop() {
		if r := l.run(b, l.session(b)); r.Facts["quote_verified"] != true {
			b.Fatal(r.Reasons)
		}
	}
}
