package policies

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const validPolicy = `version: 1
roles:
  admit:     { vlan: 10, filter_id: "admit" }
  remediate: { vlan: 30, filter_id: "remediate", remediation: { text: "fix it", uri: "https://fix.example/" } }
  isolate:   { vlan: 99, filter_id: "isolate", session_timeout: 300, remediation: { text: "call us" } }
  assess:    { vlan: 20, filter_id: "assess" }
  deny:      {}
groups:
  - name: lab-servers
    macs: ["02:00:00:00:00:01", "02:00:00:00:01:*"]
    identities: ["alice", "srv-*"]
    aks: ["sha256:ABCDEF"]
    match: 'endpoint.channel == "pt-tls"'
  - name: printers
    macs: ["30-05-5c-*"]
    mab_role: assess
rules:
  - name: debian-12-hardened
    groups: [lab-servers]
    when: 'os.name == "debian" && os.version.version_at_least("12") && os.forwarding == "disabled"'
    role: admit
    reason: "Debian 12 or later, forwarding off"
  - name: telnet-open
    when: 'os.listening.exists(p, p.port == 23)'
    role: remediate
    reason: "telnet is listening on port 23"
    remediation: { text: "Remove telnetd", uri: "https://remediation.example/telnet" }
  - name: printers-assess
    groups: [printers]
    role: assess
default: { role: isolate, reason: "no rule matched" }
`

func TestParseValid(t *testing.T) {
	p, err := Parse("valid.yaml", []byte(validPolicy))
	if err != nil {
		t.Fatal(err)
	}
	if p.Version != 1 || p.File != "valid.yaml" || !strings.HasPrefix(p.Digest, "sha256:") || len(p.Digest) != 7+64 {
		t.Errorf("header: %+v", p)
	}
	if len(p.Roles) != 5 {
		t.Errorf("roles: %+v", p.Roles)
	}
	iso := p.Roles[RoleIsolate]
	if iso.VLAN != 99 || iso.FilterID != "isolate" || iso.SessionTimeout != 300 || iso.Remediation == nil || iso.Remediation.Text != "call us" || iso.Line != 5 {
		t.Errorf("isolate role: %+v", iso)
	}
	if len(p.Groups) != 2 || p.Groups[0].Name != "lab-servers" || len(p.Groups[0].MACs) != 2 || p.Groups[0].Line != 9 {
		t.Errorf("groups: %+v", p.Groups)
	}
	if p.Groups[1].MABRole != RoleAssess {
		t.Errorf("printers mab_role = %q", p.Groups[1].MABRole)
	}
	if len(p.Rules) != 3 || p.Rules[1].Remediation == nil || p.Rules[1].Remediation.URI != "https://remediation.example/telnet" {
		t.Errorf("rules: %+v", p.Rules)
	}
	if p.Rules[2].When != "" || p.Rules[2].Groups[0] != "printers" {
		t.Errorf("group-only rule: %+v", p.Rules[2])
	}
	if p.Default.Role != RoleIsolate || p.Default.Reason != "no rule matched" {
		t.Errorf("default: %+v", p.Default)
	}
	if p.MABDefault.Role != RoleAssess {
		t.Errorf("mab default: %+v", p.MABDefault)
	}
	// Same bytes, same digest; different bytes, different digest.
	q, _ := Parse("other.yaml", []byte(validPolicy))
	r, _ := Parse("valid.yaml", []byte(validPolicy+"# comment\n"))
	if q.Digest != p.Digest || r.Digest == p.Digest {
		t.Errorf("digests: %s %s %s", p.Digest, q.Digest, r.Digest)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name      string
		src       string
		line, col int    // of the expected error; line -1, col 0 = don't check
		msg       string // substring of the expected error's message
	}{
		{"empty file", "", 0, 0, "empty policy file"},
		{"comments only", "# nothing\n", 0, 0, "empty policy file"},
		{"not a mapping", "- a\n- b\n", 1, 1, "policy file must be a mapping"},
		{"yaml syntax", "version: 1\ndefault:\n\t role: deny\n", 3, 0, "YAML: found character that cannot start any token"},
		{"yaml unclosed flow", "version: 1\ndefault: {role: deny\n", -1, 0, "YAML: did not find expected ',' or '}'"},
		{"two documents", "version: 1\ndefault: {role: deny}\n---\nversion: 1\n", 3, 1, "more than one YAML document"},
		{"missing version", "default: {role: deny}\n", 1, 1, `missing required field "version"`},
		{"missing default", "version: 1\n", 1, 1, `missing required field "default"`},
		{"wrong version", "version: 2\ndefault: {role: deny}\n", 1, 10, "unsupported version 2"},
		{"version not int", "version: \"1\"\ndefault: {role: deny}\n", 1, 10, "version must be an integer"},
		{"unknown top field", "version: 1\npolicy: x\ndefault: {role: deny}\n", 2, 1, `unknown field "policy"`},
		{"duplicate top field", "version: 1\nversion: 1\ndefault: {role: deny}\n", 2, 1, `duplicate field "version"`},
		{"unknown role key", "version: 1\nroles:\n  quarantine: {vlan: 5}\ndefault: {role: deny}\n", 3, 3, `unknown field "quarantine"`},
		{"unknown role field", "version: 1\nroles:\n  admit: {vlna: 5}\ndefault: {role: deny}\n", 3, 11, `role admit: unknown field "vlna"`},
		{"vlan zero", "version: 1\nroles:\n  admit: {vlan: 0}\ndefault: {role: deny}\n", 3, 17, "vlan 0 out of range 1..4094"},
		{"vlan too big", "version: 1\nroles:\n  admit:\n    vlan: 4095\ndefault: {role: deny}\n", 4, 11, "vlan 4095 out of range 1..4094"},
		{"vlan string", "version: 1\nroles:\n  admit:\n    vlan: ten\ndefault: {role: deny}\n", 4, 11, "vlan must be an integer"},
		{"negative timeout", "version: 1\nroles:\n  admit: {session_timeout: -1}\ndefault: {role: deny}\n", 3, 28, "session_timeout -1 out of range"},
		{"long filter id", "version: 1\nroles:\n  admit: {filter_id: " + strings.Repeat("f", 254) + "}\ndefault: {role: deny}\n", 3, 22, "filter_id must be 1..253 bytes"},
		{"remediation empty", "version: 1\nroles:\n  isolate: {remediation: {}}\ndefault: {role: deny}\n", 3, 26, "give text, uri or both"},
		{"remediation bad uri", "version: 1\nroles:\n  isolate: {remediation: {uri: \"fix.example/x\"}}\ndefault: {role: deny}\n", 3, 32, "must be an absolute http or https URI"},
		{"remediation ftp uri", "version: 1\nroles:\n  isolate: {remediation: {uri: \"ftp://fix.example/x\"}}\ndefault: {role: deny}\n", 3, 32, "must be an absolute http or https URI"},
		{"default unknown role", "version: 1\ndefault: {role: quarantine}\n", 2, 17, `unknown role "quarantine"`},
		{"default no role", "version: 1\ndefault: {reason: x}\n", 2, 10, `default: missing required field "role"`},
		{"default null", "version: 1\ndefault:\n", 2, 0, `default: missing required field "role"`},
		{"groups not list", "version: 1\ngroups: {name: x}\ndefault: {role: deny}\n", 2, 9, "groups must be a list"},
		{"group no name", "version: 1\ngroups:\n  - macs: [\"02:00:00:00:00:01\"]\ndefault: {role: deny}\n", 3, 5, `group #1: missing required field "name"`},
		{"group bad name", "version: 1\ngroups:\n  - name: \"lab servers\"\n    macs: [\"*\"]\ndefault: {role: deny}\n", 3, 11, `name "lab servers"`},
		{"group no members", "version: 1\ngroups:\n  - name: g\ndefault: {role: deny}\n", 3, 5, `group "g" has no members`},
		{"duplicate group", "version: 1\ngroups:\n  - name: g\n    macs: [\"*\"]\n  - name: g\n    macs: [\"*\"]\ndefault: {role: deny}\n", 5, 11, `duplicate group name "g"`},
		{"bad MAC", "version: 1\ngroups:\n  - name: g\n    macs: [\"02:00:00:00:00:0g\"]\ndefault: {role: deny}\n", 4, 12, `bad MAC address "02:00:00:00:00:0g"`},
		{"short MAC", "version: 1\ngroups:\n  - name: g\n    macs:\n      - 02:00:00\ndefault: {role: deny}\n", 5, 9, `shorter than 6 bytes`},
		{"macs not list", "version: 1\ngroups:\n  - name: g\n    macs: \"02:00:00:00:00:01\"\ndefault: {role: deny}\n", 4, 11, "macs must be a list"},
		{"unknown group field", "version: 1\ngroups:\n  - name: g\n    mac: [\"*\"]\ndefault: {role: deny}\n", 4, 5, `unknown field "mac"`},
		{"bad mab_role", "version: 1\ngroups:\n  - name: g\n    macs: [\"*\"]\n    mab_role: allow\ndefault: {role: deny}\n", 5, 15, `unknown role "allow"`},
		{"empty identity", "version: 1\ngroups:\n  - name: g\n    identities: [\"\"]\ndefault: {role: deny}\n", 4, 18, "empty pattern"},
		{"rule no name", "version: 1\nrules:\n  - role: admit\ndefault: {role: deny}\n", 3, 5, `rule #1: missing required field "name"`},
		{"rule no role", "version: 1\nrules:\n  - name: r\ndefault: {role: deny}\n", 3, 5, `rule "r": missing required field "role"`},
		{"rule unknown role", "version: 1\nrules:\n  - name: r\n    role: allow\ndefault: {role: deny}\n", 4, 11, `rule "r": role: unknown role "allow"`},
		{"rule unknown field", "version: 1\nrules:\n  - name: r\n    role: admit\n    if: 'true'\ndefault: {role: deny}\n", 5, 5, `unknown field "if"`},
		{"duplicate rule", "version: 1\nrules:\n  - {name: r, role: admit}\n  - {name: r, role: deny}\ndefault: {role: deny}\n", 4, 12, `duplicate rule name "r"`},
		{"unknown group in rule", "version: 1\nrules:\n  - name: r\n    groups: [nope]\n    role: admit\ndefault: {role: deny}\n", 4, 14, `unknown group "nope"`},
		{"empty groups in rule", "version: 1\nrules:\n  - name: r\n    groups: []\n    role: admit\ndefault: {role: deny}\n", 4, 13, "groups is empty"},
		{"CEL syntax", "version: 1\nrules:\n  - name: r\n    when: 'os.name == '\n    role: admit\ndefault: {role: deny}\n", 4, 0, `rule "r": when: Syntax error`},
		{"CEL undeclared", "version: 1\nrules:\n  - name: r\n    when: oss.name == \"debian\"\n    role: admit\ndefault: {role: deny}\n", 4, 11, `undeclared reference to 'oss'`},
		{"CEL undeclared quoted", "version: 1\nrules:\n  - name: r\n    when: 'os.name == \"debian\" && tmp.x'\n    role: admit\ndefault: {role: deny}\n", 4, 35, `undeclared reference to 'tmp'`},
		{"CEL undeclared block", "version: 1\nrules:\n  - name: r\n    when: >-\n      os.name == \"debian\"\n      && ima.ok && vmm.ok\n    role: admit\ndefault: {role: deny}\n", 5, 0, `undeclared reference to 'vmm'`},
		{"CEL not bool", "version: 1\nrules:\n  - name: r\n    when: '1 + 2'\n    role: admit\ndefault: {role: deny}\n", 4, 11, "has type int, want bool"},
		{"CEL string", "version: 1\nrules:\n  - name: r\n    when: '\"yes\"'\n    role: admit\ndefault: {role: deny}\n", 4, 11, "has type string, want bool"},
		{"CEL unknown function", "version: 1\nrules:\n  - name: r\n    when: 'os.version.newer_than(\"1\")'\n    role: admit\ndefault: {role: deny}\n", 4, 0, "undeclared reference to 'newer_than'"},
		{"CEL wrong arg type", "version: 1\nrules:\n  - name: r\n    when: 'version_compare(1, 2) > 0'\n    role: admit\ndefault: {role: deny}\n", 4, 0, "found no matching overload for 'version_compare'"},
		{"CEL empty when", "version: 1\nrules:\n  - name: r\n    when: ''\n    role: admit\ndefault: {role: deny}\n", 4, 11, "when is empty"},
		{"group match with os", "version: 1\ngroups:\n  - name: g\n    match: 'os.name == \"x\"'\ndefault: {role: deny}\n", 4, 13, `group "g": match: undeclared reference to 'os'`},
		{"group match not bool", "version: 1\ngroups:\n  - name: g\n    match: 'endpoint.mac'\ndefault: {role: deny}\n", 0, 0, ""}, // dyn: allowed, checked at run time
		{"mab_default unknown role", "version: 1\ndefault: {role: deny}\nmab_default: {role: open}\n", 3, 21, `mab_default: role: unknown role "open"`},
		{"key not a string", "version: 1\n[a]: 1\ndefault: {role: deny}\n", 2, 1, "field names must be plain strings"},
		{"reason not a string", "version: 1\ndefault: {role: deny, reason: [a]}\n", 2, 31, "reason must be a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("bad.yaml", []byte(tt.src))
			if tt.msg == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q at %d:%d", tt.msg, tt.line, tt.col)
			}
			if !errors.Is(err, ErrInvalidPolicy) {
				t.Errorf("error is not ErrInvalidPolicy: %v", err)
			}
			var list LoadErrors
			if !errors.As(err, &list) {
				t.Fatalf("error is not LoadErrors: %T", err)
			}
			var first *LoadError
			if !errors.As(err, &first) || first != list[0] {
				t.Errorf("errors.As(*LoadError) did not find the first error")
			}
			for _, e := range list {
				if e.File != "bad.yaml" {
					t.Errorf("File = %q", e.File)
				}
				if strings.Contains(e.Msg, tt.msg) && (tt.line < 0 || e.Line == tt.line) && (tt.col == 0 || e.Col == tt.col) {
					return
				}
			}
			t.Errorf("want %q at line %d col %d, got:\n%v", tt.msg, tt.line, tt.col, err)
		})
	}
}

// TestParseCollectsAllErrors checks that a file with several problems reports each of them, in
// file order, and that the error text names file and line.
func TestParseCollectsAllErrors(t *testing.T) {
	src := `version: 1
roles:
  admit: { vlan: 5000 }
groups:
  - name: g
    macs: ["zz:00:00:00:00:00"]
rules:
  - name: r1
    groups: [missing]
    role: admit
  - name: r1
    role: allow
    when: 'os.name = "x"'
default: { role: deny, colour: red }
`
	_, err := Parse("multi.yaml", []byte(src))
	var list LoadErrors
	if !errors.As(err, &list) {
		t.Fatalf("got %v", err)
	}
	want := []struct {
		line int
		msg  string
	}{
		{3, "vlan 5000"},
		{6, "bad MAC"},
		{9, `unknown group "missing"`},
		{11, `duplicate rule name "r1"`},
		{12, `unknown role "allow"`},
		{13, `when: Syntax error: token recognition error at: '= '`},
		{13, `when: Syntax error: extraneous input`},
		{14, `unknown field "colour"`},
	}
	if len(list) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(list), len(want), err)
	}
	for i, w := range want {
		if list[i].Line != w.line || !strings.Contains(list[i].Msg, w.msg) {
			t.Errorf("error %d = %d: %s, want %d: %s", i, list[i].Line, list[i].Msg, w.line, w.msg)
		}
	}
	text := err.Error()
	if !strings.HasPrefix(text, "policies: multi.yaml: 8 errors:") || !strings.Contains(text, "multi.yaml:3:") {
		t.Errorf("error text:\n%s", text)
	}
}

func TestParseAliasBomb(t *testing.T) {
	// Each level multiplies the node count by 10: 10^9 nodes if expanded naively.
	src := "version: 1\n" +
		"a: &a [x, x, x, x, x, x, x, x, x, x]\n" +
		"b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n" +
		"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n" +
		"d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n" +
		"default: {role: deny}\n"
	if _, err := Parse("bomb.yaml", []byte(src)); err == nil {
		t.Fatal("no error")
	}
	// Aliases inside known fields are walked, and bounded.
	var b strings.Builder
	b.WriteString("version: 1\ngroups:\n  - name: g\n    identities: &l0 [a, b, c, d, e, f, g, h]\n")
	b.WriteString("x0: &x0 [*l0, *l0, *l0, *l0, *l0, *l0, *l0, *l0]\n")
	b.WriteString("default: {role: deny}\n")
	if _, err := Parse("alias.yaml", []byte(b.String())); err == nil || !strings.Contains(err.Error(), `unknown field "x0"`) {
		t.Fatalf("got %v", err)
	}
}

func TestParseAliasesAllowed(t *testing.T) {
	src := `version: 1
roles:
  remediate: { vlan: 30, remediation: &fix { text: "see portal", uri: "https://fix.example/" } }
  isolate: { vlan: 99, remediation: *fix }
default: { role: isolate }
`
	p, err := Parse("alias.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if r := p.Roles[RoleIsolate].Remediation; r == nil || r.URI != "https://fix.example/" {
		t.Errorf("isolate remediation = %+v", r)
	}
}

func TestParseTooLarge(t *testing.T) {
	_, err := Parse("big.yaml", make([]byte, MaxFileSize+1))
	if !errors.Is(err, ErrInvalidPolicy) || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("got %v", err)
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.yaml")
	if err := os.WriteFile(path, []byte(validPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := LoadFile(path)
	if err != nil || p.File != path {
		t.Fatalf("LoadFile: %v", err)
	}
	if _, err := LoadFile(filepath.Join(dir, "missing.yaml")); err == nil || errors.Is(err, ErrInvalidPolicy) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("version: 1\n"), 0o600)
	_, err = LoadFile(bad)
	var le *LoadError
	if !errors.As(err, &le) || le.File != bad || !strings.Contains(err.Error(), bad+":1:1:") {
		t.Errorf("bad file: %v", err)
	}
}

func TestStricterAndRank(t *testing.T) {
	order := []string{RoleAdmit, RoleRemediate, RoleAssess, RoleIsolate, RoleDeny}
	for i, a := range order {
		if RoleRank(a) != i {
			t.Errorf("RoleRank(%q) = %d, want %d", a, RoleRank(a), i)
		}
		for j, b := range order {
			want := a
			if j > i {
				want = b
			}
			if got := Stricter(a, b); got != want {
				t.Errorf("Stricter(%q, %q) = %q, want %q", a, b, got, want)
			}
		}
	}
	if Stricter(RoleAdmit, "bogus") != RoleDeny || Stricter("", RoleAdmit) != RoleDeny || RoleRank("bogus") != 4 {
		t.Error("unknown roles must fail closed")
	}
}
