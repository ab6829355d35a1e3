package nac

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"trustnac/pep/eapol"
	"trustnac/transport/eap"
)

// agentLinkHelperEnv names the agent configuration the helper process runs
// RunAgentLink with. The helper is this test binary, started with `ip netns
// exec` so that the agent lives entirely in the endpoint's namespace, as it
// would on a real endpoint, and gets real signals.
const agentLinkHelperEnv = "TRUSTNAC_AGENT_LINK_CONFIG"

// TestAgentLinkHelperProcess is not a test: it is the agent of the AgentLink
// end-to-end tests, run as a separate process.
func TestAgentLinkHelperProcess(t *testing.T) {
	path := os.Getenv(agentLinkHelperEnv)
	if path == "" {
		t.Skip("the helper process of the AgentLink end-to-end tests; they start it")
	}
	cfg, err := LoadAgentConfig(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	if err := RunAgentLink(ctx, cfg, NewLogger(cfg.Log, os.Stderr), hup); err != nil {
		fmt.Fprintln(os.Stderr, "agent:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// linkAgent is a running helper process.
type linkAgent struct {
	t      *testing.T
	cmd    *exec.Cmd
	log    *logWatch
	status string
	exited chan error
	more   func() string
}

// startLinkAgent runs the agent in namespace ns with the configuration
// yaml (the status file is added to its dot1x section).
func startLinkAgent(t *testing.T, ns, yaml string) *linkAgent {
	t.Helper()
	dir := t.TempDir()
	status := filepath.Join(dir, "run", "agent.json")
	conf := filepath.Join(dir, "agent.yaml")
	writeFile(t, conf, yaml+"  status_file: "+status+"\nlog:\n  level: debug\n")
	cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^TestAgentLinkHelperProcess$")
	cmd.Env = append(os.Environ(), agentLinkHelperEnv+"="+conf)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	a := &linkAgent{t: t, cmd: cmd, log: newLogWatch(pr), status: status, exited: make(chan error, 1)}
	go func() { a.exited <- cmd.Wait(); pw.Close() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-a.exited
	})
	return a
}

// read returns the status file, zero before the agent wrote it.
func (a *linkAgent) read() AgentLinkStatus {
	var st AgentLinkStatus
	if b, err := os.ReadFile(a.status); err == nil {
		if err := json.Unmarshal(b, &st); err != nil {
			a.t.Fatalf("status file does not decode (not written atomically?): %v\n%s", err, b)
		}
	}
	return st
}

// wait waits for the status to satisfy cond and returns it.
func (a *linkAgent) wait(what string, d time.Duration, cond func(AgentLinkStatus) bool) AgentLinkStatus {
	a.t.Helper()
	deadline := time.Now().Add(d)
	for {
		st := a.read()
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("%s: status %+v\nagent log:\n%s%s", what, st, tail(a.log.String()), a.extra())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// extra is more to print when a wait fails.
func (a *linkAgent) extra() string {
	if a.more == nil {
		return ""
	}
	return "\n" + a.more()
}

// stop ends the agent with SIGTERM and checks that it exits 0.
func (a *linkAgent) stop() {
	a.t.Helper()
	a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-a.exited:
		a.exited <- err // for the cleanup
		if err != nil {
			a.t.Fatalf("agent exit: %v\n%s", err, tail(a.log.String()))
		}
	case <-time.After(10 * time.Second):
		a.t.Fatalf("agent did not exit on SIGTERM\n%s", tail(a.log.String()))
	}
}

// startWatch records when the EAPOL-Starts from mac arrive on ifname (the
// authenticator's side of the link).
type startWatch struct {
	conn   *eapol.Conn // to send as the authenticator would
	mu     sync.Mutex
	starts []time.Time
}

func watchStarts(t *testing.T, ifname string, mac net.HardwareAddr) *startWatch {
	t.Helper()
	c, err := eapol.Open(ifname)
	if err != nil {
		t.Fatal(err)
	}
	c.SetRateLimit(eapol.RateLimit{})
	ctx, cancel := context.WithCancel(context.Background())
	w := &startWatch{conn: c}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			src, f, err := c.ReadFrom(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				continue
			}
			if f.Type == eapol.TypeStart && src.String() == mac.String() {
				w.mu.Lock()
				w.starts = append(w.starts, time.Now())
				w.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { cancel(); c.Close(); <-done })
	return w
}

// firstAfter is the first Start at or after t, if any.
func (w *startWatch) firstAfter(t time.Time) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.starts {
		if !s.Before(t) {
			return s, true
		}
	}
	return time.Time{}, false
}

func ipLink(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestAgentLinkHostapd runs our agent as the supplicant of its link against
// a stock authenticator (hostapd -D wired) whose RADIUS server is the PDP:
// admission on link up, "link down" when the cable goes, authentication
// again when it comes back, re-authentication on SIGHUP, a clean exit on
// SIGTERM; then a wrong password: the rejection is reported and the agent
// keeps its held period before it starts again.
func TestAgentLinkHostapd(t *testing.T) {
	needTool(t, "hostapd")
	ns, host, peer := netnsPair(t)
	l := newRADIUSLab(t, "")
	_, authPort, _ := net.SplitHostPort(l.auth)
	dir := t.TempDir()
	hconf := filepath.Join(dir, "hostapd.conf")
	writeFile(t, hconf, fmt.Sprintf(`interface=%s
driver=wired
logger_stdout=-1
logger_stdout_level=1
ieee8021x=1
eapol_version=2
eap_reauth_period=0
use_pae_group_addr=1
own_ip_addr=127.0.0.1
nas_identifier=hostapd-agent-link
auth_server_addr=127.0.0.1
auth_server_port=%s
auth_server_shared_secret=%s
`, host, authPort, l.secret))
	hw := startLogged(t, "hostapd", "-d", hconf)
	if !hw.wait("interface state", 10*time.Second) && !hw.wait("ENABLED", time.Second) {
		t.Fatalf("hostapd did not start:\n%s", tail(hw.String()))
	}
	hostIf, err := net.InterfaceByName(host)
	if err != nil {
		t.Fatal(err)
	}
	agentMAC, _ := net.ParseMAC("02:00:00:00:00:77")
	starts := watchStarts(t, host, agentMAC)
	healthy, err := filepath.Abs(fixture("healthy"))
	if err != nil {
		t.Fatal(err)
	}
	conf := func(identity, password string) string {
		s := fmt.Sprintf("pdp:\n  pin: %s\ncollectors:\n  os:\n    root: %s\n", l.pdp.Fingerprint, healthy)
		if identity != "" {
			s += fmt.Sprintf("identity: %s\npassword: %s\n", identity, password)
		}
		return s + fmt.Sprintf("dot1x:\n  interface: %s\n  start_period: 1s\n  max_start: 10\n  held_period: 3s\n  auth_period: 5s\n", peer)
	}

	a := startLinkAgent(t, ns, conf("", ""))
	a.more = func() string { return "hostapd:\n" + tail(hw.String()) }
	admitted := func(n int) func(AgentLinkStatus) bool {
		return func(st AgentLinkStatus) bool {
			return st.Decisions == n && st.State == LinkStateAuthenticated && st.Role == "admit"
		}
	}
	st := a.wait("first admission", 20*time.Second, admitted(1))
	if st.Method != MethodDot1X || st.EAP != "success" || st.Link != "up" || st.Interface != peer ||
		st.Authenticator != hostIf.HardwareAddr.String() || st.DecidedAt == nil || st.LinkUpAt == nil {
		t.Fatalf("status after admission: %+v", st)
	}
	if !hw.wait("authorizing port", 5*time.Second) && !hw.wait("IEEE 802.1X: authorized", time.Second) {
		t.Fatalf("hostapd did not authorize the port:\n%s", tail(hw.String()))
	}
	rec, err := l.pdp.Store().Get("mac:" + agentMAC.String())
	if err != nil || rec.Role != "admit" || rec.Channel != "eap" || rec.Facts["os"] == nil {
		t.Fatalf("PDP record of the agent: %+v, %v", rec, err)
	}

	// The cable goes: the agent reports it, and authenticates again when it is back.
	ipLink(t, "link", "set", host, "down")
	a.wait("link down", 10*time.Second, func(st AgentLinkStatus) bool {
		return st.Link == "down" && st.State == LinkStateDown
	})
	ipLink(t, "link", "set", host, "up")
	st = a.wait("admission after link up", 20*time.Second, admitted(2))
	if st.LinkUpAt == nil || st.DecidedAt.Before(*st.LinkUpAt) || st.SinceLinkUpMS < 0 {
		t.Fatalf("times after link up: %+v", st)
	}

	// SIGHUP: an EAPOL-Start now, and a new conversation.
	hup := time.Now()
	a.cmd.Process.Signal(syscall.SIGHUP)
	a.wait("re-authentication on SIGHUP", 20*time.Second, admitted(3))
	if _, ok := starts.firstAfter(hup); !ok {
		t.Fatal("no EAPOL-Start after SIGHUP")
	}
	a.stop()

	// A wrong password: rejected, and no EAPOL-Start during the held period.
	// (hostapd ignores the Starts of a MAC for 5s after its Logoff; the
	// agent's ten Starts outlast that.)
	a = startLinkAgent(t, ns, conf("alice", "wrong-password"))
	a.more = func() string { return "hostapd:\n" + tail(hw.String()) }
	st = a.wait("rejection", 20*time.Second, func(st AgentLinkStatus) bool {
		return st.Decisions == 1 && st.State == LinkStateFailed
	})
	if st.Role != "deny" || st.EAP != "failure" || st.Method != MethodDot1X {
		t.Fatalf("status after rejection: %+v", st)
	}
	failedAt := *st.DecidedAt
	var next time.Time
	deadline := time.Now().Add(15 * time.Second)
	for {
		s, ok := starts.firstAfter(failedAt)
		if ok {
			next = s
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no EAPOL-Start after the held period\n%s", tail(a.log.String()))
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The held period is 3s; clocks of the two processes are the same.
	if gap := next.Sub(failedAt); gap < 2900*time.Millisecond {
		t.Fatalf("EAPOL-Start %s after the failure, inside the 3s held period", gap)
	}
	a.stop()
}

// ptTLSProxy forwards TCP connections from addr to the PDP's PT-TLS
// listener. It drops the first drop connections, as a network that is not
// ready yet would.
func ptTLSProxy(t *testing.T, addr, to string, drop int) (string, *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int32
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if int(n.Add(1)) <= drop {
				c.Close()
				continue
			}
			go func() {
				defer c.Close()
				u, err := net.Dial("tcp", to)
				if err != nil {
					return
				}
				defer u.Close()
				go func() { io.Copy(u, c); u.(*net.TCPConn).CloseWrite() }()
				io.Copy(c, u)
			}()
		}
	}()
	return ln.Addr().String(), &n
}

// TestAgentLinkFallbackPTTLS puts the agent on a link where no 802.1X
// authenticator answers (a port admitted by MAB into assess): after MaxStart
// EAPOL-Starts it assesses over PT-TLS, retrying while the PDP is not
// reachable yet, reports that outcome, and assesses again on SIGHUP.
func TestAgentLinkFallbackPTTLS(t *testing.T) {
	ns, host, peer := netnsPair(t)
	l := newRADIUSLab(t, "")
	// A /30 of its own for each run, so that parallel runs do not collide.
	b := []byte(ns[len(ns)-6:])
	var o1, o2 byte
	fmt.Sscanf(string(b[:2]), "%02x", &o1)
	fmt.Sscanf(string(b[2:4]), "%02x", &o2)
	hostIP, peerIP := fmt.Sprintf("10.%d.%d.1", o1, o2&0xfc), fmt.Sprintf("10.%d.%d.2", o1, o2&0xfc)
	ipLink(t, "addr", "add", hostIP+"/30", "dev", host)
	ipLink(t, "-n", ns, "addr", "add", peerIP+"/30", "dev", peer)
	proxy, conns := ptTLSProxy(t, net.JoinHostPort(hostIP, "0"), l.pdp.PTTLSAddr().String(), 1)
	healthy, err := filepath.Abs(fixture("healthy"))
	if err != nil {
		t.Fatal(err)
	}
	a := startLinkAgent(t, ns, fmt.Sprintf(`pdp:
  address: %s
  pin: %s
timeout: 10s
collectors:
  os:
    root: %s
dot1x:
  interface: %s
  start_period: 300ms
  max_start: 2
  fallback: pt-tls
`, proxy, l.pdp.Fingerprint, healthy, peer))
	st := a.wait("assessment over PT-TLS", 20*time.Second, func(st AgentLinkStatus) bool {
		return st.Decisions == 1 && st.State == LinkStateAssessed
	})
	if st.Method != MethodPTTLS || st.Role != "admit" || st.Link != "up" || st.Authenticator != "" || st.EAP != "" {
		t.Fatalf("status after the fallback: %+v", st)
	}
	if n := conns.Load(); n < 2 {
		t.Fatalf("%d connections to the PDP; want the dropped one and a retry", n)
	}
	if !strings.Contains(a.log.String(), "retrying") {
		t.Fatalf("no retry in the agent's log:\n%s", tail(a.log.String()))
	}
	before := conns.Load()
	a.cmd.Process.Signal(syscall.SIGHUP)
	st = a.wait("assessment again on SIGHUP", 20*time.Second, func(st AgentLinkStatus) bool {
		return st.Decisions == 2 && st.State == LinkStateAssessed
	})
	if st.Method != MethodPTTLS || st.Role != "admit" || conns.Load() != before+1 {
		t.Fatalf("status after SIGHUP: %+v, %d connections (%d before)", st, conns.Load(), before)
	}

	// An authenticator speaks up on the port: the agent tries 802.1X again
	// (an EAPOL-Start), and with nobody answering that, PT-TLS again.
	agentMAC, _ := net.ParseMAC("02:00:00:00:00:77")
	starts := watchStarts(t, host, agentMAC)
	f, err := eapol.NewEAPFrame(2, &eap.Packet{Code: eap.CodeRequest, ID: 9, Type: eap.TypeIdentity})
	if err != nil {
		t.Fatal(err)
	}
	spoke := time.Now()
	if err := starts.conn.WriteTo(agentMAC, f); err != nil {
		t.Fatal(err)
	}
	st = a.wait("802.1X, then PT-TLS again", 20*time.Second, func(st AgentLinkStatus) bool {
		return st.Decisions == 3 && st.State == LinkStateAssessed
	})
	if _, ok := starts.firstAfter(spoke); !ok || !strings.Contains(a.log.String(), "authenticator spoke") {
		t.Fatalf("no EAPOL-Start after the authenticator's Request\n%s", tail(a.log.String()))
	}
	a.stop()
}
