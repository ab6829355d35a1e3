//go:build cgo

package tpmimv

import (
	"slices"
	"testing"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/simulator"

	"trustnac/imv"
	"trustnac/transport/patnc"
)

// simAKTemplate is an ECC P-256 restricted signing key with ECDSA-SHA256.
var simAKTemplate = tpm2.TPMTPublic{
	Type:    tpm2.TPMAlgECC,
	NameAlg: tpm2.TPMAlgSHA256,
	ObjectAttributes: tpm2.TPMAObject{
		FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true, UserWithAuth: true,
		Restricted: true, SignEncrypt: true,
	},
	Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
		Scheme: tpm2.TPMTECCScheme{
			Scheme:  tpm2.TPMAlgECDSA,
			Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSigSchemeECDSA{HashAlg: tpm2.TPMAlgSHA256}),
		},
		CurveID: tpm2.TPMECCNistP256,
	}),
}

func simEKPolicy(tpm transport.TPM, handle tpm2.TPMISHPolicy, nonce tpm2.TPM2BNonce) error {
	_, err := tpm2.PolicySecret{AuthHandle: tpm2.TPMRHEndorsement, PolicySession: handle, NonceTPM: nonce}.Execute(tpm)
	return err
}

// TestActivateWithSimulator enrolls an AK of the TPM simulator: the
// verifier's challenge is answered by TPM2_ActivateCredential with the
// simulator's RSA EK (certified by a test CA) and the quote by TPM2_Quote.
func TestActivateWithSimulator(t *testing.T) {
	tpm, err := simulator.OpenSimulator()
	if err != nil {
		t.Skipf("TPM simulator: %v", err)
	}
	defer tpm.Close()
	ek, err := tpm2.CreatePrimary{PrimaryHandle: tpm2.TPMRHEndorsement, InPublic: tpm2.New2B(tpm2.RSAEKTemplate)}.Execute(tpm)
	if err != nil {
		t.Fatal(err)
	}
	defer tpm2.FlushContext{FlushHandle: ek.ObjectHandle}.Execute(tpm)
	ak, err := tpm2.CreatePrimary{PrimaryHandle: tpm2.TPMRHEndorsement, InPublic: tpm2.New2B(simAKTemplate)}.Execute(tpm)
	if err != nil {
		t.Fatal(err)
	}
	defer tpm2.FlushContext{FlushHandle: ak.ObjectHandle}.Execute(tpm)
	ekPub, err := ek.OutPublic.Contents()
	if err != nil {
		t.Fatal(err)
	}
	ekKey, err := tpm2.Pub(*ekPub)
	if err != nil {
		t.Fatal(err)
	}
	caKey, ca := newTestCA(t, "simulated TPM maker")
	cert := issueEKCert(t, caKey, ca, ekKey, []asn1OID{oidTCGKPEKCertificate})

	l := newLab(t, AKAlgECDSAP256, Config{})
	l.v.cfg.EKRoots = x509Pool(ca)
	for _, tc := range []struct {
		name   string
		answer func(ch *patnc.TPMCredentialChallenge) []byte
		want   imv.Recommendation
	}{
		{"wrong EK", func(ch *patnc.TPMCredentialChallenge) []byte { return nil }, imv.NoAccess},
		{"activated", func(ch *patnc.TPMCredentialChallenge) []byte {
			rsp, err := tpm2.ActivateCredential{
				ActivateHandle: tpm2.NamedHandle{Handle: ak.ObjectHandle, Name: ak.Name},
				KeyHandle:      tpm2.AuthHandle{Handle: ek.ObjectHandle, Name: ek.Name, Auth: tpm2.Policy(tpm2.TPMAlgSHA256, 16, simEKPolicy)},
				CredentialBlob: tpm2.TPM2BIDObject{Buffer: ch.IDObject},
				Secret:         tpm2.TPM2BEncryptedSecret{Buffer: ch.EncSecret},
			}.Execute(tpm)
			if err != nil {
				t.Fatalf("ActivateCredential: %v", err)
			}
			return rsp.CertInfo.Buffer
		}, imv.Allow},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := l.session(t)
			out := exchange(t, s, patnc.NewTPMAK(ak.OutPublic.Bytes()), patnc.NewTPMEK(ek.OutPublic.Bytes(), cert))
			ch := find[*patnc.TPMCredentialChallenge](out)
			req := find[*patnc.TPMQuoteRequest](out)
			if ch == nil || req == nil {
				t.Fatalf("answered %v", out)
			}
			secret := tc.answer(ch)
			if secret == nil {
				// Stand in for a TPM without this EK: the secret cannot
				// be recovered, any guess fails.
				secret = make([]byte, 32)
			}
			quote := simQuote(t, tpm, ak, req.Nonce)
			exchange(t, s, append([]patnc.Value{&patnc.TPMCredentialResponse{Secret: secret}, quote}, emptyLogs()...)...)
			r := s.Result()
			wantRec(t, r, tc.want, "")
			if tc.want == imv.Allow && (r.Facts["enrollment"] != MethodEKCert || r.Facts["ak"] != "sha256:"+hexName(ak.Name.Buffer)) {
				t.Errorf("facts %v", r.Facts)
			}
		})
	}
}

// simQuote quotes sha256 PCRs 0–7 and 10 and reads their values.
func simQuote(t *testing.T, tpm transport.TPM, ak *tpm2.CreatePrimaryResponse, nonce []byte) *patnc.TPMQuote {
	t.Helper()
	pcrs := []uint{0, 1, 2, 3, 4, 5, 6, 7, 10}
	sel := tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{Hash: tpm2.TPMAlgSHA256, PCRSelect: tpm2.PCClientCompatible.PCRs(pcrs...)}}}
	rsp, err := tpm2.Quote{
		SignHandle:     tpm2.AuthHandle{Handle: ak.ObjectHandle, Name: ak.Name, Auth: tpm2.PasswordAuth(nil)},
		QualifyingData: tpm2.TPM2BData{Buffer: nonce},
		InScheme:       tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgNull},
		PCRSelect:      sel,
	}.Execute(tpm)
	if err != nil {
		t.Fatalf("Quote: %v", err)
	}
	q := &patnc.TPMQuote{Attest: rsp.Quoted.Bytes(), Signature: tpm2.Marshal(rsp.Signature)}
	for chunk := range slices.Chunk(pcrs, 8) {
		read, err := tpm2.PCRRead{PCRSelectionIn: tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{
			{Hash: tpm2.TPMAlgSHA256, PCRSelect: tpm2.PCClientCompatible.PCRs(chunk...)}}}}.Execute(tpm)
		if err != nil {
			t.Fatal(err)
		}
		for i, d := range read.PCRValues.Digests {
			q.PCRs = append(q.PCRs, patnc.PCRValue{Hash: algSHA256, Index: uint8(chunk[i]), Digest: d.Buffer})
		}
	}
	return q
}
