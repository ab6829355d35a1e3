package ttls

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"runtime"
	"testing"
	"time"

	"trustnac/transport/eap"
)

var versions = []struct {
	name string
	v    uint16
}{{"TLS1.2", tls.VersionTLS12}, {"TLS1.3", tls.VersionTLS13}}

func TestConversation(t *testing.T) {
	_, other := testCerts(t)
	srvCert, _ := testCerts(t)
	type tc struct {
		name string
		// server side
		pap      func(context.Context, string, string) bool
		selector eap.Selector
		sfrag    int
		// peer side
		user, password string
		peerEAP        *eap.Peer
		pfrag          int
		peerTLS        func(v uint16) *tls.Config
		// expectations
		ok       bool
		innerEAP bool // the inner EAP conversation must have run a method
	}
	big := func() eap.ServerMethod { return &fakeServer{size: 6000} }
	small := func() eap.ServerMethod { return &fakeServer{size: 32} }
	cases := []tc{
		{name: "PAP", pap: papCheck("alice", "s3cret"), user: "alice", password: "s3cret", ok: true},
		{name: "PAP wrong password", pap: papCheck("alice", "s3cret"), user: "alice", password: "guess", ok: false},
		{name: "PAP refused", user: "alice", password: "s3cret", ok: false},
		{name: "PAP then selector finishes", pap: papCheck("alice", "s3cret"), selector: chain(), user: "alice", password: "s3cret", ok: true},
		{name: "PAP then inner EAP", pap: papCheck("alice", "s3cret"), selector: chain(small),
			user: "alice", password: "s3cret", peerEAP: eap.NewPeer("alice", fakePeerFactory(false)), ok: true, innerEAP: true},
		{name: "PAP then inner EAP fails", pap: papCheck("alice", "s3cret"), selector: chain(small),
			user: "alice", password: "s3cret", peerEAP: eap.NewPeer("alice", fakePeerFactory(true)), ok: false},
		{name: "PAP then Nak", pap: papCheck("alice", "s3cret"), selector: chain(small),
			user: "alice", password: "s3cret", peerEAP: eap.NewPeer("alice"), ok: true},
		{name: "inner EAP", selector: chain(small), peerEAP: eap.NewPeer("bob", fakePeerFactory(false)), ok: true, innerEAP: true},
		{name: "inner EAP chained", selector: chain(small, small), peerEAP: eap.NewPeer("bob", fakePeerFactory(false)), ok: true, innerEAP: true},
		{name: "inner EAP wrong answer", selector: chain(small), peerEAP: eap.NewPeer("bob", fakePeerFactory(true)), ok: false},
		{name: "inner EAP refused", peerEAP: eap.NewPeer("bob", fakePeerFactory(false)), ok: false},
		{name: "fragments both ways", pap: papCheck("alice", "s3cret"), selector: chain(big), sfrag: 100, pfrag: 77,
			user: "alice", password: "s3cret", peerEAP: eap.NewPeer("alice", fakePeerFactory(false)), ok: true, innerEAP: true},
		{name: "pinned certificate", pap: papCheck("alice", "s3cret"), user: "alice", password: "s3cret", ok: true,
			peerTLS: func(v uint16) *tls.Config { c := pinnedTLS(srvCert.pin); c.MaxVersion = v; return c }},
		{name: "pinned certificate mismatch", pap: papCheck("alice", "s3cret"), user: "alice", password: "s3cret", ok: false,
			peerTLS: func(v uint16) *tls.Config { c := pinnedTLS(other.pin); c.MaxVersion = v; return c }},
		{name: "untrusted CA", pap: papCheck("alice", "s3cret"), user: "alice", password: "s3cret", ok: false,
			peerTLS: func(v uint16) *tls.Config {
				return &tls.Config{RootCAs: other.pool, ServerName: serverName, MaxVersion: v}
			}},
		{name: "wrong server name", pap: papCheck("alice", "s3cret"), user: "alice", password: "s3cret", ok: false,
			peerTLS: func(v uint16) *tls.Config {
				return &tls.Config{RootCAs: srvCert.pool, ServerName: "evil.test", MaxVersion: v}
			}},
	}
	for _, ver := range versions {
		for _, c := range cases {
			t.Run(ver.name+"/"+c.name, func(t *testing.T) {
				base := runtime.NumGoroutine()
				var inner *InnerServer
				var info TunnelInfo
				scfg := &ServerConfig{
					TLS:         serverTLS(t, ver.v),
					MaxFragment: c.sfrag,
					Phase2: func(ti TunnelInfo) Phase2 {
						info = ti
						inner = NewInnerServer(InnerConfig{PAP: c.pap, Selector: c.selector})
						return inner
					},
				}
				ptls := peerTLS(t, ver.v)
				if c.peerTLS != nil {
					ptls = c.peerTLS(ver.v)
				}
				// eap.Peer keeps state: a fresh copy per version.
				var peerEAP *eap.Peer
				if c.peerEAP != nil {
					peerEAP = eap.NewPeer("alice", fakePeerFactory(false))
					switch c.name {
					case "PAP then inner EAP fails":
						peerEAP = eap.NewPeer("alice", fakePeerFactory(true))
					case "PAP then Nak":
						peerEAP = eap.NewPeer("alice")
					case "inner EAP wrong answer":
						peerEAP = eap.NewPeer("bob", fakePeerFactory(true))
					case "inner EAP", "inner EAP chained", "inner EAP refused":
						peerEAP = eap.NewPeer("bob", fakePeerFactory(false))
					}
				}
				pcfg := &PeerConfig{TLS: ptls, MaxFragment: c.pfrag, Phase2: NewInnerPeer(c.user, c.password, peerEAP)}
				conv := converse(t, scfg, pcfg)
				defer func() {
					if t.Failed() {
						conv.dump(t)
					}
				}()
				srvOK := conv.srv.Outcome() == eap.Succeeded
				peerOK := conv.peer.Outcome() == eap.Succeeded
				if srvOK != c.ok || peerOK != c.ok {
					t.Fatalf("server outcome %v (err %v), peer outcome %v (err %v); want success=%v",
						conv.srv.Outcome(), conv.srv.Err(), conv.peer.Outcome(), conv.peer.Err(), c.ok)
				}
				if !c.ok {
					if conv.ts.MSK() != nil || conv.ts.EMSK() != nil {
						t.Error("server exports keys after a failure")
					}
					// With PAP the peer cannot tell a wrong password from a right one: only a
					// tunnel that did not come up must keep its method from succeeding.
					if conv.tp != nil && conv.tp.ConnectionState().Version == 0 && (conv.tp.MSK() != nil || conv.tp.Succeeded()) {
						t.Error("peer method claims success without a tunnel")
					}
					waitGoroutines(t, base)
					return
				}
				checkKeys(t, conv, ver.v)
				if got := conv.ts.ConnectionState().Version; got != ver.v || info.Version != ver.v {
					t.Errorf("negotiated %#x (TunnelInfo %#x), want %#x", got, info.Version, ver.v)
				}
				if info.CipherSuite == 0 || info.ServerName != pcfg.TLS.ServerName {
					t.Errorf("TunnelInfo %+v", info)
				}
				if conv.ts.Phase2() != inner {
					t.Error("Server.Phase2 is not the handler created")
				}
				if c.innerEAP {
					if inner.EAP() == nil || len(inner.EAP().Methods()) == 0 {
						t.Error("no inner EAP method ran")
					}
				}
				wantUser := c.user
				if c.password == "" {
					wantUser = "bob"
				}
				if inner.User() != wantUser {
					t.Errorf("User() = %q, want %q", inner.User(), wantUser)
				}
				if c.sfrag > 0 && conv.rounds < 100 {
					t.Errorf("only %d rounds with %d-byte fragments", conv.rounds, c.sfrag)
				}
				// A finished conversation holds no goroutine, Close or not.
				waitGoroutines(t, base)
				conv.ts.Close()
				conv.ts.Close()
			})
		}
	}
}

func checkKeys(t *testing.T, conv *conversation, version uint16) {
	t.Helper()
	smsk, semsk := conv.ts.MSK(), conv.ts.EMSK()
	pmsk, pemsk := conv.tp.MSK(), conv.tp.EMSK()
	if len(smsk) != 64 || len(semsk) != 64 {
		t.Fatalf("server MSK %d bytes, EMSK %d bytes", len(smsk), len(semsk))
	}
	if !bytes.Equal(smsk, pmsk) || !bytes.Equal(semsk, pemsk) {
		t.Fatal("server and peer keys differ")
	}
	if bytes.Equal(smsk, semsk) || bytes.Equal(smsk, make([]byte, 64)) {
		t.Fatal("degenerate keys")
	}
	// The labels of RFC 5281 §8 and RFC 9427 §2.1, spelled out independently of the code.
	cs := conv.tp.ConnectionState()
	var km []byte
	var err error
	if version == tls.VersionTLS13 {
		km, err = cs.ExportKeyingMaterial("EXPORTER_EAP_TLS_Key_Material", []byte{0x15}, 128)
	} else {
		km, err = cs.ExportKeyingMaterial("ttls keying material", nil, 128)
	}
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(km[:64], smsk) || !bytes.Equal(km[64:], semsk) {
		t.Fatal("keys are not the RFC exporter output")
	}
}

// clientHello12 builds a TLS 1.2 ClientHello (RFC 5246 §7.4.1.2) with or without the
// extended_master_secret extension (RFC 7627).
func clientHello12(ems bool) []byte {
	var ext []byte
	add := func(typ uint16, body ...byte) {
		ext = append(ext, byte(typ>>8), byte(typ), byte(len(body)>>8), byte(len(body)))
		ext = append(ext, body...)
	}
	add(10, 0, 4, 0x00, 0x1d, 0x00, 0x17)             // supported_groups: x25519, secp256r1
	add(11, 1, 0)                                     // ec_point_formats: uncompressed
	add(13, 0, 6, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01) // signature_algorithms
	add(0xff01, 0)                                    // renegotiation_info
	if ems {
		add(23)
	}
	body := []byte{0x03, 0x03}
	body = append(body, bytes.Repeat([]byte{0x5a}, 32)...) // random
	body = append(body, 0)                                 // session_id
	body = append(body, 0, 4, 0xc0, 0x2b, 0xc0, 0x2f)      // ECDHE-ECDSA/RSA-AES128-GCM-SHA256
	body = append(body, 1, 0)                              // compression: null
	body = append(body, byte(len(ext)>>8), byte(len(ext)))
	body = append(body, ext...)
	hs := append([]byte{1, 0, byte(len(body) >> 8), byte(len(body))}, body...)
	return append([]byte{0x16, 0x03, 0x01, byte(len(hs) >> 8), byte(len(hs))}, hs...)
}

func TestTLS12WithoutEMSRefused(t *testing.T) {
	for _, ems := range []bool{false, true} {
		base := runtime.NumGoroutine()
		s := NewServer(&ServerConfig{TLS: serverTLS(t, 0), Phase2: func(TunnelInfo) Phase2 { return NewInnerServer(InnerConfig{}) }})
		ctx := context.Background()
		if _, err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		st, err := s.Process(ctx, append([]byte{0}, clientHello12(ems)...))
		if ems {
			// The control: the same ClientHello with EMS gets the server's flight.
			if err != nil || st.Done || len(st.Data) < 100 {
				t.Fatalf("with EMS: step %+v, err %v", st, err)
			}
		} else if !errors.Is(err, ErrNoExtendedMasterSecret) {
			t.Fatalf("without EMS: err = %v, want ErrNoExtendedMasterSecret", err)
		}
		s.Close()
		waitGoroutines(t, base)
	}
}

// TestAbandoned drops conversations mid-handshake: Close must end the TLS goroutine.
func TestAbandoned(t *testing.T) {
	ctx := context.Background()
	base := runtime.NumGoroutine()

	p := NewPeer(&PeerConfig{TLS: peerTLS(t, 0), MaxFragment: 200, Phase2: NewInnerPeer("a", "b", nil)})
	hello, err := p.Process(ctx, []byte{byte(FlagStart)})
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(&ServerConfig{TLS: serverTLS(t, 0), Phase2: func(TunnelInfo) Phase2 { return NewInnerServer(InnerConfig{}) }})
	// Feed the peer's fragmented ClientHello until the server answers with its flight.
	resp := hello
	for i := 0; ; i++ {
		st, err := s.Process(ctx, resp)
		if err != nil || st.Done {
			t.Fatalf("server: %+v %v", st, err)
		}
		var m Message
		if err := m.UnmarshalBinary(st.Data); err != nil {
			t.Fatal(err)
		}
		if len(m.Data) > 0 {
			break
		}
		if resp, err = p.Process(ctx, st.Data); err != nil {
			t.Fatal(err)
		}
	}
	running := func(t *tunnel) bool {
		select {
		case <-t.done:
			return false
		default:
			return true
		}
	}
	st, pt := s.tun.Load(), p.tun.Load()
	if !running(st) || !running(pt) {
		t.Fatal("handshake goroutines not running mid-handshake")
	}
	s.Close()
	p.Close()
	if running(st) || running(pt) {
		t.Fatal("Close returned with a handshake goroutine still running")
	}
	waitGoroutines(t, base)
	if _, err := s.Process(ctx, ack()); !errors.Is(err, ErrClosed) {
		t.Errorf("Process after Close: %v", err)
	}
	if _, err := p.Process(ctx, ack()); !errors.Is(err, eap.ErrPeerGiveUp) {
		t.Errorf("peer Process after Close: %v", err)
	}
}

// TestStalled makes TLS hang in a callback: Process must return within the timeout.
func TestStalled(t *testing.T) {
	ctx := context.Background()
	base := runtime.NumGoroutine()
	release := make(chan struct{})
	srv, _ := testCerts(t)
	conf := &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		<-release
		return &srv.cert, nil
	}}
	s := NewServer(&ServerConfig{TLS: conf, Timeout: 100 * time.Millisecond, Phase2: func(TunnelInfo) Phase2 { return nil }})
	p := NewPeer(&PeerConfig{TLS: peerTLS(t, 0), MaxFragment: 4000, Phase2: NewInnerPeer("a", "b", nil)})
	hello, err := p.Process(ctx, []byte{byte(FlagStart)})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = s.Process(ctx, hello)
	if !errors.Is(err, ErrStalled) {
		t.Fatalf("err = %v, want ErrStalled", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Process took %v", d)
	}
	close(release)
	s.Close()
	p.Close()
	waitGoroutines(t, base)
}

// TestContextCancelled: a cancelled context ends a handshake step.
func TestContextCancelled(t *testing.T) {
	base := runtime.NumGoroutine()
	release := make(chan struct{})
	srv, _ := testCerts(t)
	conf := &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		<-release
		return &srv.cert, nil
	}}
	s := NewServer(&ServerConfig{TLS: conf, Phase2: func(TunnelInfo) Phase2 { return nil }})
	p := NewPeer(&PeerConfig{TLS: peerTLS(t, 0), MaxFragment: 4000, Phase2: NewInnerPeer("a", "b", nil)})
	hello, err := p.Process(context.Background(), []byte{byte(FlagStart)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.Process(ctx, hello); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
	close(release)
	s.Close()
	p.Close()
	waitGoroutines(t, base)
}

func TestConfigErrors(t *testing.T) {
	ctx := context.Background()
	for _, cfg := range []*ServerConfig{nil, {}, {TLS: serverTLS(t, 0)}} {
		s := NewServer(cfg)
		if _, err := s.Start(ctx); err == nil {
			t.Errorf("Start with %+v succeeded", cfg)
		}
	}
	for _, cfg := range []*PeerConfig{nil, {}, {TLS: peerTLS(t, 0)}} {
		p := NewPeer(cfg)
		if _, err := p.Process(ctx, []byte{byte(FlagStart)}); !errors.Is(err, eap.ErrPeerGiveUp) {
			t.Errorf("Process with %+v: %v", cfg, err)
		}
	}
}

// TestPhase2Kick: our peer sends its first AVPs with its TLS 1.3 Finished, so the server never
// needs to send the empty Request that lets a peer start phase 2 (RFC 9427; what wpa_supplicant,
// which sends its Finished alone, needs: the eapol_test interop tests in package nac cover that);
// with TLS 1.2 the server's Finished starts phase 2.
func TestPhase2Kick(t *testing.T) {
	for _, ver := range versions {
		_, toPeer := recordExchange(t, ver.v, 8000)
		for _, m := range toPeer {
			if bytes.Equal(m, []byte{0}) {
				t.Errorf("%s: the server sent an empty Request", ver.name)
			}
		}
	}
}

// TestEarlyPhase2TLS13: a TLS 1.3 peer may send its AVPs right behind its Finished.
func TestEarlyPhase2TLS13(t *testing.T) {
	ctx := context.Background()
	frame := func(b []byte) []byte { return append([]byte{0}, b...) }
	ct := newTunnel(false, hardenPeer(peerTLS(t, tls.VersionTLS13)), DefaultTimeout, DefaultMaxMessage)
	defer ct.close()
	s := NewServer(&ServerConfig{TLS: serverTLS(t, 0), MaxFragment: 8000,
		Phase2: func(TunnelInfo) Phase2 { return NewInnerServer(InnerConfig{PAP: papCheck("alice", "s3cret")}) }})
	defer s.Close()
	hello, _, err := ct.step(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.Process(ctx, frame(hello))
	if err != nil {
		t.Fatal(err)
	}
	var m Message
	if err := m.UnmarshalBinary(st.Data); err != nil || m.Flags != 0 {
		t.Fatalf("server flight: %+v %v", m.Flags, err)
	}
	fin, _, err := ct.step(ctx, m.Data)
	if err != nil || !ct.established() {
		t.Fatalf("client handshake: %v", err)
	}
	rec, err := ct.write(AppendAVPs(nil, papAVPs("alice", "s3cret")...))
	if err != nil {
		t.Fatal(err)
	}
	st, err = s.Process(ctx, frame(append(fin, rec...)))
	if err != nil || !st.Done || !st.Success {
		t.Fatalf("step %+v, err %v; want success", st, err)
	}
}
