package nac

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"trustnac/imc"
	"trustnac/pep/eapol"
)

const agentLinkPin = "sha256:0000000000000000000000000000000000000000000000000000000000000000"

func TestAgentLinkConfig(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		want  AgentDot1XConfig // after defaults, when valid
		error string           // in the validation error, when not
	}{
		{"defaults", "dot1x:\n  interface: eth0\n", AgentDot1XConfig{
			Interface: "eth0", StartPeriod: Duration(eapol.DefaultStartPeriod), MaxStart: eapol.DefaultMaxStart,
			HeldPeriod: Duration(eapol.DefaultHeldPeriod), AuthPeriod: Duration(eapol.DefaultAuthPeriod), Fallback: FallbackPTTLS,
		}, ""},
		{"all set", "dot1x:\n  interface: eth1\n  start_period: 3s\n  max_start: 5\n  held_period: 10s\n  auth_period: 7s\n  fallback: none\n  reassess_period: 1h\n  status_file: run/agent.json\n",
			AgentDot1XConfig{
				Interface: "eth1", StartPeriod: Duration(3 * time.Second), MaxStart: 5, HeldPeriod: Duration(10 * time.Second),
				AuthPeriod: Duration(7 * time.Second), Fallback: FallbackNone, ReassessPeriod: Duration(time.Hour),
				StatusFile: "DIR/run/agent.json",
			}, ""},
		{"absolute status file", "dot1x:\n  interface: eth0\n  status_file: /run/trustnac/agent.json\n", AgentDot1XConfig{
			Interface: "eth0", StartPeriod: Duration(eapol.DefaultStartPeriod), MaxStart: eapol.DefaultMaxStart,
			HeldPeriod: Duration(eapol.DefaultHeldPeriod), AuthPeriod: Duration(eapol.DefaultAuthPeriod), Fallback: FallbackPTTLS,
			StatusFile: "/run/trustnac/agent.json",
		}, ""},
		{"no interface", "dot1x:\n  start_period: 3s\n", AgentDot1XConfig{}, "dot1x.interface: required"},
		{"interface name too long", "dot1x:\n  interface: abcdefghijklmnopq\n", AgentDot1XConfig{}, "longer than an interface name"},
		{"bad fallback", "dot1x:\n  interface: eth0\n  fallback: mab\n", AgentDot1XConfig{}, `dot1x.fallback "mab"`},
		{"negative start period", "dot1x:\n  interface: eth0\n  start_period: -1s\n", AgentDot1XConfig{}, "negative duration"},
		{"held period of a year", "dot1x:\n  interface: eth0\n  held_period: 8760h\n", AgentDot1XConfig{}, "dot1x.held_period"},
		{"max_start too large", "dot1x:\n  interface: eth0\n  max_start: 1000\n", AgentDot1XConfig{}, "dot1x.max_start 1000"},
		{"reassess too often", "dot1x:\n  interface: eth0\n  reassess_period: 10ms\n", AgentDot1XConfig{}, "dot1x.reassess_period"},
		{"unknown field", "dot1x:\n  interface: eth0\n  start: 1s\n", AgentDot1XConfig{}, "start"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "agent.yaml")
			writeFile(t, path, "pdp:\n  pin: "+agentLinkPin+"\n"+tt.yaml)
			cfg, err := LoadAgentConfig(path)
			if tt.error != "" {
				if err == nil || !strings.Contains(err.Error(), tt.error) {
					t.Fatalf("error %v, want one with %q", err, tt.error)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			want.StatusFile = strings.Replace(want.StatusFile, "DIR", dir, 1)
			if cfg.Dot1X == nil || *cfg.Dot1X != want {
				t.Fatalf("dot1x %+v, want %+v", cfg.Dot1X, want)
			}
		})
	}
}

// TestAgentLinkNoDot1X: without the section the agent keeps its one-shot
// PT-TLS mode, and RunAgentLink refuses to run.
func TestAgentLinkNoDot1X(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "agent.yaml")
	writeFile(t, path, "pdp:\n  pin: "+agentLinkPin+"\n")
	cfg, err := LoadAgentConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Dot1X != nil {
		t.Fatalf("dot1x %+v without a section", cfg.Dot1X)
	}
	if err := RunAgentLink(t.Context(), cfg, slog.New(slog.DiscardHandler), nil); err == nil {
		t.Fatal("RunAgentLink ran without a dot1x section")
	}
}

func TestAgentLinkStatusFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "run", "trustnac", "agent.json")
	up := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r := &linkReporter{st: AgentLinkStatus{Interface: "eth0", Link: "down", State: LinkStateWaiting}, file: path, log: slog.New(slog.DiscardHandler)}
	read := func() AgentLinkStatus {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var st AgentLinkStatus
		if err := json.Unmarshal(b, &st); err != nil {
			t.Fatalf("%v\n%s", err, b)
		}
		return st
	}
	auth, _ := net.ParseMAC("02:00:00:00:00:01")
	steps := []struct {
		name  string
		do    func()
		check func(st AgentLinkStatus) bool
	}{
		{"link up", func() { r.linkChange(true, up) },
			func(st AgentLinkStatus) bool {
				return st.Link == "up" && st.State == LinkStateAuthenticating && st.LinkUpAt.Equal(up) && st.Decisions == 0
			}},
		{"admitted by 802.1X", func() {
			r.outcome(MethodDot1X, &imc.Outcome{Role: "remediate", Reasons: []string{"telnet listening"},
				Remediation: []imc.Remediation{{Text: "remove telnetd", URI: "http://fix.example/telnet", Lang: "en"}}}, "success", auth)
		}, func(st AgentLinkStatus) bool {
			return st.State == LinkStateAuthenticated && st.Method == MethodDot1X && st.Role == "remediate" &&
				len(st.Reasons) == 1 && st.Reasons[0] == "telnet listening" && len(st.Remediation) == 1 &&
				st.Remediation[0] == (LinkRemediation{Text: "remove telnetd", URI: "http://fix.example/telnet", Lang: "en"}) &&
				st.Authenticator == "02:00:00:00:00:01" && st.EAP == "success" && st.Decisions == 1 &&
				st.DecidedAt != nil && st.SinceLinkUpMS == st.DecidedAt.Sub(up).Milliseconds()
		}},
		{"rejected without posture", func() { r.outcome(MethodDot1X, nil, "failure", auth) },
			func(st AgentLinkStatus) bool {
				return st.State == LinkStateFailed && st.Role == "deny" && st.EAP == "failure" && len(st.Remediation) == 0 &&
					len(st.Reasons) == 1 && st.Decisions == 2
			}},
		{"link down", func() { r.linkChange(false, up.Add(time.Minute)) },
			func(st AgentLinkStatus) bool {
				return st.Link == "down" && st.State == LinkStateDown && st.Decisions == 2
			}},
		{"assessed over PT-TLS", func() { r.outcome(MethodPTTLS, &imc.Outcome{Role: "admit"}, "", nil) },
			func(st AgentLinkStatus) bool {
				return st.State == LinkStateAssessed && st.Method == MethodPTTLS && st.Role == "admit" &&
					st.Authenticator == "" && st.EAP == "" && st.Decisions == 3
			}},
		{"an error", func() { r.failure(LinkStateAssessing, os.ErrDeadlineExceeded) },
			func(st AgentLinkStatus) bool {
				return st.State == LinkStateAssessing && st.Error == os.ErrDeadlineExceeded.Error() && st.Role == "admit"
			}},
	}
	for _, s := range steps {
		s.do()
		if st := read(); !s.check(st) {
			t.Fatalf("%s: status %+v", s.name, st)
		}
	}
	// Nothing but the file is left in its directory: the temporary files
	// were renamed over it.
	ents, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != "agent.json" {
		t.Fatalf("directory holds %v", ents)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v", fi.Mode())
	}
}

func TestAgentLinkStatusFileError(t *testing.T) {
	dir := t.TempDir()
	// A directory where the file should go: the rename fails, and the
	// temporary file is removed.
	path := filepath.Join(dir, "agent.json")
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(path, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err := writeStatusFile(path, &AgentLinkStatus{Interface: "eth0"})
	if err == nil || !strings.HasPrefix(err.Error(), "nac: status file") {
		t.Fatalf("error %v", err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("left behind: %v", ents)
	}
}

func TestAgentLinkUp(t *testing.T) {
	tests := []struct {
		name  string
		attrs netlink.LinkAttrs
		up    bool
	}{
		{"oper up", netlink.LinkAttrs{OperState: netlink.OperUp}, true},
		{"lower layer down", netlink.LinkAttrs{OperState: netlink.OperLowerLayerDown, Flags: net.FlagUp}, false},
		{"oper down", netlink.LinkAttrs{OperState: netlink.OperDown, Flags: net.FlagUp, RawFlags: unix.IFF_LOWER_UP}, false},
		{"unknown with carrier", netlink.LinkAttrs{OperState: netlink.OperUnknown, Flags: net.FlagUp, RawFlags: unix.IFF_UP | unix.IFF_LOWER_UP}, true},
		{"unknown without carrier", netlink.LinkAttrs{OperState: netlink.OperUnknown, Flags: net.FlagUp, RawFlags: unix.IFF_UP}, false},
		{"unknown, admin down", netlink.LinkAttrs{OperState: netlink.OperUnknown, RawFlags: unix.IFF_LOWER_UP}, false},
		{"dormant", netlink.LinkAttrs{OperState: netlink.OperDormant, Flags: net.FlagUp}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := linkUp(&netlink.Device{LinkAttrs: tt.attrs}); got != tt.up {
				t.Fatalf("linkUp %v, want %v", got, tt.up)
			}
		})
	}
}

// TestAgentLinkExample loads the commented dot1x section of the example
// agent configuration with its comment marks taken off.
func TestAgentLinkExample(t *testing.T) {
	b, err := os.ReadFile("../policies/examples/agent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case line == "# dot1x:":
			in = true
			line = "dot1x:"
		case in && strings.HasPrefix(line, "#   "):
			line = strings.TrimPrefix(line, "#")
			if strings.HasPrefix(strings.TrimSpace(line), "#") {
				line = ""
			}
		default:
			in = false
		}
		out = append(out, line)
	}
	if !strings.Contains(strings.Join(out, "\n"), "\ndot1x:\n") {
		t.Fatal("no dot1x section in the example")
	}
	path := filepath.Join(t.TempDir(), "agent.yaml")
	writeFile(t, path, strings.Join(out, "\n"))
	cfg, err := LoadAgentConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Dot1X
	if d == nil || d.Interface != "eth0" || d.StartPeriod.D() != 3*time.Second || d.HeldPeriod.D() != 10*time.Second ||
		d.Fallback != FallbackPTTLS || d.StatusFile != "/run/trustnac/agent.json" {
		t.Fatalf("dot1x of the example: %+v", d)
	}
}

// TestAgentLinkCLI: `nac agent --interface` runs the link mode, waits for
// an interface that is not there, writes its status and exits 0 when its
// context ends (SIGTERM in main).
func TestAgentLinkCLI(t *testing.T) {
	dir := t.TempDir()
	status := filepath.Join(dir, "agent.json")
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	var stdout, stderr strings.Builder
	code := Main(ctx, []string{"agent", "--pin", agentLinkPin, "--interface", "tnnothere0", "--status-file", status},
		strings.NewReader(""), &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	b, err := os.ReadFile(status)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	var st AgentLinkStatus
	if err := json.Unmarshal(b, &st); err != nil || st.Interface != "tnnothere0" || st.State != LinkStateWaiting || st.Link != "down" {
		t.Fatalf("status %+v, %v", st, err)
	}
	if stdout.Len() != 0 {
		t.Fatalf("the link mode printed %q", stdout.String())
	}
}
