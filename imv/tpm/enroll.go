package tpmimv

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/go-tpm/tpm2"
)

// Enrollment modes (Config.Enrollment).
const (
	// EnrollCredential: a new AK is approved after credential activation
	// with an EK whose certificate chains to Config.EKRoots; with an EK
	// without such a certificate it stays pending until an admin
	// approves it. The default.
	EnrollCredential = "credential"
	// EnrollTOFU: a new AK is approved after credential activation with
	// the EK the endpoint reports, certificate or not (trust on first
	// use). Only where the policy says so.
	EnrollTOFU = "tofu"
	// EnrollNone: only AKs already approved count; a new one is recorded
	// as pending for an admin.
	EnrollNone = "none"
)

// credentialSecretLen is the size of the secret wrapped by MakeCredential.
const credentialSecretLen = 32

// Object identifiers of EK certificates (TCG EK Credential Profile for TPM
// Family 2.0, §3.2 and §3.3).
var (
	oidTCGKPEKCertificate = asn1.ObjectIdentifier{2, 23, 133, 8, 1}
	oidSubjectAltName     = asn1.ObjectIdentifier{2, 5, 29, 17}
	oidSubjectDirAttrs    = asn1.ObjectIdentifier{2, 5, 29, 9}
)

// Errors of EK certificate checking.
var (
	errNoEKCert     = errors.New("tpmimv: the endpoint reported no EK certificate")
	errNoEKRoots    = errors.New("tpmimv: no EK certificate authorities are configured")
	errEKCertChain  = errors.New("tpmimv: the EK certificate does not chain to a configured EK CA")
	errEKCertKey    = errors.New("tpmimv: the EK certificate is not for the reported EK")
	errEKCertUsage  = errors.New("tpmimv: the certificate's extended key usage excludes EK certificates")
	errEKNotStorage = errors.New("tpmimv: the reported EK is not a restricted decryption key fixed to its TPM")
)

// parseEK parses an endorsement key's TPMT_PUBLIC with go-tpm (EKs are RSA
// or ECC storage keys whose unions go-tpm knows) and checks that it is a
// restricted decryption key fixed to its TPM, as every EK template makes it
// (TCG EK Credential Profile §2.1.5).
func parseEK(public []byte) (*tpm2.TPMTPublic, error) {
	ek, err := tpm2.Unmarshal[tpm2.TPMTPublic](public)
	if err != nil {
		return nil, fmt.Errorf("%w: EK public area: %v", ErrMalformed, err)
	}
	if !bytes.Equal(tpm2.Marshal(ek), public) {
		return nil, fmt.Errorf("%w: EK public area has trailing bytes", ErrMalformed)
	}
	a := ek.ObjectAttributes
	if !a.Restricted || !a.Decrypt || a.SignEncrypt || !a.FixedTPM || !a.FixedParent {
		return nil, errEKNotStorage
	}
	return ek, nil
}

// checkEKCert checks that certDER is a certificate for ek issued under
// roots and valid at now. It is lenient where real EK certificates differ
// from web PKI ones: the subject alternative name (a directoryName with
// the TPM's manufacturer, model and version) and subject directory
// attributes may be critical; the extended key usage may be absent, but
// when present it must name tcg-kp-EKCertificate (2.23.133.8.1) or any.
func checkEKCert(certDER []byte, ek *tpm2.TPMTPublic, roots *x509.CertPool, now time.Time) error {
	if len(certDER) == 0 {
		return errNoEKCert
	}
	if roots == nil {
		return errNoEKRoots
	}
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return fmt.Errorf("%w: %v", errEKCertChain, err)
	}
	cert.UnhandledCriticalExtensions = slices.DeleteFunc(cert.UnhandledCriticalExtensions, func(o asn1.ObjectIdentifier) bool {
		return o.Equal(oidSubjectAltName) || o.Equal(oidSubjectDirAttrs)
	})
	if len(cert.ExtKeyUsage) > 0 || len(cert.UnknownExtKeyUsage) > 0 {
		ok := slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageAny) ||
			slices.ContainsFunc(cert.UnknownExtKeyUsage, func(o asn1.ObjectIdentifier) bool { return o.Equal(oidTCGKPEKCertificate) })
		if !ok {
			return errEKCertUsage
		}
	}
	if _, err := cert.Verify(x509.VerifyOptions{
		Roots:       roots,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return fmt.Errorf("%w: %v", errEKCertChain, err)
	}
	pub, err := tpm2.Pub(*ek)
	if err != nil {
		return fmt.Errorf("%w: %v", errEKCertKey, err)
	}
	eq, ok := pub.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !eq.Equal(cert.PublicKey) {
		return errEKCertKey
	}
	return nil
}

// makeChallenge wraps a fresh secret to the EK for the AK's name
// (makeCredential).
func makeChallenge(ek *tpm2.TPMTPublic, akName []byte) (idObject, encSecret, secret []byte, err error) {
	secret = make([]byte, credentialSecretLen)
	if _, err := rand.Read(secret); err != nil {
		return nil, nil, nil, fmt.Errorf("tpmimv: %w", err)
	}
	idObject, encSecret, err = makeCredential(ek, akName, secret)
	if err != nil {
		return nil, nil, nil, err
	}
	return idObject, encSecret, secret, nil
}

// makeCredential wraps secret to the EK for the AK's name with
// TPM2_MakeCredential's algorithm (TPM 2.0 Part 1, Credential Protection;
// done in software by go-tpm's CreateCredential): only the TPM that holds
// the EK and has the AK loaded recovers it with TPM2_ActivateCredential.
// The secret is at most the size of the EK's nameAlg digest.
func makeCredential(ek *tpm2.TPMTPublic, akName, secret []byte) (idObject, encSecret []byte, err error) {
	key, err := tpm2.ImportEncapsulationKey(ek)
	if err != nil {
		return nil, nil, fmt.Errorf("tpmimv: EK: %w", err)
	}
	idObject, encSecret, err = tpm2.CreateCredential(rand.Reader, key, akName, secret)
	if err != nil {
		return nil, nil, fmt.Errorf("tpmimv: make credential: %w", err)
	}
	return idObject, encSecret, nil
}
