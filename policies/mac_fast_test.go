package policies

import (
	"strings"
	"testing"
)

func TestSameMAC(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"020000000001", "02:00:00:00:00:01", true},
		{"02-00-00-00-00-01", "0200.0000.0001", true},
		{"AA:BB:CC:DD:EE:FF", "aabbccddeeff", true},
		{"020000000001", "02:00:00:00:00:02", false},
		{"alice", "02:00:00:00:00:01", false},
		{"02:00:00:00:00:01", "alice", false},
		{"", "", false},
		{"02:00:00:*", "02:00:00:00:00:01", false}, // a prefix is not an address
		{"02:00-00:00:00:01", "02:00:00:00:00:01", false},
	}
	for _, tt := range tests {
		if got := SameMAC(tt.a, tt.b); got != tt.want {
			t.Errorf("SameMAC(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

// TestMACHelpersDoNotAllocate pins the property the RADIUS hot path relies on.
func TestMACHelpersDoNotAllocate(t *testing.T) {
	p, err := Parse("p.yaml", []byte(`version: 1
default: {role: deny}
groups:
  - {name: staff, identities: ["alice"], auth_role: admit}
  - {name: phones, macs: ["00:04:f2:*"], mab_role: admit}
`))
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { SameMAC("020000000001", "02-00-00-00-00-01") }); n != 0 {
		t.Errorf("SameMAC: %v allocations", n)
	}
	if n := testing.AllocsPerRun(100, func() { SameMAC("alice", "02-00-00-00-00-01") }); n != 0 {
		t.Errorf("SameMAC of a non-MAC: %v allocations", n)
	}
	// groupsOf of an endpoint without a MAC builds no error for its absent MAC.
	ep := Endpoint{Identity: "bob", Channel: "pap"}
	if n := testing.AllocsPerRun(100, func() { p.GroupsOf(ep) }); n != 0 {
		t.Errorf("GroupsOf without MAC or group: %v allocations", n)
	}
}

// FuzzParseMAC checks that the allocation-free parser takes exactly the full addresses that
// parseMACPattern does, with the same nibbles, and that SameMAC agrees with NormalizeMAC.
func FuzzParseMAC(f *testing.F) {
	for _, s := range []string{"02:00:00:00:00:01", "AA-BB-CC-DD-EE-FF", "aabb.ccdd.eeff", "AABBCCDDEEFF",
		"02:00:*", "aa:bb-cc:dd:ee:ff", "aabb.ccdd.eef", "0200.0000.0001", "zz:zz:zz:zz:zz:zz", ""} {
		f.Add(s, "020000000001")
	}
	f.Fuzz(func(t *testing.T, s, other string) {
		n, ok := parseMAC(s)
		p, err := parseMACPattern(s)
		full := err == nil && !p.prefix
		if ok != full {
			t.Fatalf("parseMAC(%q) ok=%v, parseMACPattern full=%v (%+v, %v)", s, ok, full, p, err)
		}
		norm, nerr := NormalizeMAC(s)
		if ok {
			if string(n[:]) != p.nibbles {
				t.Fatalf("parseMAC(%q) = %q, parseMACPattern %q", s, n[:], p.nibbles)
			}
			if nerr != nil || strings.ReplaceAll(norm, ":", "") != p.nibbles {
				t.Fatalf("NormalizeMAC(%q) = %q, %v", s, norm, nerr)
			}
		} else if nerr == nil {
			t.Fatalf("NormalizeMAC(%q) = %q, want an error", s, norm)
		}
		o, oerr := NormalizeMAC(other)
		want := nerr == nil && oerr == nil && norm == o
		if got := SameMAC(s, other); got != want {
			t.Fatalf("SameMAC(%q, %q) = %v, want %v", s, other, got, want)
		}
	})
}
