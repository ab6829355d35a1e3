package policies

import (
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// PCR banks a reference set may name, with their digest sizes.
var bankSizes = map[string]int{"sha1": 20, "sha256": 32, "sha384": 48, "sm3_256": 32}

// Enrollment modes a group may allow for new attestation keys.
const (
	EnrollCredential = "credential" // EK certificate chain + TPM credential activation (default)
	EnrollTOFU       = "tofu"       // credential activation without an EK certificate: trust on first use
	EnrollNone       = "none"       // only AKs already enrolled or approved by an admin
)

// ReferenceSet is one named set of known-good PCR values (`reference_values:`).
// An endpoint's quoted PCRs match the set when every PCR it names, in every
// bank it names, equals one of the allowed values.
type ReferenceSet struct {
	Name   string
	Groups []string // applies to endpoints in one of these groups; empty for all
	// PCRs maps a bank ("sha1", "sha256", "sha384", "sm3_256") to PCR index
	// to the allowed digests, lower-case hex.
	PCRs map[string]map[int][]string
	Line int
}

// ReferenceSets returns the reference sets that apply to an endpoint in
// groups, in file order.
func (p *Policy) ReferenceSets(groups []string) []ReferenceSet {
	var out []ReferenceSet
	for _, r := range p.References {
		if len(r.Groups) == 0 || intersects(r.Groups, groups) {
			out = append(out, r)
		}
	}
	return out
}

// EnrollmentFor is how a new attestation key of an endpoint in groups may
// be enrolled: the enrollment of the first group in file order that sets
// one, else EnrollCredential.
func (p *Policy) EnrollmentFor(groups []string) string {
	for _, g := range p.Groups {
		if g.Enrollment != "" && contains(groups, g.Name) {
			return g.Enrollment
		}
	}
	return EnrollCredential
}

func (l *loader) enrollment(f field, what string) string {
	s, ok := l.str(f, what)
	if !ok {
		return ""
	}
	switch s {
	case EnrollCredential, EnrollTOFU, EnrollNone:
		return s
	}
	l.errorf(f.val, "%s: unknown enrollment %q (credential, tofu or none)", what, s)
	return ""
}

// references reads `reference_values:`.
func (l *loader) references(f field, p *Policy) {
	n, ok := l.sequence(f, "reference_values", "reference sets", MaxRules)
	if !ok {
		return
	}
	seen := map[string]bool{}
	for i, rn := range n.Content {
		rn = l.resolve(rn)
		what := fmt.Sprintf("reference set #%d", i+1)
		fs := l.object(rn, what, "name", "groups", "pcrs")
		if fs == nil {
			continue
		}
		l.require(fs, rn, what, "name", "pcrs")
		r := ReferenceSet{Line: rn.Line, PCRs: map[string]map[int][]string{}}
		if x, ok := fs["name"]; ok {
			if s, ok := l.name(x, what+": name"); ok {
				r.Name = s
				what = fmt.Sprintf("reference set %q", s)
				if seen[s] {
					l.errorf(x.val, "duplicate reference set name %q", s)
				}
				seen[s] = true
			}
		}
		if x, ok := fs["groups"]; ok {
			vals, nodes := l.list(x, what+": groups", MaxGroups)
			for k, g := range vals {
				if _, ok := p.groupIndex[g]; !ok {
					l.errorf(nodes[k], "%s: unknown group %q", what, g)
					continue
				}
				r.Groups = append(r.Groups, g)
			}
		}
		if x, ok := fs["pcrs"]; ok {
			banks := l.object(x.val, what+": pcrs", "sha1", "sha256", "sha384", "sm3_256")
			names := make([]string, 0, len(banks))
			for b := range banks {
				names = append(names, b)
			}
			sort.Strings(names)
			for _, bank := range names {
				r.PCRs[bank] = l.bankValues(banks[bank], what+": pcrs: "+bank, bankSizes[bank])
			}
			if len(banks) == 0 {
				l.errorf(x.val, "%s: pcrs names no bank", what)
			}
		}
		p.References = append(p.References, r)
	}
}

// bankValues reads `{index: hex}` or `{index: [hex, ...]}` for one bank.
func (l *loader) bankValues(f field, what string, size int) map[int][]string {
	out := map[int][]string{}
	n := f.val
	if isNull(n) || n.Kind != yaml.MappingNode {
		l.errorf(nodeOr(n, f.key), "%s must map PCR indexes to digests", what)
		return out
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := l.resolve(n.Content[i]), l.resolve(n.Content[i+1])
		idx, err := strconv.Atoi(k.Value)
		if k.Kind != yaml.ScalarNode || err != nil || idx < 0 || idx > 23 {
			l.errorf(k, "%s: PCR index %q: want 0 to 23", what, k.Value)
			continue
		}
		if _, dup := out[idx]; dup {
			l.errorf(k, "%s: PCR %d given twice", what, idx)
			continue
		}
		var vals []string
		var nodes []*yaml.Node
		if v.Kind == yaml.SequenceNode {
			vals, nodes = l.list(field{key: k, val: v}, fmt.Sprintf("%s: PCR %d", what, idx), 64)
		} else if s, ok := l.str(field{key: k, val: v}, fmt.Sprintf("%s: PCR %d", what, idx)); ok {
			vals, nodes = []string{s}, []*yaml.Node{v}
		}
		for j, s := range vals {
			s = strings.ToLower(strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X"))
			b, err := hex.DecodeString(s)
			if err != nil || len(b) != size {
				l.errorf(nodes[j], "%s: PCR %d: want %d bytes of hex", what, idx, size)
				continue
			}
			out[idx] = append(out[idx], s)
		}
	}
	return out
}
