package nac

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"

	"trustnac/pdp"
	tradius "trustnac/transport/radius"
)

// The PEP end-to-end tests build, in network namespaces, a hypervisor bridge namespace running
// the real `nac pep` binary, a server namespace on an unmanaged port and endpoint namespaces on
// managed ports; the PDP runs in this process, in the root namespace, reached through an
// uplink veth. Endpoints authenticate with wpa_supplicant -D wired (802.1X) or not at all (MAB);
// reachability is proven with TCP connections made from inside the endpoint namespaces.

var (
	nacBinOnce sync.Once
	nacBin     string
	nacBinErr  error
)

// buildNac builds the nac binary once per test process.
func buildNac(tb testing.TB) string {
	tb.Helper()
	nacBinOnce.Do(func() {
		// One fixed place, so repeated runs do not leave binaries behind.
		dir := filepath.Join(os.TempDir(), fmt.Sprintf("trustnac-pep-e2e-%d-race%t", os.Getuid(), os.Getenv("TRUSTNAC_E2E_RACE") != ""))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			nacBinErr = err
			return
		}
		nacBin = filepath.Join(dir, "nac")
		args := []string{"build", "-o", nacBin}
		if os.Getenv("TRUSTNAC_E2E_RACE") != "" { // the daemon under the race detector
			args = append(args, "-race")
		}
		out, err := exec.Command("go", append(args, "./cmd/nac")...).CombinedOutput()
		if err != nil {
			nacBinErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if nacBinErr != nil {
		tb.Fatal(nacBinErr)
	}
	return nacBin
}

// pepLab is the namespace lab of the PEP tests.
type pepLab struct {
	tb      testing.TB
	id      string
	net     string // "10.a.b." prefix of the lab's /24
	br      string // the bridge namespace
	srv     string // the server namespace (unmanaged port up-srv)
	uplink  string // root-namespace end of the PDP uplink
	dir     string
	pdpDir  string
	pdp     *PDP
	pdpCfg  *PDPConfig
	secret  string
	eps     map[string]*pepEndpoint
	pep     *pepProc
	pepConf string
	srvLn   net.Listener
}

// pepEndpoint is an endpoint namespace on a managed port.
type pepEndpoint struct {
	ns, port string
	mac      string
	ip       string
}

func needRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root for network namespaces, bridges and nftables")
	}
	for _, n := range []string{"ip", "nft", "bridge"} {
		if _, err := exec.LookPath(n); err != nil {
			tb.Skipf("%s is not installed", n)
		}
	}
}

func (l *pepLab) ip(args ...string) {
	l.tb.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		l.tb.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// newPEPLab makes the bridge namespace with its uplink, the server, and a PDP; no endpoints.
func newPEPLab(tb testing.TB) *pepLab {
	tb.Helper()
	needRoot(tb)
	b := make([]byte, 4)
	rand.Read(b)
	l := &pepLab{tb: tb, id: hex.EncodeToString(b[:3]), net: fmt.Sprintf("10.%d.%d.", 100+int(b[0])%100, b[3]),
		dir: tb.TempDir(), secret: "testing123", eps: map[string]*pepEndpoint{}}
	l.br, l.srv, l.uplink = "tpb-"+l.id, "tps-"+l.id, "tpu"+l.id
	tb.Cleanup(l.teardown)
	l.ip("netns", "add", l.br)
	l.ip("netns", "add", l.srv)
	l.ip("-n", l.br, "link", "set", "lo", "up")
	l.ip("-n", l.br, "link", "add", "br-nac", "type", "bridge")
	l.ip("-n", l.br, "link", "set", "br-nac", "up")
	l.ip("-n", l.br, "addr", "add", l.net+"1/24", "dev", "br-nac")
	l.ip("link", "add", l.uplink, "type", "veth", "peer", "name", "up-pdp", "netns", l.br)
	l.ip("addr", "add", l.net+"2/24", "dev", l.uplink)
	l.ip("link", "set", l.uplink, "up")
	l.ip("-n", l.br, "link", "set", "up-pdp", "master", "br-nac", "up")
	l.ip("-n", l.srv, "link", "add", "eth0", "type", "veth", "peer", "name", "up-srv", "netns", l.br)
	l.ip("-n", l.srv, "addr", "add", l.net+"3/24", "dev", "eth0")
	l.ip("-n", l.srv, "link", "set", "eth0", "up")
	l.ip("-n", l.br, "link", "set", "up-srv", "master", "br-nac", "up")
	// The server accepts TCP on :8080 and closes at once.
	inNetns(tb, l.srv, func() {
		ln, err := net.Listen("tcp", l.net+"3:8080")
		if err != nil {
			tb.Fatal(err)
		}
		l.srvLn = ln
	})
	go func() {
		for {
			c, err := l.srvLn.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	l.startPDP()
	return l
}

func (l *pepLab) startPDP() {
	l.tb.Helper()
	dir := filepath.Join(l.dir, "pdp")
	if l.pdpCfg == nil {
		os.MkdirAll(dir, 0o755)
		pol, err := os.ReadFile("../policies/examples/lab.yaml")
		if err != nil {
			l.tb.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "lab.yaml"), pol, 0o644)
		os.WriteFile(filepath.Join(dir, "users.yaml"), []byte("users:\n  alice: \""+pdp.HashNT("alice-password")+"\"\n"), 0o600)
		os.WriteFile(filepath.Join(dir, "pdp.yaml"), []byte(`
state_dir: state
policy: lab.yaml
pttls:
  listen: `+l.net+`2:0
  handshake_timeout: 5s
api:
  listen: "off"
radius:
  auth_listen: `+l.net+`2:0
  acct_listen: `+l.net+`2:0
  clients:
    - {name: hv1, network: `+l.net+`1/32, secret: testing123}
  users_file: users.yaml
  session_timeout: 1h
  coa: {timeout: 1s, retries: 2}
  eap:
    timeout: 5s
log:
  level: warn
`), 0o600)
		cfg, err := LoadPDPConfig(filepath.Join(dir, "pdp.yaml"))
		if err != nil {
			l.tb.Fatal(err)
		}
		l.pdpCfg = cfg
	}
	l.pdpDir = dir
	p := NewPDP(l.pdpCfg, pepTestLogger(l.tb))
	if err := p.Start(context.Background()); err != nil {
		l.tb.Fatal(err)
	}
	l.pdp = p
	// Keep the ports across a restart of the PDP.
	l.pdpCfg.RADIUS.AuthListen = p.RADIUSAuthAddr().String()
	l.pdpCfg.RADIUS.AcctListen = p.RADIUSAcctAddr().String()
	l.pdpCfg.PTTLS.Listen = p.PTTLSAddr().String()
}

func (l *pepLab) stopPDP() {
	if l.pdp == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l.pdp.Stop(ctx)
	l.pdp = nil
}

func (l *pepLab) teardown() {
	if l.pep != nil {
		l.pep.kill()
	}
	if l.srvLn != nil {
		l.srvLn.Close()
	}
	l.stopPDP()
	for _, e := range l.eps {
		exec.Command("ip", "netns", "del", e.ns).Run()
	}
	exec.Command("ip", "link", "del", l.uplink).Run()
	exec.Command("ip", "netns", "del", l.srv).Run()
	exec.Command("ip", "netns", "del", l.br).Run()
}

// endpoint adds an endpoint namespace "tpe<n>-<id>" with eth0 (MAC 02:00:00:00:<lab>:<n>) on
// the bridge port p<n>.
func (l *pepLab) endpoint(n int) *pepEndpoint {
	l.tb.Helper()
	e := &pepEndpoint{ns: fmt.Sprintf("tpe%d-%s", n, l.id), port: fmt.Sprintf("p%d", n),
		mac: fmt.Sprintf("02:00:00:00:%s:%02x", l.id[:2], n), ip: fmt.Sprintf("%s%d", l.net, 10+n)}
	l.ip("netns", "add", e.ns)
	l.eps[e.port] = e
	l.ip("-n", e.ns, "link", "add", "eth0", "type", "veth", "peer", "name", e.port, "netns", l.br)
	l.ip("-n", e.ns, "link", "set", "eth0", "address", e.mac)
	l.ip("-n", e.ns, "addr", "add", e.ip+"/24", "dev", "eth0")
	l.ip("-n", e.ns, "link", "set", "eth0", "up")
	l.ip("-n", l.br, "link", "set", e.port, "master", "br-nac", "up")
	return e
}

// writePEPConfig writes the PEP's configuration; extra lines are appended.
func (l *pepLab) writePEPConfig(extra string) {
	l.tb.Helper()
	_, auth, _ := net.SplitHostPort(l.pdp.RADIUSAuthAddr().String())
	_, acct, _ := net.SplitHostPort(l.pdp.RADIUSAcctAddr().String())
	l.pepConf = filepath.Join(l.dir, "pep.yaml")
	cfg := `bridge: br-nac
ports: []
exclude: [up-pdp, up-srv]
nas_identifier: hv1
nas_ip: ` + l.net + `1
state_dir: pep-state
radius:
  auth: ` + l.net + `2:` + auth + `
  acct: ` + l.net + `2:` + acct + `
  secret: testing123
  timeout: 1s
  retries: 1
  interim_interval: 1m
das:
  listen: ":3799"
  clients: [{name: pdp, network: ` + l.net + `2/32, secret: testing123}]
mab: {enabled: true, delay: 1s}
dot1x: {tx_period: 2s, quiet_period: 3s, max_req: 2, reauth: true}
restricted: [` + l.net + `2/32]
vlans: false
log: {level: debug, format: text}
` + extra
	writeFile2(l.tb, l.pepConf, cfg)
}

// pepProc is a running `nac pep`.
type pepProc struct {
	cmd *exec.Cmd
	log *logWatch
	pw  *io.PipeWriter
}

func (p *pepProc) kill() {
	p.cmd.Process.Kill()
	p.cmd.Wait()
	p.pw.Close()
}

// startPEP runs `ip netns exec <br> nac pep --config` and waits until it is ready.
func (l *pepLab) startPEP() *pepProc {
	l.tb.Helper()
	bin := buildNac(l.tb)
	cmd := exec.Command("ip", "netns", "exec", l.br, bin, "pep", "--config", l.pepConf)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		l.tb.Fatal(err)
	}
	p := &pepProc{cmd: cmd, log: newLogWatch(pr), pw: pw}
	l.pep = p
	l.tb.Cleanup(func() {
		if strings.Contains(p.log.String(), "DATA RACE") || strings.Contains(p.log.String(), "panic:") {
			l.tb.Errorf("nac pep:\n%s", p.log.String())
		}
	})
	if !p.log.wait("pep ready", 60*time.Second) {
		l.tb.Fatalf("nac pep did not start:\n%s", tail(p.log.String()))
	}
	return p
}

// stopPEP ends the PEP with SIGTERM and waits.
func (l *pepLab) stopPEP() {
	l.pep.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { l.pep.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		l.pep.cmd.Process.Kill()
		<-done
	}
	l.pep.pw.Close()
	l.pep = nil
}

// supplicant runs wpa_supplicant -D wired in e's namespace as alice.
func (l *pepLab) supplicant(e *pepEndpoint, password string) *logWatch {
	l.tb.Helper()
	conf := filepath.Join(l.dir, "supplicant-"+e.port+".conf")
	writeFile2(l.tb, conf, fmt.Sprintf(`ap_scan=0
network={
	key_mgmt=IEEE8021X
	eap=TTLS
	identity="alice"
	anonymous_identity="anonymous"
	password=%q
	ca_cert=%q
	phase2="auth=PAP"
	eapol_flags=0
}
`, password, l.pdpCfg.RADIUS.EAP.Cert))
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", e.ns, "wpa_supplicant", "-D", "wired", "-i", "eth0", "-c", conf, "-d")
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		l.tb.Fatal(err)
	}
	w := newLogWatch(pr)
	l.tb.Cleanup(func() { cancel(); cmd.Wait(); pw.Close() })
	return w
}

// tcp reports whether e can open a TCP connection to addr.
func (l *pepLab) tcp(e *pepEndpoint, addr string) bool {
	ok := false
	inNetns(l.tb, e.ns, func() {
		c, err := net.DialTimeout("tcp", addr, 700*time.Millisecond)
		if err == nil {
			c.Close()
			ok = true
		}
	})
	return ok
}

// waitTCP waits until e's reachability of addr is want.
func (l *pepLab) waitTCP(e *pepEndpoint, addr string, want bool, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if l.tcp(e, addr) == want {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (l *pepLab) server() string { return l.net + "3:8080" }
func (l *pepLab) pdpTCP() string { return l.pdp.PTTLSAddr().String() }

// nft lists the PEP's nftables table.
func (l *pepLab) nft(args ...string) string {
	out, _ := exec.Command("ip", append([]string{"netns", "exec", l.br, "nft"}, args...)...).CombinedOutput()
	return string(out)
}

func (l *pepLab) inSet(role, mac string) bool {
	return strings.Contains(l.nft("list", "set", "bridge", "trustnac", role), mac)
}

func (l *pepLab) locked(port string) bool {
	out, _ := exec.Command("ip", "-n", l.br, "-d", "link", "show", port).CombinedOutput()
	return strings.Contains(string(out), "locked on")
}

func (l *pepLab) waitSet(role, mac string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for !l.inSet(role, mac) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
	return true
}

// pdpSession waits for the PDP's accounting session of mac (role "" for any).
func (l *pepLab) pdpSession(mac, role string, d time.Duration) (pdp.Session, bool) {
	deadline := time.Now().Add(d)
	for {
		for _, s := range l.pdp.RADIUS().Sessions().Find(mac, netip.MustParseAddr("0.0.0.0")) {
			if s.NAS == "hv1" && (role == "" || s.Role == role) {
				return s, true
			}
		}
		if time.Now().After(deadline) {
			return pdp.Session{}, false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// das sends a CoA-Request or Disconnect-Request to the PEP with radclient.
func (l *pepLab) das(code, secret, attrs string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "radclient", "-x", "-r", "1", "-t", "2", l.net+"1:3799", code, secret)
	cmd.Stdin = strings.NewReader(attrs + "\n")
	out, _ := cmd.CombinedOutput()
	return string(out)
}

// inNetns runs f on a thread inside the named network namespace; sockets made in f stay there.
func inNetns(tb testing.TB, name string, f func()) {
	tb.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		tb.Fatal(err)
	}
	defer orig.Close()
	h, err := netns.GetFromName(name)
	if err != nil {
		tb.Fatal(err)
	}
	defer h.Close()
	if err := netns.Set(h); err != nil {
		tb.Fatal(err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			panic("cannot return to the original network namespace: " + err.Error())
		}
	}()
	f()
}

func writeFile2(tb testing.TB, path, data string) {
	tb.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		tb.Fatal(err)
	}
}

func pepTestLogger(tb testing.TB) *slog.Logger {
	if t, ok := tb.(*testing.T); ok {
		return testLogger(t)
	}
	return slog.New(slog.DiscardHandler)
}

// TestPEPDot1XMABAndDynamicAuthorization runs the PEP's main paths with real peers:
// wpa_supplicant authenticates by 802.1X and reaches the server; an endpoint without a
// supplicant is admitted by MAB in assess and reaches only the PDP; its posture assessed over
// PT-TLS moves it to admit by the PDP's CoA; radclient's CoA, Authorize-Only and Disconnect
// change the kernel; unknown sessions are NAKed and forged requests dropped.
func TestPEPDot1XMABAndDynamicAuthorization(t *testing.T) {
	needTool(t, "wpa_supplicant", "radclient")
	l := newPEPLab(t)
	e1, e2 := l.endpoint(1), l.endpoint(2)
	l.writePEPConfig("")
	p := l.startPEP()
	for _, port := range []string{"p1", "p2"} {
		if !l.locked(port) {
			t.Fatalf("%s is not locked", port)
		}
	}
	if l.locked("up-pdp") || l.locked("up-srv") {
		t.Fatal("an excluded uplink was locked")
	}
	// Before anything, neither endpoint reaches the server.
	if l.tcp(e1, l.server()) {
		t.Fatal("unauthenticated endpoint reached the server")
	}

	// 802.1X with a stock supplicant.
	sw := l.supplicant(e1, "alice-password")
	if !sw.wait("CTRL-EVENT-EAP-SUCCESS", 30*time.Second) {
		t.Fatalf("wpa_supplicant not authenticated:\n%s\npep:\n%s", tail(sw.String()), tail(p.log.String()))
	}
	if !l.waitSet("admit", e1.mac, 5*time.Second) {
		t.Fatalf("%s not in the admit set:\n%s", e1.mac, tail(p.log.String()))
	}
	if !l.waitTCP(e1, l.server(), true, 5*time.Second) {
		t.Fatalf("admitted endpoint cannot reach the server:\n%s", l.nft("list", "table", "bridge", "trustnac"))
	}
	s1, ok := l.pdpSession(e1.mac, "admit", 5*time.Second)
	if !ok || s1.Port != "p1" || s1.NASID != "hv1" || s1.User != "alice" {
		t.Fatalf("PDP session of the 802.1X endpoint: %+v %v (all %+v)", s1, ok, l.pdp.RADIUS().Sessions().All())
	}

	// MAB: e2 sends traffic, gets assess: the PDP yes, the server no.
	l.tcp(e2, l.pdpTCP())
	if !l.waitSet("assess", e2.mac, 10*time.Second) {
		t.Fatalf("MAB endpoint not in assess:\n%s", tail(p.log.String()))
	}
	if !l.waitTCP(e2, l.pdpTCP(), true, 5*time.Second) {
		t.Fatal("assess endpoint cannot reach the PDP")
	}
	if l.tcp(e2, l.server()) {
		t.Fatal("assess endpoint reached the server")
	}
	if _, ok := l.pdpSession(e2.mac, "assess", 5*time.Second); !ok {
		t.Fatalf("no PDP session for the MAB endpoint: %+v", l.pdp.RADIUS().Sessions().All())
	}

	// The PDP's own path: posture over PT-TLS from e2 → CoA → admit.
	exec.Command("ip", "-n", e2.ns, "neigh", "flush", "all").Run()
	l.tcp(e2, l.pdpTCP()) // ARP again, so the PEP learns e2's address
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, _ := l.pdpSession(e2.mac, "", time.Second)
		if s.IP.String() == e2.ip {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("PDP session never got e2's address: %+v\n%s", s, tail(p.log.String()))
		}
		time.Sleep(200 * time.Millisecond)
	}
	agentConf := filepath.Join(l.dir, "agent.yaml")
	root, _ := filepath.Abs(fixture("healthy"))
	writeFile2(t, agentConf, "pdp: {address: \""+l.pdpTCP()+"\", pin: \""+l.pdp.Fingerprint+"\"}\ntimeout: 10s\ncollectors: {os: {root: \""+root+"\"}}\n")
	out, err := exec.Command("ip", "netns", "exec", e2.ns, buildNac(t), "agent", "--config", agentConf).CombinedOutput()
	if err != nil {
		t.Fatalf("agent over PT-TLS: %v\n%s", err, out)
	}
	if !l.waitSet("admit", e2.mac, 10*time.Second) {
		t.Fatalf("CoA after posture did not move e2 to admit:\n%s", tail(p.log.String()))
	}
	if !l.waitTCP(e2, l.server(), true, 5*time.Second) {
		t.Fatal("e2 admitted by CoA cannot reach the server")
	}

	// radclient as the PDP: CoA to isolate by Calling-Station-Id.
	const ma = ",Message-Authenticator=0x00"
	station := strings.ToUpper(strings.ReplaceAll(e2.mac, ":", "-"))
	out2 := l.das("coa", l.secret, "Calling-Station-Id="+station+",Filter-Id=isolate"+ma)
	if !strings.Contains(out2, "CoA-ACK") {
		t.Fatalf("CoA: %s", out2)
	}
	if !l.inSet("isolate", e2.mac) || l.inSet("admit", e2.mac) {
		t.Fatalf("CoA-ACK before the kernel changed:\n%s", l.nft("list", "table", "bridge", "trustnac"))
	}
	if l.tcp(e2, l.server()) {
		t.Fatal("isolated endpoint reached the server")
	}
	// A role the PEP does not know: NAK, nothing changes.
	if out := l.das("coa", l.secret, "Calling-Station-Id="+station+",Filter-Id=superuser"+ma); !strings.Contains(out, "CoA-NAK") {
		t.Fatalf("CoA with an unknown role: %s", out)
	}
	if !l.inSet("isolate", e2.mac) {
		t.Fatal("unknown role changed the binding")
	}

	// Authorize-Only: the supplicant authenticates again.
	s1, _ = l.pdpSession(e1.mac, "", time.Second)
	before := sw.successes()
	out2 = l.das("coa", l.secret, "Acct-Session-Id="+s1.ID+",Service-Type=Authorize-Only"+ma)
	if !strings.Contains(out2, "CoA-ACK") {
		t.Fatalf("Authorize-Only: %s", out2)
	}
	sw.waitSuccesses(t, before, "no re-authentication after Authorize-Only", p)

	// Unknown session: NAK 503; wrong NAS-Identifier: NAK 403.
	if out := l.das("disconnect", l.secret, "Acct-Session-Id=nope"+ma); !strings.Contains(out, "Disconnect-NAK") || !strings.Contains(out, "Session-Context-Not-Found") {
		t.Fatalf("unknown session: %s", out)
	}
	if out := l.das("disconnect", l.secret, "NAS-Identifier=hv9,Acct-Session-Id="+s1.ID+ma); !strings.Contains(out, "NAS-Identification-Mismatch") {
		t.Fatalf("foreign NAS-Identifier: %s", out)
	}
	// Wrong secret: the request does not verify and is dropped without an answer.
	if out := l.das("disconnect", "wrong-secret", "Acct-Session-Id="+s1.ID+ma); strings.Contains(out, "Disconnect-ACK") || strings.Contains(out, "Disconnect-NAK") {
		t.Fatalf("forged Disconnect answered: %s", out)
	}
	if !l.inSet("admit", e1.mac) {
		t.Fatal("forged Disconnect changed the kernel")
	}

	// Disconnect: unbound, the port stays locked, the PDP's session ends.
	if out := l.das("disconnect", l.secret, "Acct-Session-Id="+s1.ID+ma); !strings.Contains(out, "Disconnect-ACK") {
		t.Fatalf("Disconnect: %s", out)
	}
	if l.inSet("admit", e1.mac) || !l.locked("p1") {
		t.Fatal("Disconnect left the endpoint admitted")
	}
	if fdb, _ := exec.Command("bridge", "-n", l.br, "fdb", "show", "br", "br-nac").CombinedOutput(); strings.Contains(string(fdb), e1.mac+" dev p1 master br-nac static") {
		t.Fatalf("static FDB entry left after Disconnect:\n%s", fdb)
	}
	if l.tcp(e1, l.server()) {
		t.Fatal("disconnected endpoint reached the server")
	}
	deadline = time.Now().Add(5 * time.Second)
	for len(l.pdp.RADIUS().Sessions().Find(e1.mac, netip.MustParseAddr("0.0.0.0"))) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("Accounting-Stop did not end the PDP's session")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitNotInSets waits until mac is in no role set.
func (l *pepLab) waitNotInSets(mac string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if !strings.Contains(l.nft("list", "table", "bridge", "trustnac"), mac) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// rules lists the rules of the PEP's table, without set contents.
func (l *pepLab) rules() string {
	var b strings.Builder
	for _, chain := range []string{"forward", "restricted-out", "restricted-in"} {
		b.WriteString(l.nft("list", "chain", "bridge", "trustnac", chain))
	}
	return b.String()
}

// floodEAPOL sends n EAPOL-Start frames from e's eth0, from e's MAC and from random ones.
func (l *pepLab) floodEAPOL(e *pepEndpoint, n int) {
	l.tb.Helper()
	inNetns(l.tb, e.ns, func() {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
		if err != nil {
			l.tb.Fatal(err)
		}
		defer unix.Close(fd)
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			l.tb.Fatal(err)
		}
		mac, _ := net.ParseMAC(e.mac)
		frame := append([]byte{0x01, 0x80, 0xc2, 0, 0, 3}, mac...)
		frame = append(frame, 0x88, 0x8e, 2, 1, 0, 0)
		frame = append(frame, make([]byte, 60-len(frame))...)
		sa := &unix.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6}
		copy(sa.Addr[:], frame[:6])
		for i := range n {
			if i%4 == 3 { // a quarter from made-up sources
				rand.Read(frame[7:12])
				frame[6] = 0x02
			} else {
				copy(frame[6:12], mac)
			}
			unix.Sendto(fd, frame, 0, sa)
		}
	})
}

// TestPEPRestartPDPDownFloodAndNewPort kills the PEP with SIGKILL in the middle of
// authentications and restarts it: ports stay locked, admitted endpoints keep their role and are
// authenticated again, bindings of ports no longer managed and bindings nobody answers for are
// removed, the rule set is not duplicated. Then the PDP goes down: a port added meanwhile is
// locked and served but its endpoint stays locked, admitted endpoints keep their role. Finally
// an EAPOL flood from one port does not stop the PEP serving the others.
func TestPEPRestartPDPDownFloodAndNewPort(t *testing.T) {
	needTool(t, "wpa_supplicant", "radclient")
	l := newPEPLab(t)
	e1, e2, e3 := l.endpoint(1), l.endpoint(2), l.endpoint(3)
	l.writePEPConfig("")
	p := l.startPEP()
	sw := l.supplicant(e1, "alice-password")
	if !sw.wait("CTRL-EVENT-EAP-SUCCESS", 30*time.Second) || !l.waitSet("admit", e1.mac, 5*time.Second) {
		t.Fatalf("e1 not admitted:\n%s", tail(p.log.String()))
	}
	l.tcp(e2, l.pdpTCP())
	l.tcp(e3, l.pdpTCP())
	if !l.waitSet("assess", e2.mac, 10*time.Second) || !l.waitSet("assess", e3.mac, 10*time.Second) {
		t.Fatalf("MAB endpoints not in assess:\n%s", tail(p.log.String()))
	}
	rulesBefore := l.rules()

	// In the middle of authentications: e3 starts 802.1X, a new MAC appears on p2; SIGKILL.
	l.supplicant(e3, "wrong-password")
	l.floodEAPOL(e2, 1)
	time.Sleep(300 * time.Millisecond)
	p.kill()
	l.pep = nil

	// While it is down the kernel keeps enforcing: e1 admitted, e2 assess.
	if !l.tcp(e1, l.server()) || l.tcp(e2, l.server()) {
		t.Fatal("kernel state changed while the PEP was down")
	}
	// A stale binding nobody will answer for, on a managed port.
	const ghost = "02:00:00:00:ee:ee"
	exec.Command("ip", "netns", "exec", l.br, "bridge", "fdb", "add", ghost, "dev", "p1", "master", "static", "sticky").Run()
	exec.Command("ip", "netns", "exec", l.br, "nft", "add", "element", "bridge", "trustnac", "admit", "{ "+ghost+" }").Run()
	if !l.inSet("admit", ghost) {
		t.Fatal("could not plant the stale binding")
	}

	// Restart with p3 no longer managed.
	l.writePEPConfig("")
	conf, _ := os.ReadFile(l.pepConf)
	writeFile2(t, l.pepConf, strings.Replace(string(conf), "exclude: [up-pdp, up-srv]", "exclude: [up-pdp, up-srv, p3]", 1))
	before := sw.successes()
	p = l.startPEP()
	for _, port := range []string{"p1", "p2"} {
		if !l.locked(port) {
			t.Fatalf("%s not locked after restart", port)
		}
	}
	if l.inSet("assess", e3.mac) || l.tcp(e3, l.pdpTCP()) {
		t.Fatal("binding on a port no longer managed survived the restart")
	}
	if got := l.rules(); got != rulesBefore {
		t.Fatalf("rules changed across the restart:\nbefore:\n%s\nafter:\n%s", rulesBefore, got)
	}
	if !l.inSet("admit", e1.mac) || !l.inSet("assess", e2.mac) {
		t.Fatalf("admitted endpoints lost their role across the restart:\n%s", l.nft("list", "table", "bridge", "trustnac"))
	}
	sw.waitSuccesses(t, before, "e1 not re-authenticated after the restart", p)
	if !l.waitNotInSets(ghost, 15*time.Second) {
		t.Fatalf("stale binding still admitted:\n%s\n%s", l.nft("list", "table", "bridge", "trustnac"), tail(p.log.String()))
	}
	if !p.log.wait("mac="+e2.mac+" method=mab role=assess", 10*time.Second) {
		t.Fatalf("e2 not asked again by MAB after the restart:\n%s", tail(p.log.String()))
	}
	if _, ok := l.pdpSession(e1.mac, "admit", 5*time.Second); !ok {
		t.Fatalf("PDP lost e1's session after Accounting-On: %+v", l.pdp.RADIUS().Sessions().All())
	}

	// The PDP goes down. A port added now is locked and served; its endpoint stays locked.
	l.stopPDP()
	e4 := l.endpoint(4)
	if !p.log.wait("msg=\"port served\" component=pep port=p4", 10*time.Second) {
		t.Fatalf("new port not served:\n%s", tail(p.log.String()))
	}
	if !l.locked("p4") {
		t.Fatal("new port not locked")
	}
	for range 3 {
		if l.tcp(e4, l.server()) || l.tcp(e4, l.net+"2:1") {
			t.Fatal("endpoint on the new port passed with the PDP down")
		}
	}
	if !p.log.wait("MAB: PDP unreachable", 15*time.Second) {
		t.Fatalf("no MAB attempt for e4:\n%s", tail(p.log.String()))
	}
	if l.inSet("assess", e4.mac) || l.inSet("admit", e4.mac) {
		t.Fatal("e4 admitted without the PDP")
	}
	if !l.tcp(e1, l.server()) {
		t.Fatal("e1 lost its role while the PDP was down")
	}

	// The PDP is back: e4 is admitted by MAB.
	l.startPDP()
	deadline := time.Now().Add(20 * time.Second)
	for !l.inSet("assess", e4.mac) {
		if time.Now().After(deadline) {
			t.Fatalf("e4 not admitted once the PDP came back:\n%s", tail(p.log.String()))
		}
		l.tcp(e4, l.pdpTCP())
	}

	// e4 takes e1's MAC: a spoofed source on a locked port does not pass, e1 keeps its access.
	l.ip("-n", e4.ns, "link", "set", "eth0", "address", e1.mac)
	for range 3 {
		if l.tcp(e4, l.server()) {
			t.Fatal("spoofed source MAC passed the locked port")
		}
	}
	if !l.tcp(e1, l.server()) || !l.inSet("admit", e1.mac) {
		t.Fatalf("the spoofing took e1's session:\n%s", tail(p.log.String()))
	}
	l.ip("-n", e4.ns, "link", "set", "eth0", "address", e4.mac)

	// An EAPOL flood from e4's port: the PEP keeps serving the others.
	done := make(chan struct{})
	go func() { defer close(done); l.floodEAPOL(e4, 20000) }()
	station := strings.ToUpper(strings.ReplaceAll(e2.mac, ":", "-"))
	if out := l.das("coa", l.secret, "Calling-Station-Id="+station+",Filter-Id=admit,Message-Authenticator=0x00"); !strings.Contains(out, "CoA-ACK") {
		t.Fatalf("CoA during the flood: %s", out)
	}
	<-done
	if !l.waitTCP(e2, l.server(), true, 5*time.Second) {
		t.Fatal("CoA during the flood not enforced")
	}
	if l.pep.cmd.ProcessState != nil {
		t.Fatal("PEP exited during the flood")
	}
	s1, _ := l.pdpSession(e1.mac, "", 5*time.Second)
	before = sw.successes()
	if out := l.das("coa", l.secret, "Acct-Session-Id="+s1.ID+",Service-Type=Authorize-Only,Message-Authenticator=0x00"); !strings.Contains(out, "CoA-ACK") {
		t.Fatalf("Authorize-Only after the flood: %s", out)
	}
	sw.waitSuccesses(t, before, "e1 not re-authenticated after the flood", p)

	// Link down ends e2's session; a port that goes away ends e4's.
	l.ip("-n", l.br, "link", "set", "p2", "down")
	l.ip("-n", l.br, "link", "del", "p4")
	if !l.waitNotInSets(e2.mac, 5*time.Second) || !l.waitNotInSets(e4.mac, 5*time.Second) {
		t.Fatalf("link down / port removal left bindings:\n%s\n%s", l.nft("list", "table", "bridge", "trustnac"), tail(p.log.String()))
	}
	deadline = time.Now().Add(5 * time.Second)
	for len(l.pdp.RADIUS().Sessions().Find(e2.mac, netip.MustParseAddr("0.0.0.0")))+len(l.pdp.RADIUS().Sessions().Find(e4.mac, netip.MustParseAddr("0.0.0.0"))) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no Accounting-Stop for link down / port removal: %+v", l.pdp.RADIUS().Sessions().All())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !l.inSet("admit", e1.mac) {
		t.Fatal("e1 lost its session to another port's link going down")
	}
}

// BenchmarkCoAToEnforcement measures the time from a CoA-Request sent to the PEP to its CoA-ACK,
// which the PEP sends only after the kernel holds the new role: one op moves one MAB endpoint
// between admit and isolate.
//
//	go test -run '^$' -bench CoAToEnforcement ./nac
func BenchmarkCoAToEnforcement(b *testing.B) {
	l := newPEPLab(b)
	e := l.endpoint(1)
	l.writePEPConfig("")
	p := l.startPEP()
	l.tcp(e, l.pdpTCP())
	if !l.waitSet("assess", e.mac, 10*time.Second) {
		b.Fatalf("endpoint not admitted by MAB:\n%s", tail(p.log.String()))
	}
	s, ok := l.pdpSession(e.mac, "", 5*time.Second)
	if !ok {
		b.Fatal("no accounting session")
	}
	client := &tradius.Client{Secret: []byte(l.secret), Timeout: time.Second, Retries: -1}
	defer client.Close()
	das := l.net + "1:3799"
	roles := []string{"admit", "isolate"}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		req := radius.New(radius.CodeCoARequest, []byte(l.secret))
		rfc2866.AcctSessionID_SetString(req, s.ID)
		rfc2865.FilterID_SetString(req, roles[i%2])
		if err := client.DynamicAuth(context.Background(), req, das); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if !l.inSet("admit", e.mac) && !l.inSet("isolate", e.mac) {
		b.Fatal("the endpoint is in neither set after the CoAs")
	}
}

func TestPEPConfig(t *testing.T) {
	c, err := LoadPEPConfig("../policies/examples/pep.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cc, bc, err := PEPControllerConfig(c, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if cc.Bridge != "br-nac" || cc.NASIdentifier != "hv1" || cc.NASIP.String() != "10.77.0.1" || cc.Acct != "10.77.0.2:1813" ||
		string(cc.Secret) != "testing123" || cc.DASListen != ":3799" || len(cc.DASClients) != 1 || !cc.MAB ||
		cc.MABDelay != 3*time.Second || cc.TxPeriod != 5*time.Second || cc.MaxReq != 2 || !cc.Reauth || cc.Retries != 3 {
		t.Errorf("controller config %+v", cc)
	}
	if bc.Bridge != "br-nac" || len(bc.Restricted) != 2 || !bc.MAB || bc.Table != "trustnac" {
		t.Errorf("bridge config %+v", bc)
	}
	dir := t.TempDir()
	tests := []struct {
		name, yaml, wantErr string
	}{
		{"minimal", "bridge: br0\nnas_identifier: a\nradius: {auth: 10.0.0.2:1812, secret: s}\ndas: {listen: \"off\"}\n", ""},
		{"unknown key", "bridge: br0\nnas_identifier: a\nradius: {auth: 10.0.0.2:1812, secret: s}\ndas: {listen: \"off\"}\nvlan: true\n", "field vlan not found"},
		{"no secret", "bridge: br0\nnas_identifier: a\nradius: {auth: 10.0.0.2:1812}\ndas: {listen: \"off\"}\n", "secret"},
		{"das without clients", "bridge: br0\nnas_identifier: a\nradius: {auth: 10.0.0.2:1812, secret: s}\n", "das.clients"},
		{"bad nas_ip", "bridge: br0\nnas_ip: fe80::1\nradius: {auth: 10.0.0.2:1812, secret: s}\ndas: {listen: \"off\"}\n", "nas_ip"},
		{"bad restricted", "bridge: br0\nnas_identifier: a\nradius: {auth: 10.0.0.2:1812, secret: s}\ndas: {listen: \"off\"}\nrestricted: [nowhere]\n", "restricted"},
		{"no bridge", "nas_identifier: a\nradius: {auth: 10.0.0.2:1812, secret: s}\ndas: {listen: \"off\"}\n", "bridge"},
	}
	for _, tt := range tests {
		path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_")+".yaml")
		writeFile2(t, path, tt.yaml)
		c, err := LoadPEPConfig(path)
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			} else if c.RADIUS.Acct != "10.0.0.2:1813" || c.StateDir != "/var/lib/trustnac/pep" {
				t.Errorf("%s: defaults %+v", tt.name, c)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: err %v, want %q", tt.name, err, tt.wantErr)
		}
	}
}

// TestPEPStopKeepsOrCleansUp stops the PEP with SIGTERM: by default the kernel keeps enforcing
// (fail closed); with cleanup_on_exit everything it made is removed and its sessions end.
func TestPEPStopKeepsOrCleansUp(t *testing.T) {
	l := newPEPLab(t)
	e := l.endpoint(1)
	l.writePEPConfig("")
	p := l.startPEP()
	l.tcp(e, l.pdpTCP())
	if !l.waitSet("assess", e.mac, 10*time.Second) {
		t.Fatalf("MAB endpoint not in assess:\n%s", tail(p.log.String()))
	}
	l.stopPEP()
	if !l.locked("p1") || !l.inSet("assess", e.mac) || !l.tcp(e, l.pdpTCP()) || l.tcp(e, l.server()) {
		t.Fatal("a clean stop changed the enforcement")
	}
	l.writePEPConfig("cleanup_on_exit: true\n")
	p = l.startPEP()
	if !l.inSet("assess", e.mac) {
		t.Fatal("restart lost the binding")
	}
	l.stopPEP()
	if l.locked("p1") || strings.Contains(l.nft("list", "tables"), "trustnac") {
		t.Fatalf("cleanup_on_exit left enforcement behind:\n%s", l.nft("list", "tables"))
	}
	if ss := l.pdp.RADIUS().Sessions().Find(e.mac, netip.MustParseAddr("0.0.0.0")); len(ss) != 0 {
		t.Fatalf("sessions left at the PDP: %+v", ss)
	}
}

// successes counts the EAP successes wpa_supplicant has logged.
func (w *logWatch) successes() int { return strings.Count(w.String(), "CTRL-EVENT-EAP-SUCCESS") }

// waitSuccesses waits up to 20 s for an EAP success beyond the first
// before, and fails with what and the PEP's log otherwise.
func (w *logWatch) waitSuccesses(t *testing.T, before int, what string, p *pepProc) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for w.successes() <= before {
		if time.Now().After(deadline) {
			t.Fatalf("%s:\n%s", what, tail(p.log.String()))
		}
		time.Sleep(200 * time.Millisecond)
	}
}
