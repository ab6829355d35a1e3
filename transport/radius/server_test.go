package radius

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	radius "layeh.com/radius"
	"layeh.com/radius/rfc2865"
)

const noReplyWait = 30 * time.Millisecond

func TestServerAccessRequest(t *testing.T) {
	h := &counting{h: accept}
	s := &Server{Handler: h}
	addr := startServer(t, s)
	c := rawConn(t, "127.0.0.1:0", addr)

	req := buildRequest(radius.CodeAccessRequest, 17, authOf("access-request-1"),
		[]attr{{1, []byte("alice")}, {33, []byte("ps-1")}, {33, []byte("ps-2")}}, buildOpts{maLast: true})
	send(t, c, req)
	reply := recv(t, c, 2*time.Second)
	if reply == nil {
		t.Fatal("no reply")
	}
	checkReply(t, reply, req, testSecret)
	if radius.Code(reply[0]) != radius.CodeAccessAccept {
		t.Errorf("reply code %d", reply[0])
	}
	if ps := refAttrs(reply, 33); len(ps) != 2 || string(ps[0]) != "ps-1" || string(ps[1]) != "ps-2" {
		t.Errorf("Proxy-State not copied in order: %q", ps)
	}
	if rm := refAttrs(reply, 18); len(rm) != 1 || string(rm[0]) != "welcome" {
		t.Errorf("handler's attribute missing: %q", rm)
	}
	if h.n() != 1 {
		t.Fatalf("handler called %d times", h.n())
	}
	r := h.req(0)
	if got := rfc2865.UserName_GetString(r.Packet); got != "alice" {
		t.Errorf("User-Name %q", got)
	}
	if r.Client.Name != "nas" || r.Remote.Addr().String() != "127.0.0.1" || r.Local == nil || r.Received.IsZero() {
		t.Errorf("request metadata: %+v", r)
	}
	if !bytes.Equal(r.Packet.Secret, testSecret) {
		t.Error("request packet has no secret")
	}
	waitStat(t, s, "replied", 1)
	waitStat(t, s, "received", 1)
}

func TestServerProxyStateNotDuplicated(t *testing.T) {
	h := HandlerFunc(func(ctx context.Context, r *Request) *radius.Packet {
		p := r.Packet.Response(radius.CodeAccessReject)
		p.Add(33, radius.Attribute("handler-set"))
		return p
	})
	addr := startServer(t, &Server{Handler: h})
	c := rawConn(t, "127.0.0.1:0", addr)
	req := buildRequest(radius.CodeAccessRequest, 1, authOf("ps"), []attr{{33, []byte("from-nas")}}, buildOpts{})
	send(t, c, req)
	reply := recv(t, c, 2*time.Second)
	checkReply(t, reply, req, testSecret)
	if ps := refAttrs(reply, 33); len(ps) != 1 || string(ps[0]) != "handler-set" {
		t.Errorf("Proxy-State = %q, want the handler's only", ps)
	}
}

// TestServerDrops sends datagrams that must be dropped silently and checks
// the counter that says why.
func TestServerDrops(t *testing.T) {
	auth := authOf("drop-test-auth-0")
	valid := buildRequest(radius.CodeAccessRequest, 5, auth, []attr{{1, []byte("u")}}, buildOpts{})
	tests := []struct {
		name    string
		local   string // source address; default 127.0.0.1
		b       []byte
		counter string
	}{
		{"missing MA", "", buildRequest(radius.CodeAccessRequest, 1, auth, []attr{{1, []byte("u")}}, buildOpts{noMA: true}), "missing_message_authenticator"},
		{"missing MA with Proxy-State", "", buildRequest(radius.CodeAccessRequest, 1, auth, []attr{{33, []byte("p")}}, buildOpts{noMA: true}), "missing_message_authenticator"},
		{"missing MA with EAP", "", buildRequest(radius.CodeAccessRequest, 1, auth, []attr{{79, []byte{2, 0, 0, 5, 1}}}, buildOpts{noMA: true}), "missing_message_authenticator"},
		{"bad MA", "", buildRequest(radius.CodeAccessRequest, 1, auth, nil, buildOpts{badMA: true}), "bad_message_authenticator"},
		{"wrong secret", "", buildRequest(radius.CodeAccessRequest, 1, auth, nil, buildOpts{secret: []byte("lab-secret")}), "bad_message_authenticator"},
		{"two MAs", "", buildRequest(radius.CodeAccessRequest, 1, auth, nil, buildOpts{twoMA: true}), "malformed"},
		{"unknown client", "127.0.0.2:0", valid, "unknown_client"},
		{"short", "", valid[:19], "malformed"},
		{"Length below 20", "", withLength(valid, 12), "malformed"},
		{"Length beyond datagram", "", withLength(valid, len(valid)+4), "malformed"},
		{"oversized datagram", "", append(bytes.Clone(valid), make([]byte, 4097-len(valid))...), "malformed"},
		{"Length over 4096", "", withLength(append(bytes.Clone(valid), make([]byte, 4100-len(valid))...), 4100), "malformed"},
		{"attribute length 1", "", append(withLength(valid, len(valid)+2), 1, 1), "malformed"},
		{"attribute overruns", "", append(withLength(valid, len(valid)+3), 1, 9, 0), "malformed"},
		{"accounting to auth server", "", buildRequest(radius.CodeAccountingRequest, 1, auth, nil, buildOpts{}), "unsupported_code"},
		{"reply code", "", buildRequest(radius.CodeAccessAccept, 1, auth, nil, buildOpts{}), "unsupported_code"},
		{"code 0", "", buildRequest(0, 1, auth, nil, buildOpts{}), "unsupported_code"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &counting{h: accept}
			s := &Server{Handler: h}
			addr := startServer(t, s)
			local := tt.local
			if local == "" {
				local = "127.0.0.1:0"
			}
			c := rawConn(t, local, addr)
			send(t, c, tt.b)
			waitStat(t, s, tt.counter, 1)
			if r := recv(t, c, noReplyWait); r != nil {
				t.Fatalf("got a reply: % x", r)
			}
			if h.n() != 0 {
				t.Errorf("handler called")
			}
			snap := s.Snapshot()
			if snap["replied"] != 0 || snap["received"] != 1 {
				t.Errorf("counters: %v", snap)
			}
		})
	}
}

func TestServerTrailingOctetsIgnored(t *testing.T) {
	h := &counting{h: accept}
	addr := startServer(t, &Server{Handler: h})
	c := rawConn(t, "127.0.0.1:0", addr)
	req := buildRequest(radius.CodeAccessRequest, 2, authOf("trailing"), nil, buildOpts{trailing: []byte("padding")})
	send(t, c, req)
	reply := recv(t, c, 2*time.Second)
	if reply == nil {
		t.Fatal("no reply")
	}
	checkReply(t, reply, req[:len(req)-7], testSecret)
}

func TestServerRetransmission(t *testing.T) {
	h := &counting{h: accept}
	s := &Server{Handler: h}
	addr := startServer(t, s)
	c := rawConn(t, "127.0.0.1:0", addr)
	req := buildRequest(radius.CodeAccessRequest, 33, authOf("retransmit-auth1"), []attr{{1, []byte("x")}}, buildOpts{})

	send(t, c, req)
	first := recv(t, c, 2*time.Second)
	send(t, c, req)
	second := recv(t, c, 2*time.Second)
	if first == nil || !bytes.Equal(first, second) {
		t.Fatalf("retransmission answered differently:\n% x\n% x", first, second)
	}
	if h.n() != 1 {
		t.Fatalf("handler called %d times, want 1", h.n())
	}
	waitStat(t, s, "duplicate_resent", 1)

	// Same ID, new authenticator: a new request.
	req2 := buildRequest(radius.CodeAccessRequest, 33, authOf("retransmit-auth2"), []attr{{1, []byte("x")}}, buildOpts{})
	send(t, c, req2)
	third := recv(t, c, 2*time.Second)
	checkReply(t, third, req2, testSecret)
	if h.n() != 2 {
		t.Fatalf("handler called %d times, want 2", h.n())
	}
	// Another source port with the same packet is another request too.
	c2 := rawConn(t, "127.0.0.1:0", addr)
	send(t, c2, req)
	if recv(t, c2, 2*time.Second) == nil {
		t.Fatal("no reply on the second port")
	}
	if h.n() != 3 {
		t.Fatalf("handler called %d times, want 3", h.n())
	}
}

func TestServerInProgressDuplicate(t *testing.T) {
	release := make(chan struct{})
	h := &counting{h: func(ctx context.Context, r *Request) *radius.Packet {
		<-release
		return accept(ctx, r)
	}}
	s := &Server{Handler: h}
	addr := startServer(t, s)
	c := rawConn(t, "127.0.0.1:0", addr)
	req := buildRequest(radius.CodeAccessRequest, 1, authOf("in-progress"), nil, buildOpts{})
	send(t, c, req)
	send(t, c, req)
	send(t, c, req)
	waitStat(t, s, "duplicate", 2)
	close(release)
	reply := recv(t, c, 2*time.Second)
	checkReply(t, reply, req, testSecret)
	if r := recv(t, c, noReplyWait); r != nil {
		t.Error("more than one reply")
	}
	if h.n() != 1 {
		t.Errorf("handler called %d times", h.n())
	}
}

func TestServerHandlerDropIsNotCached(t *testing.T) {
	var mu sync.Mutex
	drop := true
	h := &counting{h: func(ctx context.Context, r *Request) *radius.Packet {
		mu.Lock()
		defer mu.Unlock()
		if drop {
			drop = false
			return nil
		}
		return accept(ctx, r)
	}}
	s := &Server{Handler: h}
	addr := startServer(t, s)
	c := rawConn(t, "127.0.0.1:0", addr)
	req := buildRequest(radius.CodeAccessRequest, 1, authOf("dropped-once"), nil, buildOpts{})
	send(t, c, req)
	waitStat(t, s, "handler_dropped", 1)
	send(t, c, req)
	checkReply(t, recv(t, c, 2*time.Second), req, testSecret)
	if h.n() != 2 {
		t.Errorf("handler called %d times", h.n())
	}
}

func TestServerStatusServer(t *testing.T) {
	for _, acct := range []bool{false, true} {
		h := &counting{h: accept}
		s := &Server{Handler: h, Accounting: acct}
		addr := startServer(t, s)
		c := rawConn(t, "127.0.0.1:0", addr)
		req := buildRequest(radius.CodeStatusServer, 200, authOf("status-server-01"), []attr{{33, []byte("p")}}, buildOpts{})
		want := radius.CodeAccessAccept
		if acct {
			want = radius.CodeAccountingResponse
		}
		for i := 0; i < 2; i++ {
			send(t, c, req)
			reply := recv(t, c, 2*time.Second)
			if reply == nil {
				t.Fatalf("accounting=%v: no reply to Status-Server", acct)
			}
			checkReply(t, reply, req, testSecret)
			if radius.Code(reply[0]) != want {
				t.Errorf("accounting=%v: reply code %d, want %v", acct, reply[0], want)
			}
			if ps := refAttrs(reply, 33); len(ps) != 1 || string(ps[0]) != "p" {
				t.Errorf("Proxy-State %q", ps)
			}
		}
		// The counter moves after the datagram is sent, so the reply may
		// arrive before it does.
		waitStat(t, s, "replied", 2)
		snap := s.Snapshot()
		if snap["status_server"] != 2 || snap["duplicate_resent"] != 0 || h.n() != 0 {
			t.Errorf("accounting=%v: %v, handler calls %d", acct, snap, h.n())
		}
		if s.cache.len() != 0 {
			t.Errorf("Status-Server reply cached")
		}
		send(t, c, buildRequest(radius.CodeStatusServer, 201, authOf("status-server-02"), nil, buildOpts{noMA: true}))
		waitStat(t, s, "missing_message_authenticator", 1)
		if recv(t, c, noReplyWait) != nil {
			t.Error("Status-Server without MA answered")
		}
	}
}

func TestServerAccounting(t *testing.T) {
	h := &counting{h: accept}
	s := &Server{Handler: h, Accounting: true}
	addr := startServer(t, s)
	c := rawConn(t, "127.0.0.1:0", addr)
	attrs := []attr{{40, []byte{0, 0, 0, 1}}, {44, []byte("session-1")}}
	tests := []struct {
		name    string
		b       []byte
		counter string // "" when answered
	}{
		{"valid without MA", buildRequest(radius.CodeAccountingRequest, 1, [16]byte{}, attrs, buildOpts{noMA: true}), ""},
		{"valid with MA", buildRequest(radius.CodeAccountingRequest, 2, [16]byte{}, attrs, buildOpts{}), ""},
		{"bad authenticator", buildRequest(radius.CodeAccountingRequest, 3, [16]byte{}, attrs, buildOpts{badAuth: true}), "bad_authenticator"},
		{"wrong secret", buildRequest(radius.CodeAccountingRequest, 4, [16]byte{}, attrs, buildOpts{secret: []byte("nope")}), "bad_authenticator"},
		{"bad MA", buildRequest(radius.CodeAccountingRequest, 5, [16]byte{}, attrs, buildOpts{badMA: true}), "bad_message_authenticator"},
		{"Access-Request to accounting server", buildRequest(radius.CodeAccessRequest, 6, authOf("x"), nil, buildOpts{}), "unsupported_code"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := s.Snapshot()
			send(t, c, tt.b)
			if tt.counter == "" {
				reply := recv(t, c, 2*time.Second)
				if reply == nil {
					t.Fatal("no reply")
				}
				checkReply(t, reply, tt.b, testSecret)
				if radius.Code(reply[0]) != radius.CodeAccountingResponse {
					t.Errorf("code %d", reply[0])
				}
				return
			}
			waitStat(t, s, tt.counter, before[tt.counter]+1)
			if recv(t, c, noReplyWait) != nil {
				t.Error("answered")
			}
		})
	}
	if h.n() != 2 {
		t.Errorf("handler called %d times, want 2", h.n())
	}
}

func TestServerDynamicAuthorization(t *testing.T) {
	s := &Server{Handler: HandlerFunc(accept), Codes: []radius.Code{radius.CodeCoARequest, radius.CodeDisconnectRequest}}
	addr := startServer(t, s)
	c := rawConn(t, "127.0.0.1:0", addr)
	for i, code := range []radius.Code{radius.CodeCoARequest, radius.CodeDisconnectRequest} {
		req := buildRequest(code, byte(i), [16]byte{}, []attr{{44, []byte("sess")}}, buildOpts{})
		send(t, c, req)
		reply := recv(t, c, 2*time.Second)
		if reply == nil {
			t.Fatalf("%v: no reply", code)
		}
		checkReply(t, reply, req, testSecret)
	}
	send(t, c, buildRequest(radius.CodeAccessRequest, 9, authOf("a"), nil, buildOpts{}))
	waitStat(t, s, "unsupported_code", 1)

	bad := &Server{Handler: HandlerFunc(accept), Clients: testClients(t), Codes: []radius.Code{radius.CodeAccessAccept}}
	pc, _ := net.ListenPacket("udp", "127.0.0.1:0")
	defer pc.Close()
	if err := bad.Serve(pc); !errors.Is(err, ErrUnsupportedCode) {
		t.Errorf("Serve with a reply code in Codes = %v", err)
	}
}

func TestServerBadReplyFromHandler(t *testing.T) {
	s := &Server{Handler: HandlerFunc(func(ctx context.Context, r *Request) *radius.Packet {
		if rfc2865.UserName_GetString(r.Packet) == "big" {
			p := r.Packet.Response(radius.CodeAccessAccept)
			for i := 0; i < 20; i++ {
				p.Add(18, make(radius.Attribute, 250))
			}
			return p
		}
		return r.Packet.Response(radius.CodeAccountingResponse) // wrong code
	})}
	addr := startServer(t, s)
	c := rawConn(t, "127.0.0.1:0", addr)
	send(t, c, buildRequest(radius.CodeAccessRequest, 1, authOf("wrong-code"), nil, buildOpts{}))
	waitStat(t, s, "bad_reply", 1)
	send(t, c, buildRequest(radius.CodeAccessRequest, 2, authOf("too-big"), []attr{{1, []byte("big")}}, buildOpts{}))
	waitStat(t, s, "bad_reply", 2)
	if recv(t, c, noReplyWait) != nil {
		t.Error("bad reply sent")
	}
}

func TestServerInFlightBound(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 10)
	h := &counting{h: func(ctx context.Context, r *Request) *radius.Packet {
		started <- struct{}{}
		<-release
		return accept(ctx, r)
	}}
	s := &Server{Handler: h, MaxInFlight: 2}
	addr := startServer(t, s)
	c := rawConn(t, "127.0.0.1:0", addr)
	var reqs [][]byte
	for i := 0; i < 3; i++ {
		req := buildRequest(radius.CodeAccessRequest, byte(i), authOf(string(rune('a'+i))+"-inflight"), nil, buildOpts{})
		reqs = append(reqs, req)
		send(t, c, req)
	}
	waitStat(t, s, "inflight_dropped", 1)
	<-started
	<-started
	close(release)
	got := map[byte]bool{}
	for i := 0; i < 2; i++ {
		r := recv(t, c, 2*time.Second)
		if r == nil {
			t.Fatal("missing reply")
		}
		got[r[1]] = true
	}
	if !got[0] || !got[1] {
		t.Errorf("answered IDs %v, want 0 and 1", got)
	}
	// The dropped request was not cached: its retransmission is handled.
	send(t, c, reqs[2])
	checkReply(t, recv(t, c, 2*time.Second), reqs[2], testSecret)
}

func TestServerHandlerPanic(t *testing.T) {
	h := &counting{h: func(ctx context.Context, r *Request) *radius.Packet {
		if rfc2865.UserName_GetString(r.Packet) == "panic" {
			panic("handler bug")
		}
		return accept(ctx, r)
	}}
	s := &Server{Handler: h}
	addr := startServer(t, s)
	c := rawConn(t, "127.0.0.1:0", addr)
	send(t, c, buildRequest(radius.CodeAccessRequest, 1, authOf("panic"), []attr{{1, []byte("panic")}}, buildOpts{}))
	waitStat(t, s, "handler_panic", 1)
	waitStat(t, s, "handler_dropped", 1)
	req := buildRequest(radius.CodeAccessRequest, 2, authOf("after-panic"), []attr{{1, []byte("ok")}}, buildOpts{})
	send(t, c, req)
	checkReply(t, recv(t, c, 2*time.Second), req, testSecret)
}

func TestServerShutdown(t *testing.T) {
	release := make(chan struct{})
	inHandler := make(chan struct{})
	s := &Server{Clients: testClients(t), Handler: HandlerFunc(func(ctx context.Context, r *Request) *radius.Packet {
		close(inHandler)
		<-release
		return accept(ctx, r)
	})}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(pc) }()
	c := rawConn(t, "127.0.0.1:0", pc.LocalAddr().(*net.UDPAddr).AddrPort())
	req := buildRequest(radius.CodeAccessRequest, 1, authOf("shutdown"), nil, buildOpts{})
	send(t, c, req)
	<-inHandler

	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve = %v", err)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v before the handler finished", err)
	case <-time.After(noReplyWait):
	}
	close(release)
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	// The in-flight request was still answered.
	checkReply(t, recv(t, c, 2*time.Second), req, testSecret)
	if err := s.Serve(pc); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve after Shutdown = %v", err)
	}
}

func TestServerShutdownTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	inHandler := make(chan struct{})
	var sawCancel bool
	done := make(chan struct{})
	s := &Server{Clients: testClients(t), Handler: HandlerFunc(func(ctx context.Context, r *Request) *radius.Packet {
		close(inHandler)
		<-ctx.Done()
		sawCancel = true
		close(done)
		<-release
		return nil
	})}
	pc, _ := net.ListenPacket("udp", "127.0.0.1:0")
	go s.Serve(pc)
	c := rawConn(t, "127.0.0.1:0", pc.LocalAddr().(*net.UDPAddr).AddrPort())
	send(t, c, buildRequest(radius.CodeAccessRequest, 1, authOf("stuck"), nil, buildOpts{}))
	<-inHandler
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want DeadlineExceeded", err)
	}
	<-done
	if !sawCancel {
		t.Error("handler context not cancelled")
	}
}

func TestServerConfigErrors(t *testing.T) {
	pc, _ := net.ListenPacket("udp", "127.0.0.1:0")
	defer pc.Close()
	if err := (&Server{Handler: HandlerFunc(accept)}).Serve(pc); err == nil {
		t.Error("Serve without Clients succeeded")
	}
	if err := (&Server{Clients: testClients(t)}).Serve(pc); err == nil {
		t.Error("Serve without Handler succeeded")
	}
}
