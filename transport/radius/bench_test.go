package radius

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"encoding/binary"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	radius "layeh.com/radius"
)

// benchRequest is a typical small Access-Request (User-Name, NAS-IP-Address,
// NAS-Port, Calling-Station-Id) with a Message-Authenticator first.
func benchRequest() []byte {
	return buildRequest(radius.CodeAccessRequest, 0, authOf("bench-request-au"), []attr{
		{1, []byte("host/terminal-0001.example")},
		{4, []byte{10, 0, 0, 1}},
		{5, []byte{0, 0, 0, 7}},
		{31, []byte("02-00-00-00-00-01")},
	}, buildOpts{})
}

// resign gives req the Identifier id and Request Authenticator auth and
// recomputes its Message-Authenticator (at offset 22).
func resign(mac interface {
	Reset()
	Write([]byte) (int, error)
	Sum([]byte) []byte
}, req []byte, id byte, auth *[16]byte, sum []byte) {
	req[1] = id
	copy(req[4:20], auth[:])
	clear(req[22:38])
	mac.Reset()
	mac.Write(req)
	copy(req[22:38], mac.Sum(sum[:0]))
}

// BenchmarkServerAccessRequest measures the server end to end over
// loopback UDP: parallel NAS goroutines, each with its own socket, send
// distinct Access-Requests with Message-Authenticator and wait for the
// Access-Accept. The handler is trivial.
func BenchmarkServerAccessRequest(b *testing.B) {
	s := &Server{Handler: HandlerFunc(func(_ context.Context, r *Request) *radius.Packet {
		return r.Packet.Response(radius.CodeAccessAccept)
	})}
	addr := startServer(b, s)
	var gid, lost atomic.Uint64
	b.SetParallelism(8)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		g := gid.Add(1)
		c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(addr))
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		req := benchRequest()
		b.SetBytes(int64(len(req)))
		mac := hmac.New(md5.New, testSecret)
		var sum [16]byte
		var auth [16]byte
		binary.BigEndian.PutUint64(auth[:8], g)
		buf := make([]byte, 4096)
		for n := uint64(0); pb.Next(); n++ {
			binary.BigEndian.PutUint64(auth[8:], n)
			resign(mac, req, byte(n), &auth, sum[:])
			if _, err := c.Write(req); err != nil {
				b.Error(err)
				return
			}
			c.SetReadDeadline(time.Now().Add(time.Second))
			for {
				k, err := c.Read(buf)
				if err != nil {
					lost.Add(1)
					break
				}
				if k >= 20 && buf[1] == byte(n) {
					break
				}
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(lost.Load()), "lost")
}

// BenchmarkVerifyMessageAuthenticator measures the per-request check of
// the read loop: length and attribute walk plus the pooled HMAC-MD5.
func BenchmarkVerifyMessageAuthenticator(b *testing.B) {
	cs := testClients(b)
	ce := cs.lookup(netip.MustParseAddr("127.0.0.1"))
	req := benchRequest()
	b.SetBytes(int64(len(req)))
	b.ReportAllocs()
	for b.Loop() {
		pkt, info, err := checkPacket(req)
		if err != nil {
			b.Fatal(err)
		}
		m := ce.getMAC()
		err = verifyRequest(m, pkt, info, ce.cfg.Secret)
		ce.putMAC(m)
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHandleDatagram measures the server's work for one request
// without sockets: verification, reply cache, parse, handler, reply
// encoding.
func BenchmarkHandleDatagram(b *testing.B) {
	s := &Server{
		Clients: testClients(b),
		Handler: HandlerFunc(func(_ context.Context, r *Request) *radius.Packet {
			return r.Packet.Response(radius.CodeAccessAccept)
		}),
		spawn: func(job func()) { job() },
	}
	s.init()
	snd := discardSender{}
	from := netip.MustParseAddrPort("127.0.0.1:40000")
	req := benchRequest()
	mac := hmac.New(md5.New, testSecret)
	var sum, auth [16]byte
	b.SetBytes(int64(len(req)))
	b.ReportAllocs()
	n := uint64(0)
	for b.Loop() {
		n++
		binary.BigEndian.PutUint64(auth[8:], n)
		resign(mac, req, byte(n), &auth, sum[:])
		s.handleDatagram(req, from, nil, snd)
	}
	if got := s.Snapshot()["replied"]; got != n {
		b.Fatalf("replied %d of %d", got, n)
	}
}

type discardSender struct{}

func (discardSender) sendReply([]byte, netip.AddrPort) error { return nil }

// BenchmarkReplyCache measures the reply cache in its steady state under
// load: every request new, 25,000 a second, so the default cache is full
// and each begin evicts the oldest entry of its shard.
func BenchmarkReplyCache(b *testing.B) {
	c := newReplyCache(DefaultCacheTTL, DefaultCacheSize)
	from := netip.MustParseAddrPort("127.0.0.1:40000")
	pkt := make([]byte, headerLen)
	reply := make([]byte, 64)
	now := int64(0)
	var n uint64
	next := func() {
		n++
		now += int64(40 * time.Microsecond)
		binary.BigEndian.PutUint64(pkt[4:], n*0x9e3779b97f4a7c15)
		binary.BigEndian.PutUint64(pkt[12:], n)
		pkt[1] = byte(n)
		e, _, state := c.begin(makeCacheKey(from, pkt), now)
		if state != cacheNew {
			b.Fatalf("state %v", state)
		}
		c.finish(e, reply, now)
	}
	for range 2 * DefaultCacheSize {
		next()
	}
	b.ReportAllocs()
	for b.Loop() {
		next()
	}
}
