package tpmimc

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"trustnac/transport/patnc"
)

func TestNewConfig(t *testing.T) {
	tp := &fakeTPM{}
	dir := t.TempDir()
	tests := []struct {
		name string
		tpm  bool
		cfg  Config
		ok   bool
	}{
		{"defaults", true, Config{StateDir: dir}, true},
		{"sm2 ecc", true, Config{StateDir: dir, AKAlg: AKAlgSM2, EKAlg: EKAlgECC, MaxLogChunk: 1024}, true},
		{"no tpm", false, Config{StateDir: dir}, false},
		{"no state dir", true, Config{}, false},
		{"bad AK alg", true, Config{StateDir: dir, AKAlg: "rsa"}, false},
		{"bad EK alg", true, Config{StateDir: dir, EKAlg: "sm2"}, false},
		{"negative chunk", true, Config{StateDir: dir, MaxLogChunk: -1}, false},
		{"huge chunk", true, Config{StateDir: dir, MaxLogChunk: MaxMaxLogChunk + 1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c *Collector
			var err error
			if tt.tpm {
				c, err = New(tp, tt.cfg, nil)
			} else {
				c, err = New(nil, tt.cfg, nil)
			}
			if tt.ok != (err == nil) {
				t.Fatalf("New: %v, want ok %v", err, tt.ok)
			}
			if !tt.ok {
				if !errors.Is(err, ErrConfig) {
					t.Errorf("error %v is not ErrConfig", err)
				}
				return
			}
			if c.cfg.EventLog != DefaultEventLog || c.cfg.IMALog != DefaultIMALog || c.cfg.MaxLogChunk <= 0 {
				t.Errorf("defaults not applied: %+v", c.cfg)
			}
			if c.Name() != "tpm" || c.Subtype().Vendor != patnc.VendorTrustnac {
				t.Errorf("Name %q Subtype %v", c.Name(), c.Subtype())
			}
		})
	}
	sub := filepath.Join(t.TempDir(), "a", "b")
	if _, err := New(tp, Config{StateDir: sub}, nil); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(sub); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("state dir %v mode %v, want 0700", err, st.Mode().Perm())
	}
}

func TestOpenTPMErrors(t *testing.T) {
	for _, spec := range []string{"tpm0", "unix:", "tcp:localhost:2321"} {
		if _, err := OpenTPM(spec); !errors.Is(err, ErrConfig) {
			t.Errorf("OpenTPM(%q) = %v, want ErrConfig", spec, err)
		}
	}
	for _, spec := range []string{"/nonexistent/tpmrm0", "unix:/nonexistent/tpm.sock"} {
		tp, err := OpenTPM(spec)
		if err == nil {
			tp.Close()
			t.Errorf("OpenTPM(%q) opened", spec)
		}
	}
}

func TestOpenTPMUnixSocket(t *testing.T) {
	_, s := swtpm(t)
	// go-tpm's unix socket transport connects once per command, so it
	// shares swtpm with the package's transport.
	tp, err := OpenTPM("unix:" + s.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Close()
	if _, err := newCollector(t, tp, Config{}).AK(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestAKReused(t *testing.T) {
	for _, b := range backends {
		for _, alg := range []string{AKAlgECCP256, AKAlgSM2} {
			if alg == AKAlgSM2 && !b.sm2 {
				continue
			}
			t.Run(b.name+"/"+alg, func(t *testing.T) {
				tp := b.open(t)
				dir := t.TempDir()
				ctx := context.Background()
				ak1, err := newCollector(t, tp, Config{StateDir: dir, AKAlg: alg}).AK(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if ak1.Alg != alg {
					t.Errorf("Alg %q, want %q", ak1.Alg, alg)
				}
				name, err := tpm2.ObjectName(&ak1.Public)
				if alg == AKAlgECCP256 {
					// go-tpm computes the same name from the go-tpm view.
					if err != nil || !bytes.Equal(name.Buffer, ak1.Name.Buffer) {
						t.Errorf("go-tpm name %x (%v), AK name %x", name.Buffer, err, ak1.Name.Buffer)
					}
				}
				d := sha256.Sum256(ak1.PublicBytes)
				if !bytes.Equal(ak1.Name.Buffer, append([]byte{0, 0x0b}, d[:]...)) {
					t.Errorf("name %x is not SHA-256 of the public area", ak1.Name.Buffer)
				}
				pub, err := os.ReadFile(filepath.Join(dir, "ak-"+alg+".pub"))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(pub, append2B(nil, ak1.PublicBytes)) {
					t.Errorf("ak-%s.pub is not the TPM2B_PUBLIC", alg)
				}
				if _, err := os.Stat(filepath.Join(dir, "ak-"+alg+".priv")); err != nil {
					t.Fatal(err)
				}
				// A second collector loads the same key.
				ak2, err := newCollector(t, tp, Config{StateDir: dir, AKAlg: alg}).AK(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(ak1.Name.Buffer, ak2.Name.Buffer) {
					t.Errorf("AK name changed: %x then %x", ak1.Name.Buffer, ak2.Name.Buffer)
				}
				// Another state dir: another key.
				ak3, err := newCollector(t, tp, Config{AKAlg: alg}).AK(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if bytes.Equal(ak1.Name.Buffer, ak3.Name.Buffer) {
					t.Error("a fresh state dir gave the same AK")
				}
			})
		}
	}
}

func TestAKAlgorithmsSideBySide(t *testing.T) {
	tp, _ := swtpm(t)
	dir := t.TempDir()
	ctx := context.Background()
	ecc, err := newCollector(t, tp, Config{StateDir: dir}).AK(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sm, err := newCollector(t, tp, Config{StateDir: dir, AKAlg: AKAlgSM2}).AK(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(ecc.Name.Buffer, sm.Name.Buffer) {
		t.Fatal("ECC and SM2 AKs share a name")
	}
	p, err := ParseECCPublic(sm.PublicBytes)
	if err != nil {
		t.Fatal(err)
	}
	// swtpm has no SM3: the SM2 AK falls back to SHA-256.
	if p.Curve != tpm2.TPMECCSM2P256 || p.Scheme != tpm2.TPMAlgSM2 || p.SchemeHash != sm.SchemeHash {
		t.Errorf("SM2 AK public %+v", p)
	}
	if p.SchemeHash != tpm2.TPMAlgSHA256 && p.SchemeHash != tpm2.TPMAlgSM3256 {
		t.Errorf("SM2 scheme hash %#x", p.SchemeHash)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "ak-*"))
	slices.Sort(files)
	want := []string{"ak-ecc-p256.priv", "ak-ecc-p256.pub", "ak-sm2.priv", "ak-sm2.pub"}
	for i := range want {
		want[i] = filepath.Join(dir, want[i])
	}
	if !slices.Equal(files, want) {
		t.Errorf("state files %v, want %v", files, want)
	}
}

// An AK made by another TPM, or blobs that do not parse, are replaced.
func TestAKReplaced(t *testing.T) {
	swt, _ := swtpm(t)
	ctx := context.Background()
	dir := t.TempDir()
	foreign, err := newCollector(t, swt, Config{StateDir: dir}).AK(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tp := sim(t)
	c := newCollector(t, tp, Config{StateDir: dir})
	ak, err := c.AK(ctx)
	if err != nil {
		t.Fatalf("AK over a foreign blob: %v", err)
	}
	if bytes.Equal(ak.Name.Buffer, foreign.Name.Buffer) {
		t.Fatal("the foreign AK was kept")
	}
	again, err := newCollector(t, tp, Config{StateDir: dir}).AK(ctx)
	if err != nil || !bytes.Equal(again.Name.Buffer, ak.Name.Buffer) {
		t.Fatalf("replacement AK not saved: %v", err)
	}
	// Garbage in the public blob.
	if err := os.WriteFile(filepath.Join(dir, "ak-ecc-p256.pub"), []byte{0, 3, 1, 2, 3}, 0o600); err != nil {
		t.Fatal(err)
	}
	fresh, err := newCollector(t, tp, Config{StateDir: dir}).AK(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(fresh.Name.Buffer, ak.Name.Buffer) {
		t.Error("AK kept although its public blob is garbage")
	}
	// A blob that cannot be read (here: a directory) is an error, not a
	// reason to replace the AK.
	odd := t.TempDir()
	if err := os.Mkdir(filepath.Join(odd, "ak-ecc-p256.pub"), 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(odd, "ak-ecc-p256.priv"), []byte{0, 0}, 0o600)
	if _, err := newCollector(t, tp, Config{StateDir: odd}).AK(ctx); err == nil {
		t.Error("an unreadable AK blob was replaced")
	}
}

func TestQuoteVerifies(t *testing.T) {
	for _, b := range backends {
		for _, alg := range []string{AKAlgECCP256, AKAlgSM2} {
			if alg == AKAlgSM2 && !b.sm2 {
				continue
			}
			t.Run(b.name+"/"+alg, func(t *testing.T) {
				tp := b.open(t)
				c := newCollector(t, tp, Config{AKAlg: alg})
				ctx := context.Background()
				ak, err := c.AK(ctx)
				if err != nil {
					t.Fatal(err)
				}
				n := nonce(0xa5)
				q, err := c.Quote(ctx, n, twoBanks())
				if err != nil {
					t.Fatal(err)
				}
				if len(q.PCRs) != 18 {
					t.Fatalf("%d PCR values, want 18", len(q.PCRs))
				}
				// Request order: the SHA-256 bank first.
				if q.PCRs[0].Hash != uint16(tpm2.TPMAlgSHA256) || q.PCRs[9].Hash != uint16(tpm2.TPMAlgSHA1) || q.PCRs[8].Index != 10 {
					t.Errorf("PCR order: %v %v %v", q.PCRs[0], q.PCRs[8], q.PCRs[9])
				}
				if err := verifyQuote(ak, q, n); err != nil {
					t.Fatalf("quote does not verify: %v", err)
				}
				if _, err := patnc.EncodeAttribute(q, false); err != nil {
					t.Errorf("quote does not encode: %v", err)
				}
				// The check can fail: another nonce, a changed PCR value, a
				// changed attest.
				if err := verifyQuote(ak, q, nonce(0x5a)); err == nil {
					t.Error("quote verifies with another nonce")
				}
				bad := *q
				bad.PCRs = slices.Clone(q.PCRs)
				bad.PCRs[3].Digest = bytes.Repeat([]byte{0xee}, len(q.PCRs[3].Digest))
				if err := verifyQuote(ak, &bad, n); err == nil {
					t.Error("quote verifies with a changed PCR value")
				}
				bad = *q
				bad.Attest = slices.Clone(q.Attest)
				bad.Attest[len(bad.Attest)-1] ^= 1
				if err := verifyQuote(ak, &bad, n); err == nil {
					t.Error("quote verifies with a changed attest")
				}
			})
		}
	}
}

func TestQuoteSeesExtend(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			tp := b.open(t)
			c := newCollector(t, tp, Config{})
			ctx := context.Background()
			ak, err := c.AK(ctx)
			if err != nil {
				t.Fatal(err)
			}
			q1, err := c.Quote(ctx, nonce(1), twoBanks())
			if err != nil {
				t.Fatal(err)
			}
			extend(t, tp, 10, "measured "+b.name)
			q2, err := c.Quote(ctx, nonce(2), twoBanks())
			if err != nil {
				t.Fatal(err)
			}
			if err := verifyQuote(ak, q2, nonce(2)); err != nil {
				t.Fatal(err)
			}
			for i := range q1.PCRs {
				changed := !bytes.Equal(q1.PCRs[i].Digest, q2.PCRs[i].Digest)
				if changed != (q1.PCRs[i].Index == 10) {
					t.Errorf("PCR %#04x:%d changed=%v", q1.PCRs[i].Hash, q1.PCRs[i].Index, changed)
				}
			}
		})
	}
}

func TestQuoteSelection(t *testing.T) {
	tp, _ := swtpm(t) // sha1 and sha256 active, sha384 not
	c := newCollector(t, tp, Config{})
	ctx := context.Background()
	sha384 := uint16(tpm2.TPMAlgSHA384)
	tests := []struct {
		name  string
		nonce []byte
		sel   []patnc.PCRSelection
		want  int // PCR values
		err   error
	}{
		{"inactive bank dropped", nonce(3), []patnc.PCRSelection{{Hash: sha384, PCRs: []uint8{0}}, {Hash: 0x0b, PCRs: []uint8{7, 0}}}, 2, nil},
		{"bank twice merged", nonce(3), []patnc.PCRSelection{{Hash: 0x0b, PCRs: []uint8{1}}, {Hash: 0x0b, PCRs: []uint8{1, 2}}}, 2, nil},
		{"only inactive", nonce(3), []patnc.PCRSelection{{Hash: sha384, PCRs: []uint8{0}}}, 0, ErrNoBanks},
		{"none", nonce(3), nil, 0, ErrNoBanks},
		{"unknown bank", nonce(3), []patnc.PCRSelection{{Hash: 0x0d, PCRs: []uint8{0}}}, 0, ErrNoBanks},
		{"PCR 24", nonce(3), []patnc.PCRSelection{{Hash: 0x0b, PCRs: []uint8{24}}}, 0, ErrBadRequest},
		{"short nonce", []byte{1, 2, 3}, twoBanks(), 0, ErrBadRequest},
		{"long nonce", make([]byte, 65), twoBanks(), 0, ErrBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := c.Quote(ctx, tt.nonce, tt.sel)
			if !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Fatalf("Quote: %v, want %v", err, tt.err)
			}
			if err != nil {
				return
			}
			if len(q.PCRs) != tt.want {
				t.Errorf("%d PCR values, want %d", len(q.PCRs), tt.want)
			}
			ak, _ := c.AK(ctx)
			if err := verifyQuote(ak, q, tt.nonce); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestSelectBanksSM3(t *testing.T) {
	// swtpm has no SM3 bank; a TPM that has one gets it quoted.
	active := map[tpm2.TPMAlgID][]byte{
		tpm2.TPMAlgSM3256: {0xff, 0xff, 0xff},
		tpm2.TPMAlgSHA256: {0x0f, 0x00, 0x00}, // PCRs 0–3 only
	}
	got, err := selectBanks([]patnc.PCRSelection{
		{Hash: uint16(tpm2.TPMAlgSM3256), PCRs: []uint8{10, 0}},
		{Hash: uint16(tpm2.TPMAlgSHA256), PCRs: []uint8{0, 3, 4, 10}},
		{Hash: uint16(tpm2.TPMAlgSHA1), PCRs: []uint8{0}},
	}, active)
	if err != nil {
		t.Fatal(err)
	}
	want := []bankSel{{tpm2.TPMAlgSM3256, []uint8{0, 10}}, {tpm2.TPMAlgSHA256, []uint8{0, 3}}}
	if !slices.EqualFunc(got, want, func(a, b bankSel) bool { return a.hash == b.hash && slices.Equal(a.pcrs, b.pcrs) }) {
		t.Errorf("selectBanks = %v, want %v", got, want)
	}
	cmd := quoteCommand(0x80000001, []byte("12345678"), got)
	// ... TPML_PCR_SELECTION: count 2, SM3 {0,10}, SHA-256 {0,3}.
	tail := []byte{0, 0, 0, 2, 0x00, 0x12, 3, 0x01, 0x04, 0x00, 0x00, 0x0b, 3, 0x09, 0x00, 0x00}
	if !bytes.HasSuffix(cmd, tail) {
		t.Errorf("quote command ends %x, want %x", cmd[len(cmd)-len(tail):], tail)
	}
}

func TestActivateCredential(t *testing.T) {
	tests := []struct {
		name  string
		b     backend
		ekAlg string
	}{
		{"simulator/rsa", backends[0], EKAlgRSA},
		{"simulator/ecc", backends[0], EKAlgECC},
		{"swtpm/rsa", backends[1], EKAlgRSA},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tp := tt.b.open(t)
			c := newCollector(t, tp, Config{EKAlg: tt.ekAlg})
			ctx := context.Background()
			ak, err := c.AK(ctx)
			if err != nil {
				t.Fatal(err)
			}
			pub, _, err := c.EK(ctx)
			if err != nil {
				t.Fatal(err)
			}
			ekPub, err := tpm2.Unmarshal[tpm2.TPMTPublic](pub)
			if err != nil {
				t.Fatal(err)
			}
			if (ekPub.Type == tpm2.TPMAlgRSA) != (tt.ekAlg == EKAlgRSA) {
				t.Fatalf("EK type %#x for %s", ekPub.Type, tt.ekAlg)
			}
			key, err := tpm2.ImportEncapsulationKey(ekPub)
			if err != nil {
				t.Fatal(err)
			}
			secret := make([]byte, 32)
			rand.Read(secret)
			id, enc, err := tpm2.CreateCredential(rand.Reader, key, ak.Name.Buffer, secret)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.ActivateCredential(ctx, &patnc.TPMCredentialChallenge{IDObject: id, EncSecret: enc})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, secret) {
				t.Fatalf("secret %x, want %x", got, secret)
			}
			// A credential for another AK's name does not activate.
			other := sha256.Sum256([]byte("another AK"))
			id, enc, err = tpm2.CreateCredential(rand.Reader, key, append([]byte{0, 0x0b}, other[:]...), secret)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := c.ActivateCredential(ctx, &patnc.TPMCredentialChallenge{IDObject: id, EncSecret: enc}); err == nil {
				t.Fatalf("activated a credential for another name: %x", got)
			}
			if _, err := c.ActivateCredential(ctx, &patnc.TPMCredentialChallenge{}); !errors.Is(err, ErrBadRequest) {
				t.Errorf("empty challenge: %v", err)
			}
			// The collector still works after a failed activation.
			if _, err := c.Quote(ctx, nonce(9), twoBanks()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestEKCertificate(t *testing.T) {
	tp, s := swtpm(t)
	ctx := context.Background()
	c := newCollector(t, tp, Config{})
	pub, der, err := c.EK(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if der == nil {
		t.Fatal("no RSA EK certificate")
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ekPub, err := tpm2.Unmarshal[tpm2.TPMTPublic](pub)
	if err != nil {
		t.Fatal(err)
	}
	key, err := tpm2.Pub(*ekPub)
	if err != nil {
		t.Fatal(err)
	}
	if !cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(key) {
		t.Error("EK certificate is for another key")
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	for i, path := range s.CACerts {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		blk, _ := pem.Decode(b)
		if blk == nil {
			t.Fatalf("%s: no PEM", path)
		}
		ca, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			roots.AddCert(ca)
		} else {
			inter.AddCert(ca)
		}
	}
	// EK certificates mark the TPM's subject alternative name critical,
	// which crypto/x509 does not handle; the chain is what is tested.
	cert.UnhandledCriticalExtensions = nil
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Errorf("EK certificate does not chain to the testbed CA: %v", err)
	}
	// Cached: a second call does not need the TPM to agree.
	pub2, der2, err := c.EK(ctx)
	if err != nil || !bytes.Equal(pub, pub2) || !bytes.Equal(der, der2) {
		t.Errorf("second EK call differs: %v", err)
	}

	// swtpm_setup's ECC EK is P-384: the P-256 template has no
	// certificate, which is not an error.
	pub, der, err = newCollector(t, tp, Config{EKAlg: EKAlgECC}).EK(ctx)
	if err != nil || len(pub) == 0 || der != nil {
		t.Errorf("ECC EK: %d bytes public, %d bytes cert, %v", len(pub), len(der), err)
	}
}

func TestEKNoCertificate(t *testing.T) {
	pub, der, err := newCollector(t, sim(t), Config{}).EK(context.Background())
	if err != nil || len(pub) == 0 || der != nil {
		t.Errorf("simulator EK: %d bytes public, %d bytes cert, %v", len(pub), len(der), err)
	}
}

func TestTrimDER(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want int
	}{
		{"short form padded", append([]byte{0x30, 3, 1, 2, 3}, 0xff, 0xff), 5},
		{"long form padded", append(append([]byte{0x30, 0x82, 0x01, 0x00}, make([]byte, 256)...), 0, 0), 260},
		{"exact", []byte{0x30, 1, 9}, 3},
		{"not a sequence", []byte{0x31, 1, 9, 9}, 4},
		{"length lies", []byte{0x30, 9, 1}, 3},
		{"indefinite", []byte{0x30, 0x80, 0, 0}, 4},
		{"empty", nil, 0},
	}
	for _, tt := range tests {
		if got := trimDER(tt.in); len(got) != tt.want {
			t.Errorf("%s: %d bytes, want %d", tt.name, len(got), tt.want)
		}
	}
}

// fakeTPM answers every command with TPM_RC_FAILURE.
type fakeTPM struct{ sent int }

func (f *fakeTPM) Send(cmd []byte) ([]byte, error) {
	f.sent++
	return []byte{0x80, 0x01, 0, 0, 0, 10, 0, 0, 0x01, 0x01}, nil
}

// changingTPM extends PCR 10 right after each of the first n TPM2_Quote
// commands, between the quote and the PCR read that follows it.
type changingTPM struct {
	t     testing.TB
	inner transport.TPM
	n     int
}

func (c *changingTPM) Send(cmd []byte) ([]byte, error) {
	rsp, err := c.inner.Send(cmd)
	if len(cmd) >= 10 && binary.BigEndian.Uint32(cmd[6:]) == uint32(tpm2.TPMCCQuote) && c.n > 0 {
		c.n--
		extend(c.t, c.inner, 10, "racing the quote")
	}
	return rsp, err
}

func TestQuoteRetriesWhilePCRsChange(t *testing.T) {
	tp := sim(t)
	ctx := context.Background()
	tests := []struct {
		name    string
		changes int
		err     error
	}{
		{"stable", 0, nil},
		{"changes once", 1, nil},
		{"changes twice", 2, nil},
		{"keeps changing", 3, ErrPCRsChanging},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct := &changingTPM{t: t, inner: tp, n: tt.changes}
			c := newCollector(t, ct, Config{})
			ak, err := c.AK(ctx)
			if err != nil {
				t.Fatal(err)
			}
			q, err := c.Quote(ctx, nonce(4), twoBanks())
			if !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
				t.Fatalf("Quote: %v, want %v", err, tt.err)
			}
			if ct.n != 0 {
				t.Errorf("%d changes not made: the collector quoted fewer times than expected", ct.n)
			}
			if err == nil {
				if err := verifyQuote(ak, q, nonce(4)); err != nil {
					t.Fatalf("the quote after retries does not verify: %v", err)
				}
			}
		})
	}
}
