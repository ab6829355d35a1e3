// Package tpmimc is the TPM 2.0 Integrity Measurement Collector: on the
// endpoint it keeps an attestation key (AK) under the TPM's storage root
// key, reports the AK and the endorsement key (EK, with its certificate),
// answers the verifier's quote requests with a TPM2_Quote over the
// verifier's nonce (TPM 2.0 Part 3 §18.4) and pieces of the measured-boot
// and IMA measurement logs, and recovers credentials the verifier made for
// the AK with TPM2_ActivateCredential (Part 3 §12.5).
//
// Evidence travels in PA-TNC messages of PA subtype pbtnc.SubtypeTrustnacTPM
// with the trustnac attributes of package patnc (AttrTPMAK, AttrTPMEK,
// AttrTPMQuote, AttrMeasurementLog, AttrTPMCredentialResponse). The
// verifier is package tpmimv.
//
// AKs are ECC P-256 with ECDSA-SHA256, or SM2 (curve TPM_ECC_SM2_P256,
// scheme TPM_ALG_SM2 with SM3-256). go-tpm's unions cannot express the SM2
// scheme or signature, so the AK templates are marshalled and the
// TPM2_Quote response is parsed at the byte level here; everything else
// goes through go-tpm's tpm2 package directly.
//
// For the SM channel it asks for a PSK when Config.Enroll says so, recovers
// the granted key with TPM2_ActivateCredential and hands it to
// Config.OnPSK; and with a channel binding in the handshake's context
// (imc.WithChannelBinding) it quotes H(nonce || binding) with the AK's
// scheme hash instead of the nonce.
package tpmimc
