package policies

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary bytes to the loader: it must return a policy or LoadErrors, never
// panic (a recovered panic shows as "internal error" and fails the target), and a policy it
// returns must load the same way again, lint, and decide one of the five roles.
func FuzzParse(f *testing.F) {
	f.Add([]byte(validPolicy))
	f.Add([]byte("version: 1\ndefault: {role: deny}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("fuzz.yaml", data)
		if err != nil {
			var list LoadErrors
			if !errors.As(err, &list) || len(list) == 0 || !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("error %T %v is not a non-empty LoadErrors", err, err)
			}
			for _, e := range list {
				if strings.Contains(e.Msg, "internal error") {
					t.Fatalf("panic inside the loader: %v", e)
				}
				if e.File != "fuzz.yaml" || e.Line < 0 || e.Col < 0 {
					t.Fatalf("bad position: %+v", e)
				}
			}
			return
		}
		if p.Version != Version || !IsRole(p.Default.Role) || !IsRole(p.MABDefault.Role) {
			t.Fatalf("loaded policy violates invariants: %+v", p)
		}
		for _, r := range p.Rules {
			if !IsRole(r.Role) || r.Name == "" {
				t.Fatalf("bad rule %+v", r)
			}
		}
		// Loading is deterministic.
		q, err := Parse("fuzz.yaml", data)
		if err != nil || !samePolicy(p, q) {
			t.Fatalf("second load differs: %v", err)
		}
		Lint(p)
		for _, g := range p.Groups {
			if g.RequireChannel != "" && !contains(Channels, g.RequireChannel) {
				t.Fatalf("group %q requires unknown channel %q", g.Name, g.RequireChannel)
			}
		}
		for _, ep := range []Endpoint{{}, {MAC: "02:00:00:00:00:01", Identity: "alice", AK: "sha256:00", Channel: "pt-tls"},
			{MAC: "02:00:00:00:00:01", Identity: "alice", AK: "sha256:00", Channel: ChannelSMDTLS}} {
			d := p.Decide(ep, Facts{"os": {"name": "debian", "version": "12", "listening": []any{}}})
			if !IsRole(d.Role) || d.PolicyDigest != p.Digest {
				t.Fatalf("decision %+v", d)
			}
			// An assessment over a channel a group of the endpoint does not
			// allow is never less strict than isolate.
			if req := p.RequiredChannel(d.Groups); req != "" && p.channelViolation(d.Groups, ep.Channel) != nil && RoleRank(d.Role) < RoleRank(RoleIsolate) {
				t.Fatalf("group requires %s, assessed over %q, role %s", req, ep.Channel, d.Role)
			}
			if d.ChannelGroup != "" && d.Role != RoleIsolate {
				t.Fatalf("channel group %s with role %s", d.ChannelGroup, d.Role)
			}
			if m := p.DecideMAB(ep); !IsRole(m.Role) {
				t.Fatalf("MAB decision %+v", m)
			}
			var b strings.Builder
			d.Explain(&b)
		}
	})
}

// samePolicy compares the exported content of two loaded policies.
func samePolicy(a, b *Policy) bool {
	if a.Digest != b.Digest || a.Version != b.Version || !reflect.DeepEqual(a.Roles, b.Roles) ||
		a.Default != b.Default || a.MABDefault != b.MABDefault || len(a.Groups) != len(b.Groups) || len(a.Rules) != len(b.Rules) {
		return false
	}
	for i := range a.Groups {
		x, y := a.Groups[i], b.Groups[i]
		if x.Name != y.Name || x.Match != y.Match || x.MABRole != y.MABRole || !reflect.DeepEqual(x.MACs, y.MACs) ||
			!reflect.DeepEqual(x.Identities, y.Identities) || !reflect.DeepEqual(x.AKs, y.AKs) {
			return false
		}
	}
	for i := range a.Rules {
		x, y := a.Rules[i], b.Rules[i]
		if x.Name != y.Name || x.When != y.When || x.Role != y.Role || x.Reason != y.Reason ||
			!reflect.DeepEqual(x.Groups, y.Groups) || !reflect.DeepEqual(x.Remediation, y.Remediation) {
			return false
		}
	}
	return true
}

// FuzzCompareVersions checks that version comparison is a total preorder consistent with
// equality: reflexive, antisymmetric, and stable under a shared suffix of digits-free text.
func FuzzCompareVersions(f *testing.F) {
	f.Add("1:9.2p1-2", "9.9")
	f.Add("1.0~rc1", "1.0")
	f.Add("12", "9")
	f.Fuzz(func(t *testing.T, a, b string) {
		ab, ba := CompareVersions(a, b), CompareVersions(b, a)
		if ab != -ba || ab < -1 || ab > 1 {
			t.Fatalf("CompareVersions(%q, %q) = %d, reverse %d", a, b, ab, ba)
		}
		if CompareVersions(a, a) != 0 || CompareVersions(b, b) != 0 {
			t.Fatalf("not reflexive: %q %q", a, b)
		}
		if a == b && ab != 0 {
			t.Fatalf("equal strings compare %d", ab)
		}
		// An epoch dominates: anything with a higher epoch is newer.
		if !strings.Contains(b, ":") && CompareVersions("1:"+a, b) != 1 {
			t.Fatalf("epoch 1 of %q not above %q", a, b)
		}
	})
}

// FuzzParseFacts feeds arbitrary JSON to the facts reader: it must return facts or ErrBadFacts,
// and facts it returns must hold only CEL-friendly values and evaluate without panicking.
func FuzzParseFacts(f *testing.F) {
	f.Add([]byte(`{"endpoint": {"id": "a", "mac": "02:00:00:00:00:01"}, "os": {"name": "debian", "ports": [{"port": 23}]}}`))
	f.Add([]byte(`{"os": {"x": 1.5, "y": 1e3, "z": [true, null, "s"]}}`))
	p, err := Parse("fuzz.yaml", []byte(validPolicy))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ep, facts, err := ParseFacts(data)
		if err != nil {
			if !errors.Is(err, ErrBadFacts) {
				t.Fatalf("error %v is not ErrBadFacts", err)
			}
			return
		}
		for ns, m := range facts {
			if ns == NamespaceEndpoint {
				t.Fatal("endpoint namespace in facts")
			}
			checkCELFriendly(t, m, 0)
		}
		if ep.MAC != "" {
			if n, err := NormalizeMAC(ep.MAC); err != nil || n != ep.MAC {
				t.Fatalf("endpoint MAC %q not normalized", ep.MAC)
			}
		}
		if d := p.Decide(ep, facts); !IsRole(d.Role) {
			t.Fatalf("decision %+v", d)
		}
	})
}

func checkCELFriendly(t *testing.T, v any, depth int) {
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			checkCELFriendly(t, e, depth+1)
		}
	case []any:
		for _, e := range x {
			checkCELFriendly(t, e, depth+1)
		}
	case string, int64, bool, float64, nil:
	default:
		t.Fatalf("value of type %T in facts", v)
	}
}

// FuzzMACPattern checks MAC parsing: a parsed full MAC normalizes to the canonical form, which
// parses back to itself (round trip), and a pattern matches the addresses it is a prefix of.
func FuzzMACPattern(f *testing.F) {
	for _, s := range []string{"02:00:00:00:00:01", "AA-BB-CC-DD-EE-FF", "aabb.ccdd.eeff", "aabbccddeeff", "02:00:*", "9c93.4e*", "*", "zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parseMACPattern(s)
		if err != nil {
			if !errors.Is(err, ErrBadMAC) {
				t.Fatalf("error %v is not ErrBadMAC", err)
			}
			return
		}
		if len(p.nibbles) > 12 || (!p.prefix && len(p.nibbles) != 12) {
			t.Fatalf("pattern %q parsed to %+v", s, p)
		}
		full := p.nibbles + strings.Repeat("0", 12-len(p.nibbles))
		if !p.matches(full) {
			t.Fatalf("pattern %q does not match %q", s, full)
		}
		if p.prefix {
			return
		}
		n, err := NormalizeMAC(s)
		if err != nil {
			t.Fatalf("pattern %q parses but does not normalize: %v", s, err)
		}
		again, err := NormalizeMAC(n)
		if err != nil || again != n || strings.ReplaceAll(n, ":", "") != p.nibbles {
			t.Fatalf("round trip %q -> %q -> %q (%v)", s, n, again, err)
		}
	})
}
