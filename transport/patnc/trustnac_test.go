package patnc

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// digest returns a digest of n bytes, each b.
func digest(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }

// trustnacSamples holds non-trivial values of every trustnac type, at and
// inside the bounds.
func trustnacSamples() []Value {
	var pcrs []PCRValue
	for _, alg := range []uint16{tpmAlgSHA1, tpmAlgSHA256, tpmAlgSHA384, tpmAlgSM3256} {
		for i := uint8(0); i <= MaxPCRIndex; i++ {
			pcrs = append(pcrs, PCRValue{Hash: alg, Index: i, Digest: digest(i+byte(alg), TPMDigestSize(alg))})
		}
	}
	return []Value{
		&TPMQuoteRequest{
			Nonce: digest(0x5a, 32),
			Selections: []PCRSelection{
				{Hash: tpmAlgSHA256, PCRs: []uint8{0, 1, 2, 3, 4, 5, 6, 7, 10}},
				{Hash: tpmAlgSHA1, PCRs: []uint8{0, 23}},
			},
			Logs: []LogRequest{{Kind: LogBoot, Offset: 0}, {Kind: LogIMA, Offset: NoLog}},
		},
		&TPMQuoteRequest{Nonce: digest(1, MinNonceLen)},
		&TPMQuoteRequest{
			Nonce: digest(2, MaxNonceLen),
			Selections: []PCRSelection{
				{Hash: tpmAlgSM3256, PCRs: []uint8{23}}, {Hash: tpmAlgSHA384}, // no PCRs: nil
			},
		},
		&TPMQuote{Attest: []byte{0xff, 'T', 'C', 'G', 0x80, 0x18}, Signature: []byte{0, 0x18, 0, 0x0b}},
		&TPMQuote{Attest: digest(0xa0, MaxAttestLen), Signature: digest(0x51, MaxSignatureLen), PCRs: pcrs[:24*4]},
		&TPMQuote{Attest: digest(7, 100), Signature: digest(8, 72), PCRs: []PCRValue{
			{Hash: tpmAlgSM3256, Index: 10, Digest: digest(3, 32)}, {Hash: tpmAlgSHA1, Index: 0, Digest: digest(4, 20)},
		}},
		NewTPMAK([]byte{0, 0x23, 0, 0x0b}),
		NewTPMEK(digest(0x11, MaxPublicLen), digest(0x30, MaxCertLen)),
		NewTPMEK([]byte{0, 1}, nil),
		&TPMCredentialChallenge{IDObject: digest(1, 68), EncSecret: digest(2, 66)},
		&TPMCredentialChallenge{IDObject: digest(1, MaxIDObjectLen), EncSecret: digest(2, MaxEncSecretLen)},
		&TPMCredentialResponse{Secret: digest(9, 32)},
		&TPMCredentialResponse{Secret: digest(9, MaxSecretLen)},
		&MeasurementLog{Kind: LogBoot, Offset: 0, Total: 3, Data: []byte{1, 2, 3}},
		&MeasurementLog{Kind: LogIMA, Offset: 100, Total: 100}, // nothing new: no data
		&MeasurementLog{Kind: LogIMA, Offset: MaxLogTotal - MaxLogPieceLen, Total: MaxLogTotal, Data: digest(0xee, MaxLogPieceLen)},
		&PSKRequest{Kind: PSKKindTPM},
		&PSKRequest{Kind: PSKKindSM2},
		&PSKGrant{Kind: PSKKindTPM, Identity: "trustnac-psk-0123456789abcdef", Expires: time.Unix(1800000000, 0).UTC(),
			IDObject: digest(1, 68), EncSecret: digest(2, 256)},
		&PSKGrant{Kind: PSKKindSM2, Identity: "trustnac-psk-fedcba9876543210", Expires: time.Unix(1800000001, 0).UTC(),
			Ciphertext: digest(3, 129)},
		&PSKGrant{Kind: PSKKindTPM, Refused: true, Reason: "the attestation key is not approved"},
		&PSKGrant{Kind: PSKKindSM2, Refused: true},
		&SM2PublicKey{PKIX: digest(4, 91)},
	}
}

func TestTrustnacRoundTrip(t *testing.T) {
	seen := map[uint32]bool{}
	for i, v := range trustnacSamples() {
		t.Run(v.AttrID().String(), func(t *testing.T) {
			seen[v.AttrID().Type] = true
			a, err := EncodeAttribute(v, true)
			if err != nil {
				t.Fatalf("sample %d: EncodeAttribute: %v", i, err)
			}
			if a.Vendor != VendorTrustnac || a.Type != v.AttrID().Type || !a.NoSkip {
				t.Fatalf("sample %d: attribute header %v noskip %v", i, a.ID(), a.NoSkip)
			}
			got, err := DecodeAttribute(a)
			if err != nil {
				t.Fatalf("sample %d: DecodeAttribute: %v", i, err)
			}
			if !reflect.DeepEqual(got, v) {
				t.Fatalf("sample %d: round trip gave %#v, want %#v", i, got, v)
			}
			// The wire form is canonical: encoding the decoded value again
			// gives the same bytes.
			again, err := got.AppendBinary(nil)
			if err != nil || !bytes.Equal(again, a.Value) {
				t.Fatalf("sample %d: re-encoded %x, %v; want %x", i, again, err, a.Value)
			}
		})
	}
	for typ := uint32(AttrTPMQuoteRequest); typ <= lastTrustnacType; typ++ {
		if !seen[typ] {
			t.Errorf("no sample for trustnac type %d", typ)
		}
	}
}

func TestTrustnacKeyKind(t *testing.T) {
	for _, tc := range []struct {
		key  *TPMKey
		typ  uint32
		isEK bool
	}{
		{NewTPMAK([]byte{1}), AttrTPMAK, false},
		{NewTPMEK([]byte{1}, []byte{2}), AttrTPMEK, true},
	} {
		a, err := EncodeAttribute(tc.key, false)
		if err != nil || a.Type != tc.typ || a.Vendor != VendorTrustnac {
			t.Fatalf("EncodeAttribute(%+v) = %v, %v", tc.key, a.ID(), err)
		}
		v, err := DecodeAttribute(a)
		if err != nil {
			t.Fatal(err)
		}
		k, ok := v.(*TPMKey)
		if !ok || k.IsEK() != tc.isEK || k.AttrID() != a.ID() {
			t.Fatalf("DecodeAttribute(%v) = %#v", a.ID(), v)
		}
		// The same bytes under the other type decode as the other kind.
		other := a
		other.Type = AttrTPMAK + AttrTPMEK - a.Type
		v, err = DecodeAttribute(other)
		if err != nil || v.(*TPMKey).IsEK() == tc.isEK || v.AttrID() != other.ID() {
			t.Fatalf("DecodeAttribute(%v) = %#v, %v", other.ID(), v, err)
		}
	}
	// A key not made by NewTPMAK/NewTPMEK has no type and does not encode.
	if _, err := EncodeAttribute(&TPMKey{Public: []byte{1}}, false); !errors.Is(err, ErrInvalidValue) {
		t.Fatalf("EncodeAttribute(kindless key) error = %v, want ErrInvalidValue", err)
	}
}

func TestTrustnacNewValue(t *testing.T) {
	for typ := uint32(AttrTPMQuoteRequest); typ <= lastTrustnacType; typ++ {
		id := AttrID{VendorTrustnac, typ}
		v := NewValue(id)
		if v == nil || !Decodable(id) || v.AttrID() != id {
			t.Errorf("trustnac type %d: NewValue = %#v, Decodable %v", typ, v, Decodable(id))
		}
	}
	for _, id := range []AttrID{{VendorTrustnac, 0}, {VendorTrustnac, lastTrustnacType + 1}, {VendorTrustnac, 0xffffffff}, {VendorTrustnac + 1, AttrTPMQuote}} {
		v, err := DecodeAttribute(Attribute{Vendor: id.Vendor, Type: id.Type, Value: []byte{1}})
		if !errors.Is(err, ErrUnknownAttribute) || v != nil || Decodable(id) {
			t.Errorf("DecodeAttribute(%v) = %v, %v; want ErrUnknownAttribute", id, v, err)
		}
	}
}

// trustnacVectors are value layouts written by hand from the figures in
// README.md, field by field.
var trustnacVectors = []struct {
	name string
	typ  uint32
	hex  string
	want Value
}{
	{"quote request", AttrTPMQuoteRequest,
		"01 08 02 02 | 0102030405060708" + // version, nonce length, 2 selections, 2 logs | nonce
			"| 000b 0000 000004ff" + // sha256: PCRs 0–7 and 10
			"| 0004 0000 00800001" + // sha1: PCRs 0 and 23
			"| 01 000000 0000000000000000" + // boot log from 0
			"| 02 000000 ffffffffffffffff", // no IMA log
		&TPMQuoteRequest{
			Nonce: []byte{1, 2, 3, 4, 5, 6, 7, 8},
			Selections: []PCRSelection{
				{Hash: 0x000b, PCRs: []uint8{0, 1, 2, 3, 4, 5, 6, 7, 10}},
				{Hash: 0x0004, PCRs: []uint8{0, 23}},
			},
			Logs: []LogRequest{{Kind: LogBoot, Offset: 0}, {Kind: LogIMA, Offset: NoLog}},
		}},
	{"quote", AttrTPMQuote,
		"01 00 0001 | 0004 0004 | ff544347 | 0018000b" + // version, reserved, 1 PCR | lengths | attest | signature
			"| 000b 07 20 | " + strings.Repeat("aa", 32), // sha256 PCR 7
		&TPMQuote{
			Attest:    []byte{0xff, 'T', 'C', 'G'},
			Signature: []byte{0x00, 0x18, 0x00, 0x0b},
			PCRs:      []PCRValue{{Hash: 0x000b, Index: 7, Digest: digest(0xaa, 32)}},
		}},
	{"endorsement key", AttrTPMEK,
		"01 00 0004 | 0002 0000 | 0001000b | 3000",
		NewTPMEK([]byte{0x00, 0x01, 0x00, 0x0b}, []byte{0x30, 0x00})},
	{"measurement log piece", AttrMeasurementLog,
		"01 02 0000 | 0000000000000100 | 0000000000000200 | 616263",
		&MeasurementLog{Kind: LogIMA, Offset: 0x100, Total: 0x200, Data: []byte("abc")}},
}

func TestTrustnacVectors(t *testing.T) {
	for _, tc := range trustnacVectors {
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

// validRequest, validQuote etc. are valid values the malformed cases below
// break one field of.
const (
	validNonce   = "0102030405060708"
	validRequest = "01 08 01 01 " + validNonce + " 000b 0000 000004ff 01 000000 0000000000000000"
)

var sha1PCR0 = "0004 00 14 " + strings.Repeat("11", 20)

func TestTrustnacMalformed(t *testing.T) {
	for _, tc := range []struct {
		name string
		typ  uint32
		hex  string
		off  uint32
	}{
		// quote request
		{"request empty", AttrTPMQuoteRequest, "", 0},
		{"request short", AttrTPMQuoteRequest, "01 08", 2},
		{"request version 0", AttrTPMQuoteRequest, "00 08 00 00" + validNonce, 0},
		{"request version 2", AttrTPMQuoteRequest, "02 08 00 00" + validNonce, 0},
		{"nonce of 7", AttrTPMQuoteRequest, "01 07 00 00 01020304050607", 1},
		{"nonce of 65", AttrTPMQuoteRequest, "01 41 00 00" + strings.Repeat("00", 65), 1},
		{"9 selections", AttrTPMQuoteRequest, "01 08 09 00" + validNonce + strings.Repeat("000b0000 00000001", 9), 2},
		{"9 log requests", AttrTPMQuoteRequest, "01 08 00 09" + validNonce + strings.Repeat("01000000 0000000000000000", 9), 3},
		{"nonce cut short", AttrTPMQuoteRequest, "01 08 00 00 01020304", 8},
		{"selection cut short", AttrTPMQuoteRequest, "01 08 01 00" + validNonce + "000b 0000", 16},
		{"log request cut short", AttrTPMQuoteRequest, "01 08 00 01" + validNonce + "01 000000", 16},
		{"request trailing byte", AttrTPMQuoteRequest, validRequest + "00", 32},
		{"unknown bank", AttrTPMQuoteRequest, "01 08 01 00" + validNonce + "000d 0000 00000001", 12},
		{"bank zero", AttrTPMQuoteRequest, "01 08 01 00" + validNonce + "0000 0000 00000001", 12},
		{"bank twice", AttrTPMQuoteRequest, "01 08 02 00" + validNonce + "000b 0000 00000001 000b 0000 00000002", 20},
		{"selection reserved", AttrTPMQuoteRequest, "01 08 01 00" + validNonce + "000b 0001 00000001", 15},
		{"PCR 24 selected", AttrTPMQuoteRequest, "01 08 01 00" + validNonce + "000b 0000 01000000", 16},
		{"PCR 31 selected", AttrTPMQuoteRequest, "01 08 01 00" + validNonce + "000b 0000 80ffffff", 16},
		{"log kind 0", AttrTPMQuoteRequest, "01 08 00 01" + validNonce + "00 000000 0000000000000000", 12},
		{"log kind 3", AttrTPMQuoteRequest, "01 08 00 01" + validNonce + "03 000000 0000000000000000", 12},
		{"log kind twice", AttrTPMQuoteRequest, "01 08 00 02" + validNonce + "02 000000 0000000000000000 02 000000 0000000000000001", 24},
		{"log request reserved", AttrTPMQuoteRequest, "01 08 00 01" + validNonce + "01 000100 0000000000000000", 14},

		// quote
		{"quote empty", AttrTPMQuote, "", 0},
		{"quote short", AttrTPMQuote, "01 00 0000 0001", 6},
		{"quote version 2", AttrTPMQuote, "02 00 0000 0001 0001 aa bb", 0},
		{"quote reserved", AttrTPMQuote, "01 80 0000 0001 0001 aa bb", 1},
		{"193 PCR values", AttrTPMQuote, "01 00 00c1 0001 0001 aa bb", 2},
		{"attest empty", AttrTPMQuote, "01 00 0000 0000 0001 bb", 4},
		{"attest 4097", AttrTPMQuote, "01 00 0000 1001 0001", 4},
		{"signature empty", AttrTPMQuote, "01 00 0000 0001 0000 aa", 6},
		{"signature 1025", AttrTPMQuote, "01 00 0000 0001 0401 aa", 6},
		{"attest past end", AttrTPMQuote, "01 00 0000 0004 0004 ff5443", 11},
		{"count beyond bytes", AttrTPMQuote, "01 00 0002 0001 0001 aa bb" + sha1PCR0, 2},
		{"unknown PCR bank", AttrTPMQuote, "01 00 0001 0001 0001 aa bb 0005 00 14" + strings.Repeat("11", 20), 10},
		{"PCR index 24", AttrTPMQuote, "01 00 0001 0001 0001 aa bb 0004 18 14" + strings.Repeat("11", 20), 12},
		{"digest length lies", AttrTPMQuote, "01 00 0001 0001 0001 aa bb 0004 00 20" + strings.Repeat("11", 32), 13},
		{"digest cut short", AttrTPMQuote, "01 00 0001 0001 0001 aa bb 000b 00 20" + strings.Repeat("11", 20), 34},
		{"PCR value twice", AttrTPMQuote, "01 00 0002 0001 0001 aa bb" + sha1PCR0 + sha1PCR0, 34},
		{"PCR header cut short", AttrTPMQuote, "01 00 0002 0001 0001 aa bb 000c 00 30" + strings.Repeat("11", 48) + "0004", 64},
		{"quote trailing byte", AttrTPMQuote, "01 00 0001 0001 0001 aa bb" + sha1PCR0 + "00", 34},

		// keys
		{"key empty", AttrTPMAK, "", 0},
		{"key short", AttrTPMEK, "01 00 0001 0000 00", 7},
		{"key version 0", AttrTPMAK, "00 00 0001 0000 0000 aa", 0},
		{"key reserved 1", AttrTPMAK, "01 01 0001 0000 0000 aa", 1},
		{"key reserved 6", AttrTPMEK, "01 00 0001 0000 0100 aa", 6},
		{"key reserved 7", AttrTPMEK, "01 00 0001 0000 0001 aa", 7},
		{"public empty", AttrTPMAK, "01 00 0000 0000 0000", 2},
		{"public 2049", AttrTPMAK, "01 00 0801 0000 0000", 2},
		{"cert 8193", AttrTPMEK, "01 00 0001 2001 0000 aa", 4},
		{"cert cut short", AttrTPMEK, "01 00 0001 0003 0000 aa 3000", 11},
		{"key trailing byte", AttrTPMAK, "01 00 0001 0000 0000 aa bb", 9},

		// credential challenge and response
		{"challenge empty", AttrTPMCredentialChallenge, "", 0},
		{"challenge version 2", AttrTPMCredentialChallenge, "02 00 0001 0001 0000 aa bb", 0},
		{"challenge reserved", AttrTPMCredentialChallenge, "01 00 0001 0001 8000 aa bb", 6},
		{"ID object empty", AttrTPMCredentialChallenge, "01 00 0000 0001 0000 bb", 2},
		{"ID object 1025", AttrTPMCredentialChallenge, "01 00 0401 0001 0000", 2},
		{"secret empty", AttrTPMCredentialChallenge, "01 00 0001 0000 0000 aa", 4},
		{"secret 1025", AttrTPMCredentialChallenge, "01 00 0001 0401 0000 aa", 4},
		{"challenge cut short", AttrTPMCredentialChallenge, "01 00 0001 0002 0000 aa bb", 10},
		{"challenge trailing", AttrTPMCredentialChallenge, "01 00 0001 0001 0000 aa bb cc", 10},
		{"response empty", AttrTPMCredentialResponse, "", 0},
		{"response version 0", AttrTPMCredentialResponse, "00 00 0001 aa", 0},
		{"response reserved", AttrTPMCredentialResponse, "01 02 0001 aa", 1},
		{"response secret empty", AttrTPMCredentialResponse, "01 00 0000", 2},
		{"response secret 129", AttrTPMCredentialResponse, "01 00 0081" + strings.Repeat("aa", 129), 2},
		{"response cut short", AttrTPMCredentialResponse, "01 00 0002 aa", 5},
		{"response trailing", AttrTPMCredentialResponse, "01 00 0001 aa bb", 5},

		// measurement log
		{"log empty", AttrMeasurementLog, "", 0},
		{"log short", AttrMeasurementLog, "01 01 0000 0000000000000000 00000000000000", 19},
		{"log version 2", AttrMeasurementLog, "02 01 0000 0000000000000000 0000000000000000", 0},
		{"log kind 0", AttrMeasurementLog, "01 00 0000 0000000000000000 0000000000000000", 1},
		{"log kind 3", AttrMeasurementLog, "01 03 0000 0000000000000000 0000000000000000", 1},
		{"log reserved", AttrMeasurementLog, "01 01 0001 0000000000000000 0000000000000000", 3},
		{"log total over 1 GiB", AttrMeasurementLog, "01 01 0000 0000000000000000 0000000040000001", 12},
		{"log offset past total", AttrMeasurementLog, "01 01 0000 0000000000000011 0000000000000010", 4},
		{"log piece past total", AttrMeasurementLog, "01 01 0000 000000000000000f 0000000000000010 aabb", 4},
		{"log offset wraps", AttrMeasurementLog, "01 01 0000 ffffffffffffffff 0000000000000010 aa", 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wire := unhex(t, tc.hex)
			_, err := DecodeAttribute(Attribute{Vendor: VendorTrustnac, Type: tc.typ, Value: wire})
			checkTrustnacParseError(t, err, tc.off, len(wire))
		})
	}
	// A piece over 1 MiB.
	big := append(unhex(t, "01 01 0000 0000000000000000 0000000040000000"), make([]byte, MaxLogPieceLen+1)...)
	_, err := DecodeAttribute(Attribute{Vendor: VendorTrustnac, Type: AttrMeasurementLog, Value: big})
	checkTrustnacParseError(t, err, logFixedLen, len(big))
}

// checkTrustnacParseError checks that err is the Invalid Parameter
// *ParseError of a trustnac value at off.
func checkTrustnacParseError(t *testing.T, err error, off uint32, n int) {
	t.Helper()
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *ParseError", err, err)
	}
	if pe.Code != ErrInvalidParameter || !errors.Is(err, ErrMalformed) || !errors.Is(err, ErrInvalidValue) {
		t.Fatalf("error %v: code %d, want Invalid Parameter wrapping ErrMalformed and ErrInvalidValue", err, pe.Code)
	}
	if pe.Offset != off {
		t.Fatalf("error %v at offset %d, want %d", err, pe.Offset, off)
	}
	if int(pe.Offset) > n {
		t.Fatalf("offset %d past the %d value bytes", pe.Offset, n)
	}
	if !strings.HasPrefix(err.Error(), "patnc: ") {
		t.Fatalf("error %q lacks the package prefix", err)
	}
}

func TestTrustnacEncodeErrors(t *testing.T) {
	nonce := digest(1, 16)
	okQuote := func(f func(*TPMQuote)) *TPMQuote {
		q := &TPMQuote{Attest: []byte{1}, Signature: []byte{2}}
		f(q)
		return q
	}
	manySel := make([]PCRSelection, MaxPCRSelections+1)
	for i := range manySel {
		manySel[i] = PCRSelection{Hash: tpmAlgSHA256}
	}
	manyPCR := make([]PCRValue, MaxPCRValues+1)
	for i := range manyPCR {
		manyPCR[i] = PCRValue{Hash: tpmAlgSHA1, Index: uint8(i % 24), Digest: digest(0, 20)}
	}
	for _, tc := range []struct {
		name string
		v    Value
	}{
		{"nonce of 7", &TPMQuoteRequest{Nonce: digest(1, 7)}},
		{"nonce of 65", &TPMQuoteRequest{Nonce: digest(1, 65)}},
		{"nil nonce", &TPMQuoteRequest{}},
		{"9 selections", &TPMQuoteRequest{Nonce: nonce, Selections: manySel}},
		{"unknown bank", &TPMQuoteRequest{Nonce: nonce, Selections: []PCRSelection{{Hash: 0x000d}}}},
		{"bank twice", &TPMQuoteRequest{Nonce: nonce, Selections: []PCRSelection{{Hash: tpmAlgSM3256}, {Hash: tpmAlgSM3256}}}},
		{"PCR 24", &TPMQuoteRequest{Nonce: nonce, Selections: []PCRSelection{{Hash: tpmAlgSHA1, PCRs: []uint8{24}}}}},
		{"PCR twice", &TPMQuoteRequest{Nonce: nonce, Selections: []PCRSelection{{Hash: tpmAlgSHA1, PCRs: []uint8{3, 3}}}}},
		{"9 log requests", &TPMQuoteRequest{Nonce: nonce, Logs: make([]LogRequest, MaxLogRequests+1)}},
		{"log kind 0", &TPMQuoteRequest{Nonce: nonce, Logs: []LogRequest{{Kind: 0}}}},
		{"log kind twice", &TPMQuoteRequest{Nonce: nonce, Logs: []LogRequest{{Kind: LogIMA}, {Kind: LogIMA, Offset: 1}}}},
		{"attest empty", okQuote(func(q *TPMQuote) { q.Attest = nil })},
		{"attest 4097", okQuote(func(q *TPMQuote) { q.Attest = digest(0, MaxAttestLen+1) })},
		{"signature empty", okQuote(func(q *TPMQuote) { q.Signature = nil })},
		{"signature 1025", okQuote(func(q *TPMQuote) { q.Signature = digest(0, MaxSignatureLen+1) })},
		{"193 PCR values", okQuote(func(q *TPMQuote) { q.PCRs = manyPCR })},
		{"PCR value twice", okQuote(func(q *TPMQuote) { q.PCRs = manyPCR[:25] })},
		{"PCR bank unknown", okQuote(func(q *TPMQuote) { q.PCRs = []PCRValue{{Hash: 0x0005, Digest: digest(0, 20)}} })},
		{"PCR index 24", okQuote(func(q *TPMQuote) { q.PCRs = []PCRValue{{Hash: tpmAlgSHA1, Index: 24, Digest: digest(0, 20)}} })},
		{"digest size", okQuote(func(q *TPMQuote) { q.PCRs = []PCRValue{{Hash: tpmAlgSHA384, Digest: digest(0, 32)}} })},
		{"sm3 digest size", okQuote(func(q *TPMQuote) { q.PCRs = []PCRValue{{Hash: tpmAlgSM3256, Digest: digest(0, 20)}} })},
		{"key without kind", &TPMKey{Public: []byte{1}}},
		{"public empty", NewTPMAK(nil)},
		{"public 2049", NewTPMEK(digest(0, MaxPublicLen+1), nil)},
		{"cert 8193", NewTPMEK([]byte{1}, digest(0, MaxCertLen+1))},
		{"ID object empty", &TPMCredentialChallenge{EncSecret: []byte{1}}},
		{"ID object 1025", &TPMCredentialChallenge{IDObject: digest(0, MaxIDObjectLen+1), EncSecret: []byte{1}}},
		{"enc secret empty", &TPMCredentialChallenge{IDObject: []byte{1}}},
		{"enc secret 1025", &TPMCredentialChallenge{IDObject: []byte{1}, EncSecret: digest(0, MaxEncSecretLen+1)}},
		{"secret empty", &TPMCredentialResponse{}},
		{"secret 129", &TPMCredentialResponse{Secret: digest(0, MaxSecretLen+1)}},
		{"log kind 3", &MeasurementLog{Kind: 3}},
		{"log piece over 1 MiB", &MeasurementLog{Kind: LogBoot, Total: MaxLogTotal, Data: make([]byte, MaxLogPieceLen+1)}},
		{"log total over 1 GiB", &MeasurementLog{Kind: LogBoot, Total: MaxLogTotal + 1}},
		{"log offset past total", &MeasurementLog{Kind: LogBoot, Offset: 5, Total: 4}},
		{"log piece past total", &MeasurementLog{Kind: LogBoot, Offset: 2, Total: 4, Data: []byte{1, 2, 3}}},
		{"log offset wraps", &MeasurementLog{Kind: LogBoot, Offset: ^uint64(0), Total: 4, Data: []byte{1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pre := []byte("prefix")
			out, err := tc.v.AppendBinary(pre)
			if !errors.Is(err, ErrInvalidValue) || !strings.HasPrefix(err.Error(), "patnc: ") {
				t.Fatalf("AppendBinary error = %v, want ErrInvalidValue", err)
			}
			if !bytes.Equal(out, pre) {
				t.Fatalf("AppendBinary changed its input to %q", out)
			}
			if _, err := EncodeAttribute(tc.v, false); !errors.Is(err, ErrInvalidValue) {
				t.Fatalf("EncodeAttribute error = %v, want ErrInvalidValue", err)
			}
		})
	}
}

func TestTrustnacCopiesInput(t *testing.T) {
	for _, v := range trustnacSamples() {
		a, err := EncodeAttribute(v, false)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeAttribute(a)
		if err != nil {
			t.Fatal(err)
		}
		for i := range a.Value {
			a.Value[i] ^= 0xff
		}
		if !reflect.DeepEqual(got, v) {
			t.Fatalf("%v: decoded value shares memory with its input", v.AttrID())
		}
	}
	// Appending to one field must not overwrite the next.
	q := trustnacSamples()[5].(*TPMQuote)
	a, _ := EncodeAttribute(q, false)
	v, _ := DecodeAttribute(a)
	got := v.(*TPMQuote)
	_ = append(got.Attest, 0xff, 0xff, 0xff)
	_ = append(got.Signature, 0xff, 0xff, 0xff)
	_ = append(got.PCRs[0].Digest, 0xff, 0xff, 0xff)
	if !reflect.DeepEqual(got, q) {
		t.Fatal("appending to a field overwrote its neighbour")
	}
}

func TestTrustnacUnmarshalKeepsValueOnError(t *testing.T) {
	for _, v := range trustnacSamples()[:13] {
		a, err := EncodeAttribute(v, false)
		if err != nil {
			t.Fatal(err)
		}
		dst := NewValue(a.ID())
		if err := dst.UnmarshalBinary(a.Value); err != nil {
			t.Fatal(err)
		}
		if err := dst.UnmarshalBinary(a.Value[:len(a.Value)-1]); err == nil {
			t.Fatalf("%v: truncated value decoded", a.ID())
		}
		if !reflect.DeepEqual(dst, v) {
			t.Fatalf("%v: failed UnmarshalBinary changed the value to %#v", a.ID(), dst)
		}
	}
}

// TestTrustnacMessage carries trustnac attributes in a PA-TNC message: they
// decode with DecodeAt, and a malformed one reports its offset from the
// message start.
func TestTrustnacMessage(t *testing.T) {
	m := &Message{ID: 3}
	samples := trustnacSamples()[:13]
	for _, v := range samples {
		if err := m.Add(v, true); err != nil {
			t.Fatal(err)
		}
	}
	wire, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseMessage(wire, 0)
	if err != nil {
		t.Fatal(err)
	}
	if errs := UnsupportedNoSkip(got, nil); errs != nil {
		t.Fatalf("UnsupportedNoSkip = %v, want none", errs)
	}
	for i, want := range samples {
		v, err := got.DecodeAt(i)
		if err != nil || !reflect.DeepEqual(v, want) {
			t.Fatalf("DecodeAt(%d) = %#v, %v", i, v, err)
		}
	}
	// Break the version octet of the last attribute's value.
	last := len(got.Attributes) - 1
	base, _ := got.ValueOffset(last)
	got.Attributes[last].Value[0] = 9
	_, err = got.DecodeAt(last)
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Offset != base {
		t.Fatalf("DecodeAt(broken) = %v, want a *ParseError at offset %d", err, base)
	}
}

// benchLog is a 256 KiB boot log piece, as a collector sends per round.
func benchLog() *MeasurementLog {
	data := make([]byte, 256<<10)
	for i := range data {
		data[i] = byte(i * 7)
	}
	return &MeasurementLog{Kind: LogBoot, Offset: 512 << 10, Total: 1 << 20, Data: data}
}

// benchQuote is a quote of PCRs 0–7 and 10 in the sha1 and sha256 banks
// with an ECDSA P-256 signature, the size tpm2_quote gives.
func benchQuote() *TPMQuote {
	q := &TPMQuote{Attest: digest(0x41, 145), Signature: digest(0x53, 72)}
	for _, alg := range []uint16{tpmAlgSHA1, tpmAlgSHA256} {
		for _, i := range []uint8{0, 1, 2, 3, 4, 5, 6, 7, 10} {
			q.PCRs = append(q.PCRs, PCRValue{Hash: alg, Index: i, Digest: digest(i, TPMDigestSize(alg))})
		}
	}
	return q
}

func benchEncode(b *testing.B, v Value) {
	wire, err := v.AppendBinary(nil)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(wire)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodeAttribute(v, true); err != nil {
			b.Fatal(err)
		}
	}
}

func benchDecode(b *testing.B, v Value) {
	a, err := EncodeAttribute(v, true)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(a.Value)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeAttribute(a); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMeasurementLog encodes and decodes a 256 KiB log piece.
func BenchmarkMeasurementLog(b *testing.B) {
	b.Run("encode", func(b *testing.B) { benchEncode(b, benchLog()) })
	b.Run("decode", func(b *testing.B) { benchDecode(b, benchLog()) })
}

// BenchmarkTPMQuote encodes and decodes a quote of 18 PCR values.
func BenchmarkTPMQuote(b *testing.B) {
	b.Run("encode", func(b *testing.B) { benchEncode(b, benchQuote()) })
	b.Run("decode", func(b *testing.B) { benchDecode(b, benchQuote()) })
}
