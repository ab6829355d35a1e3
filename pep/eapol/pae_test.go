package eapol

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"trustnac/transport/eap"
)

const wait = 5 * time.Second

func newPair(t *testing.T, be Backend) (*Authenticator, *pipeConn, *pipeConn, *events) {
	pa, ps := newPipe(macAuth, macSupp)
	ev := newEvents()
	a := &Authenticator{Conn: pa, Port: "test0", Backend: be, TxPeriod: 50 * time.Millisecond, QuietPeriod: time.Hour, MaxReq: 2, ReauthFromSessionTimeout: true}
	ev.wire(a)
	runBG(t, func(ctx context.Context) {
		if err := a.Run(ctx); err != nil {
			t.Errorf("Authenticator.Run: %v", err)
		}
	})
	return a, pa, ps, ev
}

func runSupplicant(t *testing.T, conn FrameConn, np func() *eap.Peer, outcomes chan eap.Outcome) (context.CancelFunc, chan error) {
	s := &Supplicant{Conn: conn, NewPeer: np, StartPeriod: 100 * time.Millisecond, HeldPeriod: time.Hour, AuthPeriod: time.Second,
		OnOutcome: func(o eap.Outcome, _ net.HardwareAddr) { outcomes <- o }}
	errc := make(chan error, 1)
	cancel := runBG(t, func(ctx context.Context) {
		_, err := s.Run(ctx)
		errc <- err
	})
	return cancel, errc
}

func TestAuthenticatorSupplicantSuccessAndLogoff(t *testing.T) {
	be := newFakeBackend()
	a, _, ps, ev := newPair(t, be)
	outcomes := make(chan eap.Outcome, 8)
	cancel, errc := runSupplicant(t, ps, newEchoPeer("alice", false), outcomes)
	r := ev.result(t, wait)
	if r.mac != macSupp.String() || !r.r.Accept || r.r.Role != "admit" || r.r.VLAN != 10 {
		t.Fatalf("result %+v", r)
	}
	if o := <-outcomes; o != eap.Succeeded {
		t.Fatalf("supplicant outcome %v", o)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	if m := ev.logoff(t, wait); m != macSupp.String() {
		t.Fatalf("logoff from %s", m)
	}
	st := a.Stats()
	if st.Accepts != 1 || st.Starts < 1 || st.Responses != 2 || st.Logoffs != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestAuthenticatorReject(t *testing.T) {
	be := newFakeBackend()
	a, pa, ps, ev := newPair(t, be)
	outcomes := make(chan eap.Outcome, 8)
	runSupplicant(t, ps, newEchoPeer("mallory", true), outcomes)
	if r := ev.result(t, wait); r.r.Accept {
		t.Fatalf("result %+v", r)
	}
	if o := <-outcomes; o != eap.Failed {
		t.Fatalf("supplicant outcome %v", o)
	}
	// Quiet period: a Start from the MAC is ignored, no Request goes out.
	before := len(pa.sentFrames())
	dropped := a.Stats().Dropped
	pa.inject(macSupp, &Frame{Version: 2, Type: TypeStart})
	deadline := time.Now().Add(wait)
	for a.Stats().Dropped == dropped && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if a.Stats().Dropped == dropped {
		t.Fatal("Start during the quiet period not dropped")
	}
	if n := len(pa.sentFrames()); n != before {
		t.Fatalf("%d frames sent during the quiet period", n-before)
	}
	// Nor does a Logoff end the quiet period.
	pa.inject(macSupp, &Frame{Version: 2, Type: TypeLogoff})
	pa.inject(macSupp, &Frame{Version: 2, Type: TypeStart})
	for a.Stats().Dropped < dropped+2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := len(pa.sentFrames()); n != before {
		t.Fatalf("%d frames sent after Logoff and Start during the quiet period", n-before)
	}
	if st := a.Stats(); st.Rejects != 1 || st.Accepts != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestAuthenticatorRetransmitAndGiveUp(t *testing.T) {
	a, pa, _, ev := newPair(t, newFakeBackend())
	pa.inject(macSupp, &Frame{Version: 2, Type: TypeStart}) // nobody answers
	deadline := time.Now().Add(wait)
	for a.Stats().Timeouts == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if a.Stats().Timeouts != 1 {
		t.Fatal("session not abandoned")
	}
	sent := pa.sentFrames()
	if len(sent) != 1+a.MaxReq {
		t.Fatalf("%d Requests sent, want %d", len(sent), 1+a.MaxReq)
	}
	for _, f := range sent {
		p, err := f.EAP()
		if err != nil || p.Code != eap.CodeRequest || p.Type != eap.TypeIdentity || string(f.Body) != string(sent[0].Body) {
			t.Fatalf("sent %v, want the same Request/Identity", f)
		}
	}
	select {
	case r := <-ev.results:
		t.Fatalf("result %+v for a never-authorized MAC", r)
	default:
	}
}

func TestAuthenticatorDropsBadFrames(t *testing.T) {
	a, pa, _, _ := newPair(t, newFakeBackend())
	pa.inject(macSupp, &Frame{Version: 2, Type: TypeStart})
	deadline := time.Now().Add(wait)
	for len(pa.sentFrames()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	req, err := pa.sentFrames()[0].EAP()
	if err != nil {
		t.Fatal(err)
	}
	frames := []*Frame{
		mustEAP(t, &eap.Packet{Code: eap.CodeResponse, ID: req.ID + 1, Type: eap.TypeIdentity}), // wrong Identifier
		mustEAP(t, &eap.Packet{Code: eap.CodeRequest, ID: req.ID, Type: eap.TypeIdentity}),      // a Request from a supplicant
		{Version: 2, Type: TypeKey, Body: []byte{1}},
		{Version: 2, Type: TypeEAPPacket, Body: []byte{2, 0, 0, 4}}, // EAP Response without a Type
	}
	for _, f := range frames {
		pa.inject(macSupp, f)
	}
	pa.inject([]byte{0x03, 0, 0, 0, 0, 1}, &Frame{Version: 2, Type: TypeStart}) // group source
	for a.Stats().Dropped < uint64(len(frames)+1) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if st := a.Stats(); st.Dropped != uint64(len(frames)+1) || st.Responses != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func mustEAP(t *testing.T, p *eap.Packet) *Frame {
	t.Helper()
	f, err := NewEAPFrame(2, p)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestAuthenticatorBackendErrorFailsClosed(t *testing.T) {
	be := newFakeBackend()
	be.failErr = errors.New("PDP unreachable")
	a, _, ps, ev := newPair(t, be)
	outcomes := make(chan eap.Outcome, 8)
	runSupplicant(t, ps, newEchoPeer("alice", false), outcomes)
	if r := ev.result(t, wait); r.r.Accept {
		t.Fatalf("result %+v", r)
	}
	if o := <-outcomes; o != eap.Failed {
		t.Fatalf("supplicant outcome %v", o)
	}
	if a.Stats().BackendErrors != 1 {
		t.Fatalf("stats %+v", a.Stats())
	}
}

func TestReauthFromSessionTimeout(t *testing.T) {
	be := newFakeBackend()
	be.res.SessionTimeout = 100 * time.Millisecond
	_, _, ps, ev := newPair(t, be)
	outcomes := make(chan eap.Outcome, 8)
	runSupplicant(t, ps, newEchoPeer("alice", false), outcomes)
	for i := range 2 {
		if r := ev.result(t, wait); !r.r.Accept {
			t.Fatalf("result %d: %+v", i, r)
		}
		if o := <-outcomes; o != eap.Succeeded {
			t.Fatalf("outcome %d: %v", i, o)
		}
	}
}

func TestSupplicantNoAuthenticator(t *testing.T) {
	_, ps := newPipe(macAuth, macSupp)
	s := &Supplicant{Conn: ps, NewPeer: newEchoPeer("alice", false), StartPeriod: 10 * time.Millisecond, MaxStart: 3}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	o, err := s.Run(ctx)
	if !errors.Is(err, ErrNoAuthenticator) || o != eap.Pending {
		t.Fatalf("Run = %v, %v", o, err)
	}
	sent := ps.sentFrames()
	if len(sent) != 3 {
		t.Fatalf("%d frames, want 3 Starts", len(sent))
	}
	for _, f := range sent {
		if f.Type != TypeStart {
			t.Fatalf("sent %v", f)
		}
	}
}

func TestSupplicantRetransmitsStart(t *testing.T) {
	_, _, ps, ev := newPair(t, newFakeBackend())
	var starts atomic.Int32
	ps.drop = func(f *Frame) bool { return f.Type == TypeStart && starts.Add(1) == 1 } // first Start lost
	s := &Supplicant{Conn: ps, NewPeer: newEchoPeer("alice", false), StartPeriod: 50 * time.Millisecond, Once: true}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	o, err := s.Run(ctx)
	if err != nil || o != eap.Succeeded {
		t.Fatalf("Run = %v, %v", o, err)
	}
	if starts.Load() < 2 {
		t.Fatalf("%d Starts", starts.Load())
	}
	if r := ev.result(t, wait); !r.r.Accept {
		t.Fatalf("result %+v", r)
	}
}
