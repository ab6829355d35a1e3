package pdp

import (
	"context"
	"crypto/tls"
	"sync"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"trustnac/transport/eap"
	tradius "trustnac/transport/radius"
)

// The sweeper that expires stalled EAP conversations runs beside the
// handlers that move them on: under the race detector, conversations
// started and continued while expire runs must show no unsynchronised
// access (the time of a conversation's last packet was once written by
// the handler and read by the sweeper without a common lock).
func TestConversationSweepBesideHandlers(t *testing.T) {
	r := NewRADIUS(RADIUSConfig{TLS: &tls.Config{MinVersion: tls.VersionTLS12}, EAPTimeout: time.Hour, EAPLifetime: 3 * time.Hour})
	defer r.Close()
	client := &tradius.ClientConfig{Name: "nas"}
	identity := func(state []byte, id uint8) *radius.Packet {
		p := radius.New(radius.CodeAccessRequest, []byte("s"))
		rfc2865.UserName_SetString(p, "alice")
		rfc2865.CallingStationID_SetString(p, "02-00-00-00-00-01")
		setEAP(p, &eap.Packet{Code: eap.CodeResponse, ID: id, Type: eap.TypeIdentity, Data: []byte("alice")})
		if state != nil {
			rfc2865.State_Set(p, state)
		}
		return r.ServeRADIUS(context.Background(), &tradius.Request{Packet: p, Client: client})
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			r.conv.expire(time.Now())
			time.Sleep(100 * time.Microsecond)
		}
	}()
	for range 200 {
		resp := identity(nil, 1)
		if resp.Code != radius.CodeAccessChallenge {
			t.Fatalf("reply %v to EAP-Response/Identity, want Access-Challenge", resp.Code)
		}
		// The same conversation again: a NAK-less retransmission is
		// discarded or challenged, either way it touches the conversation.
		state := rfc2865.State_Get(resp)
		identity(state, 1)
		time.Sleep(50 * time.Microsecond)
	}
	close(stop)
	wg.Wait()

	// What expires is what stood still for EAPTimeout.
	if n := r.conv.len(); n != 200 {
		t.Fatalf("%d conversations before the timeout, want 200", n)
	}
	r.conv.expire(time.Now().Add(59 * time.Minute))
	if n := r.conv.len(); n != 200 {
		t.Fatalf("%d conversations left a minute before the timeout, want 200", n)
	}
	r.conv.expire(time.Now().Add(61 * time.Minute))
	if n := r.conv.len(); n != 0 {
		t.Fatalf("%d conversations left after the timeout, want none", n)
	}
}
