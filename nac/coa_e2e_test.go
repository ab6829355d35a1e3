package nac

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
	"layeh.com/radius/rfc2868"
	"layeh.com/radius/rfc3576"

	tradius "trustnac/transport/radius"
)

// fakeNAS is a RADIUS Dynamic Authorization server (RFC 5176) standing in
// for a switch: it records the CoA and Disconnect requests it gets and
// answers as told.
type fakeNAS struct {
	mu   sync.Mutex
	got  []*radius.Packet
	nak  func(p *radius.Packet) rfc3576.ErrorCause // 0: ACK
	port int
	ch   chan struct{}
}

func startFakeNAS(t *testing.T, secret string) *fakeNAS {
	t.Helper()
	f := &fakeNAS{ch: make(chan struct{}, 16)}
	clients, err := tradius.NewClients([]tradius.ClientConfig{{Name: "pdp", Network: netipPrefix("127.0.0.1/32"), Secret: []byte(secret)}})
	if err != nil {
		t.Fatal(err)
	}
	srv := &tradius.Server{
		Clients: clients,
		Codes:   []radius.Code{radius.CodeCoARequest, radius.CodeDisconnectRequest},
		Handler: tradius.HandlerFunc(func(ctx context.Context, r *tradius.Request) *radius.Packet {
			f.mu.Lock()
			f.got = append(f.got, r.Packet)
			nak := f.nak
			f.mu.Unlock()
			defer func() { f.ch <- struct{}{} }()
			ack, nakCode := radius.CodeCoAACK, radius.CodeCoANAK
			if r.Packet.Code == radius.CodeDisconnectRequest {
				ack, nakCode = radius.CodeDisconnectACK, radius.CodeDisconnectNAK
			}
			if nak != nil {
				if cause := nak(r.Packet); cause != 0 {
					resp := r.Packet.Response(nakCode)
					rfc3576.ErrorCause_Set(resp, cause)
					return resp
				}
			}
			return r.Packet.Response(ack)
		}),
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.port = pc.LocalAddr().(*net.UDPAddr).Port
	go srv.Serve(pc)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	return f
}

// wait returns the requests received once there are n of them.
func (f *fakeNAS) wait(t *testing.T, n int) []*radius.Packet {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		f.mu.Lock()
		got := append([]*radius.Packet(nil), f.got...)
		f.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-f.ch:
		case <-deadline:
			t.Fatalf("the NAS got %d requests, want %d", len(got), n)
		}
	}
}

// TestCoAAfterPostureAndPolicyChange follows a device the switch admitted
// by MAB into `assess`: its agent's posture assessment over PT-TLS admits it
// and the PDP moves its session by CoA; later a policy change isolates a
// MAB device, the NAS refuses the CoA and the PDP disconnects it instead.
func TestCoAAfterPostureAndPolicyChange(t *testing.T) {
	needTool(t, "radclient")
	nas := startFakeNAS(t, "testing123")
	l := newRADIUSLabCoA(t, "", nas.port)
	const ma = ",Message-Authenticator=0x00"

	// 1. MAB: unknown MAC → assess; the switch starts accounting.
	out, err := l.radclient("auth", l.auth, l.secret, "User-Name=02:00:00:00:00:31,User-Password=02:00:00:00:00:31,Calling-Station-Id=02:00:00:00:00:31"+ma)
	if !strings.Contains(out, `Filter-Id = "assess"`) {
		t.Fatalf("MAB: %v\n%s", err, out)
	}
	start := "Acct-Status-Type=Start,Acct-Session-Id=sess-31,Calling-Station-Id=02:00:00:00:00:31,NAS-IP-Address=127.0.0.1,NAS-Identifier=sw1,NAS-Port-Id=Gi1/0/31,Framed-IP-Address=127.0.0.1,Class=trustnac:assess"
	if out, err := l.radclient("acct", l.acct, l.secret, start); err != nil {
		t.Fatalf("accounting: %v\n%s", err, out)
	}

	// 2. The device's agent proves its posture over PT-TLS from 127.0.0.1.
	cfg := &AgentConfig{
		PDP:        AgentPDPConfig{Address: l.pdp.PTTLSAddr().String(), Pin: l.pdp.Fingerprint},
		Timeout:    Duration(10 * time.Second),
		Collectors: CollectorsConfig{OS: &OSCollectorConfig{Root: fixture("healthy")}},
	}
	cfg.SetDefaults()
	o, err := RunAgent(context.Background(), cfg, testLogger(t))
	if err != nil || o.Role != "admit" {
		t.Fatalf("agent: %+v %v", o, err)
	}
	got := nas.wait(t, 1)
	coa := got[0]
	if coa.Code != radius.CodeCoARequest || rfc2865.FilterID_GetString(coa) != "admit" ||
		rfc2866.AcctSessionID_GetString(coa) != "sess-31" || rfc2865.CallingStationID_GetString(coa) != "02:00:00:00:00:31" {
		t.Fatalf("CoA %v: Filter-Id %q session %q station %q", coa.Code, rfc2865.FilterID_GetString(coa),
			rfc2866.AcctSessionID_GetString(coa), rfc2865.CallingStationID_GetString(coa))
	}
	if _, vlan := rfc2868.TunnelPrivateGroupID_GetString(coa); vlan != "10" {
		t.Errorf("CoA VLAN %q, want 10", vlan)
	}
	waitSessionRole(t, l, "02:00:00:00:00:31", "admit")
	// The switch re-authenticates the device by MAB: the posture holds.
	out, _ = l.radclient("auth", l.auth, l.secret, "User-Name=02:00:00:00:00:31,User-Password=02:00:00:00:00:31,Calling-Station-Id=02:00:00:00:00:31"+ma)
	if !strings.Contains(out, `Filter-Id = "admit"`) {
		t.Fatalf("MAB re-authentication after posture:\n%s", out)
	}

	// 3. The demo terminal is admitted by MAB and holds a session.
	out, _ = l.radclient("auth", l.auth, l.secret, "User-Name=020000000001,User-Password=020000000001,Calling-Station-Id=02-00-00-00-00-01"+ma)
	if !strings.Contains(out, `Filter-Id = "admit"`) {
		t.Fatalf("MAB demo terminal:\n%s", out)
	}
	if out, err := l.radclient("acct", l.acct, l.secret, strings.NewReplacer("sess-31", "sess-01", "02:00:00:00:00:31", "02-00-00-00-00-01", "Framed-IP-Address=127.0.0.1,", "", "assess", "admit").Replace(start)); err != nil {
		t.Fatalf("accounting: %v\n%s", err, out)
	}
	// The NAS cannot change a session's VLAN in place: it NAKs, and the PDP
	// disconnects instead.
	nas.mu.Lock()
	nas.nak = func(p *radius.Packet) rfc3576.ErrorCause {
		if p.Code == radius.CodeCoARequest {
			return rfc3576.ErrorCause_Value_UnsupportedAttribute
		}
		return 0
	}
	nas.mu.Unlock()
	pol, err := os.ReadFile(filepath.Join(l.dir, "lab.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(string(pol), `macs: ["02:00:00:00:00:01"]
    mab_role: admit`, `macs: ["02:00:00:00:00:01"]
    mab_role: isolate`, 1)
	if changed == string(pol) {
		t.Fatal("policy edit did not apply")
	}
	writeFile(t, filepath.Join(l.dir, "lab.yaml"), changed)
	if err := l.pdp.Policy().Reload(); err != nil {
		t.Fatal(err)
	}
	got = nas.wait(t, 3)
	if got[1].Code != radius.CodeCoARequest || rfc2865.FilterID_GetString(got[1]) != "isolate" || rfc2866.AcctSessionID_GetString(got[1]) != "sess-01" {
		t.Fatalf("second request %v %q", got[1].Code, rfc2865.FilterID_GetString(got[1]))
	}
	if got[2].Code != radius.CodeDisconnectRequest || rfc2866.AcctSessionID_GetString(got[2]) != "sess-01" {
		t.Fatalf("third request %v, want Disconnect-Request for sess-01", got[2].Code)
	}
	waitSessionRole(t, l, "02:00:00:00:00:01", "isolate")
	rec, err := l.pdp.Store().Get("mac:02:00:00:00:00:01")
	if err != nil || rec.Role != "isolate" {
		t.Fatalf("record after policy change: %+v %v", rec, err)
	}
	if st := l.pdp.RADIUS().Stats(); st["coa"] != 3 || st["coa_failed"] != 0 {
		t.Errorf("stats %v", st)
	}
}

func waitSessionRole(t *testing.T, l *radiusLab, mac, role string) {
	t.Helper()
	for i := 0; i < 100; i++ {
		if ss := l.pdp.RADIUS().Sessions().Find(mac, netipMust("0.0.0.0")); len(ss) == 1 && ss[0].Role == role {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("session of %s never got role %s: %+v", mac, role, l.pdp.RADIUS().Sessions().All())
}
