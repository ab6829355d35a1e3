package nac

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	tpmimc "trustnac/imc/tpm"
	tpmimv "trustnac/imv/tpm"
	"trustnac/transport/patnc"
)

// Exit codes of `nac attest verify`.
const (
	attestVerified   = 0
	attestRefused    = 1
	attestBadInput   = 2
	maxEvidenceBytes = 1 << 20
)

func newAttestCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{Use: "attest", Short: "Check and produce TPM quotes (tpm2-tools formats)"}
	cmd.AddCommand(newAttestVerifyCmd(stdout, stderr), newAttestQuoteCmd(stdout, stderr))
	return cmd
}

func newAttestVerifyCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		akPath, quotePath, sigPath, nonceHex, pcrsPath, refPath string
		asJSON                                                  bool
	)
	cmd := &cobra.Command{
		Use:   "verify --ak AK.pub --quote QUOTE.msg --sig QUOTE.sig --nonce HEX [--pcrs PCRS] [--ref REF.yaml]",
		Short: "Verify a TPM quote made by tpm2-tools (ECC P-256 and SM2 attestation keys)",
		Long: `Checks the quote's signature with the AK (TPM2B_PUBLIC as tpm2_create -u writes it),
its magic, type and nonce, the PCR digest against the PCR values (tpm2_quote -o), and
the PCR values against reference values. Exit 0 when it verifies, 1 when it does not
(the reasons on stderr), 2 for unusable input.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			bad := func(err error) error { return &exitError{code: attestBadInput, err: err} }
			var ev tpmimv.Evidence
			var err error
			for _, f := range []struct {
				path string
				dst  *[]byte
			}{{akPath, &ev.AKPublic}, {quotePath, &ev.Attest}, {sigPath, &ev.Signature}, {pcrsPath, &ev.PCRs}} {
				if f.path == "" {
					continue
				}
				if *f.dst, err = readBounded(f.path); err != nil {
					return bad(err)
				}
			}
			if ev.Nonce, err = hex.DecodeString(strings.TrimPrefix(nonceHex, "0x")); err != nil {
				return bad(fmt.Errorf("--nonce: %w", err))
			}
			var refs []tpmimv.ReferenceSet
			if refPath != "" {
				if refs, err = tpmimv.LoadReferenceFile(refPath); err != nil {
					return bad(err)
				}
			}
			v, err := tpmimv.VerifyEvidence(ev, refs)
			if err != nil {
				return bad(err)
			}
			if asJSON {
				printJSON(stdout, v)
			} else if v.OK {
				fmt.Fprintf(stdout, "verified: %s AK %s, reset %d, restart %d, clock %d\n",
					v.AKAlg, v.AKName, v.ResetCount, v.RestartCount, v.Clock)
				if v.ReferenceMatch != "" {
					fmt.Fprintf(stdout, "reference: %s\n", v.ReferenceMatch)
				}
			}
			if !v.OK {
				for _, r := range v.Reasons {
					fmt.Fprintln(stderr, "not verified:", r)
				}
				return &exitError{code: attestRefused}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&akPath, "ak", "", "attestation key, TPM2B_PUBLIC (tpm2_create -u)")
	f.StringVar(&quotePath, "quote", "", "quoted TPMS_ATTEST (tpm2_quote -m)")
	f.StringVar(&sigPath, "sig", "", "TPMT_SIGNATURE (tpm2_quote -s)")
	f.StringVar(&nonceHex, "nonce", "", "the qualifying data the quote must carry, hex")
	f.StringVar(&pcrsPath, "pcrs", "", "PCR values (tpm2_quote -o)")
	f.StringVar(&refPath, "ref", "", "reference values file")
	f.BoolVar(&asJSON, "json", false, "print the verdict as JSON")
	for _, n := range []string{"ak", "quote", "sig", "nonce"} {
		cmd.MarkFlagRequired(n)
	}
	return cmd
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxEvidenceBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxEvidenceBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxEvidenceBytes)
	}
	return b, nil
}

// parsePCRList reads "sha256:0,1,2,7+sha1:0" into PCR selections.
func parsePCRList(s string) ([]patnc.PCRSelection, error) {
	var sels []patnc.PCRSelection
	for _, part := range strings.Split(s, "+") {
		bank, list, ok := strings.Cut(part, ":")
		alg, known := bankAlgs[bank]
		if !ok || !known {
			return nil, fmt.Errorf("PCR list %q: want bank:index,... with bank sha1, sha256, sha384 or sm3_256", part)
		}
		sel := patnc.PCRSelection{Hash: alg}
		for _, x := range strings.Split(list, ",") {
			n, err := strconv.Atoi(x)
			if err != nil || n < 0 || n > 23 {
				return nil, fmt.Errorf("PCR list %q: %q is not a PCR", part, x)
			}
			sel.PCRs = append(sel.PCRs, uint8(n))
		}
		sort.Slice(sel.PCRs, func(i, j int) bool { return sel.PCRs[i] < sel.PCRs[j] })
		sels = append(sels, sel)
	}
	return sels, nil
}

func newAttestQuoteCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		device, stateDir, akAlg, nonceHex, pcrList, outDir string
	)
	cmd := &cobra.Command{
		Use:   "quote --nonce HEX --out DIR",
		Short: "Quote PCRs with this endpoint's AK and write tpm2-tools files, for debugging",
		Long: `Writes ak.pub, quote.msg, quote.sig and quote.pcrs into DIR, in the formats of
tpm2_create -u and tpm2_quote -m/-s/-o, so that nac attest verify (or tpm2_checkquote)
can check them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			nonce, err := hex.DecodeString(strings.TrimPrefix(nonceHex, "0x"))
			if err != nil {
				return &exitError{code: 2, err: fmt.Errorf("--nonce: %w", err)}
			}
			sels, err := parsePCRList(pcrList)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			tpm, err := tpmimc.OpenTPM(device)
			if err != nil {
				return err
			}
			defer tpm.Close()
			col, err := tpmimc.New(tpm, tpmimc.Config{StateDir: stateDir, AKAlg: akAlg}, NewLogger(LogConfig{Level: "warn"}, stderr))
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			ak, err := col.AK(ctx)
			if err != nil {
				return err
			}
			q, err := col.Quote(ctx, nonce, sels)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(outDir, 0o755); err != nil {
				return err
			}
			if err := tpmimc.WriteTPM2ToolsEvidence(outDir, ak, q); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "wrote %s/{ak.pub,quote.msg,quote.sig,quote.pcrs} (%s AK)\n", outDir, ak.Alg)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&device, "tpm", "/dev/tpmrm0", "TPM device or unix:/path of swtpm")
	f.StringVar(&stateDir, "state-dir", "/var/lib/trustnac/agent", "where the AK blobs are kept")
	f.StringVar(&akAlg, "ak-alg", "ecc-p256", "ecc-p256 or sm2")
	f.StringVar(&nonceHex, "nonce", "", "qualifying data, hex")
	f.StringVar(&pcrList, "pcrs", "sha256:0,1,2,3,4,5,6,7", "PCRs to quote, bank:i,j,...+bank:...")
	f.StringVar(&outDir, "out", ".", "directory for the files")
	cmd.MarkFlagRequired("nonce")
	return cmd
}
