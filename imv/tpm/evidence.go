package tpmimv

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Evidence is a quote as tpm2-tools writes it, for `nac attest verify`.
type Evidence struct {
	// AKPublic is the attestation key's TPM2B_PUBLIC (tpm2_create -u,
	// tpm2_readpublic -o); a bare TPMT_PUBLIC is accepted too.
	AKPublic []byte
	// Attest is the quoted TPMS_ATTEST (tpm2_quote -m).
	Attest []byte
	// Signature is the TPMT_SIGNATURE (tpm2_quote -s, default format).
	Signature []byte
	// Nonce is the qualifying data the quote must carry (tpm2_quote -q).
	Nonce []byte
	// PCRs are the quoted PCR values (tpm2_quote -o), optional: the
	// serialized form (tpm2-tools' default), -F values, or the marshaled
	// form of later tpm2-tools.
	PCRs []byte
}

// Verdict is the outcome of VerifyEvidence.
type Verdict struct {
	// OK is true when every check passed; Reasons say why not.
	OK      bool
	Reasons []string
	// AKAlg is AKAlgECDSAP256 or AKAlgSM2; AKName is "sha256:<hex>", the
	// digest part of the AK's name.
	AKAlg  string
	AKName string
	// PCRs are the PCR values, bank (TPM_ALG_ID) → index → digest, set
	// only when they match the quoted digest.
	PCRs map[uint16]map[int][]byte
	// The quote's TPMS_CLOCK_INFO (Part 2 §10.11.1). For an AK outside
	// the endorsement and platform hierarchies the TPM obfuscates the
	// reset and restart counts (TPM 2.0 Part 3, attestation commands:
	// the count plus a constant of the key), see README.md.
	Clock                    uint64
	ResetCount, RestartCount uint32
	// ReferenceMatch names the reference set the PCRs match, "" if none.
	ReferenceMatch string
}

// MarshalJSON writes the verdict with bank names and hex digests.
func (v *Verdict) MarshalJSON() ([]byte, error) {
	type out struct {
		OK             bool                         `json:"ok"`
		Reasons        []string                     `json:"reasons"`
		AKAlg          string                       `json:"ak_alg"`
		AKName         string                       `json:"ak"`
		PCRs           map[string]map[string]string `json:"pcrs,omitempty"`
		Clock          uint64                       `json:"clock"`
		ResetCount     uint32                       `json:"reset_count"`
		RestartCount   uint32                       `json:"restart_count"`
		ReferenceMatch string                       `json:"reference"`
	}
	o := out{OK: v.OK, Reasons: v.Reasons, AKAlg: v.AKAlg, AKName: v.AKName, Clock: v.Clock,
		ResetCount: v.ResetCount, RestartCount: v.RestartCount, ReferenceMatch: v.ReferenceMatch}
	if o.Reasons == nil {
		o.Reasons = []string{}
	}
	if v.PCRs != nil {
		o.PCRs = make(map[string]map[string]string, len(v.PCRs))
		for bank, vals := range v.PCRs {
			m := make(map[string]string, len(vals))
			for i, d := range vals {
				m[strconv.Itoa(i)] = hex.EncodeToString(d)
			}
			o.PCRs[BankName(bank)] = m
		}
	}
	return json.Marshal(o)
}

// Errors of VerifyEvidence for input it cannot use.
var (
	// ErrNoNonce: Evidence.Nonce is empty; a quote is only evidence of
	// the present when it carries the verifier's fresh nonce.
	ErrNoNonce = errors.New("tpmimv: a nonce is required to verify a quote")
	// ErrEvidence: a part of the evidence is missing or too large.
	ErrEvidence = errors.New("tpmimv: unusable evidence")
)

// Caps on the evidence of VerifyEvidence.
const (
	maxPublic    = 2048 + 2
	maxAttest    = 4096
	maxSignature = 1024
	maxPCRFile   = serializedHeaderLen + maxSerializedDigestLists*serializedDigestListLen
)

// VerifyEvidence checks a tpm2-tools quote: the signature with the AK
// (ECDSA P-256, or SM2 verified raw over the scheme hash of the
// TPMS_ATTEST), the magic and type, the nonce, whether the AK is a
// restricted signing key fixed to its TPM, the PCR values against the
// quoted digest when given, and the PCR values against refs when there are
// any. An error means the input cannot be used (a missing part, a part that
// does not parse); a Verdict with OK false means the quote does not
// verify, with the reasons.
func VerifyEvidence(ev Evidence, refs []ReferenceSet) (*Verdict, error) {
	switch {
	case len(ev.AKPublic) == 0 || len(ev.Attest) == 0 || len(ev.Signature) == 0:
		return nil, fmt.Errorf("%w: the AK public area, the attestation and the signature are required", ErrEvidence)
	case len(ev.Nonce) == 0:
		return nil, ErrNoNonce
	case len(ev.AKPublic) > maxPublic, len(ev.Attest) > maxAttest, len(ev.Signature) > maxSignature, len(ev.PCRs) > maxPCRFile:
		return nil, fmt.Errorf("%w: larger than any TPM writes", ErrEvidence)
	}
	k, err := parseAK(unwrapPublic(ev.AKPublic))
	if err != nil {
		return nil, err
	}
	v := &Verdict{AKAlg: k.alg, AKName: k.id}
	sig, err := parseSignature(ev.Signature)
	if err != nil {
		return nil, err
	}
	if !k.restricted {
		v.Reasons = append(v.Reasons, "the attestation key is not a restricted signing key fixed to its TPM, so its signature does not prove that a TPM made the quote")
	}
	if err := k.verify(ev.Attest, sig); err != nil {
		if errors.Is(err, errScheme) {
			v.Reasons = append(v.Reasons, "the signature's scheme is not the attestation key's")
		} else {
			v.Reasons = append(v.Reasons, "the signature does not verify with the attestation key")
		}
		return v, nil
	}
	a, err := parseAttest(ev.Attest)
	switch {
	case errors.Is(err, errNotGenerated):
		v.Reasons = append(v.Reasons, "the attestation was not generated by a TPM (magic is not TPM_GENERATED_VALUE)")
		return v, nil
	case errors.Is(err, errNotQuote):
		v.Reasons = append(v.Reasons, "the attestation is not a quote")
		return v, nil
	case err != nil:
		return nil, err
	}
	v.Clock, v.ResetCount, v.RestartCount = a.Clock, a.ResetCount, a.RestartCount
	if !constantTimeEqual(a.ExtraData, ev.Nonce) {
		v.Reasons = append(v.Reasons, "the quote does not carry the given nonce")
	}
	if ev.PCRs != nil {
		get, err := parsePCRFile(ev.PCRs, a)
		if err != nil {
			return nil, err
		}
		pcrs, err := checkPCRDigest(a, sig.Hash, get, nil)
		if err != nil {
			v.Reasons = append(v.Reasons, "the PCR values do not match the quoted PCR digest")
		} else {
			v.PCRs = pcrs.banks()
			for _, vals := range v.PCRs {
				for i, d := range vals {
					vals[i] = bytes.Clone(d)
				}
			}
		}
	}
	if len(refs) > 0 {
		switch {
		case ev.PCRs == nil:
			v.Reasons = append(v.Reasons, "no PCR values were given to check against the reference values")
		case v.PCRs != nil:
			r := matchReferences(refs, v.PCRs)
			v.ReferenceMatch = r.match
			for _, m := range r.mismatches {
				v.Reasons = append(v.Reasons, mismatchReason(m))
			}
		}
	}
	v.OK = len(v.Reasons) == 0
	return v, nil
}

// ---- tpm2_quote -o (tpm2-tools 5.4 lib/pcr.c) ----

// tpm2-tools' serialized PCR file is its C structures written as they lie
// in memory, little-endian: TPML_PCR_SELECTION (UINT32 count, then 16
// TPMS_PCR_SELECTION of UINT16 hash, UINT8 sizeofSelect, BYTE
// pcrSelect[4] and a padding octet), a UINT32 count of digest lists, then
// that many TPML_DIGEST (UINT32 count, then 8 TPM2B_DIGEST of UINT16 size
// and BYTE buffer[64]). The digests follow the selection: banks in order,
// PCRs ascending, 8 to a list.
const (
	serializedBanks          = 16
	serializedSelectionLen   = 8
	serializedHeaderLen      = 4 + serializedBanks*serializedSelectionLen + 4
	serializedDigestsPerList = 8
	serializedDigestLen      = 2 + 64
	serializedDigestListLen  = 4 + serializedDigestsPerList*serializedDigestLen
	maxSerializedDigestLists = 64
)

// parsePCRFile reads a tpm2_quote -o file in any of tpm2-tools' forms and
// returns its values for checkPCRDigest. The -F values form carries no
// selection, so it is read along the quote's.
func parsePCRFile(b []byte, a *attest) (pcrLookup, error) {
	if vals, ok := parseSerializedPCRs(b); ok {
		return vals.get, nil
	}
	if vals, ok := parseMarshaledPCRs(b); ok {
		return vals.get, nil
	}
	want := 0
	for _, s := range a.PCRSelect {
		want += s.count() * digestSize(s.Hash)
	}
	if len(b) != want {
		return nil, fmt.Errorf("%w: PCR file of %d bytes is neither tpm2-tools' serialized form nor the %d bytes of values the quote selects", ErrEvidence, len(b), want)
	}
	vals := pcrValues{}
	off := 0
	for _, s := range a.PCRSelect {
		n := digestSize(s.Hash)
		for _, i := range s.indexes() {
			vals.put(s.Hash, i, b[off:off+n:off+n])
			off += n
		}
	}
	return vals.get, nil
}

// pcrValues holds reported PCR values.
type pcrValues map[uint16]map[int][]byte

func (p pcrValues) put(bank uint16, idx int, v []byte) {
	if p[bank] == nil {
		p[bank] = map[int][]byte{}
	}
	if _, dup := p[bank][idx]; !dup {
		p[bank][idx] = v
	}
}

func (p pcrValues) get(bank uint16, idx int) []byte { return p[bank][idx] }

// parseSerializedPCRs reads tpm2-tools' serialized PCR file.
func parseSerializedPCRs(b []byte) (pcrValues, bool) {
	if len(b) < serializedHeaderLen || (len(b)-serializedHeaderLen)%serializedDigestListLen != 0 {
		return nil, false
	}
	le := binary.LittleEndian
	nsel := le.Uint32(b)
	nlists := le.Uint32(b[serializedHeaderLen-4:])
	if nsel == 0 || nsel > serializedBanks || nlists > maxSerializedDigestLists ||
		int(nlists) != (len(b)-serializedHeaderLen)/serializedDigestListLen {
		return nil, false
	}
	var sels []pcrSelection
	for i := range int(nsel) {
		e := b[4+i*serializedSelectionLen:]
		s := pcrSelection{Hash: le.Uint16(e), Select: e[3 : 3+int(e[2]) : 3+int(e[2])]}
		if e[2] > maxSizeofSelect || digestSize(s.Hash) == 0 {
			return nil, false
		}
		sels = append(sels, s)
	}
	// Digests, in selection order.
	var digests [][]byte
	for l := range int(nlists) {
		list := b[serializedHeaderLen+l*serializedDigestListLen:]
		n := le.Uint32(list)
		if n > serializedDigestsPerList {
			return nil, false
		}
		for d := range int(n) {
			e := list[4+d*serializedDigestLen:]
			size := int(le.Uint16(e))
			if size > 64 {
				return nil, false
			}
			digests = append(digests, e[2:2+size:2+size])
		}
	}
	vals := pcrValues{}
	for _, s := range sels {
		for _, i := range s.indexes() {
			if len(digests) == 0 {
				return nil, false
			}
			vals.put(s.Hash, i, digests[0])
			digests = digests[1:]
		}
	}
	return vals, len(digests) == 0
}

// parseMarshaledPCRs reads the marshaled PCR file of tpm2-tools 5.5 and
// later: TPML_PCR_SELECTION, a UINT32 count, then that many TPML_DIGEST,
// all in TPM canonical form.
func parseMarshaledPCRs(b []byte) (pcrValues, bool) {
	r := &reader{b: b}
	nsel := r.u32("count")
	if r.err != nil || nsel == 0 || nsel > maxPCRBanks {
		return nil, false
	}
	var sels []pcrSelection
	for range nsel {
		s := pcrSelection{Hash: r.u16("hash")}
		size := int(r.u8("sizeofSelect"))
		if size > maxSizeofSelect {
			return nil, false
		}
		s.Select = r.next(size, "pcrSelect")
		if r.err != nil || digestSize(s.Hash) == 0 {
			return nil, false
		}
		sels = append(sels, s)
	}
	nlists := r.u32("lists")
	if r.err != nil || nlists > maxSerializedDigestLists {
		return nil, false
	}
	var digests [][]byte
	for range nlists {
		n := r.u32("count")
		if r.err != nil || n > serializedDigestsPerList {
			return nil, false
		}
		for range n {
			digests = append(digests, r.tpm2b(maxDigest, "digest"))
		}
	}
	if r.end("PCR file") != nil {
		return nil, false
	}
	vals := pcrValues{}
	for _, s := range sels {
		for _, i := range s.indexes() {
			if len(digests) == 0 {
				return nil, false
			}
			vals.put(s.Hash, i, digests[0])
			digests = digests[1:]
		}
	}
	return vals, len(digests) == 0
}
