package tpmimc

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/google/go-tpm/tpm2"

	"trustnac/transport/patnc"
)

// Limits of a quote request.
const (
	// MinNonce and MaxNonce bound the nonce, as the TPM Quote Request
	// attribute does: qualifyingData is a TPM2B_DATA, at most the size of
	// the largest digest (Part 2 §10.4.3, TPM2B_DATA).
	MinNonce = patnc.MinNonceLen
	MaxNonce = patnc.MaxNonceLen
	// MaxPCR is the highest PCR index a selection may name (PC Client
	// TPMs have 24 PCRs).
	MaxPCR = patnc.MaxPCRIndex
	// quoteAttempts bounds the quotes taken while the PCRs keep changing.
	quoteAttempts = 3
	// pcrSelectSize is sizeofSelect for PCRs 0–23 (PCR_SELECT_MIN).
	pcrSelectSize = 3
)

// TPM 2.0 wire constants used by the byte-level TPM2_Quote (Part 2 §6).
const (
	tpmSTSessions     = 0x8002
	tpmSTAttestQuote  = 0x8018
	tpmGeneratedValue = 0xff544347
	tpmCCQuote        = 0x00000158
	tpmRSPW           = 0x40000009
)

// bankSel is the selection of one PCR bank: PCR indexes in ascending
// order.
type bankSel struct {
	hash tpm2.TPMAlgID
	pcrs []uint8
}

// bitmap returns the pcrSelect bytes of PCR indexes ≤ MaxPCR.
func bitmap(pcrs []uint8) []byte {
	b := make([]byte, pcrSelectSize)
	for _, p := range pcrs {
		b[p/8] |= 1 << (p % 8)
	}
	return b
}

// indexes lists the PCRs set in a pcrSelect bitmap, ascending.
func indexes(sel []byte) []uint8 {
	var out []uint8
	for i, b := range sel {
		for j := range 8 {
			if b&(1<<j) != 0 && i*8+j <= 0xff {
				out = append(out, uint8(i*8+j))
			}
		}
	}
	return out
}

// activePCRs asks the TPM which PCRs each bank has allocated
// (TPM_CAP_PCRS, Part 2 §6.12).
func (c *Collector) activePCRs() (map[tpm2.TPMAlgID][]byte, error) {
	rsp, err := tpm2.GetCapability{Capability: tpm2.TPMCapPCRs, PropertyCount: 1}.Execute(c.tpm)
	if err != nil {
		return nil, fmt.Errorf("tpmimc: get PCR banks: %w", err)
	}
	sel, err := rsp.CapabilityData.Data.AssignedPCR()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadResponse, err)
	}
	out := make(map[tpm2.TPMAlgID][]byte, len(sel.PCRSelections))
	for _, s := range sel.PCRSelections {
		if slices.ContainsFunc(s.PCRSelect, func(b byte) bool { return b != 0 }) {
			out[s.Hash] = s.PCRSelect
		}
	}
	return out, nil
}

// selectBanks keeps the requested PCRs that the TPM has allocated, in the
// banks trustnac knows (patnc.TPMDigestSize), banks in the order first
// requested (a bank asked for twice gets the union). An index above MaxPCR
// is an error; no active bank is ErrNoBanks.
func selectBanks(req []patnc.PCRSelection, active map[tpm2.TPMAlgID][]byte) ([]bankSel, error) {
	var out []bankSel
	for _, r := range req {
		for _, p := range r.PCRs {
			if p > MaxPCR {
				return nil, fmt.Errorf("%w: PCR %d", ErrBadRequest, p)
			}
		}
		alloc, ok := active[tpm2.TPMAlgID(r.Hash)]
		if !ok || patnc.TPMDigestSize(r.Hash) == 0 {
			continue
		}
		i := slices.IndexFunc(out, func(b bankSel) bool { return b.hash == tpm2.TPMAlgID(r.Hash) })
		if i < 0 {
			out = append(out, bankSel{hash: tpm2.TPMAlgID(r.Hash)})
			i = len(out) - 1
		}
		for _, p := range r.PCRs {
			if int(p/8) < len(alloc) && alloc[p/8]&(1<<(p%8)) != 0 && !slices.Contains(out[i].pcrs, p) {
				out[i].pcrs = append(out[i].pcrs, p)
			}
		}
	}
	out = slices.DeleteFunc(out, func(b bankSel) bool { return len(b.pcrs) == 0 })
	if len(out) == 0 {
		return nil, ErrNoBanks
	}
	for i := range out {
		slices.Sort(out[i].pcrs)
	}
	return out, nil
}

// readPCRs reads the selected PCRs with TPM2_PCR_Read (Part 3 §22.4), which
// returns at most eight digests per call. Values come out bank by bank,
// indexes ascending: the order of a quote's PCR digest.
func (c *Collector) readPCRs(sel []bankSel) ([]patnc.PCRValue, error) {
	var out []patnc.PCRValue
	for _, b := range sel {
		remaining := slices.Clone(b.pcrs)
		start := len(out)
		for len(remaining) > 0 {
			rsp, err := tpm2.PCRRead{PCRSelectionIn: tpm2.TPMLPCRSelection{
				PCRSelections: []tpm2.TPMSPCRSelection{{Hash: b.hash, PCRSelect: bitmap(remaining)}},
			}}.Execute(c.tpm)
			if err != nil {
				return nil, fmt.Errorf("tpmimc: read PCRs: %w", err)
			}
			var got []uint8
			for _, s := range rsp.PCRSelectionOut.PCRSelections {
				if s.Hash != b.hash {
					return nil, fmt.Errorf("%w: PCR_Read returned bank %#04x, asked %#04x", ErrBadResponse, uint16(s.Hash), uint16(b.hash))
				}
				got = append(got, indexes(s.PCRSelect)...)
			}
			if len(got) == 0 || len(got) != len(rsp.PCRValues.Digests) {
				return nil, fmt.Errorf("%w: PCR_Read returned %d PCRs and %d digests", ErrBadResponse, len(got), len(rsp.PCRValues.Digests))
			}
			for i, p := range got {
				j := slices.Index(remaining, p)
				if j < 0 {
					return nil, fmt.Errorf("%w: PCR_Read returned PCR %d, not asked", ErrBadResponse, p)
				}
				remaining = slices.Delete(remaining, j, j+1)
				d := rsp.PCRValues.Digests[i].Buffer
				if len(d) != patnc.TPMDigestSize(uint16(b.hash)) {
					return nil, fmt.Errorf("%w: PCR %d digest of %d bytes", ErrBadResponse, p, len(d))
				}
				out = append(out, patnc.PCRValue{Hash: uint16(b.hash), Index: p, Digest: clone(d)})
			}
		}
		slices.SortFunc(out[start:], func(x, y patnc.PCRValue) int { return int(x.Index) - int(y.Index) })
	}
	return out, nil
}

// Quote signs the selected PCRs and nonce with the AK in one TPM2_Quote
// (Part 3 §18.4) over every requested bank the TPM has active, with the
// AK's own scheme. It reads the PCR values before and after and quotes
// again (at most three times in all) if they changed in between. The
// result holds the TPMS_ATTEST and TPMT_SIGNATURE bytes as the TPM produced
// them and the quoted PCR values in the order of the quote's PCR digest:
// bank by bank in request order, indexes ascending.
func (c *Collector) Quote(ctx context.Context, nonce []byte, sel []patnc.PCRSelection) (*patnc.TPMQuote, error) {
	if len(nonce) < MinNonce || len(nonce) > MaxNonce {
		return nil, fmt.Errorf("%w: nonce of %d bytes (%d–%d)", ErrBadRequest, len(nonce), MinNonce, MaxNonce)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("tpmimc: %w", err)
	}
	active, err := c.activePCRs()
	if err != nil {
		return nil, err
	}
	banks, err := selectBanks(sel, active)
	if err != nil {
		return nil, err
	}
	h, err := c.loadAK(ctx)
	if err != nil {
		return nil, err
	}
	defer c.flush(h)
	for range quoteAttempts {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("tpmimc: %w", err)
		}
		before, err := c.readPCRs(banks)
		if err != nil {
			return nil, err
		}
		attest, sig, err := c.quote(h, nonce, banks)
		if err != nil {
			return nil, err
		}
		after, err := c.readPCRs(banks)
		if err != nil {
			return nil, err
		}
		if slices.EqualFunc(before, after, func(x, y patnc.PCRValue) bool {
			return x.Hash == y.Hash && x.Index == y.Index && bytes.Equal(x.Digest, y.Digest)
		}) {
			return &patnc.TPMQuote{Attest: attest, Signature: sig, PCRs: after}, nil
		}
		c.log.Debug("PCRs changed during the quote; quoting again")
	}
	return nil, ErrPCRsChanging
}

// quote sends TPM2_Quote at the byte level: go-tpm cannot unmarshal an SM2
// TPMT_SIGNATURE, and the bytes must travel exactly as the TPM made them.
func (c *Collector) quote(h tpm2.TPMHandle, nonce []byte, banks []bankSel) (attest, sig []byte, err error) {
	rsp, err := c.tpm.Send(quoteCommand(h, nonce, banks))
	if err != nil {
		return nil, nil, fmt.Errorf("tpmimc: quote: %w", err)
	}
	attest, sig, err = parseQuoteResponse(rsp)
	if err != nil {
		return nil, nil, err
	}
	if err := checkQuote(attest, sig, nonce, c.kind.scheme, c.ak.SchemeHash); err != nil {
		return nil, nil, err
	}
	return attest, sig, nil
}

// quoteCommand marshals TPM2_Quote (Part 3 §18.4.2): the AK authorized by
// an empty password session, inScheme TPM_ALG_NULL (the key's own scheme).
func quoteCommand(h tpm2.TPMHandle, nonce []byte, banks []bankSel) []byte {
	b := make([]byte, 0, 64+len(nonce)+6*len(banks))
	b = binary.BigEndian.AppendUint16(b, tpmSTSessions)
	b = binary.BigEndian.AppendUint32(b, 0) // size, set below
	b = binary.BigEndian.AppendUint32(b, tpmCCQuote)
	b = binary.BigEndian.AppendUint32(b, uint32(h))
	// Authorization area: one TPMS_AUTH_COMMAND (handle, empty nonce,
	// attributes, empty password).
	b = binary.BigEndian.AppendUint32(b, 9)
	b = binary.BigEndian.AppendUint32(b, tpmRSPW)
	b = append(b, 0, 0, 0, 0, 0)
	b = append2B(b, nonce)
	b = binary.BigEndian.AppendUint16(b, uint16(tpm2.TPMAlgNull))
	b = binary.BigEndian.AppendUint32(b, uint32(len(banks)))
	for _, s := range banks {
		b = binary.BigEndian.AppendUint16(b, uint16(s.hash))
		b = append(b, pcrSelectSize)
		b = append(b, bitmap(s.pcrs)...)
	}
	binary.BigEndian.PutUint32(b[2:], uint32(len(b)))
	return b
}

// parseQuoteResponse parses a TPM2_Quote response (Part 3 §18.4.3) and
// returns copies of the TPMS_ATTEST (the contents of quoted) and of the
// TPMT_SIGNATURE, which fills the rest of the parameter area. A TPM error
// is returned as go-tpm's TPMRC.
func parseQuoteResponse(rsp []byte) (attest, sig []byte, err error) {
	r := &reader{b: rsp}
	tag := r.u16("tag")
	size := r.u32("responseSize")
	rc := r.u32("responseCode")
	if r.err != nil {
		return nil, nil, fmt.Errorf("%w: quote: %w", ErrBadResponse, r.err)
	}
	if int64(size) != int64(len(rsp)) {
		return nil, nil, fmt.Errorf("%w: quote: response size %d, got %d bytes", ErrBadResponse, size, len(rsp))
	}
	if rc != 0 {
		return nil, nil, fmt.Errorf("tpmimc: quote: %w", tpm2.TPMRC(rc))
	}
	if tag != tpmSTSessions {
		return nil, nil, fmt.Errorf("%w: quote: tag %#04x", ErrBadResponse, tag)
	}
	params := r.bytes(int(r.u32("parameterSize")), "parameters")
	if r.err != nil {
		return nil, nil, fmt.Errorf("%w: quote: %w", ErrBadResponse, r.err)
	}
	// The authorization area of the password session follows; nothing in
	// it needs checking.
	p := &reader{b: params}
	attest = clone(p.tpm2b("quoted"))
	sig = clone(p.bytes(p.rest(), "signature"))
	if p.err != nil {
		return nil, nil, fmt.Errorf("%w: quote: %w", ErrBadResponse, p.err)
	}
	if len(attest) == 0 || len(sig) == 0 {
		return nil, nil, fmt.Errorf("%w: quote: empty quoted or signature", ErrBadResponse)
	}
	return attest, sig, nil
}

// ParseECCSignature parses a TPMT_SIGNATURE of an ECC scheme (TPM_ALG_ECDSA,
// TPM_ALG_SM2, TPM_ALG_ECDAA, TPM_ALG_ECSCHNORR; Part 2 §11.3.4): the
// scheme, the hash and TPMS_SIGNATURE_ECC's r and s (copied). It must fill
// b exactly.
func ParseECCSignature(b []byte) (scheme, hash tpm2.TPMAlgID, rv, sv []byte, err error) {
	r := &reader{b: b}
	scheme = tpm2.TPMAlgID(r.u16("sigAlg"))
	switch scheme {
	case tpm2.TPMAlgECDSA, tpm2.TPMAlgSM2, tpm2.TPMAlgECDAA, tpm2.TPMAlgECSchnorr:
	default:
		if r.err == nil {
			return 0, 0, nil, nil, fmt.Errorf("%w: signature scheme %#04x is not ECC", ErrBadResponse, uint16(scheme))
		}
	}
	hash = tpm2.TPMAlgID(r.u16("hash"))
	rv = clone(r.tpm2b("signatureR"))
	sv = clone(r.tpm2b("signatureS"))
	if err := r.done("TPMT_SIGNATURE"); err != nil {
		return 0, 0, nil, nil, fmt.Errorf("%w: %w", ErrBadResponse, err)
	}
	if len(rv) == 0 || len(sv) == 0 || len(rv) > maxECCParam || len(sv) > maxECCParam {
		return 0, 0, nil, nil, fmt.Errorf("%w: signature r, s of %d, %d bytes", ErrBadResponse, len(rv), len(sv))
	}
	return scheme, hash, rv, sv, nil
}

// checkQuote checks what the TPM returned is a quote over nonce signed with
// the AK's scheme: magic, type and extraData of the TPMS_ATTEST (Part 2
// §10.12.12) and the shape of the signature.
func checkQuote(attest, sig, nonce []byte, wantScheme, wantHash tpm2.TPMAlgID) error {
	r := &reader{b: attest}
	magic := r.u32("magic")
	typ := r.u16("type")
	r.tpm2b("qualifiedSigner")
	extra := r.tpm2b("extraData")
	if r.err != nil {
		return fmt.Errorf("%w: TPMS_ATTEST: %w", ErrBadResponse, r.err)
	}
	if magic != tpmGeneratedValue || typ != tpmSTAttestQuote {
		return fmt.Errorf("%w: TPMS_ATTEST magic %#08x type %#04x", ErrBadResponse, magic, typ)
	}
	if !bytes.Equal(extra, nonce) {
		return fmt.Errorf("%w: TPMS_ATTEST extraData is not the nonce", ErrBadResponse)
	}
	scheme, hash, _, _, err := ParseECCSignature(sig)
	if err != nil {
		return err
	}
	if scheme != wantScheme || hash != wantHash {
		return fmt.Errorf("%w: signature scheme %#04x/%#04x, want %#04x/%#04x", ErrBadResponse,
			uint16(scheme), uint16(hash), uint16(wantScheme), uint16(wantHash))
	}
	return nil
}
