package pdp

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"trustnac/imc"
	tpmimc "trustnac/imc/tpm"
	"trustnac/imv"
	tpmimv "trustnac/imv/tpm"
	"trustnac/testbed"
	"trustnac/transport/patnc"
	"trustnac/transport/pbtnc"
	"trustnac/transport/smdtls"
)

// pskLab is a PSK store on a fresh bbolt file with a settable clock.
type pskLab struct {
	bolt *BoltStore
	s    *PSKStore
	now  time.Time
}

func newPSKLab(t testing.TB) *pskLab {
	t.Helper()
	b, err := OpenBoltStore(filepath.Join(t.TempDir(), "state.db"), false, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	l := &pskLab{bolt: b, now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	l.s = b.PSKs()
	l.s.Now = func() time.Time { return l.now }
	return l
}

func (l *pskLab) issue(t *testing.T, ep, kind, ak string, life time.Duration) (*PSK, []byte) {
	t.Helper()
	p, key, err := l.s.Issue(ep, kind, ak, life)
	if err != nil {
		t.Fatalf("Issue(%s, %s, %s): %v", ep, kind, ak, err)
	}
	return p, key
}

// wantKey checks that the store hands out key for p's identity, or that
// it refuses the identity with smdtls.ErrUnknownIdentity when key is nil.
func (l *pskLab) wantKey(t *testing.T, identity string, key []byte) {
	t.Helper()
	got, err := l.s.PSK([]byte(identity))
	if key == nil {
		if !errors.Is(err, smdtls.ErrUnknownIdentity) || got != nil {
			t.Fatalf("PSK(%s) = %x, %v; want ErrUnknownIdentity", identity, got, err)
		}
		return
	}
	if err != nil || !bytes.Equal(got, key) {
		t.Fatalf("PSK(%s) = %x, %v; want %x", identity, got, err, key)
	}
}

func TestPSKIssueAndLookup(t *testing.T) {
	l := newPSKLab(t)
	p, key := l.issue(t, "ep1", PSKKindTPM, "sha256:aa", time.Hour)
	if !strings.HasPrefix(p.Identity, PSKIdentityPrefix) || len(p.Identity) != len(PSKIdentityPrefix)+16 {
		t.Fatalf("identity %q", p.Identity)
	}
	if _, err := hex.DecodeString(strings.TrimPrefix(p.Identity, PSKIdentityPrefix)); err != nil {
		t.Fatalf("identity %q: %v", p.Identity, err)
	}
	if len(key) != PSKKeyLen || bytes.Equal(key, make([]byte, PSKKeyLen)) {
		t.Fatalf("key %x", key)
	}
	want := PSK{Identity: p.Identity, Endpoint: "ep1", Kind: PSKKindTPM, AKName: "sha256:aa",
		Issued: l.now, Expires: l.now.Add(time.Hour)}
	if *p != want {
		t.Fatalf("issued %+v, want %+v", *p, want)
	}
	got, err := l.s.Lookup(p.Identity)
	if err != nil || *got != want {
		t.Fatalf("Lookup = %+v, %v", got, err)
	}
	l.wantKey(t, p.Identity, key)

	// Another endpoint gets another identity and key.
	p2, key2 := l.issue(t, "ep2", PSKKindSM2, "sm3:bb", 0)
	if p2.Identity == p.Identity || bytes.Equal(key2, key) || !p2.Expires.Equal(l.now.Add(DefaultPSKLifetime)) {
		t.Fatalf("second PSK %+v", p2)
	}
	l.wantKey(t, p2.Identity, key2)

	for _, id := range []string{"", "trustnac-psk-0000000000000000", "other-" + p.Identity, p.Identity + "x", strings.Repeat("trustnac-psk-", 20)} {
		l.wantKey(t, id, nil)
	}
	if _, err := l.s.Lookup("trustnac-psk-0000000000000000"); !errors.Is(err, ErrPSKNotFound) {
		t.Fatalf("Lookup(unknown) = %v", err)
	}
	// The key survives reopening the file.
	path := l.bolt.db.Path()
	l.bolt.Close()
	b, err := OpenBoltStore(path, true, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	s := NewPSKStore(b)
	s.Now = l.s.Now
	if k, err := s.PSK([]byte(p.Identity)); err != nil || !bytes.Equal(k, key) {
		t.Fatalf("after reopening: %x, %v", k, err)
	}
}

func TestPSKIssueRefuses(t *testing.T) {
	l := newPSKLab(t)
	for _, tc := range []struct {
		name, ep, kind, ak string
		life               time.Duration
	}{
		{"no endpoint", "", PSKKindTPM, "sha256:aa", time.Hour},
		{"no AK", "ep", PSKKindTPM, "", time.Hour},
		{"unknown kind", "ep", "rsa", "sha256:aa", time.Hour},
		{"short lifetime", "ep", PSKKindTPM, "sha256:aa", time.Second},
		{"negative lifetime", "ep", PSKKindTPM, "sha256:aa", -time.Hour},
		{"NUL in endpoint", "ep\x00x", PSKKindTPM, "sha256:aa", time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if p, key, err := l.s.Issue(tc.ep, tc.kind, tc.ak, tc.life); !errors.Is(err, ErrPSKRequest) || p != nil || key != nil {
				t.Fatalf("Issue = %v, %x, %v; want ErrPSKRequest", p, key, err)
			}
		})
	}
	if ps, _ := l.s.List(); len(ps) != 0 {
		t.Fatalf("refused requests left %d PSKs", len(ps))
	}
}

func TestPSKExpiry(t *testing.T) {
	l := newPSKLab(t)
	p, key := l.issue(t, "ep", PSKKindTPM, "sha256:aa", time.Hour)
	l.now = p.Expires.Add(-time.Second)
	l.wantKey(t, p.Identity, key)
	l.now = p.Expires
	l.wantKey(t, p.Identity, nil)
	// An expired PSK is listed until it has been expired for a lifetime;
	// the next Issue for the endpoint then deletes it.
	l.now = p.Expires.Add(time.Hour - time.Second)
	l.issue(t, "ep", PSKKindTPM, "sha256:aa", time.Hour)
	if _, err := l.s.Lookup(p.Identity); err != nil {
		t.Fatalf("expired PSK deleted too early: %v", err)
	}
	l.now = p.Expires.Add(time.Hour)
	l.issue(t, "ep", PSKKindTPM, "sha256:aa", time.Hour)
	if _, err := l.s.Lookup(p.Identity); !errors.Is(err, ErrPSKNotFound) {
		t.Fatalf("long expired PSK kept: %v", err)
	}
}

func TestPSKRotation(t *testing.T) {
	l := newPSKLab(t)
	start := l.now
	p1, k1 := l.issue(t, "ep", PSKKindTPM, "sha256:aa", 10*time.Hour)

	// Younger than half its lifetime: the same PSK again.
	l.now = start.Add(5*time.Hour - time.Second)
	p, k := l.issue(t, "ep", PSKKindTPM, "sha256:aa", 10*time.Hour)
	if p.Identity != p1.Identity || !bytes.Equal(k, k1) {
		t.Fatalf("re-issue gave %s, want %s", p.Identity, p1.Identity)
	}
	// Another AK of the same endpoint (a new TPM) never gets it.
	pOther, kOther := l.issue(t, "ep", PSKKindTPM, "sha256:bb", 10*time.Hour)
	if pOther.Identity == p1.Identity || bytes.Equal(kOther, k1) {
		t.Fatal("a PSK was re-delivered to another AK")
	}
	// Nor does an SM2 key.
	if pSM2, _ := l.issue(t, "ep", PSKKindSM2, "sha256:aa", 10*time.Hour); pSM2.Identity == p1.Identity {
		t.Fatal("a TPM PSK was re-delivered as an SM2 one")
	}

	// Half its lifetime: a new one; the old stays valid until it expires.
	l.now = start.Add(5 * time.Hour)
	p2, k2 := l.issue(t, "ep", PSKKindTPM, "sha256:aa", 10*time.Hour)
	if p2.Identity == p1.Identity || bytes.Equal(k2, k1) {
		t.Fatal("no rotation at half the lifetime")
	}
	l.wantKey(t, p1.Identity, k1)
	l.wantKey(t, p2.Identity, k2)
	// Asking again gives the new one.
	if p, _ := l.issue(t, "ep", PSKKindTPM, "sha256:aa", 10*time.Hour); p.Identity != p2.Identity {
		t.Fatalf("after rotation got %s, want %s", p.Identity, p2.Identity)
	}
	l.now = p1.Expires
	l.wantKey(t, p1.Identity, nil)
	l.wantKey(t, p2.Identity, k2)
}

func TestPSKCapPerEndpoint(t *testing.T) {
	l := newPSKLab(t)
	var ids []string
	for i := range MaxPSKsPerEndpoint + 2 {
		p, _ := l.issue(t, "ep", PSKKindSM2, "sm3:"+strings.Repeat("a", i+1), time.Hour)
		ids = append(ids, p.Identity)
		l.now = l.now.Add(time.Second)
	}
	valid := 0
	for i, id := range ids {
		_, err := l.s.PSK([]byte(id))
		if err == nil {
			valid++
		}
		if i < 2 && err == nil {
			t.Errorf("PSK %d of %d still valid beyond the cap", i, len(ids))
		}
	}
	if valid != MaxPSKsPerEndpoint {
		t.Fatalf("%d valid PSKs, want %d", valid, MaxPSKsPerEndpoint)
	}
}

func TestPSKRevoke(t *testing.T) {
	l := newPSKLab(t)
	a1, ka1 := l.issue(t, "ep-a", PSKKindTPM, "sha256:aa", time.Hour)
	l.now = l.now.Add(40 * time.Minute)
	a2, ka2 := l.issue(t, "ep-a", PSKKindTPM, "sha256:aa", time.Hour) // rotated
	b1, kb1 := l.issue(t, "ep-b", PSKKindTPM, "sha256:bb", time.Hour)
	c1, kc1 := l.issue(t, "ep-c", PSKKindSM2, "sm3:cc", time.Hour)

	if n, err := l.s.RevokeEndpoint("ep"); n != 0 || err != nil { // a prefix of the others
		t.Fatalf("RevokeEndpoint(ep) = %d, %v", n, err)
	}
	n, err := l.s.RevokeEndpoint("ep-a")
	if err != nil || n != 2 {
		t.Fatalf("RevokeEndpoint = %d, %v; want 2", n, err)
	}
	l.wantKey(t, a1.Identity, nil)
	l.wantKey(t, a2.Identity, nil)
	l.wantKey(t, b1.Identity, kb1)
	if n, _ := l.s.RevokeEndpoint("ep-a"); n != 0 {
		t.Fatalf("revoking again counted %d", n)
	}
	if p, _ := l.s.Lookup(a1.Identity); !p.Revoked {
		t.Fatal("Lookup does not show the revocation")
	}
	// A revoked endpoint that enrolls again gets a new PSK.
	if p, k := l.issue(t, "ep-a", PSKKindTPM, "sha256:aa", time.Hour); p.Identity == a2.Identity || bytes.Equal(k, ka2) || bytes.Equal(k, ka1) {
		t.Fatal("a revoked PSK was re-delivered")
	}

	if n, err := l.s.RevokeAK("sm3:cc"); err != nil || n != 1 {
		t.Fatalf("RevokeAK = %d, %v", n, err)
	}
	l.wantKey(t, c1.Identity, nil)
	_ = kc1

	// Revoking the AK in the AK store is enough for PSK to refuse.
	if err := l.bolt.PutAK(&tpmimv.AKRecord{Name: "sha256:bb", Status: tpmimv.StatusApproved}); err != nil {
		t.Fatal(err)
	}
	l.wantKey(t, b1.Identity, kb1)
	if _, err := l.bolt.SetAKStatus("sha256:bb", AKRevoked, l.now); err != nil {
		t.Fatal(err)
	}
	l.wantKey(t, b1.Identity, nil)
}

// TestPSKKeyNeverMarshalled: no PSK value, list or JSON carries the key.
func TestPSKKeyNeverMarshalled(t *testing.T) {
	l := newPSKLab(t)
	p, key := l.issue(t, "ep", PSKKindTPM, "sha256:aa", time.Hour)
	got, _ := l.s.Lookup(p.Identity)
	list, err := l.s.List()
	if err != nil || len(list) != 1 {
		t.Fatalf("List = %v, %v", list, err)
	}
	for _, v := range []any{p, got, list} {
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		for _, enc := range []string{hex.EncodeToString(key), base64.StdEncoding.EncodeToString(key), string(key)} {
			if strings.Contains(string(j), enc) {
				t.Fatalf("JSON %s carries the key", j)
			}
		}
		if strings.Contains(strings.ToLower(string(j)), `"key"`) {
			t.Fatalf("JSON %s has a key field", j)
		}
	}
	// The store's error for a refused identity does not carry it either.
	l.s.RevokeEndpoint("ep")
	_, err = l.s.PSK([]byte(p.Identity))
	if err == nil || strings.Contains(err.Error(), hex.EncodeToString(key)) {
		t.Fatalf("error %v", err)
	}
}

func TestPSKIssuerAdapter(t *testing.T) {
	l := newPSKLab(t)
	i := PSKIssuer{Store: l.s, Kind: PSKKindTPM, Lifetime: 2 * time.Hour}
	id, key, exp, err := i.IssuePSK("ep", "sha256:aa")
	if err != nil {
		t.Fatal(err)
	}
	p, err := l.s.Lookup(id)
	if err != nil || p.Kind != PSKKindTPM || p.AKName != "sha256:aa" || !exp.Equal(l.now.Add(2*time.Hour)) {
		t.Fatalf("issued %+v, %v (expires %v)", p, err, exp)
	}
	l.wantKey(t, id, key)
	if _, _, _, err := (PSKIssuer{Store: l.s, Kind: "x"}).IssuePSK("ep", "a"); !errors.Is(err, ErrPSKRequest) {
		t.Fatalf("bad kind: %v", err)
	}
}

// TestPSKEnrollFlowSWTPM runs the TPM verifier with the store's issuer
// against the TPM collector on swtpm: the key the agent recovers is the key
// the store hands the SM-DTLS listener for the identity; revoking the
// endpoint refuses it.
func TestPSKEnrollFlowSWTPM(t *testing.T) {
	if err := testbed.SWTPMAvailable(); err != nil {
		t.Skip(err)
	}
	ctx := context.Background()
	sw, err := testbed.StartSWTPM(ctx, t.TempDir(), testbed.SWTPMOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sw.Stop()
	tp, err := sw.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Close()
	roots, err := LoadCertPool(sw.CACerts)
	if err != nil {
		t.Fatal(err)
	}
	l := newPSKLab(t)
	l.s.Now = time.Now
	v := tpmimv.New(tpmimv.Config{AKs: l.bolt, EKRoots: roots,
		PSKIssuer: PSKIssuer{Store: l.s, Kind: PSKKindTPM, Lifetime: time.Hour}}, nil)
	var gotID string
	var gotKey []byte
	c, err := tpmimc.New(tp, tpmimc.Config{StateDir: t.TempDir(), AKAlg: tpmimc.AKAlgSM2, EventLog: "-", IMALog: "-",
		Enroll: func() bool { return true },
		OnPSK:  func(id string, key []byte, _ time.Time) { gotID, gotKey = id, bytes.Clone(key) },
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cli := imc.NewClient([]imc.Collector{c}, nil)
	h := cli.Handshake()
	vs, err := v.NewSession(ctx, imv.Endpoint{ID: "ep-flow"})
	if err != nil {
		t.Fatal(err)
	}
	// The TNCS side of PB-TNC reduced to its PA messages.
	pas, err := h.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for round := 0; ; round++ {
		if round > 50 {
			t.Fatal("no end")
		}
		for _, pa := range pas {
			m, err := patnc.ParseMessage(pa.Body, 64)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := vs.Receive(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
		out, err := vs.BatchEnding(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(out) == 0 {
			break
		}
		body, err := (&patnc.Message{ID: uint32(round), Attributes: out}).MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		pas, err = h.Receive(ctx, []pbtnc.PA{{Subtype: v.Subtype(), CollectorID: 0, ValidatorID: 0, Body: body}})
		if err != nil {
			t.Fatal(err)
		}
	}
	if r := vs.Result(); r.Recommendation != imv.Allow {
		t.Fatalf("result %v %q", r.Recommendation, r.Reasons)
	}
	if gotID == "" {
		t.Fatal("the agent got no PSK")
	}
	l.wantKey(t, gotID, gotKey)
	p, err := l.s.Lookup(gotID)
	if err != nil || p.Endpoint != "ep-flow" || p.Kind != PSKKindTPM {
		t.Fatalf("Lookup = %+v, %v", p, err)
	}
	if ak, err := l.bolt.GetAK(p.AKName); err != nil || ak.Status != tpmimv.StatusApproved {
		t.Fatalf("the PSK's AK %q: %+v, %v", p.AKName, ak, err)
	}
	if n, err := l.s.RevokeEndpoint("ep-flow"); n != 1 || err != nil {
		t.Fatalf("RevokeEndpoint = %d, %v", n, err)
	}
	l.wantKey(t, gotID, nil)
}

// BenchmarkPSKLookup is the store's part of every SM-DTLS handshake.
func BenchmarkPSKLookup(b *testing.B) {
	l := newPSKLab(b)
	var ids [][]byte
	for i := range 1000 {
		p, _, err := l.s.Issue(fmt.Sprintf("ep-%d", i), PSKKindTPM, fmt.Sprintf("sha256:%d", i), time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, []byte(p.Identity))
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := l.s.PSK(ids[i%len(ids)]); err != nil {
			b.Fatal(err)
		}
	}
}
