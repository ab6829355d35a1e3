package policies

import (
	"errors"
	"testing"
)

func TestNormalizeMAC(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"aa:bb:cc:dd:ee:ff", "aa:bb:cc:dd:ee:ff", true},
		{"AA:BB:CC:DD:EE:FF", "aa:bb:cc:dd:ee:ff", true},
		{"AA-BB-CC-DD-EE-FF", "aa:bb:cc:dd:ee:ff", true},
		{"aabb.ccdd.eeff", "aa:bb:cc:dd:ee:ff", true},
		{"AABB.CCDD.EEFF", "aa:bb:cc:dd:ee:ff", true},
		{"aabbccddeeff", "aa:bb:cc:dd:ee:ff", true},
		{"020000000001", "02:00:00:00:00:01", true},
		{"02:00:00:00:00:01", "02:00:00:00:00:01", true},
		{"", "", false},
		{"aa:bb:cc:dd:ee", "", false},       // too short
		{"aa:bb:cc:dd:ee:ff:00", "", false}, // too long
		{"aa:bb:cc:dd:ee:fg", "", false},    // not hex
		{"aa-bb:cc-dd:ee-ff", "", false},    // mixed separators
		{"a:bb:cc:dd:ee:ff", "", false},     // short group
		{"aabb.ccdd.eef", "", false},        // short dotted group
		{"aabbccddeef", "", false},          // 11 nibbles
		{"aa:bb:cc:*", "", false},           // wildcard is not a MAC
		{"aa:bb:cc:dd:ee:ff ", "", false},   // trailing space
		{"::::::", "", false},
	}
	for _, tt := range tests {
		got, err := NormalizeMAC(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("NormalizeMAC(%q) error = %v, want ok=%v", tt.in, err, tt.ok)
			continue
		}
		if err != nil && !errors.Is(err, ErrBadMAC) {
			t.Errorf("NormalizeMAC(%q) error %v is not ErrBadMAC", tt.in, err)
		}
		if got != tt.want {
			t.Errorf("NormalizeMAC(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestMACPatterns(t *testing.T) {
	tests := []struct {
		pattern string
		ok      bool
		match   []string
		noMatch []string
	}{
		{"02:00:00:00:00:01", true, []string{"02:00:00:00:00:01", "02-00-00-00-00-01", "0200.0000.0001", "020000000001"}, []string{"02:00:00:00:00:02"}},
		{"02:00:00:00:01:*", true, []string{"02:00:00:00:01:00", "02:00:00:00:01:ff"}, []string{"02:00:00:00:02:01"}},
		{"02:00:00:00:01*", true, []string{"02:00:00:00:01:07"}, []string{"02:00:00:00:00:01"}},
		{"30-05-5C-*", true, []string{"30:05:5c:12:34:56"}, []string{"30:05:5d:12:34:56"}},
		{"9c93.4e*", true, []string{"9c:93:4e:00:00:01"}, []string{"9c:93:4f:00:00:01"}},
		{"9c93.*", true, []string{"9c:93:00:00:00:01"}, []string{"9c:94:00:00:00:01"}},
		{"0200000*", true, []string{"02:00:00:0f:ff:ff"}, []string{"02:00:01:00:00:00"}},
		{"*", true, []string{"aa:bb:cc:dd:ee:ff"}, nil},
		{"02:00:00:00:00:01:*", false, nil, nil}, // * after a complete address
		{"02:*:00", false, nil, nil},             // * in the middle
		{"02:0*", false, nil, nil},               // colon groups are whole bytes
		{"zz:*", false, nil, nil},
		{"02:00:00", false, nil, nil}, // prefix without *
		{"**", false, nil, nil},
	}
	for _, tt := range tests {
		p, err := parseMACPattern(tt.pattern)
		if (err == nil) != tt.ok {
			t.Errorf("parseMACPattern(%q) error = %v, want ok=%v", tt.pattern, err, tt.ok)
			continue
		}
		for _, m := range tt.match {
			n, err := macNibbles(m)
			if err != nil {
				t.Fatalf("macNibbles(%q): %v", m, err)
			}
			if !p.matches(n) {
				t.Errorf("pattern %q does not match %q", tt.pattern, m)
			}
		}
		for _, m := range tt.noMatch {
			n, _ := macNibbles(m)
			if p.matches(n) {
				t.Errorf("pattern %q matches %q", tt.pattern, m)
			}
		}
	}
}

func TestGlobMatch(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"alice", "alice", true},
		{"alice", "alicex", false},
		{"srv-*", "srv-01", true},
		{"srv-*", "srv-", true},
		{"srv-*", "sr", false},
		{"*@staff.example", "bob@staff.example", true},
		{"*@staff.example", "bob@staff.example.evil", false},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{"*", "", true},
		{"", "", true},
		{"", "x", false},
		{"a**", "a", true},
		{"?", "?", true}, // only * is special
		{"?", "x", false},
		{"[a]", "a", false},
	}
	for _, tt := range tests {
		if got := globMatch(tt.pattern, tt.s); got != tt.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
		}
	}
}
