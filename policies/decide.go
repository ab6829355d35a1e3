package policies

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
)

// Decision is the outcome of evaluating a policy for one endpoint.
type Decision struct {
	Role         string       // one of the five roles
	Params       Role         // the role's enforcement parameters (VLAN, FilterID, SessionTimeout)
	Rule         string       // name of the matching rule, "" when a default applied
	MAB          bool         // decided by DecideMAB (group membership by MAC only, no facts)
	MABGroup     string       // DecideMAB only: the group whose mab_role applied, "" for mab_default
	ChannelGroup string       // the group whose require_channel isolated the endpoint, "" when none did
	Groups       []string     // groups the endpoint is in, in file order
	Reasons      []string     // admin-readable, endpoint-facing reasons (the rule's or default's reason)
	Remediation  *Remediation // the rule's (or default's) remediation, else the role's; nil for none
	Trace        []TraceStep  // how the decision came about, for Explain
	PolicyDigest string       // Policy.Digest of the policy that decided
}

// TraceStep records one rule (or, for MAB and group conditions, one group) that was considered.
type TraceStep struct {
	Rule    string // rule name, "" for a group step
	Group   string // group name for a group step, "" for a rule step
	Matched bool   // the rule matched (or the endpoint is in the group)
	Skipped bool   // not evaluated: the endpoint is not in the rule's groups
	Errored bool   // the condition failed to evaluate; it counts as not matching
	Detail  string // why: "true", "false", "not in groups …", or the error text
}

var errEvalTimeLimit = fmt.Errorf("evaluation time limit of %v exceeded", EvalTimeLimit)

// emptyFacts stands for a namespace the endpoint did not report. CEL never mutates it.
var emptyFacts = map[string]any{}

// Decide evaluates the policy for an endpoint and its facts: the first rule that matches decides,
// otherwise the default applies. An endpoint in a group with require_channel that was assessed
// over another channel (ep.Channel) is isolated at least, with the reason "group G requires the
// SM channel (sm-dtls)". A rule whose condition fails to evaluate (a missing fact, a type
// mismatch, the cost limit) does not match, and the error is recorded in the trace. Decide is safe
// for concurrent use.
func (p *Policy) Decide(ep Endpoint, facts Facts) Decision {
	d, _ := p.DecideContext(context.Background(), ep, facts)
	return d
}

// DecideContext is Decide with a context that interrupts long CEL evaluations. If ctx ends before
// the decision is made, it returns a deny decision and the context's error.
func (p *Policy) DecideContext(ctx context.Context, ep Endpoint, facts Facts) (Decision, error) {
	groups, trace := p.groupsOf(ctx, ep)
	if err := ctx.Err(); err != nil {
		return p.interrupted(groups, trace, fmt.Errorf("policies: decision interrupted: %w", err))
	}
	epFacts := endpointFacts(ep, groups)
	vars := make(map[string]any, len(Namespaces))
	for _, ns := range Namespaces {
		vars[ns] = emptyFacts
		if m := facts[ns]; m != nil {
			vars[ns] = m
		}
	}
	vars[NamespaceEndpoint] = epFacts
	act, err := cel.NewActivation(vars)
	if err != nil {
		return p.interrupted(groups, trace, fmt.Errorf("policies: activation: %w", err))
	}
	for i := range p.Rules {
		r := &p.Rules[i]
		step := TraceStep{Rule: r.Name}
		if len(r.Groups) > 0 && !intersects(r.Groups, groups) {
			step.Skipped = true
			step.Detail = "endpoint not in groups " + strings.Join(r.Groups, ", ")
			trace = append(trace, step)
			continue
		}
		step.Matched, step.Errored, step.Detail = evalCondition(ctx, r.When, r.when, act)
		trace = append(trace, step)
		if err := ctx.Err(); err != nil {
			return p.interrupted(groups, trace, fmt.Errorf("policies: decision interrupted: %w", err))
		}
		if step.Matched {
			return p.enforceChannel(p.decision(r.Role, r.Name, r.Reason, r.Remediation, groups, trace), ep.Channel), nil
		}
	}
	reason := p.Default.Reason
	if reason == "" {
		reason = "no rule matched"
	}
	return p.enforceChannel(p.decision(p.Default.Role, "", reason, p.Default.Remediation, groups, trace), ep.Channel), nil
}

// DecideMAB decides for a device admitted by MAC Authentication Bypass, which proves nothing but
// its MAC address: only the MAC (and the endpoint's ID and channel) take part, so groups by
// identity or AK never match. The first group in file order that has a mab_role and contains the
// MAC decides; otherwise mab_default applies (assess unless the file says otherwise).
func (p *Policy) DecideMAB(ep Endpoint) Decision {
	ep = Endpoint{ID: ep.ID, MAC: ep.MAC, Channel: ep.Channel}
	if ep.Channel == "" {
		ep.Channel = "mab"
	}
	groups, trace := p.groupsOf(context.Background(), ep)
	for _, g := range p.Groups {
		if g.MABRole == "" {
			continue
		}
		in := contains(groups, g.Name)
		step := TraceStep{Group: g.Name, Matched: in, Skipped: !in, Detail: "MAC not in group"}
		if in {
			step.Detail = "MAC in group; mab_role " + g.MABRole
		}
		trace = append(trace, step)
		if in {
			d := p.decision(g.MABRole, "", "MAC address in group "+g.Name, nil, groups, trace)
			d.MAB, d.MABGroup = true, g.Name
			return d
		}
	}
	def := p.MABDefault
	if def.Role == "" {
		def.Role = RoleAssess
	}
	reason := def.Reason
	if reason == "" {
		reason = "MAC address not in a MAB group"
	}
	d := p.decision(def.Role, "", reason, def.Remediation, groups, trace)
	d.MAB = true
	return d
}

// DecideAuth decides for a user authenticated by password (ep.Identity) for whom no posture
// assessment follows: RADIUS PAP, or EAP-TTLS whose peer cannot do PT-EAP. Only the identity takes
// part in group membership, since a MAC proves nothing. The first group in file order that has an
// auth_role and contains the identity decides; otherwise auth_default applies (assess unless the
// file says otherwise).
func (p *Policy) DecideAuth(ep Endpoint) Decision {
	ep = Endpoint{ID: ep.ID, Identity: ep.Identity, Channel: ep.Channel}
	groups, trace := p.groupsOf(context.Background(), ep)
	for _, g := range p.Groups {
		if g.AuthRole == "" {
			continue
		}
		in := contains(groups, g.Name)
		step := TraceStep{Group: g.Name, Matched: in, Skipped: !in, Detail: "identity not in group"}
		if in {
			step.Detail = "identity in group; auth_role " + g.AuthRole
		}
		trace = append(trace, step)
		if in {
			return p.decision(g.AuthRole, "", "authenticated as a member of group "+g.Name, nil, groups, trace)
		}
	}
	def := p.AuthDefault
	if def.Role == "" {
		def.Role = RoleAssess
	}
	reason := def.Reason
	if reason == "" {
		reason = "authenticated by password only"
	}
	return p.decision(def.Role, "", reason, def.Remediation, groups, trace)
}

// GroupsOf returns the names of the groups the endpoint is in, in file order.
func (p *Policy) GroupsOf(ep Endpoint) []string {
	groups, _ := p.groupsOf(context.Background(), ep)
	return groups
}

func (p *Policy) groupsOf(ctx context.Context, ep Endpoint) ([]string, []TraceStep) {
	var groups []string
	var trace []TraceStep
	var mac string // nibbles, "" when ep.MAC is not a MAC address
	if nb, ok := parseMAC(ep.MAC); ok {
		mac = string(nb[:])
	}
	var act any // built on first use: most groups have no match condition
	for i := range p.Groups {
		g := &p.Groups[i]
		hasLists := len(g.macs) > 0 || len(g.Identities) > 0 || len(g.AKs) > 0
		if hasLists && !g.listed(mac, ep) {
			continue
		}
		if g.Match != "" {
			if act == nil {
				act = map[string]any{NamespaceEndpoint: endpointFacts(ep, nil)}
			}
			ok, errored, detail := evalCondition(ctx, g.Match, g.match, act)
			if errored {
				trace = append(trace, TraceStep{Group: g.Name, Errored: true, Detail: "match: " + detail})
			}
			if !ok {
				continue
			}
		} else if !hasLists {
			continue
		}
		groups = append(groups, g.Name)
	}
	return groups, trace
}

// listed reports whether the endpoint matches one of the group's MAC, identity or AK patterns.
func (g *Group) listed(mac string, ep Endpoint) bool {
	if mac != "" {
		for _, m := range g.macs {
			if m.matches(mac) {
				return true
			}
		}
	}
	if ep.Identity != "" {
		for _, pat := range g.Identities {
			if globMatch(pat, ep.Identity) {
				return true
			}
		}
	}
	if ep.AK != "" {
		ak := strings.ToLower(ep.AK)
		for _, pat := range g.aks {
			if globMatch(pat, ak) {
				return true
			}
		}
	}
	return false
}

// evalCondition evaluates a compiled condition; an empty condition is true.
func evalCondition(ctx context.Context, src string, c *condition, act any) (matched, errored bool, detail string) {
	if src == "" {
		return true, false, "no condition"
	}
	if c == nil {
		return false, true, "error: condition not compiled (policy not loaded with Parse)"
	}
	if c.loops > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, EvalTimeLimit, errEvalTimeLimit)
		defer cancel()
	}
	out, err := safeEval(ctx, c.prg, act)
	if err != nil {
		return false, true, "error: " + err.Error()
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, true, fmt.Sprintf("error: condition returned %s, not bool", out.Type().TypeName())
	}
	if b {
		return true, false, "true"
	}
	return false, false, "false"
}

// safeEval runs a program, turning a panic inside cel-go into an error so that a bad input fails
// closed instead of taking the PDP down.
func safeEval(ctx context.Context, prg cel.Program, act any) (out ref.Val, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("evaluation panicked: %v", r)
		}
	}()
	out, _, err = prg.ContextEval(ctx, act)
	return out, err
}

func endpointFacts(ep Endpoint, groups []string) map[string]any {
	mac := strings.ToLower(ep.MAC)
	if m, err := NormalizeMAC(ep.MAC); err == nil {
		mac = m
	}
	g := make([]any, len(groups))
	for i, s := range groups {
		g[i] = s
	}
	return map[string]any{
		"id":       ep.ID,
		"mac":      mac,
		"identity": ep.Identity,
		"ak":       ep.AK,
		"channel":  ep.Channel,
		"groups":   g,
	}
}

func intersects(a, b []string) bool {
	for _, x := range a {
		if contains(b, x) {
			return true
		}
	}
	return false
}

func (p *Policy) decision(role, rule, reason string, rem *Remediation, groups []string, trace []TraceStep) Decision {
	if !IsRole(role) {
		// Only a hand-built Policy can get here; fail closed.
		role, reason = RoleDeny, "policy names no valid role"
	}
	params := p.RoleParams(role)
	if rem == nil {
		rem = params.Remediation
	}
	if reason == "" {
		reason = "matched rule " + rule
	}
	return Decision{
		Role:         role,
		Params:       params,
		Rule:         rule,
		Groups:       groups,
		Reasons:      []string{reason},
		Remediation:  rem.clone(),
		Trace:        trace,
		PolicyDigest: p.Digest,
	}
}

func (p *Policy) interrupted(groups []string, trace []TraceStep, err error) (Decision, error) {
	d := p.decision(RoleDeny, "", "policy evaluation did not complete", nil, groups, trace)
	return d, err
}
