package patnc

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// sampleValues holds one non-trivial value of every IETF type 1–12.
func sampleValues() []Value {
	return []Value{
		&AttributeRequest{{0, AttrProductInformation}, {0, AttrInstalledPackages}, {VendorTCG, 0x00000011}},
		&ProductInformation{VendorID: 0x00ffff, ProductID: 0xbeef, Name: "Ubuntu Linux ünicode"},
		&NumericVersion{Major: 0xffffffff, Minor: 1, Build: 2, ServicePackMajor: 3, ServicePackMinor: 0xffff},
		&StringVersion{Version: strings.Repeat("v", 255), Build: "", Config: "x86_64"},
		&OperationalStatus{Status: StatusNotOperational, Result: ResultSuccessErrors,
			LastUse: time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)},
		&OperationalStatus{Status: StatusUnknown, Result: ResultUnknown},
		&PortFilter{{Blocked: true, Protocol: 6, Port: 0}, {Protocol: 17, Port: 65535}, {Blocked: true, Protocol: 132, Port: 9}},
		&InstalledPackages{{"a", ""}, {"", "b"}, {strings.Repeat("n", 255), strings.Repeat("v", 255)}, {"日本", "1:2.3-4"}},
		NewInvalidParameterError([]byte{1, 0, 0, 0, 0, 0, 0, 9}, 20),
		NewVersionNotSupportedError([]byte{2, 0, 0, 0, 0, 0, 0, 9}, 1, 1),
		NewAttributeTypeNotSupportedError([]byte{1, 0, 0, 0, 0, 0, 0, 9}, Attribute{NoSkip: true, Vendor: VendorTCG, Type: 77}),
		&PAError{Vendor: 0x123456, Code: 99},
		ptr(AssessmentResult(AssessmentDontKnow)),
		&RemediationInstructions{Type: RemediationURI, URI: "https://remediate.example/os?id=1"},
		&RemediationInstructions{Type: RemediationString, Text: "请更新", Lang: "zh-CN"},
		&RemediationInstructions{Type: 7, Raw: []byte("ietf type without a layout")},
		&RemediationInstructions{Vendor: 1, Type: RemediationURI},
		ptr(ForwardingEnabled(ForwardingIsEnabled)),
		ptr(FactoryDefaultPasswordEnabled(0)),
	}
}

func TestRoundTripValues(t *testing.T) {
	seen := map[uint32]bool{}
	for _, v := range sampleValues() {
		t.Run(v.AttrID().String(), func(t *testing.T) {
			seen[v.AttrID().Type] = true
			a, err := EncodeAttribute(v, false)
			if err != nil {
				t.Fatalf("EncodeAttribute(%#v): %v", v, err)
			}
			got, err := DecodeAttribute(a)
			if err != nil {
				t.Fatalf("DecodeAttribute: %v", err)
			}
			if !reflect.DeepEqual(got, v) {
				t.Fatalf("round trip gave %#v, want %#v", got, v)
			}
		})
	}
	for typ := uint32(AttrAttributeRequest); typ <= AttrFactoryDefaultPasswordEnabled; typ++ {
		if !seen[typ] {
			t.Errorf("no sample for IETF type %d", typ)
		}
	}
}

func TestRoundTripMessage(t *testing.T) {
	m := &Message{ID: 0xdeadbeef}
	for i, v := range sampleValues() {
		if err := m.Add(v, i%2 == 0); err != nil {
			t.Fatalf("Add(%#v): %v", v, err)
		}
	}
	m.Attributes = append(m.Attributes, Attribute{NoSkip: true, Vendor: VendorTCG, Type: 0x42, Value: []byte{9}})
	wire, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var got Message
	if err := got.UnmarshalBinary(wire); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&got, m) {
		t.Fatalf("round trip gave %+v, want %+v", got, m)
	}
	// AppendBinary appends after what is there.
	pre := []byte("prefix")
	out, err := m.AppendBinary(pre)
	if err != nil || !bytes.Equal(out[:len(pre)], pre) || !bytes.Equal(out[len(pre):], wire) {
		t.Fatalf("AppendBinary = %x, %v", out, err)
	}
	// Values are copied out of the input.
	for i := range wire {
		wire[i] = 0xee
	}
	if !reflect.DeepEqual(&got, m) {
		t.Fatal("parsed message shares memory with its input")
	}
	// Appending to one value must not overwrite the next.
	first := got.Attributes[0].Value
	_ = append(first, 0xff, 0xff, 0xff, 0xff)
	if !reflect.DeepEqual(&got, m) {
		t.Fatal("appending to a value overwrote its neighbour")
	}
	for i := range got.Attributes {
		v, err := got.DecodeAt(i)
		if i == len(got.Attributes)-1 {
			if !errors.Is(err, ErrUnknownAttribute) {
				t.Fatalf("DecodeAt(TCG) error = %v, want ErrUnknownAttribute", err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(v, sampleValues()[i]) {
			t.Fatalf("DecodeAt(%d) = %#v, %v", i, v, err)
		}
	}
}

func TestEmptyMessage(t *testing.T) {
	wire := mustHex("01000000 00000001")
	m, err := ParseMessage(wire, 0)
	if err != nil || m.ID != 1 || m.Attributes != nil {
		t.Fatalf("ParseMessage = %+v, %v", m, err)
	}
	out, err := m.MarshalBinary()
	if err != nil || !bytes.Equal(out, wire) {
		t.Fatalf("MarshalBinary = %x, %v", out, err)
	}
}

func TestMalformedMessage(t *testing.T) {
	const hdr = "01000000 00000007"
	attr := "00000000 00000009 00000010 00000000" // assessment result, 16 bytes
	tests := []struct {
		name     string
		hex      string
		maxAttrs int
		code     uint32
		offset   uint32
		is       error
	}{
		{"empty", "", 0, ErrInvalidParameter, 0, ErrMalformed},
		{"short header", "01000000 000000", 0, ErrInvalidParameter, 0, ErrMalformed},
		{"version 2", "02000000 00000007", 0, ErrVersionNotSupported, 0, ErrUnsupportedVersion},
		{"version 0", "00000000 00000007" + attr, 0, ErrVersionNotSupported, 0, ErrUnsupportedVersion},
		{"truncated attribute header", hdr + "00000000 00000009 000000", 0, ErrInvalidParameter, 8, ErrMalformed},
		{"attribute length below 12", hdr + "00000000 00000009 0000000b 00", 0, ErrInvalidParameter, 16, ErrMalformed},
		{"attribute length 0", hdr + "00000000 00000009 00000000", 0, ErrInvalidParameter, 16, ErrMalformed},
		{"attribute length past end", hdr + "00000000 00000009 00000011 00000000", 0, ErrInvalidParameter, 16, ErrMalformed},
		{"attribute length 2^32-1", hdr + "00000000 00000009 ffffffff 00000000", 0, ErrInvalidParameter, 16, ErrMalformed},
		{"trailing bytes", hdr + attr + "0000", 0, ErrInvalidParameter, 24, ErrMalformed},
		{"second attribute lies", hdr + attr + "00000000 00000009 00000020 00000000", 0, ErrInvalidParameter, 32, ErrMalformed},
		{"too many attributes", hdr + attr + attr + attr, 2, ErrInvalidParameter, 40, ErrTooManyAttributes},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wire := mustHex(tc.hex)
			m, err := ParseMessage(wire, tc.maxAttrs)
			if err == nil {
				t.Fatalf("ParseMessage accepted %x as %+v", wire, m)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v (%T) is not a *ParseError", err, err)
			}
			if pe.Code != tc.code || pe.Offset != tc.offset {
				t.Fatalf("ParseError code %d offset %d, want %d %d (%v)", pe.Code, pe.Offset, tc.code, tc.offset, err)
			}
			if !errors.Is(err, tc.is) {
				t.Fatalf("error %v does not wrap %v", err, tc.is)
			}
			if !strings.HasPrefix(err.Error(), "patnc: ") {
				t.Fatalf("error %q lacks the package prefix", err)
			}
			if tc.maxAttrs == 0 {
				var m Message
				if err2 := m.UnmarshalBinary(wire); err2 == nil || err2.Error() != err.Error() {
					t.Fatalf("UnmarshalBinary error %v, ParseMessage error %v", err2, err)
				}
			}
		})
	}
}

func TestMaxAttributesDefault(t *testing.T) {
	m := &Message{}
	for range DefaultMaxAttributes {
		m.Attributes = append(m.Attributes, Attribute{Type: AttrTesting})
	}
	wire, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseMessage(wire, 0); err != nil {
		t.Fatalf("%d attributes: %v", DefaultMaxAttributes, err)
	}
	wire = append(wire, mustHex("00000000 00000000 0000000c")...)
	if _, err := ParseMessage(wire, 0); !errors.Is(err, ErrTooManyAttributes) {
		t.Fatalf("%d attributes: error %v, want ErrTooManyAttributes", DefaultMaxAttributes+1, err)
	}
	if _, err := ParseMessage(wire, DefaultMaxAttributes+1); err != nil {
		t.Fatalf("raised cap: %v", err)
	}
}

func TestMalformedValues(t *testing.T) {
	lastUse := func(s string) string { return "03 01 0000" + bytesHex(s) }
	tests := []struct {
		name   string
		typ    uint32
		hex    string
		offset uint32
	}{
		{"attribute request 7 bytes", AttrAttributeRequest, "00000000 000002", 0},
		{"attribute request 9 bytes", AttrAttributeRequest, "00000000 00000002 00", 8},
		{"product information 4 bytes", AttrProductInformation, "00000000", 0},
		{"product name not UTF-8", AttrProductInformation, "000000 0000 41ff", 5},
		{"numeric version 15 bytes", AttrNumericVersion, strings.Repeat("00", 15), 0},
		{"numeric version 17 bytes", AttrNumericVersion, strings.Repeat("00", 17), 0},
		{"string version empty", AttrStringVersion, "", 0},
		{"string version length lies", AttrStringVersion, "05 31", 0},
		{"string version third missing", AttrStringVersion, "00 00", 2},
		{"string version trailing", AttrStringVersion, "00 00 00 00", 3},
		{"string version not UTF-8", AttrStringVersion, "01 ff 00 00", 1},
		{"string version overlong UTF-8", AttrStringVersion, "00 02 c0af 00", 2},
		{"operational status 23 bytes", AttrOperationalStatus, strings.Repeat("00", 23), 0},
		{"operational status 4", AttrOperationalStatus, "04 01 0000" + bytesHex(lastUseZero), 0},
		{"operational result 4", AttrOperationalStatus, "03 04 0000" + bytesHex(lastUseZero), 1},
		{"last use month 13", AttrOperationalStatus, lastUse("2010-13-01T00:00:00Z"), 9},
		{"last use 30 February", AttrOperationalStatus, lastUse("2010-02-30T00:00:00Z"), 12},
		{"last use 29 February 2100", AttrOperationalStatus, lastUse("2100-02-29T00:00:00Z"), 12},
		{"last use hour 24", AttrOperationalStatus, lastUse("2010-01-01T24:00:00Z"), 15},
		{"last use minute 60", AttrOperationalStatus, lastUse("2010-01-01T23:60:00Z"), 18},
		{"last use leap second", AttrOperationalStatus, lastUse("2016-12-31T23:59:60Z"), 21},
		{"last use year 0", AttrOperationalStatus, lastUse("0000-01-01T00:00:00Z"), 4},
		{"last use slashes", AttrOperationalStatus, lastUse("2010/01/01T00:00:00Z"), 8},
		{"last use lower-case z", AttrOperationalStatus, lastUse("2010-01-01T00:00:00z"), 23},
		{"last use space", AttrOperationalStatus, lastUse("2010-01-01 00:00:00Z"), 14},
		{"last use sign", AttrOperationalStatus, lastUse("+010-01-01T00:00:00Z"), 4},
		{"last use one-digit hour", AttrOperationalStatus, lastUse("2010-01-01T1:00:00ZZ"), 16},
		{"port filter 3 bytes", AttrPortFilter, "010600", 0},
		{"port filter 5 bytes", AttrPortFilter, "01060016 00", 4},
		{"installed packages 3 bytes", AttrInstalledPackages, "000000", 0},
		{"package count exceeds bytes", AttrInstalledPackages, "0000 0002 00 00", 2},
		{"package count 65535, few bytes", AttrInstalledPackages, "0000 ffff 00 00 00 00", 2},
		{"package missing version", AttrInstalledPackages, "0000 0001 01 61", 6},
		{"package count 1, two packages", AttrInstalledPackages, "0000 0001 01 61 00 00 00", 7},
		{"package name length lies", AttrInstalledPackages, "0000 0001 05 61 00", 4},
		{"package trailing", AttrInstalledPackages, "0000 0001 00 00 61", 6},
		{"package name not UTF-8", AttrInstalledPackages, "0000 0001 01 80 00", 5},
		{"package version surrogate", AttrInstalledPackages, "0000 0001 00 03 eda080", 6},
		{"PA-TNC error 7 bytes", AttrPATNCError, "00000000 000000", 0},
		{"invalid parameter info short", AttrPATNCError, "00000000 00000000" + strings.Repeat("00", 11), 8},
		{"version not supported info long", AttrPATNCError, "00000000 00000001" + strings.Repeat("00", 13), 8},
		{"attribute type not supported info short", AttrPATNCError, "00000000 00000002" + strings.Repeat("00", 12), 8},
		{"assessment result 3 bytes", AttrAssessmentResult, "000000", 0},
		{"assessment result 5", AttrAssessmentResult, "00000005", 0},
		{"remediation 7 bytes", AttrRemediationInstructions, "00000000 000001", 0},
		{"remediation URI empty", AttrRemediationInstructions, "00000000 00000001", 8},
		{"remediation URI with space", AttrRemediationInstructions, "00000000 00000001 6120 62", 8},
		{"remediation URI not ASCII", AttrRemediationInstructions, "00000000 00000001 c3a9", 8},
		{"remediation string short", AttrRemediationInstructions, "00000000 00000002 00000000", 8},
		{"remediation string length lies", AttrRemediationInstructions, "00000000 00000002 00000002 61 00", 8},
		{"remediation string length 2^32-1", AttrRemediationInstructions, "00000000 00000002 ffffffff 61 00", 8},
		{"remediation string not UTF-8", AttrRemediationInstructions, "00000000 00000002 00000001 ff 00", 12},
		{"remediation lang length lies", AttrRemediationInstructions, "00000000 00000002 00000001 61 03 656e", 13},
		{"remediation lang trailing", AttrRemediationInstructions, "00000000 00000002 00000001 61 00 65", 13},
		{"remediation lang not ASCII", AttrRemediationInstructions, "00000000 00000002 00000001 61 02 c3a9", 14},
		{"forwarding enabled 5 bytes", AttrForwardingEnabled, "0000000000", 0},
		{"forwarding enabled 3", AttrForwardingEnabled, "00000003", 0},
		{"factory default password 2", AttrFactoryDefaultPasswordEnabled, "00000002", 0},
		{"factory default password empty", AttrFactoryDefaultPasswordEnabled, "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wire := mustHex(tc.hex)
			v, err := DecodeAttribute(Attribute{Type: tc.typ, Value: wire})
			if err == nil {
				t.Fatalf("decoded %x as %#v", wire, v)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v (%T) is not a *ParseError", err, err)
			}
			if pe.Code != ErrInvalidParameter || pe.Offset != tc.offset {
				t.Fatalf("code %d offset %d, want %d %d (%v)", pe.Code, pe.Offset, ErrInvalidParameter, tc.offset, err)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
		})
	}
}

func bytesHex(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		const digits = "0123456789abcdef"
		b.WriteByte(digits[s[i]>>4])
		b.WriteByte(digits[s[i]&15])
	}
	return b.String()
}

func TestUnmarshalKeepsValueOnError(t *testing.T) {
	v := ProductInformation{VendorID: 1, ProductID: 2, Name: "keep"}
	if err := v.UnmarshalBinary([]byte{0, 0, 0, 0, 0, 0xff}); err == nil {
		t.Fatal("accepted bad UTF-8")
	}
	if v != (ProductInformation{VendorID: 1, ProductID: 2, Name: "keep"}) {
		t.Fatalf("failed UnmarshalBinary changed the value to %+v", v)
	}
	m := Message{ID: 5}
	if err := m.UnmarshalBinary([]byte{1, 0, 0}); err == nil || m.ID != 5 {
		t.Fatalf("failed UnmarshalBinary: err %v, message %+v", err, m)
	}
}

func TestEncodeErrors(t *testing.T) {
	tests := []struct {
		name string
		v    Value
	}{
		{"attribute request vendor over 24 bits", &AttributeRequest{{Vendor: 1 << 24, Type: 1}}},
		{"product vendor over 24 bits", &ProductInformation{VendorID: 1 << 24}},
		{"product name not UTF-8", &ProductInformation{Name: "\xff"}},
		{"string version 256 bytes", &StringVersion{Build: strings.Repeat("b", 256)}},
		{"string version not UTF-8", &StringVersion{Config: "\xc0\xaf"}},
		{"operational status 4", &OperationalStatus{Status: 4}},
		{"operational result 4", &OperationalStatus{Result: 4}},
		{"last use year 10000", &OperationalStatus{LastUse: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{"last use year -1", &OperationalStatus{LastUse: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{"package name 256 bytes", &InstalledPackages{{Name: strings.Repeat("n", 256)}}},
		{"package version not UTF-8", &InstalledPackages{{Name: "a"}, {Version: "\xff"}}},
		{"65536 packages", ptr(make(InstalledPackages, MaxInstalledPackages+1))},
		{"PA-TNC error vendor over 24 bits", &PAError{Vendor: 1 << 24, Code: 1}},
		{"invalid parameter info short", &PAError{Code: ErrInvalidParameter, Info: make([]byte, 11)}},
		{"attribute type not supported no info", &PAError{Code: ErrAttributeTypeNotSupported}},
		{"assessment result 5", ptr(AssessmentResult(5))},
		{"remediation vendor over 24 bits", &RemediationInstructions{Vendor: 1 << 24, Type: 1, URI: "x"}},
		{"remediation URI empty", &RemediationInstructions{Type: RemediationURI}},
		{"remediation URI with space", &RemediationInstructions{Type: RemediationURI, URI: "http://a b"}},
		{"remediation string not UTF-8", &RemediationInstructions{Type: RemediationString, Text: "\xff"}},
		{"remediation lang 256 bytes", &RemediationInstructions{Type: RemediationString, Lang: strings.Repeat("e", 256)}},
		{"remediation lang with space", &RemediationInstructions{Type: RemediationString, Lang: "en US"}},
		{"forwarding enabled 3", ptr(ForwardingEnabled(3))},
		{"factory default password 2", ptr(FactoryDefaultPasswordEnabled(2))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := EncodeAttribute(tc.v, false)
			if err == nil {
				t.Fatalf("encoded %#v as %x", tc.v, a.Value)
			}
			if !errors.Is(err, ErrInvalidValue) {
				t.Fatalf("error %v does not wrap ErrInvalidValue", err)
			}
			// AppendBinary leaves dst as it was.
			pre := []byte{1, 2, 3}
			out, err := tc.v.AppendBinary(pre)
			if err == nil || !bytes.Equal(out, pre) {
				t.Fatalf("AppendBinary = %x, %v; want %x and an error", out, err, pre)
			}
		})
	}
	if _, err := EncodeAttribute(nil, false); !errors.Is(err, ErrInvalidValue) {
		t.Fatalf("EncodeAttribute(nil) error %v", err)
	}
	m := &Message{Attributes: []Attribute{{Type: 1}, {Vendor: 1 << 24}}}
	if out, err := m.AppendBinary([]byte{7}); !errors.Is(err, ErrInvalidValue) || !bytes.Equal(out, []byte{7}) {
		t.Fatalf("message with a 25-bit vendor: %x, %v", out, err)
	}
	if err := m.Add(&ProductInformation{VendorID: 1 << 24}, false); err == nil || len(m.Attributes) != 2 {
		t.Fatalf("Add of a bad value: %v, %d attributes", err, len(m.Attributes))
	}
}

func TestDecodeUnknown(t *testing.T) {
	for _, id := range []AttrID{{0, AttrTesting}, {0, AttrSWIMAFirst}, {0, AttrSWIMALast}, {0, 0xffffffff}, {VendorTCG, 1}, {1, AttrProductInformation}} {
		v, err := DecodeAttribute(Attribute{Vendor: id.Vendor, Type: id.Type, Value: []byte{0, 0, 0, 0}})
		if !errors.Is(err, ErrUnknownAttribute) || v != nil {
			t.Errorf("DecodeAttribute(%v) = %v, %v; want ErrUnknownAttribute", id, v, err)
		}
		if Decodable(id) {
			t.Errorf("Decodable(%v) = true", id)
		}
	}
	for typ := uint32(1); typ <= 12; typ++ {
		if !Decodable(AttrID{0, typ}) || NewValue(AttrID{0, typ}).AttrID() != (AttrID{0, typ}) {
			t.Errorf("IETF type %d: NewValue/Decodable disagree", typ)
		}
	}
}

func TestDecodeAtOffset(t *testing.T) {
	m := &Message{ID: 3}
	_ = m.Add(ptr(AssessmentResult(1)), false)
	_ = m.Add(&StringVersion{Version: "1"}, false)
	// A String Version whose second length lies: "01 31 | 09 | 00".
	m.Attributes = append(m.Attributes, Attribute{Type: AttrStringVersion, Value: []byte{1, '1', 9, 0}})
	wire, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := ParseMessage(wire, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = parsed.DecodeAt(2)
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("DecodeAt error %v is not a *ParseError", err)
	}
	// The offset points at the lying length octet in the message.
	if int(pe.Offset) >= len(wire) || wire[pe.Offset] != 9 {
		t.Fatalf("offset %d does not point at the bad length in %x", pe.Offset, wire)
	}
	want := uint32(HeaderLen + (AttrHeaderLen + 4) + (AttrHeaderLen + 4) + AttrHeaderLen + 2)
	if pe.Offset != want {
		t.Fatalf("offset %d, want %d", pe.Offset, want)
	}
	pa := pe.PAError(wire[:HeaderLen])
	if off, ok := pa.Offset(); !ok || off != want {
		t.Fatalf("PAError offset %d %v", off, ok)
	}
	if _, err := parsed.DecodeAt(3); err == nil {
		t.Fatal("DecodeAt out of range succeeded")
	}
	if _, ok := parsed.ValueOffset(-1); ok {
		t.Fatal("ValueOffset(-1) ok")
	}
}

func TestPAErrorConstructors(t *testing.T) {
	hdr := mustHex("01000000 0000abcd")
	attr := Attribute{NoSkip: true, Vendor: VendorTCG, Type: 0x11223344, Value: []byte{1}}
	tests := []struct {
		name string
		e    *PAError
		wire string
	}{
		{"invalid parameter", NewInvalidParameterError(hdr, 0x01020304),
			"00 000000 00000000 | 01000000 0000abcd | 01020304"},
		{"version not supported", NewVersionNotSupportedError(hdr, 3, 1),
			"00 000000 00000001 | 01000000 0000abcd | 03 01 0000"},
		{"attribute type not supported", NewAttributeTypeNotSupportedError(hdr, attr),
			"00 000000 00000002 | 01000000 0000abcd | 80 005597 11223344"},
		{"short header padded", NewInvalidParameterError([]byte{2}, 0),
			"00 000000 00000000 | 02000000 00000000 | 00000000"},
		{"long header cut", NewVersionNotSupportedError(mustHex("01000000 00000001 ffff"), 1, 1),
			"00 000000 00000001 | 01000000 00000001 | 01 01 0000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := EncodeAttribute(tc.e, false)
			if err != nil {
				t.Fatal(err)
			}
			if want := mustHex(tc.wire); !bytes.Equal(a.Value, want) {
				t.Fatalf("encoded %x, want %x", a.Value, want)
			}
			if !strings.HasPrefix(tc.e.Error(), "patnc: PA-TNC error") {
				t.Fatalf("Error() = %q", tc.e.Error())
			}
		})
	}

	ip := NewInvalidParameterError(hdr, 77)
	if off, ok := ip.Offset(); !ok || off != 77 {
		t.Errorf("Offset() = %d, %v", off, ok)
	}
	if h, ok := ip.MessageHeader(); !ok || !bytes.Equal(h, hdr) {
		t.Errorf("MessageHeader() = %x, %v", h, ok)
	}
	if _, _, ok := ip.Versions(); ok {
		t.Error("Versions() ok on an invalid parameter error")
	}
	vn := NewVersionNotSupportedError(hdr, 4, 2)
	if max, min, ok := vn.Versions(); !ok || max != 4 || min != 2 {
		t.Errorf("Versions() = %d %d %v", max, min, ok)
	}
	if _, ok := vn.Offset(); ok {
		t.Error("Offset() ok on a version error")
	}
	at := NewAttributeTypeNotSupportedError(hdr, attr)
	got, ok := at.UnsupportedAttribute()
	if !ok || !reflect.DeepEqual(got, Attribute{NoSkip: true, Vendor: VendorTCG, Type: 0x11223344}) {
		t.Errorf("UnsupportedAttribute() = %+v, %v", got, ok)
	}
	if _, ok := (&PAError{Vendor: 9, Code: ErrInvalidParameter, Info: make([]byte, 12)}).Offset(); ok {
		t.Error("Offset() ok on a vendor error code")
	}
	if _, ok := (*PAError)(nil).MessageHeader(); ok {
		t.Error("MessageHeader() ok on nil")
	}
	// The accessors hand out copies.
	h, _ := ip.MessageHeader()
	h[7] = 0
	if off, _ := ip.Offset(); off != 77 || ip.Info[7] != 0xcd {
		t.Error("MessageHeader() shares memory with Info")
	}
}

func TestParseErrorPAError(t *testing.T) {
	_, err := ParseMessage(mustHex("05000000 00000009"), 0)
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatal(err)
	}
	pa := pe.PAError(mustHex("05000000 00000009"))
	if pa.Code != ErrVersionNotSupported {
		t.Fatalf("code %d", pa.Code)
	}
	if max, min, ok := pa.Versions(); !ok || max != Version || min != Version {
		t.Fatalf("Versions() = %d %d %v", max, min, ok)
	}
	if h, _ := pa.MessageHeader(); h[0] != 5 || h[7] != 9 {
		t.Fatalf("header copy %x", h)
	}

	_, err = ParseMessage(mustHex("01000000 00000009 00"), 0)
	if !errors.As(err, &pe) {
		t.Fatal(err)
	}
	pa = pe.PAError(mustHex("01000000 00000009"))
	if off, ok := pa.Offset(); pa.Code != ErrInvalidParameter || !ok || off != 8 {
		t.Fatalf("PAError %+v", pa)
	}
}

func TestUnsupportedNoSkip(t *testing.T) {
	m := &Message{ID: 0x0a0b0c0d, Attributes: []Attribute{
		{NoSkip: true, Type: AttrAssessmentResult, Value: []byte{0, 0, 0, 0}},
		{NoSkip: false, Vendor: VendorTCG, Type: 5},
		{NoSkip: true, Vendor: VendorTCG, Type: 6},
		{NoSkip: true, Type: AttrSWIMAFirst},
	}}
	got := UnsupportedNoSkip(m, nil)
	if len(got) != 2 {
		t.Fatalf("got %d errors, want 2", len(got))
	}
	for i, want := range []AttrID{{VendorTCG, 6}, {0, AttrSWIMAFirst}} {
		a, ok := got[i].UnsupportedAttribute()
		if !ok || a.ID() != want || !a.NoSkip {
			t.Errorf("error %d names %+v, want %v", i, a, want)
		}
		if h, _ := got[i].MessageHeader(); !bytes.Equal(h, m.Header()) {
			t.Errorf("error %d header %x, want %x", i, h, m.Header())
		}
	}
	onlyTCG := func(id AttrID) bool { return id.Vendor == VendorTCG }
	got = UnsupportedNoSkip(m, onlyTCG)
	if len(got) != 2 {
		t.Fatalf("with TCG-only support: %d errors, want 2", len(got))
	}
	if a, _ := got[0].UnsupportedAttribute(); a.ID() != (AttrID{0, AttrAssessmentResult}) {
		t.Fatalf("first error names %v", a.ID())
	}
	if got := UnsupportedNoSkip(m, func(AttrID) bool { return true }); got != nil {
		t.Fatalf("all supported: %v", got)
	}
}

func TestAttrIDString(t *testing.T) {
	if s := (AttrID{VendorTCG, 17}).String(); s != "21911/17" {
		t.Fatalf("String() = %q", s)
	}
}
