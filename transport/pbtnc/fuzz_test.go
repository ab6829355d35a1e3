package pbtnc

import (
	"bytes"
	"encoding"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// normalize clears the reserved bits of a structurally valid batch: the
// bits a decode/encode round trip does not keep.
func normalize(data []byte) []byte {
	out := append([]byte(nil), data...)
	out[1] &= flagDirection
	out[2] = 0
	out[3] &= batchTypeMask
	for off := BatchHeaderLen; off+MessageHeaderLen <= len(out); {
		out[off] &= flagNoSkip
		off += int(binary.BigEndian.Uint32(out[off+8:]))
	}
	return out
}

// FuzzParseBatch checks that ParseBatch never panics and that an accepted
// batch re-encodes to the same bytes (reserved bits aside) and decodes to
// the same value.
func FuzzParseBatch(f *testing.F) {
	for _, s := range parseBatchSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var structural Batch
		serr := structural.UnmarshalBinary(data)
		b, err := ParseBatch(data, 0)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || !pe.Fatal {
				t.Fatalf("error %v is not a fatal *Error", err)
			}
			if _, err := pe.AppendBinary(nil); err != nil {
				t.Fatalf("error %v cannot be sent: %v", pe, err)
			}
			return
		}
		if serr != nil {
			t.Fatalf("ParseBatch accepts what UnmarshalBinary rejects: %v", serr)
		}
		if !reflect.DeepEqual(&structural, b) {
			t.Fatalf("UnmarshalBinary %+v != ParseBatch %+v", structural, b)
		}
		enc, err := b.MarshalBinary()
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if !bytes.Equal(enc, normalize(data)) {
			t.Fatalf("re-encoded % x\nwant        % x", enc, normalize(data))
		}
		b2, err := ParseBatch(enc, 0)
		if err != nil || !reflect.DeepEqual(b, b2) {
			t.Fatalf("second decode %+v, %v\nwant %+v", b2, err, b)
		}
	})
}

// messageDecoders returns a fresh value for each typed body, by message
// type; the fuzz target picks one with its first argument.
func messageDecoder(t MessageType) interface {
	encoding.BinaryUnmarshaler
} {
	switch t {
	case MsgPA:
		return &PA{}
	case MsgAssessmentResult:
		return new(AssessmentResult)
	case MsgAccessRecommendation:
		return new(AccessRecommendation)
	case MsgRemediationParameters:
		return &RemediationParameters{}
	case MsgError:
		return &Error{}
	case MsgLanguagePreference:
		return new(LanguagePreference)
	default:
		return &ReasonString{}
	}
}

// FuzzMessageValues checks each typed message decoder: no panic, failures
// are *Error with an offset inside the value, and decode → encode → decode
// gives the same value.
func FuzzMessageValues(f *testing.F) {
	for _, s := range messageValueSeeds(f) {
		f.Add(s.typ, s.data)
	}
	f.Fuzz(func(t *testing.T, typ uint8, data []byte) {
		mt := MessageType(typ%7) + MsgPA
		v := messageDecoder(mt)
		if err := v.UnmarshalBinary(data); err != nil {
			var pe *Error
			if !errors.As(err, &pe) || pe.Code != ErrInvalidParameter {
				t.Fatalf("error %v is not Invalid Parameter", err)
			}
			if pe.Offset > uint32(len(data)) {
				t.Fatalf("offset %d beyond %d bytes", pe.Offset, len(data))
			}
			return
		}
		enc, err := v.(binaryAppender).AppendBinary(nil)
		if err != nil {
			t.Fatalf("re-encode %+v: %v", v, err)
		}
		if msg := v.(interface{ Message() Message }).Message(); !bytes.Equal(msg.Value, enc) || msg.Type != mt {
			t.Fatalf("Message() = %+v, AppendBinary = % x", msg, enc)
		}
		w := messageDecoder(mt)
		if err := w.UnmarshalBinary(enc); err != nil {
			t.Fatalf("decode of re-encoded % x: %v", enc, err)
		}
		if !reflect.DeepEqual(v, w) {
			t.Fatalf("round trip %+v != %+v", w, v)
		}
	})
}

// checkStep checks the invariants of one Step of either side.
func checkStep(t *testing.T, m *machine, out []byte, err error, st State) {
	t.Helper()
	if st < StateInit || st > StateEnd {
		t.Fatalf("invalid state %d", st)
	}
	if out == nil {
		if err != nil && !errors.Is(err, ErrPeerError) && !errors.Is(err, ErrClosed) && st != StateEnd {
			t.Fatalf("error %v without a reply in state %v", err, st)
		}
		return
	}
	b, perr := ParseBatch(out, m.maxSize)
	if perr != nil {
		t.Fatalf("reply does not parse: %v", perr)
	}
	if b.FromServer != m.server {
		t.Fatalf("reply D bit %v from server=%v", b.FromServer, m.server)
	}
	if (b.Type == BatchClose) != (st == StateEnd) {
		t.Fatalf("reply %v in state %v", b.Type, st)
	}
	var pe *Error
	if err != nil && !errors.Is(err, ErrPeerError) {
		if !errors.As(err, &pe) {
			t.Fatalf("error %v carries no *Error", err)
		}
		if b.Type != BatchClose || len(b.Messages) != 1 || b.Messages[0].Type != MsgError {
			t.Fatalf("error %v but reply %+v", err, b)
		}
		var sent Error
		if uerr := sent.UnmarshalBinary(b.Messages[0].Value); uerr != nil || sent.Code != pe.Code || !sent.Fatal {
			t.Fatalf("sent %+v (%v) for %v", sent, uerr, pe)
		}
	}
}

// FuzzServerStep drives a server with up to three arbitrary batches.
func FuzzServerStep(f *testing.F) {
	for _, s := range serverStepSeeds(f) {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, a, b, c []byte) {
		s := NewServer(&testIMV{rounds: 1, result: fullResult()}, Config{MaxBatchSize: 4096, MaxRounds: 4})
		for _, in := range [][]byte{a, b, c} {
			out, err := s.Step(ctx, in)
			checkStep(t, &s.machine, out, err, s.State())
		}
	})
}

// FuzzClientStep drives a client (started or not) with up to three
// arbitrary batches.
func FuzzClientStep(f *testing.F) {
	for _, s := range clientStepSeeds(f) {
		f.Add(s.start, s.in[0], s.in[1], s.in[2])
	}
	f.Fuzz(func(t *testing.T, start bool, a, b, c []byte) {
		cl := NewClient(&testIMC{}, Config{MaxBatchSize: 4096, MaxRounds: 4, Language: "en"})
		if start {
			out, err := cl.Start(ctx)
			if err != nil {
				t.Fatal(err)
			}
			checkStep(t, &cl.machine, out, err, cl.State())
		}
		for _, in := range [][]byte{a, b, c} {
			out, err := cl.Step(ctx, in)
			checkStep(t, &cl.machine, out, err, cl.State())
		}
	})
}

// Seeds. They are also checked in under testdata/fuzz; regenerate with
// go test -run TestWriteFuzzSeeds -update-seeds.

func parseBatchSeeds(t testing.TB) [][]byte {
	pa := PA{Subtype: SubtypeOS, CollectorID: 1, ValidatorID: AnyID, Body: unhex(t, "01000000 00000001")}.Message()
	version1 := raw(t, false, BatchCDATA, pa)
	version1[0] = 1
	truncated := raw(t, false, BatchCDATA, pa)
	truncated = truncated[:len(truncated)-3]
	return [][]byte{
		unhex(t, stripComments(vecCDATA)),
		unhex(t, stripComments(vecResult)),
		unhex(t, stripComments(vecClose)),
		raw(t, false, BatchCDATA, LanguagePreference("en").Message(), pa, Message{Vendor: 0x5597, Type: 3, Value: []byte("v")}),
		raw(t, true, BatchSDATA, pa, Error{Code: ErrLocalError}.Message()),
		raw(t, false, BatchCRetry),
		raw(t, true, BatchSRetry),
		raw(t, false, BatchClose),
		version1,
		truncated,
		raw(t, true, BatchSDATA, Message{NoSkip: true, Vendor: 0x5597, Type: 3}),
		raw(t, true, BatchSDATA, AssessmentCompliant.Message()),
		[]byte("<?xml version=\"1.0\"?>"),
	}
}

type valueSeed struct {
	typ  uint8
	data []byte
}

func messageValueSeeds(t testing.TB) []valueSeed {
	enc := func(v binaryAppender) []byte {
		b, err := v.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	idx := func(m MessageType) uint8 { return uint8(m - MsgPA) }
	return []valueSeed{
		{idx(MsgPA), enc(PA{Exclusive: true, Subtype: SubtypeFirewall, CollectorID: 2, ValidatorID: 3, Body: []byte("x")})},
		{idx(MsgAssessmentResult), enc(AssessmentError)},
		{idx(MsgAccessRecommendation), enc(RecommendationQuarantined)},
		{idx(MsgRemediationParameters), enc(RemediationParameters{Type: RemediationURI, URI: "http://r/x"})},
		{idx(MsgRemediationParameters), enc(RemediationParameters{Type: RemediationString, Text: "fix", Lang: "en"})},
		{idx(MsgError), enc(Error{Fatal: true, Code: ErrVersionNotSupported, BadVersion: 1, MaxVersion: 2, MinVersion: 2})},
		{idx(MsgError), enc(Error{Fatal: true, Code: ErrUnsupportedMandatoryMessage, Header: unhex(t, "80000009 00000001")})},
		{idx(MsgLanguagePreference), enc(LanguagePreference("en-US, fr;q=0.5"))},
		{idx(MsgReasonString), enc(ReasonString{Reason: "quote failed", Lang: "en"})},
		{idx(MsgReasonString), unhex(t, "ffffffff 00")},
		{idx(MsgError), unhex(t, "80000000 00010000 00")},
		{idx(MsgLanguagePreference), []byte("Accept-Language: \x00")},
	}
}

func serverStepSeeds(t testing.TB) [][3][]byte {
	pa := PA{Subtype: SubtypeOS, CollectorID: 1, ValidatorID: AnyID, Body: []byte("os")}.Message()
	cdata := raw(t, false, BatchCDATA, LanguagePreference("en").Message(), pa)
	wrongD := raw(t, true, BatchCDATA, pa)
	return [][3][]byte{
		{cdata, raw(t, false, BatchCDATA, pa), raw(t, false, BatchCRetry)},
		{cdata, raw(t, false, BatchClose, Error{Fatal: true, Code: ErrLocalError}.Message()), nil},
		{raw(t, false, BatchCDATA, pa, Message{NoSkip: true, Type: 99}), nil, nil},
		{wrongD, nil, nil},
		{raw(t, false, BatchCRetry), cdata, cdata},
		{cdata, raw(t, false, BatchCDATA, Error{Code: ErrLocalError}.Message()), raw(t, false, BatchCRetry)},
		{parseBatchSeeds(t)[8], nil, nil},
	}
}

type clientSeed struct {
	start bool
	in    [3][]byte
}

func clientStepSeeds(t testing.TB) []clientSeed {
	pa := PA{Subtype: SubtypeOS, CollectorID: AnyID, ValidatorID: 7, Body: []byte("nonce")}.Message()
	sdata := raw(t, true, BatchSDATA, pa)
	result := unhex(t, stripComments(vecResult))
	return []clientSeed{
		{true, [3][]byte{sdata, result, raw(t, true, BatchSRetry)}},
		{true, [3][]byte{result, raw(t, true, BatchSRetry), sdata}},
		{false, [3][]byte{sdata, sdata, result}},
		{true, [3][]byte{unhex(t, stripComments(vecClose)), nil, nil}},
		{true, [3][]byte{raw(t, false, BatchSDATA, pa), nil, nil}},
		{true, [3][]byte{raw(t, true, BatchSDATA, Message{NoSkip: true, Vendor: 9, Type: 1}), nil, nil}},
		{true, [3][]byte{raw(t, true, BatchResult, AssessmentCompliant.Message(), AssessmentCompliant.Message()), nil, nil}},
	}
}

var updateSeeds = flag.Bool("update-seeds", false, "rewrite the fuzz seed corpora under testdata/fuzz")

// TestWriteFuzzSeeds writes the seed corpora in the "go test fuzz v1"
// format when run with -update-seeds.
func TestWriteFuzzSeeds(t *testing.T) {
	if !*updateSeeds {
		t.Skip("run with -update-seeds to rewrite testdata/fuzz")
	}
	write := func(target string, i int, args ...any) {
		var buf bytes.Buffer
		buf.WriteString("go test fuzz v1\n")
		for _, a := range args {
			switch v := a.(type) {
			case []byte:
				fmt.Fprintf(&buf, "[]byte(%q)\n", v)
			case uint8:
				fmt.Fprintf(&buf, "byte(%q)\n", rune(v))
			case bool:
				fmt.Fprintf(&buf, "bool(%v)\n", v)
			}
		}
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i, s := range parseBatchSeeds(t) {
		write("FuzzParseBatch", i, s)
	}
	for i, s := range messageValueSeeds(t) {
		write("FuzzMessageValues", i, s.typ, s.data)
	}
	for i, s := range serverStepSeeds(t) {
		write("FuzzServerStep", i, s[0], s[1], s[2])
	}
	for i, s := range clientStepSeeds(t) {
		write("FuzzClientStep", i, s.start, s.in[0], s.in[1], s.in[2])
	}
}
