package pttls

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"testing"
)

// BenchmarkReadWriteMessage encodes a PB-TNC Batch message and reads it back
// with ReadMessage, for several value sizes.
func BenchmarkReadWriteMessage(b *testing.B) {
	for _, size := range []int{64, 4 << 10, 64 << 10, 512 << 10} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			m := &Message{Type: TypePBBatch, Value: bytes.Repeat([]byte{0xa5}, size)}
			var buf []byte
			var r bytes.Reader
			b.SetBytes(int64(HeaderLen + size))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				buf, err = m.AppendBinary(buf[:0])
				if err != nil {
					b.Fatal(err)
				}
				r.Reset(buf)
				got, err := ReadMessage(&r, 1<<20)
				if err != nil || len(got.Value) != size {
					b.Fatalf("read %v", err)
				}
				m.ID++
			}
		})
	}
}

// BenchmarkHandshake measures one PT-TLS session set-up per operation: TCP
// connect, TLS 1.3 handshake (ECDSA P-256) and PT-TLS negotiation, with and
// without SASL PLAIN, against a Server on loopback.
func BenchmarkHandshake(b *testing.B) {
	for _, sasl := range []bool{false, true} {
		b.Run(map[bool]string{false: "NoSASL", true: "PLAIN"}[sasl], func(b *testing.B) {
			srv := &Server{Handler: HandlerFunc(func(_ context.Context, c *Conn) { _, _ = c.ReadBatch() })}
			ccfg := &ClientConfig{}
			if sasl {
				srv.Config = ServerConfig{SASL: []ServerMechanism{plainVerifier()}, RequireSASL: true}
				ccfg.SASL = []ClientMechanism{&PlainClient{Username: "alice", Password: "secret"}}
			}
			ts := startServer(b, srv)
			tcfg := clientTLS(b)
			b.ReportAllocs()
			for b.Loop() {
				nc, err := tls.Dial("tcp", ts.addr, tcfg)
				if err != nil {
					b.Fatal(err)
				}
				c, err := Client(context.Background(), nc, ccfg)
				if err != nil {
					b.Fatal(err)
				}
				c.Close()
			}
		})
	}
}
