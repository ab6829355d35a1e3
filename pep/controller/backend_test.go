package controller

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"trustnac/transport/eap"
	tradius "trustnac/transport/radius"
)

// TestRelayAnswers runs the EAP backend against a RADIUS server on loopback
// and checks what the supplicant is told: the server's EAP-Success on an
// Accept the PEP enforces, an EAP-Failure of the PEP's own (never the
// server's Success) on an Accept it refuses, the server's EAP-Failure on a
// Reject.
func TestRelayAnswers(t *testing.T) {
	success, _ := (&eap.Packet{Code: eap.CodeSuccess, ID: 7}).MarshalBinary()
	failure, _ := (&eap.Packet{Code: eap.CodeFailure, ID: 7}).MarshalBinary()
	answer := make(chan func(p *radius.Packet) *radius.Packet, 1)
	clients, err := tradius.NewClients([]tradius.ClientConfig{{Name: "pep", Network: netip.MustParsePrefix("127.0.0.1/32"), Secret: testSecret}})
	if err != nil {
		t.Fatal(err)
	}
	srv := &tradius.Server{Clients: clients, Handler: tradius.HandlerFunc(func(_ context.Context, r *tradius.Request) *radius.Packet {
		return (<-answer)(r.Packet)
	})}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(pc)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })

	c := &Controller{
		cfg:    Config{Secret: testSecret, Auth: pc.LocalAddr().String()},
		client: &tradius.Client{Secret: testSecret, Timeout: time.Second, Retries: 1},
		nas:    testNAS,
		log:    slog.New(slog.DiscardHandler),
	}
	b := &eapBackend{c: c, port: "p1", ids: map[[6]byte]string{}}
	resp, _ := (&eap.Packet{Code: eap.CodeResponse, ID: 7, Type: eap.TypeIdentity, Data: []byte("alice")}).MarshalBinary()

	accept := func(role string) func(p *radius.Packet) *radius.Packet {
		return func(p *radius.Packet) *radius.Packet {
			r := p.Response(radius.CodeAccessAccept)
			rfc2865.FilterID_SetString(r, role)
			tradius.SetEAPMessage(r, success)
			return r
		}
	}
	for _, tt := range []struct {
		name   string
		answer func(p *radius.Packet) *radius.Packet
		accept bool
		eap    []byte
	}{
		{"accept admit", accept("admit"), true, success},
		{"accept deny", accept("deny"), false, failure},
		{"reject", func(p *radius.Packet) *radius.Packet {
			r := p.Response(radius.CodeAccessReject)
			tradius.SetEAPMessage(r, failure)
			return r
		}, false, failure},
	} {
		answer <- tt.answer
		out, _, res, err := b.Relay(context.Background(), testMAC, resp, nil)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if res == nil || res.Accept != tt.accept {
			t.Errorf("%s: result %+v, want accept %v", tt.name, res, tt.accept)
		}
		if string(out) != string(tt.eap) {
			t.Errorf("%s: supplicant told %x, want %x", tt.name, out, tt.eap)
		}
	}
}
