package tpmimv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/emmansun/gmsm/sm2"
)

// AK algorithms as the tpm.ak_alg fact names them.
const (
	AKAlgECDSAP256 = "ecdsa-p256" // TPM_ECC_NIST_P256 with TPM_ALG_ECDSA
	AKAlgSM2       = "sm2"        // TPM_ECC_SM2_P256 with TPM_ALG_SM2
)

// Errors of signature verification that callers tell apart.
var (
	// ErrBadSignature: the quote's signature does not verify with the AK.
	ErrBadSignature = errors.New("tpmimv: signature does not verify")
	// errScheme: the signature's scheme or hash is not the AK's.
	errScheme = errors.New("tpmimv: signature scheme does not fit the attestation key")
)

// akKey is a parsed attestation key, ready to verify quotes. It is
// immutable once built but for its memo, so the verifier shares one per
// AK.
type akKey struct {
	public []byte // TPMT_PUBLIC, owned
	area   *publicArea
	name   []byte // TPM2B_NAME contents: nameAlg || digest
	id     string // "sha256:<hex digest>", the tpm.ak fact
	alg    string // AKAlgECDSAP256 or AKAlgSM2
	pub    *ecdsa.PublicKey
	// restricted is true for a restricted signing key that never leaves
	// its TPM: only such a key's quote proves anything, because a TPM signs
	// data starting with TPM_GENERATED_VALUE only with restricted keys.
	restricted bool
	// memo speeds up the PCR digest check of the next quote.
	memo atomic.Pointer[pcrMemo]
}

// parseAK parses an attestation key's TPMT_PUBLIC and computes its name
// (TPM 2.0 Part 1, Names: nameAlg || H_nameAlg(TPMT_PUBLIC)). It copies public.
func parseAK(public []byte) (*akKey, error) {
	public = append([]byte(nil), public...)
	area, err := parsePublic(public)
	if err != nil {
		return nil, err
	}
	k := &akKey{public: public, area: area}
	if digestSize(area.NameAlg) == 0 || area.NameAlg == algSHA512 {
		return nil, fmt.Errorf("%w: name algorithm 0x%04x", ErrUnsupportedKey, area.NameAlg)
	}
	k.name = sum(area.NameAlg, []byte{byte(area.NameAlg >> 8), byte(area.NameAlg)}, public)
	k.id = BankName(area.NameAlg) + ":" + hex.EncodeToString(k.name[2:])
	k.restricted = area.Attributes&(attrRestricted|attrSign|attrFixedTPM|attrFixedParent) ==
		attrRestricted|attrSign|attrFixedTPM|attrFixedParent && area.Attributes&attrDecrypt == 0

	if len(area.X) > 32 || len(area.Y) > 32 {
		return nil, fmt.Errorf("%w: ECC point coordinates longer than 32 bytes", ErrUnsupportedKey)
	}
	var point [65]byte
	point[0] = 4
	copy(point[1+32-len(area.X):33], area.X)
	copy(point[33+32-len(area.Y):], area.Y)
	switch area.CurveID {
	case curveNISTP256:
		if area.Scheme != algECDSA && area.Scheme != algNull {
			return nil, fmt.Errorf("%w: P-256 key with scheme 0x%04x, want ECDSA", ErrUnsupportedKey, area.Scheme)
		}
		k.alg = AKAlgECDSAP256
		if k.pub, err = ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point[:]); err != nil {
			return nil, fmt.Errorf("%w: P-256 point: %v", ErrUnsupportedKey, err)
		}
	case curveSM2P256:
		if area.Scheme != algSM2 && area.Scheme != algNull {
			return nil, fmt.Errorf("%w: SM2 key with scheme 0x%04x, want SM2", ErrUnsupportedKey, area.Scheme)
		}
		k.alg = AKAlgSM2
		if k.pub, err = sm2.NewPublicKey(point[:]); err != nil {
			return nil, fmt.Errorf("%w: SM2 point: %v", ErrUnsupportedKey, err)
		}
	default:
		return nil, fmt.Errorf("%w: curve 0x%04x", ErrUnsupportedKey, area.CurveID)
	}
	return k, nil
}

// sigAlg is the signature scheme the key signs with.
func (k *akKey) sigAlg() uint16 {
	if k.alg == AKAlgSM2 {
		return algSM2
	}
	return algECDSA
}

// checkScheme checks that a signature's scheme and hash are ones the key
// signs with: the key's scheme, and its scheme hash when the key names one.
// ECDSA takes SHA-256 or SHA-384; SM2 takes SM3-256 or, on TPMs without
// SM3 (swtpm), SHA-256.
func (k *akKey) checkScheme(s *signature) error {
	if s.Alg != k.sigAlg() {
		return fmt.Errorf("%w: scheme 0x%04x, key signs with 0x%04x", errScheme, s.Alg, k.sigAlg())
	}
	if k.area.Scheme != algNull && s.Hash != k.area.SchemeHash {
		return fmt.Errorf("%w: hash 0x%04x, key's scheme hash 0x%04x", errScheme, s.Hash, k.area.SchemeHash)
	}
	switch {
	case k.alg == AKAlgECDSAP256 && (s.Hash == algSHA256 || s.Hash == algSHA384):
	case k.alg == AKAlgSM2 && (s.Hash == algSM3256 || s.Hash == algSHA256):
	default:
		return fmt.Errorf("%w: hash 0x%04x", errScheme, s.Hash)
	}
	return nil
}

// verify checks sig over msg: the scheme hash of msg, then ECDSA or raw
// SM2 (GB/T 32918.2 over the digest itself: a TPM signs the digest with
// no Z_A prefix: TPM 2.0 Part 4, CryptEccSign).
func (k *akKey) verify(msg []byte, sig *signature) error {
	if err := k.checkScheme(sig); err != nil {
		return err
	}
	var dbuf [64]byte
	digest := sum(sig.Hash, dbuf[:0], msg)
	var sbuf [2*(3+1+maxECCParam) + 2]byte
	der, ok := appendDERSignature(sbuf[:0], sig.R, sig.S)
	if !ok {
		return ErrBadSignature
	}
	var good bool
	if k.alg == AKAlgSM2 {
		good = sm2.VerifyASN1(k.pub, digest, der)
	} else {
		good = ecdsa.VerifyASN1(k.pub, digest, der)
	}
	if !good {
		return ErrBadSignature
	}
	return nil
}

// appendDERSignature encodes r and s as the ASN.1 SEQUENCE of two INTEGERs
// that crypto/ecdsa and gmsm's sm2 verify. It reports false for values no
// valid signature has (zero or longer than 66 bytes).
func appendDERSignature(b, r, s []byte) ([]byte, bool) {
	r, s = trimZeros(r), trimZeros(s)
	if len(r) == 0 || len(s) == 0 || len(r) > maxECCParam || len(s) > maxECCParam {
		return b, false
	}
	ilen := func(v []byte) int { return 2 + len(v) + int(v[0]>>7) }
	body := ilen(r) + ilen(s)
	b = append(b, 0x30)
	if body >= 0x80 {
		b = append(b, 0x81)
	}
	b = append(b, byte(body))
	for _, v := range [2][]byte{r, s} {
		b = append(b, 0x02, byte(len(v)+int(v[0]>>7)))
		if v[0]&0x80 != 0 {
			b = append(b, 0)
		}
		b = append(b, v...)
	}
	return b, true
}

func trimZeros(v []byte) []byte {
	for len(v) > 0 && v[0] == 0 {
		v = v[1:]
	}
	return v
}

// keyCache keeps parsed attestation keys by TPMT_PUBLIC so a quote from a
// known AK costs no parsing or point decoding. Bounded: when full, it is
// emptied (keys are cheap to parse again; an attacker presenting many keys
// only costs itself parsing time).
type keyCache struct {
	mu   sync.RWMutex
	keys map[string]*akKey // by TPMT_PUBLIC bytes
	max  int
}

func newKeyCache(max int) *keyCache {
	return &keyCache{keys: make(map[string]*akKey), max: max}
}

// get returns the parsed key for a TPMT_PUBLIC, parsing it on a miss.
func (c *keyCache) get(public []byte) (*akKey, error) {
	c.mu.RLock()
	k := c.keys[string(public)]
	c.mu.RUnlock()
	if k != nil {
		return k, nil
	}
	k, err := parseAK(public)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if len(c.keys) >= c.max {
		clear(c.keys)
	}
	c.keys[string(k.public)] = k
	c.mu.Unlock()
	return k, nil
}
