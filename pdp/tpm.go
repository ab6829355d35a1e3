package pdp

import (
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"os"

	"trustnac/imv"
	tpmimv "trustnac/imv/tpm"
	"trustnac/policies"
)

// BankAlgs maps PCR bank names, as policy files write them, to TPM_ALG_IDs.
var BankAlgs = map[string]uint16{"sha1": 0x0004, "sha256": 0x000B, "sha384": 0x000C, "sm3_256": 0x0012}

// policyEndpoint is what the policy knows of an endpoint under assessment.
func policyEndpoint(ep imv.Endpoint) policies.Endpoint {
	return policies.Endpoint{ID: ep.ID, MAC: ep.MAC, Identity: ep.Identity, Channel: ep.Channel}
}

// TPMPolicy gives the TPM verifier what the policy in force says about an
// endpoint: how a new AK may be enrolled and which reference values apply.
type TPMPolicy struct {
	Source *PolicySource
}

// Enrollment implements tpmimv.Config.Enrollment.
func (t TPMPolicy) Enrollment(ep imv.Endpoint) string {
	pol := t.Source.Policy()
	return pol.EnrollmentFor(pol.GroupsOf(policyEndpoint(ep)))
}

// References implements tpmimv.Config.References.
func (t TPMPolicy) References(ep imv.Endpoint) []tpmimv.ReferenceSet {
	pol := t.Source.Policy()
	sets := pol.ReferenceSets(pol.GroupsOf(policyEndpoint(ep)))
	out := make([]tpmimv.ReferenceSet, 0, len(sets))
	for _, s := range sets {
		rs := tpmimv.ReferenceSet{Name: s.Name, PCRs: map[uint16]map[int][][]byte{}}
		for bank, pcrs := range s.PCRs {
			alg := BankAlgs[bank]
			rs.PCRs[alg] = map[int][][]byte{}
			for idx, vals := range pcrs {
				for _, v := range vals {
					b, _ := hex.DecodeString(v) // validated when the policy loaded
					rs.PCRs[alg][idx] = append(rs.PCRs[alg][idx], b)
				}
			}
		}
		out = append(out, rs)
	}
	return out
}

// LoadCertPool reads PEM certificate files into a pool; nil for no files.
func LoadCertPool(files []string) (*x509.CertPool, error) {
	if len(files) == 0 {
		return nil, nil
	}
	pool := x509.NewCertPool()
	for _, f := range files {
		pem, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("pdp: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("pdp: %s: no PEM certificate in it", f)
		}
	}
	return pool, nil
}
