package osimc

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"trustnac/transport/patnc"
)

func TestParseOSRelease(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want osRelease
	}{
		{
			name: "debian",
			in: `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
ID=debian
`,
			want: osRelease{ID: "debian", VersionID: "12", PrettyName: "Debian GNU/Linux 12 (bookworm)"},
		},
		{
			name: "single quotes, comments, blank lines, CRLF",
			in:   "# comment\r\n\r\nID='rhel'\r\nVERSION_ID='9.3'\r\n",
			want: osRelease{ID: "rhel", VersionID: "9.3"},
		},
		{
			name: "escapes in double quotes",
			in:   `PRETTY_NAME="A \"quoted\" \$name \\ x \n"` + "\nID=x\n",
			want: osRelease{ID: "x", PrettyName: `A "quoted" $name \ x \n`},
		},
		{
			name: "missing ID defaults to linux",
			in:   "VERSION_ID=1\n",
			want: osRelease{ID: "linux", VersionID: "1"},
		},
		{
			name: "malformed lines skipped",
			in:   "garbage\nID=\"unterminated\nVERSION_ID=\"3\"\n=x\nID=alpine\n",
			want: osRelease{ID: "alpine", VersionID: "3"},
		},
		{name: "empty", in: "", want: osRelease{ID: "linux"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseOSRelease([]byte(tc.in)); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestNumericVersion(t *testing.T) {
	tests := []struct {
		in           string
		major, minor uint32
		ok           bool
	}{
		{"12", 12, 0, true},
		{"22.04", 22, 4, true},
		{"9.3", 9, 3, true},
		{"3.19.1", 3, 19, true},
		{"40", 40, 0, true},
		{"12.x", 12, 0, true},
		{"rolling", 0, 0, false},
		{"", 0, 0, false},
		{"4294967295.1", 4294967295, 1, true},
		{"4294967296", 0, 0, false},
	}
	for _, tc := range tests {
		major, minor, ok := numericVersion(tc.in)
		if major != tc.major || minor != tc.minor || ok != tc.ok {
			t.Errorf("numericVersion(%q) = %d, %d, %v; want %d, %d, %v", tc.in, major, minor, ok, tc.major, tc.minor, tc.ok)
		}
	}
}

func TestFit255(t *testing.T) {
	long := strings.Repeat("é", 200) // 400 bytes
	tests := []struct{ in, want string }{
		{"debian", "debian"},
		{"a\xffb", "a\uFFFDb"},
		{strings.Repeat("x", 300), strings.Repeat("x", 255)},
		{long, strings.Repeat("é", 127)},
	}
	for _, tc := range tests {
		if got := fit255(tc.in); got != tc.want {
			t.Errorf("fit255(%.20q) = %.20q (len %d), want len %d", tc.in, got, len(got), len(tc.want))
		}
	}
}

const dpkgFixture = `Package: bash
Essential: yes
Status: install ok installed
Priority: required
Installed-Size: 7163
Architecture: amd64
Version: 5.2.15-2+b2
Description: GNU Bourne Again SHell
 Bash is an sh-compatible command language interpreter.
 .
 Package: not-a-field
 Status: install ok installed

Package: oldpkg
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0-1

Package: openssh-server
Status: install ok installed
Architecture: amd64
Version: 1:9.2p1-2+deb12u2
Description: secure shell (SSH) server

Package: halfway
Status: install ok half-configured
Version: 2

Package: libc6
Status: install ok installed
Architecture: amd64
Multi-Arch: same
Version: 2.36-9+deb12u4

this line has no colon
Package: libc6
Status: install ok installed
Architecture: i386
Multi-Arch: same
Version: 2.36-9+deb12u4

package: lowercase-fields
status:   install  ok  installed
version: 0.1
`

func TestParseDpkgStatus(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		max     int
		want    []patnc.Package
		wantErr error
	}{
		{
			name: "fixture",
			in:   dpkgFixture,
			max:  100,
			want: []patnc.Package{
				{Name: "bash", Version: "5.2.15-2+b2"},
				{Name: "openssh-server", Version: "1:9.2p1-2+deb12u2"},
				{Name: "libc6", Version: "2.36-9+deb12u4"},
				{Name: "lowercase-fields", Version: "0.1"},
			},
		},
		{
			name: "CRLF and whitespace-only separator",
			in:   "Package: a\r\nStatus: install ok installed\r\nVersion: 1\r\n \t\r\nPackage: b\r\nStatus: install ok installed\r\nVersion: 2\r\n",
			max:  100,
			want: []patnc.Package{{Name: "a", Version: "1"}, {Name: "b", Version: "2"}},
		},
		{
			name: "no version is an empty version",
			in:   "Package: a\nStatus: install ok installed\n",
			max:  100,
			want: []patnc.Package{{Name: "a", Version: ""}},
		},
		{
			name: "over-long name and invalid UTF-8 skipped",
			in: "Package: " + strings.Repeat("n", 256) + "\nStatus: install ok installed\nVersion: 1\n\n" +
				"Package: bad\xff\nStatus: install ok installed\nVersion: 1\n\n" +
				"Package: ok\nStatus: install ok installed\nVersion: " + strings.Repeat("v", 255) + "\n",
			max:  100,
			want: []patnc.Package{{Name: "ok", Version: strings.Repeat("v", 255)}},
		},
		{
			name:    "more packages than the cap",
			in:      dpkgFixture,
			max:     3,
			wantErr: errTooManyPackages,
		},
		{name: "empty", in: "", max: 10, want: []patnc.Package{}},
		{
			name: "over-long line skipped",
			in:   "Package: a\nDescription: " + strings.Repeat("x", 2*maxLineLen) + "\nStatus: install ok installed\nVersion: 1\n",
			max:  10,
			want: []patnc.Package{{Name: "a", Version: "1"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseDpkgStatus(strings.NewReader(tc.in), tc.max)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestParseDpkgStatusSizeCap(t *testing.T) {
	in := "Package: a\nStatus: install ok installed\nVersion: 1\n"
	tests := []struct {
		limit int64
		want  error
	}{
		{int64(len(in)), nil},
		{int64(len(in)) - 1, errTooLarge},
		{10, errTooLarge},
	}
	for _, tc := range tests {
		_, err := parseDpkgStatusLimit(strings.NewReader(in), 10, tc.limit)
		if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Errorf("limit %d: err = %v, want %v", tc.limit, err, tc.want)
		}
	}
	// A long line that crosses the limit is caught too.
	long := "Description: " + strings.Repeat("x", 3*maxLineLen) + "\n"
	if _, err := parseDpkgStatusLimit(strings.NewReader(long), 10, maxLineLen*2); !errors.Is(err, errTooLarge) {
		t.Errorf("long line: err = %v, want errTooLarge", err)
	}
}

const (
	procTCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1133 1 0000000000000000 100 0 0 10 0
   1: 0100007F:0277 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1134 1 0000000000000000 100 0 0 10 0
   2: 020200C0:B508 507100CB:01BB 01 00000000:00000000 03:00000F7F 00000000     0        0 0 3 0000000000000000
   3: 0A00000A:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1135 1 0000000000000000 100 0 0 10 0
   4: garbage
   5: 00000000:0000 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1136 1
`
	procTCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2001 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:0277 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2002 1 0000000000000000 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:1A0A 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2003 1 0000000000000000 100 0 0 10 0
   3: 00000000000000000000000000000000:01BB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2004 1 0000000000000000 100 0 0 10 0
`
	procUDP = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  100: 00000000:0044 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 3001 2 0000000000000000 0
  101: 3500007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   101        0 3002 2 0000000000000000 0
  102: 020200C0:9C40 08080808:0035 01 00000000:00000000 00:00000000 00000000  1000        0 3003 2 0000000000000000 0
  103: 020200C0:9C41 08080808:0035 07 00000000:00000000 00:00000000 00000000  1000        0 3004 2 0000000000000000 0
`
	procUDP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  200: 00000000000000000000000000000000:0222 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4001 2 0000000000000000 0
`
)

func TestParseProcNet(t *testing.T) {
	any4 := netip.IPv4Unspecified()
	any6 := netip.IPv6Unspecified()
	tests := []struct {
		name     string
		in       string
		proto    uint8
		loopback bool
		want     []socket
	}{
		{
			name: "tcp", in: procTCP, proto: protoTCP,
			want: []socket{
				{protoTCP, 22, any4},
				{protoTCP, 8080, netip.MustParseAddr("10.0.0.10")},
			},
		},
		{
			name: "tcp with loopback", in: procTCP, proto: protoTCP, loopback: true,
			want: []socket{
				{protoTCP, 22, any4},
				{protoTCP, 631, netip.MustParseAddr("127.0.0.1")},
				{protoTCP, 8080, netip.MustParseAddr("10.0.0.10")},
			},
		},
		{
			name: "tcp6, v4-mapped loopback left out", in: procTCP6, proto: protoTCP,
			want: []socket{{protoTCP, 22, any6}, {protoTCP, 443, any6}},
		},
		{
			name: "tcp6 with loopback", in: procTCP6, proto: protoTCP, loopback: true,
			want: []socket{
				{protoTCP, 22, any6},
				{protoTCP, 631, netip.IPv6Loopback()},
				{protoTCP, 6666, netip.MustParseAddr("127.0.0.1")},
				{protoTCP, 443, any6},
			},
		},
		{
			name: "udp: unconnected only", in: procUDP, proto: protoUDP,
			want: []socket{{protoUDP, 68, any4}},
		},
		{name: "udp6", in: procUDP6, proto: protoUDP, want: []socket{{protoUDP, 546, any6}}},
		{name: "header only", in: "  sl  local_address\n", proto: protoTCP, want: nil},
		{name: "empty", in: "", proto: protoTCP, want: nil},
		{name: "unknown protocol", in: procTCP, proto: 132, want: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseProcNet(strings.NewReader(tc.in), tc.proto, tc.loopback)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestParseHexEndpoint(t *testing.T) {
	tests := []struct {
		in   string
		addr string
		port uint16
		ok   bool
	}{
		{"0100007F:0016", "127.0.0.1", 22, true},
		{"00000000:FFFF", "0.0.0.0", 65535, true},
		{"000080FE00000000FF005002FEE3A5B7:0222", "fe80::250:ff:b7a5:e3fe", 546, true},
		{"0100007F:16", "", 0, false},
		{"0100007:0016", "", 0, false},
		{"0100007G:0016", "", 0, false},
		{"0100007F0016", "", 0, false},
		{"0100007F:+016", "", 0, false},
	}
	for _, tc := range tests {
		addr, port, ok := parseHexEndpoint([]byte(tc.in))
		if ok != tc.ok || port != tc.port || (ok && addr.String() != tc.addr) {
			t.Errorf("parseHexEndpoint(%q) = %v, %d, %v; want %s, %d, %v", tc.in, addr, port, ok, tc.addr, tc.port, tc.ok)
		}
	}
}

func TestParseRPMOutput(t *testing.T) {
	in := "bash\t5.1.8-6.el9\n" +
		"openssh-server\t8.7p1-34.el9\n" +
		"gpg-pubkey\tfd431d51-4ae0493b\n" +
		"gpg-pubkey\t5a6340b3-6229229e\n" +
		"no-tab-line\n" +
		"\t1.0\n" +
		"kernel-core\t1:5.14.0-362.el9\r\n"
	got, err := parseRPMOutput(strings.NewReader(in), 100)
	if err != nil {
		t.Fatal(err)
	}
	want := []patnc.Package{
		{Name: "bash", Version: "5.1.8-6.el9"},
		{Name: "openssh-server", Version: "8.7p1-34.el9"},
		{Name: "gpg-pubkey", Version: "fd431d51-4ae0493b"},
		{Name: "kernel-core", Version: "1:5.14.0-362.el9"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	if _, err := parseRPMOutput(strings.NewReader(in), 2); !errors.Is(err, errTooManyPackages) {
		t.Errorf("cap 2: err = %v, want errTooManyPackages", err)
	}
}

// renderDpkgStatus writes packages as a canonical status file.
func renderDpkgStatus(pkgs []patnc.Package) []byte {
	var b bytes.Buffer
	for _, p := range pkgs {
		fmt.Fprintf(&b, "Package: %s\nStatus: install ok installed\nVersion: %s\n\n", p.Name, p.Version)
	}
	return b.Bytes()
}

// renderProcNet writes sockets as a /proc/net table of their protocol.
func renderProcNet(socks []socket) []byte {
	var b bytes.Buffer
	b.WriteString("  sl  local_address rem_address   st\n")
	for i, s := range socks {
		st := tcpListen
		if s.Proto == protoUDP {
			st = udpClose
		}
		a := s.Addr.AsSlice()
		fmt.Fprintf(&b, "%4d: ", i)
		for w := 0; w < len(a); w += 4 {
			fmt.Fprintf(&b, "%08X", nativeWord(a[w:w+4]))
		}
		zeros := strings.Repeat("0", len(a)*2)
		fmt.Fprintf(&b, ":%04X %s:0000 %02X 00000000:00000000\n", s.Port, zeros, st)
	}
	return b.Bytes()
}
