package tpmimc

import (
	"bytes"
	"context"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"trustnac/transport/patnc"
)

// testdata/tpm2tools holds what tpm2-tools 5.4 wrote for
// `tpm2_quote -c ak.ctx -l sha1:0,1,2+sha256:0,7,10 -q 0011223344556677
// -m quote.msg -s quote.sig -o quote.pcrs -g sha256` on a fresh swtpm (all
// those PCRs zero). WriteTPM2ToolsEvidence must write the same bytes.
func TestWriteTPM2ToolsEvidenceGolden(t *testing.T) {
	golden := map[string][]byte{}
	for _, f := range []string{"ak.pub", "quote.msg", "quote.sig", "quote.pcrs"} {
		b, err := os.ReadFile(filepath.Join("testdata/tpm2tools", f))
		if err != nil {
			t.Fatal(err)
		}
		golden[f] = b
	}
	c := &Collector{kind: akKinds[AKAlgECCP256]}
	ak, err := c.newAK(golden["ak.pub"][2:])
	if err != nil {
		t.Fatal(err)
	}
	var pcrs []patnc.PCRValue
	for _, p := range []uint8{0, 1, 2} {
		pcrs = append(pcrs, patnc.PCRValue{Hash: 0x0004, Index: p, Digest: make([]byte, 20)})
	}
	for _, p := range []uint8{0, 7, 10} {
		pcrs = append(pcrs, patnc.PCRValue{Hash: 0x000b, Index: p, Digest: make([]byte, 32)})
	}
	q := &patnc.TPMQuote{Attest: golden["quote.msg"], Signature: golden["quote.sig"], PCRs: pcrs}
	n, _ := hex.DecodeString("0011223344556677")
	if err := verifyQuote(ak, q, n); err != nil {
		t.Fatalf("the tpm2-tools quote does not verify here: %v", err)
	}
	dir := filepath.Join(t.TempDir(), "out")
	if err := WriteTPM2ToolsEvidence(dir, ak, q); err != nil {
		t.Fatal(err)
	}
	for f, want := range golden {
		got, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from tpm2-tools':\n got %x\nwant %x", f, got, want)
		}
	}
}

func TestTPM2ToolsPCRsErrors(t *testing.T) {
	tests := []struct {
		name string
		pcrs []patnc.PCRValue
	}{
		{"twice", []patnc.PCRValue{{Hash: 4, Index: 1, Digest: make([]byte, 20)}, {Hash: 4, Index: 1, Digest: make([]byte, 20)}}},
		{"PCR 24", []patnc.PCRValue{{Hash: 4, Index: 24, Digest: make([]byte, 20)}}},
		{"long digest", []patnc.PCRValue{{Hash: 4, Index: 1, Digest: make([]byte, 65)}}},
	}
	for _, tt := range tests {
		if _, err := tpm2ToolsPCRs(tt.pcrs); err == nil {
			t.Errorf("%s: accepted", tt.name)
		}
	}
	if err := WriteTPM2ToolsEvidence(t.TempDir(), nil, &patnc.TPMQuote{}); err == nil {
		t.Error("accepted no AK")
	}
}

// A live quote over 18 PCRs (three TPML_DIGESTs) checks with
// tpm2_checkquote.
func TestTPM2CheckQuote(t *testing.T) {
	if _, err := exec.LookPath("tpm2_checkquote"); err != nil {
		t.Skip("tpm2_checkquote not installed (Debian package tpm2-tools)")
	}
	tp, _ := swtpm(t)
	c := newCollector(t, tp, Config{})
	ctx := context.Background()
	ak, err := c.AK(ctx)
	if err != nil {
		t.Fatal(err)
	}
	extend(t, tp, 7, "tpm2_checkquote")
	n := nonce(0x77)
	q, err := c.Quote(ctx, n, twoBanks())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := WriteTPM2ToolsEvidence(dir, ak, q); err != nil {
		t.Fatal(err)
	}
	check := func(nonceHex string) error {
		cmd := exec.Command("tpm2_checkquote", "-u", "ak.pub", "-m", "quote.msg", "-s", "quote.sig",
			"-f", "quote.pcrs", "-g", "sha256", "-q", nonceHex)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Logf("tpm2_checkquote: %s", out)
		}
		return err
	}
	if err := check(hex.EncodeToString(n)); err != nil {
		t.Fatalf("tpm2_checkquote rejects our evidence: %v", err)
	}
	if err := check(hex.EncodeToString(nonce(0x78))); err == nil {
		t.Error("tpm2_checkquote accepts another nonce")
	}
}
