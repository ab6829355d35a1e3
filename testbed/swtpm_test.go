package testbed

import (
	"context"
	"testing"

	"github.com/google/go-tpm/tpm2"
)

func TestSWTPM(t *testing.T) {
	if err := SWTPMAvailable(); err != nil {
		t.Skip(err)
	}
	s, err := StartSWTPM(context.Background(), t.TempDir(), SWTPMOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	tpm, err := s.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer tpm.Close()
	caps, err := tpm2.GetCapability{Capability: tpm2.TPMCapPCRs, PropertyCount: 8}.Execute(tpm)
	if err != nil {
		t.Fatal(err)
	}
	sel, err := caps.CapabilityData.Data.AssignedPCR()
	if err != nil {
		t.Fatal(err)
	}
	active := map[tpm2.TPMAlgID]bool{}
	for _, s := range sel.PCRSelections {
		for _, b := range s.PCRSelect {
			if b != 0 {
				active[s.Hash] = true
			}
		}
	}
	if !active[tpm2.TPMAlgSHA1] || !active[tpm2.TPMAlgSHA256] || active[tpm2.TPMAlgSHA384] {
		t.Errorf("active banks %v, want sha1 and sha256", active)
	}
	// The RSA EK certificate is in NV at its TCG index.
	if _, err := (tpm2.NVReadPublic{NVIndex: tpm2.TPMHandle(0x01c00002)}).Execute(tpm); err != nil {
		t.Errorf("no RSA EK certificate: %v", err)
	}
}
