package patnc

import (
	"encoding/binary"
	"slices"
	"time"
	"unicode/utf8"
)

// trustnac attributes of SM-channel enrollment (vendor VendorTrustnac).
// A PSK for the SM-DTLS channel (DESIGN.md, "The SM channel") is asked for
// with a PSK Request and delivered in a PSK Grant: wrapped by
// TPM2_MakeCredential to the endpoint's EK and AK name in messages of PA
// subtype SubtypeTrustnacTPM, or SM2-encrypted (GB/T 32918.4) to a public
// key the admin registered, sent in an SM2 Public Key attribute, in
// messages of PA subtype PASubtypeTrustnacSMKey. The layouts are in
// README.md.
const (
	AttrPSKRequest   = 8  // collector → verifier
	AttrPSKGrant     = 9  // verifier → collector
	AttrSM2PublicKey = 10 // collector → verifier
)

// lastTrustnacType is the highest trustnac attribute type defined.
const lastTrustnacType = AttrSM2PublicKey

// PASubtypeTrustnacSMKey is the PA subtype number, under vendor
// VendorTrustnac, of SM2 key-pair enrollment (PSKs for endpoints without a
// TPM). Subtype 1 is the TPM attestation subtype (pbtnc.SubtypeTrustnacTPM).
const PASubtypeTrustnacSMKey = 2

// PSK kinds (PSKRequest.Kind, PSKGrant.Kind): how the PSK is wrapped.
const (
	PSKKindTPM = 1 // TPM2_MakeCredential to the EK and the AK's name
	PSKKindSM2 = 2 // SM2 public key encryption, C1C3C2 (GB/T 32918.4)
)

// ChannelBindingLabel is the RFC 5705 exporter label both ends of an
// SM-DTLS (or TLS) channel use to derive the value a TPM quote is bound to,
// ChannelBindingLen bytes long with no context. With a binding, the quote's
// qualifying data (TPMS_ATTEST extraData) is H(nonce || binding) with the
// hash of the AK's signing scheme, instead of the nonce.
const (
	ChannelBindingLabel = "EXPORTER-trustnac-quote-binding"
	ChannelBindingLen   = 32
)

// Bounds of the enrollment attributes.
const (
	MaxPSKIdentityLen   = 128  // PSKGrant.Identity (RFC 4279 §5.3 allows 2^16-1; trustnac's are 29)
	MaxPSKCiphertextLen = 512  // PSKGrant.Ciphertext: an SM2 ciphertext of a 32-byte key is 129 bytes
	MaxPSKReasonLen     = 1024 // PSKGrant.Reason
	MaxSM2PublicKeyLen  = 512  // SM2PublicKey.PKIX: an SM2 SubjectPublicKeyInfo is 91 bytes
)

// PSKRequest asks the verifier for a PSK of the SM channel of Kind
// (PSKKindTPM or PSKKindSM2).
type PSKRequest struct {
	Kind uint8
}

// PSKGrant answers a PSK Request. A granted PSK carries its identity, its
// expiry (whole seconds) and the key wrapped as Kind says: IDObject and
// EncSecret are the TPM2B_ID_OBJECT and TPM2B_ENCRYPTED_SECRET contents of
// TPM2_MakeCredential (PSKKindTPM; the key is the credential secret), or
// Ciphertext is the SM2 ciphertext of the key in C1C3C2 order (PSKKindSM2).
// A refused grant has Refused set, a Reason for the endpoint, and nothing
// else.
type PSKGrant struct {
	Kind                uint8
	Refused             bool
	Identity            string
	Expires             time.Time // UTC, whole seconds; zero when refused
	IDObject, EncSecret []byte    // PSKKindTPM
	Ciphertext          []byte    // PSKKindSM2
	Reason              string    // when refused
}

// SM2PublicKey is an endpoint's SM2 public key as a DER
// SubjectPublicKeyInfo (GB/T 32918 key with the id-ecPublicKey algorithm
// and the SM2 curve, OID 1.2.156.10197.1.301).
type SM2PublicKey struct {
	PKIX []byte
}

func checkPSKKind(k uint8) bool { return k == PSKKindTPM || k == PSKKindSM2 }

// ---- PSK Request (trustnac type 8) ----

const pskRequestLen = 4 // version 8, kind 8, reserved 16

// AttrID returns trustnac type AttrPSKRequest.
func (PSKRequest) AttrID() AttrID { return trustnac(AttrPSKRequest) }

// AppendBinary appends the request: version 1, the kind 8, reserved 16.
// See README.md.
func (r PSKRequest) AppendBinary(b []byte) ([]byte, error) {
	if !checkPSKKind(r.Kind) {
		return b, invalid("PSK request kind %d is not defined (1–2)", r.Kind)
	}
	return append(b, trustnacVersion, r.Kind, 0, 0), nil
}

// UnmarshalBinary decodes a PSK request.
func (r *PSKRequest) UnmarshalBinary(b []byte) error {
	const what = "PSK request"
	if err := checkHeader(b, pskRequestLen, what); err != nil {
		return err
	}
	if !checkPSKKind(b[1]) {
		return badValue(1, "%s kind %d is not defined (1–2)", what, b[1])
	}
	if err := checkZero(b, 2, 2, what); err != nil {
		return err
	}
	if err := checkEnd(b, pskRequestLen, what); err != nil {
		return err
	}
	*r = PSKRequest{Kind: b[1]}
	return nil
}

// ---- PSK Grant (trustnac type 9) ----

// version 8, kind 8, flags 8 (0x80 refused), reserved 8, identity length
// 16, first wrapped field length 16, second wrapped field length 16,
// reason length 16, expires 64.
const pskGrantFixedLen = 20

const pskGrantRefused = 0x80

// AttrID returns trustnac type AttrPSKGrant.
func (PSKGrant) AttrID() AttrID { return trustnac(AttrPSKGrant) }

// wrapped returns the two wrapped-key fields of the grant's kind.
func (g PSKGrant) wrapped() (w1, w2 []byte) {
	if g.Kind == PSKKindTPM {
		return g.IDObject, g.EncSecret
	}
	return g.Ciphertext, nil
}

// grantCheck checks a grant's fields (those of the wire) and tells which
// breaks the layout: 0 none, else the offset of the field's length.
func grantCheck(kind uint8, refused bool, idl, w1l, w2l, rl int, expires uint64, reason []byte) (int, string) {
	switch {
	case !checkPSKKind(kind):
		return 1, "PSK grant kind is not defined (1–2)"
	case refused && (idl != 0 || w1l != 0 || w2l != 0 || expires != 0):
		return 4, "a refused PSK grant carries no identity, key or expiry"
	case refused && rl > MaxPSKReasonLen:
		return 10, "PSK grant reason too long"
	case refused && !utf8.Valid(reason):
		return pskGrantFixedLen, "PSK grant reason is not UTF-8"
	case refused:
		return 0, ""
	case rl != 0:
		return 10, "a granted PSK carries no reason"
	case idl < 1 || idl > MaxPSKIdentityLen:
		return 4, "PSK identity length out of range"
	case expires == 0 || expires > 1<<40:
		return 12, "PSK grant expiry out of range"
	case kind == PSKKindTPM && (w1l < 1 || w1l > MaxIDObjectLen):
		return 6, "PSK credential ID object length out of range"
	case kind == PSKKindTPM && (w2l < 1 || w2l > MaxEncSecretLen):
		return 8, "PSK credential encrypted secret length out of range"
	case kind == PSKKindSM2 && (w1l < 1 || w1l > MaxPSKCiphertextLen):
		return 6, "PSK ciphertext length out of range"
	case kind == PSKKindSM2 && w2l != 0:
		return 8, "an SM2 PSK grant has one wrapped field"
	}
	return 0, ""
}

// AppendBinary appends the grant: version 1, the kind 8, flags 8 (0x80
// refused), reserved 8, the identity length 16, the wrapped key field
// lengths 16 and 16 (ID object and encrypted secret for PSKKindTPM, the
// ciphertext and 0 for PSKKindSM2), the reason length 16, the expiry in
// seconds since 1970 (64; 0 when refused), then identity, wrapped fields
// and reason. See README.md.
func (g PSKGrant) AppendBinary(b []byte) ([]byte, error) {
	w1, w2 := g.wrapped()
	if !g.Refused && g.Kind == PSKKindTPM && len(g.Ciphertext) > 0 ||
		!g.Refused && g.Kind == PSKKindSM2 && (len(g.IDObject) > 0 || len(g.EncSecret) > 0) {
		return b, invalid("PSK grant of kind %d carries another kind's wrapped key", g.Kind)
	}
	if g.Refused && (len(g.IDObject) > 0 || len(g.EncSecret) > 0 || len(g.Ciphertext) > 0) {
		return b, invalid("a refused PSK grant carries no key")
	}
	var expires uint64
	if !g.Expires.IsZero() {
		if g.Expires.Unix() <= 0 {
			return b, invalid("PSK grant expiry %v before 1970", g.Expires)
		}
		expires = uint64(g.Expires.Unix())
	}
	if g.Expires.Nanosecond() != 0 {
		return b, invalid("PSK grant expiry %v is not whole seconds", g.Expires)
	}
	if f, msg := grantCheck(g.Kind, g.Refused, len(g.Identity), len(w1), len(w2), len(g.Reason), expires, []byte(g.Reason)); f != 0 {
		return b, invalid("%s", msg)
	}
	var flags byte
	if g.Refused {
		flags = pskGrantRefused
	}
	b = slices.Grow(b, pskGrantFixedLen+len(g.Identity)+len(w1)+len(w2)+len(g.Reason))
	b = append(b, trustnacVersion, g.Kind, flags, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(g.Identity)))
	b = binary.BigEndian.AppendUint16(b, uint16(len(w1)))
	b = binary.BigEndian.AppendUint16(b, uint16(len(w2)))
	b = binary.BigEndian.AppendUint16(b, uint16(len(g.Reason)))
	b = binary.BigEndian.AppendUint64(b, expires)
	b = append(b, g.Identity...)
	b = append(b, w1...)
	b = append(b, w2...)
	return append(b, g.Reason...), nil
}

// UnmarshalBinary decodes a PSK grant. Expires comes out in UTC; empty
// fields decode to nil or "".
func (g *PSKGrant) UnmarshalBinary(b []byte) error {
	const what = "PSK grant"
	if err := checkHeader(b, pskGrantFixedLen, what); err != nil {
		return err
	}
	if b[2]&^pskGrantRefused != 0 {
		return badValue(2, "%s flags %#02x: undefined bits set", what, b[2])
	}
	if err := checkZero(b, 3, 1, what); err != nil {
		return err
	}
	kind, refused := b[1], b[2]&pskGrantRefused != 0
	idl := int(binary.BigEndian.Uint16(b[4:]))
	w1l := int(binary.BigEndian.Uint16(b[6:]))
	w2l := int(binary.BigEndian.Uint16(b[8:]))
	rl := int(binary.BigEndian.Uint16(b[10:]))
	expires := binary.BigEndian.Uint64(b[12:])
	if err := checkEnd(b, pskGrantFixedLen+idl+w1l+w2l+rl, what); err != nil {
		return err
	}
	off := pskGrantFixedLen
	id := b[off : off+idl]
	off += idl
	w1 := b[off : off+w1l]
	off += w1l
	w2 := b[off : off+w2l]
	off += w2l
	reason := b[off : off+rl]
	if f, msg := grantCheck(kind, refused, idl, w1l, w2l, rl, expires, reason); f != 0 {
		return badValue(f, "%s", msg)
	}
	out := PSKGrant{Kind: kind, Refused: refused, Identity: string(id), Reason: string(reason)}
	if expires != 0 {
		out.Expires = time.Unix(int64(expires), 0).UTC()
	}
	a := newArena(w1l + w2l)
	if kind == PSKKindTPM {
		out.IDObject, out.EncSecret = a.copy(w1), a.copy(w2)
	} else {
		out.Ciphertext = a.copy(w1)
	}
	*g = out
	return nil
}

// ---- SM2 Public Key (trustnac type 10) ----

const sm2KeyFixedLen = 4 // version 8, reserved 8, key length 16

// AttrID returns trustnac type AttrSM2PublicKey.
func (SM2PublicKey) AttrID() AttrID { return trustnac(AttrSM2PublicKey) }

// AppendBinary appends the key: version 1, reserved 8, the DER length 16
// and the SubjectPublicKeyInfo. The DER is not parsed here. See README.md.
func (k SM2PublicKey) AppendBinary(b []byte) ([]byte, error) {
	if n := len(k.PKIX); n < 1 || n > MaxSM2PublicKeyLen {
		return b, invalid("SM2 public key of %d bytes, want 1–%d", n, MaxSM2PublicKeyLen)
	}
	b = append(b, trustnacVersion, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(k.PKIX)))
	return append(b, k.PKIX...), nil
}

// UnmarshalBinary decodes an SM2 public key attribute.
func (k *SM2PublicKey) UnmarshalBinary(b []byte) error {
	const what = "SM2 public key"
	if err := checkHeader(b, sm2KeyFixedLen, what); err != nil {
		return err
	}
	if err := checkZero(b, 1, 1, what); err != nil {
		return err
	}
	n := int(binary.BigEndian.Uint16(b[2:]))
	if n < 1 || n > MaxSM2PublicKeyLen {
		return badValue(2, "%s length %d, want 1–%d", what, n, MaxSM2PublicKeyLen)
	}
	if err := checkEnd(b, sm2KeyFixedLen+n, what); err != nil {
		return err
	}
	*k = SM2PublicKey{PKIX: append([]byte(nil), b[sm2KeyFixedLen:]...)}
	return nil
}
