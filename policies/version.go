package policies

// CompareVersions compares two package version strings the way dpkg does (Debian Policy Manual
// §5.6.12 "Version"): [epoch:]upstream[-revision]. Epochs compare numerically (absent is 0); the
// upstream versions, then the revisions (absent is empty, which equals "0"), compare by
// alternating non-digit runs and digit runs. Non-digit runs compare character by character with
// "~" before everything, even the end of the string, then the end of the string, then letters, then
// all other characters; digit runs compare numerically, so "12" > "9" and "1.010" == "1.10".
// Strings that are not valid Debian versions (RPM's "1.2-3.el9", "v2") still compare sensibly
// by the same rules. The result is -1, 0 or +1.
func CompareVersions(a, b string) int {
	ea, ua, ra := splitVersion(a)
	eb, ub, rb := splitVersion(b)
	if c := compareDigits(ea, eb); c != 0 {
		return c
	}
	if c := compareFragment(ua, ub); c != 0 {
		return c
	}
	return compareFragment(ra, rb)
}

// VersionAtLeast reports whether version v is at least min (CompareVersions(v, min) >= 0).
func VersionAtLeast(v, min string) bool { return CompareVersions(v, min) >= 0 }

// splitVersion splits [epoch:]upstream[-revision]. The epoch is taken only when all digits, so
// that strings with other colons still compare as one upstream version.
func splitVersion(v string) (epoch, upstream, revision string) {
	upstream = v
	for i := 0; i < len(v); i++ {
		if v[i] == ':' {
			if i > 0 && allDigits(v[:i]) {
				epoch, upstream = v[:i], v[i+1:]
			}
			break
		}
		if !isDigit(v[i]) {
			break
		}
	}
	for i := len(upstream) - 1; i >= 0; i-- {
		if upstream[i] == '-' {
			upstream, revision = upstream[:i], upstream[i+1:]
			break
		}
	}
	return epoch, upstream, revision
}

// compareFragment is dpkg's verrevcmp over one upstream version or revision.
func compareFragment(a, b string) int {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		// Non-digit run: compare character weights until both sides reach a digit or the end.
		for (i < len(a) && !isDigit(a[i])) || (j < len(b) && !isDigit(b[j])) {
			wa, wb := charOrder(a, i), charOrder(b, j)
			if wa != wb {
				return sign(wa - wb)
			}
			i++
			j++
		}
		// Digit run: compare numerically, without converting (runs may be arbitrarily long).
		si := i
		for i < len(a) && isDigit(a[i]) {
			i++
		}
		sj := j
		for j < len(b) && isDigit(b[j]) {
			j++
		}
		if c := compareDigits(a[si:i], b[sj:j]); c != 0 {
			return c
		}
	}
	return 0
}

// charOrder is the weight of s[i] in a non-digit run: '~' sorts first, then the end of the
// string and digits (which end the run), then letters, then everything else.
func charOrder(s string, i int) int {
	if i >= len(s) {
		return 0
	}
	c := s[i]
	switch {
	case isDigit(c):
		return 0
	case isLetter(c):
		return int(c)
	case c == '~':
		return -1
	default:
		return int(c) + 256
	}
}

// compareDigits compares two runs of decimal digits numerically ("" counts as 0).
func compareDigits(a, b string) int {
	for len(a) > 0 && a[0] == '0' {
		a = a[1:]
	}
	for len(b) > 0 && b[0] == '0' {
		b = b[1:]
	}
	if len(a) != len(b) {
		return sign(len(a) - len(b))
	}
	for k := 0; k < len(a); k++ {
		if a[k] != b[k] {
			return sign(int(a[k]) - int(b[k]))
		}
	}
	return 0
}

func sign(x int) int {
	switch {
	case x < 0:
		return -1
	case x > 0:
		return 1
	}
	return 0
}

func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isLetter(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}
