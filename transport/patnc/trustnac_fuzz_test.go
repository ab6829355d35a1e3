package patnc

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type trustnacSeed struct {
	typ   uint8
	value []byte
}

// trustnacSeeds are the seeds of FuzzTrustnacAttributes: every sample
// under 4 KiB, every vector and a few malformed values.
func trustnacSeeds() map[string]trustnacSeed {
	seeds := map[string]trustnacSeed{
		"request_nonce_short":  {AttrTPMQuoteRequest, mustHex("01 07 00 00 01020304050607")},
		"request_bank_twice":   {AttrTPMQuoteRequest, mustHex("01 08 02 00 0102030405060708 000b 0000 00000001 000b 0000 00000002")},
		"request_pcr_24":       {AttrTPMQuoteRequest, mustHex("01 08 01 00 0102030405060708 000b 0000 01000000")},
		"quote_count_lies":     {AttrTPMQuote, mustHex("01 00 00c0 0001 0001 aa bb")},
		"quote_digest_lies":    {AttrTPMQuote, mustHex("01 00 0001 0001 0001 aa bb 0004 00 20" + fmt.Sprintf("%064x", 0))},
		"key_cert_cut":         {AttrTPMEK, mustHex("01 00 0001 0003 0000 aa 3000")},
		"challenge_reserved":   {AttrTPMCredentialChallenge, mustHex("01 00 0001 0001 8000 aa bb")},
		"response_secret_129":  {AttrTPMCredentialResponse, mustHex("01 00 0081 aa")},
		"log_past_total":       {AttrMeasurementLog, mustHex("01 01 0000 000000000000000f 0000000000000010 aabb")},
		"unknown_type_11":      {11, mustHex("01 00 0000")},
		"unknown_type_0":       {0, nil},
		"log_version_2_nodata": {AttrMeasurementLog, mustHex("02 01 0000 0000000000000000 0000000000000000")},
	}
	for i, v := range trustnacSamples() {
		b, err := v.AppendBinary(nil)
		if err != nil {
			panic(err)
		}
		if len(b) > 4<<10 {
			continue
		}
		seeds[fmt.Sprintf("sample_%02d_type_%d", i, v.AttrID().Type)] = trustnacSeed{uint8(v.AttrID().Type), b}
	}
	for i, tc := range trustnacVectors {
		seeds[fmt.Sprintf("vector_%02d_type_%d", i, tc.typ)] = trustnacSeed{uint8(tc.typ), mustHex(tc.hex)}
	}
	for i, tc := range pskVectors {
		seeds[fmt.Sprintf("psk_vector_%02d_type_%d", i, tc.typ)] = trustnacSeed{uint8(tc.typ), mustHex(tc.hex)}
	}
	for _, tc := range pskMalformed {
		seeds["psk_bad_"+strings.ReplaceAll(tc.name, " ", "_")] = trustnacSeed{uint8(tc.typ), mustHex(tc.hex)}
	}
	return seeds
}

// TestWriteTrustnacFuzzCorpus rewrites testdata/fuzz/FuzzTrustnacAttributes
// when run with -update-corpus; otherwise it checks that every seed is
// checked in.
func TestWriteTrustnacFuzzCorpus(t *testing.T) {
	for name, s := range trustnacSeeds() {
		path := filepath.Join("testdata", "fuzz", "FuzzTrustnacAttributes", name)
		content := fmt.Sprintf("go test fuzz v1\nbyte(%q)\n[]byte(%q)\n", s.typ, s.value)
		if *updateCorpus {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != content {
			t.Errorf("seed %s is missing or stale (run go test -run TestWriteTrustnacFuzzCorpus -update-corpus): %v", path, err)
		}
	}
}

// FuzzTrustnacAttributes decodes any value as each trustnac type. What
// decodes must re-encode to exactly the input (the layouts have no
// alternative spellings) and decode again to an equal value; what does not
// must be an Invalid Parameter *ParseError inside the value.
func FuzzTrustnacAttributes(f *testing.F) {
	for _, s := range trustnacSeeds() {
		f.Add(s.typ, s.value)
	}
	f.Fuzz(func(t *testing.T, typ uint8, value []byte) {
		in := bytes.Clone(value) // scribbled over below
		a := Attribute{Vendor: VendorTrustnac, Type: uint32(typ), Value: in}
		v, err := DecodeAttribute(a)
		if typ < AttrTPMQuoteRequest || typ > lastTrustnacType {
			if !errors.Is(err, ErrUnknownAttribute) || v != nil {
				t.Fatalf("type %d: %v, %v; want ErrUnknownAttribute", typ, v, err)
			}
			return
		}
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Code != ErrInvalidParameter ||
				!errors.Is(err, ErrMalformed) || !errors.Is(err, ErrInvalidValue) {
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
		if !bytes.Equal(enc, value) {
			t.Fatalf("type %d: re-encoded\n%x\nwant\n%x", typ, enc, value)
		}
		// The decoded value does not share memory with the input.
		for i := range in {
			in[i] ^= 0xff
		}
		if enc2, err := v.AppendBinary(nil); err != nil || !bytes.Equal(enc2, enc) {
			t.Fatalf("type %d: decoded value changed with its input", typ)
		}
	})
}
