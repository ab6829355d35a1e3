package osimv_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	osimc "trustnac/imc/os"
	"trustnac/imv"
	osimv "trustnac/imv/os"
	"trustnac/transport/patnc"
)

// machine is a fixture root for the collector.
var machine = map[string]string{
	"etc/os-release": "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nVERSION_ID=\"12\"\nID=debian\n",
	"var/lib/dpkg/status": "Package: openssh-server\nStatus: install ok installed\nVersion: 1:9.2p1-2+deb12u2\n\n" +
		"Package: telnetd\nStatus: deinstall ok config-files\nVersion: 0.17-44\n\n" +
		"Package: bash\nStatus: install ok installed\nVersion: 5.2.15-2+b2\n",
	"proc/net/tcp": "  sl  local_address rem_address   st\n" +
		"   0: 00000000:0016 00000000:0000 0A 00000000:00000000\n" +
		"   1: 0100007F:0019 00000000:0000 0A 00000000:00000000\n",
	"proc/net/udp": "  sl  local_address rem_address   st\n" +
		"   0: 00000000:0044 00000000:0000 07 00000000:00000000\n",
	"proc/sys/net/ipv4/ip_forward":          "1\n",
	"proc/sys/net/ipv6/conf/all/forwarding": "0\n",
	"proc/stat":                             "btime 1700000000\n",
}

func writeMachine(t testing.TB, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, c := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// exchange carries attributes from one side to the other as a PA-TNC
// message on the wire.
func exchange(t testing.TB, id uint32, attrs []patnc.Attribute) *patnc.Message {
	t.Helper()
	return wire(t, id, attrs...)
}

func TestCollectorToVerifier(t *testing.T) {
	ctx := context.Background()
	col := osimc.New(osimc.Config{Root: writeMachine(t, machine)}, nil)
	cs, err := col.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if col.Subtype() != osimv.New(osimv.Config{}, nil).Subtype() {
		t.Fatal("collector and verifier speak different PA subtypes")
	}
	begin, err := cs.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	vs := newSession(t, osimv.Config{})
	if out := receive(t, vs, exchange(t, 1, begin)); out != nil {
		t.Fatalf("verifier answered %v", out)
	}
	if ask, err := vs.BatchEnding(ctx); err != nil || ask != nil {
		t.Fatalf("verifier asks %v, %v; want nothing", ask, err)
	}
	r := vs.Result()
	if r.Recommendation != imv.Allow || r.Assessment != patnc.AssessmentCompliant {
		t.Fatalf("result %v/%d %q, want allow/compliant", r.Recommendation, r.Assessment, r.Reasons)
	}
	f := r.Facts
	build, config := f["build"].(string), f["config"].(string)
	if build == "" || config == "" {
		t.Errorf("build/config = %q/%q, want the kernel's", build, config)
	}
	want := map[string]any{
		"name":          "debian",
		"product":       "debian 12",
		"version":       "12",
		"build":         build,
		"config":        config,
		"version_major": int64(12),
		"version_minor": int64(0),
		"status":        "operational",
		"last_use":      "2023-11-14T22:13:20Z",
		"packages":      map[string]any{"openssh-server": "1:9.2p1-2+deb12u2", "bash": "5.2.15-2+b2"},
		"package_count": int64(2),
		"forwarding":    "enabled",
		"ports": []any{
			map[string]any{"protocol": "tcp", "port": int64(22), "blocked": false},
			map[string]any{"protocol": "udp", "port": int64(68), "blocked": false},
		},
		"listening": []any{
			map[string]any{"protocol": "tcp", "port": int64(22)},
			map[string]any{"protocol": "udp", "port": int64(68)},
		},
	}
	if !reflect.DeepEqual(f, want) {
		t.Errorf("facts\n got %#v\nwant %#v", f, want)
	}
}

// TestRequestRoundTrip drops attributes from the collector's first batch
// and checks that the verifier's one request brings them.
func TestRequestRoundTrip(t *testing.T) {
	ctx := context.Background()
	col := osimc.New(osimc.Config{Root: writeMachine(t, machine)}, nil)
	cs, _ := col.NewSession(ctx)
	begin, err := cs.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	first := slices.DeleteFunc(slices.Clone(begin), func(a patnc.Attribute) bool {
		return a.Type == patnc.AttrInstalledPackages || a.Type == patnc.AttrPortFilter
	})
	vs := newSession(t, osimv.Config{})
	receive(t, vs, exchange(t, 1, first))
	ask, err := vs.BatchEnding(ctx)
	if err != nil || len(ask) != 1 {
		t.Fatalf("ask = %v, %v", ask, err)
	}
	answer, err := cs.Receive(ctx, exchange(t, 2, ask))
	if err != nil {
		t.Fatal(err)
	}
	if len(answer) != 2 || answer[0].Type != patnc.AttrInstalledPackages || answer[1].Type != patnc.AttrPortFilter {
		t.Fatalf("collector answered %d attributes, want packages and port filter", len(answer))
	}
	receive(t, vs, exchange(t, 2, answer))
	if ask, _ := vs.BatchEnding(ctx); ask != nil {
		t.Fatalf("verifier asks again: %v", ask)
	}
	if r := vs.Result(); r.Recommendation != imv.Allow || r.Facts["package_count"] != int64(2) {
		t.Errorf("result %v %q, facts %v", r.Recommendation, r.Reasons, r.Facts)
	}
}

// TestMissingAfterRequest: an endpoint without a package database cannot
// answer; the verifier isolates it, naming what is missing.
func TestMissingAfterRequest(t *testing.T) {
	ctx := context.Background()
	files := map[string]string{}
	for k, v := range machine {
		if k != "var/lib/dpkg/status" {
			files[k] = v
		}
	}
	col := osimc.New(osimc.Config{Root: writeMachine(t, files), RPMDB: "/nonexistent"}, nil)
	cs, _ := col.NewSession(ctx)
	begin, _ := cs.Begin(ctx)
	vs := newSession(t, osimv.Config{})
	receive(t, vs, exchange(t, 1, begin))
	ask, _ := vs.BatchEnding(ctx)
	if got := requestOf(t, ask); !slices.Equal(got, patnc.AttributeRequest{ietf(patnc.AttrInstalledPackages)}) {
		t.Fatalf("request %v", got)
	}
	answer, err := cs.Receive(ctx, exchange(t, 2, ask))
	if err != nil || answer != nil {
		t.Fatalf("collector answered %v, %v; want nothing", answer, err)
	}
	if ask, _ := vs.BatchEnding(ctx); ask != nil {
		t.Fatalf("verifier asks again: %v", ask)
	}
	r := vs.Result()
	if r.Recommendation != imv.Isolate || r.Assessment != patnc.AssessmentError ||
		len(r.Reasons) != 1 || r.Reasons[0] != "the endpoint did not provide operating system installed packages" {
		t.Errorf("result %v/%d %q", r.Recommendation, r.Assessment, r.Reasons)
	}
}
