package patnc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the seed corpora under testdata/fuzz")

// messageSeeds are the seeds of FuzzParseMessage: valid messages of each
// kind and a few malformed ones.
func messageSeeds() map[string][]byte {
	all := &Message{ID: 77}
	for i, v := range sampleValues() {
		if err := all.Add(v, i%3 == 0); err != nil {
			panic(err)
		}
	}
	allWire, err := all.MarshalBinary()
	if err != nil {
		panic(err)
	}
	seeds := map[string][]byte{
		"rfc_vector":         mustHex(messageVector),
		"every_ietf_type":    allWire,
		"empty":              mustHex("01000000 00000000"),
		"version_2":          mustHex("02000000 00000001"),
		"short_header":       mustHex("010000"),
		"length_below_12":    mustHex("01000000 00000001 00000000 00000001 00000008"),
		"length_past_end":    mustHex("01000000 00000001 00000000 00000001 00000100 00"),
		"trailing_bytes":     mustHex("01000000 00000001 00000000 00000009 00000010 00000000 ff"),
		"bad_value_in_attr":  mustHex("01000000 00000001 80000000 00000004 00000011 05 31 00 00 00"),
		"unknown_noskip_tcg": mustHex("01000000 00000001 80005597 00000001 0000000c"),
	}
	for i, tc := range attrVectors {
		m := &Message{ID: 1, Attributes: []Attribute{{NoSkip: i%2 == 0, Type: tc.typ, Value: mustHex(tc.hex)}}}
		wire, err := m.MarshalBinary()
		if err != nil {
			panic(err)
		}
		seeds[fmt.Sprintf("vector_%02d_type_%d", i, tc.typ)] = wire
	}
	return seeds
}

// attributeSeeds are the seeds of FuzzDecodeAttribute: every vector and
// a few malformed values.
func attributeSeeds() map[string]struct {
	typ   uint8
	value []byte
} {
	type seed = struct {
		typ   uint8
		value []byte
	}
	seeds := map[string]seed{
		"string_version_lies":   {AttrStringVersion, mustHex("05 31")},
		"packages_count_lies":   {AttrInstalledPackages, mustHex("0000 ffff 00 00")},
		"last_use_feb_30":       {AttrOperationalStatus, mustHex("0301 0000" + bytesHex("2010-02-30T00:00:00Z"))},
		"remediation_lang_lies": {AttrRemediationInstructions, mustHex("00000000 00000002 00000001 61 09 65")},
		"pa_error_short_info":   {AttrPATNCError, mustHex("00000000 00000002 0100000000000001")},
		"unknown_type_13":       {AttrSWIMAFirst, mustHex("00000000")},
	}
	for i, tc := range attrVectors {
		seeds[fmt.Sprintf("vector_%02d_type_%d", i, tc.typ)] = seed{uint8(tc.typ), mustHex(tc.hex)}
	}
	return seeds
}

// TestWriteFuzzCorpus rewrites testdata/fuzz when run with -update-corpus;
// otherwise it checks that every seed is checked in.
func TestWriteFuzzCorpus(t *testing.T) {
	write := func(target, name, body string) {
		path := filepath.Join("testdata", "fuzz", target, name)
		content := "go test fuzz v1\n" + body
		if *updateCorpus {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != content {
			t.Errorf("seed %s is missing or stale (run go test -run TestWriteFuzzCorpus -update-corpus): %v", path, err)
		}
	}
	for name, b := range messageSeeds() {
		write("FuzzParseMessage", name, fmt.Sprintf("[]byte(%q)\n", b))
	}
	for name, s := range attributeSeeds() {
		write("FuzzDecodeAttribute", name, fmt.Sprintf("byte(%q)\n[]byte(%q)\n", s.typ, s.value))
	}
}

// canonical returns data with the bits a receiver ignores cleared: the
// reserved 24 bits of the message header and the reserved flag bits of each
// attribute header (RFC 5792 §4.1, §4.2). data must be a valid message.
func canonical(data []byte) []byte {
	c := bytes.Clone(data)
	c[1], c[2], c[3] = 0, 0, 0
	for off := HeaderLen; off < len(c); off += int(binary.BigEndian.Uint32(c[off+8:])) {
		c[off] &= FlagNoSkip
	}
	return c
}

func FuzzParseMessage(f *testing.F) {
	for _, b := range messageSeeds() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseMessage(data, 0)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v (%T) is not a *ParseError", err, err)
			}
			if uint64(pe.Offset) > uint64(len(data)) {
				t.Fatalf("offset %d past the %d input bytes", pe.Offset, len(data))
			}
			if _, err := EncodeAttribute(pe.PAError(data), false); err != nil {
				t.Fatalf("cannot encode the PA-TNC error answering %v: %v", pe, err)
			}
			return
		}
		out, err := m.MarshalBinary()
		if err != nil {
			t.Fatalf("MarshalBinary of a parsed message: %v", err)
		}
		if want := canonical(data); !bytes.Equal(out, want) {
			t.Fatalf("re-encoded\n%x\nwant\n%x", out, want)
		}
		m2, err := ParseMessage(out, 0)
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("parse → marshal → parse changed\n%+v\nto\n%+v", m, m2)
		}
		for i, a := range m.Attributes {
			v, err := m.DecodeAt(i)
			if err != nil {
				var pe *ParseError
				switch {
				case errors.Is(err, ErrUnknownAttribute):
				case errors.As(err, &pe):
					lo, _ := m.ValueOffset(i)
					if pe.Offset < lo || uint64(pe.Offset) > uint64(lo)+uint64(len(a.Value)) {
						t.Fatalf("attribute %d: offset %d outside its value [%d, %d]", i, pe.Offset, lo, lo+uint32(len(a.Value)))
					}
				default:
					t.Fatalf("attribute %d: unexpected error %v", i, err)
				}
				continue
			}
			checkValueRoundTrip(t, v)
		}
		for _, e := range UnsupportedNoSkip(m, nil) {
			if _, err := EncodeAttribute(e, false); err != nil {
				t.Fatalf("cannot encode %v: %v", e, err)
			}
		}
	})
}

// checkValueRoundTrip encodes a decoded value and decodes it again; the
// result must equal it and re-encode to the same bytes.
func checkValueRoundTrip(t *testing.T, v Value) []byte {
	t.Helper()
	a, err := EncodeAttribute(v, false)
	if err != nil {
		t.Fatalf("encode decoded %#v: %v", v, err)
	}
	v2, err := DecodeAttribute(a)
	if err != nil {
		t.Fatalf("decode re-encoded %x: %v", a.Value, err)
	}
	if !reflect.DeepEqual(v, v2) {
		t.Fatalf("decode → encode → decode changed\n%#v\nto\n%#v", v, v2)
	}
	a2, err := EncodeAttribute(v2, false)
	if err != nil || !bytes.Equal(a.Value, a2.Value) {
		t.Fatalf("encoding is not stable: %x then %x (%v)", a.Value, a2.Value, err)
	}
	return a.Value
}

func FuzzDecodeAttribute(f *testing.F) {
	for _, s := range attributeSeeds() {
		f.Add(s.typ, s.value)
	}
	f.Fuzz(func(t *testing.T, typ uint8, value []byte) {
		a := Attribute{Type: uint32(typ), Value: value}
		v, err := DecodeAttribute(a)
		if typ < AttrAttributeRequest || typ > AttrFactoryDefaultPasswordEnabled {
			if !errors.Is(err, ErrUnknownAttribute) {
				t.Fatalf("type %d: error %v, want ErrUnknownAttribute", typ, err)
			}
			return
		}
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Code != ErrInvalidParameter || !errors.Is(err, ErrMalformed) {
				t.Fatalf("type %d: error %v (%T) is not an invalid-parameter *ParseError", typ, err, err)
			}
			if uint64(pe.Offset) > uint64(len(value)) {
				t.Fatalf("type %d: offset %d past the %d value bytes", typ, pe.Offset, len(value))
			}
			return
		}
		if v.AttrID() != a.ID() {
			t.Fatalf("decoded %v as %v", a.ID(), v.AttrID())
		}
		enc := checkValueRoundTrip(t, v)
		// Types without reserved bits or alternative spellings re-encode
		// to exactly the input.
		switch typ {
		case AttrProductInformation, AttrNumericVersion, AttrStringVersion,
			AttrAssessmentResult, AttrForwardingEnabled, AttrFactoryDefaultPasswordEnabled:
			if !bytes.Equal(enc, value) {
				t.Fatalf("type %d: re-encoded %x, want %x", typ, enc, value)
			}
		}
	})
}
