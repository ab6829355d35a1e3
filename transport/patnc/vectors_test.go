package patnc

import (
	"bytes"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"
	"time"
)

// unhex decodes a hex vector written with spaces and "|" between fields.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := decodeHex(s)
	if err != nil {
		t.Fatalf("bad hex vector %q: %v", s, err)
	}
	return b
}

// mustHex is unhex for package-level tables.
func mustHex(s string) []byte {
	b, err := decodeHex(s)
	if err != nil {
		panic(err)
	}
	return b
}

func decodeHex(s string) ([]byte, error) {
	s = strings.NewReplacer(" ", "", "|", "", "\n", "", "\t", "").Replace(s)
	return hex.DecodeString(s)
}

// attrVectors are value layouts written by hand from the figures of RFC
// 5792 §4.2.1–§4.2.12, field by field.
var attrVectors = []struct {
	name string
	typ  uint32
	hex  string
	want Value
}{
	{"attribute request §4.2.1", AttrAttributeRequest,
		"00 000000 00000002 | 00 000000 00000003 | 00 005597 00000001",
		&AttributeRequest{{0, AttrProductInformation}, {0, AttrNumericVersion}, {VendorTCG, 1}}},
	{"product information §4.2.2", AttrProductInformation,
		"000009 | 0001 | 494f53", // vendor 9, product 1, "IOS"
		&ProductInformation{VendorID: 9, ProductID: 1, Name: "IOS"}},
	{"product information, empty name", AttrProductInformation,
		"000000 | 0000",
		&ProductInformation{}},
	{"numeric version §4.2.3", AttrNumericVersion,
		"0000000c | 00000004 | 000004d2 | 0002 | 0001",
		&NumericVersion{Major: 12, Minor: 4, Build: 1234, ServicePackMajor: 2, ServicePackMinor: 1}},
	{"string version §4.2.4", AttrStringVersion,
		"03 312e30 | 03 623432 | 00", // "1.0", "b42", ""
		&StringVersion{Version: "1.0", Build: "b42"}},
	{"operational status §4.2.5", AttrOperationalStatus,
		// status 3, result 1, reserved, "2010-03-01T12:34:56Z"
		"03 | 01 | 0000 | 32303130 2d 3033 2d 3031 54 3132 3a 3334 3a 3536 5a",
		&OperationalStatus{Status: StatusOperational, Result: ResultSuccess,
			LastUse: time.Date(2010, 3, 1, 12, 34, 56, 0, time.UTC)}},
	{"operational status, never used", AttrOperationalStatus,
		"01 | 00 | 0000 | 30303030 2d 3030 2d 3030 54 3030 3a 3030 3a 3030 5a",
		&OperationalStatus{Status: StatusNotInstalled}},
	{"port filter §4.2.6", AttrPortFilter,
		"01 06 0016 | 00 11 0035", // TCP 22 blocked, UDP 53 allowed
		&PortFilter{{Blocked: true, Protocol: 6, Port: 22}, {Protocol: 17, Port: 53}}},
	{"installed packages §4.2.7", AttrInstalledPackages,
		"0000 | 0002 | 04 62617368 | 03 352e32 | 04 7a6c6962 | 03 312e33",
		&InstalledPackages{{"bash", "5.2"}, {"zlib", "1.3"}}},
	{"installed packages, none", AttrInstalledPackages,
		"0000 | 0000",
		new(InstalledPackages)},
	{"PA-TNC error invalid parameter §4.2.8", AttrPATNCError,
		"00 000000 | 00000000 | 01000000 00000007 | 0000000c",
		&PAError{Code: ErrInvalidParameter, Info: mustHex("0100000000000007 0000000c")}},
	{"PA-TNC error version not supported §4.2.8", AttrPATNCError,
		"00 000000 | 00000001 | 02000000 00000007 | 01 01 0000",
		&PAError{Code: ErrVersionNotSupported, Info: mustHex("0200000000000007 01010000")}},
	{"PA-TNC error attribute type not supported §4.2.8", AttrPATNCError,
		"00 000000 | 00000002 | 01000000 00000007 | 80 005597 00000009",
		&PAError{Code: ErrAttributeTypeNotSupported, Info: mustHex("0100000000000007 80005597 00000009")}},
	{"PA-TNC error, vendor code", AttrPATNCError,
		"00 005597 | 00000007 | cafe",
		&PAError{Vendor: VendorTCG, Code: 7, Info: []byte{0xca, 0xfe}}},
	{"assessment result §4.2.9", AttrAssessmentResult,
		"00000002",
		ptr(AssessmentResult(AssessmentMajor))},
	{"remediation URI §4.2.10", AttrRemediationInstructions,
		"00 000000 | 00000001 | 68747470733a2f2f6669782e6578616d706c652f", // https://fix.example/
		&RemediationInstructions{Type: RemediationURI, URI: "https://fix.example/"}},
	{"remediation string §4.2.10", AttrRemediationInstructions,
		"00 000000 | 00000002 | 0000000b | 5570646174652062617368 | 02 | 656e", // "Update bash", "en"
		&RemediationInstructions{Type: RemediationString, Text: "Update bash", Lang: "en"}},
	{"remediation string, no language", AttrRemediationInstructions,
		"00 000000 | 00000002 | 00000002 | c3a9 | 00", // "é"
		&RemediationInstructions{Type: RemediationString, Text: "é"}},
	{"remediation, vendor parameters", AttrRemediationInstructions,
		"00 005597 | 00000003 | 010203",
		&RemediationInstructions{Vendor: VendorTCG, Type: 3, Raw: []byte{1, 2, 3}}},
	{"forwarding enabled §4.2.11", AttrForwardingEnabled,
		"00000002",
		ptr(ForwardingEnabled(ForwardingUnknown))},
	{"factory default password enabled §4.2.12", AttrFactoryDefaultPasswordEnabled,
		"00000001",
		ptr(FactoryDefaultPasswordEnabled(1))},
}

func ptr[T any](v T) *T { return &v }

func TestAttributeVectors(t *testing.T) {
	for _, tc := range attrVectors {
		t.Run(tc.name, func(t *testing.T) {
			wire := unhex(t, tc.hex)
			if got := tc.want.AttrID(); got != (AttrID{VendorIETF, tc.typ}) {
				t.Fatalf("AttrID() = %v, want 0/%d", got, tc.typ)
			}
			got, err := DecodeAttribute(Attribute{Type: tc.typ, Value: wire})
			if err != nil {
				t.Fatalf("DecodeAttribute: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("decoded %#v, want %#v", got, tc.want)
			}
			a, err := EncodeAttribute(tc.want, true)
			if err != nil {
				t.Fatalf("EncodeAttribute: %v", err)
			}
			if !bytes.Equal(a.Value, wire) && !(len(a.Value) == 0 && len(wire) == 0) {
				t.Fatalf("encoded %x, want %x", a.Value, wire)
			}
			if !a.NoSkip || a.Vendor != VendorIETF || a.Type != tc.typ {
				t.Fatalf("attribute header %+v", a)
			}
		})
	}
}

// The message of RFC 5792 §4.1 and §4.2: version 1, reserved, message ID,
// then attributes with flags, vendor, type and a length counting the
// 12-byte header.
const messageVector = `
01 000000 0000002a
80 000000 00000009 00000010 | 00000002
00 000000 0000000b 00000010 | 00000001
00 005597 00000001 0000000c`

func TestMessageVector(t *testing.T) {
	wire := unhex(t, messageVector)
	want := &Message{ID: 42, Attributes: []Attribute{
		{NoSkip: true, Type: AttrAssessmentResult, Value: []byte{0, 0, 0, 2}},
		{Type: AttrForwardingEnabled, Value: []byte{0, 0, 0, 1}},
		{Vendor: VendorTCG, Type: 1},
	}}
	got, err := ParseMessage(wire, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("parsed %+v, want %+v", got, want)
	}
	out, err := want.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, wire) {
		t.Fatalf("marshalled %x, want %x", out, wire)
	}
	if h := want.Header(); !bytes.Equal(h, wire[:HeaderLen]) {
		t.Fatalf("Header() = %x, want %x", h, wire[:HeaderLen])
	}
	// Reserved bits of the header and the attribute flags are ignored on
	// receipt (RFC 5792 §4.1, §4.2).
	dirty := bytes.Clone(wire)
	dirty[1], dirty[3] = 0xff, 0x01
	dirty[8] |= 0x7f
	got, err = ParseMessage(dirty, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("with reserved bits set: parsed %+v, want %+v", got, want)
	}
}
