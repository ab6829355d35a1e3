package smdtls

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"net"
	"testing"
)

func BenchmarkHandshake(b *testing.B) {
	store := newTestStore()
	store.add("ep", testPSK(1))
	l, _ := startServer(b, store, nil)
	addr := l.Addr().(*net.UDPAddr)
	cfg := clientConfig("ep", testPSK(1))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		acc := make(chan *Conn, 1)
		go func() {
			c, err := l.AcceptConn(ctx)
			if err != nil {
				b.Error(err)
			}
			acc <- c
		}()
		c, err := Dial(ctx, "udp4", addr, cfg)
		if err != nil {
			b.Fatal(err)
		}
		s := <-acc
		c.Close()
		if s != nil {
			s.Close()
		}
	}
}

func benchmarkSeal(b *testing.B, rc *recordCipher) {
	rec := make([]byte, recordHeaderLen+1024)
	copy(rec, []byte{contentApplicationData, 254, 253, 0, 1, 0, 0, 0, 0, 0, 1, 4, 0})
	dst := make([]byte, 0, len(rec)+explicitNonceLen+gcmTagLen)
	b.SetBytes(1024)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if dst, err = rc.seal(dst[:0], rec); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSM4GCMSeal seals 1 KiB records with SM4-GCM (gmsm).
func BenchmarkSM4GCMSeal(b *testing.B) {
	rc, err := newSM4Cipher(make([]byte, 16), make([]byte, 4))
	if err != nil {
		b.Fatal(err)
	}
	benchmarkSeal(b, rc)
}

// BenchmarkAESGCMSeal seals the same records with AES-128-GCM, for
// comparison.
func BenchmarkAESGCMSeal(b *testing.B) {
	block, _ := aes.NewCipher(make([]byte, 16))
	aead, _ := cipher.NewGCM(block)
	rc, err := newRecordCipher(aead, make([]byte, 4))
	if err != nil {
		b.Fatal(err)
	}
	benchmarkSeal(b, rc)
}

// BenchmarkMessageRoundTrip sends a PT-TLS message to the server and back
// over loopback.
func BenchmarkMessageRoundTrip(b *testing.B) {
	store := newTestStore()
	store.add("ep", testPSK(1))
	for _, size := range []int{1 << 10, 64 << 10} {
		b.Run(itoa(size>>10)+"KiB", func(b *testing.B) {
			l, _ := startServer(b, store, nil)
			client, server := connect(b, l, l.Addr().(*net.UDPAddr), clientConfig("ep", testPSK(1)))
			msg := ptMessage(1, size)
			done := make(chan struct{})
			go func() { // echo
				defer close(done)
				for {
					m, err := server.ReadMessage()
					if err != nil {
						return
					}
					if err := server.WriteMessage(m); err != nil {
						return
					}
				}
			}()
			b.SetBytes(int64(2 * size))
			b.ReportAllocs()
			for b.Loop() {
				if err := client.WriteMessage(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := client.ReadMessage(); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			client.Close()
			<-done
		})
	}
}
