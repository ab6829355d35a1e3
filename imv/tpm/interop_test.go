package tpmimv

import (
	"bytes"
	"context"
	"encoding/hex"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"trustnac/testbed"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/tpm2-tools from swtpm")

// AK attributes of a restricted signing key, as tpm2_create takes them.
const toolsAKAttrs = "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign"

// toolsAK is how tpm2-tools 5.4 makes and quotes with each kind of AK.
// tpm2_create spells SM2 keys ecc_sm2_p256 with scheme sm2; swtpm has no
// SM3, so its SM2 scheme hash is SHA-256, and tpm2_quote must be told the
// scheme (it picks ECDSA for every ECC key otherwise).
var toolsAKs = []struct {
	name   string
	alg    string
	create []string
	quote  []string
}{
	{"ecdsa", AKAlgECDSAP256, []string{"-G", "ecc256:ecdsa-sha256:null"}, []string{"-g", "sha256"}},
	{"sm2", AKAlgSM2, []string{"-G", "ecc_sm2_p256:sm2:null"}, []string{"--scheme", "sm2", "-g", "sha256"}},
}

// tools runs tpm2-tools against one swtpm, flushing transient objects
// after every command (swtpm has no resource manager).
type tools struct {
	t    *testing.T
	dir  string
	tcti string
}

func (tt tools) run(args ...string) string {
	tt.t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = tt.dir
	cmd.Env = append(os.Environ(), "TPM2TOOLS_TCTI="+tt.tcti)
	out, err := cmd.CombinedOutput()
	flush := exec.Command("tpm2_flushcontext", "-t")
	flush.Env = cmd.Env
	flush.Run()
	if err != nil {
		tt.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (tt tools) read(name string) []byte {
	tt.t.Helper()
	b, err := os.ReadFile(filepath.Join(tt.dir, name))
	if err != nil {
		tt.t.Fatal(err)
	}
	return b
}

func startTools(t *testing.T) tools {
	t.Helper()
	if err := testbed.SWTPMAvailable(); err != nil {
		t.Skip(err)
	}
	for _, bin := range []string{"tpm2_createprimary", "tpm2_create", "tpm2_load", "tpm2_quote", "tpm2_pcrextend", "tpm2_flushcontext"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed (Debian package tpm2-tools)", bin)
		}
	}
	s, err := testbed.StartSWTPM(context.Background(), t.TempDir(), testbed.SWTPMOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop() })
	tt := tools{t: t, dir: t.TempDir(), tcti: s.TCTI()}
	// The AKs live under a primary key of the endorsement hierarchy, so
	// the TPM does not obfuscate the reset and restart counts.
	tt.run("tpm2_createprimary", "-C", "e", "-g", "sha256", "-G", "ecc", "-c", "primary.ctx")
	tt.run("tpm2_pcrextend", "7:sha256="+strings.Repeat("ab", 32))
	return tt
}

// TestInteropTPM2Tools quotes with tpm2-tools on swtpm and checks that
// VerifyEvidence accepts the quote and refuses every tampering.
func TestInteropTPM2Tools(t *testing.T) {
	tt := startTools(t)
	nonce := "5eed" + strings.Repeat("0123456789abcdef", 3)
	evidence := map[string]Evidence{}
	for _, ak := range toolsAKs {
		t.Run(ak.name, func(t *testing.T) {
			tt.t = t
			p := func(s string) string { return ak.name + "." + s }
			tt.run(append([]string{"tpm2_create", "-C", "primary.ctx", "-a", toolsAKAttrs, "-u", p("pub"), "-r", p("priv")}, ak.create...)...)
			tt.run("tpm2_load", "-C", "primary.ctx", "-u", p("pub"), "-r", p("priv"), "-c", p("ctx"))
			quote := func(prefix string, extra ...string) Evidence {
				args := []string{"tpm2_quote", "-c", p("ctx"), "-l", "sha256:0,1,2,7+sha1:0,7", "-q", nonce,
					"-m", prefix + ".msg", "-s", prefix + ".sig", "-o", prefix + ".pcrs"}
				tt.run(append(append(args, ak.quote...), extra...)...)
				n, _ := hex.DecodeString(nonce)
				return Evidence{AKPublic: tt.read(p("pub")), Attest: tt.read(prefix + ".msg"),
					Signature: tt.read(prefix + ".sig"), Nonce: n, PCRs: tt.read(prefix + ".pcrs")}
			}
			ev := quote(p("quote"))
			evidence[ak.name] = ev
			refs := []ReferenceSet{{Name: "swtpm", PCRs: map[uint16]map[int][][]byte{algSHA256: {0: {make([]byte, 32)}}}}}
			v := mustVerify(t, ev, refs)
			if !v.OK || v.AKAlg != ak.alg || v.ReferenceMatch != "swtpm" || len(v.PCRs[algSHA256]) != 4 || len(v.PCRs[algSHA1]) != 2 {
				t.Fatalf("verdict %+v", v)
			}
			if v.ResetCount > 100 || v.Clock == 0 {
				t.Errorf("counters: reset %d clock %d (endorsement hierarchy: not obfuscated)", v.ResetCount, v.Clock)
			}
			// The values form of the PCR file.
			values := quote(p("values"), "-F", "values")
			if len(values.PCRs) != 4*32+2*20 {
				t.Fatalf("values file of %d bytes", len(values.PCRs))
			}
			if v := mustVerify(t, values, refs); !v.OK {
				t.Fatalf("values form: %+v", v)
			}

			flipped := ev
			flipped.Attest = bytes.Clone(ev.Attest)
			flipped.Attest[len(flipped.Attest)-1] ^= 1
			wantRefused(t, flipped, "signature does not verify")

			wrongNonce := ev
			wrongNonce.Nonce = bytes.Repeat([]byte{1}, len(ev.Nonce))
			wantRefused(t, wrongNonce, "does not carry the given nonce")

			badPCRs := ev
			badPCRs.PCRs = bytes.Clone(ev.PCRs)
			badPCRs.PCRs[serializedHeaderLen+4+2] ^= 1 // first digest, first octet
			wantRefused(t, badPCRs, "do not match the quoted PCR digest")

			wrongRef := []ReferenceSet{{Name: "other", PCRs: map[uint16]map[int][][]byte{algSHA256: {7: {make([]byte, 32)}}}}}
			if v := mustVerify(t, ev, wrongRef); v.OK || !strings.Contains(strings.Join(v.Reasons, "\n"), "PCR 7") {
				t.Errorf("off-reference verdict %+v", v)
			}

			if *updateGolden {
				dir := filepath.Join("testdata", "tpm2-tools", ak.name)
				os.MkdirAll(dir, 0o755)
				for name, data := range map[string][]byte{"ak.pub": ev.AKPublic, "quote.msg": ev.Attest, "quote.sig": ev.Signature,
					"quote.pcrs": ev.PCRs, "values.pcrs": values.PCRs, "values.msg": values.Attest, "values.sig": values.Signature,
					"nonce": []byte(nonce + "\n")} {
					if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
		})
	}
	// A signature from another key: the SM2 quote checked with the ECDSA
	// AK, and the ECDSA quote with a second ECDSA AK.
	tt.t = t
	if len(evidence) == 2 {
		swapped := evidence["sm2"]
		swapped.AKPublic = evidence["ecdsa"].AKPublic
		wantRefused(t, swapped, "scheme")
		tt.run("tpm2_create", "-C", "primary.ctx", "-a", toolsAKAttrs, "-u", "other.pub", "-r", "other.priv", "-G", "ecc256:ecdsa-sha256:null")
		other := evidence["ecdsa"]
		other.AKPublic = tt.read("other.pub")
		wantRefused(t, other, "signature does not verify")
	}
}

func mustVerify(t *testing.T, ev Evidence, refs []ReferenceSet) *Verdict {
	t.Helper()
	v, err := VerifyEvidence(ev, refs)
	if err != nil {
		t.Fatalf("VerifyEvidence: %v", err)
	}
	return v
}

func wantRefused(t *testing.T, ev Evidence, reason string) {
	t.Helper()
	v := mustVerify(t, ev, nil)
	if v.OK || !strings.Contains(strings.Join(v.Reasons, "\n"), reason) {
		t.Errorf("verdict %+v, want refused for %q", v, reason)
	}
}
