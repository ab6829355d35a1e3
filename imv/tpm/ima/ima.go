package ima

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// Parser caps.
const (
	// DefaultMaxEntries is the entry cap ParseBinary uses when maxEntries <= 0.
	DefaultMaxEntries = 1 << 20
	// MaxTemplateNameLen caps the template name (the kernel's own names are at most 15
	// characters; a custom ima_template_fmt name is longer).
	MaxTemplateNameLen = 255
	// MaxTemplateDataLen caps the template data of one entry (an ima-sig signature is a few
	// hundred bytes; ima-buf buffers can reach a page or more).
	MaxTemplateDataLen = 1 << 20
	// MaxNameLen is IMA_EVENT_NAME_LEN_MAX: the longest file name of the "ima" template.
	MaxNameLen = 255
)

// Template names (security/integrity/ima/ima_template.c).
const (
	TemplateIMA       = "ima"        // d|n
	TemplateIMANG     = "ima-ng"     // d-ng|n-ng
	TemplateIMASig    = "ima-sig"    // d-ng|n-ng|sig
	TemplateIMANGv2   = "ima-ngv2"   // d-ngv2|n-ng
	TemplateIMASigv2  = "ima-sigv2"  // d-ngv2|n-ng|sig
	TemplateIMAModsig = "ima-modsig" // d-ng|n-ng|sig|d-modsig|modsig
	TemplateIMABuf    = "ima-buf"    // d-ng|n-ng|buf
)

// PCR is the PCR IMA extends by default (CONFIG_IMA_MEASURE_PCR_IDX).
const PCR = 10

// BootAggregate is the file name of the first entry, the digest of PCRs 0–7 (0–9 on recent
// kernels) at the time IMA starts.
const BootAggregate = "boot_aggregate"

// ErrMalformed is wrapped by every error about an unparsable measurement list.
var ErrMalformed = errors.New("ima: malformed measurement list")

// ErrTooManyEntries is returned when the list holds more entries than allowed.
var ErrTooManyEntries = errors.New("ima: too many entries")

// Entry is one record of the IMA binary measurement list.
type Entry struct {
	// PCR is the PCR the entry was extended into (10 unless the IMA policy says otherwise).
	PCR int
	// TemplateHash is the logged template digest: SHA-1 in binary_runtime_measurements, all
	// zeros for a measurement violation.
	TemplateHash []byte
	// Template is the template name ("ima", "ima-ng", "ima-sig", ...).
	Template string
	// TemplateData is the template data as logged: for every template but "ima", the fields
	// each prefixed by its 32-bit length (exactly what the template digest covers); for "ima",
	// the 20-byte digest, the 32-bit name length and the name.
	TemplateData []byte
	// FileDigest is the file digest of the entry (d / d-ng / d-ngv2 field); nil for templates
	// this package does not interpret.
	FileDigest []byte
	// FileDigestAlg is the kernel's name of the file digest algorithm ("sha1", "sha256",
	// "sha384", "sha512", "sm3", "md5"), "" when FileDigest is nil.
	FileDigestAlg string
	// Path is the file name (n / n-ng field), "" for templates this package does not
	// interpret.
	Path string
}

// IsViolation reports whether e records a measurement violation (an all-zero template hash:
// a file opened for write while measured, or measured while open for write).
func (e *Entry) IsViolation() bool {
	if len(e.TemplateHash) == 0 {
		return false
	}
	for _, b := range e.TemplateHash {
		if b != 0 {
			return false
		}
	}
	return true
}

// ParseBinary parses binary_runtime_measurements (host byte order, little-endian on the
// platforms this project supports; the kernel's ima_canonical_fmt writes little-endian too).
// Each entry: PCR (u32), template digest (20 bytes, SHA-1), template name length (u32) and
// name, and, except for the "ima" template, the template data length (u32) and data.
// Templates ima, ima-ng, ima-sig (and ima-ngv2, ima-sigv2, ima-modsig, which begin with the
// same fields) are interpreted; others are kept with Path "" and FileDigest nil.
//
// maxEntries caps the entry count (DefaultMaxEntries when <= 0). Entries are copied out of
// log. ParseBinary does not check template digests; Replay does.
func ParseBinary(log []byte, maxEntries int) ([]Entry, error) {
	return ParseBinaryDigestSize(log, sha1.Size, maxEntries)
}

// ParseBinaryDigestSize parses a measurement list whose template digests are digestSize bytes
// long: the per-bank lists binary_runtime_measurements_<alg> of Linux 6.x (32 for sha256).
func ParseBinaryDigestSize(log []byte, digestSize, maxEntries int) ([]Entry, error) {
	if digestSize <= 0 || digestSize > 64 {
		return nil, fmt.Errorf("ima: template digest size %d", digestSize)
	}
	if maxEntries <= 0 {
		maxEntries = DefaultMaxEntries
	}
	// The smallest entry: PCR, digest, name length, a one-byte name, data length.
	minEntry := 4 + digestSize + 4 + 1 + 4
	var entries []Entry
	if n := len(log) / minEntry; n < maxEntries {
		entries = make([]Entry, 0, n)
	}
	off := 0
	for off < len(log) {
		if len(entries) >= maxEntries {
			return nil, fmt.Errorf("%w: more than %d", ErrTooManyEntries, maxEntries)
		}
		e, n, err := parseEntry(log[off:], digestSize)
		if err != nil {
			return nil, fmt.Errorf("%w: entry %d at offset %d: %s", ErrMalformed, len(entries), off, err)
		}
		entries = append(entries, e)
		off += n
	}
	return entries, nil
}

func u32(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }

// parseEntry parses one entry and returns it with its encoded length.
func parseEntry(b []byte, digestSize int) (Entry, int, error) {
	var e Entry
	if len(b) < 4+digestSize+4 {
		return e, 0, errors.New("truncated header")
	}
	pcr := u32(b)
	if pcr > 23 {
		return e, 0, fmt.Errorf("PCR %d", pcr)
	}
	e.PCR = int(pcr)
	off := 4
	e.TemplateHash = bytes.Clone(b[off : off+digestSize])
	off += digestSize
	nameLen := u32(b[off:])
	off += 4
	if nameLen == 0 || nameLen > MaxTemplateNameLen {
		return e, 0, fmt.Errorf("template name length %d", nameLen)
	}
	if uint64(nameLen) > uint64(len(b)-off) {
		return e, 0, errors.New("truncated template name")
	}
	e.Template = string(b[off : off+int(nameLen)])
	off += int(nameLen)

	if e.Template == TemplateIMA {
		// d: 20 bytes without a length; n: u32 length and the name without NUL.
		if len(b)-off < 20+4 {
			return e, 0, errors.New("truncated ima template data")
		}
		n := u32(b[off+20:])
		if n > MaxNameLen {
			return e, 0, fmt.Errorf("ima template name length %d", n)
		}
		if uint64(n) > uint64(len(b)-off-24) {
			return e, 0, errors.New("truncated ima template name")
		}
		end := off + 24 + int(n)
		e.TemplateData = bytes.Clone(b[off:end])
		e.FileDigest = e.TemplateData[:20:20]
		e.FileDigestAlg = "sha1"
		e.Path = string(e.TemplateData[24:])
		return e, end, nil
	}

	if len(b)-off < 4 {
		return e, 0, errors.New("truncated template data length")
	}
	dataLen := u32(b[off:])
	off += 4
	if dataLen > MaxTemplateDataLen {
		return e, 0, fmt.Errorf("template data length %d", dataLen)
	}
	if uint64(dataLen) > uint64(len(b)-off) {
		return e, 0, errors.New("truncated template data")
	}
	e.TemplateData = bytes.Clone(b[off : off+int(dataLen)])
	off += int(dataLen)
	if err := interpret(&e); err != nil {
		return e, 0, err
	}
	return e, off, nil
}

// fields splits template data into its length-prefixed fields.
func fields(data []byte) ([][]byte, error) {
	var out [][]byte
	for len(data) > 0 {
		if len(data) < 4 {
			return nil, errors.New("truncated field length")
		}
		n := u32(data)
		if uint64(n) > uint64(len(data)-4) {
			return nil, errors.New("field length beyond template data")
		}
		out = append(out, data[4:4+n:4+n])
		data = data[4+n:]
	}
	return out, nil
}

// interpret fills FileDigest, FileDigestAlg and Path for the templates that begin with a
// d-ng (or d-ngv2) and an n-ng field. For other templates the fields are still checked to
// frame the data exactly.
func interpret(e *Entry) error {
	fs, err := fields(e.TemplateData)
	if err != nil {
		return err
	}
	want := 0
	switch e.Template {
	case TemplateIMANG, TemplateIMANGv2:
		want = 2
	case TemplateIMASig, TemplateIMASigv2:
		want = 3
	case TemplateIMAModsig:
		want = 5
	default:
		return nil
	}
	if len(fs) != want {
		return fmt.Errorf("%s template with %d fields, want %d", e.Template, len(fs), want)
	}
	alg, digest, err := parseDigestNG(fs[0])
	if err != nil {
		return err
	}
	e.FileDigest, e.FileDigestAlg = digest, alg
	name := fs[1]
	if len(name) == 0 || name[len(name)-1] != 0 {
		return errors.New("n-ng field without its NUL terminator")
	}
	e.Path = string(name[:len(name)-1])
	return nil
}

// parseDigestNG parses a d-ng field: "<algo>:\0<digest>"; or d-ngv2: "<type>:<algo>:\0<digest>"
// (type "ima" or "verity"); a field without the NUL-terminated prefix is a bare digest
// (SHA-1 or MD5 by its length).
func parseDigestNG(f []byte) (alg string, digest []byte, err error) {
	i := bytes.IndexByte(f, 0)
	if i < 0 || i > 64 {
		switch len(f) {
		case 20:
			return "sha1", f, nil
		case 16:
			return "md5", f, nil
		}
		return "", nil, fmt.Errorf("d-ng field of %d bytes without an algorithm", len(f))
	}
	prefix := string(f[:i])
	if !strings.HasSuffix(prefix, ":") {
		return "", nil, fmt.Errorf("d-ng prefix %q", prefix)
	}
	parts := strings.Split(strings.TrimSuffix(prefix, ":"), ":")
	alg = normalizeAlg(parts[len(parts)-1])
	digest = f[i+1:]
	if size := algSize(alg); size != 0 && size != len(digest) {
		return "", nil, fmt.Errorf("%s digest of %d bytes", alg, len(digest))
	}
	if len(digest) == 0 {
		return "", nil, errors.New("empty file digest")
	}
	return alg, digest, nil
}

// normalizeAlg maps the kernel's hash names to this package's: "sm3-256"/"sm3_256" → "sm3".
func normalizeAlg(a string) string {
	a = strings.ToLower(a)
	switch a {
	case "sm3-256", "sm3_256":
		return "sm3"
	}
	return a
}

// algSize returns the digest size of a file digest algorithm name, 0 when unknown.
func algSize(alg string) int {
	switch alg {
	case "md5":
		return 16
	case "sha1":
		return 20
	case "sha224":
		return 28
	case "sha256", "sm3", "streebog256":
		return 32
	case "sha384":
		return 48
	case "sha512", "streebog512":
		return 64
	}
	return 0
}

// AppendBinary appends e in the binary_runtime_measurements format ParseBinary reads. It
// fails for an entry ParseBinary could not have produced: no template name, a name or data
// over the caps, a PCR outside 0–23.
func (e *Entry) AppendBinary(b []byte) ([]byte, error) {
	switch {
	case e.PCR < 0 || e.PCR > 23:
		return b, fmt.Errorf("ima: PCR %d", e.PCR)
	case e.Template == "" || len(e.Template) > MaxTemplateNameLen:
		return b, fmt.Errorf("ima: template name of %d bytes", len(e.Template))
	case len(e.TemplateData) > MaxTemplateDataLen:
		return b, fmt.Errorf("ima: template data of %d bytes", len(e.TemplateData))
	case len(e.TemplateHash) == 0 || len(e.TemplateHash) > 64:
		return b, fmt.Errorf("ima: template hash of %d bytes", len(e.TemplateHash))
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(e.PCR))
	b = append(b, e.TemplateHash...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(e.Template)))
	b = append(b, e.Template...)
	if e.Template != TemplateIMA {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(e.TemplateData)))
	}
	return append(b, e.TemplateData...), nil
}
