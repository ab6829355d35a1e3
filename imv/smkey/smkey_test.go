package smkeyimv

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"

	"trustnac/imc"
	smkeyimc "trustnac/imc/smkey"
	"trustnac/imv"
	"trustnac/transport/patnc"
)

// memIssuer is a PSKIssuer in memory.
type memIssuer struct {
	mu     sync.Mutex
	keys   map[string][]byte
	issued []string // "endpoint fingerprint"
}

func (m *memIssuer) IssuePSK(endpoint, fp string) (string, []byte, time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var id [8]byte
	key := make([]byte, 32)
	rand.Read(id[:])
	rand.Read(key)
	identity := "trustnac-psk-" + hex.EncodeToString(id[:])
	if m.keys == nil {
		m.keys = map[string][]byte{}
	}
	m.keys[identity] = key
	m.issued = append(m.issued, endpoint+" "+fp)
	return identity, key, time.Unix(1900000000, 0), nil
}

// terminal is an endpoint with an SM2 key file and the PSKs it received.
type terminal struct {
	c   *smkeyimc.Collector
	got map[string][]byte
}

func newTerminal(t testing.TB) *terminal {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sm2.pem")
	if _, err := smkeyimc.GenerateKeyFile(path); err != nil {
		t.Fatal(err)
	}
	tm := &terminal{got: map[string][]byte{}}
	c, err := smkeyimc.New(smkeyimc.Config{KeyFile: path, Enroll: func() bool { return true },
		OnPSK: func(id string, key []byte, _ time.Time) { tm.got[id] = bytes.Clone(key) }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tm.c = c
	return tm
}

func wire(t testing.TB, attrs []patnc.Attribute) *patnc.Message {
	t.Helper()
	body, err := (&patnc.Message{ID: 1, Attributes: attrs}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	m, err := patnc.ParseMessage(body, 16)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// run runs one assessment between a verifier and a collector session and
// returns the verifier's result and the grants it sent.
func run(t testing.TB, v *Verifier, ep imv.Endpoint, c imc.Collector) (imv.Result, []*patnc.PSKGrant) {
	t.Helper()
	ctx := context.Background()
	vs, _ := v.NewSession(ctx, ep)
	cs, _ := c.NewSession(ctx)
	attrs, err := cs.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var grants []*patnc.PSKGrant
	for range 10 {
		if len(attrs) > 0 {
			if _, err := vs.Receive(ctx, wire(t, attrs)); err != nil {
				t.Fatal(err)
			}
		}
		out, err := vs.BatchEnding(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(out) == 0 {
			return vs.Result(), grants
		}
		for _, a := range out {
			val, err := patnc.DecodeAttribute(a)
			if err != nil {
				t.Fatal(err)
			}
			if g, ok := val.(*patnc.PSKGrant); ok {
				grants = append(grants, g)
			}
		}
		if attrs, err = cs.Receive(ctx, wire(t, out)); err != nil {
			t.Fatal(err)
		}
	}
	t.Fatal("no end")
	return imv.Result{}, nil
}

func registry(t testing.TB, entries ...string) *Registry {
	t.Helper()
	r, err := ParseRegistry([]byte(strings.Join(entries, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestEnrollSM2KeyPair(t *testing.T) {
	alice, mallory := newTerminal(t), newTerminal(t)
	if alice.c.Fingerprint() != Fingerprint(alice.c.PublicKeyPKIX()) {
		t.Fatal("the two sides name the key differently")
	}
	reg := registry(t, "registered by the admin on 2026-03-01", string(alice.c.PublicKeyPEM("term-17")))
	allow := true
	is := &memIssuer{}
	v := New(Config{Keys: reg, Allow: func(ep imv.Endpoint) bool { return allow && ep.ID == "term-17" }, Issuer: is}, nil)
	ep := imv.Endpoint{ID: "term-17", Channel: "pt-tls"}

	// Registered and allowed: both sides hold the same key.
	r, gs := run(t, v, ep, alice.c)
	if len(gs) != 1 || gs[0].Refused || gs[0].Kind != patnc.PSKKindSM2 {
		t.Fatalf("grants %+v", gs)
	}
	key := is.keys[gs[0].Identity]
	if got := alice.got[gs[0].Identity]; len(got) != 32 || !bytes.Equal(got, key) {
		t.Fatalf("terminal holds %x, issuer %x", got, key)
	}
	if bytes.Contains(gs[0].Ciphertext, key) || len(gs[0].Ciphertext) != 65+32+32 {
		t.Fatalf("ciphertext of %d bytes", len(gs[0].Ciphertext))
	}
	if is.issued[0] != "term-17 "+alice.c.Fingerprint() {
		t.Fatalf("issued %v", is.issued)
	}
	if r.Recommendation != imv.NoRecommendation || r.Facts["granted"] != true || r.Facts["registered"] != true ||
		r.Facts["endpoint"] != "term-17" || r.Facts["key"] != alice.c.Fingerprint() {
		t.Fatalf("result %+v", r)
	}
	// The grant is of no use to another key holder.
	if k, err := mallory.c.Decrypt(gs[0]); err == nil {
		t.Fatalf("another key decrypted the PSK: %x", k)
	}

	// A registered key presented by another endpoint.
	if _, gs := run(t, New(Config{Keys: reg, Allow: func(imv.Endpoint) bool { return true }, Issuer: is}, nil),
		imv.Endpoint{ID: "term-18"}, alice.c); len(gs) != 1 || !gs[0].Refused || gs[0].Reason != ReasonOtherEP {
		t.Fatalf("another endpoint: %+v", gs)
	}
	// Registered under the authenticated identity: granted for it.
	regID := registry(t, string(alice.c.PublicKeyPEM("alice@example")))
	if _, gs := run(t, New(Config{Keys: regID, Allow: func(imv.Endpoint) bool { return true }, Issuer: is}, nil),
		imv.Endpoint{ID: "mac:02:00:00:00:00:01", Identity: "alice@example"}, alice.c); len(gs) != 1 || gs[0].Refused ||
		is.issued[len(is.issued)-1] != "mac:02:00:00:00:00:01 "+alice.c.Fingerprint() {
		t.Fatalf("by identity: %+v, issued %v", gs, is.issued)
	}

	for _, tc := range []struct {
		name   string
		v      *Verifier
		c      imc.Collector
		reason string
	}{
		{"unregistered key", v, mallory.c, ReasonUnregistered},
		{"policy says no", New(Config{Keys: reg, Allow: func(imv.Endpoint) bool { return false }, Issuer: is}, nil), alice.c, ReasonPolicy},
		{"no policy hook", New(Config{Keys: reg, Issuer: is}, nil), alice.c, ReasonPolicy},
		{"no registry", New(Config{Allow: func(imv.Endpoint) bool { return true }, Issuer: is}, nil), alice.c, ReasonUnregistered},
		{"no issuer", New(Config{Keys: reg, Allow: func(imv.Endpoint) bool { return true }}, nil), alice.c, ReasonNoIssuer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := len(is.issued)
			before := len(alice.got) + len(mallory.got)
			r, gs := run(t, tc.v, ep, tc.c)
			if len(gs) != 1 || !gs[0].Refused || gs[0].Reason != tc.reason {
				t.Fatalf("grants %+v, want refusal %q", gs, tc.reason)
			}
			if len(is.issued) != n || len(alice.got)+len(mallory.got) != before {
				t.Fatal("a PSK was issued or taken")
			}
			if r.Facts["granted"] != false || len(r.Reasons) != 1 || r.Reasons[0] != tc.reason {
				t.Fatalf("result %+v", r)
			}
		})
	}
}

// TestVerifierRefusesOddRequests sends requests a genuine collector does
// not: a TPM kind, a request without a key, a key that is not SM2.
func TestVerifierRefusesOddRequests(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p256DER, _ := smx509.MarshalPKIXPublicKey(&p256.PublicKey)
	v := New(Config{Allow: func(imv.Endpoint) bool { return true }, Issuer: &memIssuer{}}, nil)
	for _, tc := range []struct {
		name   string
		vals   []patnc.Value
		reason string
	}{
		{"TPM kind", []patnc.Value{&patnc.PSKRequest{Kind: patnc.PSKKindTPM}}, ReasonWrongKind},
		{"no key", []patnc.Value{&patnc.PSKRequest{Kind: patnc.PSKKindSM2}}, ReasonNoKey},
		{"P-256 key", []patnc.Value{&patnc.SM2PublicKey{PKIX: p256DER}, &patnc.PSKRequest{Kind: patnc.PSKKindSM2}}, ReasonBadKey},
		{"garbage key", []patnc.Value{&patnc.SM2PublicKey{PKIX: []byte{0x30, 0x00}}, &patnc.PSKRequest{Kind: patnc.PSKKindSM2}}, ReasonBadKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			vs, _ := v.NewSession(ctx, imv.Endpoint{ID: "x"})
			m := &patnc.Message{ID: 1}
			for _, val := range tc.vals {
				if err := m.Add(val, false); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := vs.Receive(ctx, wire(t, m.Attributes)); err != nil {
				t.Fatal(err)
			}
			out, err := vs.BatchEnding(ctx)
			if err != nil || len(out) != 1 {
				t.Fatalf("answered %v, %v", out, err)
			}
			val, _ := patnc.DecodeAttribute(out[0])
			if g, ok := val.(*patnc.PSKGrant); !ok || !g.Refused || g.Reason != tc.reason {
				t.Fatalf("answer %+v, want refusal %q", val, tc.reason)
			}
			// Asked once, answered once.
			if out, _ := vs.BatchEnding(ctx); len(out) != 0 {
				t.Fatalf("answered twice: %v", out)
			}
		})
	}
	// No request: nothing to say, no recommendation.
	vs, _ := v.NewSession(context.Background(), imv.Endpoint{})
	if out, _ := vs.BatchEnding(context.Background()); len(out) != 0 || vs.Result().Recommendation != imv.NoRecommendation {
		t.Fatalf("unasked: %v", out)
	}
}

func TestParseRegistry(t *testing.T) {
	a, b := newTerminal(t), newTerminal(t)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p256DER, _ := smx509.MarshalPKIXPublicKey(&p256.PublicKey)
	noEndpoint := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: a.c.PublicKeyPKIX()}))
	r := registry(t, "# keys\n", string(a.c.PublicKeyPEM("alpha")), "some note", string(b.c.PublicKeyPEM(" beta ")))
	if r.Len() != 2 {
		t.Fatalf("%d keys", r.Len())
	}
	for _, tc := range []struct {
		c  *smkeyimc.Collector
		ep string
	}{{a.c, "alpha"}, {b.c, "beta"}} {
		got, ok := r.Lookup(tc.c.Fingerprint())
		if !ok || got.Endpoint != tc.ep || got.Fingerprint != tc.c.Fingerprint() {
			t.Fatalf("Lookup = %+v, %v", got, ok)
		}
	}
	if _, ok := r.Lookup("sm3:00"); ok {
		t.Fatal("unknown fingerprint found")
	}
	if _, ok := (*Registry)(nil).Lookup(a.c.Fingerprint()); ok {
		t.Fatal("nil registry found a key")
	}
	for _, tc := range []struct{ name, file string }{
		{"certificate block", "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n"},
		{"no endpoint", noEndpoint},
		{"P-256 key", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Headers: map[string]string{"Endpoint": "x"}, Bytes: p256DER}))},
		{"not DER", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Headers: map[string]string{"Endpoint": "x"}, Bytes: []byte{1, 2, 3}}))},
		{"registered twice", string(a.c.PublicKeyPEM("alpha")) + string(a.c.PublicKeyPEM("gamma"))},
		{"endpoint too long", string(a.c.PublicKeyPEM(strings.Repeat("e", maxEndpointLen+1)))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r, err := ParseRegistry([]byte(tc.file)); !errors.Is(err, ErrKeyFile) || r != nil {
				t.Fatalf("ParseRegistry = %v, %v; want ErrKeyFile", r, err)
			}
		})
	}
	// From a file.
	path := filepath.Join(t.TempDir(), "keys.pem")
	os.WriteFile(path, a.c.PublicKeyPEM("alpha"), 0o600)
	if r, err := LoadRegistry(path); err != nil || r.Len() != 1 {
		t.Fatalf("LoadRegistry = %v, %v", r, err)
	}
	if _, err := LoadRegistry(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("missing file loaded")
	}
}

func TestFingerprint(t *testing.T) {
	// SM3("abc") from GB/T 32905-2016 Appendix A.1.
	want := "sm3:66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
	if got := Fingerprint([]byte("abc")); got != want {
		t.Fatalf("Fingerprint(abc) = %s", got)
	}
	d := sm3.Sum([]byte("abc"))
	if "sm3:"+hex.EncodeToString(d[:]) != want {
		t.Fatal("sm3 disagrees with the standard's vector")
	}
}

// FuzzParseRegistry: no input panics; what parses has at most one entry
// per PUBLIC KEY block, each an SM2 key under its own fingerprint.
func FuzzParseRegistry(f *testing.F) {
	for _, name := range []string{"two-keys.pem", "bad-type.pem", "no-endpoint.pem", "duplicate.pem", "p256.pem"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRegistry(data)
		if err != nil {
			if !errors.Is(err, ErrKeyFile) || r != nil {
				t.Fatalf("error %v with registry %v", err, r)
			}
			return
		}
		if r.Len() > bytes.Count(data, []byte("-----BEGIN PUBLIC KEY-----")) {
			t.Fatalf("%d keys from fewer blocks", r.Len())
		}
		for fp, reg := range r.byFP {
			if fp != reg.Fingerprint || reg.Endpoint == "" || reg.Public == nil {
				t.Fatalf("entry %s: %+v", fp, reg)
			}
			der, err := smx509.MarshalPKIXPublicKey(reg.Public)
			if err != nil {
				t.Fatal(err)
			}
			if _, fp2, err := ParsePublicKey(der); err != nil || fp2 == "" {
				t.Fatalf("registered key does not re-parse: %v", err)
			}
		}
	})
}
