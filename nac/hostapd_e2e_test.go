package nac

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// netnsPair makes a network namespace with one end of a veth pair in it;
// the other end stays here. Both are removed at cleanup.
func netnsPair(t *testing.T) (ns, host, peer string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	needTool(t, "ip")
	b := make([]byte, 3)
	rand.Read(b)
	id := hex.EncodeToString(b)
	ns, host, peer = "tnt-"+id, "tnh"+id, "tns"+id
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("netns", "add", ns)
	t.Cleanup(func() {
		exec.Command("ip", "link", "del", host).Run()
		exec.Command("ip", "netns", "del", ns).Run()
	})
	run("link", "add", host, "type", "veth", "peer", "name", peer)
	run("link", "set", peer, "netns", ns)
	run("link", "set", host, "up")
	run("-n", ns, "link", "set", peer, "address", "02:00:00:00:00:77")
	run("-n", ns, "link", "set", peer, "up")
	return ns, host, peer
}

// logWatch collects a process's output and waits for lines in it.
type logWatch struct {
	mu  sync.Mutex
	buf strings.Builder
	ch  chan struct{}
}

func newLogWatch(r io.Reader) *logWatch {
	w := &logWatch{ch: make(chan struct{}, 1)}
	go func() {
		s := bufio.NewScanner(r)
		s.Buffer(make([]byte, 64<<10), 1<<20)
		for s.Scan() {
			w.mu.Lock()
			w.buf.WriteString(s.Text() + "\n")
			w.mu.Unlock()
			select {
			case w.ch <- struct{}{}:
			default:
			}
		}
	}()
	return w
}

func (w *logWatch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func (w *logWatch) wait(sub string, d time.Duration) bool {
	deadline := time.After(d)
	for {
		if strings.Contains(w.String(), sub) {
			return true
		}
		select {
		case <-w.ch:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			return false
		}
	}
}

func startLogged(t *testing.T, name string, args ...string) *logWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, name, args...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	w := newLogWatch(pr)
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
		pw.Close()
	})
	return w
}

// TestHostapdWiredWithWPASupplicant authenticates a stock supplicant
// (wpa_supplicant -D wired) through a stock wired authenticator (hostapd
// -D wired) against the PDP, as a switch port would: EAP-TTLS/PAP relayed
// in RADIUS, Access-Accept with the role, accounting Start with the
// session.
func TestHostapdWiredWithWPASupplicant(t *testing.T) {
	needTool(t, "hostapd", "wpa_supplicant")
	ns, host, peer := netnsPair(t)
	l := newRADIUSLab(t, "")
	_, authPort, _ := net.SplitHostPort(l.auth)
	_, acctPort, _ := net.SplitHostPort(l.acct)
	dir := t.TempDir()
	hconf := filepath.Join(dir, "hostapd.conf")
	writeFile(t, hconf, fmt.Sprintf(`interface=%s
driver=wired
logger_stdout=-1
logger_stdout_level=0
ieee8021x=1
eapol_version=2
eap_reauth_period=0
use_pae_group_addr=1
own_ip_addr=127.0.0.1
nas_identifier=hostapd-e2e
auth_server_addr=127.0.0.1
auth_server_port=%s
auth_server_shared_secret=%s
acct_server_addr=127.0.0.1
acct_server_port=%s
acct_server_shared_secret=%s
`, host, authPort, l.secret, acctPort, l.secret))
	sconf := filepath.Join(dir, "supplicant.conf")
	writeFile(t, sconf, fmt.Sprintf(`ap_scan=0
network={
	key_mgmt=IEEE8021X
	eap=TTLS
	identity="alice"
	anonymous_identity="anonymous"
	password="alice-password"
	ca_cert=%q
	phase2="auth=PAP"
	eapol_flags=0
}
`, l.ca))
	hw := startLogged(t, "hostapd", "-d", hconf)
	if !hw.wait("interface state", 10*time.Second) && !hw.wait("ENABLED", time.Second) {
		t.Fatalf("hostapd did not start:\n%s", tail(hw.String()))
	}
	sw := startLogged(t, "ip", "netns", "exec", ns, "wpa_supplicant", "-D", "wired", "-i", peer, "-c", sconf, "-d")
	if !sw.wait("CTRL-EVENT-EAP-SUCCESS", 30*time.Second) {
		t.Fatalf("supplicant not authenticated\nwpa_supplicant:\n%s\nhostapd:\n%s", tail(sw.String()), tail(hw.String()))
	}
	if !hw.wait("authorizing port", 10*time.Second) && !hw.wait("IEEE 802.1X: authorized", time.Second) {
		t.Fatalf("hostapd did not authorize the port:\n%s", tail(hw.String()))
	}
	rec, err := l.pdp.Store().Get("mac:02:00:00:00:00:77")
	if err != nil || rec.Role != "admit" || rec.Identity != "alice" {
		t.Fatalf("record of the supplicant: %+v, %v", rec, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if ss := l.pdp.RADIUS().Sessions().Find("02:00:00:00:00:77", netipMust("0.0.0.0")); len(ss) == 1 {
			if ss[0].NAS != "localhost" || ss[0].NASID != "hostapd-e2e" {
				t.Fatalf("session %+v", ss[0])
			}
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no accounting session from hostapd:\n%s", tail(hw.String()))
}
