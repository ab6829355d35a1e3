package policies

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// LoadFile reads and parses the policy file at path (see Parse). Files larger than MaxFileSize are
// refused.
func LoadFile(path string) (*Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("policies: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("policies: read %s: %w", path, err)
	}
	return Parse(path, data)
}

// Parse loads a policy from the YAML in data; file names it in error messages. It checks the whole
// file and returns every problem as LoadErrors (each a *LoadError with line and column), or a
// Policy whose CEL conditions are compiled and ready to evaluate.
func Parse(file string, data []byte) (p *Policy, err error) {
	l := &loader{file: file}
	defer func() {
		// yaml.v3 and cel-go are not ours; an input that makes either panic is an invalid file,
		// not a crashed PDP.
		if r := recover(); r != nil {
			p, err = nil, LoadErrors{{File: file, Msg: fmt.Sprintf("internal error while loading: %v", r)}}
		}
	}()
	if len(data) > MaxFileSize {
		return nil, LoadErrors{{File: file, Msg: fmt.Sprintf("file is larger than %d bytes", MaxFileSize)}}
	}
	root := l.document(data)
	if root == nil {
		return nil, l.errs
	}
	sum := sha256.Sum256(data)
	p = &Policy{File: file, Digest: "sha256:" + hex.EncodeToString(sum[:])}
	l.policy(root, p)
	l.compile(p)
	if len(l.errs) > 0 {
		sort.SliceStable(l.errs, func(i, j int) bool {
			a, b := l.errs[i], l.errs[j]
			if a.Line != b.Line {
				return a.Line < b.Line
			}
			return a.Col < b.Col
		})
		return nil, l.errs
	}
	return p, nil
}

// loader walks the YAML node tree, collecting every problem rather than stopping at the first.
type loader struct {
	file  string
	errs  LoadErrors
	nodes int

	// nodes of conditions, kept for locating CEL compile errors
	ruleWhen   map[int]*yaml.Node
	groupMatch map[int]*yaml.Node
}

func (l *loader) errorf(n *yaml.Node, format string, args ...any) {
	e := &LoadError{File: l.file, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Col = n.Line, n.Column
	}
	l.errs = append(l.errs, e)
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// document parses data as exactly one YAML document and returns its root node.
func (l *loader) document(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			l.errorf(nil, "empty policy file")
		} else {
			l.yamlError(err)
		}
		return nil
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		l.yamlError(err)
		return nil
	default:
		l.errorf(&extra, "more than one YAML document in the file")
		return nil
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		l.errorf(&doc, "empty policy file")
		return nil
	}
	return doc.Content[0]
}

func (l *loader) yamlError(err error) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	e := &LoadError{File: l.file, Msg: "YAML: " + msg}
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Msg = "YAML: " + m[2]
	}
	l.errs = append(l.errs, e)
}

// resolve follows an alias to its anchored node and counts the nodes visited, so that alias
// expansion ("billion laughs") cannot make the walk unbounded.
func (l *loader) resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	l.nodes++
	return n
}

func (l *loader) tooBig() bool { return l.nodes > maxYAMLNodes }

func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

// field is a mapping entry: its key node (for positions) and value node (resolved).
type field struct {
	key, val *yaml.Node
}

// object reads a mapping whose keys must be among known; a null value counts as an empty mapping.
// It reports unknown and duplicate keys and returns the entries by key, or nil if n is not a
// mapping.
func (l *loader) object(n *yaml.Node, what string, known ...string) map[string]field {
	n = l.resolve(n)
	if isNull(n) {
		return map[string]field{}
	}
	if n.Kind != yaml.MappingNode {
		l.errorf(n, "%s must be a mapping of fields", what)
		return nil
	}
	out := make(map[string]field, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := l.resolve(n.Content[i]), n.Content[i+1]
		if l.tooBig() {
			l.errorf(n, "document too large (too many nodes after alias expansion)")
			return nil
		}
		if k.Kind != yaml.ScalarNode {
			l.errorf(k, "%s: field names must be plain strings", what)
			continue
		}
		name := k.Value
		if _, dup := out[name]; dup {
			l.errorf(k, "%s: duplicate field %q", what, name)
			continue
		}
		if !contains(known, name) {
			l.errorf(k, "%s: unknown field %q (known fields: %s)", what, name, strings.Join(known, ", "))
			continue
		}
		out[name] = field{key: k, val: l.resolve(v)}
	}
	return out
}

// str reads a scalar as the text written, which lets `filter_id: 10` or a bare-digit MAC mean what
// it shows.
func (l *loader) str(f field, what string) (string, bool) {
	n := f.val
	if n == nil || n.Kind != yaml.ScalarNode || isNull(n) {
		l.errorf(nodeOr(n, f.key), "%s must be a string", what)
		return "", false
	}
	if len(n.Value) > MaxTextLength {
		l.errorf(n, "%s is longer than %d bytes", what, MaxTextLength)
		return "", false
	}
	return n.Value, true
}

func (l *loader) integer(f field, what string, min, max int64) (int, bool) {
	n := f.val
	var v int64
	if n == nil || n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&v) != nil {
		l.errorf(nodeOr(n, f.key), "%s must be an integer", what)
		return 0, false
	}
	if v < min || v > max {
		l.errorf(n, "%s %d out of range %d..%d", what, v, min, max)
		return 0, false
	}
	return int(v), true
}

// sequence checks that a top-level section is a list of at most max
// entries; ok is false (with the error reported) when it is not, or when it
// is null.
func (l *loader) sequence(f field, section, entries string, max int) (*yaml.Node, bool) {
	n := f.val
	if isNull(n) {
		return nil, false
	}
	if n.Kind != yaml.SequenceNode {
		l.errorf(n, "%s must be a list", section)
		return nil, false
	}
	if len(n.Content) > max {
		l.errorf(n, "more than %d %s", max, entries)
		return nil, false
	}
	return n, true
}

// list reads a sequence of scalars (a null value is an empty list).
func (l *loader) list(f field, what string, max int) ([]string, []*yaml.Node) {
	n := f.val
	if isNull(n) {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		l.errorf(nodeOr(n, f.key), "%s must be a list", what)
		return nil, nil
	}
	if len(n.Content) > max {
		l.errorf(n, "%s has more than %d entries", what, max)
		return nil, nil
	}
	vals := make([]string, 0, len(n.Content))
	nodes := make([]*yaml.Node, 0, len(n.Content))
	for _, c := range n.Content {
		c = l.resolve(c)
		if l.tooBig() {
			l.errorf(n, "document too large (too many nodes after alias expansion)")
			return nil, nil
		}
		s, ok := l.str(field{key: f.key, val: c}, what+" entries")
		if !ok {
			continue
		}
		vals = append(vals, s)
		nodes = append(nodes, c)
	}
	return vals, nodes
}

func hasAny(fs map[string]field, names ...string) bool {
	for _, n := range names {
		if _, ok := fs[n]; ok {
			return true
		}
	}
	return false
}

func nodeOr(n, alt *yaml.Node) *yaml.Node {
	if n != nil {
		return n
	}
	return alt
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

func (l *loader) name(f field, what string) (string, bool) {
	s, ok := l.str(f, what)
	if !ok {
		return "", false
	}
	if len(s) > MaxNameLength || !nameRE.MatchString(s) {
		l.errorf(f.val, "%s %q: use up to %d letters, digits, '.', '_' or '-', starting with a letter or digit", what, s, MaxNameLength)
		return "", false
	}
	return s, true
}

func (l *loader) role(f field, what string) (string, bool) {
	s, ok := l.str(f, what)
	if !ok {
		return "", false
	}
	if !IsRole(s) {
		l.errorf(f.val, "%s: unknown role %q (roles: %s)", what, s, strings.Join(Roles, ", "))
		return "", false
	}
	return s, true
}

func (l *loader) require(fs map[string]field, n *yaml.Node, what string, names ...string) {
	for _, name := range names {
		if _, ok := fs[name]; !ok {
			l.errorf(n, "%s: missing required field %q", what, name)
		}
	}
}

// policy reads the top-level mapping into p.
func (l *loader) policy(root *yaml.Node, p *Policy) {
	fs := l.object(root, "policy file", "version", "roles", "groups", "rules", "default", "mab_default", "auth_default", "user_auth", "reference_values")
	if fs == nil {
		return
	}
	l.require(fs, root, "policy file", "version", "default")
	if f, ok := fs["version"]; ok {
		if v, ok := l.integer(f, "version", 0, 1<<31-1); ok {
			if v != Version {
				l.errorf(f.val, "unsupported version %d (this trustnac reads version %d)", v, Version)
			}
			p.Version = v
		}
	}
	p.Roles = map[string]Role{}
	if f, ok := fs["roles"]; ok {
		l.roles(f, p)
	}
	p.groupIndex = map[string]int{}
	if f, ok := fs["groups"]; ok {
		l.groups(f, p)
	}
	if f, ok := fs["rules"]; ok {
		l.rules(f, p)
	}
	if f, ok := fs["reference_values"]; ok {
		l.references(f, p)
	}
	if f, ok := fs["default"]; ok {
		p.Default = l.deflt(f, "default")
	}
	p.MABDefault = Default{Role: RoleAssess, Reason: "MAC address not in a MAB group; posture assessment required"}
	if f, ok := fs["mab_default"]; ok {
		p.MABDefault = l.deflt(f, "mab_default")
	}
	p.AuthDefault = Default{Role: RoleAssess, Reason: "authenticated by password only; posture assessment required"}
	if f, ok := fs["auth_default"]; ok {
		p.AuthDefault = l.deflt(f, "auth_default")
	}
	p.UserAuth = UserAuthOptional
	if f, ok := fs["user_auth"]; ok {
		if s, ok := l.str(f, "user_auth"); ok {
			switch s {
			case UserAuthRequired, UserAuthOptional, UserAuthNone:
				p.UserAuth = s
			default:
				l.errorf(f.val, "user_auth: unknown value %q (required, optional or none)", s)
			}
		}
	}
}

func (l *loader) roles(f field, p *Policy) {
	fs := l.object(f.val, "roles", Roles...)
	for _, name := range Roles {
		rf, ok := fs[name]
		if !ok {
			continue
		}
		what := "role " + name
		r := Role{Name: name, Line: rf.key.Line}
		rfs := l.object(rf.val, what, "vlan", "filter_id", "session_timeout", "remediation")
		if x, ok := rfs["vlan"]; ok {
			r.VLAN, _ = l.integer(x, what+": vlan", 1, 4094)
		}
		if x, ok := rfs["filter_id"]; ok {
			if s, ok := l.str(x, what+": filter_id"); ok {
				if s == "" || len(s) > MaxFilterID {
					l.errorf(x.val, "%s: filter_id must be 1..%d bytes", what, MaxFilterID)
				}
				r.FilterID = s
			}
		}
		if x, ok := rfs["session_timeout"]; ok {
			r.SessionTimeout, _ = l.integer(x, what+": session_timeout", 0, 1<<31-1)
		}
		if x, ok := rfs["remediation"]; ok {
			r.Remediation = l.remediation(x, what+": remediation")
		}
		p.Roles[name] = r
	}
}

func (l *loader) remediation(f field, what string) *Remediation {
	fs := l.object(f.val, what, "text", "uri")
	if fs == nil {
		return nil
	}
	r := &Remediation{}
	if x, ok := fs["text"]; ok {
		r.Text, _ = l.str(x, what+": text")
	}
	if x, ok := fs["uri"]; ok {
		if s, ok := l.str(x, what+": uri"); ok {
			u, err := url.Parse(s)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				l.errorf(x.val, "%s: uri %q must be an absolute http or https URI", what, s)
			}
			r.URI = s
		}
	}
	if r.Text == "" && r.URI == "" {
		l.errorf(nodeOr(f.val, f.key), "%s: give text, uri or both", what)
		return nil
	}
	return r
}

func (l *loader) groups(f field, p *Policy) {
	n, ok := l.sequence(f, "groups", "groups", MaxGroups)
	if !ok {
		return
	}
	l.groupMatch = map[int]*yaml.Node{}
	for i, gn := range n.Content {
		gn = l.resolve(gn)
		what := fmt.Sprintf("group #%d", i+1)
		fs := l.object(gn, what, "name", "macs", "identities", "aks", "match", "mab_role", "auth_role", "enrollment",
			"require_channel", "allow_sm2_key")
		if fs == nil {
			continue
		}
		g := Group{Line: gn.Line}
		if x, ok := fs["name"]; ok {
			if s, ok := l.name(x, what+": name"); ok {
				g.Name = s
				what = fmt.Sprintf("group %q", s)
				if _, dup := p.groupIndex[s]; dup {
					l.errorf(x.val, "duplicate group name %q", s)
				}
			}
		} else {
			l.errorf(gn, "%s: missing required field %q", what, "name")
		}
		if x, ok := fs["macs"]; ok {
			vals, nodes := l.list(x, what+": macs", MaxPatterns)
			for k, s := range vals {
				m, err := parseMACPattern(s)
				if err != nil {
					l.errorf(nodes[k], "%s: %s", what, strings.TrimPrefix(err.Error(), "policies: "))
					continue
				}
				g.MACs = append(g.MACs, s)
				g.macs = append(g.macs, m)
			}
		}
		if x, ok := fs["identities"]; ok {
			g.Identities = l.patterns(x, what+": identities")
		}
		if x, ok := fs["aks"]; ok {
			g.AKs = l.patterns(x, what+": aks")
			for _, s := range g.AKs {
				g.aks = append(g.aks, strings.ToLower(s))
			}
		}
		if x, ok := fs["match"]; ok {
			if s, ok := l.str(x, what+": match"); ok {
				g.Match = s
				l.groupMatch[len(p.Groups)] = x.val
			}
		}
		if x, ok := fs["mab_role"]; ok {
			g.MABRole, _ = l.role(x, what+": mab_role")
		}
		if x, ok := fs["auth_role"]; ok {
			g.AuthRole, _ = l.role(x, what+": auth_role")
		}
		if x, ok := fs["enrollment"]; ok {
			g.Enrollment = l.enrollment(x, what+": enrollment")
		}
		if x, ok := fs["require_channel"]; ok {
			g.RequireChannel = l.channel(x, what+": require_channel")
		}
		if x, ok := fs["allow_sm2_key"]; ok {
			g.AllowSM2Key, _ = l.boolean(x, what+": allow_sm2_key")
		}
		if !hasAny(fs, "macs", "identities", "aks", "match") {
			l.errorf(gn, "%s has no members: give macs, identities, aks or match", what)
		}
		if g.Name != "" {
			if _, dup := p.groupIndex[g.Name]; !dup {
				p.groupIndex[g.Name] = len(p.Groups)
			}
		}
		p.Groups = append(p.Groups, g)
	}
}

// patterns reads identity or AK patterns: non-empty strings in which "*" is a wildcard.
func (l *loader) patterns(f field, what string) []string {
	vals, nodes := l.list(f, what, MaxPatterns)
	out := vals[:0]
	for k, s := range vals {
		if s == "" {
			l.errorf(nodes[k], "%s: empty pattern", what)
			continue
		}
		out = append(out, s)
	}
	return out
}

func (l *loader) rules(f field, p *Policy) {
	n, ok := l.sequence(f, "rules", "rules", MaxRules)
	if !ok {
		return
	}
	l.ruleWhen = map[int]*yaml.Node{}
	seen := map[string]bool{}
	for i, rn := range n.Content {
		rn = l.resolve(rn)
		what := fmt.Sprintf("rule #%d", i+1)
		fs := l.object(rn, what, "name", "groups", "when", "role", "reason", "remediation")
		if fs == nil {
			continue
		}
		r := Rule{Line: rn.Line}
		if x, ok := fs["name"]; ok {
			if s, ok := l.name(x, what+": name"); ok {
				r.Name = s
				what = fmt.Sprintf("rule %q", s)
				if seen[s] {
					l.errorf(x.val, "duplicate rule name %q", s)
				}
				seen[s] = true
			}
		}
		l.require(fs, rn, what, "name", "role")
		if x, ok := fs["groups"]; ok {
			vals, nodes := l.list(x, what+": groups", MaxGroups)
			for k, s := range vals {
				if _, known := p.groupIndex[s]; !known {
					l.errorf(nodes[k], "%s: unknown group %q", what, s)
					continue
				}
				r.Groups = append(r.Groups, s)
			}
			if x.val.Kind == yaml.SequenceNode && len(x.val.Content) == 0 {
				l.errorf(x.val, "%s: groups is empty; remove it to apply the rule to every endpoint", what)
			}
		}
		if x, ok := fs["when"]; ok {
			if s, ok := l.str(x, what+": when"); ok {
				r.When = s
				l.ruleWhen[len(p.Rules)] = x.val
			}
		}
		if x, ok := fs["role"]; ok {
			r.Role, _ = l.role(x, what+": role")
		}
		if x, ok := fs["reason"]; ok {
			r.Reason, _ = l.str(x, what+": reason")
		}
		if x, ok := fs["remediation"]; ok {
			r.Remediation = l.remediation(x, what+": remediation")
		}
		p.Rules = append(p.Rules, r)
	}
}

func (l *loader) deflt(f field, what string) Default {
	d := Default{Line: f.key.Line}
	fs := l.object(f.val, what, "role", "reason", "remediation")
	if fs == nil {
		return d
	}
	l.require(fs, nodeOr(f.val, f.key), what, "role")
	if isNull(f.val) {
		// "default:" with nothing after it: report at the key, not at a null node.
		return d
	}
	if x, ok := fs["role"]; ok {
		d.Role, _ = l.role(x, what+": role")
	}
	if x, ok := fs["reason"]; ok {
		d.Reason, _ = l.str(x, what+": reason")
	}
	if x, ok := fs["remediation"]; ok {
		d.Remediation = l.remediation(x, what+": remediation")
	}
	return d
}

// compile compiles every CEL condition, reporting errors at their place in the file.
func (l *loader) compile(p *Policy) {
	rulesEnv, groupsEnv, err := environments()
	if err != nil {
		l.errorf(nil, "CEL environment: %v", err)
		return
	}
	for i := range p.Groups {
		g := &p.Groups[i]
		if g.Match == "" {
			if n := l.groupMatch[i]; n != nil {
				l.errorf(n, "group %q: match is empty; remove it or give a condition", g.Name)
			}
			continue
		}
		var errs []celError
		g.match, errs = compileBool(groupsEnv, g.Match)
		l.celErrors(l.groupMatch[i], fmt.Sprintf("group %q: match", g.Name), errs)
	}
	for i := range p.Rules {
		r := &p.Rules[i]
		if r.When == "" {
			if n := l.ruleWhen[i]; n != nil {
				l.errorf(n, "rule %q: when is empty; remove it to match every endpoint", r.Name)
			}
			continue
		}
		var errs []celError
		r.when, errs = compileBool(rulesEnv, r.When)
		l.celErrors(l.ruleWhen[i], fmt.Sprintf("rule %q: when", r.Name), errs)
	}
}

// celErrors reports CEL compile errors at their place in the file. Positions are exact for
// expressions on one line; for block scalars the line is exact and the column unknown.
func (l *loader) celErrors(n *yaml.Node, what string, errs []celError) {
	for _, e := range errs {
		le := &LoadError{File: l.file, Msg: what + ": " + e.msg}
		if n != nil {
			le.Line, le.Col = n.Line, n.Column
			switch n.Style {
			case yaml.LiteralStyle, yaml.FoldedStyle:
				if e.pos.line > 0 {
					le.Line, le.Col = n.Line+e.pos.line, 0
				}
			case yaml.SingleQuotedStyle, yaml.DoubleQuotedStyle:
				if e.pos.line == 1 && e.pos.col > 0 {
					le.Col = n.Column + e.pos.col // +1 for the quote, -1 for 1-based col
				}
			default:
				if e.pos.line == 1 && e.pos.col > 0 {
					le.Col = n.Column + e.pos.col - 1
				}
			}
		}
		l.errs = append(l.errs, le)
	}
}
