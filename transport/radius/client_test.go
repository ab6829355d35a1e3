package radius

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	radius "layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc3576"
)

func TestClientRoundTrip(t *testing.T) {
	h := &counting{h: accept}
	addr := startServer(t, &Server{Handler: h, Codes: []radius.Code{
		radius.CodeAccessRequest, radius.CodeAccountingRequest, radius.CodeStatusServer}})
	c := &Client{Secret: testSecret, Timeout: time.Second}
	defer c.Close()
	ctx := context.Background()

	p := radius.New(radius.CodeAccessRequest, testSecret)
	rfc2865.UserName_SetString(p, "carol")
	rfc2865.UserPassword_SetString(p, "hunter2")
	before := *p
	r, err := c.Exchange(ctx, p, addr.String())
	if err != nil {
		t.Fatal(err)
	}
	if r.Code != radius.CodeAccessAccept || rfc2865.ReplyMessage_GetString(r) != "welcome" {
		t.Errorf("reply %v %q", r.Code, rfc2865.ReplyMessage_GetString(r))
	}
	if p.Identifier != before.Identifier || p.Authenticator != before.Authenticator || len(p.Attributes) != len(before.Attributes) {
		t.Error("Exchange modified the request")
	}
	// The server saw the password: the authenticator it was encrypted
	// with was kept.
	if got := rfc2865.UserPassword_GetString(h.req(0).Packet); got != "hunter2" {
		t.Errorf("server decrypted %q", got)
	}
	if h.req(0).Packet.Get(80) == nil {
		t.Error("request without Message-Authenticator")
	}

	acct := radius.New(radius.CodeAccountingRequest, nil)
	acct.Add(44, radius.Attribute("sess-1"))
	if r, err := c.Exchange(ctx, acct, addr.String()); err != nil || r.Code != radius.CodeAccountingResponse {
		t.Errorf("accounting: %v %v", r, err)
	}
	st := radius.New(radius.CodeStatusServer, nil)
	if r, err := c.Exchange(ctx, st, addr.String()); err != nil || r.Code != radius.CodeAccessAccept {
		t.Errorf("Status-Server: %v %v", r, err)
	}
	// A zero authenticator is replaced by a random one.
	zero := &radius.Packet{Code: radius.CodeAccessRequest}
	if _, err := c.Exchange(ctx, zero, addr.String()); err != nil {
		t.Fatal(err)
	}
	if a := h.req(-1).Packet.Authenticator; a == zeroAuth {
		t.Error("zero Request Authenticator sent")
	}
}

// fakeNAS is a scripted RADIUS peer: for every request it receives it calls
// answer with the request and the number of copies seen so far.
type fakeNAS struct {
	pc     *net.UDPConn
	mu     sync.Mutex
	copies [][]byte
}

func newFakeNAS(t *testing.T, answer func(req []byte, n int, from netip.AddrPort, pc *net.UDPConn)) (*fakeNAS, netip.AddrPort) {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeNAS{pc: pc}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 5000)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			req := bytes.Clone(buf[:n])
			f.mu.Lock()
			f.copies = append(f.copies, req)
			k := len(f.copies)
			f.mu.Unlock()
			answer(req, k, from, pc)
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return f, pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

func (f *fakeNAS) received() [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]byte(nil), f.copies...)
}

// signedReply builds a reply to req with the reference functions.
func signedReply(req []byte, code radius.Code, secret []byte, attrs []attr, withMA bool) []byte {
	b := []byte{byte(code), req[1], 0, 0}
	b = append(b, req[4:20]...)
	if withMA {
		b = append(b, 80, 18)
		b = append(b, make([]byte, 16)...)
	}
	for _, a := range attrs {
		b = append(b, a.t, byte(2+len(a.v)))
		b = append(b, a.v...)
	}
	b[2], b[3] = byte(len(b)>>8), byte(len(b))
	if withMA {
		copy(b[22:38], refMA(b, secret, req[4:20]))
	}
	copy(b[4:20], refAuth(b, secret, req[4:20]))
	return b
}

func TestClientRetransmitsSamePacket(t *testing.T) {
	nas, addr := newFakeNAS(t, func(req []byte, n int, from netip.AddrPort, pc *net.UDPConn) {
		if n < 2 {
			return // lose the first copy
		}
		pc.WriteToUDPAddrPort(signedReply(req, radius.CodeAccessAccept, testSecret, nil, true), from)
	})
	c := &Client{Secret: testSecret, Timeout: 20 * time.Millisecond}
	defer c.Close()
	r, err := c.Exchange(context.Background(), radius.New(radius.CodeAccessRequest, nil), addr.String())
	if err != nil {
		t.Fatal(err)
	}
	if r.Code != radius.CodeAccessAccept {
		t.Errorf("code %v", r.Code)
	}
	got := nas.received()
	if len(got) != 2 || !bytes.Equal(got[0], got[1]) {
		t.Fatalf("retransmission differs or missing: %d copies", len(got))
	}
	if err := VerifyRequest(got[0], testSecret); err != nil {
		t.Errorf("client request does not verify: %v", err)
	}
	if got[0][20] != 80 {
		t.Error("Message-Authenticator not first")
	}
}

func TestClientTimeout(t *testing.T) {
	nas, addr := newFakeNAS(t, func([]byte, int, netip.AddrPort, *net.UDPConn) {})
	tests := []struct {
		retries, tries int
	}{{-1, 1}, {1, 2}, {3, 4}}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.retries), func(t *testing.T) {
			before := len(nas.received())
			c := &Client{Secret: testSecret, Timeout: 2 * time.Millisecond, Retries: tt.retries}
			defer c.Close()
			_, err := c.Exchange(context.Background(), radius.New(radius.CodeAccessRequest, nil), addr.String())
			if !errors.Is(err, ErrTimeout) {
				t.Fatalf("err = %v, want ErrTimeout", err)
			}
			time.Sleep(5 * time.Millisecond)
			if n := len(nas.received()) - before; n != tt.tries {
				t.Errorf("%d copies sent, want %d", n, tt.tries)
			}
		})
	}
	c := &Client{Secret: testSecret, Timeout: time.Hour}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := c.Exchange(ctx, radius.New(radius.CodeAccessRequest, nil), addr.String()); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want DeadlineExceeded", err)
	}
}

func TestClientIgnoresForgedReplies(t *testing.T) {
	forgeries := []struct {
		name  string
		forge func(req []byte) []byte
	}{
		{"wrong secret", func(req []byte) []byte {
			return signedReply(req, radius.CodeAccessAccept, []byte("attacker"), nil, true)
		}},
		{"no Message-Authenticator", func(req []byte) []byte {
			return signedReply(req, radius.CodeAccessAccept, testSecret, nil, false)
		}},
		{"wrong Identifier", func(req []byte) []byte {
			r := bytes.Clone(req)
			r[1]++
			return signedReply(r, radius.CodeAccessAccept, testSecret, nil, true)
		}},
		{"wrong code", func(req []byte) []byte {
			return signedReply(req, radius.CodeCoAACK, testSecret, nil, true)
		}},
		{"bad MA", func(req []byte) []byte {
			b := signedReply(req, radius.CodeAccessAccept, testSecret, nil, true)
			b[30] ^= 1
			copy(b[4:20], refAuth(b, testSecret, req[4:20]))
			return b
		}},
		{"truncated", func(req []byte) []byte {
			return signedReply(req, radius.CodeAccessAccept, testSecret, nil, true)[:30]
		}},
	}
	for _, f := range forgeries {
		t.Run(f.name, func(t *testing.T) {
			_, addr := newFakeNAS(t, func(req []byte, n int, from netip.AddrPort, pc *net.UDPConn) {
				pc.WriteToUDPAddrPort(f.forge(req), from)
				time.Sleep(5 * time.Millisecond)
				pc.WriteToUDPAddrPort(signedReply(req, radius.CodeAccessReject, testSecret, []attr{{18, []byte("genuine")}}, true), from)
			})
			c := &Client{Secret: testSecret, Timeout: time.Second}
			defer c.Close()
			r, err := c.Exchange(context.Background(), radius.New(radius.CodeAccessRequest, nil), addr.String())
			if err != nil {
				t.Fatal(err)
			}
			if r.Code != radius.CodeAccessReject || rfc2865.ReplyMessage_GetString(r) != "genuine" {
				t.Errorf("accepted the forgery: %v %q", r.Code, rfc2865.ReplyMessage_GetString(r))
			}
		})
	}
	// Only forgeries: time out.
	_, addr := newFakeNAS(t, func(req []byte, n int, from netip.AddrPort, pc *net.UDPConn) {
		pc.WriteToUDPAddrPort(signedReply(req, radius.CodeAccessAccept, testSecret, nil, false), from)
	})
	c := &Client{Secret: testSecret, Timeout: 5 * time.Millisecond, Retries: 1}
	defer c.Close()
	if _, err := c.Exchange(context.Background(), radius.New(radius.CodeAccessRequest, nil), addr.String()); !errors.Is(err, ErrTimeout) {
		t.Errorf("err = %v, want ErrTimeout", err)
	}
}

func TestClientIgnoresOtherSource(t *testing.T) {
	// The reply comes from a socket other than the one the request went to.
	other, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	_, addr := newFakeNAS(t, func(req []byte, n int, from netip.AddrPort, pc *net.UDPConn) {
		other.WriteToUDPAddrPort(signedReply(req, radius.CodeAccessAccept, testSecret, nil, true), from)
	})
	c := &Client{Secret: testSecret, Timeout: 10 * time.Millisecond, Retries: -1}
	defer c.Close()
	if _, err := c.Exchange(context.Background(), radius.New(radius.CodeAccessRequest, nil), addr.String()); !errors.Is(err, ErrTimeout) {
		t.Errorf("err = %v, want ErrTimeout", err)
	}
}

func TestClientDynamicAuth(t *testing.T) {
	s := &Server{Codes: []radius.Code{radius.CodeCoARequest, radius.CodeDisconnectRequest},
		Handler: HandlerFunc(func(ctx context.Context, r *Request) *radius.Packet {
			sess := rfc2865.UserName_GetString(r.Packet)
			switch {
			case sess == "known" && r.Packet.Code == radius.CodeCoARequest:
				return r.Packet.Response(radius.CodeCoAACK)
			case sess == "known":
				return r.Packet.Response(radius.CodeDisconnectACK)
			case r.Packet.Code == radius.CodeCoARequest:
				p := r.Packet.Response(radius.CodeCoANAK)
				rfc3576.ErrorCause_Add(p, rfc3576.ErrorCause_Value_SessionContextNotFound)
				return p
			default:
				return r.Packet.Response(radius.CodeDisconnectNAK) // no Error-Cause
			}
		})}
	addr := startServer(t, s)
	c := &Client{Secret: testSecret, Timeout: time.Second}
	defer c.Close()
	tests := []struct {
		code  radius.Code
		user  string
		nak   radius.Code
		cause rfc3576.ErrorCause
	}{
		{radius.CodeCoARequest, "known", 0, 0},
		{radius.CodeDisconnectRequest, "known", 0, 0},
		{radius.CodeCoARequest, "unknown", radius.CodeCoANAK, rfc3576.ErrorCause_Value_SessionContextNotFound},
		{radius.CodeDisconnectRequest, "unknown", radius.CodeDisconnectNAK, 0},
	}
	for _, tt := range tests {
		t.Run(tt.code.String()+"/"+tt.user, func(t *testing.T) {
			p := radius.New(tt.code, nil)
			rfc2865.UserName_SetString(p, tt.user)
			err := c.DynamicAuth(context.Background(), p, addr.String())
			if tt.nak == 0 {
				if err != nil {
					t.Fatalf("DynamicAuth = %v", err)
				}
				return
			}
			var nak *NAKError
			if !errors.As(err, &nak) || !errors.Is(err, ErrNAK) {
				t.Fatalf("DynamicAuth = %v, want *NAKError", err)
			}
			if nak.Code != tt.nak || nak.ErrorCause != tt.cause {
				t.Errorf("NAK %v cause %d, want %v %d", nak.Code, nak.ErrorCause, tt.nak, tt.cause)
			}
		})
	}
	if err := c.DynamicAuth(context.Background(), radius.New(radius.CodeAccessRequest, nil), addr.String()); !errors.Is(err, ErrUnsupportedCode) {
		t.Errorf("DynamicAuth(Access-Request) = %v", err)
	}
}

func TestNAKErrorMessage(t *testing.T) {
	tests := []struct {
		e    NAKError
		want string
	}{
		{NAKError{Code: radius.CodeCoANAK}, "radius: CoA-NAK"},
		{NAKError{Code: radius.CodeDisconnectNAK, ErrorCause: 503}, "radius: Disconnect-NAK (Error-Cause 503 Session-Context-Not-Found)"},
		{NAKError{Code: radius.CodeCoANAK, ErrorCause: 999}, "radius: CoA-NAK (Error-Cause 999)"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestClientManyInFlight(t *testing.T) {
	release := make(chan struct{})
	const n = 600 // more than two sockets' worth of Identifiers
	s := &Server{Handler: HandlerFunc(func(ctx context.Context, r *Request) *radius.Packet {
		<-release
		return accept(ctx, r)
	})}
	addr := startServer(t, s)
	// Short timeouts: a burst of 600 datagrams overflows loopback socket
	// buffers, and the retransmissions (answered from the reply cache)
	// recover the losses.
	c := &Client{Secret: testSecret, Timeout: 50 * time.Millisecond, Retries: 7}
	defer c.Close()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			p := radius.New(radius.CodeAccessRequest, nil)
			rfc2865.UserName_SetString(p, fmt.Sprint("user", i))
			r, err := c.Exchange(context.Background(), p, addr.String())
			if err == nil && r.Code != radius.CodeAccessAccept {
				err = fmt.Errorf("code %v", r.Code)
			}
			errs <- err
		}(i)
	}
	// Wait until every request holds an Identifier.
	deadline := time.Now().Add(5 * time.Second)
	for {
		outstanding, conns := 0, 0
		c.mu.Lock()
		for _, cc := range c.conns {
			cc.mu.Lock()
			outstanding += cc.n
			cc.mu.Unlock()
		}
		conns = len(c.conns)
		c.mu.Unlock()
		if outstanding == n {
			if conns < 3 {
				t.Errorf("%d sockets for %d outstanding requests", conns, n)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d requests outstanding", outstanding, n)
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestClientClose(t *testing.T) {
	_, addr := newFakeNAS(t, func([]byte, int, netip.AddrPort, *net.UDPConn) {})
	c := &Client{Secret: testSecret, Timeout: time.Hour}
	errc := make(chan error, 1)
	go func() {
		_, err := c.Exchange(context.Background(), radius.New(radius.CodeAccessRequest, nil), addr.String())
		errc <- err
	}()
	time.Sleep(10 * time.Millisecond)
	c.Close()
	if err := <-errc; !errors.Is(err, ErrClientClosed) {
		t.Errorf("pending Exchange = %v, want ErrClientClosed", err)
	}
	if _, err := c.Exchange(context.Background(), radius.New(radius.CodeAccessRequest, nil), addr.String()); !errors.Is(err, ErrClientClosed) {
		t.Errorf("Exchange after Close = %v", err)
	}
}

func TestClientArguments(t *testing.T) {
	c := &Client{}
	defer c.Close()
	ctx := context.Background()
	tests := []struct {
		name string
		p    *radius.Packet
		addr string
		want error
	}{
		{"no secret", radius.New(radius.CodeAccessRequest, nil), "127.0.0.1:1812", ErrNoSecret},
		{"reply code", radius.New(radius.CodeAccessAccept, testSecret), "127.0.0.1:1812", ErrUnsupportedCode},
	}
	for _, tt := range tests {
		if _, err := c.Exchange(ctx, tt.p, tt.addr); !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
	if _, err := c.Exchange(ctx, radius.New(radius.CodeAccessRequest, testSecret), "no-port"); err == nil {
		t.Error("bad address accepted")
	}
	if _, err := c.Exchange(ctx, nil, "127.0.0.1:1"); err == nil {
		t.Error("nil packet accepted")
	}
}
