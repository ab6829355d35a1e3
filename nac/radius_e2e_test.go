package nac

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2868"
	"layeh.com/radius/vendors/microsoft"

	"trustnac/pdp"
	tradius "trustnac/transport/radius"
)

// radiusLab is a PDP serving RADIUS on loopback with the example lab
// policy and alice's account, for the interoperability tests with the
// FreeRADIUS, hostapd and wpa_supplicant tools.
type radiusLab struct {
	t      *testing.T
	dir    string
	pdp    *PDP
	auth   string // host:port
	acct   string
	ca     string // PEM of the PDP's certificate (self-signed)
	secret string
}

func newRADIUSLab(t *testing.T, extra string) *radiusLab { return newRADIUSLabCoA(t, extra, 0) }

// newRADIUSLabCoA is newRADIUSLab with the NAS's CoA port set.
func newRADIUSLabCoA(t *testing.T, extra string, coaPort int) *radiusLab {
	t.Helper()
	dir := t.TempDir()
	copyFile(t, "../policies/examples/lab.yaml", filepath.Join(dir, "lab.yaml"))
	writeFile(t, filepath.Join(dir, "users.yaml"), "users:\n  alice: \""+pdp.HashNT("alice-password")+"\"\n")
	writeFile(t, filepath.Join(dir, "pdp.yaml"), `
state_dir: state
policy: lab.yaml
pttls:
  listen: 127.0.0.1:0
  handshake_timeout: 5s
api:
  listen: "off"
radius:
  auth_listen: 127.0.0.1:0
  acct_listen: 127.0.0.1:0
  clients:
    - {name: localhost, network: 127.0.0.1/32, secret: testing123, coa_port: `+fmt.Sprint(coaPort)+`}
  users_file: users.yaml
  session_timeout: 1h
  eap:
    timeout: 5s
`+extra)
	cfg, err := LoadPDPConfig(filepath.Join(dir, "pdp.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	p := NewPDP(cfg, testLogger(t))
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p.Stop(ctx)
	})
	return &radiusLab{t: t, dir: dir, pdp: p, auth: p.RADIUSAuthAddr().String(), acct: p.RADIUSAcctAddr().String(),
		ca: cfg.RADIUS.EAP.Cert, secret: "testing123"}
}

func needTool(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is not installed (scripts/install-deps.sh installs it)", n)
			}
			t.Skipf("%s is not installed", n)
		}
	}
}

// radclient sends one request with FreeRADIUS's radclient and returns its
// output and whether a reply came.
func (l *radiusLab) radclient(code, addr, secret, attrs string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "radclient", "-x", "-r", "1", "-t", "2", addr, code, secret)
	cmd.Stdin = strings.NewReader(attrs + "\n")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestRADIUSWithRadclient(t *testing.T) {
	needTool(t, "radclient")
	l := newRADIUSLab(t, "")
	const ma = ",Message-Authenticator=0x00"
	tests := []struct {
		name, code, secret, attrs string
		reply                     bool     // a reply is expected
		want                      []string // in radclient's output
		not                       []string
	}{
		{"PAP alice", "auth", "testing123", "User-Name=alice,User-Password=alice-password" + ma, true,
			[]string{"Access-Accept", `Filter-Id = "admit"`, "Tunnel-Private-Group-Id:0 = \"10\"", "Tunnel-Type:0 = VLAN", "Session-Timeout = 3600"}, nil},
		{"PAP wrong password", "auth", "testing123", "User-Name=alice,User-Password=wrong" + ma, true,
			[]string{"Access-Reject", "Reply-Message"}, []string{"Filter-Id"}},
		{"PAP unknown user", "auth", "testing123", "User-Name=bob,User-Password=alice-password" + ma, true,
			[]string{"Access-Reject"}, nil},
		{"MAB known MAC", "auth", "testing123",
			"User-Name=020000000001,User-Password=020000000001,Calling-Station-Id=02-00-00-00-00-01,Service-Type=Call-Check" + ma, true,
			[]string{"Access-Accept", `Filter-Id = "admit"`, `Tunnel-Private-Group-Id:0 = "10"`}, nil},
		{"MAB other MAC", "auth", "testing123",
			"User-Name=02:00:00:00:00:99,User-Password=02:00:00:00:00:99,Calling-Station-Id=02:00:00:00:00:99" + ma, true,
			[]string{"Access-Accept", `Filter-Id = "assess"`, `Tunnel-Private-Group-Id:0 = "20"`}, nil},
		{"no Message-Authenticator", "auth", "testing123", "User-Name=alice,User-Password=alice-password", false, nil, nil},
		{"no Message-Authenticator with Proxy-State", "auth", "testing123", "User-Name=alice,User-Password=alice-password,Proxy-State=0x01", false, nil, nil},
		{"wrong secret", "auth", "wrong-secret", "User-Name=alice,User-Password=alice-password" + ma, false, nil, nil},
		{"Status-Server", "status", "testing123", "Message-Authenticator=0x00", true, []string{"Access-Accept"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := l.radclient(tt.code, l.auth, tt.secret, tt.attrs)
			if got := strings.Contains(out, "Received "); got != tt.reply {
				t.Fatalf("reply expected %v; radclient: %v\n%s", tt.reply, err, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tt.not {
				if strings.Contains(out, w) {
					t.Errorf("output has %q:\n%s", w, out)
				}
			}
		})
	}
	st := l.pdp.RADIUS().Stats()
	if st["mab"] != 2 || st["pap"] != 3 {
		t.Errorf("stats %v", st)
	}
}

func TestRADIUSAccountingSessions(t *testing.T) {
	needTool(t, "radclient")
	l := newRADIUSLab(t, "")
	start := "Acct-Status-Type=Start,Acct-Session-Id=s-1,Calling-Station-Id=02-00-00-00-00-09,User-Name=020000000009,NAS-IP-Address=127.0.0.1,NAS-Port-Id=port9,Framed-IP-Address=10.9.0.9,Class=trustnac:assess"
	if out, err := l.radclient("acct", l.acct, l.secret, start); err != nil || !strings.Contains(out, "Accounting-Response") {
		t.Fatalf("Start: %v\n%s", err, out)
	}
	ss := l.pdp.RADIUS().Sessions().Find("02:00:00:00:00:09", netipMust("10.9.0.9"))
	if len(ss) != 1 || ss[0].Port != "port9" || ss[0].Role != "assess" || ss[0].NAS != "localhost" {
		t.Fatalf("sessions after Start: %+v", ss)
	}
	if out, err := l.radclient("acct", l.acct, "wrong", strings.Replace(start, "s-1", "s-2", 1)); err == nil {
		t.Fatalf("accounting with a wrong secret answered:\n%s", out)
	}
	if out, err := l.radclient("acct", l.acct, l.secret, "Acct-Status-Type=Stop,Acct-Session-Id=s-1,Calling-Station-Id=02-00-00-00-00-09"); err != nil {
		t.Fatalf("Stop: %v\n%s", err, out)
	}
	if ss := l.pdp.RADIUS().Sessions().All(); len(ss) != 0 {
		t.Fatalf("sessions after Stop: %+v", ss)
	}
}

// eapolTest runs wpa_supplicant's eapol_test against the PDP and returns
// its output.
func (l *radiusLab) eapolTest(t *testing.T, network string) (string, error) {
	t.Helper()
	conf := filepath.Join(t.TempDir(), "eapol.conf")
	writeFile(t, conf, "network={\n"+network+"\n}\n")
	host, port, _ := net.SplitHostPort(l.auth)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "eapol_test", "-c", conf, "-a", host, "-p", port, "-s", l.secret, "-r", "0", "-t", "20",
		"-M", "02:00:00:00:00:42")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestRADIUSWithEapolTest(t *testing.T) {
	needTool(t, "eapol_test")
	l := newRADIUSLab(t, "")
	base := fmt.Sprintf("key_mgmt=IEEE8021X\neap=TTLS\nidentity=\"alice\"\nanonymous_identity=\"anonymous\"\npassword=\"alice-password\"\nca_cert=%q\n", l.ca)
	tests := []struct {
		name, network string
		ok            bool
	}{
		{"TTLS/PAP TLS 1.2", base + "phase2=\"auth=PAP\"\nphase1=\"tls_disable_tlsv1_3=1\"", true},
		{"TTLS/PAP TLS 1.3", base + "phase2=\"auth=PAP\"\nphase1=\"tls_disable_tlsv1_3=0\"", true},
		{"TTLS/EAP-MSCHAPv2", base + "phase2=\"autheap=MSCHAPV2\"", true},
		{"TTLS/PAP wrong password", strings.Replace(base, "alice-password", "nope", 1) + "phase2=\"auth=PAP\"", false},
		{"TTLS/EAP-MSCHAPv2 wrong password", strings.Replace(base, "alice-password", "nope", 1) + "phase2=\"autheap=MSCHAPV2\"", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := l.eapolTest(t, tt.network)
			if !tt.ok {
				if err == nil || strings.Contains(out, "\nSUCCESS") {
					t.Fatalf("eapol_test succeeded with a wrong password:\n%s", tail(out))
				}
				return
			}
			if err != nil || !strings.Contains(out, "\nSUCCESS") {
				t.Fatalf("eapol_test: %v\n%s", err, tail(out))
			}
			accept := out[strings.LastIndex(out, "(Access-Accept)"):]
			for _, w := range []string{"MPPE keys OK: 1  mismatch: 0", "Attribute 11 ", "Attribute 81 (Tunnel-Private-Group-Id) length=5"} {
				if !strings.Contains(accept, w) {
					t.Errorf("eapol_test output lacks %q\n%s", w, tail(out))
				}
			}
			rec, err := l.pdp.Store().Get("mac:02:00:00:00:00:42")
			if err != nil || rec.Role != "admit" || rec.Identity != "alice" {
				t.Fatalf("record %+v, %v", rec, err)
			}
		})
	}
}

func tail(s string) string {
	const n = 6000
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

func netipMust(s string) netip.Addr { return netip.MustParseAddr(s) }

// TestAgentPostureInsideEAPTTLS runs our own agent as the TNC client inside
// EAP-TTLS, relayed over RADIUS as a switch would: the posture decides the
// role of the Access-Accept.
func TestAgentPostureInsideEAPTTLS(t *testing.T) {
	l := newRADIUSLab(t, "")
	client := &tradius.Client{Secret: []byte(l.secret), Timeout: 5 * time.Second}
	defer client.Close()
	tests := []struct {
		name, fixture, identity, password string
		mac                               string
		code                              radius.Code
		filter, vlan                      string
		recIdentity                       string
	}{
		{"healthy terminal", "healthy", "", "", "02:00:00:00:10:01", radius.CodeAccessAccept, "admit", "10", ""},
		{"telnet listening", "telnet", "", "", "02:00:00:00:10:02", radius.CodeAccessAccept, "remediate", "30", ""},
		{"outdated", "outdated", "", "", "02:00:00:00:10:03", radius.CodeAccessAccept, "isolate", "99", ""},
		{"healthy with MSCHAPv2 first", "healthy", "alice", "alice-password", "02:00:00:00:10:04", radius.CodeAccessAccept, "admit", "10", "alice"},
		{"wrong password", "healthy", "alice", "nope", "02:00:00:00:10:05", radius.CodeAccessReject, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &AgentConfig{
				PDP:        AgentPDPConfig{Pin: l.pdp.Fingerprint},
				Identity:   tt.identity,
				Password:   tt.password,
				Collectors: CollectorsConfig{OS: &OSCollectorConfig{Root: fixture(tt.fixture)}},
			}
			cfg.SetDefaults()
			agent, err := NewAgentEAP(cfg, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			defer agent.Close()
			conv := &tradius.EAPConversation{Client: client, Addr: l.auth, Request: func() *radius.Packet {
				p := radius.New(radius.CodeAccessRequest, []byte(l.secret))
				rfc2865.UserName_SetString(p, "anonymous")
				rfc2865.CallingStationID_SetString(p, strings.ReplaceAll(tt.mac, ":", "-"))
				rfc2865.NASPortType_Set(p, rfc2865.NASPortType_Value_Ethernet)
				return p
			}}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			res, err := conv.Run(ctx, agent.Peer)
			if tt.code == radius.CodeAccessReject {
				if !errors.Is(err, tradius.ErrEAPRejected) {
					t.Fatalf("want Access-Reject, got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := rfc2865.FilterID_GetString(res.Reply); got != tt.filter {
				t.Errorf("Filter-Id %q, want %q", got, tt.filter)
			}
			if _, got := rfc2868.TunnelPrivateGroupID_GetString(res.Reply); got != tt.vlan {
				t.Errorf("VLAN %q, want %q", got, tt.vlan)
			}
			if o, ok := agent.Outcome(); !ok || o.Role != tt.filter {
				t.Errorf("agent outcome %+v %v, want %s", o, ok, tt.filter)
			}
			recv, err := microsoft.MSMPPERecvKey_Lookup(res.Reply, res.Request)
			if err != nil || !bytes.Equal(recv[:32], agent.MSK()[:32]) {
				t.Errorf("MS-MPPE-Recv-Key does not match the agent's MSK: %v", err)
			}
			rec, err := l.pdp.Store().Get("mac:" + tt.mac)
			if err != nil || rec.Role != tt.filter || rec.Channel != "eap" || rec.Identity != tt.recIdentity || rec.Facts["os"] == nil {
				t.Fatalf("record %+v, %v", rec, err)
			}
		})
	}
}

func netipPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// TestRADIUSBadEAP sends EAP the PDP must refuse: lying lengths, a State
// it never issued, a conversation that stalls until its State expires,
// and more conversations than it keeps.
func TestRADIUSBadEAP(t *testing.T) {
	l := newRADIUSLab(t, "")
	client := &tradius.Client{Secret: []byte(l.secret), Timeout: 2 * time.Second}
	defer client.Close()
	ctx := context.Background()
	send := func(eapMsg, state []byte) (*radius.Packet, error) {
		p := radius.New(radius.CodeAccessRequest, []byte(l.secret))
		rfc2865.UserName_SetString(p, "x")
		rfc2865.CallingStationID_SetString(p, "02-00-00-00-00-55")
		tradius.SetEAPMessage(p, eapMsg)
		if state != nil {
			rfc2865.State_Set(p, state)
		}
		return client.Exchange(ctx, p, l.auth)
	}
	identity := []byte{2, 1, 0, 6, 1, 'x'}
	for name, msg := range map[string][]byte{
		"length beyond the packet": {2, 1, 0, 60, 1, 'x'},
		"length below the header":  {2, 1, 0, 2, 1, 'x'},
		"not an Identity first":    {2, 1, 0, 6, 21, 0},
	} {
		reply, err := send(msg, nil)
		if err != nil || reply.Code != radius.CodeAccessReject {
			t.Errorf("%s: %v %v, want Access-Reject", name, reply, err)
		}
	}
	reply, err := send(identity, []byte("tn-never-issued-state"))
	if err != nil || reply.Code != radius.CodeAccessReject {
		t.Errorf("unknown State: %v %v", reply, err)
	}
	// A conversation that stalls: the State expires after eap.timeout (5s
	// in this lab) and a late answer is refused.
	reply, err = send(identity, nil)
	if err != nil || reply.Code != radius.CodeAccessChallenge {
		t.Fatalf("Identity: %v %v", reply, err)
	}
	state := rfc2865.State_Get(reply)
	deadline := time.Now().Add(15 * time.Second)
	for l.pdp.RADIUS().Stats()["eap_expired"] == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("conversation never expired: %v", l.pdp.RADIUS().Stats())
		}
		time.Sleep(200 * time.Millisecond)
	}
	msg, _ := tradius.EAPMessage(reply)
	reply, err = send([]byte{2, msg[1], 0, 6, 21, 0}, state)
	if err != nil || reply.Code != radius.CodeAccessReject {
		t.Errorf("answer after expiry: %v %v", reply, err)
	}
}

func TestRADIUSConversationCap(t *testing.T) {
	l := newRADIUSLab(t, "    max_sessions: 3\n")
	client := &tradius.Client{Secret: []byte(l.secret), Timeout: 2 * time.Second}
	defer client.Close()
	codes := map[radius.Code]int{}
	for i := 0; i < 5; i++ {
		p := radius.New(radius.CodeAccessRequest, []byte(l.secret))
		rfc2865.CallingStationID_SetString(p, fmt.Sprintf("02-00-00-00-01-%02x", i))
		tradius.SetEAPMessage(p, []byte{2, 1, 0, 6, 1, 'x'})
		reply, err := client.Exchange(context.Background(), p, l.auth)
		if err != nil {
			t.Fatal(err)
		}
		codes[reply.Code]++
	}
	if codes[radius.CodeAccessChallenge] != 3 || codes[radius.CodeAccessReject] != 2 {
		t.Fatalf("replies %v, want 3 challenges and 2 rejects", codes)
	}
}
