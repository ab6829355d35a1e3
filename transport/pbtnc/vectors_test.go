package pbtnc

import (
	"bytes"
	"reflect"
	"testing"
)

// Byte vectors written by hand from the RFC 5793 §4 figures.

// CDATA with one PB-PA (RFC 5793 §4.1, §4.2, §4.5).
const vecCDATA = `
02 00 00 01 | 00 00 00 28                  batch: version 2, D=0, CDATA, length 40
80 00 00 00 | 00 00 00 01 | 00 00 00 20    message: NOSKIP, IETF, PB-PA, length 32
00 00 00 00 | 00 00 00 01 | 00 01 ff ff    PB-PA: no EXCL, IETF, OS, collector 1, validator any
01 00 00 00 | 00 00 00 2a                  PA-TNC message header (version 1, message ID 42)
`

// RESULT with Assessment-Result, Access-Recommendation, Remediation-
// Parameters (URI and String) and Reason-String (§4.6, §4.7, §4.8, §4.11).
const vecResult = `
02 80 00 03 | 00 00 00 7a                  batch: version 2, D=1, RESULT, length 122
80 00 00 00 | 00 00 00 02 | 00 00 00 10    PB-Assessment-Result, NOSKIP, length 16
00 00 00 02                                major non-compliance
00 00 00 00 | 00 00 00 03 | 00 00 00 10    PB-Access-Recommendation, length 16
00 00 | 00 03                              reserved, quarantined
00 00 00 00 | 00 00 00 04 | 00 00 00 1e    PB-Remediation-Parameters, length 30
00 00 00 00 | 00 00 00 01                  reserved, IETF, Remediation-URI
68 74 74 70 3a 2f 2f 72 2f 78              "http://r/x"
00 00 00 00 | 00 00 00 04 | 00 00 00 1e    PB-Remediation-Parameters, length 30
00 00 00 00 | 00 00 00 02                  reserved, IETF, Remediation-String
00 00 00 03 | 66 69 78 | 02 | 65 6e        length 3, "fix", lang length 2, "en"
00 00 00 00 | 00 00 00 07 | 00 00 00 16    PB-Reason-String, length 22
00 00 00 03 | 62 61 64 | 02 | 65 6e        length 3, "bad", lang length 2, "en"
`

// CLOSE from the server with a fatal Invalid Parameter at offset 4 (§4.9).
const vecClose = `
02 80 00 06 | 00 00 00 20                  batch: D=1, CLOSE, length 32
80 00 00 00 | 00 00 00 05 | 00 00 00 18    PB-Error, NOSKIP, length 24
80 00 00 00 | 00 01 00 00 | 00 00 00 04    fatal, IETF, Invalid Parameter, offset 4
`

func TestVectorCDATA(t *testing.T) {
	data := unhex(t, stripComments(vecCDATA))
	want := &Batch{Type: BatchCDATA, Messages: []Message{
		PA{Subtype: SubtypeOS, CollectorID: 1, ValidatorID: AnyID, Body: unhex(t, "01000000 0000002a")}.Message(),
	}}
	b, err := ParseBatch(data, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(b, want) {
		t.Fatalf("decoded %+v\nwant %+v", b, want)
	}
	var pa PA
	if err := pa.UnmarshalBinary(b.Messages[0].Value); err != nil {
		t.Fatal(err)
	}
	if pa.Subtype != SubtypeOS || pa.CollectorID != 1 || pa.ValidatorID != AnyID || pa.Exclusive {
		t.Fatalf("PB-PA = %+v", pa)
	}
	enc, err := want.MarshalBinary()
	if err != nil || !bytes.Equal(enc, data) {
		t.Fatalf("encoded % x (%v)\nwant    % x", enc, err, data)
	}
}

func TestVectorResult(t *testing.T) {
	data := unhex(t, stripComments(vecResult))
	want := Result{
		Assessment:     ptr(AssessmentMajorNonCompliance),
		Recommendation: RecommendationQuarantined,
		Remediation: []RemediationParameters{
			{Type: RemediationURI, URI: "http://r/x"},
			{Type: RemediationString, Text: "fix", Lang: "en"},
		},
		Reasons: []ReasonString{{Reason: "bad", Lang: "en"}},
	}
	_, c, pe := parseBatch(data, 0)
	if pe != nil {
		t.Fatal(pe)
	}
	if !reflect.DeepEqual(c.result, want) {
		t.Fatalf("decoded %+v\nwant %+v", c.result, want)
	}
	msgs, err := want.messages(nil)
	if err != nil {
		t.Fatal(err)
	}
	enc := raw(t, true, BatchResult, msgs...)
	if !bytes.Equal(enc, data) {
		t.Fatalf("encoded % x\nwant    % x", enc, data)
	}
}

func TestVectorClose(t *testing.T) {
	data := unhex(t, stripComments(vecClose))
	e := Error{Fatal: true, Code: ErrInvalidParameter, Offset: 4}
	if enc := raw(t, true, BatchClose, e.Message()); !bytes.Equal(enc, data) {
		t.Fatalf("encoded % x\nwant    % x", enc, data)
	}
	b, err := ParseBatch(data, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got Error
	if err := got.UnmarshalBinary(b.Messages[0].Value); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, e) {
		t.Fatalf("decoded %+v, want %+v", got, e)
	}
}

// TestVectorErrorBodies covers every IETF PB-Error body (§4.9).
func TestVectorErrorBodies(t *testing.T) {
	tests := []struct {
		name string
		hex  string
		want Error
	}{
		{"unexpected batch type", "80 000000 | 0000 0000",
			Error{Fatal: true, Code: ErrUnexpectedBatchType}},
		{"invalid parameter", "80 000000 | 0001 0000 | 0000 0104",
			Error{Fatal: true, Code: ErrInvalidParameter, Offset: 0x104}},
		{"local error, not fatal", "00 000000 | 0002 0000",
			Error{Code: ErrLocalError}},
		{"unsupported mandatory message", "80 000000 | 0003 0000 | 80 000009 | 0000 0001",
			Error{Fatal: true, Code: ErrUnsupportedMandatoryMessage, Header: unhex(t, "80000009 00000001")}},
		{"version not supported", "80 000000 | 0004 0000 | 01 02 02 00",
			Error{Fatal: true, Code: ErrVersionNotSupported, BadVersion: 1, MaxVersion: 2, MinVersion: 2}},
		{"vendor-specific code", "80 000137 | 0009 0000 | de ad",
			Error{Fatal: true, Vendor: 0x137, Code: 9, Params: []byte{0xde, 0xad}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := unhex(t, tt.hex)
			var got Error
			if err := got.UnmarshalBinary(data); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("decoded %+v, want %+v", got, tt.want)
			}
			enc, err := tt.want.AppendBinary(nil)
			if err != nil || !bytes.Equal(enc, data) {
				t.Fatalf("encoded % x (%v), want % x", enc, err, data)
			}
		})
	}
}

func TestVectorLanguagePreference(t *testing.T) {
	data := unhex(t, "41 63 63 65 70 74 2d 4c 61 6e 67 75 61 67 65 3a 20 | 65 6e 2c 20 7a 68 3b 71 3d 30 2e 35")
	var l LanguagePreference
	if err := l.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	if l != "en, zh;q=0.5" {
		t.Fatalf("decoded %q", l)
	}
	if enc, _ := l.AppendBinary(nil); !bytes.Equal(enc, data) {
		t.Fatalf("encoded %q", enc)
	}
}

// stripComments drops the prose after the hex columns of a vector.
func stripComments(s string) string {
	var out []byte
	for _, line := range bytes.Split([]byte(s), []byte("\n")) {
		// Hex columns end at the first run of two spaces followed by a
		// letter that is not a hex digit, or at a quote.
		cut := len(line)
		for i := 0; i+2 < len(line); i++ {
			if line[i] == ' ' && line[i+1] == ' ' {
				rest := bytes.TrimLeft(line[i:], " ")
				if len(rest) > 0 && !isHexPair(rest) && rest[0] != '|' {
					cut = i
					break
				}
			}
		}
		out = append(out, line[:cut]...)
		out = append(out, '\n')
	}
	return string(out)
}

func isHexPair(b []byte) bool {
	if len(b) < 2 {
		return false
	}
	h := func(c byte) bool { return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') }
	return h(b[0]) && h(b[1]) && (len(b) == 2 || b[2] == ' ')
}
