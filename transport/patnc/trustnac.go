package patnc

// Attributes of trustnac's own, for TPM 2.0 attestation evidence.
//
// The TCG's PTS binding to IF-M defines attestation attributes for TPM 1.2
// structures (TPM_QUOTE_INFO); it defines no attribute that carries a TPM
// 2.0 TPMS_ATTEST, and the TPM 2.0 extensions in use elsewhere split the
// structure into parts that must be reassembled before the signature can be
// checked. trustnac carries the TPM structures whole, in the attributes
// below, under vendor VendorTrustnac in messages of PA subtype
// SubtypeTrustnacTPM. The layouts are documented in README.md.

// VendorTrustnac is the SMI private enterprise number of trustnac's own
// attributes and PA subtype. 32473 is the number RFC 5612 sets aside for
// documentation; it stands in until trustnac has a number of its own, and
// is defined only here.
const VendorTrustnac = 32473

// trustnac attribute types (vendor VendorTrustnac).
const (
	AttrTPMQuoteRequest        = 1 // verifier → collector
	AttrTPMQuote               = 2 // collector → verifier
	AttrTPMAK                  = 3 // collector → verifier
	AttrTPMEK                  = 4 // collector → verifier
	AttrTPMCredentialChallenge = 5 // verifier → collector
	AttrTPMCredentialResponse  = 6 // collector → verifier
	AttrMeasurementLog         = 7 // collector → verifier
)

// Measurement log kinds (MeasurementLog.Kind, TPMQuoteRequest log wishes).
const (
	LogBoot = 1 // TCG PC Client measured boot log, binary (binary_bios_measurements)
	LogIMA  = 2 // Linux IMA log, binary (binary_runtime_measurements)
)

// NoLog in a LogRequest offset means: do not send that log.
const NoLog = ^uint64(0)

// PCRSelection names PCRs of one bank: Hash is a TPM_ALG_ID (0x0004 SHA-1,
// 0x000B SHA-256, 0x000C SHA-384, 0x0012 SM3-256); PCRs are indexes 0–23,
// each at most once. They travel as a bitmap and decode in ascending order.
type PCRSelection struct {
	Hash uint16
	PCRs []uint8
}

// LogRequest asks for a measurement log from Offset on; NoLog asks for
// none. A verifier that already holds a prefix of the log asks for the rest.
type LogRequest struct {
	Kind   uint8
	Offset uint64
}

// TPMQuoteRequest asks the collector for a quote over Nonce of the selected
// PCRs (all banks in one TPM2_Quote), and for measurement logs.
type TPMQuoteRequest struct {
	Nonce      []byte // 8–64 bytes
	Selections []PCRSelection
	Logs       []LogRequest
}

// PCRValue is one PCR's value in one bank.
type PCRValue struct {
	Hash   uint16
	Index  uint8
	Digest []byte
}

// TPMQuote is a TPM2_Quote: the TPMS_ATTEST it signed (the contents of the
// TPM2B_ATTEST, as tpm2_quote -m writes it), the TPMT_SIGNATURE (as
// tpm2_quote -s writes it), and the values of the quoted PCRs.
type TPMQuote struct {
	Attest    []byte
	Signature []byte
	PCRs      []PCRValue
}

// TPMKey is a TPM key's public area (TPMT_PUBLIC, the contents of a
// TPM2B_PUBLIC) and, for an endorsement key, its certificate (DER) when the
// TPM has one. Attribute AttrTPMAK carries the attestation key, AttrTPMEK
// the endorsement key; make values with NewTPMAK or NewTPMEK (a TPMKey
// literal has neither type and does not encode). DecodeAttribute sets the
// kind from the attribute type.
type TPMKey struct {
	kind   uint32 // AttrTPMAK or AttrTPMEK
	Public []byte
	Cert   []byte
}

// NewTPMAK returns the AttrTPMAK value for an AK's public area.
func NewTPMAK(public []byte) *TPMKey { return &TPMKey{kind: AttrTPMAK, Public: public} }

// NewTPMEK returns the AttrTPMEK value for an EK's public area and
// certificate.
func NewTPMEK(public, cert []byte) *TPMKey {
	return &TPMKey{kind: AttrTPMEK, Public: public, Cert: cert}
}

// IsEK reports whether the value is an endorsement key (AttrTPMEK).
func (k *TPMKey) IsEK() bool { return k.kind == AttrTPMEK }

// TPMCredentialChallenge is the output of TPM2_MakeCredential to the
// endpoint's EK and AK name: the TPM2B_ID_OBJECT and TPM2B_ENCRYPTED_SECRET
// contents.
type TPMCredentialChallenge struct {
	IDObject  []byte
	EncSecret []byte
}

// TPMCredentialResponse is the secret TPM2_ActivateCredential recovered.
type TPMCredentialResponse struct {
	Secret []byte
}

// MeasurementLog is a piece of a measurement log: Data starts at Offset of
// the log, which is Total bytes long as the collector read it.
type MeasurementLog struct {
	Kind   uint8
	Offset uint64
	Total  uint64
	Data   []byte
}
