package ima

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"
)

// MaxAllowlistSize caps the size of an allowlist file read by LoadAllowlist and parsed by
// ParseAllowlist.
const MaxAllowlistSize = 256 << 20

// Violation reasons.
const (
	ReasonNotInAllowlist      = "not in allowlist"
	ReasonDigestDiffers       = "digest differs from allowlist"
	ReasonMeasurementViolated = "measurement violation"
	// ReasonUnsupportedTemplate is for entries of templates this package cannot read a file
	// measurement from (other than ima-buf, whose buffers are not files and are skipped).
	ReasonUnsupportedTemplate = "unsupported template"
)

// ErrAllowlist is wrapped by every allowlist syntax error.
var ErrAllowlist = errors.New("ima: bad allowlist")

// Allowlist holds the file digests allowed for each path and the excluded path patterns.
// The zero value allows nothing. An Allowlist is safe for concurrent use once parsed.
type Allowlist struct {
	// files maps a path to its allowed digests, each "<alg>:<lower-case hex>".
	files   map[string]map[string]struct{}
	exclude []string
}

// Violation is one measurement the allowlist does not accept.
type Violation struct {
	// Path is the measured file.
	Path string
	// Digest is the measured file digest as "<alg>:<hex>" ("sha256:ab…").
	Digest string
	// Reason is one of the Reason constants.
	Reason string
}

// ParseAllowlist parses an allowlist. One entry a line:
//
//	<hex digest>  <path>          sha256sum/sha1sum output; " *" (binary mode) also accepted
//	<alg>:<hex digest>  <path>    an explicit algorithm: sha1, sha256, sha384, sha512, sm3
//	exclude <glob>                paths not checked: path.Match syntax, and a trailing "/**"
//	                              matches the directory and everything below it
//	# comment
//
// The algorithm of an unprefixed digest comes from its length: 40 hex digits SHA-1, 64
// SHA-256, 96 SHA-384, 128 SHA-512. SM3 digests are 64 hex digits too, so they need the
// "sm3:" prefix (sm3sum output must be prefixed). A path may be listed several times with
// different digests (several versions of a file, or several algorithms); any of them matches.
// Paths are taken literally up to the end of the line (they may contain spaces).
func ParseAllowlist(data []byte) (*Allowlist, error) {
	if len(data) > MaxAllowlistSize {
		return nil, fmt.Errorf("%w: %d bytes exceeds %d", ErrAllowlist, len(data), MaxAllowlistSize)
	}
	a := &Allowlist{files: make(map[string]map[string]struct{})}
	lineNo := 0
	for len(data) > 0 {
		lineNo++
		var line []byte
		line, data, _ = bytes.Cut(data, []byte{'\n'})
		line = bytes.TrimSuffix(line, []byte{'\r'})
		s := strings.TrimLeft(string(line), " \t")
		if s == "" || s[0] == '#' {
			continue
		}
		if rest, ok := strings.CutPrefix(s, "exclude"); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
			pattern := strings.TrimSpace(rest)
			if err := checkPattern(pattern); err != nil {
				return nil, fmt.Errorf("%w: line %d: %v", ErrAllowlist, lineNo, err)
			}
			a.exclude = append(a.exclude, pattern)
			continue
		}
		key, p, err := parseDigestLine(s)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrAllowlist, lineNo, err)
		}
		set := a.files[p]
		if set == nil {
			set = make(map[string]struct{}, 1)
			a.files[p] = set
		}
		set[key] = struct{}{}
	}
	return a, nil
}

// parseDigestLine parses "<[alg:]hex>  <path>" into the digest key "<alg>:<hex>" and the path.
// The digest and the path are separated by spaces or tabs; a single space followed by '*' is
// sha256sum's binary-mode marker and is not part of the path.
func parseDigestLine(s string) (key, p string, err error) {
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return "", "", errors.New("digest without a path")
	}
	d, rest := s[:i], s[i:]
	if strings.HasPrefix(rest, " *") {
		rest = rest[2:]
	} else {
		rest = strings.TrimLeft(rest, " \t")
	}
	if rest == "" {
		return "", "", errors.New("digest without a path")
	}
	if err := checkPath(rest); err != nil {
		return "", "", err
	}
	alg, hexDigest, prefixed := strings.Cut(d, ":")
	if !prefixed {
		hexDigest = d
		switch len(d) {
		case 40:
			alg = "sha1"
		case 64:
			alg = "sha256"
		case 96:
			alg = "sha384"
		case 128:
			alg = "sha512"
		default:
			return "", "", fmt.Errorf("digest of %d hex digits", len(d))
		}
	}
	alg = normalizeAlg(alg)
	size := algSize(alg)
	if size == 0 {
		return "", "", fmt.Errorf("unknown digest algorithm %q", alg)
	}
	raw, err := hex.DecodeString(hexDigest)
	if err != nil {
		return "", "", fmt.Errorf("digest is not hex")
	}
	if len(raw) != size {
		return "", "", fmt.Errorf("%s digest of %d bytes", alg, len(raw))
	}
	return alg + ":" + hex.EncodeToString(raw), rest, nil
}

// checkPath rejects paths this format cannot carry: control characters, a leading space or
// tab (taken for the separator) or a leading '*' after a single space.
func checkPath(p string) error {
	if p[0] == ' ' || p[0] == '\t' {
		return errors.New("path begins with white space")
	}
	for _, c := range []byte(p) {
		if c < 0x20 || c == 0x7f {
			return fmt.Errorf("control character 0x%02x in path", c)
		}
	}
	return nil
}

// checkPattern rejects patterns path.Match would reject.
func checkPattern(p string) error {
	if p == "" {
		return errors.New("exclude without a pattern")
	}
	base := strings.TrimSuffix(p, "/**")
	if base == "" {
		base = "/"
	}
	if _, err := path.Match(base, ""); err != nil {
		return fmt.Errorf("exclude %q: %v", p, err)
	}
	return nil
}

// LoadAllowlist reads and parses the allowlist file at name (see ParseAllowlist).
func LoadAllowlist(name string) (*Allowlist, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("ima: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxAllowlistSize+1))
	if err != nil {
		return nil, fmt.Errorf("ima: reading %s: %w", name, err)
	}
	a, err := ParseAllowlist(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return a, nil
}

// AppendText appends a in the canonical form of the allowlist format, which
// ParseAllowlist reads back to an equal Allowlist: the exclude lines in their order, then
// "<alg>:<hex>  <path>" lines sorted by path and digest.
func (a *Allowlist) AppendText(b []byte) ([]byte, error) {
	if a == nil {
		return b, nil
	}
	for _, pat := range a.exclude {
		b = append(b, "exclude "...)
		b = append(b, pat...)
		b = append(b, '\n')
	}
	paths := make([]string, 0, len(a.files))
	for p := range a.files {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		keys := make([]string, 0, len(a.files[p]))
		for k := range a.files[p] {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			b = append(b, k...)
			b = append(b, "  "...)
			b = append(b, p...)
			b = append(b, '\n')
		}
	}
	return b, nil
}

// Len returns the number of paths with digests in a.
func (a *Allowlist) Len() int { return len(a.files) }

// Excluded reports whether p matches an exclude pattern.
func (a *Allowlist) Excluded(p string) bool {
	for _, pat := range a.exclude {
		if matchPattern(pat, p) {
			return true
		}
	}
	return false
}

// matchPattern is path.Match, plus "<base>/**" matching base itself and everything below it.
func matchPattern(pat, p string) bool {
	base, subtree := strings.CutSuffix(pat, "/**")
	if !subtree {
		ok, _ := path.Match(pat, p)
		return ok
	}
	if base == "" {
		return strings.HasPrefix(p, "/")
	}
	// Try base against p and every ancestor of p.
	for q := p; ; {
		if ok, _ := path.Match(base, q); ok {
			return true
		}
		i := strings.LastIndexByte(q, '/')
		if i <= 0 {
			return false
		}
		q = q[:i]
	}
}

// Check returns the violations of entries against a, in entry order. The boot_aggregate
// entry is skipped, and so are excluded paths (even when their measurement was violated),
// ima-buf entries (buffers such as kexec command lines and keys, not files) and entries of
// PCRs other than 10. A measurement violation is reported as such; a path the allowlist does
// not list is "not in allowlist"; a listed path whose digest (of the same algorithm) is not
// listed is "digest differs from allowlist". Entries of templates this package does not
// interpret are "unsupported template". A nil Allowlist allows nothing.
func (a *Allowlist) Check(entries []Entry) []Violation {
	var out []Violation
	for i := range entries {
		e := &entries[i]
		if e.PCR != PCR || e.Template == TemplateIMABuf {
			continue
		}
		if e.Path == BootAggregate && e.FileDigest != nil {
			continue
		}
		if a != nil && e.Path != "" && a.Excluded(e.Path) {
			continue
		}
		digest := ""
		if e.FileDigest != nil {
			digest = e.FileDigestAlg + ":" + hex.EncodeToString(e.FileDigest)
		}
		switch {
		case e.IsViolation():
			out = append(out, Violation{e.Path, digest, ReasonMeasurementViolated})
		case e.FileDigest == nil:
			out = append(out, Violation{e.Path, digest, ReasonUnsupportedTemplate})
		case a == nil || a.files[e.Path] == nil:
			out = append(out, Violation{e.Path, digest, ReasonNotInAllowlist})
		default:
			if _, ok := a.files[e.Path][digest]; !ok {
				out = append(out, Violation{e.Path, digest, ReasonDigestDiffers})
			}
		}
	}
	return out
}
