package mschapv2

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"trustnac/transport/eap"
)

var ctx = context.Background()

// users is a Lookup over NT hashes.
func users(pw map[string]string) func(context.Context, string) ([]byte, bool) {
	return func(_ context.Context, user string) ([]byte, bool) {
		p, ok := pw[user]
		if !ok {
			return nil, false
		}
		return NTHash(p), true
	}
}

// fixedRand returns a reader that yields b, then zeros.
func fixedRand(b ...[]byte) io.Reader {
	return io.MultiReader(bytes.NewReader(bytes.Join(b, nil)), zeros{})
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// converse runs a conversation of the EAP engines with m offered once; it
// returns the engines and the method type-data of both directions.
func converse(t testing.TB, m eap.ServerMethod, pm eap.PeerMethod) (*eap.Server, *eap.Peer, [][]byte, [][]byte) {
	t.Helper()
	offered := false
	srv := eap.NewServer(eap.SelectorFunc(func(_ context.Context, _ string, done []eap.ServerMethod, _ []eap.Type) (eap.ServerMethod, bool, error) {
		if !offered {
			offered = true
			return m, false, nil
		}
		return nil, len(done) > 0, nil
	}), 0)
	peer := eap.NewPeer("anonymous", eap.PeerFactory{Type: eap.TypeMSCHAPv2, New: func() eap.PeerMethod { return pm }})
	var reqs, resps [][]byte
	req := srv.Start(1)
	for i := 0; i < 20; i++ {
		req = reparse(t, req)
		if req.Type == eap.TypeMSCHAPv2 {
			reqs = append(reqs, req.Data)
		}
		resp, _ := peer.Handle(ctx, req)
		if req.Code == eap.CodeSuccess || req.Code == eap.CodeFailure || resp == nil {
			return srv, peer, reqs, resps
		}
		resp = reparse(t, resp)
		if resp.Type == eap.TypeMSCHAPv2 {
			resps = append(resps, resp.Data)
		}
		var err error
		if req, err = srv.Handle(ctx, resp); err != nil {
			t.Fatalf("server: %v", err)
		}
	}
	t.Fatal("conversation does not end")
	return nil, nil, nil, nil
}

func reparse(t testing.TB, p *eap.Packet) *eap.Packet {
	t.Helper()
	b, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	q, err := eap.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func TestConversation(t *testing.T) {
	lookup := users(map[string]string{"alice": "correct horse", `User`: "clientPass", "zoë": "пароль"})
	tests := []struct {
		name, user, password string
		lookup               func(context.Context, string) ([]byte, bool)
		ok                   bool
	}{
		{"success", "alice", "correct horse", lookup, true},
		{"non-ASCII user and password", "zoë", "пароль", lookup, true},
		{"wrong password", "alice", "correct horse.", lookup, false},
		{"unknown user", "mallory", "correct horse", lookup, false},
		{"empty password", "alice", "", lookup, false},
		{"no lookup", "alice", "correct horse", nil, false},
		{"lookup returns a bad hash", "alice", "correct horse", func(context.Context, string) ([]byte, bool) { return []byte{1, 2, 3}, true }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewServer(ServerConfig{Name: "pdp", Lookup: tt.lookup})
			pm := NewPeer(tt.user, tt.password)
			srv, peer, reqs, resps := converse(t, m, pm)
			if !tt.ok {
				if srv.Outcome() != eap.Failed || !errors.Is(srv.Err(), ErrAuthFailed) {
					t.Fatalf("server outcome %v err %v", srv.Outcome(), srv.Err())
				}
				var fe *FailureError
				if peer.Outcome() != eap.Failed || pm.Succeeded() || !errors.As(pm.Err(), &fe) || fe.Code != ErrorAuthenticationFailed || !errors.Is(pm.Err(), ErrAuthFailed) {
					t.Fatalf("peer outcome %v succeeded %v err %v", peer.Outcome(), pm.Succeeded(), pm.Err())
				}
				if m.User() != "" {
					t.Fatalf("User() = %q after failure", m.User())
				}
				last := reqs[len(reqs)-1]
				if last[0] != byte(OpFailure) || !strings.HasPrefix(string(last[4:]), "E=691 R=0 C=") || !bytes.Equal(resps[len(resps)-1], []byte{byte(OpFailure)}) {
					t.Fatalf("last exchange %q / %x", last, resps[len(resps)-1])
				}
				return
			}
			if srv.Outcome() != eap.Succeeded || peer.Outcome() != eap.Succeeded || !pm.Succeeded() || pm.Err() != nil {
				t.Fatalf("outcomes server %v (%v) peer %v (%v)", srv.Outcome(), srv.Err(), peer.Outcome(), pm.Err())
			}
			if m.User() != tt.user {
				t.Fatalf("User() = %q", m.User())
			}
			if len(reqs) != 2 || len(resps) != 2 || !bytes.Equal(resps[1], []byte{byte(OpSuccess)}) {
				t.Fatalf("exchange %q / %q", reqs, resps)
			}
		})
	}
}

// TestRFC2759OnTheWire runs the RFC 2759 §9.2 example through the engines.
func TestRFC2759OnTheWire(t *testing.T) {
	authCh := unhex(t, "5B5D7C7D7B3F2F3E3C2C602132262628")
	peerCh := unhex(t, "21402324255E262A28295F2B3A337C7E")
	m := NewServer(ServerConfig{Name: "pdp", Lookup: users(map[string]string{"User": "clientPass"}), Rand: fixedRand(authCh, []byte{42})})
	pm := NewPeer("User", "clientPass")
	pm.rand = fixedRand(peerCh)
	srv, _, reqs, resps := converse(t, m, pm)
	if srv.Outcome() != eap.Succeeded {
		t.Fatal(srv.Err())
	}
	var resp Packet
	if err := resp.UnmarshalBinary(resps[0]); err != nil || resp.ID != 42 || resp.Name != "User" {
		t.Fatalf("Response %+v %v", resp, err)
	}
	if nt := resp.Value[24:48]; !bytes.Equal(nt, unhex(t, "82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF")) {
		t.Fatalf("NT-Response on the wire %X", nt)
	}
	if !bytes.Equal(resp.Value[:16], peerCh) {
		t.Fatalf("Peer-Challenge on the wire %X", resp.Value[:16])
	}
	if got := string(reqs[1][4:]); got != "S=407A5589115FD0D6209F510FE9C04566932CDA56 M="+successText {
		t.Fatalf("Success Request %q", got)
	}
}

// TestUnknownUserLooksLikeWrongPassword: with the same randomness, the
// server's packets for an unknown user and a wrong password are identical.
func TestUnknownUserLooksLikeWrongPassword(t *testing.T) {
	run := func(user string) [][]byte {
		m := NewServer(ServerConfig{Name: "pdp", Lookup: users(map[string]string{"alice": "pw", "bob": "pw2"}), Rand: fixedRand(bytes.Repeat([]byte{7}, 64))})
		pm := NewPeer(user, "wrong")
		pm.rand = fixedRand(bytes.Repeat([]byte{9}, 16))
		srv, _, reqs, _ := converse(t, m, pm)
		if srv.Outcome() != eap.Failed {
			t.Fatalf("%s: outcome %v", user, srv.Outcome())
		}
		return reqs
	}
	known, unknown := run("alice"), run("carol")
	if len(known) != len(unknown) {
		t.Fatalf("%d vs %d Requests", len(known), len(unknown))
	}
	for i := range known {
		if !bytes.Equal(known[i], unknown[i]) {
			t.Fatalf("Request %d differs: %q vs %q", i, known[i], unknown[i])
		}
	}
}

// forgedServer accepts any Response and answers with a Success Request
// carrying auth as the authenticator response.
type forgedServer struct {
	auth  [20]byte
	state int
}

func (f *forgedServer) Type() eap.Type { return eap.TypeMSCHAPv2 }
func (f *forgedServer) Start(context.Context) ([]byte, error) {
	return (&Packet{OpCode: OpChallenge, ID: 5, Value: make([]byte, 16), Name: "evil"}).MarshalBinary()
}
func (f *forgedServer) Process(_ context.Context, d []byte) (eap.Step, error) {
	f.state++
	if f.state > 1 {
		return eap.Step{Done: true, Success: true}, nil
	}
	out, err := (&Packet{OpCode: OpSuccess, ID: 5, Message: FormatSuccess(f.auth, "trust me")}).MarshalBinary()
	return eap.Step{Data: out}, err
}

func TestForgedAuthenticatorResponse(t *testing.T) {
	// The correct S= for the forged server's all-zero challenge, with one
	// bit flipped; and an all-zero S=.
	var z [16]byte
	var h [16]byte
	copy(h[:], NTHash("pw"))
	good := AuthenticatorResponse(h, GenerateNTResponse(z, z, "alice", h), z, z, "alice")
	flipped := good
	flipped[19] ^= 1
	for name, auth := range map[string][20]byte{"zero": {}, "one bit off": flipped} {
		t.Run(name, func(t *testing.T) {
			pm := NewPeer("alice", "pw")
			pm.rand = zeros{}
			_, peer, _, _ := converse(t, &forgedServer{auth: auth}, pm)
			if pm.Succeeded() || !errors.Is(pm.Err(), ErrAuthenticator) || peer.Outcome() != eap.Failed {
				t.Fatalf("succeeded %v err %v outcome %v", pm.Succeeded(), pm.Err(), peer.Outcome())
			}
			// An EAP-Success after that is not accepted either.
			if _, _ = peer.Handle(ctx, &eap.Packet{Code: eap.CodeSuccess, ID: 3}); peer.Outcome() == eap.Succeeded {
				t.Fatal("EAP-Success accepted")
			}
		})
	}
	// The same forged server with the right S= is accepted: the check is
	// what failed above.
	pm := NewPeer("alice", "pw")
	pm.rand = zeros{}
	if _, peer, _, _ := converse(t, &forgedServer{auth: good}, pm); !pm.Succeeded() || peer.Outcome() != eap.Succeeded {
		t.Fatalf("correct S= refused: %v", pm.Err())
	}
}

// TestServerMalformed feeds bad Responses to a Server after its Challenge.
func TestServerMalformed(t *testing.T) {
	resp := func(id uint8) []byte {
		b, _ := (&Packet{OpCode: OpResponse, ID: id, Value: make([]byte, 49), Name: "alice"}).MarshalBinary()
		return b
	}
	tests := []struct {
		name  string
		steps [][]byte
		err   error
	}{
		{"garbage", [][]byte{{0xff, 0xff}}, ErrMalformed},
		{"empty", [][]byte{{}}, ErrMalformed},
		{"success response instead of a response", [][]byte{{3}}, ErrProtocol},
		{"challenge from the peer", [][]byte{concat([]byte{1, 0, 0, 21, 16}, make([]byte, 16))}, ErrProtocol},
		{"wrong MS-CHAPv2-ID", [][]byte{resp(1)}, ErrProtocol},
		{"wrong response, then garbage", [][]byte{resp(0), {3}}, ErrAuthFailed},
		{"change password", [][]byte{{7, 0, 0, 4}}, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewServer(ServerConfig{Lookup: users(map[string]string{"alice": "pw"}), Rand: zeros{}})
			if _, err := m.Start(ctx); err != nil {
				t.Fatal(err)
			}
			var err error
			for i, s := range tt.steps {
				var st eap.Step
				st, err = m.Process(ctx, s)
				if i < len(tt.steps)-1 && (err != nil || st.Done) {
					t.Fatalf("step %d: %+v %v", i, st, err)
				}
			}
			if !errors.Is(err, tt.err) {
				t.Fatalf("err %v, want %v", err, tt.err)
			}
			if _, err := m.Process(ctx, []byte{3}); err == nil {
				t.Fatal("Process after the end accepted")
			}
		})
	}
	m := NewServer(ServerConfig{Rand: zeros{}})
	if _, err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Start(ctx); !errors.Is(err, ErrProtocol) {
		t.Fatalf("second Start: %v", err)
	}
	failing := NewServer(ServerConfig{Rand: strings.NewReader("short")})
	if _, err := failing.Start(ctx); err == nil {
		t.Fatal("Start with a failing Rand")
	}
}

// TestPeerRequests feeds Requests to a Peer.
func TestPeerRequests(t *testing.T) {
	challenge, _ := (&Packet{OpCode: OpChallenge, ID: 3, Value: make([]byte, 16), Name: "pdp"}).MarshalBinary()
	success := func(id uint8, msg string) []byte {
		b, _ := (&Packet{OpCode: OpSuccess, ID: id, Message: msg}).MarshalBinary()
		return b
	}
	failure, _ := (&Packet{OpCode: OpFailure, ID: 3, Message: "E=648 R=0 V=3 M=expired"}).MarshalBinary()
	oddFailure, _ := (&Packet{OpCode: OpFailure, ID: 3, Message: "nope"}).MarshalBinary()
	tests := []struct {
		name    string
		steps   [][]byte
		giveUp  error // the last step gives up with it
		drop    bool  // the last step is discarded
		code    int   // FailureError code expected
		respond []byte
	}{
		{name: "garbage is discarded", steps: [][]byte{{0xff}}, drop: true},
		{name: "bad MS-Length is discarded", steps: [][]byte{{1, 3, 0, 99}}, drop: true},
		{name: "success before challenge", steps: [][]byte{success(3, "S=00")}, giveUp: ErrProtocol},
		{name: "one-octet request", steps: [][]byte{{3}}, giveUp: ErrProtocol},
		{name: "second challenge", steps: [][]byte{challenge, challenge}, giveUp: ErrProtocol},
		{name: "success with another ID", steps: [][]byte{challenge, success(4, "S=0000000000000000000000000000000000000000")}, giveUp: ErrProtocol},
		{name: "success without S=", steps: [][]byte{challenge, success(3, "M=welcome")}, giveUp: ErrAuthenticator},
		{name: "wrong S=", steps: [][]byte{challenge, success(3, "S=0000000000000000000000000000000000000000 M=hi")}, giveUp: ErrAuthenticator},
		{name: "failure request", steps: [][]byte{challenge, failure}, code: ErrorPasswordExpired, respond: []byte{4}},
		{name: "unparsable failure request", steps: [][]byte{challenge, oddFailure}, code: ErrorAuthenticationFailed, respond: []byte{4}},
		{name: "request after failure", steps: [][]byte{challenge, failure, challenge}, giveUp: ErrProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewPeer("alice", "pw")
			var out []byte
			var err error
			for i, s := range tt.steps {
				out, err = p.Process(ctx, s)
				if i < len(tt.steps)-1 && err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
			}
			switch {
			case tt.giveUp != nil:
				if !errors.Is(err, eap.ErrPeerGiveUp) || !errors.Is(err, tt.giveUp) {
					t.Fatalf("err %v, want give up with %v", err, tt.giveUp)
				}
			case tt.drop:
				if err == nil || errors.Is(err, eap.ErrPeerGiveUp) {
					t.Fatalf("err %v, want a discard", err)
				}
			default:
				var fe *FailureError
				if err != nil || !bytes.Equal(out, tt.respond) || !errors.As(p.Err(), &fe) || fe.Code != tt.code {
					t.Fatalf("out %x err %v Err %v", out, err, p.Err())
				}
			}
			if p.Succeeded() {
				t.Fatal("Succeeded")
			}
		})
	}
}
