package smdtls

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"trustnac/transport/pttls"
)

var loopback = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}

// testStore is a PSKStore over a map; identities in revoked are refused.
type testStore struct {
	mu      sync.Mutex
	keys    map[string][]byte
	revoked map[string]bool
	fail    error // returned for every lookup when set
}

func newTestStore() *testStore {
	return &testStore{keys: map[string][]byte{}, revoked: map[string]bool{}}
}

func (s *testStore) add(id string, psk []byte) { s.mu.Lock(); s.keys[id] = psk; s.mu.Unlock() }

func (s *testStore) PSK(id []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return nil, s.fail
	}
	if s.revoked[string(id)] {
		return nil, fmt.Errorf("%w: %s revoked", ErrUnknownIdentity, id)
	}
	k, ok := s.keys[string(id)]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnknownIdentity, id)
	}
	return k, nil
}

func testPSK(seed byte) []byte { return bytes.Repeat([]byte{seed}, 32) }

// logSink collects the errors logged with key "err".
type logSink struct {
	mu   sync.Mutex
	errs []error
	msgs []string
}

func (s *logSink) Enabled(context.Context, slog.Level) bool { return true }
func (s *logSink) WithAttrs([]slog.Attr) slog.Handler       { return s }
func (s *logSink) WithGroup(string) slog.Handler            { return s }
func (s *logSink) Handle(_ context.Context, r slog.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, r.Message)
	r.Attrs(func(a slog.Attr) bool {
		if e, ok := a.Value.Any().(error); ok && a.Key == "err" {
			s.errs = append(s.errs, e)
		}
		return true
	})
	return nil
}

func (s *logSink) errors() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.errs...)
}

func (s *logSink) text() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b bytes.Buffer
	for _, m := range s.msgs {
		b.WriteString(m + "\n")
	}
	for _, e := range s.errs {
		b.WriteString(e.Error() + "\n")
	}
	return b.String()
}

// server starts a Listener with store and the given config changes.
func startServer(t testing.TB, store PSKStore, mod func(*Config)) (*Listener, *logSink) {
	t.Helper()
	sink := &logSink{}
	cfg := &Config{PSKStore: store, Logger: slog.New(sink), HandshakeTimeout: 3 * time.Second}
	if mod != nil {
		mod(cfg)
	}
	l, err := Listen("udp4", loopback, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l, sink
}

func clientConfig(id string, psk []byte) *Config {
	return &Config{Identity: []byte(id), PSK: psk, HandshakeTimeout: 3 * time.Second}
}

// connect dials addr and accepts the association on l.
func connect(t testing.TB, l *Listener, addr *net.UDPAddr, cfg *Config) (client, server *Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	type res struct {
		c   *Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := l.AcceptConn(ctx)
		ch <- res{c, err}
	}()
	client, err := Dial(ctx, "udp4", addr, cfg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatalf("Accept: %v", r.err)
	}
	t.Cleanup(func() { _ = client.Close(); _ = r.c.Close() })
	return client, r.c
}

// fastARQ shortens the retransmission timers for lossy-path tests.
func fastARQ(cs ...*Conn) {
	for _, c := range cs {
		c.arq = arqParams{window: 16 << 10, rtoMin: 20 * time.Millisecond, rtoMax: 200 * time.Millisecond, maxMisses: 20}
	}
}

// patientARQ makes spurious retransmissions impossible within a test, for
// tests that count frames.
func patientARQ(cs ...*Conn) {
	for _, c := range cs {
		c.arq = arqParams{window: 64 << 10, rtoMin: time.Minute, rtoMax: time.Minute, maxMisses: 1}
	}
}

// ptMessage builds a PT-TLS PB-TNC Batch message with n value bytes of a
// pattern derived from seed.
func ptMessage(seed byte, n int) *pttls.Message {
	v := make([]byte, n)
	for i := range v {
		v[i] = seed + byte(i*7) + byte(i>>8)
	}
	return &pttls.Message{Type: pttls.TypePBBatch, ID: uint32(seed), Value: v}
}

// direction of a datagram through the proxy.
type direction int

const (
	toServer direction = iota
	toClient
)

// proxy is a UDP relay between one client and the server that lets a
// test drop, duplicate, reorder, truncate or capture datagrams.
type proxy struct {
	front  *net.UDPConn
	back   *net.UDPConn
	client atomic.Pointer[net.UDPAddr]
	// mangle returns the datagrams to forward instead of d (nil: d).
	mangle func(dir direction, d []byte) [][]byte

	mu       sync.Mutex
	captured map[direction][][]byte
	maxSize  int
	done     chan struct{}
}

func newProxy(t testing.TB, server net.Addr, mangle func(direction, []byte) [][]byte) *proxy {
	t.Helper()
	front, err := net.ListenUDP("udp4", loopback)
	if err != nil {
		t.Fatal(err)
	}
	back, err := net.DialUDP("udp4", nil, server.(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{front: front, back: back, mangle: mangle, captured: map[direction][][]byte{}, done: make(chan struct{})}
	go p.run(toServer)
	go p.run(toClient)
	t.Cleanup(func() { close(p.done); _ = front.Close(); _ = back.Close() })
	return p
}

func (p *proxy) largest() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.maxSize
}

func (p *proxy) addr() *net.UDPAddr { return p.front.LocalAddr().(*net.UDPAddr) }

func (p *proxy) run(dir direction) {
	buf := make([]byte, 1<<16)
	for {
		var n int
		var err error
		if dir == toServer {
			var from *net.UDPAddr
			n, from, err = p.front.ReadFromUDP(buf)
			if err == nil {
				p.client.Store(from)
			}
		} else {
			n, err = p.back.Read(buf)
		}
		if err != nil {
			return
		}
		d := append([]byte(nil), buf[:n]...)
		p.mu.Lock()
		p.captured[dir] = append(p.captured[dir], d)
		p.maxSize = max(p.maxSize, n)
		p.mu.Unlock()
		out := [][]byte{d}
		if p.mangle != nil {
			if m := p.mangle(dir, d); m != nil {
				out = m
			}
		}
		for _, o := range out {
			p.send(dir, o)
		}
	}
}

func (p *proxy) send(dir direction, d []byte) {
	if dir == toServer {
		_, _ = p.back.Write(d)
	} else if a := p.client.Load(); a != nil {
		_, _ = p.front.WriteToUDP(d, a)
	}
}

func (p *proxy) capturedIn(dir direction) [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([][]byte(nil), p.captured[dir]...)
}

// isAppData reports whether a datagram starts with a protected
// application-data record.
func isAppData(d []byte) bool {
	return len(d) >= recordHeaderLen && d[0] == contentApplicationData && binary.BigEndian.Uint16(d[3:5]) > 0
}

// waitFor polls cond for up to two seconds.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// errorsIs reports whether any error in errs matches target.
func errorsIs(errs []error, target error) bool {
	for _, e := range errs {
		if errors.Is(e, target) {
			return true
		}
	}
	return false
}
