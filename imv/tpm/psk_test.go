package tpmimv

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm3"
	"github.com/google/go-tpm/tpm2/transport"

	"trustnac/imc"
	tpmimc "trustnac/imc/tpm"
	"trustnac/imv"
	"trustnac/testbed"
	"trustnac/transport/patnc"
)

// These tests run the verifier against the real TPM collector on swtpm:
// the PSK grant of the SM channel and the channel binding of the quote.
// Two swtpms serve the package: the endpoint's TPM and another one.

var (
	swOnce   sync.Once
	swErr    error
	swSkip   bool
	swTPMs   [2]*testbed.SWTPM
	swConns  [2]transport.TPMCloser
	swDirs   [2]string
	swEKRoot *x509.CertPool
)

func TestMain(m *testing.M) {
	code := m.Run()
	for i := range swTPMs {
		if swConns[i] != nil {
			swConns[i].Close()
		}
		if swTPMs[i] != nil {
			swTPMs[i].Stop()
		}
		if swDirs[i] != "" {
			os.RemoveAll(swDirs[i])
		}
	}
	os.Exit(code)
}

// swtpms returns the endpoint's TPM (0) and another (1), and the pool of
// their EK CAs; it skips the test without swtpm.
func swtpms(t testing.TB) ([2]transport.TPM, *x509.CertPool) {
	t.Helper()
	swOnce.Do(func() {
		if swErr = testbed.SWTPMAvailable(); swErr != nil {
			swSkip = true
			return
		}
		swEKRoot = x509.NewCertPool()
		for i := range swTPMs {
			if swDirs[i], swErr = os.MkdirTemp("", "tpmimv-swtpm-"); swErr != nil {
				return
			}
			if swTPMs[i], swErr = testbed.StartSWTPM(context.Background(), swDirs[i], testbed.SWTPMOptions{}); swErr != nil {
				return
			}
			if swConns[i], swErr = swTPMs[i].Open(); swErr != nil {
				return
			}
			for _, f := range swTPMs[i].CACerts {
				pem, err := os.ReadFile(f)
				if err != nil {
					swErr = err
					return
				}
				swEKRoot.AppendCertsFromPEM(pem)
			}
		}
	})
	if swSkip {
		t.Skipf("swtpm: %v", swErr)
	}
	if swErr != nil {
		t.Fatalf("swtpm: %v", swErr)
	}
	return [2]transport.TPM{swConns[0], swConns[1]}, swEKRoot
}

// memIssuer is a PSKIssuer in memory that remembers what it issued.
type memIssuer struct {
	mu     sync.Mutex
	keys   map[string][]byte // by identity
	issued []string          // "endpoint ak" per call
	fail   error
}

func (m *memIssuer) IssuePSK(endpoint, akName string) (string, []byte, time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return "", nil, time.Time{}, m.fail
	}
	var id [8]byte
	key := make([]byte, 32)
	rand.Read(id[:])
	rand.Read(key)
	identity := "trustnac-psk-" + hex.EncodeToString(id[:])
	if m.keys == nil {
		m.keys = map[string][]byte{}
	}
	m.keys[identity] = key
	m.issued = append(m.issued, endpoint+" "+akName)
	return identity, key, time.Unix(1900000000, 0), nil
}

// agent is the endpoint side: the TPM collector and what it received.
type agent struct {
	c      *tpmimc.Collector
	enroll bool
	mu     sync.Mutex
	got    map[string][]byte
	exp    time.Time
}

func newAgent(t testing.TB, tp transport.TPM, akAlg string, enroll bool) *agent {
	t.Helper()
	a := &agent{enroll: enroll, got: map[string][]byte{}}
	c, err := tpmimc.New(tp, tpmimc.Config{
		StateDir: t.TempDir(), AKAlg: akAlg, EventLog: "-", IMALog: "-",
		Enroll: func() bool { return a.enroll },
		OnPSK: func(identity string, key []byte, expires time.Time) {
			a.mu.Lock()
			defer a.mu.Unlock()
			a.got[identity] = bytes.Clone(key)
			a.exp = expires
		},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	a.c = c
	return a
}

// converse runs one assessment between a verifier session and a collector
// session as the TNCS and TNCC would, and returns what the verifier sent.
func converse(t testing.TB, ctx context.Context, vs imv.Session, cs imc.Session) []patnc.Value {
	t.Helper()
	attrs, err := cs.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var sent []patnc.Value
	for range 100 {
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
			return sent
		}
		sent = append(sent, decodeAll(t, out)...)
		if attrs, err = cs.Receive(ctx, wire(t, out)); err != nil {
			t.Fatal(err)
		}
	}
	t.Fatal("the assessment did not end")
	return nil
}

// wire carries attributes through a PA-TNC message's wire form.
func wire(t testing.TB, attrs []patnc.Attribute) *patnc.Message {
	t.Helper()
	body, err := (&patnc.Message{ID: 7, Attributes: attrs}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	m, err := patnc.ParseMessage(body, 64)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// enrollLab is a verifier trusting swtpm's EK CA, with a PSK issuer.
type enrollLab struct {
	v      *Verifier
	store  *MemAKStore
	issuer *memIssuer
}

func newEnrollLab(t testing.TB, roots *x509.CertPool, cfg Config) *enrollLab {
	l := &enrollLab{store: NewMemAKStore(), issuer: &memIssuer{}}
	cfg.AKs, cfg.EKRoots = l.store, roots
	if cfg.PSKIssuer == nil {
		cfg.PSKIssuer = l.issuer
	}
	l.v = New(cfg, nil)
	return l
}

func (l *enrollLab) assess(t testing.TB, a *agent, ep imv.Endpoint, binding []byte) (imv.Result, []patnc.Value) {
	t.Helper()
	ctx := context.Background()
	if ep.ID == "" {
		ep.ID = "ep-1"
	}
	vs, err := l.v.NewSession(ctx, ep)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := a.c.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sent := converse(t, imc.WithChannelBinding(ctx, binding), vs, cs)
	return vs.Result(), sent
}

func grants(sent []patnc.Value) []*patnc.PSKGrant {
	var out []*patnc.PSKGrant
	for _, v := range sent {
		if g, ok := v.(*patnc.PSKGrant); ok {
			out = append(out, g)
		}
	}
	return out
}

// TestPSKEnrollSWTPM enrolls a new AK of each algorithm on swtpm, asks for
// a PSK, and checks that the collector recovered the key the issuer made;
// the same grant on another TPM does not activate.
func TestPSKEnrollSWTPM(t *testing.T) {
	tpms, roots := swtpms(t)
	for _, alg := range []string{tpmimc.AKAlgECCP256, tpmimc.AKAlgSM2} {
		t.Run(alg, func(t *testing.T) {
			l := newEnrollLab(t, roots, Config{})
			a := newAgent(t, tpms[0], alg, true)
			r, sent := l.assess(t, a, imv.Endpoint{}, nil)
			wantRec(t, r, imv.Allow, "")
			if r.Facts["enrollment"] != MethodEKCert {
				t.Fatalf("facts %v", r.Facts)
			}
			gs := grants(sent)
			if len(gs) != 1 || gs[0].Refused || gs[0].Kind != patnc.PSKKindTPM {
				t.Fatalf("grants %+v", gs)
			}
			if len(l.issuer.issued) != 1 || l.issuer.issued[0] != "ep-1 "+r.Facts["ak"].(string) {
				t.Fatalf("issued %v for AK %v", l.issuer.issued, r.Facts["ak"])
			}
			id := gs[0].Identity
			key := l.issuer.keys[id]
			if got := a.got[id]; len(got) != 32 || !bytes.Equal(got, key) {
				t.Fatalf("collector holds %x for %s, issuer %x", got, id, key)
			}
			if !a.exp.Equal(time.Unix(1900000000, 0)) {
				t.Fatalf("expiry %v", a.exp)
			}
			// The grant never carries the key in the clear.
			raw, _ := gs[0].AppendBinary(nil)
			if bytes.Contains(raw, key) {
				t.Fatal("the grant carries the key in the clear")
			}

			// The same grant answered by another TPM (another EK): no key.
			b := newAgent(t, tpms[1], alg, true)
			if k, err := b.c.ActivatePSK(context.Background(), gs[0]); err == nil {
				t.Fatalf("another TPM activated the PSK: %x", k)
			}
			cs, _ := b.c.NewSession(context.Background())
			if _, err := cs.Begin(context.Background()); err != nil { // asks for a PSK
				t.Fatal(err)
			}
			if _, err := cs.Receive(context.Background(), wire(t, mustEncode(t, gs[0]))); err != nil {
				t.Fatal(err)
			}
			if len(b.got) != 0 {
				t.Fatalf("another TPM's collector took a key: %v", b.got)
			}

			// Assessed again with the AK approved, it is granted again;
			// without asking, it is not.
			r, sent = l.assess(t, a, imv.Endpoint{}, nil)
			wantRec(t, r, imv.Allow, "")
			if gs := grants(sent); len(gs) != 1 || gs[0].Refused || !bytes.Equal(a.got[gs[0].Identity], l.issuer.keys[gs[0].Identity]) {
				t.Fatalf("second enrollment: grants %+v", gs)
			}
			// A grant the collector did not ask for is not taken.
			cs, _ = a.c.NewSession(context.Background())
			g2 := grants(sent)[0]
			delete(a.got, g2.Identity)
			if _, err := cs.Receive(context.Background(), wire(t, mustEncode(t, g2))); err != nil || a.got[g2.Identity] != nil {
				t.Fatalf("took an unasked grant: %v", err)
			}
			a.enroll = false
			r, sent = l.assess(t, a, imv.Endpoint{}, nil)
			wantRec(t, r, imv.Allow, "")
			if gs := grants(sent); len(gs) != 0 || len(l.issuer.issued) != 2 {
				t.Fatalf("unasked: grants %+v, issued %v", gs, l.issuer.issued)
			}
		})
	}
}

func mustEncode(t testing.TB, vals ...patnc.Value) []patnc.Attribute {
	t.Helper()
	var out []patnc.Attribute
	for _, v := range vals {
		a, err := patnc.EncodeAttribute(v, false)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}

// TestPSKRefused: no grant to an AK that is not approved, nor without an
// issuer, nor when the issuer fails; the collector gets a refusal with a
// reason and no key.
func TestPSKRefused(t *testing.T) {
	tpms, roots := swtpms(t)
	for _, tc := range []struct {
		name   string
		cfg    Config
		roots  bool
		prep   func(l *enrollLab, a *agent)
		rec    imv.Recommendation
		reason string
	}{
		{"unknown AK, no enrollment", Config{Enrollment: func(imv.Endpoint) string { return EnrollNone }}, true, nil,
			imv.NoAccess, pskNotTrusted},
		{"AK pending (EK CA not trusted)", Config{}, false, nil, imv.NoAccess, pskNotTrusted},
		{"no issuer", Config{PSKIssuer: PSKIssuer(nil)}, true, func(l *enrollLab, a *agent) { l.v.cfg.PSKIssuer = nil },
			imv.Allow, pskNoIssuer},
		{"issuer fails", Config{}, true, func(l *enrollLab, a *agent) { l.issuer.fail = errors.New("disk full") },
			imv.Allow, pskFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var pool *x509.CertPool
			if tc.roots {
				pool = roots
			}
			l := newEnrollLab(t, pool, tc.cfg)
			a := newAgent(t, tpms[0], tpmimc.AKAlgECCP256, true)
			if tc.prep != nil {
				tc.prep(l, a)
			}
			r, sent := l.assess(t, a, imv.Endpoint{}, nil)
			wantRec(t, r, tc.rec, "")
			gs := grants(sent)
			if len(gs) != 1 || !gs[0].Refused || gs[0].Reason != tc.reason {
				t.Fatalf("grants %+v, want one refusal %q", gs, tc.reason)
			}
			if len(a.got) != 0 {
				t.Fatalf("collector took a key: %v", a.got)
			}
		})
	}

	// A revoked AK: access denied and nothing issued.
	l := newEnrollLab(t, roots, Config{})
	a := newAgent(t, tpms[0], tpmimc.AKAlgECCP256, true)
	r, _ := l.assess(t, a, imv.Endpoint{}, nil)
	wantRec(t, r, imv.Allow, "")
	rec, _ := l.store.GetAK(r.Facts["ak"].(string))
	rec.Status = StatusRevoked
	l.store.PutAK(rec)
	n := len(l.issuer.issued)
	r, sent := l.assess(t, a, imv.Endpoint{}, nil)
	wantRec(t, r, imv.NoAccess, "revoked")
	if gs := grants(sent); len(gs) != 0 || len(l.issuer.issued) != n {
		t.Fatalf("revoked AK: grants %+v, issued %v", gs, l.issuer.issued)
	}
}

// TestChannelBindingSWTPM: with a channel binding the quote carries
// H(nonce || binding); a quote made for another channel, or not bound, is
// refused with a reason.
func TestChannelBindingSWTPM(t *testing.T) {
	tpms, roots := swtpms(t)
	chanA := bytes.Repeat([]byte{0xa}, patnc.ChannelBindingLen)
	chanB := bytes.Repeat([]byte{0xb}, patnc.ChannelBindingLen)
	for _, alg := range []string{tpmimc.AKAlgECCP256, tpmimc.AKAlgSM2} {
		l := newEnrollLab(t, roots, Config{})
		a := newAgent(t, tpms[0], alg, false)
		for _, tc := range []struct {
			name              string
			verifier, collect []byte
			rec               imv.Recommendation
			reason            string
		}{
			{"bound", chanA, chanA, imv.Allow, ""},
			{"no binding either side", nil, nil, imv.Allow, ""},
			{"another channel", chanA, chanB, imv.NoAccess, "made for another channel"},
			{"collector did not bind", chanA, nil, imv.NoAccess, "not bound to this channel"},
			{"verifier expects none", nil, chanA, imv.NoAccess, "does not carry the PDP's nonce"},
		} {
			t.Run(fmt.Sprintf("%s/%s", alg, tc.name), func(t *testing.T) {
				r, _ := l.assess(t, a, imv.Endpoint{ChannelBinding: tc.verifier}, tc.collect)
				wantRec(t, r, tc.rec, tc.reason)
				if r.Facts["quote_verified"] != (tc.rec == imv.Allow) {
					t.Fatalf("quote_verified %v", r.Facts["quote_verified"])
				}
			})
		}
	}
}

// TestQualifyingData pins H(nonce || binding) with the AK's hash against
// values computed independently.
func TestQualifyingData(t *testing.T) {
	for _, alg := range []string{AKAlgECDSAP256, AKAlgSM2} {
		for _, hash := range []uint16{algSHA256, algSM3256} {
			if alg == AKAlgECDSAP256 && hash == algSM3256 {
				continue
			}
			k, err := parseAK(newTestAK(t, alg, hash).public)
			if err != nil {
				t.Fatal(err)
			}
			nonce, binding := []byte("nonce-0123456789"), []byte("binding")
			if got := qualifyingData(k, nonce, nil); !bytes.Equal(got, nonce) {
				t.Fatalf("no binding: %x", got)
			}
			var want []byte
			if hash == algSM3256 {
				d := sm3.Sum([]byte("nonce-0123456789binding"))
				want = d[:]
			} else {
				d := sha256.Sum256([]byte("nonce-0123456789binding"))
				want = d[:]
			}
			if got := qualifyingData(k, nonce, binding); !bytes.Equal(got, want) || len(got) != 32 {
				t.Fatalf("%s/%04x: %x, want %x", alg, hash, got, want)
			}
		}
	}
}
