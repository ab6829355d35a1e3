package pdp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2868"
	"layeh.com/radius/rfc2869"

	tradius "trustnac/transport/radius"
)

// The benchmarks here drive the MAB and PAP paths of RADIUS the way
// testbed/radius-bench does: the lab policy, a bbolt store, 1000 distinct
// MACs (02:00:00:00:00:01 is in the demo-terminal group, the others get
// mab_default), and alice in the users file.

const (
	benchSecret = "testing123"
	benchMACs   = 1000
)

// benchLab is a RADIUS handler set up like `nac pdp` in the benchmark.
type benchLab struct {
	r       *RADIUS
	store   *BoltStore
	policy  *PolicySource
	polPath string
}

func newBenchLab(tb testing.TB, cfg RADIUSConfig) *benchLab {
	tb.Helper()
	dir := tb.TempDir()
	pol, err := os.ReadFile("../policies/examples/lab.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	pol = append(pol, "\nauth_default: {role: deny}\n"...)
	l := &benchLab{polPath: filepath.Join(dir, "lab.yaml")}
	usersPath := filepath.Join(dir, "users.yaml")
	if err := os.WriteFile(l.polPath, pol, 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(usersPath, []byte("users:\n  alice: \""+HashNT("alice-password")+"\"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	if l.policy, err = LoadPolicySource(l.polPath, nil); err != nil {
		tb.Fatal(err)
	}
	users, err := LoadUsers(usersPath)
	if err != nil {
		tb.Fatal(err)
	}
	if l.store, err = OpenBoltStore(filepath.Join(dir, "pdp.db"), false, time.Second); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.store.Close() })
	cfg.TNCS = NewTNCS(TNCSConfig{Policy: l.policy, Store: l.store})
	cfg.Policy, cfg.Store, cfg.Users = l.policy, l.store, users
	l.r = NewRADIUS(cfg)
	tb.Cleanup(l.r.Close)
	return l
}

// benchRADIUS is the handler of a benchLab.
func benchRADIUS(tb testing.TB) *RADIUS { return newBenchLab(tb, RADIUSConfig{}).r }

// benchMAC returns MAC number k (0-based) of the benchmark as switches
// send it in MAB: bare for User-Name and User-Password, IETF form for
// Calling-Station-Id.
func benchMAC(k int) (bare, ietf string) {
	m := uint64(0x020000000001) + uint64(k%benchMACs)
	bare = fmt.Sprintf("%012x", m)
	ietf = fmt.Sprintf("%02X-%02X-%02X-%02X-%02X-%02X", byte(m>>40), byte(m>>32), byte(m>>24), byte(m>>16), byte(m>>8), byte(m))
	return bare, ietf
}

// benchPacket is an Access-Request as radload sends it: NAS-IP-Address,
// NAS-Port-Type Ethernet, Service-Type, Calling-Station-Id, User-Name and
// User-Password.
func benchPacket(tb testing.TB, mab bool, k int) *radius.Packet {
	bare, ietf := benchMAC(k)
	p := radius.New(radius.CodeAccessRequest, []byte(benchSecret))
	must := func(err error) {
		if err != nil {
			tb.Fatal(err)
		}
	}
	must(rfc2865.NASIPAddress_Set(p, net.IPv4(127, 0, 0, 1)))
	must(rfc2865.NASPortType_Set(p, rfc2865.NASPortType_Value_Ethernet))
	must(rfc2865.CallingStationID_SetString(p, ietf))
	if mab {
		must(rfc2865.ServiceType_Set(p, rfc2865.ServiceType_Value_CallCheck))
		must(rfc2865.UserName_SetString(p, bare))
		must(rfc2865.UserPassword_SetString(p, bare))
	} else {
		must(rfc2865.ServiceType_Set(p, rfc2865.ServiceType_Value_FramedUser))
		must(rfc2865.UserName_SetString(p, "alice"))
		must(rfc2865.UserPassword_SetString(p, "alice-password"))
	}
	return p
}

// benchRequests returns the verified requests of the benchmark, parsed from
// their wire form as the server parses them.
func benchRequests(tb testing.TB, mab bool) []*tradius.Request {
	client := &tradius.ClientConfig{Name: "local", Network: netip.MustParsePrefix("127.0.0.1/32"), Secret: []byte(benchSecret)}
	reqs := make([]*tradius.Request, benchMACs)
	for k := range reqs {
		b, err := tradius.EncodeRequest(benchPacket(tb, mab, k))
		if err != nil {
			tb.Fatal(err)
		}
		p, err := radius.Parse(b, client.Secret)
		if err != nil {
			tb.Fatal(err)
		}
		reqs[k] = &tradius.Request{Packet: p, Client: client, Remote: netip.MustParseAddrPort("127.0.0.1:40000"), Received: time.Now()}
	}
	return reqs
}

// checkBenchReply fails unless reply is what radload expects for request k.
func checkBenchReply(reply *radius.Packet, mab bool, k int) error {
	if reply == nil || reply.Code != radius.CodeAccessAccept {
		return fmt.Errorf("request %d: reply %v, want Access-Accept", k, reply)
	}
	want := "admit"
	if mab && k%benchMACs != 0 {
		want = "assess"
	}
	if got := rfc2865.FilterID_GetString(reply); got != want {
		return fmt.Errorf("request %d: Filter-Id %q, want %q", k, got, want)
	}
	return nil
}

func benchServe(b *testing.B, mab bool) {
	r := benchRADIUS(b)
	reqs := benchRequests(b, mab)
	ctx := context.Background()
	// Warm up: the first decision of each endpoint is stored (an fsync).
	for k, q := range reqs {
		if err := checkBenchReply(r.ServeRADIUS(ctx, q), mab, k); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	k := 0
	for b.Loop() {
		if err := checkBenchReply(r.ServeRADIUS(ctx, reqs[k]), mab, k); err != nil {
			b.Fatal(err)
		}
		k = (k + 1) % benchMACs
	}
}

// BenchmarkServeMAB measures the handler's work for one MAB request (the
// endpoint's decision already stored): parse, policy, posture look-up,
// audit, reply.
func BenchmarkServeMAB(b *testing.B) { benchServe(b, true) }

// BenchmarkServePAP measures the handler's work for one PAP request of a
// known user.
func BenchmarkServePAP(b *testing.B) { benchServe(b, false) }

// BenchmarkRADIUSLoopback measures the whole server over loopback UDP:
// tradius.Server with the RADIUS handler, tradius.Client sending from
// parallel goroutines (64 requests in flight on 2 CPUs), each request a
// fresh packet, every reply verified and checked.
func BenchmarkRADIUSLoopback(b *testing.B) {
	for _, mode := range []string{"mab", "pap"} {
		b.Run(mode, func(b *testing.B) {
			mab := mode == "mab"
			r := benchRADIUS(b)
			clients, err := tradius.NewClients([]tradius.ClientConfig{{Name: "local", Network: netip.MustParsePrefix("127.0.0.1/32"), Secret: []byte(benchSecret)}})
			if err != nil {
				b.Fatal(err)
			}
			srv := &tradius.Server{Clients: clients, Handler: r}
			pc, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- srv.Serve(pc) }()
			defer func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				srv.Shutdown(ctx)
				if err := <-done; !errors.Is(err, tradius.ErrServerClosed) {
					b.Error(err)
				}
			}()
			addr := pc.LocalAddr().String()
			client := &tradius.Client{Secret: []byte(benchSecret), Timeout: 5 * time.Second, Retries: -1}
			defer client.Close()
			ctx := context.Background()
			for k := range benchMACs {
				reply, err := client.Exchange(ctx, benchPacket(b, mab, k), addr)
				if err != nil {
					b.Fatal(err)
				}
				if err := checkBenchReply(reply, mab, k); err != nil {
					b.Fatal(err)
				}
			}
			var next atomic.Int64
			b.SetParallelism(32) // 64 in flight with GOMAXPROCS 2
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					k := int(next.Add(1)) % benchMACs
					reply, err := client.Exchange(ctx, benchPacket(b, mab, k), addr)
					if err == nil {
						err = checkBenchReply(reply, mab, k)
					}
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// The tests below check that the caches of the MAB and PAP paths change
// nothing but speed.

// referenceReply is the reply the handlers built before they had caches,
// with the layeh setters in the same order: the wire form must not change.
func referenceReply(req *radius.Packet, code radius.Code, role, filter string, vlan int, timeout time.Duration, identity, text string) *radius.Packet {
	resp := req.Response(code)
	if code == radius.CodeAccessAccept {
		rfc2865.FilterID_SetString(resp, filter)
		if vlan > 0 {
			rfc2868.TunnelType_Set(resp, 0, tunnelTypeVLAN)
			rfc2868.TunnelMediumType_Set(resp, 0, rfc2868.TunnelMediumType_Value_IEEE802)
			rfc2868.TunnelPrivateGroupID_SetString(resp, 0, strconv.Itoa(vlan))
		}
		rfc2865.Class_SetString(resp, "trustnac:"+role)
		if timeout > 0 {
			rfc2865.SessionTimeout_Set(resp, rfc2865.SessionTimeout(timeout/time.Second))
			rfc2865.TerminationAction_Set(resp, rfc2865.TerminationAction_Value_RADIUSRequest)
		}
		if identity != "" {
			rfc2865.UserName_SetString(resp, identity)
		}
	}
	if text != "" {
		rfc2865.ReplyMessage_SetString(resp, text)
	}
	return resp
}

func TestRepliesMatchReference(t *testing.T) {
	for _, timeout := range []time.Duration{0, time.Hour} {
		l := newBenchLab(t, RADIUSConfig{SessionTimeout: timeout})
		mab := benchRequests(t, true)
		pap := benchRequests(t, false)
		wrong := benchPacket(t, false, 3)
		rfc2865.UserPassword_SetString(wrong, "not-the-password")
		bad := benchRequests(t, false)[3]
		b, _ := tradius.EncodeRequest(wrong)
		bad.Packet, _ = radius.Parse(b, []byte(benchSecret))
		// A posture assessed over PT-TLS puts MAC 5 in isolate, whose
		// role has a Session-Timeout of its own.
		if err := l.r.cfg.Store.Put(&Record{ID: postureID("02:00:00:00:00:06"), MAC: "02:00:00:00:00:06", Channel: "pt-tls",
			Role: "isolate", Reasons: []string{"quote did not verify"}, DecidedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name           string
			req            *tradius.Request
			code           radius.Code
			role, filter   string
			vlan           int
			timeout        time.Duration
			identity, text string
		}{
			{"MAB known MAC", mab[0], radius.CodeAccessAccept, "admit", "admit", 10, timeout, "", ""},
			{"MAB other MAC", mab[1], radius.CodeAccessAccept, "assess", "assess", 20, timeout, "", "unknown MAC address: posture assessment required"},
			{"MAB with posture", mab[5], radius.CodeAccessAccept, "isolate", "isolate", 99, 300 * time.Second, "", "posture assessed over pt-tls"},
			{"PAP", pap[2], radius.CodeAccessAccept, "admit", "admit", 10, timeout, "alice", ""},
			{"PAP wrong password", bad, radius.CodeAccessReject, "", "", 0, 0, "", "authentication failed"},
		}
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s/timeout %v", tt.name, timeout), func(t *testing.T) {
				want, err := tradius.EncodeReply(referenceReply(tt.req.Packet, tt.code, tt.role, tt.filter, tt.vlan, tt.timeout, tt.identity, tt.text))
				if err != nil {
					t.Fatal(err)
				}
				for i := range 3 { // the first fills the caches
					reply := l.r.ServeRADIUS(context.Background(), tt.req)
					got, err := tradius.EncodeReply(reply)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, want) {
						t.Fatalf("round %d: reply\n%x\nwant\n%x", i, got, want)
					}
					// A caller changing its reply does not change the next.
					rfc2865.FilterID_SetString(reply, "changed")
					rfc2865.ReplyMessage_SetString(reply, "changed")
					reply.Attributes = append(reply.Attributes, &radius.AVP{Type: 26, Attribute: []byte("x")})
				}
			})
		}
	}
}

// TestPostureCacheFollowsWrites checks that a posture record written
// through the handler's store (as OnDecision and reassess write them) holds
// for the very next MAB request, even while other requests of the same MAC
// keep filling the cache.
func TestPostureCacheFollowsWrites(t *testing.T) {
	l := newBenchLab(t, RADIUSConfig{})
	reqs := benchRequests(t, true)
	const mac = "02:00:00:00:00:03" // reqs[2]
	filter := func() string {
		return rfc2865.FilterID_GetString(l.r.ServeRADIUS(context.Background(), reqs[2]))
	}
	if got := filter(); got != "assess" {
		t.Fatalf("before any posture: %s", got)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				l.r.ServeRADIUS(context.Background(), reqs[2])
			}
		}
	}()
	for i := range 50 {
		rec := &Record{ID: postureID(mac), MAC: mac, Channel: "pt-tls", Role: "admit", DecidedAt: time.Now()}
		want := "admit"
		switch i % 3 {
		case 1:
			rec.Role, want = "remediate", "remediate"
		case 2:
			rec.DecidedAt, want = time.Time{}, "assess" // stale, as reassess leaves it
		}
		if err := l.r.cfg.Store.Put(rec); err != nil {
			t.Fatal(err)
		}
		if got := filter(); got != want {
			t.Fatalf("write %d: Filter-Id %s, want %s", i, got, want)
		}
	}
	close(stop)
	<-done
}

// TestDecisionMemoFollowsPolicy checks that the memoised MAB and PAP
// decisions are those of the policy in force.
func TestDecisionMemoFollowsPolicy(t *testing.T) {
	l := newBenchLab(t, RADIUSConfig{})
	mab := benchRequests(t, true)
	pap := benchRequests(t, false)
	serve := func(q *tradius.Request) string {
		reply := l.r.ServeRADIUS(context.Background(), q)
		if reply.Code == radius.CodeAccessReject {
			return "deny"
		}
		return rfc2865.FilterID_GetString(reply)
	}
	if got := serve(mab[1]); got != "assess" {
		t.Fatalf("MAB before reload: %s", got)
	}
	if got := serve(pap[0]); got != "admit" {
		t.Fatalf("PAP before reload: %s", got)
	}
	pol, err := os.ReadFile(l.polPath)
	if err != nil {
		t.Fatal(err)
	}
	pol = bytes.Replace(pol, []byte(`macs: ["02:00:00:00:00:01"]`), []byte(`macs: ["02:00:00:00:00:01", "02-00-00-00-00-02"]`), 1)
	pol = bytes.Replace(pol, []byte(`identities: ["alice"]`), []byte(`identities: ["bob"]`), 1)
	if err := os.WriteFile(l.polPath, pol, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := l.policy.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := serve(mab[1]); got != "admit" {
		t.Errorf("MAB after reload: %s, want admit", got)
	}
	if got := serve(pap[0]); got != "deny" {
		t.Errorf("PAP after reload: %s, want deny (auth_default)", got)
	}
}

// TestParseNames checks the names parse derives, the first time and from
// the table.
func TestParseNames(t *testing.T) {
	r := NewRADIUS(RADIUSConfig{})
	defer r.Close()
	client := &tradius.ClientConfig{Name: "sw1", Secret: []byte(benchSecret)}
	long := strings.Repeat("x", 200)
	tests := []struct {
		name  string
		attrs func(p *radius.Packet)
		want  names
	}{
		{"MAB", func(p *radius.Packet) {
			rfc2865.UserName_SetString(p, "020000000001")
			rfc2865.CallingStationID_SetString(p, "02-00-00-00-00-01")
		}, names{user: "020000000001", station: "02-00-00-00-00-01", mac: "02:00:00:00:00:01", macID: "mac:02:00:00:00:00:01",
			nas: "sw1", remote: "sw1 ", mab: true}},
		{"user is another MAC", func(p *radius.Packet) {
			rfc2865.UserName_SetString(p, "020000000002")
			rfc2865.CallingStationID_SetString(p, "02-00-00-00-00-01")
		}, names{user: "020000000002", station: "02-00-00-00-00-01", mac: "02:00:00:00:00:01", macID: "mac:02:00:00:00:00:01",
			nas: "sw1", remote: "sw1 "}},
		{"NAS-Identifier and NAS-Port", func(p *radius.Packet) {
			rfc2865.UserName_SetString(p, "alice")
			rfc2865.NASIdentifier_SetString(p, "hv7")
			rfc2865.NASPort_Set(p, 4242)
		}, names{user: "alice", nas: "hv7", port: "4242", remote: "hv7 4242"}},
		{"NAS-Port-Id first", func(p *radius.Packet) {
			rfc2869.NASPortID_SetString(p, "ge-0/0/1")
			rfc2865.NASPort_Set(p, 7)
			rfc2865.CallingStationID_SetString(p, "not a mac")
		}, names{station: "not a mac", nas: "sw1", port: "ge-0/0/1", remote: "sw1 ge-0/0/1"}},
		{"too long to keep", func(p *radius.Packet) {
			rfc2865.UserName_SetString(p, long)
			rfc2865.CallingStationID_SetString(p, "0200.0000.0009")
		}, names{user: long, station: "0200.0000.0009", mac: "02:00:00:00:00:09", macID: "mac:02:00:00:00:00:09", nas: "sw1", remote: "sw1 "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := radius.New(radius.CodeAccessRequest, client.Secret)
			tt.attrs(p)
			for i := range 2 {
				q := r.parse(&tradius.Request{Packet: p, Client: client})
				if q.names != tt.want {
					t.Fatalf("round %d: %+v, want %+v", i, q.names, tt.want)
				}
			}
		})
	}
}
