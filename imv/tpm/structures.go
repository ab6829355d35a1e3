package tpmimv

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"

	"github.com/emmansun/gmsm/sm3"
)

// The TPM 2.0 structures the verifier reads, parsed at the byte level:
// go-tpm's unions cannot express the SM2 signature scheme or an SM2
// TPMT_SIGNATURE, and the quote path should not pay for reflection. All
// integers are big-endian (TPM 2.0 Part 1, canonical form).

// TPM_ALG_ID values (TPM 2.0 Part 2 §6.3; TCG Algorithm Registry).
const (
	algRSA       uint16 = 0x0001
	algSHA1      uint16 = 0x0004
	algSHA256    uint16 = 0x000B
	algSHA384    uint16 = 0x000C
	algSHA512    uint16 = 0x000D
	algNull      uint16 = 0x0010
	algSM3256    uint16 = 0x0012
	algRSASSA    uint16 = 0x0014
	algRSAPSS    uint16 = 0x0016
	algECDSA     uint16 = 0x0018
	algECDAA     uint16 = 0x001A
	algSM2       uint16 = 0x001B
	algECSchnorr uint16 = 0x001C
	algECC       uint16 = 0x0023
)

// TPM_ECC_CURVE values (Part 2 §6.4).
const (
	curveNISTP256 uint16 = 0x0003
	curveSM2P256  uint16 = 0x0020
)

// Structure tags and magic (Part 2 §6.2, §6.9).
const (
	tpmGeneratedValue uint32 = 0xff544347 // TPM_GENERATED_VALUE, "\xffTCG"
	tpmSTAttestQuote  uint16 = 0x8018     // TPM_ST_ATTEST_QUOTE
)

// TPMA_OBJECT bits (Part 2 §8.3).
const (
	attrFixedTPM    uint32 = 1 << 1
	attrFixedParent uint32 = 1 << 4
	attrRestricted  uint32 = 1 << 16
	attrDecrypt     uint32 = 1 << 17
	attrSign        uint32 = 1 << 18
)

// Caps on the structures, far above what a TPM produces.
const (
	maxPCRBanks     = 8  // TPMS_PCR_SELECTION entries in one TPML_PCR_SELECTION
	maxSizeofSelect = 4  // octets of a PCR bitmap (PCR_SELECT_MAX for 32 PCRs)
	maxPCRIndex     = 23 // highest PCR of a PC Client TPM
	maxECCParam     = 66 // TPM2B_ECC_PARAMETER: P-521 coordinates
	maxDigest       = 64 // TPMU_HA: SHA-512
	maxName         = 2 + maxDigest
	maxPolicy       = maxDigest
	maxAttestData   = 64 // TPM2B_DATA extraData
)

// ErrMalformed is wrapped by every error about a TPM structure that does
// not parse.
var ErrMalformed = errors.New("tpmimv: malformed TPM structure")

// ErrUnsupportedKey is wrapped by the errors about attestation keys the
// verifier cannot check: keys other than ECC NIST P-256 with ECDSA and
// ECC SM2 P-256 with SM2.
var ErrUnsupportedKey = errors.New("tpmimv: unsupported attestation key")

// reader reads canonical TPM structures with one sticky error.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s (offset %d)", ErrMalformed, fmt.Sprintf(format, args...), r.off)
	}
}

// next returns the next n bytes, aliasing the input, or nil after an error.
func (r *reader) next(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b)-r.off < n {
		r.fail("%s: need %d bytes, %d left", what, n, len(r.b)-r.off)
		return nil
	}
	v := r.b[r.off : r.off+n : r.off+n]
	r.off += n
	return v
}

func (r *reader) u8(what string) uint8 {
	if b := r.next(1, what); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) u16(what string) uint16 {
	if b := r.next(2, what); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (r *reader) u32(what string) uint32 {
	if b := r.next(4, what); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (r *reader) u64(what string) uint64 {
	if b := r.next(8, what); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

// tpm2b reads a TPM2B of at most max bytes (Part 2 §10.4).
func (r *reader) tpm2b(max int, what string) []byte {
	n := int(r.u16(what + " size"))
	if r.err != nil {
		return nil
	}
	if n > max {
		r.fail("%s of %d bytes exceeds %d", what, n, max)
		return nil
	}
	return r.next(n, what)
}

// end fails unless every byte was read.
func (r *reader) end(what string) error {
	if r.err == nil && r.off != len(r.b) {
		r.fail("%d bytes after %s", len(r.b)-r.off, what)
	}
	return r.err
}

func appendTPM2B(b, v []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
	return append(b, v...)
}

// ---- hashes ----

// digestSize is the digest size of a TPM hash algorithm, 0 if unknown.
func digestSize(alg uint16) int {
	switch alg {
	case algSHA1:
		return 20
	case algSHA256, algSM3256:
		return 32
	case algSHA384:
		return 48
	case algSHA512:
		return 64
	}
	return 0
}

// newHash returns a hash of a TPM hash algorithm, nil if unknown.
func newHash(alg uint16) hash.Hash {
	switch alg {
	case algSHA1:
		return sha1.New()
	case algSHA256:
		return sha256.New()
	case algSHA384:
		return sha512.New384()
	case algSHA512:
		return sha512.New()
	case algSM3256:
		return sm3.New()
	}
	return nil
}

// sum hashes data with a TPM hash algorithm into dst's spare capacity.
func sum(alg uint16, dst, data []byte) []byte {
	switch alg {
	case algSHA256:
		d := sha256.Sum256(data)
		return append(dst, d[:]...)
	case algSM3256:
		d := sm3.Sum(data)
		return append(dst, d[:]...)
	case algSHA384:
		d := sha512.Sum384(data)
		return append(dst, d[:]...)
	case algSHA1:
		d := sha1.Sum(data)
		return append(dst, d[:]...)
	case algSHA512:
		d := sha512.Sum512(data)
		return append(dst, d[:]...)
	}
	return nil
}

// BankName names a PCR bank hash algorithm as policy files and facts do:
// "sha1", "sha256", "sha384", "sha512", "sm3_256"; other values in hex.
func BankName(alg uint16) string {
	switch alg {
	case algSHA1:
		return "sha1"
	case algSHA256:
		return "sha256"
	case algSHA384:
		return "sha384"
	case algSHA512:
		return "sha512"
	case algSM3256:
		return "sm3_256"
	}
	return fmt.Sprintf("0x%04x", alg)
}

// BankAlg is the TPM_ALG_ID of a bank name BankName gives, and false for
// names it does not know.
func BankAlg(name string) (uint16, bool) {
	switch name {
	case "sha1":
		return algSHA1, true
	case "sha256":
		return algSHA256, true
	case "sha384":
		return algSHA384, true
	case "sha512":
		return algSHA512, true
	case "sm3_256", "sm3":
		return algSM3256, true
	}
	return 0, false
}

// ---- TPMT_PUBLIC (Part 2 §12.2.4), ECC keys only ----

// publicArea is an ECC TPMT_PUBLIC.
type publicArea struct {
	Type       uint16
	NameAlg    uint16
	Attributes uint32
	AuthPolicy []byte
	// TPMS_ECC_PARMS (Part 2 §12.2.3.6)
	SymAlg, SymKeyBits, SymMode uint16 // TPMT_SYM_DEF_OBJECT
	Scheme, SchemeHash          uint16 // TPMT_ECC_SCHEME
	SchemeCount                 uint16 // ECDAA only
	CurveID                     uint16
	KDF, KDFHash                uint16 // TPMT_KDF_SCHEME
	X, Y                        []byte // TPMS_ECC_POINT unique
}

// parsePublic parses an ECC TPMT_PUBLIC. The result aliases b.
func parsePublic(b []byte) (*publicArea, error) {
	r := &reader{b: b}
	p := &publicArea{
		Type:       r.u16("type"),
		NameAlg:    r.u16("nameAlg"),
		Attributes: r.u32("objectAttributes"),
		AuthPolicy: r.tpm2b(maxPolicy, "authPolicy"),
	}
	if r.err != nil {
		return nil, fmt.Errorf("tpmimv: public area: %w", r.err)
	}
	if p.Type != algECC {
		return nil, fmt.Errorf("%w: key type 0x%04x is not ECC", ErrUnsupportedKey, p.Type)
	}
	if p.SymAlg = r.u16("symmetric"); p.SymAlg != algNull {
		p.SymKeyBits = r.u16("symmetric keyBits")
		p.SymMode = r.u16("symmetric mode")
	}
	if p.Scheme = r.u16("scheme"); p.Scheme != algNull {
		p.SchemeHash = r.u16("scheme hashAlg")
		if p.Scheme == algECDAA {
			p.SchemeCount = r.u16("scheme count")
		}
	}
	p.CurveID = r.u16("curveID")
	if p.KDF = r.u16("kdf"); p.KDF != algNull {
		p.KDFHash = r.u16("kdf hashAlg")
	}
	p.X = r.tpm2b(maxECCParam, "unique x")
	p.Y = r.tpm2b(maxECCParam, "unique y")
	if err := r.end("public area"); err != nil {
		return nil, fmt.Errorf("tpmimv: public area: %w", err)
	}
	return p, nil
}

// appendPublic appends the TPMT_PUBLIC encoding of p.
func (p *publicArea) appendBinary(b []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, p.Type)
	b = binary.BigEndian.AppendUint16(b, p.NameAlg)
	b = binary.BigEndian.AppendUint32(b, p.Attributes)
	b = appendTPM2B(b, p.AuthPolicy)
	b = binary.BigEndian.AppendUint16(b, p.SymAlg)
	if p.SymAlg != algNull {
		b = binary.BigEndian.AppendUint16(b, p.SymKeyBits)
		b = binary.BigEndian.AppendUint16(b, p.SymMode)
	}
	b = binary.BigEndian.AppendUint16(b, p.Scheme)
	if p.Scheme != algNull {
		b = binary.BigEndian.AppendUint16(b, p.SchemeHash)
		if p.Scheme == algECDAA {
			b = binary.BigEndian.AppendUint16(b, p.SchemeCount)
		}
	}
	b = binary.BigEndian.AppendUint16(b, p.CurveID)
	b = binary.BigEndian.AppendUint16(b, p.KDF)
	if p.KDF != algNull {
		b = binary.BigEndian.AppendUint16(b, p.KDFHash)
	}
	b = appendTPM2B(b, p.X)
	return appendTPM2B(b, p.Y)
}

// unwrapPublic accepts a TPM2B_PUBLIC (tpm2_create -u, tpm2_readpublic -o)
// or a bare TPMT_PUBLIC and returns the TPMT_PUBLIC.
func unwrapPublic(b []byte) []byte {
	if len(b) >= 2 && int(binary.BigEndian.Uint16(b)) == len(b)-2 {
		// A TPMT_PUBLIC starts with its type (0x0001 RSA, 0x0023 ECC,
		// ...), which never equals the remaining length of a key's
		// public area, so the size prefix is unambiguous.
		return b[2:]
	}
	return b
}

// ---- TPMS_ATTEST (Part 2 §10.12.12) for TPM2_Quote ----

// pcrSelection is one TPMS_PCR_SELECTION (Part 2 §10.6.2): a bank and the
// PCR bitmap as it travels (bit n of octet n/8 selects PCR n).
type pcrSelection struct {
	Hash   uint16
	Select []byte
}

// has reports whether PCR i is selected.
func (s pcrSelection) has(i int) bool {
	return i/8 < len(s.Select) && s.Select[i/8]&(1<<(i%8)) != 0
}

// indexes lists the selected PCRs in ascending order.
func (s pcrSelection) indexes() []int {
	var out []int
	for i := 0; i < len(s.Select)*8; i++ {
		if s.has(i) {
			out = append(out, i)
		}
	}
	return out
}

// count is the number of selected PCRs.
func (s pcrSelection) count() int {
	n := 0
	for _, o := range s.Select {
		for ; o != 0; o &= o - 1 {
			n++
		}
	}
	return n
}

// attest is a TPMS_ATTEST of type TPM_ST_ATTEST_QUOTE.
type attest struct {
	Magic           uint32
	Type            uint16
	QualifiedSigner []byte
	ExtraData       []byte
	// TPMS_CLOCK_INFO (Part 2 §10.11.1)
	Clock        uint64
	ResetCount   uint32
	RestartCount uint32
	Safe         uint8
	// firmware version, then TPMS_QUOTE_INFO (Part 2 §10.12.4)
	FirmwareVersion uint64
	PCRSelect       []pcrSelection
	PCRDigest       []byte
}

// Errors of parseAttest that callers tell apart.
var (
	errNotGenerated = errors.New("tpmimv: attestation magic is not TPM_GENERATED_VALUE")
	errNotQuote     = errors.New("tpmimv: attestation is not a quote")
)

// parseAttest parses a TPMS_ATTEST of a quote. The result aliases b. An
// attestation whose magic is not TPM_GENERATED_VALUE, or whose type is not
// TPM_ST_ATTEST_QUOTE, is refused before the rest is read.
func parseAttest(b []byte) (*attest, error) {
	r := &reader{b: b}
	a := &attest{Magic: r.u32("magic"), Type: r.u16("type")}
	if r.err != nil {
		return nil, fmt.Errorf("tpmimv: attest: %w", r.err)
	}
	if a.Magic != tpmGeneratedValue {
		return nil, fmt.Errorf("%w (0x%08x)", errNotGenerated, a.Magic)
	}
	if a.Type != tpmSTAttestQuote {
		return nil, fmt.Errorf("%w (type 0x%04x)", errNotQuote, a.Type)
	}
	a.QualifiedSigner = r.tpm2b(maxName, "qualifiedSigner")
	a.ExtraData = r.tpm2b(maxAttestData, "extraData")
	a.Clock = r.u64("clock")
	a.ResetCount = r.u32("resetCount")
	a.RestartCount = r.u32("restartCount")
	if a.Safe = r.u8("safe"); a.Safe > 1 {
		r.fail("safe is %d, not a TPMI_YES_NO", a.Safe)
	}
	a.FirmwareVersion = r.u64("firmwareVersion")
	n := r.u32("pcrSelect count")
	if r.err == nil && n > maxPCRBanks {
		r.fail("%d PCR selections exceed %d", n, maxPCRBanks)
	}
	if r.err == nil && n > 0 {
		a.PCRSelect = make([]pcrSelection, 0, n)
	}
	for i := uint32(0); i < n && r.err == nil; i++ {
		s := pcrSelection{Hash: r.u16("pcrSelect hash")}
		size := int(r.u8("sizeofSelect"))
		if r.err == nil && size > maxSizeofSelect {
			r.fail("sizeofSelect %d exceeds %d", size, maxSizeofSelect)
		}
		s.Select = r.next(size, "pcrSelect")
		if r.err != nil {
			break
		}
		if digestSize(s.Hash) == 0 {
			r.fail("PCR bank 0x%04x is not a known hash", s.Hash)
		}
		for j := maxPCRIndex + 1; j < size*8; j++ {
			if s.has(j) {
				r.fail("PCR %d selected, beyond %d", j, maxPCRIndex)
				break
			}
		}
		for _, o := range a.PCRSelect {
			if o.Hash == s.Hash {
				r.fail("PCR bank %s selected twice", BankName(s.Hash))
			}
		}
		a.PCRSelect = append(a.PCRSelect, s)
	}
	a.PCRDigest = r.tpm2b(maxDigest, "pcrDigest")
	if err := r.end("attest"); err != nil {
		return nil, fmt.Errorf("tpmimv: attest: %w", err)
	}
	return a, nil
}

// appendBinary appends the TPMS_ATTEST encoding of a.
func (a *attest) appendBinary(b []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, a.Magic)
	b = binary.BigEndian.AppendUint16(b, a.Type)
	b = appendTPM2B(b, a.QualifiedSigner)
	b = appendTPM2B(b, a.ExtraData)
	b = binary.BigEndian.AppendUint64(b, a.Clock)
	b = binary.BigEndian.AppendUint32(b, a.ResetCount)
	b = binary.BigEndian.AppendUint32(b, a.RestartCount)
	b = append(b, a.Safe)
	b = binary.BigEndian.AppendUint64(b, a.FirmwareVersion)
	b = binary.BigEndian.AppendUint32(b, uint32(len(a.PCRSelect)))
	for _, s := range a.PCRSelect {
		b = binary.BigEndian.AppendUint16(b, s.Hash)
		b = append(b, byte(len(s.Select)))
		b = append(b, s.Select...)
	}
	return appendTPM2B(b, a.PCRDigest)
}

// ---- TPMT_SIGNATURE (Part 2 §11.3.4), ECC schemes only ----

// signature is a TPMT_SIGNATURE of an ECC scheme: TPMS_SIGNATURE_ECC
// (Part 2 §11.3.2), which ECDSA, SM2, ECDAA and EC-Schnorr share.
type signature struct {
	Alg  uint16
	Hash uint16
	R, S []byte
}

// parseSignature parses an ECC TPMT_SIGNATURE. The result aliases b.
func parseSignature(b []byte) (*signature, error) {
	r := &reader{b: b}
	s := &signature{Alg: r.u16("sigAlg")}
	if r.err != nil {
		return nil, fmt.Errorf("tpmimv: signature: %w", r.err)
	}
	switch s.Alg {
	case algECDSA, algSM2, algECDAA, algECSchnorr:
	case algNull:
		return nil, fmt.Errorf("tpmimv: signature: %w: the quote is not signed (TPM_ALG_NULL)", ErrMalformed)
	default:
		return nil, fmt.Errorf("tpmimv: signature: %w: scheme 0x%04x is not an ECC signature", ErrUnsupportedKey, s.Alg)
	}
	s.Hash = r.u16("hash")
	s.R = r.tpm2b(maxECCParam, "signatureR")
	s.S = r.tpm2b(maxECCParam, "signatureS")
	if err := r.end("signature"); err != nil {
		return nil, fmt.Errorf("tpmimv: signature: %w", err)
	}
	return s, nil
}

// appendBinary appends the TPMT_SIGNATURE encoding of s.
func (s *signature) appendBinary(b []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, s.Alg)
	b = binary.BigEndian.AppendUint16(b, s.Hash)
	b = appendTPM2B(b, s.R)
	return appendTPM2B(b, s.S)
}
