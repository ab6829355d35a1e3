package radius_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	radius "layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc3576"

	tradius "trustnac/transport/radius"
)

// A PDP authentication server and a NAS talking to it over loopback.
func Example() {
	clients, err := tradius.NewClients([]tradius.ClientConfig{
		{Name: "bridge-1", Network: netip.MustParsePrefix("127.0.0.1/32"), Secret: []byte("s3cret")},
	})
	if err != nil {
		panic(err)
	}
	srv := &tradius.Server{
		Clients: clients,
		Handler: tradius.HandlerFunc(func(ctx context.Context, r *tradius.Request) *radius.Packet {
			if rfc2865.UserName_GetString(r.Packet) != "alice" {
				return r.Packet.Response(radius.CodeAccessReject)
			}
			reply := r.Packet.Response(radius.CodeAccessAccept)
			rfc2865.FilterID_SetString(reply, "admit")
			return reply
		}),
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go srv.Serve(pc)
	defer srv.Shutdown(context.Background())

	nas := &tradius.Client{Secret: []byte("s3cret"), Timeout: time.Second}
	defer nas.Close()
	for _, user := range []string{"alice", "mallory"} {
		req := radius.New(radius.CodeAccessRequest, []byte("s3cret"))
		rfc2865.UserName_SetString(req, user)
		reply, err := nas.Exchange(context.Background(), req, pc.LocalAddr().String())
		if err != nil {
			panic(err)
		}
		fmt.Printf("%s: %v %q\n", user, reply.Code, rfc2865.FilterID_GetString(reply))
	}
	// Output:
	// alice: Access-Accept "admit"
	// mallory: Access-Reject ""
}

// A PDP sending a CoA to a NAS (here a PEP's Dynamic Authorization Server)
// that refuses it.
func ExampleClient_DynamicAuth() {
	clients, _ := tradius.NewClients([]tradius.ClientConfig{
		{Name: "pdp", Network: netip.MustParsePrefix("127.0.0.0/8"), Secret: []byte("coa-secret")},
	})
	das := &tradius.Server{
		Clients: clients,
		Codes:   []radius.Code{radius.CodeCoARequest, radius.CodeDisconnectRequest},
		Handler: tradius.HandlerFunc(func(ctx context.Context, r *tradius.Request) *radius.Packet {
			nak := r.Packet.Response(radius.CodeCoANAK)
			rfc3576.ErrorCause_Set(nak, rfc3576.ErrorCause_Value_SessionContextNotFound)
			return nak
		}),
	}
	pc, _ := net.ListenPacket("udp", "127.0.0.1:0")
	go das.Serve(pc)
	defer das.Shutdown(context.Background())

	pdp := &tradius.Client{Secret: []byte("coa-secret")}
	defer pdp.Close()
	coa := radius.New(radius.CodeCoARequest, nil)
	rfc2865.FilterID_SetString(coa, "isolate")
	err := pdp.DynamicAuth(context.Background(), coa, pc.LocalAddr().String())
	fmt.Println(err)
	// Output:
	// radius: CoA-NAK (Error-Cause 503 Session-Context-Not-Found)
}

func ExampleSetEAPMessage() {
	p := radius.New(radius.CodeAccessChallenge, []byte("s"))
	tradius.SetEAPMessage(p, make([]byte, 600))
	n := 0
	for _, a := range p.Attributes {
		if a.Type == 79 {
			n++
		}
	}
	eap, _ := tradius.EAPMessage(p)
	fmt.Println(n, len(eap))
	// Output: 3 600
}
