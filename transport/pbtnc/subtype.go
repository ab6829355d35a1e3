package pbtnc

// PASubtype names the kind of posture a PB-PA message carries: a vendor
// (SMI private enterprise number, 24 bits) and a subtype (RFC 5793 §4.5).
// Collectors and verifiers of the same PASubtype talk to each other.
type PASubtype struct {
	Vendor  uint32
	Subtype uint32
}

// IETF PA subtypes (RFC 5792 §3.5, RFC 8412).
var (
	SubtypeTesting     = PASubtype{0, 0}
	SubtypeOS          = PASubtype{0, 1}
	SubtypeAntiVirus   = PASubtype{0, 2}
	SubtypeAntiSpyware = PASubtype{0, 3}
	SubtypeAntiMalware = PASubtype{0, 4}
	SubtypeFirewall    = PASubtype{0, 5}
	SubtypeIDPS        = PASubtype{0, 6}
	SubtypeVPN         = PASubtype{0, 7}
	SubtypeNEAClient   = PASubtype{0, 8}
	SubtypeSWIMA       = PASubtype{0, 9}
)

// SubtypeTrustnacTPM is the PA subtype of trustnac's TPM attestation
// messages: vendor 32473 (see patnc.VendorTrustnac), subtype 1.
var SubtypeTrustnacTPM = PASubtype{32473, 1}
