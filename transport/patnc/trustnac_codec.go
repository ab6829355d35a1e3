package patnc

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"
)

// The value layouts of trustnac's TPM evidence attributes (vendor
// VendorTrustnac, types AttrTPMQuoteRequest … AttrMeasurementLog). They are
// trustnac's own, drawn in README.md in the style of the RFC 5792 §4.2
// figures: big-endian, every value starts with a version octet (1), every
// variable field has a length or count before it, reserved bits are sent as
// zero and rejected when set. Every accepted value therefore re-encodes to
// exactly the bytes it came from.
//
// UnmarshalBinary errors are *ParseError (Invalid Parameter) whose Offset
// counts from the start of the value and whose cause wraps both ErrMalformed
// and ErrInvalidValue; AppendBinary errors wrap ErrInvalidValue. On error
// UnmarshalBinary leaves its receiver as it was.

// trustnacVersion is the version octet that starts every trustnac value.
const trustnacVersion = 1

// Bounds of the trustnac TPM evidence attributes. Values outside them are
// neither encoded nor decoded.
const (
	MinNonceLen      = 8       // TPMQuoteRequest.Nonce, shortest
	MaxNonceLen      = 64      // TPMQuoteRequest.Nonce, longest (TPM2B_DATA holds at most the largest digest)
	MaxPCRSelections = 8       // TPMQuoteRequest.Selections: banks per request
	MaxPCRIndex      = 23      // highest PCR index of a PC Client TPM
	MaxLogRequests   = 8       // TPMQuoteRequest.Logs
	MaxAttestLen     = 4096    // TPMQuote.Attest (TPMS_ATTEST)
	MaxSignatureLen  = 1024    // TPMQuote.Signature (TPMT_SIGNATURE)
	MaxPCRValues     = 24 * 8  // TPMQuote.PCRs: 24 PCRs in 8 banks
	MaxPublicLen     = 2048    // TPMKey.Public (TPMT_PUBLIC)
	MaxCertLen       = 8192    // TPMKey.Cert (DER)
	MaxIDObjectLen   = 1024    // TPMCredentialChallenge.IDObject
	MaxEncSecretLen  = 1024    // TPMCredentialChallenge.EncSecret
	MaxSecretLen     = 128     // TPMCredentialResponse.Secret
	MaxLogPieceLen   = 1 << 20 // MeasurementLog.Data
	MaxLogTotal      = 1 << 30 // MeasurementLog.Total
)

// TPM_ALG_IDs of the PCR banks trustnac knows (TPM 2.0 Part 2 §6.3).
const (
	tpmAlgSHA1   = 0x0004
	tpmAlgSHA256 = 0x000B
	tpmAlgSHA384 = 0x000C
	tpmAlgSM3256 = 0x0012
)

// TPMDigestSize returns the digest size in bytes of the PCR bank hash
// algorithm alg, a TPM_ALG_ID (TPM 2.0 Part 2 §6.3): 20 for SHA-1 (0x0004),
// 32 for SHA-256 (0x000B) and SM3-256 (0x0012), 48 for SHA-384 (0x000C),
// and 0 for every other algorithm, which trustnac's attributes reject.
func TPMDigestSize(alg uint16) int {
	switch alg {
	case tpmAlgSHA1:
		return 20
	case tpmAlgSHA256, tpmAlgSM3256:
		return 32
	case tpmAlgSHA384:
		return 48
	}
	return 0
}

// bankIndex numbers the known banks 0–3 for duplicate checks; -1 for others.
func bankIndex(alg uint16) int {
	switch alg {
	case tpmAlgSHA1:
		return 0
	case tpmAlgSHA256:
		return 1
	case tpmAlgSHA384:
		return 2
	case tpmAlgSM3256:
		return 3
	}
	return -1
}

func trustnac(t uint32) AttrID { return AttrID{Vendor: VendorTrustnac, Type: t} }

// newTrustnacValue returns a new zero value of trustnac type t, or nil.
func newTrustnacValue(t uint32) Value {
	switch t {
	case AttrTPMQuoteRequest:
		return new(TPMQuoteRequest)
	case AttrTPMQuote:
		return new(TPMQuote)
	case AttrTPMAK, AttrTPMEK:
		return &TPMKey{kind: t}
	case AttrTPMCredentialChallenge:
		return new(TPMCredentialChallenge)
	case AttrTPMCredentialResponse:
		return new(TPMCredentialResponse)
	case AttrMeasurementLog:
		return new(MeasurementLog)
	case AttrPSKRequest:
		return new(PSKRequest)
	case AttrPSKGrant:
		return new(PSKGrant)
	case AttrSM2PublicKey:
		return new(SM2PublicKey)
	}
	return nil
}

// valueError is the cause of a trustnac decoding error: bytes that break
// the layout or a bound. It is both ErrMalformed and ErrInvalidValue.
type valueError struct{ msg string }

func (e *valueError) Error() string   { return ErrMalformed.Error() + ": " + e.msg }
func (e *valueError) Unwrap() []error { return []error{ErrMalformed, ErrInvalidValue} }

// badValue builds the Invalid Parameter *ParseError of a trustnac value.
func badValue(off int, format string, args ...any) *ParseError {
	return &ParseError{
		Code:   ErrInvalidParameter,
		Offset: clampOffset(off),
		Err:    &valueError{msg: fmt.Sprintf(format, args...)},
	}
}

// checkHeader checks the version octet and that b holds the fixed part.
func checkHeader(b []byte, fixed int, what string) error {
	if len(b) < fixed {
		return badValue(len(b), "%s of %d bytes is shorter than %d", what, len(b), fixed)
	}
	if b[0] != trustnacVersion {
		return badValue(0, "%s version %d, want %d", what, b[0], trustnacVersion)
	}
	return nil
}

// checkZero rejects set reserved bits in b[off:off+n].
func checkZero(b []byte, off, n int, what string) error {
	for i := off; i < off+n; i++ {
		if b[i] != 0 {
			return badValue(i, "%s: reserved octet is %#02x, want 0", what, b[i])
		}
	}
	return nil
}

// checkEnd checks that a value of want bytes is exactly b.
func checkEnd(b []byte, want int, what string) error {
	switch {
	case len(b) < want:
		return badValue(len(b), "%s needs %d bytes, has %d", what, want, len(b))
	case len(b) > want:
		return badValue(want, "%d trailing bytes after %s", len(b)-want, what)
	}
	return nil
}

// arena copies decoded fields out of the input into one allocation. Each
// field is capped at its length, so appending to one never overwrites the
// next.
type arena []byte

func newArena(n int) arena { return make(arena, 0, n) }

func (a *arena) copy(s []byte) []byte {
	if len(s) == 0 {
		return nil
	}
	n := len(*a)
	*a = append(*a, s...)
	return (*a)[n:len(*a):len(*a)]
}

// ---- PCR selections and log requests ----

// pcrBitmap returns the PCRs as a bitmap (bit n is PCR n), checking range
// and duplicates.
func pcrBitmap(pcrs []uint8) (uint32, error) {
	var m uint32
	for _, p := range pcrs {
		if p > MaxPCRIndex {
			return 0, invalid("PCR index %d exceeds %d", p, MaxPCRIndex)
		}
		if m&(1<<p) != 0 {
			return 0, invalid("PCR %d selected twice", p)
		}
		m |= 1 << p
	}
	return m, nil
}

// pcrList returns the PCRs of a bitmap in ascending order; nil for none.
func pcrList(m uint32) []uint8 {
	if m == 0 {
		return nil
	}
	out := make([]uint8, 0, bits.OnesCount32(m))
	for m != 0 {
		p := bits.TrailingZeros32(m)
		out = append(out, uint8(p))
		m &^= 1 << p
	}
	return out
}

func checkLogKind(k uint8) bool { return k == LogBoot || k == LogIMA }

// ---- TPM Quote Request (trustnac type 1) ----

const (
	quoteRequestFixedLen = 4  // version 8, nonce length 8, selection count 8, log count 8
	selectionLen         = 8  // hash 16, reserved 16, PCR bitmap 32 (bits 24–31 reserved)
	logRequestLen        = 12 // kind 8, reserved 24, offset 64
)

// AttrID returns trustnac type AttrTPMQuoteRequest.
func (TPMQuoteRequest) AttrID() AttrID { return trustnac(AttrTPMQuoteRequest) }

// check validates the bounds of a quote request for encoding.
func (r TPMQuoteRequest) check() error {
	if n := len(r.Nonce); n < MinNonceLen || n > MaxNonceLen {
		return invalid("quote request nonce of %d bytes, want %d–%d", n, MinNonceLen, MaxNonceLen)
	}
	if len(r.Selections) > MaxPCRSelections {
		return invalid("%d PCR selections exceed %d", len(r.Selections), MaxPCRSelections)
	}
	var banks [4]bool
	for i, s := range r.Selections {
		bi := bankIndex(s.Hash)
		if bi < 0 {
			return invalid("PCR selection %d: hash algorithm %#04x is not a known bank", i, s.Hash)
		}
		if banks[bi] {
			return invalid("PCR selection %d: bank %#04x selected twice", i, s.Hash)
		}
		banks[bi] = true
		if _, err := pcrBitmap(s.PCRs); err != nil {
			return err
		}
	}
	if len(r.Logs) > MaxLogRequests {
		return invalid("%d log requests exceed %d", len(r.Logs), MaxLogRequests)
	}
	var kinds [3]bool
	for _, l := range r.Logs {
		if !checkLogKind(l.Kind) {
			return invalid("log request kind %d is not defined (1–2)", l.Kind)
		}
		if kinds[l.Kind] {
			return invalid("log kind %d requested twice", l.Kind)
		}
		kinds[l.Kind] = true
	}
	return nil
}

// AppendBinary appends the quote request: version 1, the nonce length, the
// selection count and the log request count (8 bits each), the nonce, each
// selection (TPM_ALG_ID 16, reserved 16, PCR bitmap 32 with bit n for PCR
// n) and each log request (kind 8, reserved 24, offset 64). See README.md.
func (r TPMQuoteRequest) AppendBinary(b []byte) ([]byte, error) {
	if err := r.check(); err != nil {
		return b, err
	}
	b = append(b, trustnacVersion, byte(len(r.Nonce)), byte(len(r.Selections)), byte(len(r.Logs)))
	b = append(b, r.Nonce...)
	for _, s := range r.Selections {
		m, _ := pcrBitmap(s.PCRs)
		b = binary.BigEndian.AppendUint16(b, s.Hash)
		b = append(b, 0, 0)
		b = binary.BigEndian.AppendUint32(b, m)
	}
	for _, l := range r.Logs {
		b = append(b, l.Kind, 0, 0, 0)
		b = binary.BigEndian.AppendUint64(b, l.Offset)
	}
	return b, nil
}

// UnmarshalBinary decodes a quote request. The PCRs of each selection come
// out in ascending order; a selection of no PCRs has nil PCRs.
func (r *TPMQuoteRequest) UnmarshalBinary(b []byte) error {
	const what = "quote request"
	if err := checkHeader(b, quoteRequestFixedLen, what); err != nil {
		return err
	}
	nn, ns, nl := int(b[1]), int(b[2]), int(b[3])
	if nn < MinNonceLen || nn > MaxNonceLen {
		return badValue(1, "%s nonce length %d, want %d–%d", what, nn, MinNonceLen, MaxNonceLen)
	}
	if ns > MaxPCRSelections {
		return badValue(2, "%d PCR selections exceed %d", ns, MaxPCRSelections)
	}
	if nl > MaxLogRequests {
		return badValue(3, "%d log requests exceed %d", nl, MaxLogRequests)
	}
	if err := checkEnd(b, quoteRequestFixedLen+nn+ns*selectionLen+nl*logRequestLen, what); err != nil {
		return err
	}
	out := TPMQuoteRequest{Nonce: append([]byte(nil), b[4:4+nn]...)}
	off := 4 + nn
	var banks [4]bool
	if ns > 0 {
		out.Selections = make([]PCRSelection, 0, ns)
	}
	for range ns {
		hash := binary.BigEndian.Uint16(b[off:])
		bi := bankIndex(hash)
		if bi < 0 {
			return badValue(off, "PCR selection: hash algorithm %#04x is not a known bank", hash)
		}
		if banks[bi] {
			return badValue(off, "PCR selection: bank %#04x selected twice", hash)
		}
		banks[bi] = true
		if err := checkZero(b, off+2, 2, "PCR selection"); err != nil {
			return err
		}
		m := binary.BigEndian.Uint32(b[off+4:])
		if m>>(MaxPCRIndex+1) != 0 {
			return badValue(off+4, "PCR selection bitmap %#08x names PCRs above %d", m, MaxPCRIndex)
		}
		out.Selections = append(out.Selections, PCRSelection{Hash: hash, PCRs: pcrList(m)})
		off += selectionLen
	}
	var kinds [3]bool
	if nl > 0 {
		out.Logs = make([]LogRequest, 0, nl)
	}
	for range nl {
		k := b[off]
		if !checkLogKind(k) {
			return badValue(off, "log request kind %d is not defined (1–2)", k)
		}
		if kinds[k] {
			return badValue(off, "log kind %d requested twice", k)
		}
		kinds[k] = true
		if err := checkZero(b, off+1, 3, "log request"); err != nil {
			return err
		}
		out.Logs = append(out.Logs, LogRequest{Kind: k, Offset: binary.BigEndian.Uint64(b[off+4:])})
		off += logRequestLen
	}
	*r = out
	return nil
}

// ---- TPM Quote (trustnac type 2) ----

const (
	quoteFixedLen    = 8 // version 8, reserved 8, PCR count 16, attest length 16, signature length 16
	pcrValueFixedLen = 4 // hash 16, index 8, digest length 8
)

// AttrID returns trustnac type AttrTPMQuote.
func (TPMQuote) AttrID() AttrID { return trustnac(AttrTPMQuote) }

// checkPCRValue checks one PCR value against seen, a bitmap per bank.
func checkPCRValue(v PCRValue, seen *[4]uint32) error {
	bi := bankIndex(v.Hash)
	if bi < 0 {
		return invalid("PCR value: hash algorithm %#04x is not a known bank", v.Hash)
	}
	if v.Index > MaxPCRIndex {
		return invalid("PCR value: index %d exceeds %d", v.Index, MaxPCRIndex)
	}
	if seen[bi]&(1<<v.Index) != 0 {
		return invalid("PCR value %#04x:%d given twice", v.Hash, v.Index)
	}
	seen[bi] |= 1 << v.Index
	if want := TPMDigestSize(v.Hash); len(v.Digest) != want {
		return invalid("PCR value %#04x:%d: digest of %d bytes, want %d", v.Hash, v.Index, len(v.Digest), want)
	}
	return nil
}

// AppendBinary appends the quote: version 1, reserved 8, the PCR value
// count 16, the attest and signature lengths (16 bits each), the
// TPMS_ATTEST, the TPMT_SIGNATURE and each PCR value (TPM_ALG_ID 16, index
// 8, digest length 8, digest). See README.md.
func (q TPMQuote) AppendBinary(b []byte) ([]byte, error) {
	if n := len(q.Attest); n < 1 || n > MaxAttestLen {
		return b, invalid("quote attest of %d bytes, want 1–%d", n, MaxAttestLen)
	}
	if n := len(q.Signature); n < 1 || n > MaxSignatureLen {
		return b, invalid("quote signature of %d bytes, want 1–%d", n, MaxSignatureLen)
	}
	if len(q.PCRs) > MaxPCRValues {
		return b, invalid("%d PCR values exceed %d", len(q.PCRs), MaxPCRValues)
	}
	var seen [4]uint32
	n := quoteFixedLen + len(q.Attest) + len(q.Signature)
	for _, v := range q.PCRs {
		if err := checkPCRValue(v, &seen); err != nil {
			return b, err
		}
		n += pcrValueFixedLen + len(v.Digest)
	}
	b = slices.Grow(b, n)
	b = append(b, trustnacVersion, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(q.PCRs)))
	b = binary.BigEndian.AppendUint16(b, uint16(len(q.Attest)))
	b = binary.BigEndian.AppendUint16(b, uint16(len(q.Signature)))
	b = append(b, q.Attest...)
	b = append(b, q.Signature...)
	for _, v := range q.PCRs {
		b = binary.BigEndian.AppendUint16(b, v.Hash)
		b = append(b, v.Index, byte(len(v.Digest)))
		b = append(b, v.Digest...)
	}
	return b, nil
}

// UnmarshalBinary decodes a quote. PCR values keep their order; each digest
// must have its bank's size and no bank and index may appear twice.
func (q *TPMQuote) UnmarshalBinary(b []byte) error {
	const what = "quote"
	if err := checkHeader(b, quoteFixedLen, what); err != nil {
		return err
	}
	if err := checkZero(b, 1, 1, what); err != nil {
		return err
	}
	count := int(binary.BigEndian.Uint16(b[2:]))
	al := int(binary.BigEndian.Uint16(b[4:]))
	sl := int(binary.BigEndian.Uint16(b[6:]))
	if count > MaxPCRValues {
		return badValue(2, "%d PCR values exceed %d", count, MaxPCRValues)
	}
	if al < 1 || al > MaxAttestLen {
		return badValue(4, "quote attest length %d, want 1–%d", al, MaxAttestLen)
	}
	if sl < 1 || sl > MaxSignatureLen {
		return badValue(6, "quote signature length %d, want 1–%d", sl, MaxSignatureLen)
	}
	off := quoteFixedLen + al + sl
	if off > len(b) {
		return badValue(len(b), "quote attest and signature need %d bytes, have %d", al+sl, len(b)-quoteFixedLen)
	}
	// Every PCR value takes at least its 4-byte header plus a 20-byte
	// digest: reject a count the bytes cannot hold before allocating.
	if count*(pcrValueFixedLen+20) > len(b)-off {
		return badValue(2, "%d PCR values do not fit in %d bytes", count, len(b)-off)
	}
	var pcrs []PCRValue
	if count > 0 {
		pcrs = make([]PCRValue, 0, count)
	}
	var seen [4]uint32
	for range count {
		if len(b)-off < pcrValueFixedLen {
			return badValue(len(b), "PCR value header needs %d bytes, has %d", pcrValueFixedLen, len(b)-off)
		}
		v := PCRValue{Hash: binary.BigEndian.Uint16(b[off:]), Index: b[off+2]}
		bi := bankIndex(v.Hash)
		if bi < 0 {
			return badValue(off, "PCR value: hash algorithm %#04x is not a known bank", v.Hash)
		}
		if v.Index > MaxPCRIndex {
			return badValue(off+2, "PCR value: index %d exceeds %d", v.Index, MaxPCRIndex)
		}
		if seen[bi]&(1<<v.Index) != 0 {
			return badValue(off, "PCR value %#04x:%d given twice", v.Hash, v.Index)
		}
		seen[bi] |= 1 << v.Index
		dl := int(b[off+3])
		if want := TPMDigestSize(v.Hash); dl != want {
			return badValue(off+3, "PCR value %#04x:%d: digest length %d, want %d", v.Hash, v.Index, dl, want)
		}
		off += pcrValueFixedLen
		if dl > len(b)-off {
			return badValue(len(b), "PCR value digest needs %d bytes, has %d", dl, len(b)-off)
		}
		v.Digest = b[off : off+dl] // copied below
		off += dl
		pcrs = append(pcrs, v)
	}
	if off != len(b) {
		return badValue(off, "%d trailing bytes after quote", len(b)-off)
	}
	a := newArena(len(b) - quoteFixedLen)
	out := TPMQuote{
		Attest:    a.copy(b[quoteFixedLen : quoteFixedLen+al]),
		Signature: a.copy(b[quoteFixedLen+al : quoteFixedLen+al+sl]),
		PCRs:      pcrs,
	}
	for i := range pcrs {
		pcrs[i].Digest = a.copy(pcrs[i].Digest)
	}
	*q = out
	return nil
}

// ---- TPM AK and TPM EK (trustnac types 3 and 4) ----

const keyFixedLen = 8 // version 8, reserved 8, public length 16, cert length 16, reserved 16

// AttrID returns trustnac type AttrTPMAK or AttrTPMEK as the key was made
// (NewTPMAK, NewTPMEK) or decoded (DecodeAttribute, NewValue). A TPMKey
// made otherwise has type 0 and does not encode.
func (k TPMKey) AttrID() AttrID { return trustnac(k.kind) }

// AppendBinary appends the key: version 1, reserved 8, the public area
// length 16, the certificate length 16, reserved 16, the TPMT_PUBLIC and
// the DER certificate (length 0 when there is none). See README.md.
func (k TPMKey) AppendBinary(b []byte) ([]byte, error) {
	if k.kind != AttrTPMAK && k.kind != AttrTPMEK {
		return b, invalid("TPM key of unknown kind %d: make it with NewTPMAK or NewTPMEK", k.kind)
	}
	if n := len(k.Public); n < 1 || n > MaxPublicLen {
		return b, invalid("TPM key public area of %d bytes, want 1–%d", n, MaxPublicLen)
	}
	if len(k.Cert) > MaxCertLen {
		return b, invalid("TPM key certificate of %d bytes exceeds %d", len(k.Cert), MaxCertLen)
	}
	b = slices.Grow(b, keyFixedLen+len(k.Public)+len(k.Cert))
	b = append(b, trustnacVersion, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(k.Public)))
	b = binary.BigEndian.AppendUint16(b, uint16(len(k.Cert)))
	b = append(b, 0, 0)
	b = append(b, k.Public...)
	return append(b, k.Cert...), nil
}

// UnmarshalBinary decodes a key, keeping the receiver's kind (AK or EK);
// DecodeAttribute sets it from the attribute type. An absent certificate
// decodes to nil.
func (k *TPMKey) UnmarshalBinary(b []byte) error {
	const what = "TPM key"
	if err := checkHeader(b, keyFixedLen, what); err != nil {
		return err
	}
	if err := checkZero(b, 1, 1, what); err != nil {
		return err
	}
	if err := checkZero(b, 6, 2, what); err != nil {
		return err
	}
	pl := int(binary.BigEndian.Uint16(b[2:]))
	cl := int(binary.BigEndian.Uint16(b[4:]))
	if pl < 1 || pl > MaxPublicLen {
		return badValue(2, "TPM key public area length %d, want 1–%d", pl, MaxPublicLen)
	}
	if cl > MaxCertLen {
		return badValue(4, "TPM key certificate length %d exceeds %d", cl, MaxCertLen)
	}
	if err := checkEnd(b, keyFixedLen+pl+cl, what); err != nil {
		return err
	}
	a := newArena(pl + cl)
	*k = TPMKey{
		kind:   k.kind,
		Public: a.copy(b[keyFixedLen : keyFixedLen+pl]),
		Cert:   a.copy(b[keyFixedLen+pl:]),
	}
	return nil
}

// ---- TPM Credential Challenge (trustnac type 5) ----

const challengeFixedLen = 8 // version 8, reserved 8, ID object length 16, secret length 16, reserved 16

// AttrID returns trustnac type AttrTPMCredentialChallenge.
func (TPMCredentialChallenge) AttrID() AttrID { return trustnac(AttrTPMCredentialChallenge) }

// AppendBinary appends the challenge: version 1, reserved 8, the ID object
// length 16, the encrypted secret length 16, reserved 16, the
// TPM2B_ID_OBJECT and TPM2B_ENCRYPTED_SECRET contents. See README.md.
func (c TPMCredentialChallenge) AppendBinary(b []byte) ([]byte, error) {
	if n := len(c.IDObject); n < 1 || n > MaxIDObjectLen {
		return b, invalid("credential ID object of %d bytes, want 1–%d", n, MaxIDObjectLen)
	}
	if n := len(c.EncSecret); n < 1 || n > MaxEncSecretLen {
		return b, invalid("credential encrypted secret of %d bytes, want 1–%d", n, MaxEncSecretLen)
	}
	b = slices.Grow(b, challengeFixedLen+len(c.IDObject)+len(c.EncSecret))
	b = append(b, trustnacVersion, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(c.IDObject)))
	b = binary.BigEndian.AppendUint16(b, uint16(len(c.EncSecret)))
	b = append(b, 0, 0)
	b = append(b, c.IDObject...)
	return append(b, c.EncSecret...), nil
}

// UnmarshalBinary decodes a credential challenge.
func (c *TPMCredentialChallenge) UnmarshalBinary(b []byte) error {
	const what = "credential challenge"
	if err := checkHeader(b, challengeFixedLen, what); err != nil {
		return err
	}
	if err := checkZero(b, 1, 1, what); err != nil {
		return err
	}
	if err := checkZero(b, 6, 2, what); err != nil {
		return err
	}
	il := int(binary.BigEndian.Uint16(b[2:]))
	sl := int(binary.BigEndian.Uint16(b[4:]))
	if il < 1 || il > MaxIDObjectLen {
		return badValue(2, "credential ID object length %d, want 1–%d", il, MaxIDObjectLen)
	}
	if sl < 1 || sl > MaxEncSecretLen {
		return badValue(4, "credential encrypted secret length %d, want 1–%d", sl, MaxEncSecretLen)
	}
	if err := checkEnd(b, challengeFixedLen+il+sl, what); err != nil {
		return err
	}
	a := newArena(il + sl)
	*c = TPMCredentialChallenge{
		IDObject:  a.copy(b[challengeFixedLen : challengeFixedLen+il]),
		EncSecret: a.copy(b[challengeFixedLen+il:]),
	}
	return nil
}

// ---- TPM Credential Response (trustnac type 6) ----

const responseFixedLen = 4 // version 8, reserved 8, secret length 16

// AttrID returns trustnac type AttrTPMCredentialResponse.
func (TPMCredentialResponse) AttrID() AttrID { return trustnac(AttrTPMCredentialResponse) }

// AppendBinary appends the response: version 1, reserved 8, the secret
// length 16 and the secret (1–128 bytes). See README.md.
func (r TPMCredentialResponse) AppendBinary(b []byte) ([]byte, error) {
	if n := len(r.Secret); n < 1 || n > MaxSecretLen {
		return b, invalid("credential secret of %d bytes, want 1–%d", n, MaxSecretLen)
	}
	b = append(b, trustnacVersion, 0, 0, byte(len(r.Secret)))
	return append(b, r.Secret...), nil
}

// UnmarshalBinary decodes a credential response.
func (r *TPMCredentialResponse) UnmarshalBinary(b []byte) error {
	const what = "credential response"
	if err := checkHeader(b, responseFixedLen, what); err != nil {
		return err
	}
	if err := checkZero(b, 1, 1, what); err != nil {
		return err
	}
	n := int(binary.BigEndian.Uint16(b[2:]))
	if n < 1 || n > MaxSecretLen {
		return badValue(2, "credential secret length %d, want 1–%d", n, MaxSecretLen)
	}
	if err := checkEnd(b, responseFixedLen+n, what); err != nil {
		return err
	}
	*r = TPMCredentialResponse{Secret: append([]byte(nil), b[responseFixedLen:]...)}
	return nil
}

// ---- Measurement Log (trustnac type 7) ----

const logFixedLen = 20 // version 8, kind 8, reserved 16, offset 64, total 64

// AttrID returns trustnac type AttrMeasurementLog.
func (MeasurementLog) AttrID() AttrID { return trustnac(AttrMeasurementLog) }

// checkPiece checks a log piece's bounds, telling which field breaks them:
// 0 none, 1 kind, 2 data, 3 total, 4 offset.
func checkPiece(kind uint8, offset, total uint64, n int) (int, string) {
	switch {
	case !checkLogKind(kind):
		return 1, fmt.Sprintf("measurement log kind %d is not defined (1–2)", kind)
	case n > MaxLogPieceLen:
		return 2, fmt.Sprintf("measurement log piece of %d bytes exceeds %d", n, MaxLogPieceLen)
	case total > MaxLogTotal:
		return 3, fmt.Sprintf("measurement log total %d exceeds %d", total, uint64(MaxLogTotal))
	case offset > total || uint64(n) > total-offset:
		return 4, fmt.Sprintf("measurement log piece [%d, %d+%d) runs past the total %d", offset, offset, n, total)
	}
	return 0, ""
}

// AppendBinary appends the log piece: version 1, the kind 8, reserved 16,
// the offset 64, the total 64 and the data, which fills the rest of the
// value. See README.md.
func (l MeasurementLog) AppendBinary(b []byte) ([]byte, error) {
	if f, msg := checkPiece(l.Kind, l.Offset, l.Total, len(l.Data)); f != 0 {
		return b, invalid("%s", msg)
	}
	b = slices.Grow(b, logFixedLen+len(l.Data))
	b = append(b, trustnacVersion, l.Kind, 0, 0)
	b = binary.BigEndian.AppendUint64(b, l.Offset)
	b = binary.BigEndian.AppendUint64(b, l.Total)
	return append(b, l.Data...), nil
}

// UnmarshalBinary decodes a log piece; empty data decodes to nil.
func (l *MeasurementLog) UnmarshalBinary(b []byte) error {
	const what = "measurement log"
	if err := checkHeader(b, logFixedLen, what); err != nil {
		return err
	}
	if err := checkZero(b, 2, 2, what); err != nil {
		return err
	}
	out := MeasurementLog{
		Kind:   b[1],
		Offset: binary.BigEndian.Uint64(b[4:]),
		Total:  binary.BigEndian.Uint64(b[12:]),
	}
	data := b[logFixedLen:]
	if f, msg := checkPiece(out.Kind, out.Offset, out.Total, len(data)); f != 0 {
		off := [...]int{0, 1, logFixedLen, 12, 4}[f]
		return badValue(off, "%s", msg)
	}
	if len(data) > 0 {
		out.Data = append([]byte(nil), data...)
	}
	*l = out
	return nil
}
