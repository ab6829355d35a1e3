package eapol

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"trustnac/transport/eap"
)

func TestAuthenticatorReauthenticateOnRequest(t *testing.T) {
	be := newFakeBackend()
	a, _, ps, ev := newPair(t, be)
	started := make(chan string, 8)
	a.OnStart = func(mac net.HardwareAddr) { started <- mac.String() }
	outcomes := make(chan eap.Outcome, 8)
	runSupplicant(t, ps, newEchoPeer("alice", false), outcomes)
	if r := ev.result(t, wait); !r.r.Accept {
		t.Fatalf("result %+v", r)
	}
	select {
	case m := <-started:
		if m != macSupp.String() {
			t.Fatalf("OnStart for %s", m)
		}
	case <-time.After(wait):
		t.Fatal("OnStart not called")
	}
	if err := a.Reauthenticate(context.Background(), macSupp, true); err != nil {
		t.Fatal(err)
	}
	if r := ev.result(t, wait); !r.r.Accept || r.mac != macSupp.String() {
		t.Fatalf("re-authentication result %+v", r)
	}
	if a.Stats().Accepts != 2 {
		t.Fatalf("stats %+v", a.Stats())
	}
}

// A MAC admitted before a restart that nobody answers for is reported rejected.
func TestAuthenticatorReauthenticateSilentMAC(t *testing.T) {
	be := newFakeBackend()
	a, pa, _, ev := newPair(t, be)
	ghost := net.HardwareAddr{0x02, 0xcc, 0, 0, 0, 3}
	if err := a.Reauthenticate(context.Background(), ghost, true); err != nil {
		t.Fatal(err)
	}
	r := ev.result(t, wait)
	if r.mac != ghost.String() || r.r.Accept || r.r.Err != nil {
		t.Fatalf("result %+v", r)
	}
	ids := 0
	for _, f := range pa.sentFrames() {
		if p, err := f.EAP(); err == nil && p.Code == eap.CodeRequest && p.Type == eap.TypeIdentity {
			ids++
		}
	}
	if ids != 3 { // the request and MaxReq retransmissions
		t.Fatalf("%d EAP-Request/Identity sent", ids)
	}
	if err := a.Reauthenticate(context.Background(), net.HardwareAddr{1, 0, 0, 0, 0, 1}, true); err == nil {
		t.Fatal("group address accepted")
	}
}

func TestAuthenticatorForget(t *testing.T) {
	be := newFakeBackend()
	be.res.SessionTimeout = 100 * time.Millisecond
	a, _, ps, ev := newPair(t, be)
	outcomes := make(chan eap.Outcome, 8)
	runSupplicant(t, ps, newEchoPeer("alice", false), outcomes)
	if r := ev.result(t, wait); !r.r.Accept {
		t.Fatalf("result %+v", r)
	}
	// The supplicant falls silent: without Forget, re-authentication at the session timeout
	// would end in a Reject after the retransmissions.
	ps.mu.Lock()
	ps.drop = func(*Frame) bool { return true }
	ps.mu.Unlock()
	if err := a.Forget(context.Background(), macSupp); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-ev.results:
		t.Fatalf("result after Forget: %+v", r)
	case <-time.After(500 * time.Millisecond):
	}
}

func TestAuthenticatorBackendErrorInResult(t *testing.T) {
	be := newFakeBackend()
	be.failErr = errors.New("PDP unreachable")
	_, _, ps, ev := newPair(t, be)
	runSupplicant(t, ps, newEchoPeer("alice", false), make(chan eap.Outcome, 8))
	if r := ev.result(t, wait); r.r.Accept || r.r.Err == nil {
		t.Fatalf("result %+v, want a failure carrying the backend's error", r)
	}
}

func TestAuthenticatorControlWithoutRun(t *testing.T) {
	a := &Authenticator{}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := a.Forget(ctx, macSupp); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Forget without Run: %v", err)
	}
}
