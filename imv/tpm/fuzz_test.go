package tpmimv

import (
	"bytes"
	"context"
	"reflect"
	"testing"

	"trustnac/imv"
	"trustnac/transport/patnc"
)

// The seed corpora under testdata/fuzz hold tpm2-tools' quotes from swtpm
// (ECDSA and SM2), constructed quotes with SM3 banks, and malformed ones.

// FuzzParseAttest checks that any TPMS_ATTEST the parser accepts encodes
// back to exactly its bytes and parses again to the same value.
func FuzzParseAttest(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := parseAttest(b)
		if err != nil {
			return
		}
		enc := a.appendBinary(nil)
		if !bytes.Equal(enc, b) {
			t.Fatalf("re-encodes to %x", enc)
		}
		again, err := parseAttest(enc)
		if err != nil || !reflect.DeepEqual(a, again) {
			t.Fatalf("re-parses to %+v, %v", again, err)
		}
		for _, s := range a.PCRSelect {
			if s.count() != len(s.indexes()) {
				t.Fatal("count and indexes disagree")
			}
		}
	})
}

// FuzzParseSignature checks the TPMT_SIGNATURE round trip and that DER
// conversion and verification never panic.
func FuzzParseSignature(f *testing.F) {
	ak := newTestAK(f, AKAlgSM2, 0)
	ec := newTestAK(f, AKAlgECDSAP256, 0)
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := parseSignature(b)
		if err != nil {
			return
		}
		enc := s.appendBinary(nil)
		if !bytes.Equal(enc, b) {
			t.Fatalf("re-encodes to %x", enc)
		}
		again, err := parseSignature(enc)
		if err != nil || !reflect.DeepEqual(s, again) {
			t.Fatalf("re-parses to %+v, %v", again, err)
		}
		// Random signatures must not verify, and must not crash.
		if ak.key.verify([]byte("message"), s) == nil || ec.key.verify([]byte("message"), s) == nil {
			t.Fatal("a fuzzed signature verified")
		}
	})
}

// FuzzParsePublic checks the TPMT_PUBLIC round trip, and that a key
// parseAK accepts has a name that is its nameAlg over its bytes.
func FuzzParsePublic(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parsePublic(b)
		if err != nil {
			return
		}
		enc := p.appendBinary(nil)
		if !bytes.Equal(enc, b) {
			t.Fatalf("re-encodes to %x", enc)
		}
		k, err := parseAK(b)
		if err != nil {
			return
		}
		if !bytes.Equal(k.name[2:], sum(p.NameAlg, nil, b)) || k.alg == "" || k.pub == nil {
			t.Fatalf("key %+v", k)
		}
	})
}

// FuzzParsePCRFile reads tpm2_quote -o files along a quote's selection
// and checks the digest without panicking; the values form never
// succeeds for a length other than the selection's.
func FuzzParsePCRFile(f *testing.F) {
	a := &attest{PCRSelect: []pcrSelection{sel(algSHA256, 0, 1, 2, 7), sel(algSHA1, 0, 7)}, PCRDigest: make([]byte, 32)}
	f.Fuzz(func(t *testing.T, b []byte) {
		get, err := parsePCRFile(b, a)
		if err != nil {
			return
		}
		pcrs, err := checkPCRDigest(a, algSHA256, get, nil)
		if err == nil {
			t.Fatalf("digest of zeros matched %v", pcrs)
		}
	})
}

// FuzzSession feeds PA-TNC messages to a session whose AK is enrolled,
// after the quote request of the first batch: whatever arrives, the
// session must not panic, must end within a bounded number of rounds, and
// must never allow without a verified quote.
func FuzzSession(f *testing.F) {
	ak := newTestAK(f, AKAlgECDSAP256, 0)
	f.Fuzz(func(t *testing.T, first, second []byte) {
		store := NewMemAKStore()
		approve(t, store, ak, MethodEKCert)
		v := New(Config{AKs: store}, nil)
		s, _ := v.NewSession(context.Background(), testEP)
		sess := s.(*session)
		exchange(t, s, patnc.NewTPMAK(ak.public))
		for _, b := range [][]byte{first, second} {
			m, err := patnc.ParseMessage(b, 64)
			if err != nil {
				continue
			}
			if _, err := s.Receive(context.Background(), m); err != nil {
				t.Fatal(err)
			}
			if _, err := s.BatchEnding(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		r := s.Result()
		if r.Recommendation == imv.Allow && sess.quote == nil {
			t.Fatal("allowed without a verified quote")
		}
	})
}
