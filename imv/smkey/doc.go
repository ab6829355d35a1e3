// Package smkeyimv is the verifier side of SM2 key-pair enrollment
// (PA subtype vendor patnc.VendorTrustnac, subtype
// patnc.PASubtypeTrustnacSMKey): it issues the SM channel's PSK
// (DESIGN.md, "The SM channel") to endpoints without a TPM.
//
// The endpoint sends its SM2 public key (GB/T 32918, as a DER
// SubjectPublicKeyInfo) and a PSK Request of kind patnc.PSKKindSM2. The
// verifier grants a PSK only when the key is one the admin registered in
// the key file (PEM "PUBLIC KEY" blocks, each with an "Endpoint" header
// naming the endpoint it belongs to: its ID or authenticated identity as
// the PDP sees them), the endpoint under assessment is that endpoint, and
// the policy hook allows SM2 key enrollment for it. The PSK is issued for
// the endpoint's ID (imv.Endpoint.ID) and encrypted to the registered
// public key with SM2 public key encryption (GB/T 32918.4, ciphertext
// C1 || C3 || C2, C1 uncompressed), so only the holder of the private key
// recovers it. Anything else is answered with a refused grant and a reason.
//
// This is enrollment, not posture: the verifier's recommendation is always
// NoRecommendation; its facts (namespace "smkey") say what happened.
package smkeyimv
