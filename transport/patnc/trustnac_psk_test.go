package patnc

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// pskVectors are the enrollment attributes written out by hand from the
// layouts in README.md.
var pskVectors = []struct {
	name string
	typ  uint32
	hex  string
	want Value
}{
	{"PSK request tpm", AttrPSKRequest, "01 01 0000", &PSKRequest{Kind: PSKKindTPM}},
	{"PSK request sm2", AttrPSKRequest, "01 02 0000", &PSKRequest{Kind: PSKKindSM2}},
	{"PSK grant tpm", AttrPSKGrant,
		"01 01 00 00 | 0003 0002 0001 0000 | 000000006b49d200 | 616263 | aabb | cc",
		&PSKGrant{Kind: PSKKindTPM, Identity: "abc", Expires: time.Unix(1800000000, 0).UTC(),
			IDObject: []byte{0xaa, 0xbb}, EncSecret: []byte{0xcc}}},
	{"PSK grant sm2", AttrPSKGrant,
		"01 02 00 00 | 0001 0003 0000 0000 | 0000000000000001 | 78 | 040506",
		&PSKGrant{Kind: PSKKindSM2, Identity: "x", Expires: time.Unix(1, 0).UTC(), Ciphertext: []byte{4, 5, 6}}},
	{"PSK grant refused", AttrPSKGrant,
		"01 01 80 00 | 0000 0000 0000 0002 | 0000000000000000 | 6e6f",
		&PSKGrant{Kind: PSKKindTPM, Refused: true, Reason: "no"}},
	{"SM2 public key", AttrSM2PublicKey, "01 00 0002 3059", &SM2PublicKey{PKIX: []byte{0x30, 0x59}}},
}

// pskMalformed break one field of the enrollment attributes each; off is
// where the decoder must point.
var pskMalformed = []struct {
	name string
	typ  uint32
	hex  string
	off  uint32
}{
	{"request empty", AttrPSKRequest, "", 0},
	{"request version 2", AttrPSKRequest, "02 01 0000", 0},
	{"request kind 0", AttrPSKRequest, "01 00 0000", 1},
	{"request kind 3", AttrPSKRequest, "01 03 0000", 1},
	{"request reserved", AttrPSKRequest, "01 01 0100", 2},
	{"request trailing", AttrPSKRequest, "01 01 0000 00", 4},
	{"grant short", AttrPSKGrant, "01 01 00 00 0001", 6},
	{"grant flags", AttrPSKGrant, "01 01 40 00 0000 0000 0000 0000 0000000000000000", 2},
	{"grant reserved", AttrPSKGrant, "01 01 80 01 0000 0000 0000 0000 0000000000000000", 3},
	{"grant kind 3", AttrPSKGrant, "01 03 80 00 0000 0000 0000 0000 0000000000000000", 1},
	{"grant cut short", AttrPSKGrant, "01 01 00 00 0003 0002 0001 0000 000000006b49d200 616263 aabb", 25},
	{"grant trailing", AttrPSKGrant, "01 01 00 00 0001 0001 0001 0000 000000006b49d200 61 aa bb cc", 23},
	{"grant no identity", AttrPSKGrant, "01 01 00 00 0000 0001 0001 0000 000000006b49d200 aa bb", 4},
	{"grant identity 129", AttrPSKGrant, "01 02 00 00 0081 0001 0000 0000 000000006b49d200" + strings.Repeat("61", 129) + "aa", 4},
	{"grant no expiry", AttrPSKGrant, "01 01 00 00 0001 0001 0001 0000 0000000000000000 61 aa bb", 12},
	{"grant no ID object", AttrPSKGrant, "01 01 00 00 0001 0000 0001 0000 000000006b49d200 61 bb", 6},
	{"grant no secret", AttrPSKGrant, "01 01 00 00 0001 0001 0000 0000 000000006b49d200 61 aa", 8},
	{"grant sm2 two fields", AttrPSKGrant, "01 02 00 00 0001 0001 0001 0000 000000006b49d200 61 aa bb", 8},
	{"grant sm2 no ciphertext", AttrPSKGrant, "01 02 00 00 0001 0000 0000 0000 000000006b49d200 61", 6},
	{"grant with reason", AttrPSKGrant, "01 01 00 00 0001 0001 0001 0001 000000006b49d200 61 aa bb 78", 10},
	{"refused with identity", AttrPSKGrant, "01 01 80 00 0001 0000 0000 0000 0000000000000000 61", 4},
	{"refused with expiry", AttrPSKGrant, "01 01 80 00 0000 0000 0000 0000 0000000000000001", 4},
	{"refused reason not UTF-8", AttrPSKGrant, "01 01 80 00 0000 0000 0000 0001 0000000000000000 ff", 20},
	{"sm2 key empty", AttrSM2PublicKey, "01 00 0000", 2},
	{"sm2 key reserved", AttrSM2PublicKey, "01 01 0001 30", 1},
	{"sm2 key 513", AttrSM2PublicKey, "01 00 0201", 2},
	{"sm2 key cut short", AttrSM2PublicKey, "01 00 0002 30", 5},
}

func TestPSKVectors(t *testing.T) {
	for _, tc := range pskVectors {
		t.Run(tc.name, func(t *testing.T) {
			wire := unhex(t, tc.hex)
			got, err := DecodeAttribute(Attribute{Vendor: VendorTrustnac, Type: tc.typ, Value: wire})
			if err != nil {
				t.Fatalf("DecodeAttribute: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("decoded %#v, want %#v", got, tc.want)
			}
			a, err := EncodeAttribute(tc.want, false)
			if err != nil || !bytes.Equal(a.Value, wire) {
				t.Fatalf("encoded %x, %v; want %x", a.Value, err, wire)
			}
		})
	}
}

func TestPSKMalformed(t *testing.T) {
	for _, tc := range pskMalformed {
		t.Run(tc.name, func(t *testing.T) {
			wire := unhex(t, tc.hex)
			_, err := DecodeAttribute(Attribute{Vendor: VendorTrustnac, Type: tc.typ, Value: wire})
			checkTrustnacParseError(t, err, tc.off, len(wire))
		})
	}
}

// TestPSKEncodeRefuses checks that values the layout cannot carry are not
// encoded.
func TestPSKEncodeRefuses(t *testing.T) {
	exp := time.Unix(1800000000, 0)
	for _, tc := range []struct {
		name string
		v    Value
	}{
		{"request kind 0", &PSKRequest{}},
		{"grant kind 0", &PSKGrant{Identity: "a", Expires: exp, Ciphertext: []byte{1}}},
		{"tpm grant with ciphertext", &PSKGrant{Kind: PSKKindTPM, Identity: "a", Expires: exp, IDObject: []byte{1}, EncSecret: []byte{1}, Ciphertext: []byte{1}}},
		{"sm2 grant with ID object", &PSKGrant{Kind: PSKKindSM2, Identity: "a", Expires: exp, IDObject: []byte{1}, Ciphertext: []byte{1}}},
		{"refused with key", &PSKGrant{Kind: PSKKindSM2, Refused: true, Ciphertext: []byte{1}}},
		{"refused with identity", &PSKGrant{Kind: PSKKindSM2, Refused: true, Identity: "a"}},
		{"no expiry", &PSKGrant{Kind: PSKKindSM2, Identity: "a", Ciphertext: []byte{1}}},
		{"expiry before 1970", &PSKGrant{Kind: PSKKindSM2, Identity: "a", Expires: time.Unix(-5, 0), Ciphertext: []byte{1}}},
		{"expiry not whole seconds", &PSKGrant{Kind: PSKKindSM2, Identity: "a", Expires: exp.Add(time.Millisecond), Ciphertext: []byte{1}}},
		{"identity too long", &PSKGrant{Kind: PSKKindSM2, Identity: strings.Repeat("a", MaxPSKIdentityLen+1), Expires: exp, Ciphertext: []byte{1}}},
		{"ciphertext too long", &PSKGrant{Kind: PSKKindSM2, Identity: "a", Expires: exp, Ciphertext: make([]byte, MaxPSKCiphertextLen+1)}},
		{"reason on a grant", &PSKGrant{Kind: PSKKindSM2, Identity: "a", Expires: exp, Ciphertext: []byte{1}, Reason: "x"}},
		{"reason too long", &PSKGrant{Kind: PSKKindSM2, Refused: true, Reason: strings.Repeat("x", MaxPSKReasonLen+1)}},
		{"sm2 key empty", &SM2PublicKey{}},
		{"sm2 key too long", &SM2PublicKey{PKIX: make([]byte, MaxSM2PublicKeyLen+1)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := EncodeAttribute(tc.v, false); !errors.Is(err, ErrInvalidValue) {
				t.Fatalf("EncodeAttribute(%#v) = %v, want ErrInvalidValue", tc.v, err)
			}
		})
	}
}

// TestPSKGrantLocalExpiry: an expiry in another zone encodes the same
// instant and decodes in UTC.
func TestPSKGrantLocalExpiry(t *testing.T) {
	exp := time.Unix(1800000000, 0).In(time.FixedZone("CST", 8*3600))
	g := &PSKGrant{Kind: PSKKindSM2, Identity: "a", Expires: exp, Ciphertext: []byte{1}}
	a, err := EncodeAttribute(g, false)
	if err != nil {
		t.Fatal(err)
	}
	v, err := DecodeAttribute(a)
	if err != nil {
		t.Fatal(err)
	}
	if got := v.(*PSKGrant).Expires; !got.Equal(exp) || got.Location() != time.UTC {
		t.Fatalf("expiry %v, want %v in UTC", got, exp)
	}
}
