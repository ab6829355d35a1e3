package policies

import (
	"strings"

	"gopkg.in/yaml.v3"
)

// channel reads a require_channel value: one of Channels.
func (l *loader) channel(f field, what string) string {
	s, ok := l.str(f, what)
	if !ok {
		return ""
	}
	if !contains(Channels, s) {
		l.errorf(f.val, "%s: unknown channel %q (channels: %s)", what, s, strings.Join(Channels, ", "))
		return ""
	}
	return s
}

// boolean reads a YAML boolean (true or false, not "yes" or 1).
func (l *loader) boolean(f field, what string) (bool, bool) {
	n := f.val
	var v bool
	if n == nil || n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || n.Decode(&v) != nil {
		l.errorf(nodeOr(n, f.key), "%s must be true or false", what)
		return false, false
	}
	return v, true
}

// ChannelName is how reasons name a channel: "the SM channel (sm-dtls)".
func ChannelName(ch string) string {
	switch ch {
	case ChannelSMDTLS:
		return "the SM channel (sm-dtls)"
	case ChannelPTTLS:
		return "the PT-TLS channel (pt-tls)"
	case ChannelEAP:
		return "the EAP channel (eap)"
	}
	return "the channel " + ch
}

// channelViolation returns the first group in file order among groups that
// requires a channel other than ch, or nil.
func (p *Policy) channelViolation(groups []string, ch string) *Group {
	for i := range p.Groups {
		g := &p.Groups[i]
		if g.RequireChannel != "" && g.RequireChannel != ch && contains(groups, g.Name) {
			return g
		}
	}
	return nil
}

// RequiredChannel is the channel the first group in file order among groups
// requires, "" when none does.
func (p *Policy) RequiredChannel(groups []string) string {
	for _, g := range p.Groups {
		if g.RequireChannel != "" && contains(groups, g.Name) {
			return g.RequireChannel
		}
	}
	return ""
}

// AllowsSM2Key reports whether an endpoint in groups may enroll for the SM
// channel with a registered SM2 key instead of a TPM: some group of it sets
// allow_sm2_key.
func (p *Policy) AllowsSM2Key(groups []string) bool {
	for _, g := range p.Groups {
		if g.AllowSM2Key && contains(groups, g.Name) {
			return true
		}
	}
	return false
}

// enforceChannel makes an assessment decision at least isolate when the
// endpoint is in a group that requires another channel than the one the
// assessment came over. The reason names the group and the channel.
func (p *Policy) enforceChannel(d Decision, ch string) Decision {
	g := p.channelViolation(d.Groups, ch)
	if g == nil {
		return d
	}
	over := ch
	if over == "" {
		over = "an unknown channel"
	}
	d.Trace = append(d.Trace, TraceStep{Group: g.Name, Matched: true,
		Detail: "require_channel " + g.RequireChannel + "; assessed over " + over})
	if RoleRank(d.Role) >= RoleRank(RoleIsolate) {
		return d
	}
	reason := "group " + g.Name + " requires " + ChannelName(g.RequireChannel)
	iso := p.decision(RoleIsolate, "", reason, nil, d.Groups, d.Trace)
	iso.PolicyDigest = d.PolicyDigest
	iso.ChannelGroup = g.Name
	return iso
}
