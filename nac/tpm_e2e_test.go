package nac

import (
	"context"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"

	"trustnac/pdp"
	"trustnac/testbed"
)

// quotedPCRs are the PCRs the TPM tests quote and hold reference values for.
var quotedPCRs = []int{0, 1, 2, 3, 4, 5, 6, 7, 10}

// readPCRs reads the sha256 values of quotedPCRs from the swtpm.
func readPCRs(t *testing.T, s *testbed.SWTPM) map[int]string {
	t.Helper()
	tpm, err := s.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer tpm.Close()
	out := map[int]string{}
	for _, idx := range quotedPCRs {
		rsp, err := tpm2.PCRRead{PCRSelectionIn: tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{
			{Hash: tpm2.TPMAlgSHA256, PCRSelect: tpm2.PCClientCompatible.PCRs(uint(idx))},
		}}}.Execute(tpm)
		if err != nil {
			t.Fatal(err)
		}
		out[idx] = hex.EncodeToString(rsp.PCRValues.Digests[0].Buffer)
	}
	return out
}

// extendPCR extends PCR idx of the swtpm in the sha256 bank.
func extendPCR(t *testing.T, s *testbed.SWTPM, idx int) {
	t.Helper()
	tpm, err := s.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer tpm.Close()
	_, err = tpm2.PCRExtend{
		PCRHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(idx), Auth: tpm2.PasswordAuth(nil)},
		Digests: tpm2.TPMLDigestValues{Digests: []tpm2.TPMTHA{
			{HashAlg: tpm2.TPMAlgSHA256, Digest: make([]byte, 32)},
		}},
	}.Execute(tpm)
	if err != nil {
		t.Fatal(err)
	}
}

const tpmPolicy = `version: 1
roles:
  admit: {vlan: 10}
  isolate: {vlan: 99, remediation: {text: "Reinstall the boot chain from the golden image"}}
groups:
  - name: terminals
    identities: ["term-*"]
    enrollment: credential
rules:
  - name: tpm-good
    when: 'has(tpm.quote_verified) && tpm.quote_verified && tpm.pcrs_match'
    role: admit
    reason: "TPM quote verified, PCRs match %[2]s"
  - name: tpm-off-reference
    when: 'has(tpm.quote_verified) && tpm.quote_verified && !tpm.pcrs_match'
    role: isolate
    reason: "measured boot differs from the reference values"
default: {role: isolate, reason: "no verified TPM evidence"}
reference_values:
  - name: %[2]s
    groups: [terminals]
    pcrs:
      sha256:
%[1]s`

// tpmLab starts a swtpm and a PDP whose policy holds the swtpm's current
// PCR values as reference.
func tpmLab(t *testing.T) (*lab, *testbed.SWTPM) {
	return tpmLabPrepared(t, nil)
}

// tpmLabPrepared is tpmLab with prepare run on the swtpm before its PCRs
// are taken as the reference.
func tpmLabPrepared(t *testing.T, prepare func(*testbed.SWTPM)) (*lab, *testbed.SWTPM) {
	t.Helper()
	if err := testbed.SWTPMAvailable(); err != nil {
		t.Skip(err)
	}
	s, err := testbed.StartSWTPM(context.Background(), t.TempDir(), testbed.SWTPMOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop() })
	if prepare != nil {
		prepare(s)
	}
	var refs strings.Builder
	for _, idx := range quotedPCRs {
		fmt.Fprintf(&refs, "        %d: %q\n", idx, readPCRs(t, s)[idx])
	}
	l := newLab(t)
	writeFile(t, l.policy, fmt.Sprintf(tpmPolicy, refs.String(), "swtpm-golden"))
	// Restart the PDP with the TPM configuration: EK certificates from the
	// swtpm's CA.
	l.stop()
	l.cfg.TPM = TPMVerifierConf{EKRoots: s.CACerts, PCRs: quotedPCRs, Banks: []string{"sha256", "sha1"}}
	l.start()
	return l, s
}

func (l *lab) tpmAgent(s *testbed.SWTPM, akAlg, stateDir string) *AgentConfig {
	c := l.agentConfig("term-healthy", "healthy")
	c.Collectors.TPM = &TPMCollectorConfig{Device: "unix:" + s.Socket, StateDir: stateDir, AKAlg: akAlg,
		EKAlg: "rsa", EventLog: "-", IMALog: "-"}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		l.t.Fatal(err)
	}
	return c
}

func TestEndToEndTPM(t *testing.T) {
	for _, alg := range []string{"ecc-p256", "sm2"} {
		t.Run(alg, func(t *testing.T) {
			l, s := tpmLab(t)
			ctx := context.Background()
			agent := l.tpmAgent(s, alg, t.TempDir())

			// First contact: the AK is enrolled by credential activation
			// against the EK certificate, the quote verifies, PCRs match.
			o, err := RunAgent(ctx, agent, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			if o.Role != "admit" {
				t.Fatalf("role %s, reasons %q; want admit", o.Role, o.Reasons)
			}
			aks, err := l.pdp.store.ListAKs()
			if err != nil || len(aks) != 1 {
				t.Fatalf("enrolled AKs: %v, %v", aks, err)
			}
			ak := aks[0]
			if ak.Status != "approved" || ak.Method != "ek-cert" || ak.EndpointID != "id:term-healthy" {
				t.Errorf("AK record: status %s, method %s, endpoint %s", ak.Status, ak.Method, ak.EndpointID)
			}
			rec, _ := l.pdp.Store().Get("id:term-healthy")
			if rec.Facts["tpm"]["ak"] != ak.Name || rec.Facts["tpm"]["ak_alg"] != map[string]string{"ecc-p256": "ecdsa-p256", "sm2": "sm2"}[alg] {
				t.Errorf("tpm facts %v", rec.Facts["tpm"])
			}

			// Second assessment with the same AK: no new enrollment, still admitted.
			if o, err := RunAgent(ctx, agent, testLogger(t)); err != nil || o.Role != "admit" {
				t.Fatalf("second assessment: %v, %v", o, err)
			}

			// A PCR extended after boot: the quote still verifies but the
			// values are off the reference.
			extendPCR(t, s, 7)
			o, err = RunAgent(ctx, agent, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			if o.Role != "isolate" || !slices.Contains(o.Reasons, "measured boot differs from the reference values") {
				t.Errorf("after extending PCR 7: role %s, reasons %q", o.Role, o.Reasons)
			}
			rec, _ = l.pdp.Store().Get("id:term-healthy")
			if mm, _ := rec.Facts["tpm"]["pcr_mismatches"].([]any); !slices.Contains(mm, any("sha256:7")) {
				t.Errorf("pcr_mismatches = %v", rec.Facts["tpm"]["pcr_mismatches"])
			}

			// The admin lists the AKs through the API; changes need the
			// API on a unix socket, so over TCP they are refused.
			api := l.pdp.APIAddr().String()
			if code, out, errs := runNac(t, nil, "endpoints", "aks", "--api", api); code != 0 || !strings.Contains(out, ak.Name) || !strings.Contains(out, "approved") {
				t.Errorf("nac endpoints aks: exit %d, %s %s", code, out, errs)
			}
			if code, _, errs := runNac(t, nil, "endpoints", "revoke", ak.Name, "--api", api); code == 0 || !strings.Contains(errs, "403") {
				t.Errorf("revoke over TCP: exit %d, %s", code, errs)
			}
			// The admin revokes the AK: every later assessment is a denial.
			if _, err := l.pdp.store.SetAKStatus(ak.Name, pdp.AKRevoked, time.Now()); err != nil {
				t.Fatal(err)
			}
			if o, err := RunAgent(ctx, agent, testLogger(t)); err != nil || o.Role != "deny" {
				t.Errorf("revoked AK: %v, %v; want deny", o, err)
			}
			// With the PDP down, the admin approves it again in the store.
			l.stop()
			store := filepath.Join(l.cfg.StateDir, "pdp.db")
			if code, out, errs := runNac(t, nil, "endpoints", "approve", ak.Name, "--store", store); code != 0 || !strings.Contains(out, "approved") {
				t.Errorf("approve in the store: exit %d, %s %s", code, out, errs)
			}
			l.start()
			agent.PDP.Address, agent.PDP.Pin = l.pdp.PTTLSAddr().String(), l.pdp.Fingerprint
			if o, err := RunAgent(ctx, agent, testLogger(t)); err != nil || o.Role != "isolate" {
				t.Errorf("re-approved AK with PCR 7 still off: %v, %v; want isolate", o, err)
			}
		})
	}
}

func TestEndToEndTPMUnknownEKCA(t *testing.T) {
	l, s := tpmLab(t)
	// A PDP that trusts no EK CA cannot enroll the AK by credential.
	l.stop()
	l.cfg.TPM.EKRoots = []string{filepath.Join("testdata", "other-ca.pem")}
	l.start()
	o, err := RunAgent(context.Background(), l.tpmAgent(s, "ecc-p256", t.TempDir()), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if o.Role == "admit" {
		t.Errorf("an AK whose EK certificate chains to no trusted CA was admitted")
	}
}
