package osimc

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"testing"
	"unicode/utf8"
)

func nativeWord(b []byte) uint32 { return binary.NativeEndian.Uint32(b) }

// FuzzDpkgStatus checks that the dpkg status parser never panics, keeps its
// caps, reports only valid unique packages, and that rendering what it
// found as a status file parses back to the same list.
func FuzzDpkgStatus(f *testing.F) {
	f.Add([]byte(dpkgFixture))
	f.Add([]byte("Package: a\r\nStatus: install ok installed\r\nVersion: 1\r\n"))
	f.Add([]byte("Package: a\nStatus: deinstall ok config-files\nVersion: 1\n"))
	f.Add([]byte("Package:\nStatus: install ok installed\n\n\n:\n \n"))
	const max = 50
	f.Fuzz(func(t *testing.T, data []byte) {
		pkgs, err := parseDpkgStatus(bytes.NewReader(data), max)
		if err != nil {
			return
		}
		if len(pkgs) > max {
			t.Fatalf("%d packages exceed the cap %d", len(pkgs), max)
		}
		seen := map[string]bool{}
		for _, p := range pkgs {
			if !validPackage(p.Name, p.Version) || !utf8.ValidString(p.Name) {
				t.Fatalf("invalid package %q", p)
			}
			if seen[p.Name] {
				t.Fatalf("duplicate package %q", p.Name)
			}
			seen[p.Name] = true
		}
		// Names and versions are trimmed single-line values; a canonical
		// rendering must parse back identically.
		again, err := parseDpkgStatus(bytes.NewReader(renderDpkgStatus(pkgs)), max)
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if !reflect.DeepEqual(again, pkgs) {
			t.Fatalf("round trip\n got %q\nwant %q", again, pkgs)
		}
	})
}

// FuzzProcNet checks that the /proc/net parser never panics, reports only
// open sockets with a port, and that rendering what it found parses back to
// the same sockets.
func FuzzProcNet(f *testing.F) {
	f.Add([]byte(procTCP), uint8(protoTCP), false)
	f.Add([]byte(procTCP6), uint8(protoTCP), true)
	f.Add([]byte(procUDP), uint8(protoUDP), false)
	f.Add([]byte(procUDP6), uint8(protoUDP), true)
	f.Add([]byte("hdr\n 0: 0100007F:0016 0:0 0A\n 1: 1:1 1:1 7\n"), uint8(protoTCP), true)
	f.Fuzz(func(t *testing.T, data []byte, proto uint8, loopback bool) {
		socks, err := parseProcNet(bytes.NewReader(data), proto, loopback)
		if err != nil {
			return
		}
		for _, s := range socks {
			if s.Proto != proto || s.Port == 0 || !s.Addr.IsValid() || (!loopback && s.Addr.IsLoopback()) {
				t.Fatalf("bad socket %+v", s)
			}
		}
		again, err := parseProcNet(bytes.NewReader(renderProcNet(socks)), proto, loopback)
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if !reflect.DeepEqual(again, socks) {
			t.Fatalf("round trip\n got %v\nwant %v", again, socks)
		}
	})
}

// FuzzOSRelease checks that os-release parsing never panics and always
// yields an ID.
func FuzzOSRelease(f *testing.F) {
	f.Add([]byte("ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME='Debian GNU/Linux 12 (bookworm)'\n"))
	f.Add([]byte("ID=\"\\\"\nVERSION_ID=\"\\\\\"\n"))
	f.Add([]byte("#\n=\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := parseOSRelease(data)
		if r.ID == "" {
			t.Fatal("empty ID")
		}
		if s := fit255(r.PrettyName); len(s) > 255 || !utf8.ValidString(s) {
			t.Fatalf("fit255 gave %d bytes, valid %v", len(s), utf8.ValidString(s))
		}
		numericVersion(r.VersionID)
	})
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
