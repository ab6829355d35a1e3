package pbtnc

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// sampleMessages returns one valid message of every IETF type.
func sampleMessages() map[MessageType]Message {
	return map[MessageType]Message{
		MsgPA: PA{Exclusive: true, Subtype: SubtypeFirewall, CollectorID: 3, ValidatorID: 4,
			Body: []byte("posture")}.Message(),
		MsgAssessmentResult:     AssessmentCompliant.Message(),
		MsgAccessRecommendation: RecommendationAllowed.Message(),
		MsgRemediationParameters: RemediationParameters{Type: RemediationString, Text: "update the OS",
			Lang: "en"}.Message(),
		MsgError:              Error{Code: ErrLocalError}.Message(),
		MsgLanguagePreference: LanguagePreference("en").Message(),
		MsgReasonString:       ReasonString{Reason: "补丁缺失", Lang: "zh-CN"}.Message(),
	}
}

// TestBatchRoundTrip encodes and decodes every batch type with every
// message type it may carry.
func TestBatchRoundTrip(t *testing.T) {
	samples := sampleMessages()
	for bt := BatchCDATA; bt <= BatchClose; bt++ {
		var msgs []Message
		for mt := MsgPA; mt <= MsgReasonString; mt++ {
			if allowedIn(mt, bt) {
				msgs = append(msgs, samples[mt])
			}
		}
		// Skippable messages are allowed anywhere.
		msgs = append(msgs, Message{Vendor: 0x9999, Type: 42, Value: []byte{1, 2, 3}},
			Message{Vendor: VendorIETF, Type: MsgExperimental, Value: []byte{}})
		for _, fromServer := range []bool{false, true} {
			t.Run(bt.String(), func(t *testing.T) {
				in := &Batch{FromServer: fromServer, Type: bt, Messages: msgs}
				data, err := in.MarshalBinary()
				if err != nil {
					t.Fatal(err)
				}
				got, err := ParseBatch(data, 0)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, in) {
					t.Fatalf("round trip:\n got %+v\nwant %+v", got, in)
				}
				var un Batch
				if err := un.UnmarshalBinary(data); err != nil || !reflect.DeepEqual(&un, in) {
					t.Fatalf("UnmarshalBinary = %+v, %v", un, err)
				}
				// AppendBinary appends.
				app, err := in.AppendBinary([]byte("xy"))
				if err != nil || !bytes.Equal(app[2:], data) || string(app[:2]) != "xy" {
					t.Fatalf("AppendBinary did not append: %q %v", app, err)
				}
			})
		}
	}
}

// TestUnmarshalCopies checks that decoded values do not alias the input.
func TestUnmarshalCopies(t *testing.T) {
	data := raw(t, false, BatchCDATA, sampleMessages()[MsgPA])
	b, err := ParseBatch(data, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := append([]byte(nil), b.Messages[0].Value...)
	for i := range data {
		data[i] = 0xEE
	}
	if !bytes.Equal(b.Messages[0].Value, want) {
		t.Fatal("message value aliases the input buffer")
	}
}

func TestParseBatchErrors(t *testing.T) {
	pa := sampleMessages()[MsgPA]
	good := raw(t, false, BatchCDATA, pa)
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	setLen := func(b []byte) []byte {
		n := len(b)
		b[4], b[5], b[6], b[7] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
		return b
	}
	tests := []struct {
		name   string
		data   []byte
		max    uint32
		code   ErrorCode
		offset uint32
	}{
		{"empty", nil, 0, ErrInvalidParameter, 0},
		{"short header", good[:7], 0, ErrInvalidParameter, 0},
		{"version 1", mod(func(b []byte) []byte { b[0] = 1; return b }), 0, ErrVersionNotSupported, 0},
		{"IF-TNCCS 1.1 XML", []byte("<?xml version=\"1.0\"?><TNCCS-Batch/>"), 0, ErrVersionNotSupported, 0},
		{"batch type 0", mod(func(b []byte) []byte { b[3] = 0; return b }), 0, ErrInvalidParameter, 3},
		{"batch type 7", mod(func(b []byte) []byte { b[3] = 7; return b }), 0, ErrInvalidParameter, 3},
		{"length too big", mod(func(b []byte) []byte { b[7]++; return b }), 0, ErrInvalidParameter, 4},
		{"length too small", mod(func(b []byte) []byte { b[7]--; return b }), 0, ErrInvalidParameter, 4},
		{"exceeds max size", good, uint32(len(good) - 1), ErrInvalidParameter, 4},
		{"trailing partial header", setLen(append(append([]byte(nil), good...), 1, 2, 3)), 0, ErrInvalidParameter, uint32(len(good))},
		{"message length < 12", mod(func(b []byte) []byte { b[19] = 11; return b }), 0, ErrInvalidParameter, 16},
		{"message length past end", mod(func(b []byte) []byte { b[19]++; return b }), 0, ErrInvalidParameter, 16},
		{"reserved vendor", mod(func(b []byte) []byte { b[9], b[10], b[11] = 0xff, 0xff, 0xff; return b }), 0, ErrInvalidParameter, 9},
		{"reserved message type", mod(func(b []byte) []byte { copy(b[12:16], []byte{0xff, 0xff, 0xff, 0xff}); return b }), 0, ErrInvalidParameter, 12},
		{"PB-PA without NOSKIP", mod(func(b []byte) []byte { b[8] = 0; return b }), 0, ErrInvalidParameter, 8},
		{"PB-PA reserved PA vendor", mod(func(b []byte) []byte { b[21], b[22], b[23] = 0xff, 0xff, 0xff; return b }), 0, ErrInvalidParameter, 21},
		{"PB-PA reserved subtype", mod(func(b []byte) []byte { copy(b[24:28], []byte{0xff, 0xff, 0xff, 0xff}); return b }), 0, ErrInvalidParameter, 24},
		{"PB-PA too short", raw(t, false, BatchCDATA, Message{NoSkip: true, Type: MsgPA, Value: make([]byte, 11)}), 0, ErrInvalidParameter, 20},
		{"Access-Recommendation with NOSKIP", raw(t, true, BatchResult, Message{NoSkip: true, Type: MsgAccessRecommendation, Value: []byte{0, 0, 0, 1}}), 0, ErrInvalidParameter, 8},
		{"Assessment-Result without NOSKIP", raw(t, true, BatchResult, Message{Type: MsgAssessmentResult, Value: []byte{0, 0, 0, 1}}), 0, ErrInvalidParameter, 8},
		{"PB-Error without NOSKIP", raw(t, true, BatchClose, Message{Type: MsgError, Value: make([]byte, 8)}), 0, ErrInvalidParameter, 8},
		{"Assessment-Result in SDATA", raw(t, true, BatchSDATA, AssessmentCompliant.Message()), 0, ErrInvalidParameter, 8},
		{"Access-Recommendation in CDATA", raw(t, false, BatchCDATA, RecommendationAllowed.Message()), 0, ErrInvalidParameter, 8},
		{"Remediation in SDATA", raw(t, true, BatchSDATA, sampleMessages()[MsgRemediationParameters]), 0, ErrInvalidParameter, 8},
		{"Reason-String in CDATA", raw(t, false, BatchCDATA, sampleMessages()[MsgReasonString]), 0, ErrInvalidParameter, 8},
		{"Language-Preference in SDATA", raw(t, true, BatchSDATA, LanguagePreference("en").Message()), 0, ErrInvalidParameter, 8},
		{"PB-PA in CRETRY", raw(t, false, BatchCRetry, pa), 0, ErrInvalidParameter, 8},
		{"PB-Error in SRETRY", raw(t, true, BatchSRetry, Error{Code: ErrLocalError}.Message()), 0, ErrInvalidParameter, 8},
		{"PB-PA in CLOSE", raw(t, false, BatchClose, pa), 0, ErrInvalidParameter, 8},
		{"two Assessment-Results", raw(t, true, BatchResult, AssessmentCompliant.Message(), AssessmentCompliant.Message()), 0, ErrInvalidParameter, 24},
		{"two Access-Recommendations", raw(t, true, BatchResult, RecommendationAllowed.Message(), RecommendationDenied.Message()), 0, ErrInvalidParameter, 24},
		{"bad assessment value", raw(t, true, BatchResult, Message{NoSkip: true, Type: MsgAssessmentResult, Value: []byte{0, 0, 0, 5}}), 0, ErrInvalidParameter, 20},
		{"bad recommendation value", raw(t, true, BatchResult, Message{Type: MsgAccessRecommendation, Value: []byte{0, 0, 0, 4}}), 0, ErrInvalidParameter, 22},
		{"bad error body", raw(t, false, BatchCDATA, pa, Message{NoSkip: true, Type: MsgError, Value: []byte{0x80, 0, 0, 0, 0, 1, 0, 0, 1}}), 0, ErrInvalidParameter, uint32(len(good)) + 12 + 8},
		{"bad language preference", raw(t, false, BatchCDATA, Message{Type: MsgLanguagePreference, Value: []byte("Content-Language: en")}), 0, ErrInvalidParameter, 20},
		{"unknown IETF type with NOSKIP", raw(t, false, BatchCDATA, pa, Message{NoSkip: true, Type: 8}), 0, ErrUnsupportedMandatoryMessage, 0},
		{"vendor type with NOSKIP", raw(t, true, BatchSDATA, Message{NoSkip: true, Vendor: 0x5597, Type: 1}), 0, ErrUnsupportedMandatoryMessage, 0},
		{"experimental with NOSKIP", raw(t, true, BatchSDATA, Message{NoSkip: true, Type: MsgExperimental}), 0, ErrUnsupportedMandatoryMessage, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := ParseBatch(tt.data, tt.max)
			if b != nil {
				t.Fatalf("ParseBatch returned a batch with error %v", err)
			}
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *Error", err)
			}
			if pe.Code != tt.code || !pe.Fatal {
				t.Fatalf("error = %v, want fatal %v", pe, tt.code)
			}
			if tt.code == ErrInvalidParameter && pe.Offset != tt.offset {
				t.Fatalf("offset = %d, want %d (%v)", pe.Offset, tt.offset, pe)
			}
			if !strings.HasPrefix(err.Error(), "pbtnc: ") {
				t.Fatalf("error text %q lacks the package prefix", err)
			}
		})
	}
}

func TestUnsupportedMandatoryHeader(t *testing.T) {
	data := raw(t, true, BatchSDATA, Message{Type: 99}, Message{NoSkip: true, Vendor: 0x5597, Type: 0x01020304, Value: []byte("x")})
	_, err := ParseBatch(data, 0)
	var pe *Error
	if !errors.As(err, &pe) || pe.Code != ErrUnsupportedMandatoryMessage {
		t.Fatalf("error = %v", err)
	}
	if want := unhex(t, "80 005597 01020304"); !bytes.Equal(pe.Header, want) {
		t.Fatalf("header = % x, want % x", pe.Header, want)
	}
	if !errors.Is(err, &Error{Code: ErrUnsupportedMandatoryMessage}) || errors.Is(err, &Error{Code: ErrLocalError}) {
		t.Fatal("Error.Is does not match by code")
	}
}

// TestSkipUnknown checks that unknown messages without NOSKIP are kept in
// the batch but do not disturb decoding.
func TestSkipUnknown(t *testing.T) {
	data := raw(t, false, BatchCDATA,
		Message{Vendor: 0x5597, Type: 7, Value: []byte("vendor")},
		sampleMessages()[MsgPA],
		Message{Type: MsgExperimental, Value: []byte("exp")},
		Message{Type: 1000})
	b, c, pe := parseBatch(data, 0)
	if pe != nil {
		t.Fatal(pe)
	}
	if len(b.Messages) != 4 || len(c.pas) != 1 || string(c.pas[0].Body) != "posture" {
		t.Fatalf("batch %+v content %+v", b, c)
	}
}

func TestMaxSize(t *testing.T) {
	data := raw(t, false, BatchCDATA, PA{Subtype: SubtypeOS, Body: make([]byte, DefaultMaxBatchSize)}.Message())
	if _, err := ParseBatch(data, 0); !errors.Is(err, &Error{Code: ErrInvalidParameter}) {
		t.Fatalf("default limit not applied: %v", err)
	}
	if _, err := ParseBatch(data, uint32(len(data))); err != nil {
		t.Fatalf("batch at the limit rejected: %v", err)
	}
	// UnmarshalBinary has no limit.
	var b Batch
	if err := b.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
}

func TestMaxMessages(t *testing.T) {
	msgs := make([]Message, MaxMessages+1)
	for i := range msgs {
		msgs[i] = Message{Type: 100}
	}
	data := raw(t, false, BatchCDATA, msgs...)
	var b Batch
	err := b.UnmarshalBinary(data)
	if !errors.Is(err, &Error{Code: ErrLocalError}) {
		t.Fatalf("error = %v, want Local Error", err)
	}
	if err := b.UnmarshalBinary(raw(t, false, BatchCDATA, msgs[1:]...)); err != nil {
		t.Fatalf("%d messages rejected: %v", MaxMessages, err)
	}
}

func TestBatchEncodeErrors(t *testing.T) {
	tests := []struct {
		name string
		b    Batch
	}{
		{"batch type 0", Batch{}},
		{"batch type 7", Batch{Type: 7}},
		{"vendor over 24 bits", Batch{Type: BatchCDATA, Messages: []Message{{Vendor: 1 << 24}}}},
		{"reserved vendor", Batch{Type: BatchCDATA, Messages: []Message{{Vendor: 0xFFFFFF}}}},
		{"reserved type", Batch{Type: BatchCDATA, Messages: []Message{{Type: 0xFFFFFFFF}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte("keep")
			out, err := tt.b.AppendBinary(dst)
			if !errors.Is(err, ErrEncode) {
				t.Fatalf("error = %v, want ErrEncode", err)
			}
			if string(out) != "keep" {
				t.Fatalf("dst modified on error: %q", out)
			}
		})
	}
}

// TestReservedBitsIgnored checks that reserved header bits are ignored on
// receipt and sent as zero.
func TestReservedBitsIgnored(t *testing.T) {
	data := raw(t, true, BatchSDATA, sampleMessages()[MsgPA])
	data[1] |= 0x7f
	data[2] = 0xff
	data[3] |= 0xf0
	data[8] |= 0x7f
	b, err := ParseBatch(data, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !b.FromServer || b.Type != BatchSDATA || !b.Messages[0].NoSkip {
		t.Fatalf("decoded %+v", b)
	}
	enc, _ := b.MarshalBinary()
	if enc[1] != 0x80 || enc[2] != 0 || enc[3] != byte(BatchSDATA) || enc[8] != 0x80 {
		t.Fatalf("reserved bits sent: % x", enc[:12])
	}
}

func TestStrings(t *testing.T) {
	tests := []struct{ got, want string }{
		{BatchCDATA.String(), "CDATA"},
		{BatchSRetry.String(), "SRETRY"},
		{BatchType(9).String(), "BatchType(9)"},
		{MsgRemediationParameters.String(), "PB-Remediation-Parameters"},
		{MessageType(77).String(), "MessageType(77)"},
		{ErrVersionNotSupported.String(), "Version Not Supported"},
		{ErrorCode(12).String(), "ErrorCode(12)"},
		{StateClientWorking.String(), "Client Working"},
		{State(9).String(), "State(9)"},
		{AssessmentDontKnow.String(), "don't know"},
		{RecommendationQuarantined.String(), "quarantined"},
		{(&Error{Fatal: true, Code: ErrInvalidParameter, Offset: 7}).Error(), "pbtnc: fatal Invalid Parameter at offset 7"},
		{(&Error{Vendor: 9, Code: 3}).Error(), "pbtnc: PB-Error vendor 0x9 code 3"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
