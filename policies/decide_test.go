package policies

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
)

func mustParse(t testing.TB, src string) *Policy {
	t.Helper()
	p, err := Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func debianFacts(mod func(os map[string]any)) Facts {
	os := map[string]any{
		"name":       "debian",
		"version":    "12",
		"forwarding": "disabled",
		"packages":   map[string]any{"openssh-server": "1:9.2p1-2+deb12u3"},
		"listening":  []any{map[string]any{"protocol": "tcp", "port": int64(22)}},
	}
	if mod != nil {
		mod(os)
	}
	return Facts{"os": os}
}

func TestDecide(t *testing.T) {
	p := mustParse(t, validPolicy)
	lab := Endpoint{ID: "e1", MAC: "02-00-00-00-00-01", Channel: "pt-tls"}
	tests := []struct {
		name        string
		ep          Endpoint
		facts       Facts
		role, rule  string
		reason      string
		remediation string // URI expected, "" for none
		groups      []string
		trace       []string // per step: "rule:outcome" with outcome match/false/skip/error
	}{
		{
			name: "lab server admitted", ep: lab, facts: debianFacts(nil),
			role: RoleAdmit, rule: "debian-12-hardened", reason: "Debian 12 or later, forwarding off",
			groups: []string{"lab-servers"}, trace: []string{"debian-12-hardened:match"},
		},
		{
			name: "lab server via identity glob", ep: Endpoint{Identity: "srv-42", Channel: "pt-tls"}, facts: debianFacts(nil),
			role: RoleAdmit, rule: "debian-12-hardened", groups: []string{"lab-servers"},
			reason: "Debian 12 or later, forwarding off", trace: []string{"debian-12-hardened:match"},
		},
		{
			name: "lab server via AK, case-insensitive", ep: Endpoint{AK: "SHA256:abcdef", Channel: "pt-tls"}, facts: debianFacts(nil),
			role: RoleAdmit, rule: "debian-12-hardened", groups: []string{"lab-servers"},
			reason: "Debian 12 or later, forwarding off", trace: []string{"debian-12-hardened:match"},
		},
		{
			name: "group match condition excludes eap", ep: Endpoint{MAC: "02:00:00:00:00:01", Channel: "eap"}, facts: debianFacts(nil),
			role: RoleIsolate, reason: "no rule matched", remediation: "",
			trace: []string{"debian-12-hardened:skip", "telnet-open:false", "printers-assess:skip"},
		},
		{
			name: "old debian falls to default", ep: lab, facts: debianFacts(func(o map[string]any) { o["version"] = "11" }),
			role: RoleIsolate, reason: "no rule matched", groups: []string{"lab-servers"},
			trace: []string{"debian-12-hardened:false", "telnet-open:false", "printers-assess:skip"},
		},
		{
			name: "telnet remediated with the rule's remediation", ep: Endpoint{MAC: "02:00:00:00:00:09"},
			facts: debianFacts(func(o map[string]any) {
				o["listening"] = []any{map[string]any{"protocol": "tcp", "port": int64(23)}}
			}),
			role: RoleRemediate, rule: "telnet-open", reason: "telnet is listening on port 23",
			remediation: "https://remediation.example/telnet",
			trace:       []string{"debian-12-hardened:skip", "telnet-open:match"},
		},
		{
			name: "missing fact is an error and fails closed", ep: lab,
			facts: debianFacts(func(o map[string]any) { delete(o, "forwarding"); delete(o, "listening") }),
			role:  RoleIsolate, reason: "no rule matched", groups: []string{"lab-servers"},
			trace: []string{"debian-12-hardened:error", "telnet-open:error", "printers-assess:skip"},
		},
		{
			name: "no facts at all", ep: Endpoint{}, facts: nil,
			role: RoleIsolate, reason: "no rule matched",
			trace: []string{"debian-12-hardened:skip", "telnet-open:error", "printers-assess:skip"},
		},
		{
			name: "group-only rule", ep: Endpoint{MAC: "30:05:5C:00:00:01"},
			facts: debianFacts(nil),
			role:  RoleAssess, rule: "printers-assess", reason: "matched rule printers-assess", groups: []string{"printers"},
			trace: []string{"debian-12-hardened:skip", "telnet-open:false", "printers-assess:match"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := p.Decide(tt.ep, tt.facts)
			if d.Role != tt.role || d.Rule != tt.rule {
				t.Errorf("role/rule = %s/%q, want %s/%q", d.Role, d.Rule, tt.role, tt.rule)
			}
			if len(d.Reasons) != 1 || d.Reasons[0] != tt.reason {
				t.Errorf("reasons = %q, want %q", d.Reasons, tt.reason)
			}
			if d.Params.Name != tt.role || d.Params != withoutRemediation(p.Roles[tt.role], d.Params.Remediation) {
				t.Errorf("params = %+v, want %+v", d.Params, p.Roles[tt.role])
			}
			gotURI := ""
			if d.Remediation != nil {
				gotURI = d.Remediation.URI
			}
			if tt.role == RoleIsolate && tt.remediation == "" {
				// isolate's role remediation has text only
				if d.Remediation == nil || d.Remediation.Text != "call us" {
					t.Errorf("remediation = %+v, want the role's", d.Remediation)
				}
			} else if gotURI != tt.remediation {
				t.Errorf("remediation URI = %q, want %q", gotURI, tt.remediation)
			}
			if strings.Join(d.Groups, ",") != strings.Join(tt.groups, ",") {
				t.Errorf("groups = %q, want %q", d.Groups, tt.groups)
			}
			if got := traceSummary(d.Trace); strings.Join(got, " ") != strings.Join(tt.trace, " ") {
				t.Errorf("trace = %q, want %q\n%+v", got, tt.trace, d.Trace)
			}
			if d.PolicyDigest != p.Digest {
				t.Errorf("digest = %q", d.PolicyDigest)
			}
		})
	}
}

func withoutRemediation(r Role, rem *Remediation) Role {
	r.Remediation = rem
	return r
}

func traceSummary(trace []TraceStep) []string {
	var out []string
	for _, s := range trace {
		name := s.Rule
		if s.Group != "" {
			name = "group " + s.Group
		}
		outcome := "false"
		switch {
		case s.Errored:
			outcome = "error"
		case s.Skipped:
			outcome = "skip"
		case s.Matched:
			outcome = "match"
		}
		out = append(out, name+":"+outcome)
	}
	return out
}

func TestDecideErrorDetail(t *testing.T) {
	p := mustParse(t, validPolicy)
	d := p.Decide(Endpoint{}, Facts{"os": {"name": "debian"}})
	if !strings.Contains(d.Trace[1].Detail, "no such key") {
		t.Errorf("detail = %q, want the CEL error", d.Trace[1].Detail)
	}
}

func TestDecideNonBoolResult(t *testing.T) {
	p := mustParse(t, "version: 1\nrules:\n  - {name: r, when: 'os.flag', role: admit}\ndefault: {role: deny}\n")
	for _, tt := range []struct {
		val     any
		role    string
		errored bool
	}{
		{true, RoleAdmit, false},
		{false, RoleDeny, false},
		{"true", RoleDeny, true},
		{int64(1), RoleDeny, true},
	} {
		d := p.Decide(Endpoint{}, Facts{"os": {"flag": tt.val}})
		if d.Role != tt.role || d.Trace[0].Errored != tt.errored {
			t.Errorf("flag %#v: role %s errored %v, want %s %v (%s)", tt.val, d.Role, d.Trace[0].Errored, tt.role, tt.errored, d.Trace[0].Detail)
		}
	}
}

func TestDecideTimeLimit(t *testing.T) {
	// A quadratic comprehension over 3,000 packages: 9 million steps, far more than EvalTimeLimit
	// allows.
	p := mustParse(t, `version: 1
rules:
  - name: quadratic
    when: 'os.packages.all(a, os.packages.all(b, a == b || a != b))'
    role: admit
default: {role: isolate}
`)
	pkgs := map[string]any{}
	for i := 0; i < 3000; i++ {
		pkgs["pkg"+itoa(i)] = "1.0"
	}
	d := p.Decide(Endpoint{}, Facts{"os": {"packages": pkgs}})
	if d.Role != RoleIsolate || !d.Trace[0].Errored || !strings.Contains(d.Trace[0].Detail, "time limit") {
		t.Fatalf("decision %s, trace %+v", d.Role, d.Trace)
	}
	// The same rule on a small input is fine.
	d = p.Decide(Endpoint{}, Facts{"os": {"packages": map[string]any{"a": "1"}}})
	if d.Role != RoleAdmit {
		t.Fatalf("small input: %s %+v", d.Role, d.Trace)
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

func TestDecideContextCanceled(t *testing.T) {
	p := mustParse(t, validPolicy)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d, err := p.DecideContext(ctx, Endpoint{MAC: "02:00:00:00:00:01", Channel: "pt-tls"}, debianFacts(nil))
	if !errors.Is(err, context.Canceled) || d.Role != RoleDeny {
		t.Fatalf("role %s err %v", d.Role, err)
	}
	d, err = p.DecideContext(context.Background(), Endpoint{MAC: "02:00:00:00:00:01", Channel: "pt-tls"}, debianFacts(nil))
	if err != nil || d.Role != RoleAdmit {
		t.Fatalf("role %s err %v", d.Role, err)
	}
}

func TestDecideEndpointFacts(t *testing.T) {
	p := mustParse(t, `version: 1
groups:
  - name: g
    macs: ["02:00:00:00:00:*"]
rules:
  - name: r
    when: >-
      endpoint.id == "x1" && endpoint.mac == "02:00:00:00:00:0a" && endpoint.identity == "bob"
      && endpoint.ak == "sha256:00" && endpoint.channel == "sm-dtls" && "g" in endpoint.groups
      && size(endpoint.groups) == 1 && !has(tpm.quote) && size(vm) == 0
    role: admit
default: {role: deny}
`)
	ep := Endpoint{ID: "x1", MAC: "0200.0000.000A", Identity: "bob", AK: "sha256:00", Channel: "sm-dtls"}
	// An "endpoint" namespace in Facts is ignored: Decide fills it.
	d := p.Decide(ep, Facts{"endpoint": {"id": "forged"}})
	if d.Role != RoleAdmit {
		t.Fatalf("role %s trace %+v", d.Role, d.Trace)
	}
}

func TestDecideMAB(t *testing.T) {
	p := mustParse(t, `version: 1
roles:
  admit: {vlan: 10}
  assess: {vlan: 20}
groups:
  - name: by-identity
    identities: ["*"]
    mab_role: admit
  - name: phones
    macs: ["00:04:f2:*"]
    mab_role: admit
  - name: printers
    macs: ["30:05:5c:*", "00:04:f2:00:00:01"]
    mab_role: assess
  - name: blocked
    macs: ["de:ad:be:ef:00:01"]
    mab_role: deny
  - name: mab-only
    macs: ["02:00:00:00:00:07"]
    match: 'endpoint.channel == "mab"'
    mab_role: remediate
default: {role: isolate}
`)
	tests := []struct {
		mac, identity string
		role, group   string
		vlan          int
	}{
		{"00:04:F2:12:34:56", "", RoleAdmit, "phones", 10},
		{"00-04-f2-00-00-01", "", RoleAdmit, "phones", 10}, // first group in file order wins
		{"3005.5c00.0001", "", RoleAssess, "printers", 20},
		{"de:ad:be:ef:00:01", "", RoleDeny, "blocked", 0},
		{"02:00:00:00:00:07", "", RoleRemediate, "mab-only", 0},
		{"02:00:00:00:00:08", "", RoleAssess, "", 20},
		{"", "", RoleAssess, "", 20},
		{"not a mac", "", RoleAssess, "", 20},
		// MAB proves only the MAC: an identity never puts a MAB endpoint in a group.
		{"02:00:00:00:00:08", "alice", RoleAssess, "", 20},
	}
	for _, tt := range tests {
		d := p.DecideMAB(Endpoint{MAC: tt.mac, Identity: tt.identity, AK: "x"})
		if d.Role != tt.role || d.MABGroup != tt.group || d.Params.VLAN != tt.vlan || d.Rule != "" || !d.MAB {
			t.Errorf("MAC %q: role %s group %q vlan %d, want %s %q %d", tt.mac, d.Role, d.MABGroup, d.Params.VLAN, tt.role, tt.group, tt.vlan)
		}
		if len(d.Trace) == 0 {
			t.Errorf("MAC %q: empty trace", tt.mac)
		}
	}
	// mab_default can be changed.
	q := mustParse(t, "version: 1\ndefault: {role: deny}\nmab_default: {role: deny, reason: no MAB here}\n")
	if d := q.DecideMAB(Endpoint{MAC: "02:00:00:00:00:01"}); d.Role != RoleDeny || d.Reasons[0] != "no MAB here" {
		t.Errorf("mab_default: %+v", d)
	}
}

func TestGroupsOf(t *testing.T) {
	p := mustParse(t, `version: 1
groups:
  - {name: a, macs: ["02:00:00:00:00:01"]}
  - {name: b, identities: ["alice"], match: 'endpoint.channel == "eap"'}
  - {name: c, match: 'endpoint.identity.startsWith("al")'}
  - {name: d, match: 'endpoint.nope == 1'}
  - {name: e, macs: []}
default: {role: deny}
`)
	tests := []struct {
		ep   Endpoint
		want string
	}{
		{Endpoint{MAC: "02:00:00:00:00:01"}, "a"},
		{Endpoint{MAC: "02:00:00:00:00:01", Identity: "alice", Channel: "eap"}, "a,b,c"},
		{Endpoint{Identity: "alice", Channel: "pt-tls"}, "c"},
		{Endpoint{Identity: "bob", Channel: "eap"}, ""},
	}
	for _, tt := range tests {
		if got := strings.Join(p.GroupsOf(tt.ep), ","); got != tt.want {
			t.Errorf("GroupsOf(%+v) = %q, want %q", tt.ep, got, tt.want)
		}
	}
	// A group condition that errors is recorded in the decision trace.
	d := p.Decide(Endpoint{}, nil)
	if s := traceSummary(d.Trace); len(s) != 1 || s[0] != "group d:error" {
		t.Errorf("trace %q", s)
	}
}

func TestDecideHandBuiltPolicyFailsClosed(t *testing.T) {
	p := &Policy{
		Rules:   []Rule{{Name: "r", When: "true", Role: RoleAdmit}},
		Default: Default{Role: "bogus"},
	}
	d := p.Decide(Endpoint{}, nil)
	if d.Role != RoleDeny || !d.Trace[0].Errored {
		t.Fatalf("%+v", d)
	}
}

func TestDecideConcurrent(t *testing.T) {
	p := mustParse(t, validPolicy)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				d := p.Decide(Endpoint{MAC: "02:00:00:00:00:01", Channel: "pt-tls"}, debianFacts(nil))
				if d.Role != RoleAdmit {
					t.Errorf("role %s", d.Role)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestDecisionIsACopy(t *testing.T) {
	p := mustParse(t, validPolicy)
	d := p.Decide(Endpoint{}, nil)
	d.Remediation.Text = "changed"
	d.Params.Remediation.Text = "changed"
	if p.Roles[RoleIsolate].Remediation.Text != "call us" {
		t.Fatal("decision shares remediation with the policy")
	}
}

func TestDecideAuth(t *testing.T) {
	p := mustParse(t, `version: 1
roles:
  admit: {vlan: 10}
  assess: {vlan: 20}
  isolate: {vlan: 99}
groups:
  - name: lab-macs
    macs: ["02:00:00:00:00:01"]
    mab_role: admit
  - name: staff
    identities: ["alice", "ops-*"]
    auth_role: admit
  - name: contractors
    identities: ["ext-*"]
    auth_role: isolate
user_auth: required
default: {role: isolate}
`)
	if p.UserAuth != UserAuthRequired {
		t.Fatalf("user_auth = %q", p.UserAuth)
	}
	tests := []struct {
		identity, mac, role string
	}{
		{"alice", "", RoleAdmit},
		{"ops-7", "", RoleAdmit},
		{"ext-bob", "", RoleIsolate},
		{"mallory", "", RoleAssess},
		// A MAC in a MAB group proves nothing for a password user.
		{"mallory", "02:00:00:00:00:01", RoleAssess},
		{"", "", RoleAssess},
	}
	for _, tt := range tests {
		d := p.DecideAuth(Endpoint{Identity: tt.identity, MAC: tt.mac, Channel: "pap"})
		if d.Role != tt.role {
			t.Errorf("DecideAuth(%q, %q) = %s (%v), want %s", tt.identity, tt.mac, d.Role, d.Reasons, tt.role)
		}
	}
	if q := mustParse(t, "version: 1\ndefault: {role: isolate}\n"); q.UserAuth != UserAuthOptional || q.AuthDefault.Role != RoleAssess {
		t.Fatalf("defaults: user_auth %q auth_default %q", q.UserAuth, q.AuthDefault.Role)
	}
	if _, err := Parse("x.yaml", []byte("version: 1\nuser_auth: sometimes\ndefault: {role: isolate}\n")); err == nil {
		t.Fatal("unknown user_auth accepted")
	}
}
