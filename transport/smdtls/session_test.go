package smdtls

import (
	"bytes"
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/pion/dtls/v2"

	"trustnac/transport/pttls"
)

func TestHandshakeAndExporter(t *testing.T) {
	store := newTestStore()
	store.add("endpoint-1", testPSK(1))
	l, _ := startServer(t, store, nil)
	client, server := connect(t, l, l.Addr().(*net.UDPAddr), clientConfig("endpoint-1", testPSK(1)))

	if got := server.PeerIdentity(); string(got) != "endpoint-1" {
		t.Errorf("server PeerIdentity = %q", got)
	}
	if got := client.PeerIdentity(); string(got) != "endpoint-1" {
		t.Errorf("client PeerIdentity = %q", got)
	}
	if client.CipherSuite() != "TLS_PSK_WITH_SM4_GCM_SM3" || server.CipherSuite() != client.CipherSuite() {
		t.Errorf("suite %q / %q", client.CipherSuite(), server.CipherSuite())
	}

	tests := []struct {
		label   string
		context []byte
		length  int
	}{
		{"EXPORTER-trustnac-tpm-nonce", nil, 32},
		{"EXPORTER-trustnac-tpm-nonce", []byte{}, 32},
		{"EXPORTER-trustnac-tpm-nonce", []byte("session 1"), 32},
		{"EXPORTER-other", nil, 100},
	}
	seen := map[string]string{}
	for _, tt := range tests {
		c, err := client.ExportKeyingMaterial(tt.label, tt.context, tt.length)
		if err != nil {
			t.Fatal(err)
		}
		s, err := server.ExportKeyingMaterial(tt.label, tt.context, tt.length)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(c, s) || len(c) != tt.length {
			t.Errorf("%q/%q: client %x, server %x", tt.label, tt.context, c, s)
		}
		if prev, dup := seen[string(c[:16])]; dup {
			t.Errorf("%q/%q exports the same bytes as %s", tt.label, tt.context, prev)
		}
		seen[string(c[:16])] = tt.label + "/" + string(tt.context)
	}

	// A second session exports other bytes.
	client2, server2 := connect(t, l, l.Addr().(*net.UDPAddr), clientConfig("endpoint-1", testPSK(1)))
	a, _ := client.ExportKeyingMaterial("EXPORTER-x", nil, 32)
	b, _ := client2.ExportKeyingMaterial("EXPORTER-x", nil, 32)
	b2, _ := server2.ExportKeyingMaterial("EXPORTER-x", nil, 32)
	if bytes.Equal(a, b) || !bytes.Equal(b, b2) {
		t.Errorf("session 1 %x, session 2 client %x server %x", a, b, b2)
	}

	for _, bad := range []struct {
		label  string
		ctx    []byte
		length int
	}{
		{"key expansion", nil, 16},
		{"master secret", nil, 16},
		{"extended master secret", nil, 16},
		{"client finished", nil, 16},
		{"EXPORTER-x", nil, 0},
		{"EXPORTER-x", nil, maxExportLen + 1},
		{"EXPORTER-x", make([]byte, 0x10000), 16},
	} {
		if _, err := client.ExportKeyingMaterial(bad.label, bad.ctx, bad.length); err == nil {
			t.Errorf("ExportKeyingMaterial(%q, %d-byte context, %d) succeeded", bad.label, len(bad.ctx), bad.length)
		}
	}
}

func TestHandshakeRefused(t *testing.T) {
	tests := []struct {
		name     string
		id       string
		psk      []byte
		storeErr error
		tweak    func(*dtls.Config)
		client   error // errors.Is on the client's error
		alert    uint8 // the alert the client reports
		server   error // errors.Is on the server's logged error, if set
	}{
		{name: "wrong PSK", id: "ep", psk: testPSK(2), client: ErrAuthFailed, alert: AlertBadRecordMAC, server: ErrAuthFailed},
		{name: "unknown identity", id: "stranger", psk: testPSK(1), client: ErrUnknownIdentity, alert: AlertUnknownPSKIdentity, server: ErrUnknownIdentity},
		{name: "revoked identity", id: "revoked", psk: testPSK(1), client: ErrUnknownIdentity, alert: AlertUnknownPSKIdentity, server: ErrUnknownIdentity},
		{name: "store failure", id: "ep", psk: testPSK(1), storeErr: errors.New("backend down"), alert: AlertInternalError},
		{
			name: "only AES suite offered", id: "ep", psk: testPSK(1),
			tweak: func(c *dtls.Config) {
				c.CipherSuites = []dtls.CipherSuiteID{dtls.TLS_PSK_WITH_AES_128_GCM_SHA256}
				c.CustomCipherSuites = nil
			},
			client: ErrNoSharedSuite, alert: AlertInsufficientSecurity,
		},
		{
			name: "no extended master secret", id: "ep", psk: testPSK(1),
			tweak:  func(c *dtls.Config) { c.ExtendedMasterSecret = dtls.DisableExtendedMasterSecret },
			client: ErrNoSharedSuite, alert: AlertInsufficientSecurity,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := newTestStore()
			store.add("ep", testPSK(1))
			store.add("revoked", testPSK(1))
			store.revoked["revoked"] = true
			store.fail = tt.storeErr
			l, sink := startServer(t, store, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, err := dial(ctx, "udp4", l.Addr().(*net.UDPAddr), clientConfig(tt.id, tt.psk), dialOpts{tweak: tt.tweak})
			if err == nil {
				c.Close()
				t.Fatal("handshake succeeded")
			}
			if errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("refusal waited for the handshake timeout: %v", err)
			}
			if tt.client != nil && !errors.Is(err, tt.client) {
				t.Errorf("client error %v, want %v", err, tt.client)
			}
			var ae *AlertError
			if !errors.As(err, &ae) || ae.Description != tt.alert || !ae.Remote {
				t.Errorf("client error %v, want alert %d from the peer", err, tt.alert)
			}
			waitFor(t, "server failure", func() bool { return l.Stats().Failed == 1 })
			if tt.server != nil && !errorsIs(sink.errors(), tt.server) {
				t.Errorf("server logged %q, want %v", sink.text(), tt.server)
			}
			if bytes.Contains([]byte(sink.text()), testPSK(1)) {
				t.Error("a PSK reached the log")
			}
			actx, acancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer acancel()
			if c, err := l.AcceptConn(actx); err == nil {
				c.Close()
				t.Error("Accept returned a refused association")
			}
			waitFor(t, "association cleanup", func() bool { return l.Stats().Active == 0 })
		})
	}
}

func TestDialTimeout(t *testing.T) {
	// A socket that never answers.
	silent, err := net.ListenUDP("udp4", loopback)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	cfg := clientConfig("ep", testPSK(1))
	cfg.HandshakeTimeout = 300 * time.Millisecond
	_, err = Dial(context.Background(), "udp4", silent.LocalAddr().(*net.UDPAddr), cfg)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
}

func TestMessagesRoundTrip(t *testing.T) {
	store := newTestStore()
	store.add("ep", testPSK(1))
	for _, mtu := range []int{MinMTU, DefaultMTU, MaxMTU} {
		chunk := fragmentChunk(mtu)
		sizes := []int{0, 1, chunk - pttls.HeaderLen, chunk - pttls.HeaderLen + 1, 3*chunk + 5, 300 << 10, DefaultMaxMessage - pttls.HeaderLen}
		t.Run("MTU"+itoa(mtu), func(t *testing.T) {
			l, _ := startServer(t, store, func(c *Config) { c.MTU = mtu })
			p := newProxy(t, l.Addr(), nil)
			cfg := clientConfig("ep", testPSK(1))
			cfg.MTU = mtu
			client, server := connect(t, l, p.addr(), cfg)
			for i, n := range sizes {
				for _, dir := range []struct {
					name     string
					from, to *Conn
				}{{"up", client, server}, {"down", server, client}} {
					want := ptMessage(byte(i), n)
					errc := make(chan error, 1)
					go func() { errc <- dir.from.WriteMessage(want) }()
					got, err := dir.to.ReadMessage()
					if err != nil {
						t.Fatalf("%s %d bytes: read: %v", dir.name, n, err)
					}
					if err := <-errc; err != nil {
						t.Fatalf("%s %d bytes: write: %v", dir.name, n, err)
					}
					if got.Type != want.Type || got.ID != want.ID || !bytes.Equal(got.Value, want.Value) {
						t.Fatalf("%s %d bytes: message differs", dir.name, n)
					}
				}
			}
			if n := p.largest(); n > mtu {
				t.Errorf("a %d-byte datagram exceeds the MTU %d", n, mtu)
			}
		})
	}
}

func itoa(n int) string { return string(appendInt(nil, n)) }

func appendInt(b []byte, n int) []byte {
	if n >= 10 {
		b = appendInt(b, n/10)
	}
	return append(b, byte('0'+n%10))
}

func TestStreamWrites(t *testing.T) {
	store := newTestStore()
	store.add("ep", testPSK(1))
	l, _ := startServer(t, store, nil)
	client, server := connect(t, l, l.Addr().(*net.UDPAddr), clientConfig("ep", testPSK(1)))

	// Two messages written in odd pieces, then read back as messages.
	var stream []byte
	m1, m2 := ptMessage(1, 5000), ptMessage(2, 10)
	stream, _ = m1.AppendBinary(stream)
	stream, _ = m2.AppendBinary(stream)
	go func() {
		for _, cut := range [][2]int{{0, 7}, {7, 3000}, {3000, 5020}, {5020, len(stream)}} {
			if _, err := client.Write(stream[cut[0]:cut[1]]); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for _, want := range []*pttls.Message{m1, m2} {
		got, err := server.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != want.ID || !bytes.Equal(got.Value, want.Value) {
			t.Fatalf("message %d differs", want.ID)
		}
	}

	// Writes that cannot be PT-TLS messages fail at once.
	bad := make([]byte, 16)
	bad[11] = 3 // Message Length 3 < 16
	if _, err := client.Write(bad); !errors.Is(err, ErrMalformed) {
		t.Errorf("short Message Length: %v", err)
	}
	if err := client.WriteMessage(ptMessage(3, DefaultMaxMessage)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized message: %v", err)
	}
}

func TestReassemblyCap(t *testing.T) {
	store := newTestStore()
	store.add("ep", testPSK(1))
	l, _ := startServer(t, store, func(c *Config) { c.MaxMessage = 64 << 10 })
	cfg := clientConfig("ep", testPSK(1))
	cfg.MaxMessage = 4 << 20
	client, server := connect(t, l, l.Addr().(*net.UDPAddr), cfg)
	fastARQ(client)

	errc := make(chan error, 1)
	go func() { errc <- client.WriteMessage(ptMessage(1, 100<<10)) }()
	_, err := server.ReadMessage()
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("server read: %v, want ErrTooLarge", err)
	}
	if server.rx.buf != nil {
		t.Error("the server allocated a reassembly buffer for the oversized message")
	}
	if err := <-errc; err == nil {
		t.Fatal("client write succeeded")
	}
}

func TestWriteDeadline(t *testing.T) {
	store := newTestStore()
	store.add("ep", testPSK(1))
	l, _ := startServer(t, store, nil)
	client, _ := connect(t, l, l.Addr().(*net.UDPAddr), clientConfig("ep", testPSK(1)))
	// The server never reads: the first message fills its inbox, the
	// second waits for the server to take it until the deadline.
	if err := client.WriteMessage(ptMessage(1, 100)); err != nil {
		t.Fatal(err)
	}
	client.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	var ne net.Error
	err := client.WriteMessage(ptMessage(2, 3000))
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("err = %v, want a timeout", err)
	}
	client.SetWriteDeadline(time.Time{})
	if err2 := client.WriteMessage(ptMessage(3, 10)); err2 == nil || err2.Error() != err.Error() {
		t.Errorf("write after a failed write: %v, want the same error", err2)
	}
	client.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := client.ReadMessage(); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read err = %v, want a timeout", err)
	}
}

func TestCloseEndsPeer(t *testing.T) {
	store := newTestStore()
	store.add("ep", testPSK(1))
	l, _ := startServer(t, store, nil)
	client, server := connect(t, l, l.Addr().(*net.UDPAddr), clientConfig("ep", testPSK(1)))
	if err := client.WriteMessage(ptMessage(1, 10)); err != nil {
		t.Fatal(err)
	}
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	if err := client.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
	if _, err := server.ReadMessage(); err != nil { // still delivered
		t.Fatal(err)
	}
	if _, err := server.ReadMessage(); err == nil {
		t.Fatal("read after the peer closed succeeded")
	}
	waitFor(t, "association removal", func() bool { return l.Stats().Active == 0 })
	if _, err := client.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("read after Close: %v", err)
	}
}

func TestPTTLSOverSMDTLS(t *testing.T) {
	store := newTestStore()
	store.add("ep", testPSK(1))
	l, _ := startServer(t, store, nil)
	srv := &pttls.Server{Handler: pttls.HandlerFunc(func(ctx context.Context, c *pttls.Conn) {
		b, err := c.ReadBatch()
		if err != nil {
			t.Error(err)
			return
		}
		if id := c.NetConn().(*Conn).PeerIdentity(); string(id) != "ep" {
			t.Errorf("identity %q", id)
		}
		_ = c.WriteBatch(append([]byte("echo:"), b...))
	})}
	go srv.Serve(l)
	defer srv.Shutdown(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	nc, err := Dial(ctx, "udp4", l.Addr().(*net.UDPAddr), clientConfig("ep", testPSK(1)))
	if err != nil {
		t.Fatal(err)
	}
	pc, err := pttls.Client(ctx, nc, &pttls.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	batch := bytes.Repeat([]byte{2, 0x80, 0, 1}, 5000) // 20 KB, several records
	if err := pc.WriteBatch(batch); err != nil {
		t.Fatal(err)
	}
	got, err := pc.ReadBatch()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, append([]byte("echo:"), batch...)) {
		t.Fatal("echo differs")
	}
}

func TestClientRestartReplacesAssociation(t *testing.T) {
	store := newTestStore()
	store.add("ep", testPSK(1))
	l, _ := startServer(t, store, nil)
	port, err := net.ListenUDP("udp4", loopback) // reserve a port
	if err != nil {
		t.Fatal(err)
	}
	laddr := port.LocalAddr().(*net.UDPAddr)
	port.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var wire *clientWire
	c1, err := dial(ctx, "udp4", l.Addr().(*net.UDPAddr), clientConfig("ep", testPSK(1)), dialOpts{laddr: laddr, onWire: func(w *clientWire) { wire = w }})
	if err != nil {
		t.Fatal(err)
	}
	s1, err := l.AcceptConn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s1.Close()
	wire.UDPConn.Close() // the client dies without close_notify
	c1.Close()

	c2, err := dial(ctx, "udp4", l.Addr().(*net.UDPAddr), clientConfig("ep", testPSK(1)), dialOpts{laddr: laddr})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	s2, err := l.AcceptConn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if _, err := s1.ReadMessage(); err == nil {
		t.Error("the replaced association still reads")
	}
	go c2.WriteMessage(ptMessage(5, 10))
	if m, err := s2.ReadMessage(); err != nil || m.ID != 5 {
		t.Fatalf("new association: %v", err)
	}
}
