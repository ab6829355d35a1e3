package policies

import (
	"strings"
	"testing"
)

func TestLint(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // substrings, one per expected warning, in order
	}{
		{
			name: "clean",
			src: `version: 1
roles:
  admit: {vlan: 10}
  isolate: {vlan: 99, remediation: {text: "call us"}}
rules:
  - {name: r, when: 'os.name == "debian"', role: admit}
default: {role: isolate}
`,
		},
		{
			name: "unreachable after unconditional rule",
			src: `version: 1
roles:
  admit: {vlan: 10}
rules:
  - {name: everyone, role: deny}
  - {name: later, when: 'true', role: admit}
default: {role: deny}
`,
			want: []string{`test.yaml:6: rule "later" can never match: rule "everyone" (line 5) before it matches every endpoint`},
		},
		{
			name: "unreachable by group",
			src: `version: 1
roles:
  admit: {vlan: 10}
groups:
  - {name: a, macs: ["02:*"]}
  - {name: b, macs: ["04:*"]}
rules:
  - {name: all-a-b, groups: [a, b], role: deny}
  - {name: only-a, groups: [a], when: 'true', role: admit}
  - {name: any, when: 'true', role: admit}
default: {role: deny}
`,
			want: []string{`rule "only-a" can never match: rule "all-a-b" (line 8) before it matches every endpoint in [a b]`},
		},
		{
			name: "roles without parameters and unused roles",
			src: `version: 1
roles:
  assess: {vlan: 20}
rules:
  - {name: r, when: 'true', role: admit}
default: {role: deny}
`,
			want: []string{
				`test.yaml:3: role "assess" has parameters but no rule, default or group uses it`,
				`test.yaml:5: role "admit" is used but has no parameters`,
			},
		},
		{
			name: "remediation missing",
			src: `version: 1
roles:
  remediate: {vlan: 30}
  isolate: {vlan: 99}
rules:
  - {name: fix, when: 'true', role: remediate}
  - {name: fix2, when: 'true', role: remediate, remediation: {text: "x"}}
default: {role: isolate}
`,
			want: []string{
				`test.yaml:6: rule "fix" sends endpoints to remediate without remediation instructions`,
				`default sends endpoints to isolate without remediation instructions`,
			},
		},
		{
			name: "groups",
			src: `version: 1
roles:
  assess: {vlan: 20}
groups:
  - {name: unused, macs: ["02:00:00:00:00:01"]}
  - {name: ident-mab, identities: [alice], mab_role: assess}
  - {name: empty, macs: [], mab_role: assess}
  - {name: all, macs: ["*"], mab_role: assess}
default: {role: deny}
`,
			want: []string{
				`group "unused" is not used by any rule and has no mab_role`,
				`group "ident-mab" has a mab_role but no macs`,
				`group "empty" has a mab_role but no macs`,
				`group "empty" has no members`,
				`group "all": MAC pattern "*" matches every MAC address`,
			},
		},
		{
			name: "nested comprehension",
			src: `version: 1
rules:
  - {name: n, when: 'os.ports.all(a, os.listening.exists(b, a.port == b.port))', role: deny}
  - {name: flat, when: 'os.ports.all(a, a.port > 0) && os.listening.exists(b, b.port == 1)', role: deny}
default: {role: deny}
`,
			want: []string{`rule "n" nests comprehensions 2 deep`},
		},
		{
			name: "fail open",
			src: `version: 1
roles:
  admit: {vlan: 10}
default: {role: admit}
mab_default: {role: admit}
`,
			want: []string{
				`test.yaml:4: default admits every endpoint no rule matched (fail open)`,
				`test.yaml:5: mab_default admits every unknown MAC address (fail open)`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Lint(mustParse(t, tt.src))
			if len(got) != len(tt.want) {
				t.Fatalf("got %d warnings, want %d:\n%s", len(got), len(tt.want), strings.Join(got, "\n"))
			}
			for i := range got {
				if !strings.Contains(got[i], tt.want[i]) {
					t.Errorf("warning %d = %q, want %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestLoopDepth(t *testing.T) {
	env, _, err := environments()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		expr string
		want int
	}{
		{`os.name == "x"`, 0},
		{`os.ports.exists(p, p.port == 23)`, 1},
		{`os.ports.filter(p, p.port > 0).exists(p, p.port == 23)`, 1}, // in sequence, not nested
		{`os.ports.all(a, os.listening.exists(b, a.port == b.port))`, 2},
		{`[os.ports.all(a, os.ports.all(b, os.ports.all(c, true)))][0]`, 3},
	}
	for _, tt := range tests {
		c, errs := compileBool(env, tt.expr)
		if errs != nil {
			t.Fatalf("%s: %v", tt.expr, errs)
		}
		if c.loops != tt.want {
			t.Errorf("loopDepth(%s) = %d, want %d", tt.expr, c.loops, tt.want)
		}
	}
}
