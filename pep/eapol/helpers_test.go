package eapol

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"trustnac/transport/eap"
)

// typeEcho is the experimental EAP type (RFC 3748 §5.8) of the test's echo method.
const typeEcho eap.Type = 255

// echoServer sends a random challenge and succeeds when the peer echoes it.
type echoServer struct{ nonce []byte }

func (e *echoServer) Type() eap.Type { return typeEcho }
func (e *echoServer) Start(context.Context) ([]byte, error) {
	e.nonce = make([]byte, 16)
	rand.Read(e.nonce)
	return e.nonce, nil
}
func (e *echoServer) Process(_ context.Context, data []byte) (eap.Step, error) {
	return eap.Step{Done: true, Success: bytes.Equal(data, e.nonce)}, nil
}

// echoPeer answers a challenge with itself, or with garbage when wrong is set.
type echoPeer struct {
	wrong bool
	done  bool
}

func (e *echoPeer) Type() eap.Type { return typeEcho }
func (e *echoPeer) Process(_ context.Context, data []byte) ([]byte, error) {
	e.done = true
	if e.wrong {
		return []byte("wrong"), nil
	}
	return append([]byte(nil), data...), nil
}
func (e *echoPeer) Succeeded() bool { return e.done && !e.wrong }

func newEchoPeer(identity string, wrong bool) func() *eap.Peer {
	return func() *eap.Peer {
		return eap.NewPeer(identity, eap.PeerFactory{Type: typeEcho, New: func() eap.PeerMethod { return &echoPeer{wrong: wrong} }})
	}
}

// fakeBackend runs a real eap.Server per MAC with the echo method, as a RADIUS server would;
// State is the conversation number.
type fakeBackend struct {
	mu      sync.Mutex
	convs   map[string]*eap.Server
	res     Result // what an Accept carries
	silent  bool   // never answer (drop the Response)
	calls   int
	failErr error
}

func newFakeBackend() *fakeBackend {
	return &fakeBackend{convs: map[string]*eap.Server{}, res: Result{Accept: true, Role: "admit", VLAN: 10}}
}

func (b *fakeBackend) Relay(ctx context.Context, mac net.HardwareAddr, resp, state []byte) ([]byte, []byte, *Result, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls++
	if b.failErr != nil {
		return nil, nil, nil, b.failErr
	}
	p, err := eap.Parse(resp)
	if err != nil {
		return nil, nil, nil, err
	}
	k := mac.String()
	srv := b.convs[k]
	if state == nil || srv == nil {
		if p.Type != eap.TypeIdentity {
			return nil, nil, nil, errors.New("fake backend: no conversation")
		}
		srv = eap.NewServer(eap.SelectorFunc(func(_ context.Context, _ string, done []eap.ServerMethod, nak []eap.Type) (eap.ServerMethod, bool, error) {
			if len(done) > 0 || nak != nil {
				return nil, len(done) > 0, nil
			}
			return &echoServer{}, false, nil
		}), 0)
		b.convs[k] = srv
	}
	out, err := srv.Handle(ctx, p)
	if err != nil {
		return nil, nil, nil, err
	}
	raw, err := out.MarshalBinary()
	if err != nil {
		return nil, nil, nil, err
	}
	switch out.Code {
	case eap.CodeSuccess:
		res := b.res
		return raw, nil, &res, nil
	case eap.CodeFailure:
		return raw, nil, &Result{Accept: false}, nil
	}
	return raw, []byte(k), nil, nil
}

// pipeConn is one end of an in-memory segment: frames written reach the other end.
type pipeConn struct {
	mac  net.HardwareAddr
	in   chan pipeMsg
	peer *pipeConn
	drop func(f *Frame) bool // drops frames this end sends when it returns true
	mu   sync.Mutex
	sent []*Frame
}

type pipeMsg struct {
	src, dst net.HardwareAddr
	f        *Frame
}

func newPipe(a, b net.HardwareAddr) (*pipeConn, *pipeConn) {
	pa := &pipeConn{mac: a, in: make(chan pipeMsg, 4096)}
	pb := &pipeConn{mac: b, in: make(chan pipeMsg, 4096)}
	pa.peer, pb.peer = pb, pa
	return pa, pb
}

func (p *pipeConn) ReadFrom(ctx context.Context) (net.HardwareAddr, *Frame, error) {
	for {
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case m := <-p.in:
			if !bytes.Equal(m.dst, p.mac) && !bytes.Equal(m.dst, PAEGroupAddr) {
				continue
			}
			return m.src, m.f, nil
		}
	}
}

func (p *pipeConn) WriteTo(dst net.HardwareAddr, f *Frame) error {
	// Through the codec, as on the wire.
	b, err := AppendEthernet(nil, dst, p.mac, f)
	if err != nil {
		return err
	}
	d, s, g, err := ParseEthernet(b)
	if err != nil {
		return fmt.Errorf("pipe: %w", err)
	}
	p.mu.Lock()
	p.sent = append(p.sent, g)
	drop := p.drop != nil && p.drop(g)
	p.mu.Unlock()
	if !drop {
		p.peer.in <- pipeMsg{src: s, dst: d, f: g}
	}
	return nil
}

// inject delivers a frame to p as if src had sent it.
func (p *pipeConn) inject(src net.HardwareAddr, f *Frame) {
	p.in <- pipeMsg{src: src, dst: p.mac, f: f}
}

func (p *pipeConn) sentFrames() []*Frame {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*Frame(nil), p.sent...)
}

// events collects the Authenticator's callbacks.
type events struct {
	results chan resultEv
	logoffs chan string
}

type resultEv struct {
	mac string
	r   Result
}

func newEvents() *events {
	return &events{results: make(chan resultEv, 64), logoffs: make(chan string, 64)}
}

func (e *events) wire(a *Authenticator) {
	a.OnResult = func(mac net.HardwareAddr, r *Result) { e.results <- resultEv{mac.String(), *r} }
	a.OnLogoff = func(mac net.HardwareAddr) { e.logoffs <- mac.String() }
}

func (e *events) result(t *testing.T, d time.Duration) resultEv {
	t.Helper()
	select {
	case r := <-e.results:
		return r
	case <-time.After(d):
		t.Fatal("no result")
	}
	return resultEv{}
}

func (e *events) logoff(t *testing.T, d time.Duration) string {
	t.Helper()
	select {
	case m := <-e.logoffs:
		return m
	case <-time.After(d):
		t.Fatal("no logoff")
	}
	return ""
}

// runBG runs f in the background until the test ends.
func runBG(t *testing.T, f func(ctx context.Context)) context.CancelFunc {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return cancel
}

var (
	macAuth = net.HardwareAddr{0x02, 0xaa, 0, 0, 0, 1}
	macSupp = net.HardwareAddr{0x02, 0xbb, 0, 0, 0, 2}
)
