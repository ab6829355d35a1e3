package pbtnc

import (
	"bytes"
	"encoding"
	"errors"
	"reflect"
	"strings"
	"testing"
)

type body interface {
	AppendBinary([]byte) ([]byte, error)
	Message() Message
}

// TestMessageRoundTrip encodes every typed message body, wraps it with
// Message() and decodes it back.
func TestMessageRoundTrip(t *testing.T) {
	tests := []struct {
		name   string
		in     body
		out    encoding.BinaryUnmarshaler // zero value to decode into
		typ    MessageType
		noSkip bool
	}{
		{"PA", PA{Exclusive: true, Subtype: PASubtype{0x5597, 0x10}, CollectorID: 1, ValidatorID: 2, Body: []byte("pa-tnc")}, &PA{}, MsgPA, true},
		{"PA empty body", PA{Subtype: SubtypeSWIMA, CollectorID: AnyID, ValidatorID: AnyID}, &PA{}, MsgPA, true},
		{"assessment", AssessmentMinorNonCompliance, new(AssessmentResult), MsgAssessmentResult, true},
		{"recommendation", RecommendationDenied, new(AccessRecommendation), MsgAccessRecommendation, false},
		{"remediation URI", RemediationParameters{Type: RemediationURI, URI: "https://fix.example/os?id=1"}, &RemediationParameters{}, MsgRemediationParameters, false},
		{"remediation string", RemediationParameters{Type: RemediationString, Text: "Installez les correctifs", Lang: "fr"}, &RemediationParameters{}, MsgRemediationParameters, false},
		{"remediation string no lang", RemediationParameters{Type: RemediationString, Text: ""}, &RemediationParameters{}, MsgRemediationParameters, false},
		{"remediation vendor", RemediationParameters{Vendor: 0x5597, Type: 1, Raw: []byte{1, 2}}, &RemediationParameters{}, MsgRemediationParameters, false},
		{"remediation unknown IETF type", RemediationParameters{Type: 3, Raw: []byte("x")}, &RemediationParameters{}, MsgRemediationParameters, false},
		{"error", Error{Fatal: true, Code: ErrInvalidParameter, Offset: 99}, &Error{}, MsgError, true},
		{"language", LanguagePreference("zh-CN, en;q=0.7"), new(LanguagePreference), MsgLanguagePreference, false},
		{"language empty", LanguagePreference(""), new(LanguagePreference), MsgLanguagePreference, false},
		{"reason", ReasonString{Reason: "TPM quote failed", Lang: "en-US"}, &ReasonString{}, MsgReasonString, false},
		{"reason no lang", ReasonString{Reason: "x"}, &ReasonString{}, MsgReasonString, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.in.Message()
			if m.Type != tt.typ || m.NoSkip != tt.noSkip || m.Vendor != VendorIETF {
				t.Fatalf("Message() = type %v noskip %v vendor %d", m.Type, m.NoSkip, m.Vendor)
			}
			enc, err := tt.in.AppendBinary(nil)
			if err != nil || !bytes.Equal(enc, m.Value) {
				t.Fatalf("AppendBinary = % x, %v; Message().Value = % x", enc, err, m.Value)
			}
			if err := tt.out.UnmarshalBinary(m.Value); err != nil {
				t.Fatal(err)
			}
			got := reflect.ValueOf(tt.out).Elem().Interface()
			if !reflect.DeepEqual(got, tt.in) {
				t.Fatalf("round trip: got %#v, want %#v", got, tt.in)
			}
		})
	}
}

func TestMessageDecodeErrors(t *testing.T) {
	tests := []struct {
		name   string
		out    encoding.BinaryUnmarshaler
		data   []byte
		offset uint32
	}{
		{"PA short", &PA{}, make([]byte, 11), 0},
		{"assessment short", new(AssessmentResult), []byte{0, 0, 0}, 0},
		{"assessment long", new(AssessmentResult), []byte{0, 0, 0, 0, 0}, 0},
		{"assessment 5", new(AssessmentResult), []byte{0, 0, 0, 5}, 0},
		{"recommendation 0", new(AccessRecommendation), []byte{0, 0, 0, 0}, 2},
		{"recommendation short", new(AccessRecommendation), []byte{0, 1}, 0},
		{"remediation short", &RemediationParameters{}, make([]byte, 7), 0},
		{"remediation URI not UTF-8", &RemediationParameters{}, append(unhex(t, "00000000 00000001"), 0xff, 0xfe), 8},
		{"remediation URI NUL-terminated", &RemediationParameters{}, append(unhex(t, "00000000 00000001"), 'a', 0), 9},
		{"remediation string length past end", &RemediationParameters{}, unhex(t, "00000000 00000002 | 00000009 414243 00"), 8},
		{"remediation string lang length wrong", &RemediationParameters{}, unhex(t, "00000000 00000002 | 00000003 414243 05 656e"), 15},
		{"remediation string trailing bytes", &RemediationParameters{}, unhex(t, "00000000 00000002 | 00000001 41 00 ff"), 13},
		{"remediation string no lang length", &RemediationParameters{}, unhex(t, "00000000 00000002 | 00000000"), 8},
		{"reason bad lang char", &ReasonString{}, unhex(t, "00000001 41 02 65 00"), 7},
		{"reason bad UTF-8", &ReasonString{}, unhex(t, "00000002 c328 00"), 4},
		{"reason huge length", &ReasonString{}, unhex(t, "ffffffff 41 00"), 0},
		{"language no prefix", new(LanguagePreference), []byte("en"), 0},
		{"language NUL", new(LanguagePreference), []byte("Accept-Language: en\x00"), 19},
		{"language non-ASCII", new(LanguagePreference), []byte("Accept-Language: é"), 17},
		{"error short", &Error{}, make([]byte, 7), 0},
		{"error invalid parameter without offset", &Error{}, unhex(t, "80000000 00010000"), 8},
		{"error version params short", &Error{}, unhex(t, "80000000 00040000 0102"), 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.out.UnmarshalBinary(tt.data)
			var pe *Error
			if !errors.As(err, &pe) || pe.Code != ErrInvalidParameter {
				t.Fatalf("error = %v, want Invalid Parameter", err)
			}
			if pe.Offset != tt.offset {
				t.Fatalf("offset = %d, want %d (%v)", pe.Offset, tt.offset, pe)
			}
		})
	}
}

func TestLanguagePrefixCaseInsensitive(t *testing.T) {
	var l LanguagePreference
	if err := l.UnmarshalBinary([]byte("accept-language:\tde")); err != nil || l != "de" {
		t.Fatalf("got %q, %v", l, err)
	}
}

func TestMessageEncodeErrors(t *testing.T) {
	tests := []struct {
		name string
		in   body
	}{
		{"PA vendor over 24 bits", PA{Subtype: PASubtype{Vendor: 1 << 24}}},
		{"PA reserved vendor", PA{Subtype: PASubtype{Vendor: 0xFFFFFF}}},
		{"PA reserved subtype", PA{Subtype: PASubtype{Subtype: 0xFFFFFFFF}}},
		{"assessment 5", AssessmentResult(5)},
		{"recommendation 0", AccessRecommendation(0)},
		{"recommendation 4", AccessRecommendation(4)},
		{"remediation vendor", RemediationParameters{Vendor: 1 << 24}},
		{"remediation URI not UTF-8", RemediationParameters{Type: RemediationURI, URI: "\xff"}},
		{"remediation text NUL-terminated", RemediationParameters{Type: RemediationString, Text: "a\x00"}},
		{"remediation lang too long", RemediationParameters{Type: RemediationString, Lang: strings.Repeat("a", 256)}},
		{"error vendor", Error{Vendor: 1 << 24}},
		{"language non-ASCII", LanguagePreference("中文")},
		{"language newline", LanguagePreference("en\r\nX-Injected: 1")},
		{"reason lang space", ReasonString{Reason: "r", Lang: "e n"}},
		{"reason not UTF-8", ReasonString{Reason: "\xc3\x28"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.in.AppendBinary(nil); !errors.Is(err, ErrEncode) {
				t.Fatalf("error = %v, want ErrEncode", err)
			}
			if v := tt.in.Message().Value; len(v) != 0 {
				t.Fatalf("Message() of an unencodable value has value % x", v)
			}
		})
	}
}
