package pttls

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"
)

// A TNCS serving PT-TLS with SASL PLAIN, and a TNCC exchanging one batch
// each way with it. TLS 1.3 with a self-signed ECDSA P-256 certificate.
func Example() {
	cert, pool, err := loadTestPKI()
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Server (TNCS side).
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := &Server{
		Config: ServerConfig{
			SASL: []ServerMechanism{&PlainServer{Verify: func(_ context.Context, _, user, pass string) (string, error) {
				if user == "alice" && subtle.ConstantTimeCompare([]byte(pass), []byte("secret")) == 1 {
					return "", nil // identity: the username
				}
				return "", errors.New("bad credentials")
			}}},
			RequireSASL: true,
		},
		Handler: HandlerFunc(func(_ context.Context, c *Conn) {
			batch, err := c.ReadBatch()
			if err != nil {
				return
			}
			fmt.Printf("TNCS got %q from %s\n", batch, c.Identity())
			_ = c.WriteBatch([]byte("SDATA"))
		}),
	}
	go func() {
		_ = srv.Serve(tls.NewListener(l, &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}}))
	}()
	defer func() { _ = srv.Shutdown(ctx) }()

	// Client (TNCC side).
	nc, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: pool, ServerName: testServerName})
	if err != nil {
		fmt.Println(err)
		return
	}
	c, err := Client(ctx, nc, &ClientConfig{SASL: []ClientMechanism{&PlainClient{Username: "alice", Password: "secret"}}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	if err := c.WriteBatch([]byte("CDATA")); err != nil {
		fmt.Println(err)
		return
	}
	batch, err := c.ReadBatch()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("TNCC got %q\n", batch)
	// Output:
	// TNCS got "CDATA" from alice
	// TNCC got "SDATA"
}
