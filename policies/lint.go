package policies

import (
	"fmt"
	"slices"
	"sort"
)

// Lint returns warnings about a loaded policy: things that are valid but probably not what the
// admin meant. Each warning reads "file:line: message". Lint never changes the policy.
//
// It warns about rules that can never match (an earlier rule with no condition covers them),
// roles used without parameters under `roles:` (deny needs none), remediate and isolate decisions
// without remediation instructions, groups no rule or MAB uses, groups with a mab_role that MAB
// cannot match, MAC patterns that match every address, nested comprehensions (which may hit
// EvalTimeLimit), and a default of admit (fail open).
func Lint(p *Policy) []string {
	type warning struct {
		line int
		text string
	}
	var ws []warning
	warn := func(line int, format string, args ...any) {
		pos := p.File
		if line > 0 {
			pos = fmt.Sprintf("%s:%d", p.File, line)
		}
		ws = append(ws, warning{line, pos + ": " + fmt.Sprintf(format, args...)})
	}

	// Unreachable rules: an earlier rule without `when` matches every endpoint of its groups (or
	// every endpoint if it has none).
	for i, r := range p.Rules {
		for _, e := range p.Rules[:i] {
			if e.When != "" {
				continue
			}
			if len(e.Groups) == 0 || (len(r.Groups) > 0 && subset(r.Groups, e.Groups)) {
				warn(r.Line, "rule %q can never match: rule %q (line %d) before it matches %s", r.Name, e.Name, e.Line, coverage(e))
				break
			}
		}
	}

	// Roles used without parameters.
	used := map[string]int{}
	use := func(role string, line int) {
		if _, seen := used[role]; role != "" && !seen {
			used[role] = line
		}
	}
	for _, r := range p.Rules {
		use(r.Role, r.Line)
	}
	use(p.Default.Role, p.Default.Line)
	mab := p.MABDefault.Line > 0 // MAB is in use when the file sets mab_default or a mab_role
	auth := p.AuthDefault.Line > 0
	for _, g := range p.Groups {
		use(g.MABRole, g.Line)
		use(g.AuthRole, g.Line)
		mab = mab || g.MABRole != ""
		auth = auth || g.AuthRole != ""
	}
	if mab {
		use(p.MABDefault.Role, p.MABDefault.Line)
	}
	if auth {
		use(p.AuthDefault.Role, p.AuthDefault.Line)
	}
	for _, role := range Roles {
		line, isUsed := used[role]
		if !isUsed || role == RoleDeny {
			continue
		}
		if _, ok := p.Roles[role]; !ok {
			warn(line, "role %q is used but has no parameters under roles (no VLAN or filter_id to enforce it)", role)
		}
	}
	for _, role := range Roles {
		if r, ok := p.Roles[role]; ok && (r.VLAN != 0 || r.FilterID != "" || r.SessionTimeout != 0 || r.Remediation != nil) {
			if _, isUsed := used[role]; !isUsed {
				warn(r.Line, "role %q has parameters but no rule, default or group uses it", role)
			}
		}
	}

	// Remediation missing where an endpoint is sent to fix itself.
	needsRemediation := func(role string) bool { return role == RoleRemediate || role == RoleIsolate }
	roleHasRemediation := func(role string) bool { return p.Roles[role].Remediation != nil }
	for _, r := range p.Rules {
		if needsRemediation(r.Role) && r.Remediation == nil && !roleHasRemediation(r.Role) {
			warn(r.Line, "rule %q sends endpoints to %s without remediation instructions", r.Name, r.Role)
		}
	}
	if needsRemediation(p.Default.Role) && p.Default.Remediation == nil && !roleHasRemediation(p.Default.Role) {
		warn(p.Default.Line, "default sends endpoints to %s without remediation instructions", p.Default.Role)
	}

	// Groups.
	ruleGroups := map[string]bool{}
	for _, r := range p.Rules {
		for _, g := range r.Groups {
			ruleGroups[g] = true
		}
	}
	for _, g := range p.Groups {
		if !ruleGroups[g.Name] && g.MABRole == "" && g.AuthRole == "" && g.RequireChannel == "" && !g.AllowSM2Key {
			warn(g.Line, "group %q is not used by any rule and has no mab_role or auth_role", g.Name)
		}
		if g.RequireChannel != "" && (g.MABRole != "" || g.AuthRole != "") {
			warn(g.Line, "group %q: require_channel applies to assessments only, not to its mab_role or auth_role", g.Name)
		}
		if g.MABRole != "" && len(g.MACs) == 0 && g.Match == "" {
			warn(g.Line, "group %q has a mab_role but no macs: MAB endpoints show only their MAC", g.Name)
		}
		if len(g.MACs) == 0 && len(g.Identities) == 0 && len(g.AKs) == 0 && g.Match == "" {
			warn(g.Line, "group %q has no members", g.Name)
		}
		for _, m := range g.macs {
			if m.prefix && m.nibbles == "" {
				warn(g.Line, "group %q: MAC pattern \"*\" matches every MAC address", g.Name)
			}
		}
	}
	for _, r := range p.Rules {
		if r.when != nil && r.when.loops > 1 {
			warn(r.Line, "rule %q nests comprehensions %d deep: its cost grows with the product of the list sizes and it may hit the %v evaluation limit", r.Name, r.when.loops, EvalTimeLimit)
		}
	}
	for _, g := range p.Groups {
		if g.match != nil && g.match.loops > 1 {
			warn(g.Line, "group %q: match nests comprehensions %d deep and may hit the %v evaluation limit", g.Name, g.match.loops, EvalTimeLimit)
		}
	}
	if g := p.authRoleWithoutIdentities(); g != nil {
		warn(g.Line, "group %q has an auth_role but no identities: only identities are authenticated", g.Name)
	}
	if p.AuthDefault.Role == RoleAdmit {
		warn(p.AuthDefault.Line, "auth_default admits every user with a valid password (fail open)")
	}
	if p.MABDefault.Role == RoleAdmit {
		warn(p.MABDefault.Line, "mab_default admits every unknown MAC address (fail open)")
	}
	if p.Default.Role == RoleAdmit {
		warn(p.Default.Line, "default admits every endpoint no rule matched (fail open)")
	}
	sort.SliceStable(ws, func(i, j int) bool { return ws[i].line < ws[j].line })
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.text
	}
	return out
}

func subset(a, b []string) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

func coverage(r Rule) string {
	if len(r.Groups) == 0 {
		return "every endpoint"
	}
	return fmt.Sprintf("every endpoint in %v", r.Groups)
}

func (p *Policy) authRoleWithoutIdentities() *Group {
	for i := range p.Groups {
		if g := &p.Groups[i]; g.AuthRole != "" && len(g.Identities) == 0 {
			return g
		}
	}
	return nil
}
