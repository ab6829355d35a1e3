package ttls

import (
	"context"
	"errors"
	"strings"
	"testing"

	"trustnac/transport/eap"
)

func TestPasswordCoding(t *testing.T) {
	cases := []struct {
		pw      string
		encoded int // length on the wire; 0: encoding fails
	}{
		{"x", 16},
		{"0123456789abcdef", 16},
		{"0123456789abcdefg", 32},
		{strings.Repeat("p", MaxPassword), 256},
		{strings.Repeat("p", MaxPassword+1), 0},
		{"", 0},
		{"a\x00b", 0},
	}
	for _, c := range cases {
		b, err := encodePassword(c.pw)
		if c.encoded == 0 {
			if err == nil {
				t.Errorf("%q: encoded", c.pw)
			}
			continue
		}
		if err != nil || len(b) != c.encoded {
			t.Errorf("%q: %d bytes, %v; want %d", c.pw, len(b), err, c.encoded)
			continue
		}
		if back, err := decodePassword(b); err != nil || back != c.pw {
			t.Errorf("%q: decoded %q, %v", c.pw, back, err)
		}
	}
	for _, bad := range [][]byte{nil, make([]byte, 16), make([]byte, 257), []byte(strings.Repeat("p", 254))} {
		if _, err := decodePassword(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("%d bytes: %v", len(bad), err)
		}
	}
	// Unpadded passwords (not a multiple of 16) are accepted as they are.
	if pw, err := decodePassword([]byte("abc")); err != nil || pw != "abc" {
		t.Errorf("unpadded: %q %v", pw, err)
	}
}

func papAVPs(user, pw string) []AVP {
	enc, _ := encodePassword(pw)
	return []AVP{{Code: AVPUserName, Mandatory: true, Data: []byte(user)}, {Code: AVPUserPassword, Mandatory: true, Data: enc}}
}

// TestInnerServer runs phase 2 without the tunnel: AVPs in, AVPs out.
func TestInnerServer(t *testing.T) {
	ctx := context.Background()
	pap := papCheck("alice", "s3cret")
	identity := func(name string) []AVP {
		b, _ := (&eap.Packet{Code: eap.CodeResponse, ID: 0, Type: eap.TypeIdentity, Data: []byte(name)}).MarshalBinary()
		return []AVP{{Code: AVPEAPMessage, Mandatory: true, Data: b}}
	}
	cases := []struct {
		name    string
		cfg     InnerConfig
		first   []AVP
		peer    *eap.Peer // answers the inner EAP, if any
		want    Phase2Status
		wantErr error
		user    string
	}{
		{name: "PAP", cfg: InnerConfig{PAP: pap}, first: papAVPs("alice", "s3cret"), want: Phase2Success, user: "alice"},
		{name: "PAP unknown optional AVP", cfg: InnerConfig{PAP: pap},
			first: append(papAVPs("alice", "s3cret"), AVP{Code: 4242, Data: []byte("x")}), want: Phase2Success, user: "alice"},
		{name: "PAP unknown mandatory AVP", cfg: InnerConfig{PAP: pap},
			first: append(papAVPs("alice", "s3cret"), AVP{Code: 4242, Mandatory: true}), want: Phase2Failure, wantErr: ErrUnsupportedAVP},
		{name: "MS-CHAP vendor AVP", cfg: InnerConfig{PAP: pap},
			first: []AVP{{Code: AVPUserName, Mandatory: true, Data: []byte("alice")}, {Code: 11, Vendor: 311, Mandatory: true, Data: make([]byte, 16)}},
			want:  Phase2Failure, wantErr: ErrUnsupportedAVP},
		{name: "PAP wrong password", cfg: InnerConfig{PAP: pap}, first: papAVPs("alice", "nope"), want: Phase2Failure},
		{name: "PAP not configured", cfg: InnerConfig{}, first: papAVPs("alice", "s3cret"), want: Phase2Failure, wantErr: ErrPhase2},
		{name: "PAP without User-Name", cfg: InnerConfig{PAP: pap}, first: papAVPs("alice", "s3cret")[1:], want: Phase2Failure, wantErr: ErrPhase2},
		{name: "PAP bad User-Name", cfg: InnerConfig{PAP: pap}, first: papAVPs("al\xffice", "s3cret"), want: Phase2Failure, wantErr: ErrMalformed},
		{name: "PAP empty password", cfg: InnerConfig{PAP: pap},
			first: []AVP{{Code: AVPUserName, Data: []byte("alice")}, {Code: AVPUserPassword, Data: make([]byte, 16)}}, want: Phase2Failure, wantErr: ErrMalformed},
		{name: "PAP and EAP at once", cfg: InnerConfig{PAP: pap, Selector: chain()},
			first: append(papAVPs("alice", "s3cret"), identity("alice")...), want: Phase2Failure, wantErr: ErrPhase2},
		{name: "nothing", cfg: InnerConfig{PAP: pap}, first: []AVP{{Code: AVPReplyMessage, Data: []byte("hi")}}, want: Phase2Failure, wantErr: ErrPhase2},
		{name: "PAP then selector refuses", user: "alice", want: Phase2Failure, first: papAVPs("alice", "s3cret"),
			cfg: InnerConfig{PAP: pap, Selector: eap.SelectorFunc(func(context.Context, string, []eap.ServerMethod, []eap.Type) (eap.ServerMethod, bool, error) {
				return nil, false, nil
			})}},
		{name: "PAP then inner method", cfg: InnerConfig{PAP: pap, Selector: chain(func() eap.ServerMethod { return &fakeServer{size: 16} })},
			first: papAVPs("alice", "s3cret"), peer: eap.NewPeer("ignored", fakePeerFactory(false)), want: Phase2Success, user: "alice"},
		{name: "inner EAP", cfg: InnerConfig{Selector: chain(func() eap.ServerMethod { return &fakeServer{size: 16} })},
			first: identity("bob"), peer: eap.NewPeer("bob", fakePeerFactory(false)), want: Phase2Success, user: "bob"},
		{name: "inner EAP fails", cfg: InnerConfig{Selector: chain(func() eap.ServerMethod { return &fakeServer{size: 16} })},
			first: identity("bob"), peer: eap.NewPeer("bob", fakePeerFactory(true)), want: Phase2Failure, user: "bob"},
		{name: "inner EAP not accepted", cfg: InnerConfig{PAP: pap}, first: identity("bob"), want: Phase2Failure, wantErr: ErrPhase2},
		{name: "inner EAP garbage", cfg: InnerConfig{Selector: chain()}, first: []AVP{{Code: AVPEAPMessage, Data: []byte{2, 0}}},
			want: Phase2Failure, wantErr: ErrMalformed},
		{name: "inner EAP Request from the peer", cfg: InnerConfig{Selector: chain()},
			first: []AVP{{Code: AVPEAPMessage, Data: []byte{1, 0, 0, 5, 1}}}, want: Phase2Failure, wantErr: ErrPhase2},
		{name: "EAP-Message too large", cfg: InnerConfig{Selector: chain()},
			first: []AVP{{Code: AVPEAPMessage, Data: make([]byte, 40000)}, {Code: AVPEAPMessage, Data: make([]byte, 40000)}},
			want:  Phase2Failure, wantErr: ErrTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := NewInnerServer(c.cfg)
			reply, st, err := s.Process(ctx, c.first)
			for round := 0; st == Phase2Continue && err == nil; round++ {
				if round > 20 || c.peer == nil {
					t.Fatalf("phase 2 continues, round %d", round)
				}
				raw, ok, jerr := joinEAP(reply)
				if !ok || jerr != nil {
					t.Fatalf("reply %+v without EAP-Message", reply)
				}
				req, perr := eap.Parse(raw)
				if perr != nil {
					t.Fatal(perr)
				}
				resp, herr := c.peer.Handle(ctx, req)
				if herr != nil {
					t.Fatal(herr)
				}
				avps, _ := eapMessage(resp)
				reply, st, err = s.Process(ctx, avps)
			}
			if st != c.want || (c.wantErr == nil) != (err == nil) || (c.wantErr != nil && !errors.Is(err, c.wantErr)) {
				t.Fatalf("status %v err %v; want %v, %v", st, err, c.want, c.wantErr)
			}
			if c.user != "" && s.User() != c.user {
				t.Errorf("User() = %q, want %q", s.User(), c.user)
			}
			if st == Phase2Success && s.User() == "" {
				t.Error("success without a user")
			}
			// Phase 2 has ended: more AVPs are an error.
			if _, st, err := s.Process(ctx, c.first); err == nil || st != Phase2Failure {
				t.Errorf("after the end: %v %v", st, err)
			}
		})
	}
}

// TestPAPDoneSeenBySelector checks the marker the Selector sees after PAP.
func TestPAPDoneSeenBySelector(t *testing.T) {
	var seen []eap.ServerMethod
	var who string
	sel := eap.SelectorFunc(func(_ context.Context, id string, done []eap.ServerMethod, _ []eap.Type) (eap.ServerMethod, bool, error) {
		seen, who = done, id
		return nil, true, nil
	})
	s := NewInnerServer(InnerConfig{PAP: papCheck("alice", "s3cret"), Selector: sel})
	if _, st, err := s.Process(context.Background(), papAVPs("alice", "s3cret")); st != Phase2Success || err != nil {
		t.Fatalf("%v %v", st, err)
	}
	if len(seen) != 1 || who != "alice" {
		t.Fatalf("selector saw %v for %q", seen, who)
	}
	d, ok := seen[0].(PAPDone)
	if !ok || d.User != "alice" || d.Type() != 0 {
		t.Fatalf("done = %#v", seen[0])
	}
	if _, err := d.Start(context.Background()); err == nil {
		t.Error("PAPDone.Start succeeded")
	}
	if _, err := d.Process(context.Background(), nil); err == nil {
		t.Error("PAPDone.Process succeeded")
	}
}

func TestInnerPeer(t *testing.T) {
	ctx := context.Background()
	// PAP: credentials, Succeeded at once.
	p := NewInnerPeer("alice", "s3cret", nil)
	if p.Succeeded() {
		t.Fatal("succeeded before Start")
	}
	avps, err := p.Start()
	if err != nil || len(avps) != 2 || string(avps[0].Data) != "alice" || len(avps[1].Data) != 16 || !avps[0].Mandatory {
		t.Fatalf("Start: %+v %v", avps, err)
	}
	if !p.Succeeded() {
		t.Fatal("PAP peer not succeeded after sending credentials")
	}
	// A server starting inner EAP with a PAP-only peer.
	req, _ := eapMessage(&eap.Packet{Code: eap.CodeRequest, ID: 1, Type: typeFake, Data: []byte("abc")})
	if _, err := p.Process(ctx, req); !errors.Is(err, ErrPhase2) {
		t.Fatalf("inner EAP without an EAP peer: %v", err)
	}
	// Reply-Message alone: no answer.
	if out, err := p.Process(ctx, []AVP{{Code: AVPReplyMessage, Mandatory: true, Data: []byte("hello")}}); err != nil || out != nil {
		t.Fatalf("Reply-Message: %+v %v", out, err)
	}
	if _, err := p.Process(ctx, []AVP{{Code: 77, Mandatory: true}}); !errors.Is(err, ErrUnsupportedAVP) {
		t.Fatalf("unknown mandatory AVP: %v", err)
	}

	// Inner EAP: implicit identity, then the method.
	ep := eap.NewPeer("bob", fakePeerFactory(false))
	q := NewInnerPeer("", "", ep)
	avps, err = q.Start()
	if err != nil || len(avps) != 1 || avps[0].Code != AVPEAPMessage {
		t.Fatalf("Start: %+v %v", avps, err)
	}
	id, err := eap.Parse(avps[0].Data)
	if err != nil || id.Code != eap.CodeResponse || id.Type != eap.TypeIdentity || string(id.Data) != "bob" || id.ID != 0 {
		t.Fatalf("identity %v %v", id, err)
	}
	if q.Succeeded() {
		t.Fatal("succeeded before the inner method ran")
	}
	out, err := q.Process(ctx, req)
	if err != nil || len(out) != 1 {
		t.Fatalf("Process: %+v %v", out, err)
	}
	resp, err := eap.Parse(out[0].Data)
	if err != nil || resp.Code != eap.CodeResponse || resp.ID != 1 || string(resp.Data) != "cba" {
		t.Fatalf("response %v %v", resp, err)
	}
	if !q.Succeeded() {
		t.Fatal("not succeeded after the inner method")
	}
	// Neither password nor EAP peer.
	if _, err := NewInnerPeer("x", "", nil).Start(); err == nil {
		t.Fatal("Start without credentials succeeded")
	}
}
