package tpmimc

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"math/big"
	"os"
	"sync"
	"testing"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/sm3"
	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/simulator"

	"trustnac/testbed"
	"trustnac/transport/patnc"
)

// One swtpm serves the whole package (swtpm_setup takes a second or
// two); tests must not assume PCR values, only compare them.
var (
	swOnce sync.Once
	sw     *testbed.SWTPM
	swTPM  transport.TPMCloser
	swDir  string
	swErr  error
	swSkip bool
)

func TestMain(m *testing.M) {
	code := m.Run()
	if swTPM != nil {
		swTPM.Close()
	}
	if sw != nil {
		sw.Stop()
	}
	if swDir != "" {
		os.RemoveAll(swDir)
	}
	os.Exit(code)
}

// swtpm returns the package's swtpm, skipping the test when swtpm is not
// installed.
func swtpm(t testing.TB) (transport.TPM, *testbed.SWTPM) {
	t.Helper()
	swOnce.Do(func() {
		if swErr = testbed.SWTPMAvailable(); swErr != nil {
			swSkip = true
			return
		}
		if swDir, swErr = os.MkdirTemp("", "tpmimc-swtpm-"); swErr != nil {
			return
		}
		if sw, swErr = testbed.StartSWTPM(context.Background(), swDir, testbed.SWTPMOptions{}); swErr != nil {
			return
		}
		swTPM, swErr = sw.Open()
	})
	if swSkip {
		t.Skipf("swtpm: %v", swErr)
	}
	if swErr != nil {
		t.Fatalf("swtpm: %v", swErr)
	}
	return swTPM, sw
}

// sim opens the go-tpm-tools simulator (one at a time per process) for
// the test.
func sim(t testing.TB) transport.TPM {
	t.Helper()
	tp, err := simulator.OpenSimulator()
	if err != nil {
		t.Fatalf("simulator: %v", err)
	}
	t.Cleanup(func() { tp.Close() })
	return tp
}

// backend is a TPM to run a test on.
type backend struct {
	name string
	open func(testing.TB) transport.TPM
	sm2  bool // implements the SM2 curve and scheme
	cert bool // has an RSA EK certificate
}

var backends = []backend{
	{"simulator", sim, false, false},
	{"swtpm", func(t testing.TB) transport.TPM { tp, _ := swtpm(t); return tp }, true, true},
}

func newCollector(t testing.TB, tp transport.TPM, cfg Config) *Collector {
	t.Helper()
	if cfg.StateDir == "" {
		cfg.StateDir = t.TempDir()
	}
	c, err := New(tp, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// pcrs0to7and10 is the default selection of the design.
func pcrs0to7and10() []uint8 { return []uint8{0, 1, 2, 3, 4, 5, 6, 7, 10} }

func twoBanks() []patnc.PCRSelection {
	return []patnc.PCRSelection{
		{Hash: uint16(tpm2.TPMAlgSHA256), PCRs: pcrs0to7and10()},
		{Hash: uint16(tpm2.TPMAlgSHA1), PCRs: pcrs0to7and10()},
	}
}

func nonce(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func newHash(alg tpm2.TPMAlgID) (hash.Hash, error) {
	switch alg {
	case tpm2.TPMAlgSHA256:
		return sha256.New(), nil
	case tpm2.TPMAlgSM3256:
		return sm3.New(), nil
	}
	return nil, fmt.Errorf("hash %#04x", uint16(alg))
}

// verifyQuote checks a quote the way a verifier would, with go-tpm's
// parsers where they can (everything but SM2): the TPMS_ATTEST is a quote
// over nonce, its PCR selection lists q.PCRs in order, its PCR digest is
// the scheme hash of the values, and the signature verifies with the AK's
// public key (ECDSA; SM2 over the bare digest, no Z_A).
func verifyQuote(ak *AK, q *patnc.TPMQuote, nonce []byte) error {
	attest, err := tpm2.Unmarshal[tpm2.TPMSAttest](q.Attest)
	if err != nil {
		return err
	}
	if attest.Type != tpm2.TPMSTAttestQuote {
		return fmt.Errorf("attest type %#x", attest.Type)
	}
	if !bytes.Equal(attest.ExtraData.Buffer, nonce) {
		return errors.New("extraData is not the nonce")
	}
	info, err := attest.Attested.Quote()
	if err != nil {
		return err
	}
	var sel []patnc.PCRValue
	for _, s := range info.PCRSelect.PCRSelections {
		for i, b := range s.PCRSelect {
			for j := range 8 {
				if b&(1<<j) != 0 {
					sel = append(sel, patnc.PCRValue{Hash: uint16(s.Hash), Index: uint8(8*i + j)})
				}
			}
		}
	}
	if len(sel) != len(q.PCRs) {
		return fmt.Errorf("attest selects %d PCRs, quote carries %d", len(sel), len(q.PCRs))
	}
	h, err := newHash(ak.SchemeHash)
	if err != nil {
		return err
	}
	for i, v := range q.PCRs {
		if sel[i].Hash != v.Hash || sel[i].Index != v.Index {
			return fmt.Errorf("PCR %d: attest has %#04x:%d, quote %#04x:%d", i, sel[i].Hash, sel[i].Index, v.Hash, v.Index)
		}
		h.Write(v.Digest)
	}
	if !bytes.Equal(h.Sum(nil), info.PCRDigest.Buffer) {
		return errors.New("PCR digest does not match the PCR values")
	}
	h.Reset()
	h.Write(q.Attest)
	digest := h.Sum(nil)
	switch ak.Alg {
	case AKAlgECCP256:
		pub, err := tpm2.Unmarshal[tpm2.TPMTPublic](ak.PublicBytes)
		if err != nil {
			return err
		}
		key, err := tpm2.Pub(*pub)
		if err != nil {
			return err
		}
		sig, err := tpm2.Unmarshal[tpm2.TPMTSignature](q.Signature)
		if err != nil {
			return err
		}
		e, err := sig.Signature.ECDSA()
		if err != nil {
			return err
		}
		r, s := new(big.Int).SetBytes(e.SignatureR.Buffer), new(big.Int).SetBytes(e.SignatureS.Buffer)
		if !ecdsa.Verify(key.(*ecdsa.PublicKey), digest, r, s) {
			return errors.New("ECDSA signature does not verify")
		}
	case AKAlgSM2:
		// TPMT_SIGNATURE: sigAlg, hash, TPM2B r, TPM2B s.
		b := q.Signature
		if len(b) < 6 || binary.BigEndian.Uint16(b) != uint16(tpm2.TPMAlgSM2) ||
			binary.BigEndian.Uint16(b[2:]) != uint16(ak.SchemeHash) {
			return fmt.Errorf("SM2 signature header %x", b[:min(len(b), 4)])
		}
		rl := int(binary.BigEndian.Uint16(b[4:]))
		if len(b) < 8+rl {
			return errors.New("short SM2 signature")
		}
		r := new(big.Int).SetBytes(b[6 : 6+rl])
		sl := int(binary.BigEndian.Uint16(b[6+rl:]))
		if len(b) != 8+rl+sl {
			return errors.New("SM2 signature length")
		}
		s := new(big.Int).SetBytes(b[8+rl:])
		pub, err := ak.PublicKey()
		if err != nil {
			return err
		}
		if !sm2.Verify(pub, digest, r, s) {
			return errors.New("SM2 signature does not verify")
		}
	default:
		return fmt.Errorf("AK alg %q", ak.Alg)
	}
	return nil
}

// extend extends PCR index in the SHA-1 and SHA-256 banks.
func extend(t testing.TB, tp transport.TPM, index int, data string) {
	t.Helper()
	d256 := sha256.Sum256([]byte(data))
	_, err := tpm2.PCRExtend{
		PCRHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(index), Auth: tpm2.PasswordAuth(nil)},
		Digests: tpm2.TPMLDigestValues{Digests: []tpm2.TPMTHA{
			{HashAlg: tpm2.TPMAlgSHA256, Digest: d256[:]},
			{HashAlg: tpm2.TPMAlgSHA1, Digest: d256[:20]},
		}},
	}.Execute(tp)
	if err != nil {
		t.Fatalf("extend PCR %d: %v", index, err)
	}
}
