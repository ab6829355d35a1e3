package osimc

import (
	"bufio"
	"bytes"
	"strings"
	"unicode/utf8"
)

// maxOSReleaseSize caps how much of an os-release file is read. Real files
// are well under 1 KiB.
const maxOSReleaseSize = 64 << 10

// osRelease holds the os-release(5) fields the collector reports.
type osRelease struct {
	ID         string // "debian"; os-release(5) says a missing ID means "linux"
	VersionID  string // "12"
	PrettyName string // "Debian GNU/Linux 12 (bookworm)"
}

// parseOSRelease reads an os-release(5) file: KEY=VALUE lines, values
// optionally in single or double quotes, "#" comments. Malformed lines are
// skipped. Only the first maxOSReleaseSize bytes of data are considered.
func parseOSRelease(data []byte) osRelease {
	if len(data) > maxOSReleaseSize {
		data = data[:maxOSReleaseSize]
	}
	var r osRelease
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxOSReleaseSize+1)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		key, raw, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		val, ok := unquoteShell(strings.TrimSpace(raw))
		if !ok {
			continue
		}
		switch strings.TrimSpace(key) {
		case "ID":
			r.ID = val
		case "VERSION_ID":
			r.VersionID = val
		case "PRETTY_NAME":
			r.PrettyName = val
		}
	}
	if r.ID == "" {
		r.ID = "linux"
	}
	return r
}

// unquoteShell undoes the quoting os-release(5) allows: a bare word, a
// single-quoted string, or a double-quoted string with backslash escapes of
// `"`, `\`, `$` and "`". It reports false for an unterminated quote.
func unquoteShell(s string) (string, bool) {
	if s == "" {
		return "", true
	}
	switch s[0] {
	case '\'':
		if len(s) < 2 || s[len(s)-1] != '\'' {
			return "", false
		}
		return s[1 : len(s)-1], true
	case '"':
		if len(s) < 2 || s[len(s)-1] != '"' {
			return "", false
		}
		inner := s[1 : len(s)-1]
		var b strings.Builder
		for i := 0; i < len(inner); i++ {
			c := inner[i]
			if c == '\\' && i+1 < len(inner) {
				switch inner[i+1] {
				case '"', '\\', '$', '`':
					i++
					c = inner[i]
				}
			}
			b.WriteByte(c)
		}
		return b.String(), true
	}
	return s, true
}

// fit255 makes s fit a one-byte-length UTF-8 string field of RFC 5792
// §4.2.2/§4.2.4: invalid UTF-8 becomes U+FFFD, and s is cut at a rune
// boundary to at most 255 bytes.
func fit255(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= 255 {
		return s
	}
	cut := 255
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// numericVersion parses the leading "major[.minor]" numbers of VERSION_ID
// ("12" → 12, 0; "22.04" → 22, 4). It reports false when VERSION_ID does not
// start with a number that fits in 32 bits.
func numericVersion(v string) (major, minor uint32, ok bool) {
	major, rest, ok := leadingUint32(v)
	if !ok {
		return 0, 0, false
	}
	if strings.HasPrefix(rest, ".") {
		if m, _, ok := leadingUint32(rest[1:]); ok {
			minor = m
		}
	}
	return major, minor, true
}

// leadingUint32 parses the decimal digits at the start of s.
func leadingUint32(s string) (uint32, string, bool) {
	var n uint64
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		n = n*10 + uint64(s[i]-'0')
		if n > 1<<32-1 {
			return 0, s, false
		}
		i++
	}
	if i == 0 {
		return 0, s, false
	}
	return uint32(n), s[i:], true
}
