package pttls

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

func TestSessionNoSASL(t *testing.T) {
	cli, srv := runPair(t, nil, nil)
	if cli.err != nil || srv.err != nil {
		t.Fatalf("client %v, server %v", cli.err, srv.err)
	}
	if srv.c.Identity() != "" {
		t.Errorf("identity %q without SASL", srv.c.Identity())
	}
	if _, ok := cli.c.NetConn().(*tls.Conn); !ok {
		t.Errorf("NetConn is %T", cli.c.NetConn())
	}
	// PB-TNC batches both ways, including an empty one.
	for _, b := range [][]byte{[]byte("CDATA batch"), {}, bytes.Repeat([]byte{1}, 100000)} {
		if err := cli.c.WriteBatch(b); err != nil {
			t.Fatal(err)
		}
		got, err := srv.c.ReadBatch()
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("server read %d bytes, %v", len(got), err)
		}
		if err := srv.c.WriteBatch(b); err != nil {
			t.Fatal(err)
		}
		got, err = cli.c.ReadBatch()
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("client read %d bytes, %v", len(got), err)
		}
	}
}

func TestSessionSASLPlain(t *testing.T) {
	tests := []struct {
		name       string
		client     []ClientMechanism
		server     []ServerMechanism
		require    bool
		wantID     string
		wantErr    error // for both sides
		wantClient error
		wantRemote ErrorCode // the server sees a PT-TLS Error from the client
	}{
		{
			name:   "success",
			client: []ClientMechanism{&PlainClient{Username: "alice", Password: "secret"}},
			server: []ServerMechanism{plainVerifier()}, require: true,
			wantID: "alice",
		},
		{
			name:   "authzid becomes the identity",
			client: []ClientMechanism{&PlainClient{Authzid: "ops", Username: "alice", Password: "secret"}},
			server: []ServerMechanism{plainVerifier()}, require: true,
			wantID: "ops",
		},
		{
			name:   "wrong password",
			client: []ClientMechanism{&PlainClient{Username: "alice", Password: "guess"}},
			server: []ServerMechanism{plainVerifier()}, require: true,
			wantErr: ErrSASLFailed,
		},
		{
			name:   "client prefers its own order",
			client: []ClientMechanism{&otherMech{}, &PlainClient{Username: "alice", Password: "secret"}},
			server: []ServerMechanism{plainVerifier()}, require: true,
			wantID: "alice",
		},
		{
			name:   "RequireSASL, client has no mechanism",
			client: nil,
			server: []ServerMechanism{plainVerifier()}, require: true,
			wantClient: ErrNoSASLMechanism, wantRemote: CodeSASLMechanismError,
		},
		{
			name:   "client has mechanisms, server asks for none",
			client: []ClientMechanism{&PlainClient{Username: "alice", Password: "secret"}},
			server: nil,
			wantID: "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cli, srv := runPair(t,
				&ClientConfig{SASL: tt.client},
				&ServerConfig{SASL: tt.server, RequireSASL: tt.require})
			switch {
			case tt.wantErr != nil:
				if !errors.Is(cli.err, tt.wantErr) || !errors.Is(srv.err, tt.wantErr) {
					t.Fatalf("client %v, server %v; want %v", cli.err, srv.err, tt.wantErr)
				}
			case tt.wantClient != nil:
				if !errors.Is(cli.err, tt.wantClient) {
					t.Fatalf("client %v, want %v", cli.err, tt.wantClient)
				}
				var pe *Error
				if !errors.As(srv.err, &pe) || !pe.Remote || pe.Code != tt.wantRemote {
					t.Fatalf("server %v, want remote %v", srv.err, tt.wantRemote)
				}
			default:
				if cli.err != nil || srv.err != nil {
					t.Fatalf("client %v, server %v", cli.err, srv.err)
				}
				if got := srv.c.Identity(); got != tt.wantID {
					t.Fatalf("identity %q, want %q", got, tt.wantID)
				}
				if err := cli.c.WriteBatch([]byte("after SASL")); err != nil {
					t.Fatal(err)
				}
				if b, err := srv.c.ReadBatch(); err != nil || string(b) != "after SASL" {
					t.Fatalf("ReadBatch %q, %v", b, err)
				}
			}
		})
	}
}

// otherMech is a client mechanism the test server never offers.
type otherMech struct{}

func (*otherMech) Name() string                { return "OTHER" }
func (*otherMech) Start() ([]byte, error)      { return nil, nil }
func (*otherMech) Next([]byte) ([]byte, error) { return nil, errors.New("unused") }

// Without RequireSASL, a client that authenticated with a verified TLS
// certificate is not asked for SASL; with it, it is.
func TestClientCertificateAndRequireSASL(t *testing.T) {
	for _, require := range []bool{false, true} {
		ccfg := clientTLS(t)
		cert, _ := testCert(t)
		ccfg.Certificates = []tls.Certificate{cert}
		cc, sc := tlsPair(t, ccfg)
		cli, srv := runPairOn(t, cc, sc, &ClientConfig{}, &ServerConfig{SASL: []ServerMechanism{plainVerifier()}, RequireSASL: require})
		if require {
			if !errors.Is(cli.err, ErrNoSASLMechanism) || srv.err == nil {
				t.Errorf("RequireSASL: client %v, server %v", cli.err, srv.err)
			}
			continue
		}
		if cli.err != nil || srv.err != nil {
			t.Errorf("client certificate: client %v, server %v", cli.err, srv.err)
		}
	}
}

func TestMessageIdentifiers(t *testing.T) {
	cc, sc := tlsPair(t, nil)
	done := goClient(cc, nil)
	p := newPeer(t, sc)
	if err := sc.Handshake(); err != nil {
		t.Fatal(err)
	}
	var ids []uint32
	ids = append(ids, p.expect(TypeVersionRequest).ID)
	p.negotiateAsServerAfterRequest()
	cli := waitResult(t, done)
	if cli.err != nil {
		t.Fatal(cli.err)
	}
	for i := 0; i < 3; i++ {
		if err := cli.c.WriteBatch([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, p.expect(TypePBBatch).ID)
	}
	for i, id := range ids {
		if id != uint32(i) {
			t.Fatalf("message IDs %v, want 0, 1, 2, ...", ids)
		}
	}
}

// negotiateAsServerAfterRequest finishes negotiateAsServer once the Version
// Request has been read.
func (p *peer) negotiateAsServerAfterRequest() {
	p.tb.Helper()
	resp, _ := VersionResponse{Version: 1}.AppendBinary(nil)
	p.send(VendorIETF, TypeVersionResponse, resp)
	p.send(VendorIETF, TypeSASLMechanisms, nil)
}

func TestServerVersionMismatch(t *testing.T) {
	tests := []struct {
		name string
		req  VersionRequest
		ok   bool
	}{
		{name: "exactly 1", req: VersionRequest{1, 1, 1}, ok: true},
		{name: "range containing 1", req: VersionRequest{0, 9, 2}, ok: true},
		{name: "only newer", req: VersionRequest{2, 3, 2}},
		{name: "only 0", req: VersionRequest{0, 0, 0}},
		{name: "inverted range", req: VersionRequest{1, 0, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cc, sc := tlsPair(t, nil)
			done := goServer(sc, nil)
			p := newPeer(t, cc)
			value, _ := tt.req.AppendBinary(nil)
			wire := p.send(VendorIETF, TypeVersionRequest, value)
			if tt.ok {
				if m := p.expect(TypeVersionResponse); !bytes.Equal(m.Value, []byte{0, 0, 0, 1}) {
					t.Fatalf("Version Response %x", m.Value)
				}
				p.expect(TypeSASLMechanisms)
				if r := waitResult(t, done); r.err != nil {
					t.Fatal(r.err)
				}
				return
			}
			e := p.expectError(CodeVersionNotSupported)
			if !bytes.Equal(e.Header, wire) {
				t.Fatalf("error copy %x, want the request %x", e.Header, wire)
			}
			p.expectClosed()
			r := waitResult(t, done)
			var pe *Error
			if !errors.Is(r.err, ErrVersion) || !errors.As(r.err, &pe) || pe.Remote || pe.Code != CodeVersionNotSupported {
				t.Fatalf("server err %v", r.err)
			}
		})
	}
}

func TestClientVersionMismatch(t *testing.T) {
	cc, sc := tlsPair(t, nil)
	done := goClient(cc, nil)
	p := newPeer(t, sc)
	p.expect(TypeVersionRequest)
	resp, _ := VersionResponse{Version: 2}.AppendBinary(nil)
	p.send(VendorIETF, TypeVersionResponse, resp)
	p.expectError(CodeVersionNotSupported)
	p.expectClosed()
	if r := waitResult(t, done); !errors.Is(r.err, ErrVersion) {
		t.Fatalf("client err %v", r.err)
	}
}

// A peer's PT-TLS Error ends negotiation with a remote *Error and is not
// answered.
func TestClientGetsRemoteError(t *testing.T) {
	cc, sc := tlsPair(t, nil)
	done := goClient(cc, nil)
	p := newPeer(t, sc)
	req := p.expect(TypeVersionRequest)
	hdr, _ := req.AppendBinary(nil)
	value, _ := (&Error{Code: CodeVersionNotSupported, Header: hdr}).AppendBinary(nil)
	p.send(VendorIETF, TypeError, value)
	p.expectClosed()
	r := waitResult(t, done)
	var pe *Error
	if !errors.As(r.err, &pe) || !pe.Remote || pe.Code != CodeVersionNotSupported || !bytes.Equal(pe.Header, hdr) {
		t.Fatalf("client err %#v", r.err)
	}
}

// The client accepts the SASL Result code in each width seen in the wild.
func TestClientSASLResultWidths(t *testing.T) {
	tests := []struct {
		name   string
		result []byte
		ok     bool
	}{
		{name: "16-bit success", result: []byte{0, 0}, ok: true},
		{name: "32-bit success", result: []byte{0, 0, 0, 0}, ok: true},
		{name: "8-bit success", result: []byte{0}, ok: true},
		{name: "16-bit failure", result: []byte{0, 1}},
		{name: "32-bit failure", result: []byte{0, 0, 0, 1}},
		{name: "32-bit abort", result: []byte{0, 0, 0, 2}},
		{name: "32-bit mechanism failure", result: []byte{0, 0, 0, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cc, sc := tlsPair(t, nil)
			done := goClient(cc, &ClientConfig{SASL: []ClientMechanism{&PlainClient{Username: "u", Password: "p"}}})
			p := newPeer(t, sc)
			p.expect(TypeVersionRequest)
			resp, _ := VersionResponse{Version: 1}.AppendBinary(nil)
			p.send(VendorIETF, TypeVersionResponse, resp)
			p.send(VendorIETF, TypeSASLMechanisms, []byte("\x05PLAIN"))
			sel := p.expect(TypeSASLMechanismSelection)
			if !bytes.Equal(sel.Value, []byte("\x05PLAIN\x00u\x00p")) {
				t.Fatalf("selection %q", sel.Value)
			}
			p.send(VendorIETF, TypeSASLResult, tt.result)
			if tt.ok {
				p.send(VendorIETF, TypeSASLMechanisms, nil)
				r := waitResult(t, done)
				if r.err != nil {
					t.Fatal(r.err)
				}
				if err := r.c.WriteBatch([]byte("x")); err != nil {
					t.Fatal(err)
				}
				p.expect(TypePBBatch)
				return
			}
			p.expectClosed()
			r := waitResult(t, done)
			if !errors.Is(r.err, ErrSASLFailed) {
				t.Fatalf("client err %v", r.err)
			}
		})
	}
}

// A server that challenges (no use of the initial response) and then asks
// for a second authentication.
func TestClientSASLChallengeAndSecondRound(t *testing.T) {
	cc, sc := tlsPair(t, nil)
	done := goClient(cc, &ClientConfig{SASL: []ClientMechanism{&PlainClient{Username: "u", Password: "p"}}})
	p := newPeer(t, sc)
	p.expect(TypeVersionRequest)
	resp, _ := VersionResponse{Version: 1}.AppendBinary(nil)
	p.send(VendorIETF, TypeVersionResponse, resp)
	for round := 0; round < 2; round++ {
		p.send(VendorIETF, TypeSASLMechanisms, []byte("\x05PLAIN"))
		p.expect(TypeSASLMechanismSelection)
		p.send(VendorIETF, TypeSASLAuthData, nil)
		if m := p.expect(TypeSASLAuthData); string(m.Value) != "\x00u\x00p" {
			t.Fatalf("auth data %q", m.Value)
		}
		p.send(VendorIETF, TypeSASLResult, []byte{0, 0})
	}
	p.send(VendorIETF, TypeSASLMechanisms, nil)
	if r := waitResult(t, done); r.err != nil {
		t.Fatal(r.err)
	}
}

// Garbage from a client during negotiation is answered with a PT-TLS Error
// and the connection is closed.
func TestServerGarbage(t *testing.T) {
	vr, _ := VersionRequest{1, 1, 1}.AppendBinary(nil)
	tests := []struct {
		name   string
		script func(p *peer) []byte // returns the offending message
		code   ErrorCode
	}{
		{
			name:   "length below header",
			script: func(p *peer) []byte { b := hdrBytes(0, 1, 8, 0); p.sendRaw(b); return b },
			code:   CodeMalformedMessage,
		},
		{
			name:   "batch before version negotiation",
			script: func(p *peer) []byte { return p.send(VendorIETF, TypePBBatch, []byte("early")) },
			code:   CodeInvalidMessage,
		},
		{
			name:   "vendor-specific message",
			script: func(p *peer) []byte { return p.send(0x5597, 1, vr) },
			code:   CodeTypeNotSupported,
		},
		{
			name:   "experimental type",
			script: func(p *peer) []byte { return p.send(VendorIETF, TypeExperimental, nil) },
			code:   CodeTypeNotSupported,
		},
		{
			name:   "unassigned IETF type",
			script: func(p *peer) []byte { return p.send(VendorIETF, 9, nil) },
			code:   CodeTypeNotSupported,
		},
		{
			name:   "Version Request of 5 bytes",
			script: func(p *peer) []byte { return p.send(VendorIETF, TypeVersionRequest, []byte{0, 1, 1, 1, 0}) },
			code:   CodeMalformedMessage,
		},
		{
			name: "random bytes",
			script: func(p *peer) []byte {
				b := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
				p.sendRaw(b)
				return b[:HeaderLen]
			},
			code: CodeInvalidMessage, // the "length" is "TP/1", far above the maximum
		},
	}
	for _, tt := range tests {
		for _, withTLS := range []bool{true, false} {
			name := tt.name + map[bool]string{true: "/TLS", false: "/TCP"}[withTLS]
			t.Run(name, func(t *testing.T) {
				var cc, sc net.Conn
				if withTLS {
					cc, sc = tlsPair(t, nil)
				} else {
					cc, sc = tcpPair(t)
				}
				done := goServer(sc, nil)
				p := newPeer(t, cc)
				offending := tt.script(p)
				e := p.expectError(tt.code)
				want := offending[:min(len(offending), MaxErrorCopy)]
				if !bytes.Equal(e.Header, want) {
					t.Fatalf("error copy %x, want %x", e.Header, want)
				}
				p.expectClosed()
				r := waitResult(t, done)
				var pe *Error
				if !errors.As(r.err, &pe) || pe.Remote || pe.Code != tt.code {
					t.Fatalf("server err %v", r.err)
				}
			})
		}
	}
}

func hdrBytes(vendor uint32, typ MessageType, length, id uint32) []byte {
	return appendHeader(nil, vendor, typ, length, id)
}

// In the data phase: batches pass, vendor messages are answered with Type
// Not Supported and skipped, negotiation messages are fatal.
func TestDataPhase(t *testing.T) {
	cc, sc := tlsPair(t, nil)
	done := goServer(sc, nil)
	p := newPeer(t, cc)
	p.negotiateAsClient()
	srv := waitResult(t, done)
	if srv.err != nil {
		t.Fatal(srv.err)
	}
	vendorMsg := p.send(0x5597, 42, []byte("vendor"))
	p.send(VendorIETF, TypePBBatch, []byte("batch 1"))
	got, err := srv.c.ReadBatch()
	if err != nil || string(got) != "batch 1" {
		t.Fatalf("ReadBatch %q, %v", got, err)
	}
	if e := p.expectError(CodeTypeNotSupported); !bytes.Equal(e.Header, vendorMsg) {
		t.Fatalf("copy %x", e.Header)
	}
	vr, _ := VersionRequest{1, 1, 1}.AppendBinary(nil)
	again := p.send(VendorIETF, TypeVersionRequest, vr)
	readErr := make(chan error, 1)
	go func() {
		_, err := srv.c.ReadBatch()
		readErr <- err
	}()
	if e := p.expectError(CodeInvalidMessage); !bytes.Equal(e.Header, again) {
		t.Fatalf("copy %x", e.Header)
	}
	p.expectClosed()
	err = <-readErr
	var pe *Error
	if !errors.As(err, &pe) || pe.Code != CodeInvalidMessage || pe.Remote || !errors.Is(err, ErrUnexpected) {
		t.Fatalf("ReadBatch err %v", err)
	}
}

func TestDataPhaseTooManySkipped(t *testing.T) {
	cc, sc := tlsPair(t, nil)
	done := goServer(sc, nil)
	p := newPeer(t, cc)
	p.negotiateAsClient()
	srv := waitResult(t, done)
	if srv.err != nil {
		t.Fatal(srv.err)
	}
	readErr := make(chan error, 1)
	go func() {
		_, err := srv.c.ReadBatch()
		readErr <- err
	}()
	for i := 0; i <= maxSkipped; i++ {
		p.send(9, 1, nil)
	}
	for i := 0; i < maxSkipped; i++ {
		p.expectError(CodeTypeNotSupported)
	}
	p.expectError(CodeTypeNotSupported) // the last one is fatal
	p.expectClosed()
	err := <-readErr
	var pe *Error
	if !errors.As(err, &pe) || pe.Code != CodeTypeNotSupported {
		t.Fatalf("ReadBatch err %v", err)
	}
}

func TestDataPhaseRemoteError(t *testing.T) {
	cc, sc := tlsPair(t, nil)
	done := goServer(sc, nil)
	p := newPeer(t, cc)
	p.negotiateAsClient()
	srv := waitResult(t, done)
	if srv.err != nil {
		t.Fatal(srv.err)
	}
	value, _ := (&Error{Code: CodeInvalidParameter}).AppendBinary(nil)
	p.send(VendorIETF, TypeError, value)
	_, err := srv.c.ReadBatch()
	var pe *Error
	if !errors.As(err, &pe) || !pe.Remote || pe.Code != CodeInvalidParameter {
		t.Fatalf("ReadBatch err %v", err)
	}
	p.expectClosed() // not answered, connection closed
}

// An oversized message is refused from its header alone: the server sends
// Invalid Message with the header and closes without waiting for the body.
func TestOversize(t *testing.T) {
	for _, phase := range []string{"negotiation", "data"} {
		t.Run(phase, func(t *testing.T) {
			cc, sc := tlsPair(t, nil)
			done := goServer(sc, &ServerConfig{MaxMessageSize: 4096})
			p := newPeer(t, cc)
			readErr := make(chan error, 1)
			if phase == "data" {
				p.negotiateAsClient()
				srv := waitResult(t, done)
				if srv.err != nil {
					t.Fatal(srv.err)
				}
				go func() {
					_, err := srv.c.ReadBatch()
					readErr <- err
				}()
			}
			hdr := hdrBytes(VendorIETF, TypePBBatch, 4097, p.id)
			p.sendRaw(hdr) // the body never comes
			e := p.expectError(CodeInvalidMessage)
			if !bytes.Equal(e.Header, hdr) {
				t.Fatalf("copy %x, want the header %x", e.Header, hdr)
			}
			p.expectClosed()
			var err error
			if phase == "data" {
				err = <-readErr
			} else {
				err = waitResult(t, done).err
			}
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("server err %v", err)
			}
		})
	}
	cli, srv := runPair(t, &ClientConfig{MaxMessageSize: 4096}, nil)
	if cli.err != nil || srv.err != nil {
		t.Fatal(cli.err, srv.err)
	}
	if err := cli.c.WriteBatch(make([]byte, 4096-HeaderLen+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("WriteBatch of an oversized batch: %v", err)
	}
	if err := cli.c.WriteBatch(make([]byte, 4096-HeaderLen)); err != nil {
		t.Fatalf("WriteBatch at the limit: %v", err)
	}
}

// A silent peer times out: in negotiation (after or even before the TLS
// handshake) and, with IdleTimeout, in the data phase.
func TestTimeouts(t *testing.T) {
	t.Run("server, silent after TLS handshake", func(t *testing.T) {
		cc, sc := tlsPair(t, nil)
		done := goServer(sc, &ServerConfig{HandshakeTimeout: 150 * time.Millisecond})
		if err := cc.Handshake(); err != nil {
			t.Fatal(err)
		}
		if r := waitResult(t, done); !errors.Is(r.err, os.ErrDeadlineExceeded) {
			t.Fatalf("err %v", r.err)
		}
		newPeer(t, cc).expectClosed()
	})
	t.Run("server, silent TCP peer never starts TLS", func(t *testing.T) {
		cc, sc := tcpPair(t)
		done := goServer(tls.Server(sc, serverTLS(t)), &ServerConfig{HandshakeTimeout: 150 * time.Millisecond})
		if r := waitResult(t, done); !errors.Is(r.err, os.ErrDeadlineExceeded) && !errors.Is(r.err, context.DeadlineExceeded) {
			t.Fatalf("err %v", r.err)
		}
		_ = cc
	})
	t.Run("client, silent server", func(t *testing.T) {
		cc, sc := tlsPair(t, nil)
		done := goClient(cc, &ClientConfig{HandshakeTimeout: 150 * time.Millisecond})
		p := newPeer(t, sc)
		p.expect(TypeVersionRequest)
		if r := waitResult(t, done); !errors.Is(r.err, os.ErrDeadlineExceeded) {
			t.Fatalf("err %v", r.err)
		}
	})
	t.Run("client, context cancelled", func(t *testing.T) {
		cc, sc := tlsPair(t, nil)
		ctx, cancel := context.WithCancel(context.Background())
		ch := make(chan error, 1)
		go func() {
			_, err := Client(ctx, cc, nil)
			ch <- err
		}()
		newPeer(t, sc).expect(TypeVersionRequest)
		cancel()
		select {
		case err := <-ch:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Client ignored the cancelled context")
		}
	})
	t.Run("data phase idle", func(t *testing.T) {
		cli, srv := runPair(t, nil, &ServerConfig{IdleTimeout: 100 * time.Millisecond})
		if cli.err != nil || srv.err != nil {
			t.Fatal(cli.err, srv.err)
		}
		if _, err := srv.c.ReadBatch(); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("ReadBatch err %v", err)
		}
		// The session survives an idle timeout.
		if err := cli.c.WriteBatch([]byte("late")); err != nil {
			t.Fatal(err)
		}
		if b, err := srv.c.ReadBatch(); err != nil || string(b) != "late" {
			t.Fatalf("ReadBatch %q, %v", b, err)
		}
	})
}

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name string
		cfg  ServerConfig
		ok   bool
	}{
		{name: "zero", ok: true},
		{name: "RequireSASL without mechanisms", cfg: ServerConfig{RequireSASL: true}},
		{name: "max too small", cfg: ServerConfig{MaxMessageSize: 100}},
		{name: "max too large", cfg: ServerConfig{MaxMessageSize: MaxMessageSizeLimit + 1}},
		{name: "duplicate mechanism", cfg: ServerConfig{SASL: []ServerMechanism{plainVerifier(), plainVerifier()}}},
		{name: "nil mechanism", cfg: ServerConfig{SASL: []ServerMechanism{nil}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate = %v", err)
			}
		})
	}
	cc, sc := tcpPair(t)
	if _, err := Client(context.Background(), cc, &ClientConfig{SASL: []ClientMechanism{&badName{}}}); err == nil {
		t.Error("client mechanism with a bad name accepted")
	}
	if _, err := ServerHandshake(context.Background(), sc, &ServerConfig{RequireSASL: true}); err == nil {
		t.Error("RequireSASL without mechanisms accepted")
	}
}

type badName struct{ otherMech }

func (*badName) Name() string { return "plain" }

// ServerHandshake works over any net.Conn; here an in-memory pipe carries a
// scripted client.
func TestServerHandshakeOverPipe(t *testing.T) {
	vr := mustMsg(t, TypeVersionRequest, 0, []byte{0, 1, 1, 1})
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	tests := []struct {
		name    string
		sasl    bool
		input   []byte
		wantErr error
	}{
		{name: "no SASL", input: vr},
		{name: "PLAIN initial response", sasl: true, input: cat(vr, mustMsg(t, TypeSASLMechanismSelection, 1, []byte("\x05PLAIN\x00alice\x00secret")))},
		{name: "PLAIN after empty challenge", sasl: true, input: cat(vr, mustMsg(t, TypeSASLMechanismSelection, 1, []byte("\x05PLAIN")), mustMsg(t, TypeSASLAuthData, 2, []byte("\x00alice\x00secret")))},
		{name: "PLAIN wrong password", sasl: true, input: cat(vr, mustMsg(t, TypeSASLMechanismSelection, 1, []byte("\x05PLAIN\x00alice\x00guess"))), wantErr: ErrSASLFailed},
		{name: "mechanism not offered", sasl: true, input: cat(vr, mustMsg(t, TypeSASLMechanismSelection, 1, []byte("\x05OTHER"))), wantErr: ErrNoSASLMechanism},
		{name: "input ends early", sasl: true, input: vr, wantErr: io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := serverOnInput(t, tt.sasl, tt.input)
			if tt.wantErr != nil {
				if !errors.Is(r.err, tt.wantErr) {
					t.Fatalf("err %v, want %v", r.err, tt.wantErr)
				}
				return
			}
			if r.err != nil {
				t.Fatal(r.err)
			}
			defer r.c.Close()
			if want := map[bool]string{true: "alice"}[tt.sasl]; r.c.Identity() != want {
				t.Fatalf("identity %q, want %q", r.c.Identity(), want)
			}
		})
	}
}
