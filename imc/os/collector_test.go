package osimc

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"trustnac/transport/patnc"
)

const osReleaseFixture = `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
ID=debian
`

// writeTree writes files (slash paths relative to root) under a temp dir.
func writeTree(t testing.TB, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, content := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// fixtureFiles is a complete machine.
func fixtureFiles() map[string]string {
	return map[string]string{
		"etc/os-release":                        osReleaseFixture,
		"var/lib/dpkg/status":                   dpkgFixture,
		"proc/net/tcp":                          procTCP,
		"proc/net/tcp6":                         procTCP6,
		"proc/net/udp":                          procUDP,
		"proc/net/udp6":                         procUDP6,
		"proc/sys/net/ipv4/ip_forward":          "0\n",
		"proc/sys/net/ipv6/conf/all/forwarding": "0\n",
		"proc/stat":                             "cpu  1 2 3\nintr 5\nbtime 1700000000\nprocesses 9\n",
	}
}

// newFixtureCollector returns a collector over root with a fixed uname.
func newFixtureCollector(root string) *Collector {
	c := New(Config{Root: root}, nil)
	c.uname = func() (string, string, error) { return "6.1.0-18-amd64", "x86_64", nil }
	return c
}

// decodeAll decodes attributes into typed values.
func decodeAll(t *testing.T, attrs []patnc.Attribute) []patnc.Value {
	t.Helper()
	out := make([]patnc.Value, 0, len(attrs))
	for _, a := range attrs {
		if a.NoSkip {
			t.Errorf("attribute %v has NOSKIP set", a.ID())
		}
		v, err := patnc.DecodeAttribute(a)
		if err != nil {
			t.Fatalf("decode %v: %v", a.ID(), err)
		}
		out = append(out, v)
	}
	return out
}

func fwdValue(v uint32) *patnc.ForwardingEnabled {
	f := patnc.ForwardingEnabled(v)
	return &f
}

// fixtureBegin is what Begin must send for fixtureFiles (which hold no RPM
// database, so the rpm binary is never run).
func fixtureBegin() []patnc.Value {
	pkgs := patnc.InstalledPackages{
		{Name: "bash", Version: "5.2.15-2+b2"},
		{Name: "openssh-server", Version: "1:9.2p1-2+deb12u2"},
		{Name: "libc6", Version: "2.36-9+deb12u4"},
		{Name: "lowercase-fields", Version: "0.1"},
	}
	return []patnc.Value{
		&patnc.ProductInformation{Name: "debian"},
		&patnc.StringVersion{Version: "12", Build: "6.1.0-18-amd64", Config: "x86_64"},
		&patnc.NumericVersion{Major: 12},
		&patnc.OperationalStatus{Status: patnc.StatusOperational, Result: patnc.ResultSuccess, LastUse: time.Unix(1700000000, 0).UTC()},
		&pkgs,
		fwdValue(patnc.ForwardingDisabled),
		&patnc.PortFilter{
			{Protocol: protoTCP, Port: 22},
			{Protocol: protoTCP, Port: 443},
			{Protocol: protoTCP, Port: 8080},
			{Protocol: protoUDP, Port: 68},
			{Protocol: protoUDP, Port: 546},
		},
	}
}

func TestCollectorIdentity(t *testing.T) {
	c := New(Config{}, nil)
	if c.Name() != "os" {
		t.Errorf("Name = %q", c.Name())
	}
	if st := c.Subtype(); st.Vendor != 0 || st.Subtype != 1 {
		t.Errorf("Subtype = %+v, want IETF 1", st)
	}
}

func TestBeginFixture(t *testing.T) {
	files := fixtureFiles()
	c := newFixtureCollector(writeTree(t, files))
	got := decodeAll(t, begin(t, c))
	want := fixtureBegin()
	if !reflect.DeepEqual(got, want) {
		for i := range max(len(got), len(want)) {
			var g, w patnc.Value
			if i < len(got) {
				g = got[i]
			}
			if i < len(want) {
				w = want[i]
			}
			if !reflect.DeepEqual(g, w) {
				t.Errorf("attribute %d\n got %#v\nwant %#v", i, g, w)
			}
		}
	}
}

func TestBeginDegraded(t *testing.T) {
	tests := []struct {
		name   string
		change func(files map[string]string)
		cfg    func(c *Config)
		want   []uint32 // attribute types sent, in order
		check  func(t *testing.T, vals []patnc.Value)
	}{
		{
			name: "os-release fallback to /usr/lib",
			change: func(f map[string]string) {
				f["usr/lib/os-release"] = "ID=fedora\nVERSION_ID=40\n"
				delete(f, "etc/os-release")
			},
			want: []uint32{2, 4, 3, 5, 7, 11, 6},
			check: func(t *testing.T, vals []patnc.Value) {
				if n := vals[0].(*patnc.ProductInformation).Name; n != "fedora" {
					t.Errorf("name = %q, want fedora", n)
				}
			},
		},
		{
			name:   "no os-release: no product or versions",
			change: func(f map[string]string) { delete(f, "etc/os-release") },
			want:   []uint32{5, 7, 11, 6},
		},
		{
			name:   "non-numeric VERSION_ID: no numeric version",
			change: func(f map[string]string) { f["etc/os-release"] = "ID=arch\nVERSION_ID=rolling\n" },
			want:   []uint32{2, 4, 5, 7, 11, 6},
		},
		{
			name:   "no package database: no installed packages",
			change: func(f map[string]string) { delete(f, "var/lib/dpkg/status") },
			want:   []uint32{2, 4, 3, 5, 11, 6},
		},
		{
			name: "too many packages: no installed packages",
			cfg:  func(c *Config) { c.MaxPackages = 2 },
			want: []uint32{2, 4, 3, 5, 11, 6},
		},
		{
			name: "no socket tables: no port filter",
			change: func(f map[string]string) {
				for _, p := range []string{"tcp", "tcp6", "udp", "udp6"} {
					delete(f, "proc/net/"+p)
				}
			},
			want: []uint32{2, 4, 3, 5, 7, 11},
		},
		{
			name: "only an IPv4 socket table",
			change: func(f map[string]string) {
				delete(f, "proc/net/tcp6")
				delete(f, "proc/net/udp6")
				delete(f, "proc/net/udp")
			},
			want: []uint32{2, 4, 3, 5, 7, 11, 6},
			check: func(t *testing.T, vals []patnc.Value) {
				want := patnc.PortFilter{{Protocol: protoTCP, Port: 22}, {Protocol: protoTCP, Port: 8080}}
				if got := *vals[6].(*patnc.PortFilter); !reflect.DeepEqual(got, want) {
					t.Errorf("port filter = %v, want %v", got, want)
				}
			},
		},
		{
			name: "loopback included on request",
			cfg:  func(c *Config) { c.IncludeLoopback = true },
			want: []uint32{2, 4, 3, 5, 7, 11, 6},
			check: func(t *testing.T, vals []patnc.Value) {
				pf := *vals[6].(*patnc.PortFilter)
				for _, port := range []uint16{631, 6666, 53} {
					if !slices.ContainsFunc(pf, func(e patnc.PortFilterEntry) bool { return e.Port == port }) {
						t.Errorf("port %d missing from %v", port, pf)
					}
				}
			},
		},
		{
			name:   "no /proc/stat: zero last use",
			change: func(f map[string]string) { delete(f, "proc/stat") },
			want:   []uint32{2, 4, 3, 5, 7, 11, 6},
			check: func(t *testing.T, vals []patnc.Value) {
				if lu := vals[3].(*patnc.OperationalStatus).LastUse; !lu.IsZero() {
					t.Errorf("last use = %v, want zero", lu)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			files := fixtureFiles()
			if tc.change != nil {
				tc.change(files)
			}
			cfg := Config{Root: writeTree(t, files)}
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			c := New(cfg, nil)
			c.uname = func() (string, string, error) { return "r", "m", nil }
			s, _ := c.NewSession(context.Background())
			attrs, err := s.Begin(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			var types []uint32
			for _, a := range attrs {
				types = append(types, a.Type)
			}
			if !slices.Equal(types, tc.want) {
				t.Fatalf("sent types %v, want %v", types, tc.want)
			}
			if tc.check != nil {
				tc.check(t, decodeAll(t, attrs))
			}
		})
	}
}

func TestForwarding(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  uint32
	}{
		{"both off", map[string]string{"a": "0\n", "b": "0\n"}, patnc.ForwardingDisabled},
		{"ipv6 on", map[string]string{"a": "0\n", "b": "1\n"}, patnc.ForwardingIsEnabled},
		{"ipv4 on, ipv6 missing", map[string]string{"a": "1"}, patnc.ForwardingIsEnabled},
		{"one readable off", map[string]string{"b": "0"}, patnc.ForwardingDisabled},
		{"none readable", map[string]string{}, patnc.ForwardingUnknown},
		{"garbage", map[string]string{"a": "yes\n", "b": "2"}, patnc.ForwardingUnknown},
		{"oversized", map[string]string{"a": "1" + string(make([]byte, 100))}, patnc.ForwardingUnknown},
		{"64 bytes: at the cap", map[string]string{"a": "1" + strings.Repeat(" ", 63)}, patnc.ForwardingIsEnabled},
		{"65 bytes: over the cap", map[string]string{"a": "1" + strings.Repeat(" ", 64), "b": "0"}, patnc.ForwardingDisabled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := writeTree(t, tc.files)
			c := New(Config{Root: root, ForwardingPaths: []string{"/a", "/b"}}, nil)
			if got := c.forwarding(); uint32(got) != tc.want {
				t.Errorf("forwarding = %d, want %d", got, tc.want)
			}
		})
	}
}

// request builds a verifier message with one Attribute Request.
func request(t *testing.T, ids ...patnc.AttrID) *patnc.Message {
	t.Helper()
	m := &patnc.Message{ID: 5}
	req := patnc.AttributeRequest(ids)
	if err := m.Add(&req, false); err != nil {
		t.Fatal(err)
	}
	return m
}

func ietfID(t uint32) patnc.AttrID { return patnc.AttrID{Vendor: patnc.VendorIETF, Type: t} }

func TestReceiveAttributeRequest(t *testing.T) {
	files := fixtureFiles()
	c := newFixtureCollector(writeTree(t, files))
	all := fixtureBegin()
	tests := []struct {
		name string
		ask  []patnc.AttrID
		want []patnc.Value
	}{
		{
			name: "some, in the order asked, duplicates once",
			ask:  []patnc.AttrID{ietfID(6), ietfID(2), ietfID(6)},
			want: []patnc.Value{all[6], all[0]},
		},
		{
			name: "factory default password and unknown types produce nothing",
			ask: []patnc.AttrID{
				ietfID(patnc.AttrFactoryDefaultPasswordEnabled),
				{Vendor: 0x9999, Type: 2},
				ietfID(14),
				ietfID(patnc.AttrForwardingEnabled),
			},
			want: []patnc.Value{all[5]},
		},
		{
			name: "everything",
			ask:  []patnc.AttrID{ietfID(2), ietfID(4), ietfID(3), ietfID(5), ietfID(7), ietfID(11), ietfID(6)},
			want: all,
		},
		{
			name: "only unavailable",
			ask:  []patnc.AttrID{ietfID(patnc.AttrFactoryDefaultPasswordEnabled)},
			want: nil,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := c.NewSession(context.Background())
			out, err := s.Receive(context.Background(), request(t, tc.ask...))
			if err != nil {
				t.Fatal(err)
			}
			got := decodeAll(t, out)
			if len(got) == 0 && len(tc.want) == 0 {
				return
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("answer\n got %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

// receiveErrors sends m and returns the PA-TNC Errors of the answer.
func receiveErrors(t *testing.T, c *Collector, m *patnc.Message) []*patnc.PAError {
	t.Helper()
	s, _ := c.NewSession(context.Background())
	out, err := s.Receive(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	var errs []*patnc.PAError
	for _, v := range decodeAll(t, out) {
		e, ok := v.(*patnc.PAError)
		if !ok {
			t.Fatalf("answer holds %T, want only PA-TNC Errors", v)
		}
		errs = append(errs, e)
	}
	return errs
}

func TestReceiveErrors(t *testing.T) {
	c := newFixtureCollector(writeTree(t, fixtureFiles()))
	unknown := patnc.Attribute{Vendor: 0x9999, Type: 7, Value: []byte("x")}

	t.Run("unknown without NOSKIP is skipped", func(t *testing.T) {
		m := request(t, ietfID(11))
		m.Attributes = append(m.Attributes, unknown)
		s, _ := c.NewSession(context.Background())
		out, err := s.Receive(context.Background(), m)
		if err != nil || len(out) != 1 || out[0].Type != patnc.AttrForwardingEnabled {
			t.Fatalf("answer %v, %v; want forwarding only", out, err)
		}
	})
	t.Run("unknown with NOSKIP rejects the message", func(t *testing.T) {
		m := request(t, ietfID(11))
		u := unknown
		u.NoSkip = true
		m.Attributes = append(m.Attributes, u)
		errs := receiveErrors(t, c, m)
		if len(errs) != 1 || errs[0].Code != patnc.ErrAttributeTypeNotSupported {
			t.Fatalf("answer %+v, want one Attribute Type Not Supported", errs)
		}
		if a, ok := errs[0].UnsupportedAttribute(); !ok || a.Vendor != 0x9999 || a.Type != 7 {
			t.Errorf("names %+v", a)
		}
		if h, _ := errs[0].MessageHeader(); !slices.Equal(h, m.Header()) {
			t.Errorf("header %x, want %x", h, m.Header())
		}
	})
	t.Run("malformed request", func(t *testing.T) {
		m := &patnc.Message{ID: 8, Attributes: []patnc.Attribute{
			{Type: patnc.AttrAttributeRequest, Value: []byte{0, 0, 0, 0, 0, 0, 0, 11, 0, 0}},
		}}
		errs := receiveErrors(t, c, m)
		if len(errs) != 1 || errs[0].Code != patnc.ErrInvalidParameter {
			t.Fatalf("answer %+v, want one Invalid Parameter", errs)
		}
		// The bad field is the partial second entry: value offset 8.
		if off, _ := errs[0].Offset(); off != patnc.HeaderLen+patnc.AttrHeaderLen+8 {
			t.Errorf("offset %d, want %d", off, patnc.HeaderLen+patnc.AttrHeaderLen+8)
		}
	})
	t.Run("other attributes are ignored", func(t *testing.T) {
		m := &patnc.Message{ID: 9}
		ar := patnc.AssessmentResult(patnc.AssessmentCompliant)
		if err := m.Add(&ar, false); err != nil {
			t.Fatal(err)
		}
		if errs := receiveErrors(t, c, m); len(errs) != 0 {
			t.Fatalf("answer %v, want nothing", errs)
		}
	})
}

func TestBeginCanceled(t *testing.T) {
	c := newFixtureCollector(writeTree(t, fixtureFiles()))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s, _ := c.NewSession(ctx)
	if _, err := s.Begin(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// TestRealMachine runs the collector on this machine, a Debian 12 host.
func TestRealMachine(t *testing.T) {
	if _, err := os.Stat(DefaultDpkgStatus); err != nil {
		t.Skip("not a dpkg-based machine:", err)
	}
	c := New(Config{}, nil)
	s, _ := c.NewSession(context.Background())
	attrs, err := s.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	vals := map[uint32]patnc.Value{}
	for _, v := range decodeAll(t, attrs) {
		vals[v.AttrID().Type] = v
	}
	for _, typ := range beginAttributes {
		if vals[typ] == nil {
			t.Errorf("attribute type %d not sent", typ)
		}
	}
	pi, _ := vals[patnc.AttrProductInformation].(*patnc.ProductInformation)
	sv, _ := vals[patnc.AttrStringVersion].(*patnc.StringVersion)
	ip, _ := vals[patnc.AttrInstalledPackages].(*patnc.InstalledPackages)
	if pi == nil || sv == nil || ip == nil {
		t.Fatal("product, version or packages missing")
	}
	release, machine, err := uname()
	if err != nil {
		t.Fatal(err)
	}
	if pi.Name != "debian" || sv.Version != "12" {
		t.Errorf("os = %q %q, want debian 12", pi.Name, sv.Version)
	}
	if sv.Build != release || sv.Config != machine || release == "" || machine == "" {
		t.Errorf("build/config = %q/%q, want %q/%q", sv.Build, sv.Config, release, machine)
	}
	if len(*ip) <= 100 {
		t.Errorf("%d packages, want > 100", len(*ip))
	}
	if !slices.ContainsFunc(*ip, func(p patnc.Package) bool { return p.Name == "bash" && p.Version != "" }) {
		t.Error("bash not among the installed packages")
	}
	if os := vals[patnc.AttrOperationalStatus].(*patnc.OperationalStatus); os.LastUse.IsZero() || os.LastUse.After(time.Now()) {
		t.Errorf("boot time %v", os.LastUse)
	}
}
