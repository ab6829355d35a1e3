package eap

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want *Packet
		err  bool
	}{
		{"identity response", []byte{2, 7, 0, 10, 1, 'a', 'l', 'i', 'c', 'e'}, &Packet{Code: CodeResponse, ID: 7, Type: TypeIdentity, Data: []byte("alice")}, false},
		{"padding ignored", []byte{1, 1, 0, 5, 1, 0xff, 0xff}, &Packet{Code: CodeRequest, ID: 1, Type: TypeIdentity}, false},
		{"success", []byte{3, 9, 0, 4}, &Packet{Code: CodeSuccess, ID: 9}, false},
		{"success with length 5", []byte{3, 9, 0, 5, 0}, nil, true},
		{"short", []byte{1, 2, 0}, nil, true},
		{"length lies beyond buffer", []byte{2, 1, 0, 200, 1, 'x'}, nil, true},
		{"length below header", []byte{2, 1, 0, 3, 1}, nil, true},
		{"request without type", []byte{1, 1, 0, 4}, nil, true},
		{"unknown code", []byte{9, 1, 0, 4}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if tt.err {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("Parse = %v, %v; want ErrMalformed", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Code != tt.want.Code || got.ID != tt.want.ID || got.Type != tt.want.Type || !bytes.Equal(got.Data, tt.want.Data) {
				t.Fatalf("Parse = %+v, want %+v", got, tt.want)
			}
			b, err := got.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if n := got.Len(); !bytes.Equal(b, tt.in[:n]) {
				t.Fatalf("round trip %x, want %x", b, tt.in[:n])
			}
		})
	}
}

func TestMarshalTooLong(t *testing.T) {
	p := &Packet{Code: CodeRequest, Type: TypeTTLS, Data: make([]byte, MaxLength)}
	if _, err := p.MarshalBinary(); err == nil {
		t.Fatal("oversized packet encoded")
	}
}

// echoMethod succeeds after n rounds in which the peer echoes the request.
type echoMethod struct {
	typ    Type
	rounds int
	seen   int
	fail   bool
}

func (m *echoMethod) Type() Type                            { return m.typ }
func (m *echoMethod) Start(context.Context) ([]byte, error) { return []byte{0}, nil }
func (m *echoMethod) Process(_ context.Context, d []byte) (Step, error) {
	if len(d) != 1 || int(d[0]) != m.seen {
		return Step{}, errors.New("bad echo")
	}
	m.seen++
	if m.seen == m.rounds {
		return Step{Done: true, Success: !m.fail}, nil
	}
	return Step{Data: []byte{byte(m.seen)}}, nil
}

type echoPeer struct {
	typ  Type
	seen int
	n    int
}

func (p *echoPeer) Type() Type { return p.typ }
func (p *echoPeer) Process(_ context.Context, d []byte) ([]byte, error) {
	p.seen++
	return d, nil
}
func (p *echoPeer) Succeeded() bool { return p.seen >= p.n }

// run drives a server and a peer against each other from the peer's
// Identity Response.
func run(t *testing.T, s *Server, p *Peer) {
	t.Helper()
	ctx := context.Background()
	resp, err := p.Handle(ctx, s.Start(0))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		req, err := s.Handle(ctx, resp)
		if err != nil {
			t.Fatal(err)
		}
		resp, err = p.Handle(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if req.Code == CodeSuccess || req.Code == CodeFailure {
			return
		}
	}
	t.Fatal("conversation did not end")
}

func TestConversation(t *testing.T) {
	tests := []struct {
		name        string
		peerTypes   []Type
		serverOrder []Type
		fail        bool
		want        Outcome
		wantDone    int
	}{
		{"one method", []Type{TypeMD5}, []Type{TypeMD5}, false, Succeeded, 1},
		{"chained methods", []Type{TypeMSCHAPv2, TypePTEAP}, []Type{TypeMSCHAPv2, TypePTEAP}, false, Succeeded, 2},
		{"nak to alternative", []Type{TypeTNC}, []Type{TypePTEAP}, false, Succeeded, 1},
		{"nak without alternative", []Type{TypeMD5}, []Type{TypePTEAP}, false, Failed, 0},
		{"method fails", []Type{TypeMD5}, []Type{TypeMD5}, true, Failed, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sel := SelectorFunc(func(_ context.Context, id string, done []ServerMethod, nak []Type) (ServerMethod, bool, error) {
				if id != "alice" {
					return nil, false, errors.New("wrong identity")
				}
				if nak != nil {
					for _, n := range nak {
						if n == TypeTNC {
							return &echoMethod{typ: TypeTNC, rounds: 2}, false, nil
						}
					}
					return nil, false, nil
				}
				if len(done) < len(tt.serverOrder) {
					return &echoMethod{typ: tt.serverOrder[len(done)], rounds: 3, fail: tt.fail}, false, nil
				}
				return nil, true, nil
			})
			var fs []PeerFactory
			for _, typ := range tt.peerTypes {
				fs = append(fs, PeerFactory{Type: typ, New: func() PeerMethod { return &echoPeer{typ: typ, n: 1} }})
			}
			s, p := NewServer(sel, 0), NewPeer("alice", fs...)
			run(t, s, p)
			if s.Outcome() != tt.want || p.Outcome() != tt.want {
				t.Fatalf("outcomes server %v peer %v, want %v (server err %v)", s.Outcome(), p.Outcome(), tt.want, s.Err())
			}
			if len(s.Methods()) != tt.wantDone {
				t.Fatalf("%d methods done, want %d", len(s.Methods()), tt.wantDone)
			}
		})
	}
}

func TestServerDiscards(t *testing.T) {
	ctx := context.Background()
	sel := SelectorFunc(func(context.Context, string, []ServerMethod, []Type) (ServerMethod, bool, error) {
		return &echoMethod{typ: TypeMD5, rounds: 5}, false, nil
	})
	s := NewServer(sel, 0)
	req, err := s.Handle(ctx, &Packet{Code: CodeResponse, ID: 4, Type: TypeIdentity, Data: []byte("bob")})
	if err != nil || req.Code != CodeRequest || req.ID != 5 {
		t.Fatalf("first request %v, %v", req, err)
	}
	if _, err := s.Handle(ctx, &Packet{Code: CodeResponse, ID: 4, Type: TypeMD5, Data: []byte{0}}); !errors.Is(err, ErrIgnored) {
		t.Fatalf("stale Identifier: %v, want ErrIgnored", err)
	}
	if _, err := s.Handle(ctx, &Packet{Code: CodeRequest, ID: 5, Type: TypeMD5}); !errors.Is(err, ErrIgnored) {
		t.Fatalf("Request from peer: %v, want ErrIgnored", err)
	}
	out, err := s.Handle(ctx, &Packet{Code: CodeResponse, ID: 5, Type: TypeTLS})
	if err != nil || out.Code != CodeFailure || s.Outcome() != Failed {
		t.Fatalf("wrong type: %v, %v", out, err)
	}
}

func TestServerRoundCap(t *testing.T) {
	ctx := context.Background()
	sel := SelectorFunc(func(context.Context, string, []ServerMethod, []Type) (ServerMethod, bool, error) {
		return &echoMethod{typ: TypeMD5, rounds: 1000}, false, nil
	})
	s := NewServer(sel, 10)
	req, _ := s.Handle(ctx, &Packet{Code: CodeResponse, ID: 0, Type: TypeIdentity, Data: []byte("x")})
	for i := 0; i < 20 && req.Code == CodeRequest; i++ {
		req, _ = s.Handle(ctx, &Packet{Code: CodeResponse, ID: req.ID, Type: TypeMD5, Data: req.Data})
	}
	if req.Code != CodeFailure {
		t.Fatalf("conversation not cut at the round cap: %v", req)
	}
}

func TestPeerIgnoresEarlySuccess(t *testing.T) {
	ctx := context.Background()
	p := NewPeer("alice", PeerFactory{Type: TypeMD5, New: func() PeerMethod { return &echoPeer{typ: TypeMD5, n: 3} }})
	if _, err := p.Handle(ctx, &Packet{Code: CodeSuccess, ID: 1}); !errors.Is(err, ErrIgnored) {
		t.Fatalf("Success before any method: %v", err)
	}
	p.Handle(ctx, &Packet{Code: CodeRequest, ID: 2, Type: TypeMD5, Data: []byte{1}})
	if _, err := p.Handle(ctx, &Packet{Code: CodeSuccess, ID: 2}); !errors.Is(err, ErrIgnored) || p.Outcome() != Pending {
		t.Fatalf("Success before the method completed: %v %v", err, p.Outcome())
	}
	// A retransmitted Request gets the same Response without running the method again.
	r1, _ := p.Handle(ctx, &Packet{Code: CodeRequest, ID: 3, Type: TypeMD5, Data: []byte{2}})
	r2, _ := p.Handle(ctx, &Packet{Code: CodeRequest, ID: 3, Type: TypeMD5, Data: []byte{2}})
	if r1 != r2 || p.Method().(*echoPeer).seen != 2 {
		t.Fatal("retransmission processed twice")
	}
	resp, _ := p.Handle(ctx, &Packet{Code: CodeRequest, ID: 4, Type: TypeTLS})
	if resp.Type != TypeNak || !bytes.Equal(resp.Data, []byte{byte(TypeMD5)}) {
		t.Fatalf("unsupported method answered %v", resp)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte{2, 7, 0, 10, 1, 'a', 'l', 'i', 'c', 'e'})
	f.Add([]byte{3, 1, 0, 4})
	f.Add([]byte{1, 1, 0, 6, 21, 0x20})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Parse(b)
		if err != nil {
			return
		}
		enc, err := p.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		q, err := Parse(enc)
		if err != nil || q.Code != p.Code || q.ID != p.ID || q.Type != p.Type || !bytes.Equal(q.Data, p.Data) {
			t.Fatalf("round trip: %v %v", q, err)
		}
	})
}
