package smdtls

import (
	"context"
	"fmt"
	"net"
	"sync"

	"github.com/pion/dtls/v2"
)

// Dial opens an SM-DTLS association to raddr as the client with identity
// cfg.Identity and key cfg.PSK, bounded by ctx and cfg.HandshakeTimeout.
// network is "udp", "udp4" or "udp6". A refused handshake returns an
// error matching ErrAuthFailed (the server holds another key),
// ErrUnknownIdentity or ErrNoSharedSuite, or an *AlertError; a server that
// never answers gives an error wrapping context.DeadlineExceeded.
func Dial(ctx context.Context, network string, raddr *net.UDPAddr, cfg *Config) (*Conn, error) {
	return dial(ctx, network, raddr, cfg, dialOpts{})
}

// dialOpts are test hooks: a fixed local address, a change to the pion
// configuration (to offer other cipher suites), access to the wire.
type dialOpts struct {
	laddr  *net.UDPAddr
	tweak  func(*dtls.Config)
	onWire func(*clientWire)
}

func dial(ctx context.Context, network string, raddr *net.UDPAddr, cfg *Config, o dialOpts) (*Conn, error) {
	c, err := cfg.settled(false)
	if err != nil {
		return nil, err
	}
	uc, err := net.DialUDP(network, o.laddr, raddr)
	if err != nil {
		return nil, fmt.Errorf("smdtls: dial: %w", err)
	}
	sess := newSession(true)
	wire := &clientWire{UDPConn: uc, sess: sess}
	pc := pionConfig(sess, c)
	psk := c.PSK
	pc.PSK = func([]byte) ([]byte, error) { return psk, nil }
	pc.PSKIdentityHint = c.Identity // pion sends this as the client's psk_identity
	if o.tweak != nil {
		o.tweak(pc)
	}
	if o.onWire != nil {
		o.onWire(wire)
	}
	hctx, cancel := context.WithTimeout(ctx, c.HandshakeTimeout)
	defer cancel()
	dc, err := dtls.ClientWithContext(hctx, wire, pc)
	if err != nil {
		_ = uc.Close()
		return nil, explainHandshake(raddr, sess, hctx, err)
	}
	sess.established.Store(true)
	c.Logger.Debug("smdtls: connected", "peer", raddr.String(), "suite", CipherSuiteName)
	return newConn(dc, sess, c, c.Identity), nil
}

// explainHandshake turns a pion handshake error into one that says why:
// the alert the peer sent, records that failed authentication, or a
// timeout. pion's error is kept in the chain.
func explainHandshake(peer net.Addr, sess *session, ctx context.Context, err error) error {
	var cause error
	switch a := sess.alert.Load(); {
	case a != nil && a.Description != AlertCloseNotify:
		cause = a
	case sess.authFailures.Load() > 0:
		cause = ErrAuthFailed
	case ctx.Err() != nil:
		cause = fmt.Errorf("no answer: %w", ctx.Err())
	}
	if cause == nil {
		return fmt.Errorf("smdtls: handshake with %v: %w", peer, err)
	}
	return fmt.Errorf("smdtls: handshake with %v: %w (%w)", peer, cause, err)
}

// clientWire is the client's UDP socket as pion sees it. It completes the
// listener's stateless cookie exchange (hello.go, cookie.go) out of
// pion's sight: a HelloVerifyRequest is not passed up; its cookie is put
// into the ClientHello, which is sent again at once, and into pion's
// retransmissions of it. pion therefore sees a handshake without
// HelloVerifyRequest, which is what the server's pion runs. The wire also
// records plaintext alerts, which tell why a handshake was refused.
type clientWire struct {
	*net.UDPConn
	sess *session

	mu     sync.Mutex
	cookie []byte
	hello  []byte // the last ClientHello pion sent, without cookie
}

func (w *clientWire) Write(p []byte) (int, error) {
	if w.sess.established.Load() {
		return w.UDPConn.Write(p)
	}
	ch, err := parseClientHello(p)
	if err != nil {
		return w.UDPConn.Write(p)
	}
	w.mu.Lock()
	w.hello = append(w.hello[:0], p...)
	cookie := w.cookie
	w.mu.Unlock()
	if cookie == nil {
		return w.UDPConn.Write(p)
	}
	out, err := ch.appendWithCookie(nil, p, cookie)
	if err != nil {
		return 0, err
	}
	if _, err := w.UDPConn.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (w *clientWire) Read(p []byte) (int, error) {
	for {
		n, err := w.UDPConn.Read(p)
		if err != nil || w.sess.established.Load() {
			return n, err
		}
		d := p[:n]
		if cookie, err := parseHelloVerifyRequest(d); err == nil {
			w.resendWithCookie(cookie)
			continue
		}
		if level, desc, ok := parsePlainAlert(d); ok {
			w.sess.noteAlert(level, desc)
		}
		return n, nil
	}
}

func (w *clientWire) resendWithCookie(cookie []byte) {
	w.mu.Lock()
	w.cookie = cookie
	hello := append([]byte(nil), w.hello...)
	w.mu.Unlock()
	if len(hello) == 0 {
		return
	}
	if ch, err := parseClientHello(hello); err == nil {
		if out, err := ch.appendWithCookie(nil, hello, cookie); err == nil {
			_, _ = w.UDPConn.Write(out)
		}
	}
}
