package smdtls

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

// captureClientHello returns the first datagram a client sends: a real
// pion ClientHello for TLS_PSK_WITH_SM4_GCM_SM3.
func captureClientHello(t testing.TB) []byte {
	t.Helper()
	sink, err := net.ListenUDP("udp4", loopback)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = Dial(ctx, "udp4", sink.LocalAddr().(*net.UDPAddr), clientConfig("ep", testPSK(1)))
	}()
	buf := make([]byte, 2048)
	sink.SetReadDeadline(time.Now().Add(3 * time.Second))
	n, _, err := sink.ReadFromUDP(buf)
	cancel()
	<-done
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), buf[:n]...)
}

func TestClientHelloCookie(t *testing.T) {
	hello := captureClientHello(t)
	ch, err := parseClientHello(hello)
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.cookie) != 0 || ch.recordEnd != len(hello) {
		t.Fatalf("first ClientHello: cookie %x, record end %d of %d", ch.cookie, ch.recordEnd, len(hello))
	}
	cookies := [][]byte{{1}, bytes.Repeat([]byte{0xAB}, cookieLen), bytes.Repeat([]byte{0xCD}, maxCookieLen)}
	for _, c := range cookies {
		with, err := ch.appendWithCookie(nil, hello, c)
		if err != nil {
			t.Fatal(err)
		}
		ch2, err := parseClientHello(with)
		if err != nil {
			t.Fatalf("ClientHello with a %d-byte cookie does not parse: %v", len(c), err)
		}
		if !bytes.Equal(ch2.cookie, c) || len(with) != len(hello)+len(c) {
			t.Fatalf("cookie %x in %d bytes", ch2.cookie, len(with))
		}
		b1, a1 := ch.bodyParts()
		b2, a2 := ch2.bodyParts()
		if !bytes.Equal(b1, b2) || !bytes.Equal(a1, a2) {
			t.Error("the cookie changed the rest of the ClientHello")
		}
		stripped, _ := ch2.appendWithCookie(nil, with, nil)
		if !bytes.Equal(stripped, hello) {
			t.Errorf("stripping a %d-byte cookie does not restore the original", len(c))
		}
	}
	if _, err := ch.appendWithCookie(nil, hello, make([]byte, maxCookieLen+1)); err == nil {
		t.Error("a 256-byte cookie was accepted")
	}
	// A second record after the ClientHello is kept.
	two := append(append([]byte{}, hello...), appendPlainAlert(nil, 1, 1, 0)...)
	ch3, err := parseClientHello(two)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := ch3.appendWithCookie(nil, two, []byte{9, 9})
	if !bytes.HasSuffix(out, appendPlainAlert(nil, 1, 1, 0)) {
		t.Error("trailing record lost")
	}

	bad := []struct {
		name string
		mod  func([]byte) []byte
	}{
		{"empty", func([]byte) []byte { return nil }},
		{"short header", func(b []byte) []byte { return b[:12] }},
		{"not handshake", func(b []byte) []byte { b[0] = contentAlert; return b }},
		{"TLS version", func(b []byte) []byte { b[1] = 3; return b }},
		{"epoch 1", func(b []byte) []byte { b[4] = 1; return b }},
		{"record too long", func(b []byte) []byte { b[12]++; return b }},
		{"not ClientHello", func(b []byte) []byte { b[13] = 2; return b }},
		{"fragmented", func(b []byte) []byte { b[13+11]--; return b }},
		{"fragment offset", func(b []byte) []byte { b[13+8] = 1; return b }},
		{"truncated", func(b []byte) []byte { return b[:13+12+20] }},
		{"session_id too long", func(b []byte) []byte { b[13+12+34] = 33; return b }},
		{"cookie past end", func(b []byte) []byte { b[13+12+35+int(b[13+12+34])] = 250; return b }},
	}
	for _, tt := range bad {
		if _, err := parseClientHello(tt.mod(append([]byte{}, hello...))); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", tt.name, err)
		}
	}
}

func TestHelloVerifyRequest(t *testing.T) {
	cookie := bytes.Repeat([]byte{7}, cookieLen)
	hvr := appendHelloVerifyRequest(nil, []byte{0, 0, 0, 0, 0, 5}, cookie)
	got, err := parseHelloVerifyRequest(hvr)
	if err != nil || !bytes.Equal(got, cookie) {
		t.Fatalf("parse = %x, %v", got, err)
	}
	if hvr[10] != 5 || hvr[2] != dtls10Minor {
		t.Errorf("record sequence %d, version minor %d", hvr[10], hvr[2])
	}
	for i, b := range [][]byte{
		nil, hvr[:20], hvr[:len(hvr)-1],
		appendHelloVerifyRequest(nil, make([]byte, 6), nil), // empty cookie
		appendPlainAlert(nil, 0, 2, 40),
	} {
		if _, err := parseHelloVerifyRequest(b); err == nil {
			t.Errorf("case %d parsed", i)
		}
	}
	lvl, desc, ok := parsePlainAlert(append(append([]byte{}, hvr...), appendPlainAlert(nil, 9, 2, AlertUnknownPSKIdentity)...))
	if !ok || lvl != 2 || desc != AlertUnknownPSKIdentity {
		t.Errorf("alert after a handshake record: %d %d %v", lvl, desc, ok)
	}
}

func TestCookieJar(t *testing.T) {
	hello := captureClientHello(t)
	ch, err := parseClientHello(hello)
	if err != nil {
		t.Fatal(err)
	}
	jar, err := newCookieJar()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	jar.now = func() time.Time { return now }
	addr := netip.MustParseAddrPort("192.0.2.1:4000")
	cookie := jar.issue(addr, &ch)
	if len(cookie) != cookieLen {
		t.Fatalf("cookie of %d bytes", len(cookie))
	}
	with := func(c []byte, d []byte) clientHello {
		b, err := ch.appendWithCookie(nil, d, c)
		if err != nil {
			t.Fatal(err)
		}
		x, err := parseClientHello(b)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	otherHello := append([]byte{}, hello...)
	otherHello[13+12+2] ^= 1 // another client random
	otherCH, _ := parseClientHello(otherHello)
	other, _ := otherCH.appendWithCookie(nil, otherHello, cookie)
	otherParsed, _ := parseClientHello(other)
	forged := append([]byte{}, cookie...)
	forged[len(forged)-1] ^= 1
	otherJar, _ := newCookieJar()
	otherJar.now = jar.now

	tests := []struct {
		name  string
		jar   *cookieJar
		addr  netip.AddrPort
		ch    clientHello
		at    time.Time
		valid bool
	}{
		{"valid", jar, addr, with(cookie, hello), now, true},
		{"valid 59 s later", jar, addr, with(cookie, hello), now.Add(59 * time.Second), true},
		{"IPv4-mapped address", jar, netip.MustParseAddrPort("[::ffff:192.0.2.1]:4000"), with(cookie, hello), now, true},
		{"expired", jar, addr, with(cookie, hello), now.Add(61 * time.Second), false},
		{"from the future", jar, addr, with(cookie, hello), now.Add(-10 * time.Second), false},
		{"other address", jar, netip.MustParseAddrPort("192.0.2.2:4000"), with(cookie, hello), now, false},
		{"other port", jar, netip.MustParseAddrPort("192.0.2.1:4001"), with(cookie, hello), now, false},
		{"other ClientHello", jar, addr, otherParsed, now, false},
		{"forged MAC", jar, addr, with(forged, hello), now, false},
		{"other server key", otherJar, addr, with(cookie, hello), now, false},
		{"no cookie", jar, addr, ch, now, false},
		{"short cookie", jar, addr, with(cookie[:10], hello), now, false},
	}
	for _, tt := range tests {
		at := tt.at
		tt.jar.now = func() time.Time { return at }
		if got := tt.jar.valid(tt.addr, &tt.ch); got != tt.valid {
			t.Errorf("%s: valid = %v", tt.name, got)
		}
	}
}

// TestClientHelloFlood sends ClientHellos from many addresses without
// ever answering the HelloVerifyRequest: the listener must answer each
// with a small HelloVerifyRequest and keep no state; bad cookies change
// nothing; a real client still gets in.
func TestClientHelloFlood(t *testing.T) {
	store := newTestStore()
	store.add("ep", testPSK(1))
	l, _ := startServer(t, store, nil)
	hello := captureClientHello(t)
	ch, _ := parseClientHello(hello)

	const spoofed = 40
	var cookies [][]byte
	for i := 0; i < spoofed; i++ {
		s, err := net.ListenUDP("udp4", loopback)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.WriteToUDP(hello, l.Addr().(*net.UDPAddr)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 2048)
		s.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, _, err := s.ReadFromUDP(buf)
		if err != nil {
			t.Fatalf("no HelloVerifyRequest: %v", err)
		}
		if n >= len(hello) {
			t.Errorf("HelloVerifyRequest of %d bytes for a %d-byte ClientHello amplifies", n, len(hello))
		}
		c, err := parseHelloVerifyRequest(buf[:n])
		if err != nil {
			t.Fatal(err)
		}
		cookies = append(cookies, c)
		s.Close()
	}
	// Echo cookies from the wrong sockets, and forged ones.
	s, _ := net.ListenUDP("udp4", loopback)
	defer s.Close()
	for i, c := range cookies[:5] {
		forged := append([]byte{}, c...)
		forged[i] ^= 0xFF
		for _, cookie := range [][]byte{c, forged} {
			d, _ := ch.appendWithCookie(nil, hello, cookie)
			s.WriteToUDP(d, l.Addr().(*net.UDPAddr))
		}
	}
	waitFor(t, "HelloVerifyRequests", func() bool { return l.Stats().HelloVerifies == spoofed+10 })
	st := l.Stats()
	if st.Handshakes != 0 || st.Active != 0 {
		t.Fatalf("cookie-less ClientHellos created state: %+v", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if c, err := l.AcceptConn(ctx); err == nil {
		c.Close()
		t.Fatal("Accept returned an association")
	}
	connect(t, l, l.Addr().(*net.UDPAddr), clientConfig("ep", testPSK(1)))
	if st := l.Stats(); st.Handshakes != 1 || st.Accepted != 1 {
		t.Errorf("after a real client: %+v", st)
	}
}

func TestListenerLimits(t *testing.T) {
	store := newTestStore()
	store.add("ep", testPSK(1))
	l, _ := startServer(t, store, func(c *Config) { c.MaxConns = 1 })
	connect(t, l, l.Addr().(*net.UDPAddr), clientConfig("ep", testPSK(1)))
	cfg := clientConfig("ep", testPSK(1))
	cfg.HandshakeTimeout = 300 * time.Millisecond
	if c, err := Dial(context.Background(), "udp4", l.Addr().(*net.UDPAddr), cfg); err == nil {
		c.Close()
		t.Fatal("a second association beyond MaxConns succeeded")
	}
	if l.Stats().Dropped == 0 {
		t.Error("nothing dropped")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v", err)
	}
	if err := l.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
}
