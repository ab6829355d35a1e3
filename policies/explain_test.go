package policies

import (
	"regexp"
	"strings"
	"testing"
)

func explain(d Decision) string {
	var b strings.Builder
	d.Explain(&b)
	return b.String()
}

func TestExplain(t *testing.T) {
	p := mustParse(t, validPolicy)
	tests := []struct {
		name  string
		d     Decision
		lines []string // regular expressions, each must match one line, in order
	}{
		{
			name: "rule match",
			d: p.Decide(Endpoint{MAC: "02:00:00:00:00:09"}, debianFacts(func(o map[string]any) {
				o["listening"] = []any{map[string]any{"port": int64(23)}}
			})),
			lines: []string{
				`^decision: +remediate$`,
				`^decided by: +rule "telnet-open"$`,
				`^reason: +telnet is listening on port 23$`,
				`^groups: +\(none\)$`,
				`^enforcement: +vlan 30, filter-id "remediate"$`,
				`^remediation: +Remove telnetd$`,
				`^remediation uri: +https://remediation.example/telnet$`,
				`^policy: +sha256:[0-9a-f]{64}$`,
				`^trace:$`,
				`^  rule debian-12-hardened +skipped +endpoint not in groups lab-servers$`,
				`^  rule telnet-open +MATCH +true$`,
			},
		},
		{
			name: "default with errors",
			d:    p.Decide(Endpoint{MAC: "02:00:00:00:00:01", Channel: "pt-tls"}, Facts{"os": {"name": "debian", "version": "12"}}),
			lines: []string{
				`^decision: +isolate$`,
				`^decided by: +default$`,
				`^reason: +no rule matched$`,
				`^groups: +lab-servers$`,
				`^enforcement: +vlan 99, filter-id "isolate", session-timeout 300s$`,
				`^remediation: +call us$`,
				`^trace:$`,
				`^  rule debian-12-hardened +ERROR +error: no such key: forwarding$`,
				`^  rule telnet-open +ERROR +error: no such key: listening$`,
				`^  rule printers-assess +skipped`,
				`^  default +applied +no rule matched$`,
			},
		},
		{
			name: "MAB",
			d:    p.DecideMAB(Endpoint{MAC: "30:05:5c:01:02:03"}),
			lines: []string{
				`^decision: +assess$`,
				`^decided by: +MAB, group "printers"$`,
				`^reason: +MAC address in group printers$`,
				`^  group printers +MATCH +MAC in group; mab_role assess$`,
			},
		},
		{
			name: "MAB default",
			d:    p.DecideMAB(Endpoint{MAC: "02:00:00:00:00:05"}),
			lines: []string{
				`^decision: +assess$`,
				`^decided by: +MAB, mab_default$`,
				`^  group printers +skipped +MAC not in group$`,
				`^  mab_default +applied +MAC address not in a MAB group; posture assessment required$`,
			},
		},
		{
			name:  "no trace",
			d:     Decision{Role: RoleDeny, Reasons: []string{"multi\nline   reason"}},
			lines: []string{`^decision: +deny$`, `^reason: +multi line reason$`, `^enforcement: +no parameters$`, `^trace: no rules considered$`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := explain(tt.d)
			lines := strings.Split(out, "\n")
			i := 0
			for _, pat := range tt.lines {
				re := regexp.MustCompile(pat)
				for i < len(lines) && !re.MatchString(lines[i]) {
					i++
				}
				if i == len(lines) {
					t.Fatalf("no line matching %q (in order) in:\n%s", pat, out)
				}
				i++
			}
		})
	}
}
