package ima

import (
	"bytes"
	"reflect"
	"testing"
)

// FuzzParseBinary checks that a parsed list re-encodes byte for byte, parses again to the
// same entries, and that Replay and Check accept whatever ParseBinary returns.
func FuzzParseBinary(f *testing.F) {
	f.Add(encodeAll(sampleLog()))
	f.Add(encodeAll(sampleLog()[:1]))
	f.Fuzz(func(t *testing.T, log []byte) {
		entries, err := ParseBinary(log, 1000)
		if err != nil {
			return
		}
		var out []byte
		for i := range entries {
			if out, err = entries[i].AppendBinary(out); err != nil {
				t.Fatalf("entry %d does not encode: %v", i, err)
			}
		}
		if !bytes.Equal(out, log) {
			t.Fatal("AppendBinary(ParseBinary(log)) != log")
		}
		again, err := ParseBinary(out, 1000)
		if err != nil || !reflect.DeepEqual(again, entries) {
			t.Fatalf("second parse differs: %v", err)
		}
		for _, alg := range []uint16{AlgSHA1, AlgSHA256, AlgSM3256} {
			v, err := Replay(entries, alg)
			if err == nil && len(v) == 0 {
				t.Fatal("Replay returned an empty value")
			}
		}
		a, _ := ParseAllowlist([]byte("exclude /tmp/**\n"))
		for _, v := range a.Check(entries) {
			if v.Reason == "" {
				t.Fatal("violation without a reason")
			}
		}
	})
}

// FuzzParseAllowlist checks that a parsed allowlist written back in canonical form parses to
// the same allowlist, and that Check and Excluded accept it.
func FuzzParseAllowlist(f *testing.F) {
	f.Add([]byte("# list\n" + hexOf(sha256Of("bash")) + "  /usr/bin/bash\nsm3:" + hexOf(make([]byte, 32)) + " */x y\nexclude /var/**\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := ParseAllowlist(data)
		if err != nil {
			return
		}
		text, err := a.AppendText(nil)
		if err != nil {
			t.Fatal(err)
		}
		b, err := ParseAllowlist(text)
		if err != nil {
			t.Fatalf("canonical form does not parse: %v\n%q", err, text)
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("canonical form parses differently:\n%q", text)
		}
		entries := []Entry{{PCR: 10, Template: "ima-ng", TemplateHash: []byte{1}, FileDigest: make([]byte, 32), FileDigestAlg: "sha256", Path: "/usr/bin/bash"}}
		a.Check(entries)
		a.Excluded("/var/lib/x")
	})
}
