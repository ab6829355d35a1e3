package smdtls

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/dtls/v2"
)

// acceptBacklog is how many established conns wait for Accept.
const acceptBacklog = 64

// wireQueue is how many datagrams wait for one association's reader.
const wireQueue = 256

// alertSeq is the epoch-0 record sequence number of the alerts the
// listener sends itself: far above anything the handshake used, so the
// client's replay window accepts it.
const alertSeq = 1 << 40

// ListenerStats are a Listener's counters.
type ListenerStats struct {
	// HelloVerifies counts HelloVerifyRequests sent: ClientHellos without
	// a valid cookie, which left no state behind.
	HelloVerifies uint64
	// Handshakes counts handshakes started (cookie verified).
	Handshakes uint64
	// Failed counts handshakes that failed.
	Failed uint64
	// Accepted counts associations handed to Accept.
	Accepted uint64
	// Dropped counts datagrams dropped: not a ClientHello from an
	// unknown address, limits reached, or a full queue.
	Dropped uint64
	// Active is the number of associations (handshaking or established).
	Active int
}

// Listener accepts SM-DTLS associations on one UDP socket. It is a
// net.Listener (so pttls.Server.Serve can use it) whose Accept returns
// *Conn values.
//
// Datagrams from addresses without an association must be ClientHellos.
// One without a valid cookie is answered with a HelloVerifyRequest whose
// cookie is computed, not stored (RFC 6347 §4.2.1); only a ClientHello
// echoing a valid cookie from the address it was made for creates an
// association. The cookie exchange differs from RFC 6347 in one detail
// the Dial side takes care of: the client sends its cookie in a copy of
// its first ClientHello (message_seq 0) and the listener strips the
// cookie before pion sees it, because pion's server can only start a
// handshake at message_seq 0. Stock DTLS clients therefore cannot connect
// (they could not anyway: the suite is private).
type Listener struct {
	cfg    *Config
	log    *slog.Logger
	pc     *net.UDPConn
	cookie *cookieJar
	ctx    context.Context
	cancel context.CancelFunc
	accept chan *Conn
	wg     sync.WaitGroup

	mu          sync.Mutex
	wires       map[netip.AddrPort]*serverWire
	handshaking int
	closed      bool

	helloVerifies, handshakes, failed, accepted, dropped atomic.Uint64
}

// Listen opens a UDP socket on laddr and serves SM-DTLS on it with
// cfg.PSKStore deciding which identities may connect. network is "udp",
// "udp4" or "udp6".
func Listen(network string, laddr *net.UDPAddr, cfg *Config) (*Listener, error) {
	c, err := cfg.settled(true)
	if err != nil {
		return nil, err
	}
	jar, err := newCookieJar()
	if err != nil {
		return nil, fmt.Errorf("smdtls: cookie key: %w", err)
	}
	pc, err := net.ListenUDP(network, laddr)
	if err != nil {
		return nil, fmt.Errorf("smdtls: listen: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &Listener{
		cfg:    c,
		log:    c.Logger,
		pc:     pc,
		cookie: jar,
		ctx:    ctx,
		cancel: cancel,
		accept: make(chan *Conn, acceptBacklog),
		wires:  make(map[netip.AddrPort]*serverWire),
	}
	l.wg.Add(1)
	go l.serve()
	return l, nil
}

// Addr returns the listening UDP address.
func (l *Listener) Addr() net.Addr { return l.pc.LocalAddr() }

// Accept waits for the next established association; it implements
// net.Listener, the value is a *Conn.
func (l *Listener) Accept() (net.Conn, error) {
	c, err := l.AcceptConn(context.Background())
	if err != nil {
		return nil, err
	}
	return c, nil
}

// AcceptConn waits for the next established association or for ctx.
// After Close it returns an error wrapping net.ErrClosed.
func (l *Listener) AcceptConn(ctx context.Context) (*Conn, error) {
	select {
	case c := <-l.accept:
		return c, nil
	case <-l.ctx.Done():
		return nil, fmt.Errorf("smdtls: accept: %w", net.ErrClosed)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Stats returns the listener's counters.
func (l *Listener) Stats() ListenerStats {
	l.mu.Lock()
	active := len(l.wires)
	l.mu.Unlock()
	return ListenerStats{
		HelloVerifies: l.helloVerifies.Load(),
		Handshakes:    l.handshakes.Load(),
		Failed:        l.failed.Load(),
		Accepted:      l.accepted.Load(),
		Dropped:       l.dropped.Load(),
		Active:        active,
	}
}

// Close stops the listener. All its associations share its socket, so
// Close ends them too, accepted or not.
func (l *Listener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return fmt.Errorf("smdtls: close: %w", net.ErrClosed)
	}
	l.closed = true
	wires := make([]*serverWire, 0, len(l.wires))
	for _, w := range l.wires {
		wires = append(wires, w)
	}
	l.mu.Unlock()
	l.cancel()
	err := l.pc.Close()
	for _, w := range wires {
		_ = w.Close()
	}
	l.wg.Wait()
drain:
	for {
		select {
		case c := <-l.accept:
			_ = c.Close()
		default:
			break drain
		}
	}
	return err
}

func (l *Listener) serve() {
	defer l.wg.Done()
	buf := make([]byte, 1<<16)
	for {
		n, addr, err := l.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if l.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			l.log.Debug("smdtls: read", "err", err)
			continue
		}
		l.handleDatagram(buf[:n], addr)
	}
}

// handleDatagram routes one datagram: to its association, or through the
// stateless cookie check.
func (l *Listener) handleDatagram(d []byte, addr netip.AddrPort) {
	key := netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	l.mu.Lock()
	w := l.wires[key]
	l.mu.Unlock()

	ch, chErr := parseClientHello(d)
	if w != nil {
		if chErr != nil {
			w.deliver(d)
			return
		}
		if !w.established.Load() { // a retransmitted ClientHello during the handshake
			if out, err := ch.appendWithCookie(nil, d, nil); err == nil {
				w.deliver(out)
			}
			return
		}
		// A ClientHello on an established association: the client has
		// restarted from the same port. A valid cookie replaces the old
		// association (RFC 6347 §4.2.8); otherwise ask for one.
		if !l.cookie.valid(key, &ch) {
			l.sendHelloVerify(d, addr, key, &ch)
			return
		}
		l.log.Info("smdtls: client restarted, replacing association", "peer", addr.String())
		_ = w.Close()
	}
	if chErr != nil {
		l.dropped.Add(1)
		return
	}
	if !l.cookie.valid(key, &ch) {
		l.sendHelloVerify(d, addr, key, &ch)
		return
	}
	stripped, err := ch.appendWithCookie(nil, d, nil)
	if err != nil {
		l.dropped.Add(1)
		return
	}
	l.mu.Lock()
	if l.closed || len(l.wires) >= l.cfg.MaxConns || l.handshaking >= l.cfg.MaxHandshakes {
		l.mu.Unlock()
		l.dropped.Add(1)
		return
	}
	w = &serverWire{l: l, key: key, addr: addr, in: make(chan []byte, wireQueue), closed: make(chan struct{})}
	l.wires[key] = w
	l.handshaking++
	l.wg.Add(1)
	l.mu.Unlock()
	l.handshakes.Add(1)
	w.deliver(stripped)
	go l.handshake(w)
}

func (l *Listener) sendHelloVerify(d []byte, addr, key netip.AddrPort, ch *clientHello) {
	hvr := appendHelloVerifyRequest(make([]byte, 0, 64), d[5:11], l.cookie.issue(key, ch))
	if _, err := l.pc.WriteToUDPAddrPort(hvr, addr); err != nil {
		l.log.Debug("smdtls: HelloVerifyRequest not sent", "peer", addr.String(), "err", err)
		return
	}
	l.helloVerifies.Add(1)
}

func (l *Listener) sendAlert(addr netip.AddrPort, desc uint8) {
	_, _ = l.pc.WriteToUDPAddrPort(appendPlainAlert(nil, alertSeq, 2, desc), addr)
}

// handshake runs the server side of one DTLS handshake and queues the
// association for Accept.
func (l *Listener) handshake(w *serverWire) {
	defer l.wg.Done()
	sess := newSession(false)
	hctx, cancel := context.WithTimeout(l.ctx, l.cfg.HandshakeTimeout)
	defer cancel()
	sess.onHandshakeAuthFailure = func() {
		l.sendAlert(w.addr, AlertBadRecordMAC)
		cancel()
	}
	pc := pionConfig(sess, l.cfg)
	pc.PSK = func(identity []byte) ([]byte, error) {
		psk, err := l.lookup(identity)
		if err != nil {
			desc := uint8(AlertInternalError)
			if errors.Is(err, ErrUnknownIdentity) {
				desc = AlertUnknownPSKIdentity
			}
			l.sendAlert(w.addr, desc)
			return nil, err
		}
		sess.setIdentity(identity)
		return psk, nil
	}
	// The cookie exchange happened statelessly in handleDatagram.
	pc.InsecureSkipVerifyHello = true

	dc, err := dtls.ServerWithContext(hctx, w, pc)
	l.mu.Lock()
	l.handshaking--
	l.mu.Unlock()
	if err != nil {
		_ = w.Close()
		err = explainHandshake(w.RemoteAddr(), sess, hctx, err)
		l.log.Warn("smdtls: handshake failed", "peer", w.addr.String(), "identity", printableIdentity(sess.peerIdentity()), "err", err)
		l.failed.Add(1)
		return
	}
	sess.established.Store(true)
	w.established.Store(true)
	id := sess.peerIdentity()
	c := newConn(dc, sess, l.cfg, id)
	l.log.Info("smdtls: association established", "peer", w.addr.String(), "identity", printableIdentity(id), "suite", CipherSuiteName)
	select {
	case l.accept <- c:
		l.accepted.Add(1)
	case <-l.ctx.Done():
		_ = c.Close()
	}
}

// lookup asks the PSKStore and checks its answer.
func (l *Listener) lookup(identity []byte) ([]byte, error) {
	if len(identity) == 0 || len(identity) > MaxIdentityLen {
		return nil, fmt.Errorf("%w: identity of %d bytes", ErrUnknownIdentity, len(identity))
	}
	psk, err := l.cfg.PSKStore.PSK(bytes.Clone(identity))
	switch {
	case err != nil:
		return nil, fmt.Errorf("smdtls: PSK for identity %s: %w", printableIdentity(identity), err)
	case len(psk) < MinPSKLen || len(psk) > MaxPSKLen:
		return nil, fmt.Errorf("%w: PSKStore gave %d bytes for identity %s", ErrUnknownIdentity, len(psk), printableIdentity(identity))
	}
	return psk, nil
}

func (l *Listener) removeWire(w *serverWire) {
	l.mu.Lock()
	if l.wires[w.key] == w {
		delete(l.wires, w.key)
	}
	l.mu.Unlock()
}

// printableIdentity renders a PSK identity for logs: as text when it is
// printable ASCII, else as hex.
func printableIdentity(id []byte) string {
	for _, b := range id {
		if b < 0x20 || b > 0x7e {
			return fmt.Sprintf("%x", id)
		}
	}
	return string(id)
}

// serverWire is one association's view of the listener's socket, the
// net.Conn pion's server runs on: datagrams from its address arrive
// through a bounded queue (overflow is dropped, as UDP would), writes go
// out through the shared socket.
type serverWire struct {
	l           *Listener
	key, addr   netip.AddrPort
	in          chan []byte
	rd          deadline
	closed      chan struct{}
	closeOnce   sync.Once
	established atomic.Bool
}

func (w *serverWire) deliver(d []byte) {
	select {
	case w.in <- bytes.Clone(d):
	default:
		w.l.dropped.Add(1)
	}
}

func (w *serverWire) Read(p []byte) (int, error) {
	for {
		select {
		case d := <-w.in:
			return copy(p, d), nil
		case <-w.closed:
			return 0, net.ErrClosed
		default:
		}
		expired, changed, stop := w.rd.wait()
		select {
		case d := <-w.in:
			stop()
			return copy(p, d), nil
		case <-w.closed:
			stop()
			return 0, net.ErrClosed
		case <-expired:
			return 0, &timeoutError{op: "read"}
		case <-changed:
			stop()
		}
	}
}

func (w *serverWire) Write(p []byte) (int, error) {
	select {
	case <-w.closed:
		return 0, net.ErrClosed
	default:
	}
	return w.l.pc.WriteToUDPAddrPort(p, w.addr)
}

func (w *serverWire) Close() error {
	w.closeOnce.Do(func() {
		close(w.closed)
		w.l.removeWire(w)
	})
	return nil
}

func (w *serverWire) LocalAddr() net.Addr                { return w.l.pc.LocalAddr() }
func (w *serverWire) RemoteAddr() net.Addr               { return net.UDPAddrFromAddrPort(w.addr) }
func (w *serverWire) SetDeadline(t time.Time) error      { w.rd.set(t); return nil }
func (w *serverWire) SetReadDeadline(t time.Time) error  { w.rd.set(t); return nil }
func (w *serverWire) SetWriteDeadline(t time.Time) error { return nil }
