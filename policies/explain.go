package policies

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Explain writes a human-readable account of the decision to w: the role and what decided it, the
// enforcement parameters, the remediation, and every rule (and group condition) that was
// considered with its outcome. `nac policy explain` prints it.
func (d Decision) Explain(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "decision:\t%s\n", d.Role)
	switch {
	case d.ChannelGroup != "":
		fmt.Fprintf(tw, "decided by:\trequire_channel of group %q\n", d.ChannelGroup)
	case d.Rule != "":
		fmt.Fprintf(tw, "decided by:\trule %q\n", d.Rule)
	case d.MABGroup != "":
		fmt.Fprintf(tw, "decided by:\tMAB, group %q\n", d.MABGroup)
	case d.MAB:
		fmt.Fprintf(tw, "decided by:\tMAB, mab_default\n")
	default:
		fmt.Fprintf(tw, "decided by:\tdefault\n")
	}
	for _, r := range d.Reasons {
		fmt.Fprintf(tw, "reason:\t%s\n", oneLine(r))
	}
	groups := "(none)"
	if len(d.Groups) > 0 {
		groups = strings.Join(d.Groups, ", ")
	}
	fmt.Fprintf(tw, "groups:\t%s\n", groups)
	fmt.Fprintf(tw, "enforcement:\t%s\n", describeRole(d.Params))
	if d.Remediation != nil {
		if d.Remediation.Text != "" {
			fmt.Fprintf(tw, "remediation:\t%s\n", oneLine(d.Remediation.Text))
		}
		if d.Remediation.URI != "" {
			fmt.Fprintf(tw, "remediation uri:\t%s\n", d.Remediation.URI)
		}
	}
	if d.PolicyDigest != "" {
		fmt.Fprintf(tw, "policy:\t%s\n", d.PolicyDigest)
	}
	tw.Flush()
	if len(d.Trace) == 0 {
		fmt.Fprintln(w, "trace: no rules considered")
		return
	}
	fmt.Fprintln(w, "trace:")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, s := range d.Trace {
		what := "rule " + s.Rule
		if s.Group != "" {
			what = "group " + s.Group
		}
		outcome := "no match"
		switch {
		case s.Errored:
			outcome = "ERROR"
		case s.Skipped:
			outcome = "skipped"
		case s.Matched:
			outcome = "MATCH"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", what, outcome, oneLine(s.Detail))
	}
	if d.Rule == "" && d.MABGroup == "" && d.ChannelGroup == "" {
		name := "default"
		if d.MAB {
			name = "mab_default"
		}
		fmt.Fprintf(tw, "  %s\tapplied\t%s\n", name, oneLine(strings.Join(d.Reasons, "; ")))
	}
	tw.Flush()
}

func describeRole(r Role) string {
	var parts []string
	if r.VLAN != 0 {
		parts = append(parts, fmt.Sprintf("vlan %d", r.VLAN))
	}
	if r.FilterID != "" {
		parts = append(parts, fmt.Sprintf("filter-id %q", r.FilterID))
	}
	if r.SessionTimeout != 0 {
		parts = append(parts, fmt.Sprintf("session-timeout %ds", r.SessionTimeout))
	}
	if len(parts) == 0 {
		return "no parameters"
	}
	return strings.Join(parts, ", ")
}

// oneLine keeps multi-line texts and error messages from breaking the table.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	return strings.Join(strings.Fields(s), " ")
}
