// Package tpmimv is the TPM 2.0 attestation Integrity Measurement Verifier
// (PA subtype pbtnc.SubtypeTrustnacTPM) and the core of `nac attest
// verify`. It believes only what an attestation key (AK) it trusts signed
// over its own fresh nonce.
//
// In one PB-TNC handshake the verifier takes the collector's AK and
// endorsement key (EK); enrolls a new AK by TPM credential activation
// (TPM 2.0 Part 1, Credential Protection: MakeCredential to the EK with the AK's name, done in
// software with go-tpm) when the policy allows, approving it when the EK
// certificate chains to the configured EK CAs or the policy says trust on
// first use; asks for a quote of PCRs 0–7 and 10 in the SHA-256 and SHA-1
// banks (TPM2_Quote, Part 3 §18.4) with a 32-byte nonce that a single quote
// can answer; and asks for the measured-boot and IMA logs from the offset
// it already holds for this AK.
//
// A quote counts only when its signature verifies with the AK (ECDSA
// P-256, or SM2 verified raw over the scheme hash of the TPMS_ATTEST, as a
// TPM signs it: no Z_A), its magic is TPM_GENERATED_VALUE and its type
// TPM_ST_ATTEST_QUOTE, its extraData is this session's nonce, its TPM
// counters did not go back, its selection covers what was asked and the
// reported PCR values hash to its pcrDigest. The PCR values are then
// checked against the reference sets, the boot log is replayed (package
// eventlog) and the IMA log replayed to PCR 10 and checked against the
// allowlist (package ima). The result is a recommendation with
// admin- and endpoint-readable reasons, and the facts of the policy
// namespaces "tpm" and "ima".
//
// On request (a PSK Request) it also issues the SM channel's PSK
// (Config.PSKIssuer) to an approved AK whose quote over this session's nonce
// verified, wrapped by MakeCredential to the AK's enrolled EK and name; and
// when the PDP sets imv.Endpoint.ChannelBinding, it expects the quote's
// extraData to be H(nonce || binding) with the AK's scheme hash, so a quote
// cannot be relayed from another channel. See README.md.
//
// go-tpm's unions lack the SM2 scheme and signature, so TPMT_PUBLIC,
// TPMS_ATTEST and TPMT_SIGNATURE are parsed at the byte level here; EKs,
// which are RSA or NIST ECC storage keys, go through go-tpm.
package tpmimv
