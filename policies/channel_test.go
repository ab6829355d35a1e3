package policies

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

const channelPolicy = `
version: 1
roles:
  isolate: {filter_id: isolate, remediation: {uri: "https://remediation.example/sm"}}
groups:
  - name: sm-terminals
    identities: ["term-*"]
    require_channel: sm-dtls
  - name: eap-only
    macs: ["02:00:00:00:00:*"]
    require_channel: eap
  - name: tpmless
    identities: ["kiosk-*"]
    allow_sm2_key: true
rules:
  - name: everyone-ok
    when: 'os.name == "debian"'
    role: admit
    reason: debian
  - name: denied
    when: 'os.name == "windows"'
    role: deny
    reason: windows
default: {role: remediate, reason: unknown os}
`

func TestRequireChannel(t *testing.T) {
	p := mustParse(t, channelPolicy)
	debian := Facts{"os": {"name": "debian"}}
	windows := Facts{"os": {"name": "windows"}}
	other := Facts{"os": {"name": "plan9"}}
	tests := []struct {
		name          string
		ep            Endpoint
		facts         Facts
		role, reason  string
		rule, chGroup string
	}{
		{"sm member over sm-dtls admitted", Endpoint{Identity: "term-1", Channel: ChannelSMDTLS}, debian, RoleAdmit, "debian", "everyone-ok", ""},
		{"sm member over pt-tls isolated", Endpoint{Identity: "term-1", Channel: ChannelPTTLS}, debian, RoleIsolate,
			"group sm-terminals requires the SM channel (sm-dtls)", "", "sm-terminals"},
		{"sm member over eap isolated", Endpoint{Identity: "term-1", Channel: ChannelEAP}, debian, RoleIsolate,
			"group sm-terminals requires the SM channel (sm-dtls)", "", "sm-terminals"},
		{"sm member without channel isolated", Endpoint{Identity: "term-1"}, debian, RoleIsolate,
			"group sm-terminals requires the SM channel (sm-dtls)", "", "sm-terminals"},
		{"default remediate made isolate", Endpoint{Identity: "term-1", Channel: ChannelPTTLS}, other, RoleIsolate,
			"group sm-terminals requires the SM channel (sm-dtls)", "", "sm-terminals"},
		{"deny stays deny with its reason", Endpoint{Identity: "term-1", Channel: ChannelPTTLS}, windows, RoleDeny, "windows", "denied", ""},
		{"non-member over pt-tls admitted", Endpoint{Identity: "srv-1", Channel: ChannelPTTLS}, debian, RoleAdmit, "debian", "everyone-ok", ""},
		{"eap group over sm-dtls isolated", Endpoint{MAC: "02:00:00:00:00:05", Channel: ChannelSMDTLS}, debian, RoleIsolate,
			"group eap-only requires the EAP channel (eap)", "", "eap-only"},
		{"in both groups, first group names the reason", Endpoint{Identity: "term-2", MAC: "02:00:00:00:00:05", Channel: ChannelEAP}, debian, RoleIsolate,
			"group sm-terminals requires the SM channel (sm-dtls)", "", "sm-terminals"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := p.Decide(tt.ep, tt.facts)
			if d.Role != tt.role || d.Rule != tt.rule || d.ChannelGroup != tt.chGroup {
				t.Fatalf("role %s rule %q channel group %q, want %s %q %q", d.Role, d.Rule, d.ChannelGroup, tt.role, tt.rule, tt.chGroup)
			}
			if len(d.Reasons) != 1 || d.Reasons[0] != tt.reason {
				t.Fatalf("reasons %q, want [%q]", d.Reasons, tt.reason)
			}
			if d.PolicyDigest != p.Digest {
				t.Errorf("digest %q", d.PolicyDigest)
			}
			if tt.chGroup != "" {
				if d.Params.FilterID != "isolate" || d.Remediation == nil || d.Remediation.URI != "https://remediation.example/sm" {
					t.Errorf("isolate without the role's parameters: %+v %+v", d.Params, d.Remediation)
				}
				var buf bytes.Buffer
				d.Explain(&buf)
				if !strings.Contains(buf.String(), `require_channel of group "`+tt.chGroup+`"`) {
					t.Errorf("explain does not name the group:\n%s", buf.String())
				}
			}
		})
	}
}

func TestRequireChannelNotForMABOrAuth(t *testing.T) {
	p := mustParse(t, channelPolicy+"mab_default: {role: assess}\nauth_default: {role: remediate}\n")
	if d := p.DecideMAB(Endpoint{MAC: "02:00:00:00:00:05"}); d.Role != RoleAssess {
		t.Errorf("MAB: %s", d.Role)
	}
	if d := p.DecideAuth(Endpoint{Identity: "term-1", Channel: ChannelEAP}); d.Role != RoleRemediate {
		t.Errorf("auth: %s", d.Role)
	}
}

func TestChannelHelpers(t *testing.T) {
	p := mustParse(t, channelPolicy)
	tests := []struct {
		groups   []string
		required string
		sm2      bool
	}{
		{nil, "", false},
		{[]string{"sm-terminals"}, ChannelSMDTLS, false},
		{[]string{"eap-only", "sm-terminals"}, ChannelSMDTLS, false},
		{[]string{"tpmless"}, "", true},
		{[]string{"eap-only", "tpmless"}, ChannelEAP, true},
	}
	for _, tt := range tests {
		if got := p.RequiredChannel(tt.groups); got != tt.required {
			t.Errorf("RequiredChannel(%v) = %q, want %q", tt.groups, got, tt.required)
		}
		if got := p.AllowsSM2Key(tt.groups); got != tt.sm2 {
			t.Errorf("AllowsSM2Key(%v) = %v, want %v", tt.groups, got, tt.sm2)
		}
	}
}

func TestChannelFieldErrors(t *testing.T) {
	tests := []struct{ field, want string }{
		{"require_channel: tls", `unknown channel "tls"`},
		{"require_channel: mab", `unknown channel "mab"`},
		{"require_channel: [sm-dtls]", "require_channel must be a string"},
		{"allow_sm2_key: yes", "allow_sm2_key must be true or false"},
		{"allow_sm2_key: 1", "allow_sm2_key must be true or false"},
		{"require_chanel: sm-dtls", `unknown field "require_chanel"`},
	}
	for _, tt := range tests {
		src := "version: 1\ngroups:\n  - name: g\n    identities: [x]\n    " + tt.field + "\ndefault: {role: deny}\n"
		_, err := Parse("t.yaml", []byte(src))
		if err == nil || !errors.Is(err, ErrInvalidPolicy) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err %v, want %q", tt.field, err, tt.want)
		}
	}
}

func TestChannelLint(t *testing.T) {
	p := mustParse(t, "version: 1\ngroups:\n  - name: g\n    identities: [x]\n    require_channel: sm-dtls\n    auth_role: admit\n  - name: h\n    identities: [y]\n    require_channel: sm-dtls\ndefault: {role: deny}\n")
	ws := strings.Join(Lint(p), "\n")
	if !strings.Contains(ws, `group "g": require_channel applies to assessments only`) {
		t.Errorf("no warning about auth_role:\n%s", ws)
	}
	if strings.Contains(ws, `group "h" is not used`) {
		t.Errorf("a require_channel group counts as used:\n%s", ws)
	}
}
