package smkeyimc

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"

	"trustnac/transport/patnc"
)

func newKeyFile(t testing.TB) (string, *sm2.PrivateKey) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sm2.pem")
	k, err := GenerateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, k
}

func TestKeyFiles(t *testing.T) {
	path, k := newKeyFile(t)
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v", st.Mode(), err)
	}
	if _, err := GenerateKeyFile(path); err == nil {
		t.Fatal("GenerateKeyFile overwrote a key")
	}
	got, err := LoadKeyFile(path)
	if err != nil || !got.Equal(k) {
		t.Fatalf("LoadKeyFile = %v", err)
	}
	sec1, err := smx509.MarshalSM2PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p256DER, _ := smx509.MarshalPKCS8PrivateKey(p256)
	for _, tc := range []struct {
		name string
		pem  []byte
		ok   bool
	}{
		{"SEC 1 after other blocks", append([]byte("comment\n-----BEGIN PUBLIC KEY-----\nMAA=\n-----END PUBLIC KEY-----\n"),
			pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})...), true},
		{"P-256 PKCS 8", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p256DER}), false},
		{"garbage PKCS 8", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2}}), false},
		{"garbage SEC 1", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte{1, 2}}), false},
		{"no PEM", []byte("not a key"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParsePrivateKeyPEM(tc.pem)
			if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrKey)) {
				t.Fatalf("ParsePrivateKeyPEM = %v", err)
			}
			if tc.ok && !got.Equal(k) {
				t.Fatal("another key")
			}
		})
	}
	if _, err := New(Config{}, nil); !errors.Is(err, ErrConfig) {
		t.Fatalf("New without key file: %v", err)
	}
	if _, err := New(Config{KeyFile: filepath.Join(t.TempDir(), "none")}, nil); err == nil {
		t.Fatal("New with a missing key file")
	}
}

func wire(t testing.TB, vals ...patnc.Value) *patnc.Message {
	t.Helper()
	m := &patnc.Message{ID: 3}
	for _, v := range vals {
		if err := m.Add(v, false); err != nil {
			t.Fatal(err)
		}
	}
	body, _ := m.MarshalBinary()
	out, err := patnc.ParseMessage(body, 16)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSession checks what the collector sends and which grants it takes:
// only when asked, only one per handshake, only what its key decrypts.
func TestSession(t *testing.T) {
	path, k := newKeyFile(t)
	enroll := false
	got := map[string][]byte{}
	c, err := New(Config{KeyFile: path, Enroll: func() bool { return enroll },
		OnPSK: func(id string, key []byte, _ time.Time) { got[id] = bytes.Clone(key) }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	key := bytes.Repeat([]byte{7}, 32)
	ct, err := sm2.Encrypt(rand.Reader, &k.PublicKey, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	grant := &patnc.PSKGrant{Kind: patnc.PSKKindSM2, Identity: "trustnac-psk-1", Expires: time.Unix(1900000000, 0).UTC(), Ciphertext: ct}

	// Not enrolling: nothing sent, a grant ignored.
	s, _ := c.NewSession(ctx)
	if out, _ := s.Begin(ctx); len(out) != 0 {
		t.Fatalf("sent %v without enrolling", out)
	}
	s.Receive(ctx, wire(t, grant))
	if len(got) != 0 {
		t.Fatal("took an unasked grant")
	}

	enroll = true
	s, _ = c.NewSession(ctx)
	out, err := s.Begin(ctx)
	if err != nil || len(out) != 2 {
		t.Fatalf("Begin = %v, %v", out, err)
	}
	pk, _ := patnc.DecodeAttribute(out[0])
	req, _ := patnc.DecodeAttribute(out[1])
	if !bytes.Equal(pk.(*patnc.SM2PublicKey).PKIX, c.PublicKeyPKIX()) || req.(*patnc.PSKRequest).Kind != patnc.PSKKindSM2 {
		t.Fatalf("sent %#v %#v", pk, req)
	}
	other := *grant
	other.Identity = "trustnac-psk-2"
	s.Receive(ctx, wire(t, grant, &other))
	if len(got) != 1 || !bytes.Equal(got["trustnac-psk-1"], key) {
		t.Fatalf("got %v", got)
	}

	// A grant encrypted to another key, a refusal, a TPM grant: no key.
	otherKey, _ := sm2.GenerateKey(rand.Reader)
	ct2, _ := sm2.Encrypt(rand.Reader, &otherKey.PublicKey, key, nil)
	for _, g := range []*patnc.PSKGrant{
		{Kind: patnc.PSKKindSM2, Identity: "trustnac-psk-3", Expires: grant.Expires, Ciphertext: ct2},
		{Kind: patnc.PSKKindSM2, Refused: true, Reason: "no"},
		{Kind: patnc.PSKKindTPM, Identity: "trustnac-psk-4", Expires: grant.Expires, IDObject: []byte{1}, EncSecret: []byte{2}},
	} {
		s, _ = c.NewSession(ctx)
		s.Begin(ctx)
		s.Receive(ctx, wire(t, g))
		if len(got) != 1 {
			t.Fatalf("took %+v", g)
		}
	}
}

// FuzzParsePrivateKeyPEM: no input panics; a key that parses is SM2.
func FuzzParsePrivateKeyPEM(f *testing.F) {
	for _, name := range []string{"pkcs8.pem", "sec1.pem", "p256-pkcs8.pem", "truncated.pem"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := ParsePrivateKeyPEM(data)
		if err != nil {
			if !errors.Is(err, ErrKey) || k != nil {
				t.Fatalf("%v with key %v", err, k)
			}
			return
		}
		if k.Curve.Params() != sm2.P256().Params() {
			t.Fatal("not an SM2 key")
		}
	})
}
