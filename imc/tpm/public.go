package tpmimc

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"

	"github.com/emmansun/gmsm/sm2"
	"github.com/google/go-tpm/tpm2"
)

// ErrBadPublic is wrapped by the errors of ParseECCPublic.
var ErrBadPublic = errors.New("tpmimc: bad TPMT_PUBLIC")

// Object attributes of an attestation key (TPMA_OBJECT, Part 2 §8.3):
// fixedTPM (bit 1), fixedParent (4), sensitiveDataOrigin (5), userWithAuth
// (6), restricted (16), sign (18). No authorization value and no policy.
const akAttributes = 1<<1 | 1<<4 | 1<<5 | 1<<6 | 1<<16 | 1<<18

// maxECCParam caps a coordinate of an ECC point: MAX_ECC_KEY_BYTES of the
// largest curve a TPM implements (P-521, 66 bytes).
const maxECCParam = 66

// ECCPublic is the byte-level view of an ECC key's TPMT_PUBLIC (Part 2
// §12.2.4 with TPMS_ECC_PARMS, §12.2.3.6, and TPMS_ECC_POINT, §11.2.5.2).
// It exists because go-tpm's TPMU_ASYM_SCHEME has no SM2 member: a
// TPMT_PUBLIC of an SM2 key neither marshals nor unmarshals there.
type ECCPublic struct {
	NameAlg    tpm2.TPMAlgID
	Attributes uint32 // TPMA_OBJECT
	AuthPolicy []byte
	// Symmetric is the TPMT_SYM_DEF_OBJECT of a storage key; SymKeyBits and
	// SymMode are present only when Symmetric is not TPM_ALG_NULL.
	Symmetric  tpm2.TPMAlgID
	SymKeyBits uint16
	SymMode    tpm2.TPMAlgID
	// Scheme is the TPMT_ECC_SCHEME; SchemeHash is present when Scheme is
	// not TPM_ALG_NULL and SchemeCount only with TPM_ALG_ECDAA.
	Scheme      tpm2.TPMAlgID
	SchemeHash  tpm2.TPMAlgID
	SchemeCount uint16
	Curve       tpm2.TPMECCCurve
	// KDF is the TPMT_KDF_SCHEME; KDFHash is present when it is not
	// TPM_ALG_NULL.
	KDF     tpm2.TPMAlgID
	KDFHash tpm2.TPMAlgID
	X, Y    []byte
}

// AppendBinary appends the TPMT_PUBLIC.
func (p *ECCPublic) AppendBinary(b []byte) ([]byte, error) {
	if len(p.AuthPolicy) > 64 || len(p.X) > maxECCParam || len(p.Y) > maxECCParam {
		return b, fmt.Errorf("%w: field too long", ErrBadPublic)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(tpm2.TPMAlgECC))
	b = binary.BigEndian.AppendUint16(b, uint16(p.NameAlg))
	b = binary.BigEndian.AppendUint32(b, p.Attributes)
	b = append2B(b, p.AuthPolicy)
	b = binary.BigEndian.AppendUint16(b, uint16(p.Symmetric))
	if p.Symmetric != tpm2.TPMAlgNull {
		b = binary.BigEndian.AppendUint16(b, p.SymKeyBits)
		b = binary.BigEndian.AppendUint16(b, uint16(p.SymMode))
	}
	b = binary.BigEndian.AppendUint16(b, uint16(p.Scheme))
	if p.Scheme != tpm2.TPMAlgNull {
		b = binary.BigEndian.AppendUint16(b, uint16(p.SchemeHash))
		if p.Scheme == tpm2.TPMAlgECDAA {
			b = binary.BigEndian.AppendUint16(b, p.SchemeCount)
		}
	}
	b = binary.BigEndian.AppendUint16(b, uint16(p.Curve))
	b = binary.BigEndian.AppendUint16(b, uint16(p.KDF))
	if p.KDF != tpm2.TPMAlgNull {
		b = binary.BigEndian.AppendUint16(b, uint16(p.KDFHash))
	}
	b = append2B(b, p.X)
	b = append2B(b, p.Y)
	return b, nil
}

// ParseECCPublic parses a TPMT_PUBLIC of type TPM_ALG_ECC, the contents of a
// TPM2B_PUBLIC. Byte slices are copied out of b.
func ParseECCPublic(b []byte) (*ECCPublic, error) {
	r := &reader{b: b}
	if t := tpm2.TPMAlgID(r.u16("type")); r.err == nil && t != tpm2.TPMAlgECC {
		return nil, fmt.Errorf("%w: type %#04x is not ECC", ErrBadPublic, uint16(t))
	}
	p := &ECCPublic{
		NameAlg:    tpm2.TPMAlgID(r.u16("nameAlg")),
		Attributes: r.u32("objectAttributes"),
		AuthPolicy: clone(r.tpm2b("authPolicy")),
		Symmetric:  tpm2.TPMAlgID(r.u16("symmetric")),
	}
	if p.Symmetric != tpm2.TPMAlgNull {
		p.SymKeyBits = r.u16("symmetric keyBits")
		p.SymMode = tpm2.TPMAlgID(r.u16("symmetric mode"))
	}
	p.Scheme = tpm2.TPMAlgID(r.u16("scheme"))
	if p.Scheme != tpm2.TPMAlgNull {
		p.SchemeHash = tpm2.TPMAlgID(r.u16("scheme hashAlg"))
		if p.Scheme == tpm2.TPMAlgECDAA {
			p.SchemeCount = r.u16("scheme count")
		}
	}
	p.Curve = tpm2.TPMECCCurve(r.u16("curveID"))
	p.KDF = tpm2.TPMAlgID(r.u16("kdf"))
	if p.KDF != tpm2.TPMAlgNull {
		p.KDFHash = tpm2.TPMAlgID(r.u16("kdf hashAlg"))
	}
	p.X = clone(r.tpm2b("unique.x"))
	p.Y = clone(r.tpm2b("unique.y"))
	if err := r.done("TPMT_PUBLIC"); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadPublic, err)
	}
	if len(p.AuthPolicy) > 64 || len(p.X) > maxECCParam || len(p.Y) > maxECCParam {
		return nil, fmt.Errorf("%w: field too long", ErrBadPublic)
	}
	return p, nil
}

// PublicKey returns the key as an *ecdsa.PublicKey on elliptic.P256() or,
// for TPM_ECC_SM2_P256, on gmsm's sm2.P256(). The point must be on the
// curve.
func (p *ECCPublic) PublicKey() (*ecdsa.PublicKey, error) {
	var curve elliptic.Curve
	switch p.Curve {
	case tpm2.TPMECCNistP256:
		curve = elliptic.P256()
	case tpm2.TPMECCSM2P256:
		curve = sm2.P256()
	default:
		return nil, fmt.Errorf("%w: curve %#04x not supported", ErrBadPublic, uint16(p.Curve))
	}
	size := (curve.Params().BitSize + 7) / 8
	if len(p.X) > size || len(p.Y) > size || len(p.X) == 0 || len(p.Y) == 0 {
		return nil, fmt.Errorf("%w: coordinates of %d and %d bytes", ErrBadPublic, len(p.X), len(p.Y))
	}
	// An uncompressed point, left-padded: both parsers check it is on
	// the curve.
	pt := make([]byte, 1+2*size)
	pt[0] = 4
	copy(pt[1+size-len(p.X):1+size], p.X)
	copy(pt[1+2*size-len(p.Y):], p.Y)
	if p.Curve == tpm2.TPMECCSM2P256 {
		k, err := sm2.NewPublicKey(pt)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadPublic, err)
		}
		return k, nil
	}
	k, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pt)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadPublic, err)
	}
	return &ecdsa.PublicKey{Curve: curve, X: new(big.Int).Set(k.X), Y: new(big.Int).Set(k.Y)}, nil
}

// akTemplate is the TPMT_PUBLIC template of an attestation key with the
// given curve and signing scheme (nameAlg SHA-256, see README.md).
func akTemplate(curve tpm2.TPMECCCurve, scheme, hash tpm2.TPMAlgID) []byte {
	p := &ECCPublic{
		NameAlg:    tpm2.TPMAlgSHA256,
		Attributes: akAttributes,
		Symmetric:  tpm2.TPMAlgNull,
		Scheme:     scheme,
		SchemeHash: hash,
		Curve:      curve,
		KDF:        tpm2.TPMAlgNull,
	}
	b, _ := p.AppendBinary(nil) // cannot fail: no field is long
	return b
}

// objectName computes the Name of an object (Part 1 §16): nameAlg followed
// by the nameAlg digest of the TPMT_PUBLIC. Only SHA-256 names are made
// here: every key this package creates has nameAlg SHA-256.
func objectName(public []byte) (tpm2.TPM2BName, error) {
	if len(public) < 4 {
		return tpm2.TPM2BName{}, fmt.Errorf("%w: %d bytes", ErrBadPublic, len(public))
	}
	if alg := tpm2.TPMAlgID(binary.BigEndian.Uint16(public[2:])); alg != tpm2.TPMAlgSHA256 {
		return tpm2.TPM2BName{}, fmt.Errorf("%w: nameAlg %#04x is not SHA-256", ErrBadPublic, uint16(alg))
	}
	d := sha256.Sum256(public)
	return tpm2.TPM2BName{Buffer: append([]byte{0, byte(tpm2.TPMAlgSHA256)}, d[:]...)}, nil
}

// goTPMPublic fills go-tpm's TPMTPublic from p as far as go-tpm can hold
// it: for an SM2 key the scheme's details (the SM3-256 hash) have no place
// in go-tpm's TPMU_ASYM_SCHEME, so the result must not be marshalled.
func goTPMPublic(p *ECCPublic) tpm2.TPMTPublic {
	scheme := tpm2.TPMTECCScheme{Scheme: p.Scheme}
	switch p.Scheme {
	case tpm2.TPMAlgECDSA:
		scheme.Details = tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSigSchemeECDSA{HashAlg: p.SchemeHash})
	case tpm2.TPMAlgECDAA:
		scheme.Details = tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDAA, &tpm2.TPMSSchemeECDAA{HashAlg: p.SchemeHash, Count: p.SchemeCount})
	}
	sym := tpm2.TPMTSymDefObject{Algorithm: p.Symmetric}
	if p.Symmetric != tpm2.TPMAlgNull {
		sym.KeyBits = tpm2.NewTPMUSymKeyBits(p.Symmetric, tpm2.TPMKeyBits(p.SymKeyBits))
		sym.Mode = tpm2.NewTPMUSymMode(p.Symmetric, p.SymMode)
	}
	return tpm2.TPMTPublic{
		Type:             tpm2.TPMAlgECC,
		NameAlg:          p.NameAlg,
		ObjectAttributes: objectAttributes(p.Attributes),
		AuthPolicy:       tpm2.TPM2BDigest{Buffer: clone(p.AuthPolicy)},
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
			Symmetric: sym,
			Scheme:    scheme,
			CurveID:   p.Curve,
			KDF:       tpm2.TPMTKDFScheme{Scheme: p.KDF},
		}),
		Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
			X: tpm2.TPM2BECCParameter{Buffer: clone(p.X)},
			Y: tpm2.TPM2BECCParameter{Buffer: clone(p.Y)},
		}),
	}
}

// objectAttributes converts TPMA_OBJECT bits (Part 2 §8.3.2) to go-tpm's
// bit field.
func objectAttributes(a uint32) tpm2.TPMAObject {
	o, err := tpm2.Unmarshal[tpm2.TPMAObject](binary.BigEndian.AppendUint32(nil, a))
	if err != nil { // four bytes always unmarshal
		return tpm2.TPMAObject{}
	}
	return *o
}

// clone copies b; nil stays nil.
func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}
