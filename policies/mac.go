package policies

import (
	"errors"
	"fmt"
	"strings"
)

// ErrBadMAC is returned (wrapped) by NormalizeMAC for a string that is not a MAC address.
var ErrBadMAC = errors.New("policies: bad MAC address")

// macPattern is a MAC address or prefix as lower-case hex nibbles without separators.
type macPattern struct {
	nibbles string // 12 nibbles for an exact MAC, fewer for a prefix
	prefix  bool   // pattern ended in "*"
}

func (m macPattern) matches(nibbles string) bool {
	if m.prefix {
		return strings.HasPrefix(nibbles, m.nibbles)
	}
	return nibbles == m.nibbles
}

// NormalizeMAC returns a 48-bit MAC address in the form the policy's `endpoint.mac` fact uses,
// "02:00:00:00:00:01" (lower case, colons). It accepts the usual forms: aa:bb:cc:dd:ee:ff,
// AA-BB-CC-DD-EE-FF, aabb.ccdd.eeff and aabbccddeeff, in either case.
func NormalizeMAC(s string) (string, error) {
	n, ok := parseMAC(s)
	if !ok {
		_, err := macNibbles(s) // for the error's words
		return "", err
	}
	var b [17]byte
	for i := range 6 {
		b[3*i], b[3*i+1] = n[2*i], n[2*i+1]
		if i < 5 {
			b[3*i+2] = ':'
		}
	}
	return string(b[:]), nil
}

// macNibbles parses a full MAC address into its 12 lower-case hex nibbles.
func macNibbles(s string) (string, error) {
	if n, ok := parseMAC(s); ok {
		return string(n[:]), nil
	}
	// parseMAC takes every full address parseMACPattern does; what is left is an error, which
	// parseMACPattern words.
	p, err := parseMACPattern(s)
	if err != nil {
		return "", err
	}
	if p.prefix {
		return "", fmt.Errorf("%w %q: wildcard not allowed here", ErrBadMAC, s)
	}
	return "", fmt.Errorf("%w %q", ErrBadMAC, s) // not reached: FuzzParseMAC checks
}

// parseMAC parses a full MAC address in one of the usual layouts (aa:bb:cc:dd:ee:ff,
// aa-bb-cc-dd-ee-ff, aabb.ccdd.eeff, aabbccddeeff; either case) into its 12 lower-case hex
// nibbles, without allocating. These are exactly the full addresses parseMACPattern accepts.
func parseMAC(s string) (n [12]byte, ok bool) {
	k := 0
	ok = true
	switch len(s) {
	case 17: // aa:bb:cc:dd:ee:ff or aa-bb-cc-dd-ee-ff
		sep := s[2]
		ok = sep == ':' || sep == '-'
		for i := 0; i < 17 && ok; i++ {
			if i%3 == 2 {
				ok = s[i] == sep
				continue
			}
			n[k], ok = hexNibble(s[i])
			k++
		}
	case 14: // aabb.ccdd.eeff
		for i := 0; i < 14 && ok; i++ {
			if i%5 == 4 {
				ok = s[i] == '.'
				continue
			}
			n[k], ok = hexNibble(s[i])
			k++
		}
	case 12:
		for i := 0; i < 12 && ok; i++ {
			n[k], ok = hexNibble(s[i])
			k++
		}
	default:
		ok = false
	}
	return n, ok
}

// SameMAC reports whether a and b are both MAC addresses in a form NormalizeMAC accepts and
// name the same address: "020000000001" and "02-00-00-00-00-01" do. It does not allocate, so it
// suits a per-request check such as whether a RADIUS User-Name is the Calling-Station-Id (MAC
// Authentication Bypass).
func SameMAC(a, b string) bool {
	na, ok := parseMAC(a)
	if !ok {
		return false
	}
	nb, ok := parseMAC(b)
	return ok && na == nb
}

// parseMACPattern parses a MAC address or a MAC prefix ending in "*". Separated forms group by
// separator: "02:00:00:*" (colon or dash, two hex digits a group), "0200.00*" (dot, four hex digits a
// group except a last group before "*", which may be shorter); the bare form "020000*" may end at any
// nibble. A lone "*" matches every MAC.
func parseMACPattern(s string) (macPattern, error) {
	bad := func(why string) (macPattern, error) {
		return macPattern{}, fmt.Errorf("%w %q: %s", ErrBadMAC, s, why)
	}
	if s == "" {
		return bad("empty")
	}
	if len(s) > 32 {
		return bad("too long")
	}
	body, prefix := strings.CutSuffix(s, "*")
	if strings.Contains(body, "*") {
		return bad(`"*" is allowed only at the end`)
	}
	if body == "" {
		return macPattern{prefix: true}, nil
	}
	var sep byte
	for _, c := range []byte{':', '-', '.'} {
		if strings.IndexByte(body, c) >= 0 {
			if sep != 0 {
				return bad("mixed separators")
			}
			sep = c
		}
	}
	var groups []string
	size := 0
	switch sep {
	case 0:
		groups, size = []string{body}, 12
	case '.':
		groups, size = strings.Split(body, "."), 4
	default:
		groups, size = strings.Split(body, string(sep)), 2
	}
	if prefix && groups[len(groups)-1] == "" {
		// "02:00:*" — the separator before "*" is optional.
		groups = groups[:len(groups)-1]
	}
	var b strings.Builder
	for i, g := range groups {
		last := i == len(groups)-1
		switch {
		case len(g) == size:
		case prefix && last && len(g) > 0 && len(g) < size && sep != ':' && sep != '-':
			// A bare or dotted prefix may end mid-group.
		default:
			return bad(fmt.Sprintf("group %q must have %d hex digits", g, size))
		}
		for k := 0; k < len(g); k++ {
			c := g[k]
			switch {
			case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
				b.WriteByte(c)
			case c >= 'A' && c <= 'F':
				b.WriteByte(c + 'a' - 'A')
			default:
				return bad(fmt.Sprintf("%q is not a hex digit", c))
			}
		}
	}
	n := b.String()
	switch {
	case len(n) > 12:
		return bad("longer than 6 bytes")
	case !prefix && len(n) != 12:
		return bad("shorter than 6 bytes (end a prefix with \"*\")")
	case prefix && len(n) == 12:
		return bad(`"*" after a complete address`)
	}
	return macPattern{nibbles: n, prefix: prefix}, nil
}

// hexNibble returns c as a lower-case hex digit.
func hexNibble(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
		return c, true
	case c >= 'A' && c <= 'F':
		return c + 'a' - 'A', true
	}
	return 0, false
}

// globMatch reports whether s matches pattern, where "*" matches any run of characters (also
// empty) and every other character matches itself. It runs in O(len(s)·len(pattern)) at worst.
func globMatch(pattern, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case p < len(pattern) && pattern[p] == s[i]:
			p++
			i++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
