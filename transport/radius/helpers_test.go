package radius

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	radius "layeh.com/radius"
)

// The reference functions below recompute authenticators the plain way
// (copy, zero, hash) so that tests do not trust the code under test.

var testSecret = []byte("testing123")

// refMA returns the HMAC-MD5 of pkt with its first Message-Authenticator
// zeroed and, if auth is non-nil, auth in the Authenticator field.
func refMA(pkt, secret, auth []byte) []byte {
	b := bytes.Clone(pkt)
	if auth != nil {
		copy(b[4:20], auth)
	}
	if off := refFindAttr(b, 80); off >= 0 {
		clear(b[off+2 : off+18])
	}
	mac := hmac.New(md5.New, secret)
	mac.Write(b)
	return mac.Sum(nil)
}

// refAuth returns MD5 over pkt with auth in the Authenticator field,
// followed by secret.
func refAuth(pkt, secret, auth []byte) []byte {
	b := bytes.Clone(pkt)
	copy(b[4:20], auth)
	sum := md5.Sum(append(b, secret...))
	return sum[:]
}

// refFindAttr returns the offset of the first attribute of type t, -1 if
// none.
func refFindAttr(pkt []byte, t byte) int {
	for off := 20; off+2 <= len(pkt) && pkt[off+1] >= 2; off += int(pkt[off+1]) {
		if pkt[off] == t {
			return off
		}
	}
	return -1
}

// refAttrs returns the values of all attributes of type t in order.
func refAttrs(pkt []byte, t byte) [][]byte {
	var out [][]byte
	for off := 20; off+2 <= len(pkt) && pkt[off+1] >= 2 && off+int(pkt[off+1]) <= len(pkt); off += int(pkt[off+1]) {
		if pkt[off] == t {
			out = append(out, pkt[off+2:off+int(pkt[off+1])])
		}
	}
	return out
}

type attr struct {
	t byte
	v []byte
}

// buildOpts says how buildRequest lays out a test request.
type buildOpts struct {
	noMA      bool   // leave out the Message-Authenticator
	twoMA     bool   // add a second one
	badMA     bool   // flip a bit of the Message-Authenticator
	badAuth   bool   // flip a bit of the Request Authenticator (hashed codes)
	secret    []byte // default testSecret
	maLast    bool   // put the Message-Authenticator last instead of first
	trailing  []byte // octets after Length
	setLength int    // overwrite the Length field when non-zero
}

// buildRequest lays out a request by hand and signs it with the reference
// functions: Message-Authenticator over the authenticator field as sent
// (Access-Request, Status-Server) or zeroed (others), MD5 Request
// Authenticator for Accounting, CoA and Disconnect.
func buildRequest(code radius.Code, id byte, auth [16]byte, attrs []attr, o buildOpts) []byte {
	secret := o.secret
	if secret == nil {
		secret = testSecret
	}
	hashed := code == radius.CodeAccountingRequest || code == radius.CodeCoARequest || code == radius.CodeDisconnectRequest
	b := []byte{byte(code), id, 0, 0}
	if hashed {
		b = append(b, make([]byte, 16)...)
	} else {
		b = append(b, auth[:]...)
	}
	ma := []byte{80, 18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	if !o.noMA && !o.maLast {
		b = append(b, ma...)
	}
	for _, a := range attrs {
		b = append(b, a.t, byte(2+len(a.v)))
		b = append(b, a.v...)
	}
	if !o.noMA && o.maLast {
		b = append(b, ma...)
	}
	binary.BigEndian.PutUint16(b[2:4], uint16(len(b)))
	if !o.noMA {
		off := refFindAttr(b, 80)
		copy(b[off+2:off+18], refMA(b, secret, nil))
		if o.badMA {
			b[off+5] ^= 0x40
		}
		if o.twoMA {
			b = append(b, b[off:off+18]...)
			binary.BigEndian.PutUint16(b[2:4], uint16(len(b)))
		}
	}
	if hashed {
		copy(b[4:20], refAuth(b, secret, make([]byte, 16)))
		if o.badAuth {
			b[9] ^= 1
		}
	}
	if o.setLength != 0 {
		binary.BigEndian.PutUint16(b[2:4], uint16(o.setLength))
	}
	return append(b, o.trailing...)
}

func authOf(s string) (a [16]byte) {
	copy(a[:], s)
	return a
}

// checkReply verifies reply against request with the reference functions:
// Identifier, Response Authenticator and a Message-Authenticator that is
// the first attribute.
func checkReply(t *testing.T, reply, request, secret []byte) {
	t.Helper()
	if len(reply) < 20 || int(binary.BigEndian.Uint16(reply[2:4])) != len(reply) {
		t.Fatalf("reply length %d does not match its Length field", len(reply))
	}
	if reply[1] != request[1] {
		t.Errorf("reply Identifier %d, want %d", reply[1], request[1])
	}
	if want := refAuth(reply, secret, request[4:20]); !bytes.Equal(reply[4:20], want) {
		t.Errorf("Response Authenticator %x, want %x", reply[4:20], want)
	}
	if reply[0] == 5 && request[0] == 4 {
		// Accounting-Response to an Accounting-Request: no Message-Authenticator.
		if len(refAttrs(reply, 80)) != 0 {
			t.Errorf("Accounting-Response carries a Message-Authenticator")
		}
		return
	}
	if len(reply) < 38 || reply[20] != 80 || reply[21] != 18 {
		t.Fatalf("Message-Authenticator is not the first attribute: % x", reply[20:min(len(reply), 24)])
	}
	// The HMAC is over the packet with the Request Authenticator in place.
	if want := refMA(reply, secret, request[4:20]); !bytes.Equal(reply[22:38], want) {
		t.Errorf("Message-Authenticator %x, want %x", reply[22:38], want)
	}
	if len(refAttrs(reply, 80)) != 1 {
		t.Errorf("reply has %d Message-Authenticators", len(refAttrs(reply, 80)))
	}
}

func testClients(t testing.TB) *Clients {
	t.Helper()
	cs, err := NewClients([]ClientConfig{
		{Name: "nas", Network: netip.MustParsePrefix("127.0.0.1/32"), Secret: testSecret},
		{Name: "lab", Network: netip.MustParsePrefix("10.0.0.0/8"), Secret: []byte("lab-secret")},
	})
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// counting wraps a handler and counts its calls.
type counting struct {
	mu    sync.Mutex
	calls int
	reqs  []*Request
	h     HandlerFunc
}

func (c *counting) ServeRADIUS(ctx context.Context, r *Request) *radius.Packet {
	c.mu.Lock()
	c.calls++
	c.reqs = append(c.reqs, r)
	c.mu.Unlock()
	return c.h(ctx, r)
}

// req returns the i-th request seen; negative i counts from the end.
func (c *counting) req(i int) *Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i < 0 {
		i += len(c.reqs)
	}
	return c.reqs[i]
}

func (c *counting) n() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}

// accept answers every request with the matching positive reply and a
// Reply-Message.
func accept(_ context.Context, r *Request) *radius.Packet {
	code := map[radius.Code]radius.Code{
		radius.CodeAccessRequest:     radius.CodeAccessAccept,
		radius.CodeAccountingRequest: radius.CodeAccountingResponse,
		radius.CodeCoARequest:        radius.CodeCoAACK,
		radius.CodeDisconnectRequest: radius.CodeDisconnectACK,
	}[r.Packet.Code]
	p := r.Packet.Response(code)
	p.Add(18, radius.Attribute("welcome"))
	return p
}

// startServer runs s on a loopback socket until the test ends.
func startServer(t testing.TB, s *Server) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if s.Clients == nil {
		s.Clients = testClients(t)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(pc) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

// rawConn is a test NAS socket bound to local.
func rawConn(t testing.TB, local string, server netip.AddrPort) *net.UDPConn {
	t.Helper()
	laddr, err := net.ResolveUDPAddr("udp", local)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialUDP("udp", laddr, net.UDPAddrFromAddrPort(server))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func send(t testing.TB, c *net.UDPConn, b []byte) {
	t.Helper()
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
}

// recv returns the next datagram within d, nil if none came.
func recv(t testing.TB, c *net.UDPConn, d time.Duration) []byte {
	t.Helper()
	buf := make([]byte, 5000)
	c.SetReadDeadline(time.Now().Add(d))
	n, err := c.Read(buf)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil
		}
		t.Fatal(err)
	}
	return buf[:n]
}

// waitStat waits until counter key of s reaches want.
func waitStat(t testing.TB, s *Server, key string, want uint64) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		got := s.Snapshot()[key]
		if got == want {
			return
		}
		if got > want || time.Now().After(deadline) {
			t.Fatalf("counter %s = %d, want %d (all: %v)", key, got, want, s.Snapshot())
		}
		time.Sleep(time.Millisecond)
	}
}

// captureSender records replies instead of sending them.
type captureSender struct {
	mu      sync.Mutex
	replies [][]byte
	to      []netip.AddrPort
}

func (c *captureSender) sendReply(b []byte, to netip.AddrPort) error {
	c.mu.Lock()
	c.replies = append(c.replies, bytes.Clone(b))
	c.to = append(c.to, to)
	c.mu.Unlock()
	return nil
}
