package osimc

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"unicode/utf8"

	"trustnac/transport/patnc"
)

const (
	// maxDpkgStatusSize caps how much of the dpkg status file is read; a
	// desktop with 5,000 packages has a status file of about 10 MiB.
	maxDpkgStatusSize = 64 << 20
	// maxLineLen caps one line of a status file or of /proc/net; longer
	// lines are skipped.
	maxLineLen = 64 << 10
	// maxPackageField is the longest package name or version an Installed
	// Packages attribute carries: a one-byte length (RFC 5792 §4.2.7).
	maxPackageField = 255
	// maxPackagesWire is the most packages one Installed Packages attribute
	// carries: a 16-bit count (RFC 5792 §4.2.7).
	maxPackagesWire = 65535
)

var (
	errTooLarge        = errors.New("osimc: file exceeds the size cap")
	errTooManyPackages = errors.New("osimc: more installed packages than the cap")
)

// lineReader yields the lines of r without their line ends, skipping lines
// longer than maxLineLen and stopping with errTooLarge after limit bytes.
type lineReader struct {
	br    *bufio.Reader
	lr    *io.LimitedReader
	limit int64
	err   error
}

// lineBuffers keeps the readers' 64 KiB buffers between collections: an
// endpoint assessed often (every 802.1X re-authentication) would otherwise
// allocate and clear one per file read.
var lineBuffers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, maxLineLen) }}

// newLineReader reads r; release gives its buffer back.
func newLineReader(r io.Reader, limit int64) *lineReader {
	lr := &io.LimitedReader{R: r, N: limit + 1}
	br := lineBuffers.Get().(*bufio.Reader)
	br.Reset(lr)
	return &lineReader{br: br, lr: lr, limit: limit}
}

// release returns the buffer to the pool; lines read before are invalid
// after it, and so is l.
func (l *lineReader) release() {
	if l.br == nil {
		return
	}
	l.br.Reset(nil)
	lineBuffers.Put(l.br)
	l.br = nil
}

// next returns the next line; ok is false at the end of input or on error
// (see Err). The returned slice is valid until the next call.
func (l *lineReader) next() (line []byte, ok bool) {
	for {
		b, err := l.br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// Too long: drop this line up to its end.
			for err == bufio.ErrBufferFull {
				_, err = l.br.ReadSlice('\n')
			}
			if err != nil {
				return nil, l.fail(err)
			}
			continue
		}
		if err != nil && (err != io.EOF || len(b) == 0) {
			return nil, l.fail(err)
		}
		b = bytes.TrimSuffix(b, []byte("\n"))
		b = bytes.TrimSuffix(b, []byte("\r"))
		return b, true
	}
}

func (l *lineReader) fail(err error) bool {
	if l.lr.N <= 0 {
		l.err = fmt.Errorf("%w (%d bytes)", errTooLarge, l.limit)
		return false
	}
	if err != io.EOF {
		l.err = err
	}
	return false
}

// Err reports the error that ended reading, nil at a clean end of input.
func (l *lineReader) Err() error {
	if l.err == nil && l.lr.N <= 0 {
		return fmt.Errorf("%w (%d bytes)", errTooLarge, l.limit)
	}
	return l.err
}

// validPackage reports whether a package fits an Installed Packages entry:
// a name of 1–255 bytes and a version of at most 255, both UTF-8 (RFC 5792
// §4.2.7).
func validPackage(name, version string) bool {
	return name != "" && len(name) <= maxPackageField && len(version) <= maxPackageField &&
		utf8.ValidString(name) && utf8.ValidString(version)
}

// parseDpkgStatus reads a dpkg status file (deb822 stanzas separated by
// empty lines) and returns the packages whose Status is "install ok
// installed", in file order, with their versions as written. A package name
// seen twice (Multi-Arch: same packages installed for several
// architectures, which dpkg requires to have one version) is reported once.
// Stanzas whose name or version does not fit the attribute (see
// validPackage) are skipped. More than maxPackages packages, or more than maxDpkgStatusSize
// bytes, is an error: a truncated list would hide packages from the
// verifier.
func parseDpkgStatus(r io.Reader, maxPackages int) ([]patnc.Package, error) {
	return parseDpkgStatusLimit(r, maxPackages, maxDpkgStatusSize)
}

// parseDpkgStatusLimit is parseDpkgStatus reading at most limit bytes.
func parseDpkgStatusLimit(r io.Reader, maxPackages int, limit int64) ([]patnc.Package, error) {
	var (
		pkgs = make([]patnc.Package, 0, 256)
		seen = make(map[string]struct{}, 256)
		cur  struct{ name, version, status string }
	)
	flush := func() error {
		name, version, status := cur.name, cur.version, cur.status
		cur.name, cur.version, cur.status = "", "", ""
		if !validPackage(name, version) {
			return nil
		}
		if st := strings.Fields(status); len(st) != 3 || st[0] != "install" || st[1] != "ok" || st[2] != "installed" {
			return nil
		}
		if _, dup := seen[name]; dup {
			return nil
		}
		if len(pkgs) >= maxPackages {
			return fmt.Errorf("%w (%d)", errTooManyPackages, maxPackages)
		}
		seen[name] = struct{}{}
		pkgs = append(pkgs, patnc.Package{Name: name, Version: version})
		return nil
	}
	lr := newLineReader(r, limit)
	defer lr.release()
	for {
		line, ok := lr.next()
		if !ok {
			break
		}
		if len(bytes.TrimSpace(line)) == 0 {
			if err := flush(); err != nil {
				return nil, err
			}
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue // continuation of a multi-line field
		}
		key, val, found := bytes.Cut(line, []byte(":"))
		if !found {
			continue
		}
		switch k := string(bytes.TrimSpace(key)); {
		case strings.EqualFold(k, "Package"):
			cur.name = string(bytes.TrimSpace(val))
		case strings.EqualFold(k, "Version"):
			cur.version = string(bytes.TrimSpace(val))
		case strings.EqualFold(k, "Status"):
			cur.status = string(bytes.TrimSpace(val))
		}
	}
	if err := lr.Err(); err != nil {
		return nil, fmt.Errorf("osimc: dpkg status: %w", err)
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return pkgs, nil
}
