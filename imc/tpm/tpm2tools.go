package tpmimc

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"trustnac/transport/patnc"
)

// Sizes of the tpm2-tss C structures that tpm2-tools writes raw, in host
// (little-endian) order, as the "serialized" PCR file of tpm2_quote -o:
// TPMS_PCR_SELECTION {UINT16 hash; UINT8 sizeofSelect; BYTE pcrSelect[4]}
// padded to 8 bytes; TPML_PCR_SELECTION {UINT32 count; TPMS_PCR_SELECTION
// [16]}; TPM2B_DIGEST {UINT16 size; BYTE buffer[64]}; TPML_DIGEST {UINT32
// count; TPM2B_DIGEST [8]}.
const (
	tssPCRSelectMax   = 4
	tssPCRSelection   = 8
	tssNumPCRBanks    = 16
	tssPCRSelectionL  = 4 + tssNumPCRBanks*tssPCRSelection
	tssDigestBuf      = 64
	tssDigest         = 2 + tssDigestBuf
	tssDigestsPerList = 8
	tssDigestList     = 4 + tssDigestsPerList*tssDigest
)

// WriteTPM2ToolsEvidence writes a quote as tpm2-tools 5.4 writes it, so
// that `tpm2_checkquote -u ak.pub -m quote.msg -s quote.sig -f quote.pcrs
// -g sha256 -q <nonce hex>` checks it:
//   - ak.pub: the AK's TPM2B_PUBLIC (as tpm2_create -u writes it);
//   - quote.msg: the TPMS_ATTEST (tpm2_quote -m);
//   - quote.sig: the TPMT_SIGNATURE (tpm2_quote -s, the default "tss"
//     format);
//   - quote.pcrs: the PCR values in tpm2_quote -o's default "serialized"
//     format: a TPML_PCR_SELECTION, a UINT32 count of TPML_DIGEST and the
//     TPML_DIGESTs (eight digests each), all as raw little-endian C
//     structures. The selection is that of q.PCRs, banks in order of first
//     appearance; the digests follow it, bank by bank, indexes ascending.
//
// dir is created (0700) if needed; existing files are replaced.
func WriteTPM2ToolsEvidence(dir string, ak *AK, q *patnc.TPMQuote) error {
	if ak == nil || q == nil || len(ak.PublicBytes) == 0 {
		return fmt.Errorf("%w: no AK or quote", ErrBadRequest)
	}
	pcrs, err := tpm2ToolsPCRs(q.PCRs)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("tpmimc: %w", err)
	}
	for _, f := range []struct {
		name string
		data []byte
	}{
		{"ak.pub", append2B(nil, ak.PublicBytes)},
		{"quote.msg", q.Attest},
		{"quote.sig", q.Signature},
		{"quote.pcrs", pcrs},
	} {
		if err := os.WriteFile(filepath.Join(dir, f.name), f.data, 0o644); err != nil {
			return fmt.Errorf("tpmimc: %w", err)
		}
	}
	return nil
}

// tpm2ToolsPCRs encodes PCR values in tpm2-tools' "serialized" form.
func tpm2ToolsPCRs(values []patnc.PCRValue) ([]byte, error) {
	type bank struct {
		hash uint16
		sel  [tssPCRSelectMax]byte
		vals []patnc.PCRValue
	}
	var banks []*bank
	for _, v := range values {
		if v.Index > MaxPCR || len(v.Digest) > tssDigestBuf {
			return nil, fmt.Errorf("%w: PCR %d with a %d-byte digest", ErrBadRequest, v.Index, len(v.Digest))
		}
		i := slices.IndexFunc(banks, func(b *bank) bool { return b.hash == v.Hash })
		if i < 0 {
			if len(banks) == tssNumPCRBanks {
				return nil, fmt.Errorf("%w: more than %d PCR banks", ErrBadRequest, tssNumPCRBanks)
			}
			banks = append(banks, &bank{hash: v.Hash})
			i = len(banks) - 1
		}
		b := banks[i]
		if b.sel[v.Index/8]&(1<<(v.Index%8)) != 0 {
			return nil, fmt.Errorf("%w: PCR %#04x:%d twice", ErrBadRequest, v.Hash, v.Index)
		}
		b.sel[v.Index/8] |= 1 << (v.Index % 8)
		b.vals = append(b.vals, v)
	}
	lists := (len(values) + tssDigestsPerList - 1) / tssDigestsPerList
	out := make([]byte, tssPCRSelectionL+4+lists*tssDigestList)
	le := binary.LittleEndian
	le.PutUint32(out, uint32(len(banks)))
	for i, b := range banks {
		s := out[4+i*tssPCRSelection:]
		le.PutUint16(s, b.hash)
		s[2] = pcrSelectSize
		copy(s[3:], b.sel[:])
	}
	le.PutUint32(out[tssPCRSelectionL:], uint32(lists))
	n := 0
	for _, b := range banks {
		slices.SortFunc(b.vals, func(x, y patnc.PCRValue) int { return int(x.Index) - int(y.Index) })
		for _, v := range b.vals {
			list := out[tssPCRSelectionL+4+(n/tssDigestsPerList)*tssDigestList:]
			le.PutUint32(list, uint32(min(tssDigestsPerList, len(values)-n/tssDigestsPerList*tssDigestsPerList)))
			d := list[4+(n%tssDigestsPerList)*tssDigest:]
			le.PutUint16(d, uint16(len(v.Digest)))
			copy(d[2:], v.Digest)
			n++
		}
	}
	return out, nil
}
