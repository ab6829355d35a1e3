package tpmimc

import (
	"context"
	"fmt"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"trustnac/transport/patnc"
)

// maxCredentialField caps the TPM2B_ID_OBJECT and TPM2B_ENCRYPTED_SECRET of
// a challenge (both are TPM2Bs; a TPM's are far smaller).
const maxCredentialField = 4096

// ActivateCredential recovers the secret of a credential the verifier made
// with TPM2_MakeCredential to this TPM's EK and the AK's Name (Part 3
// §12.5). The EK (Config.EKAlg) is authorized with a policy session
// satisfying its TCG default policy, PolicySecret(TPM_RH_ENDORSEMENT); the
// AK with an empty password. The TPM refuses a credential made for another
// Name or another EK.
func (c *Collector) ActivateCredential(ctx context.Context, ch *patnc.TPMCredentialChallenge) ([]byte, error) {
	if ch == nil || len(ch.IDObject) == 0 || len(ch.EncSecret) == 0 ||
		len(ch.IDObject) > maxCredentialField || len(ch.EncSecret) > maxCredentialField {
		return nil, fmt.Errorf("%w: credential challenge", ErrBadRequest)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ak, err := c.loadAK(ctx)
	if err != nil {
		return nil, err
	}
	defer c.flush(ak)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("tpmimc: %w", err)
	}
	ek, err := c.createEK()
	if err != nil {
		return nil, err
	}
	defer c.flush(ek.ObjectHandle)
	endorsement := func(t transport.TPM, h tpm2.TPMISHPolicy, nonceTPM tpm2.TPM2BNonce) error {
		_, err := tpm2.PolicySecret{
			AuthHandle:    tpm2.TPMRHEndorsement,
			PolicySession: h,
			NonceTPM:      nonceTPM,
		}.Execute(t)
		return err
	}
	rsp, err := tpm2.ActivateCredential{
		ActivateHandle: tpm2.AuthHandle{Handle: ak, Name: c.ak.Name, Auth: tpm2.PasswordAuth(nil)},
		KeyHandle: tpm2.AuthHandle{
			Handle: ek.ObjectHandle,
			Name:   ek.Name,
			Auth:   tpm2.Policy(tpm2.TPMAlgSHA256, 16, endorsement),
		},
		CredentialBlob: tpm2.TPM2BIDObject{Buffer: ch.IDObject},
		Secret:         tpm2.TPM2BEncryptedSecret{Buffer: ch.EncSecret},
	}.Execute(c.tpm)
	if err != nil {
		return nil, fmt.Errorf("tpmimc: activate credential: %w", err)
	}
	return clone(rsp.CertInfo.Buffer), nil
}
