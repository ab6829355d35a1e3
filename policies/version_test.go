package policies

import (
	"testing"
)

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		// Numeric comparison of digit runs.
		{"12", "9", 1},
		{"9", "12", -1},
		{"1.010", "1.10", 0},
		{"1.0.0", "1.0", 1},
		{"22.04", "22.10", -1},
		{"1.2.3", "1.2.3", 0},
		{"000", "0", 0},
		{"18446744073709551616", "18446744073709551615", 1}, // longer than uint64: no overflow
		// Epochs.
		{"1:9.2p1-2", "9.9", 1},
		{"1:0", "9999", 1},
		{"0:1.0", "1.0", 0},
		{"2:1.0", "10:0.1", -1},
		{"99999999999999999999:1", "1:1", 1},
		{"a:1", "a:1", 0},   // not an epoch: compared as upstream
		{"a:2", "a:10", -1}, // still numeric inside
		// Revisions.
		{"1.0-1", "1.0-2", -1},
		{"1.0", "1.0-0", 0},
		{"1.0-1", "1.0.1", -1},
		{"1.2-3-4", "1.2-3-10", -1}, // the revision is after the last hyphen
		{"2.36-9+deb12u9", "2.36-9", 1},
		{"1:9.2p1-2+deb12u3", "1:9.2p1-2", 1},
		{"1:9.2p1-2+deb12u3", "1:9.2p1-2+deb12u10", -1},
		// Tilde sorts before everything, even the end of the string.
		{"1.0~rc1", "1.0", -1},
		{"1.0~rc1", "1.0~rc2", -1},
		{"1.0~~", "1.0~", -1},
		{"1.0~", "1.0", -1},
		{"1.0~~a", "1.0~", -1},
		{"3.0.15-1~deb12u1", "3.0.15-1", -1},
		{"3.0.15-1~deb12u1", "3.0.13", 1},
		// Letters sort before non-letters; the end before letters.
		{"1.0", "1.0a", -1},
		{"1.0a", "1.0+", -1},
		{"1.0a", "1.0.", -1},
		{"1.0+", "1.0.", -1}, // '+' < '.' in ASCII
		{"1a", "1b", -1},
		{"1A", "1a", -1},
		{"9.2p1", "9.2", 1},
		{"9.2p1", "9.3", -1},
		// Not Debian versions, still ordered sensibly.
		{"", "", 0},
		{"", "0", 0},
		{"", "1", -1},
		{"1.2-3.el9", "1.2-3.el8", 1},
		{"v2", "v10", -1},
	}
	for _, tt := range tests {
		if got := CompareVersions(tt.a, tt.b); got != tt.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := CompareVersions(tt.b, tt.a); got != -tt.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d (antisymmetry)", tt.b, tt.a, got, -tt.want)
		}
		if got := VersionAtLeast(tt.a, tt.b); got != (tt.want >= 0) {
			t.Errorf("VersionAtLeast(%q, %q) = %v", tt.a, tt.b, got)
		}
	}
}

// TestCompareVersionsSorted checks transitivity over a list in dpkg's order.
func TestCompareVersionsSorted(t *testing.T) {
	ordered := []string{
		"~~", "~~a", "~", "0", "0.9~rc1", "0.9", "0.9a", "0.9+b1", "0.9.1", "1.0~beta",
		"1.0", "1.0-1", "1.0-1+deb12u1", "1.0-2", "1.0a", "1.0.1", "1.2", "1.10", "9", "12",
		"1:0", "1:1.0~rc1", "1:1.0", "2:0",
	}
	for i := range ordered {
		for j := range ordered {
			want := 0
			switch {
			case i < j:
				want = -1
			case i > j:
				want = 1
			}
			if got := CompareVersions(ordered[i], ordered[j]); got != want {
				t.Errorf("CompareVersions(%q, %q) = %d, want %d", ordered[i], ordered[j], got, want)
			}
		}
	}
}

func TestCELVersionFunctions(t *testing.T) {
	tests := []struct {
		expr string
		os   map[string]any
		want bool
		err  bool
	}{
		{`os.version.version_at_least("12")`, map[string]any{"version": "12"}, true, false},
		{`os.version.version_at_least("12")`, map[string]any{"version": "9"}, false, false},
		{`os.version.version_at_least("9")`, map[string]any{"version": "12"}, true, false},
		{`version_compare(os.version, "12") == 0`, map[string]any{"version": "12.0"}, false, false},
		{`version_compare(os.version, "12") == 1`, map[string]any{"version": "12.1"}, true, false},
		{`version_compare("1.0~rc1", "1.0") == -1`, nil, true, false},
		{`"1:9.2p1-2".version_at_least("9.9")`, nil, true, false},
		{`"openssh-server" in os.packages && os.packages["openssh-server"].version_at_least("1:9.2")`,
			map[string]any{"packages": map[string]any{"openssh-server": "1:9.2p1-2+deb12u3"}}, true, false},
		{`"openssh-server" in os.packages && os.packages["openssh-server"].version_at_least("1:9.2")`,
			map[string]any{"packages": map[string]string{"openssh-server": "1:8.4p1-5"}}, false, false},
		// A version fact of the wrong type is a runtime error: the rule does not match.
		{`os.version.version_at_least("12")`, map[string]any{"version": int64(12)}, false, true},
		// A missing fact is a runtime error too.
		{`os.version.version_at_least("12")`, map[string]any{}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			src := "version: 1\nrules:\n  - name: r\n    when: '" + escapeSingle(tt.expr) + "'\n    role: admit\ndefault: {role: deny}\n"
			p, err := Parse("v.yaml", []byte(src))
			if err != nil {
				t.Fatal(err)
			}
			d := p.Decide(Endpoint{}, Facts{"os": tt.os})
			if got := d.Role == RoleAdmit; got != tt.want {
				t.Errorf("matched = %v, want %v (trace %+v)", got, tt.want, d.Trace)
			}
			if d.Trace[0].Errored != tt.err {
				t.Errorf("errored = %v, want %v (trace %+v)", d.Trace[0].Errored, tt.err, d.Trace)
			}
		})
	}
}

func escapeSingle(s string) string {
	out := ""
	for _, c := range s {
		if c == '\'' {
			out += "''"
		} else {
			out += string(c)
		}
	}
	return out
}
