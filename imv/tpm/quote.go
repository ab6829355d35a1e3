package tpmimv

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"trustnac/transport/patnc"
)

// Errors of quote checking that callers tell apart.
var (
	// ErrNonce: the quote's extraData is not the verifier's nonce.
	ErrNonce = errors.New("tpmimv: quote does not carry the verifier's nonce")
	// ErrPCRDigest: the reported PCR values do not hash to the quoted
	// pcrDigest, or a selected PCR's value is missing.
	ErrPCRDigest = errors.New("tpmimv: PCR values do not match the quoted digest")
)

// checkQuote verifies a quote made by k: the signature over the
// TPMS_ATTEST bytes (before anything of them is trusted), then its magic
// (TPM_GENERATED_VALUE), type (TPM_ST_ATTEST_QUOTE) and extraData (the
// nonce, compared in constant time). TPM 2.0 Part 3 §18.4. The result
// aliases attestBytes and sigBytes.
func checkQuote(k *akKey, attestBytes, sigBytes, nonce []byte) (*attest, *signature, error) {
	sig, err := parseSignature(sigBytes)
	if err != nil {
		return nil, nil, err
	}
	if err := k.verify(attestBytes, sig); err != nil {
		return nil, sig, err
	}
	a, err := parseAttest(attestBytes)
	if err != nil {
		return nil, sig, err
	}
	if !constantTimeEqual(a.ExtraData, nonce) {
		return a, sig, ErrNonce
	}
	return a, sig, nil
}

// constantTimeEqual compares secrets and nonces without leaking where they
// differ; lengths are not secret.
func constantTimeEqual(a, b []byte) bool {
	return len(a) == len(b) && subtle.ConstantTimeCompare(a, b) == 1
}

// errSelection: the quote's PCR selection does not cover what was asked.
var errSelection = errors.New("tpmimv: the quote does not select the PCRs asked for")

// verifyTPMQuote runs every check of a quote that needs no store: the
// signature, magic, type and nonce (checkQuote), the selection against the
// banks and PCRs asked for (covers), and the reported PCR values against
// the quoted digest (checkPCRDigest). It returns the attestation and the
// PCR values, which alias q.
func verifyTPMQuote(k *akKey, q *patnc.TPMQuote, nonce []byte, banks []uint16, want []int) (*attest, pcrList, error) {
	a, sig, err := checkQuote(k, q.Attest, q.Signature, nonce)
	if err != nil {
		return a, nil, err
	}
	missing, anyBank := covers(a, banks, want)
	if !anyBank {
		return a, nil, fmt.Errorf("%w: none of the banks asked for", errSelection)
	}
	if len(missing) > 0 {
		return a, nil, fmt.Errorf("%w: %s", errSelection, strings.Join(missing, ", "))
	}
	pcrs, err := checkPCRDigest(a, sig.Hash, func(bank uint16, idx int) []byte {
		for i := range q.PCRs {
			if v := &q.PCRs[i]; v.Hash == bank && int(v.Index) == idx {
				return v.Digest
			}
		}
		return nil
	}, &k.memo)
	return a, pcrs, err
}

// pcrLookup returns the reported value of PCR idx in bank, nil if none.
type pcrLookup func(bank uint16, idx int) []byte

// checkPCRDigest checks reported PCR values against a quote: the scheme
// hash (hashAlg, the signature's hash: TPM 2.0 Part 3 §18.4.1) of the
// values of every selected PCR, banks in selection order and PCRs in
// ascending order, must equal pcrDigest. It returns the values, which are
// trusted from then on (aliasing what get returned). With memo, the values that last matched for the AK are
// remembered: when the next quote reports the same bytes with the same
// digest, comparing them stands in for hashing them again.
func checkPCRDigest(a *attest, hashAlg uint16, get pcrLookup, memo *atomic.Pointer[pcrMemo]) (pcrList, error) {
	if digestSize(hashAlg) == 0 {
		return nil, fmt.Errorf("%w: hash 0x%04x", ErrPCRDigest, hashAlg)
	}
	total, n := 0, 0
	for _, s := range a.PCRSelect {
		total += s.count() * digestSize(s.Hash)
		n += s.count()
	}
	values := make([]byte, 0, total)
	out := make(pcrList, 0, n)
	for _, s := range a.PCRSelect {
		size := digestSize(s.Hash)
		for i := 0; i < len(s.Select)*8; i++ {
			if !s.has(i) {
				continue
			}
			v := get(s.Hash, i)
			if v == nil {
				return nil, fmt.Errorf("%w: no value reported for %s:%d", ErrPCRDigest, BankName(s.Hash), i)
			}
			if len(v) != size {
				return nil, fmt.Errorf("%w: %s:%d is %d bytes, want %d", ErrPCRDigest, BankName(s.Hash), i, len(v), size)
			}
			values = append(values, v...)
			out = append(out, pcrEntry{bank: s.Hash, index: i, digest: v})
		}
	}
	if memo != nil {
		if m := memo.Load(); m != nil && m.hashAlg == hashAlg && bytes.Equal(m.digest, a.PCRDigest) && bytes.Equal(m.values, values) {
			return out, nil
		}
	}
	var buf [64]byte
	if d := sum(hashAlg, buf[:0], values); subtle.ConstantTimeCompare(d, a.PCRDigest) != 1 {
		return nil, ErrPCRDigest
	}
	if memo != nil {
		memo.Store(&pcrMemo{hashAlg: hashAlg, values: values, digest: bytes.Clone(a.PCRDigest)})
	}
	return out, nil
}

// pcrEntry is one verified PCR value.
type pcrEntry struct {
	bank   uint16
	index  int
	digest []byte
}

// pcrList are the verified PCR values of a quote in selection order.
type pcrList []pcrEntry

// banks returns the values as bank → PCR → digest, sharing the digests.
func (l pcrList) banks() map[uint16]map[int][]byte {
	out := make(map[uint16]map[int][]byte)
	for _, e := range l {
		if out[e.bank] == nil {
			out[e.bank] = make(map[int][]byte)
		}
		out[e.bank][e.index] = e.digest
	}
	return out
}

// pcrMemo is the last set of PCR values that hashed to a quote's digest
// for one AK (akKey.memo). PCRs change rarely, so the next quote's values
// are usually the same bytes.
type pcrMemo struct {
	hashAlg uint16
	values  []byte // the values in selection order, owned
	digest  []byte // their hash
}

// covers reports which of the wanted PCRs a quote's selection lacks in the
// banks it quotes, as "sha256:7"; and whether it quotes any wanted bank at
// all. The collector quotes the requested banks its TPM has, so a missing
// bank is not a gap, but a bank quoted without all wanted PCRs is.
func covers(a *attest, banks []uint16, pcrs []int) (missing []string, anyBank bool) {
	for _, s := range a.PCRSelect {
		wanted := false
		for _, b := range banks {
			wanted = wanted || b == s.Hash
		}
		if !wanted {
			continue
		}
		anyBank = true
		for _, i := range pcrs {
			if !s.has(i) {
				missing = append(missing, fmt.Sprintf("%s:%d", BankName(s.Hash), i))
			}
		}
	}
	return missing, anyBank
}
