package nac

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"trustnac/testbed"
)

func runNac(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	for _, e := range env {
		k, v, _ := strings.Cut(e, "=")
		t.Setenv(k, v)
	}
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// Quotes that tpm2-tools 5.4 made on swtpm (kept by imv/tpm's interop test).
func TestAttestVerifyTPM2ToolsGolden(t *testing.T) {
	for _, alg := range []string{"ecdsa", "sm2"} {
		t.Run(alg, func(t *testing.T) {
			dir := filepath.Join("..", "imv", "tpm", "testdata", "tpm2-tools", alg)
			nonce, err := os.ReadFile(filepath.Join(dir, "nonce"))
			if err != nil {
				t.Fatal(err)
			}
			f := func(n string) string { return filepath.Join(dir, n) }
			args := []string{"attest", "verify", "--ak", f("ak.pub"), "--quote", f("quote.msg"),
				"--sig", f("quote.sig"), "--pcrs", f("quote.pcrs")}
			if code, out, errs := runNac(t, nil, append(args, "--nonce", strings.TrimSpace(string(nonce)))...); code != 0 {
				t.Errorf("genuine quote: exit %d, %s %s", code, out, errs)
			}
			if code, _, errs := runNac(t, nil, append(args, "--nonce", "00112233445566778899")...); code != 1 || !strings.Contains(errs, "not verified") {
				t.Errorf("wrong nonce: exit %d, %s", code, errs)
			}
			if code, _, _ := runNac(t, nil, "attest", "verify", "--ak", f("missing.pub"), "--quote", f("quote.msg"),
				"--sig", f("quote.sig"), "--nonce", "00"); code != 2 {
				t.Errorf("unusable input: exit %d, want 2", code)
			}
		})
	}
}

// `nac attest quote` on swtpm, checked by `nac attest verify` and by
// tpm2-tools' own tpm2_checkquote.
func TestAttestQuoteThenVerify(t *testing.T) {
	if err := testbed.SWTPMAvailable(); err != nil {
		t.Skip(err)
	}
	s, err := testbed.StartSWTPM(context.Background(), t.TempDir(), testbed.SWTPMOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	for _, alg := range []string{"ecc-p256", "sm2"} {
		t.Run(alg, func(t *testing.T) {
			out := t.TempDir()
			nonce := "a1b2c3d4e5f60718293a4b5c6d7e8f90"
			code, stdout, errs := runNac(t, nil, "attest", "quote", "--tpm", "unix:"+s.Socket, "--state-dir", t.TempDir(),
				"--ak-alg", alg, "--nonce", nonce, "--pcrs", "sha256:0,1,2,7+sha1:0", "--out", out)
			if code != 0 {
				t.Fatalf("quote: exit %d: %s %s", code, stdout, errs)
			}
			f := func(n string) string { return filepath.Join(out, n) }
			code, stdout, errs = runNac(t, nil, "attest", "verify", "--ak", f("ak.pub"), "--quote", f("quote.msg"),
				"--sig", f("quote.sig"), "--pcrs", f("quote.pcrs"), "--nonce", nonce)
			if code != 0 {
				t.Fatalf("verify: exit %d: %s %s", code, stdout, errs)
			}
			if alg == "ecc-p256" {
				if _, err := exec.LookPath("tpm2_checkquote"); err == nil {
					cmd := exec.Command("tpm2_checkquote", "-u", f("ak.pub"), "-m", f("quote.msg"),
						"-s", f("quote.sig"), "-f", f("quote.pcrs"), "-g", "sha256", "-q", nonce)
					if b, err := cmd.CombinedOutput(); err != nil {
						t.Errorf("tpm2_checkquote refused our quote: %v: %s", err, b)
					}
				}
			}
		})
	}
}
