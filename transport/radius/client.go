package radius

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	radius "layeh.com/radius"
	"layeh.com/radius/rfc3576"
)

// Client defaults: the initial retransmission time and count of RFC 5080
// §2.2.1 (IRT 2s; three tries in all).
const (
	DefaultTimeout = 2 * time.Second
	DefaultRetries = 2
)

// maxRetransmissionTime caps the doubling of Client.Timeout (MRT, RFC 5080
// §2.2.1).
const maxRetransmissionTime = 16 * time.Second

// idsPerSocket is the number of Identifiers, and so of outstanding
// requests, one UDP socket can carry: the Identifier has 8 bits (RFC 2865
// §3).
const idsPerSocket = 256

// Client sends RADIUS requests and waits for verified replies. It is safe
// for concurrent use by many goroutines: it multiplexes over UDP sockets
// with up to 256 outstanding Identifiers each and opens more sockets as
// needed. Every request carries a Message-Authenticator first (RFC 3579
// §3.2); a retransmission is the identical packet (RFC 5080 §2.2.1).
//
// Replies are accepted only from the address the request went to, with the
// right Identifier and code, a correct Response Authenticator (RFC 2865 §3)
// and a correct Message-Authenticator, which is required in replies to
// Access-Request and Status-Server. Anything else is ignored and the Client
// keeps waiting.
//
// Set the fields before the first Exchange; do not change them afterwards.
type Client struct {
	// Secret is the shared secret; if empty the packet's Secret is used.
	Secret []byte
	// Timeout is the wait for the first try (default 2s); it doubles with
	// every retransmission, up to 16s (RFC 5080 §2.2.1 IRT and MRT).
	Timeout time.Duration
	// Retries is the number of retransmissions after the first try: 0 means
	// the default of 2, a negative value means none.
	Retries int
	// Logger receives reports of ignored datagrams at debug level. nil
	// discards them.
	Logger *slog.Logger

	once    sync.Once
	log     *slog.Logger
	limiter *logLimiter
	macs    sync.Pool // *macState keyed with Secret

	mu     sync.Mutex
	closed bool
	conns  []*clientConn
	hint   int
}

// clientConn is one UDP socket with its table of outstanding Identifiers.
type clientConn struct {
	c    *Client
	pc   *net.UDPConn
	done chan struct{} // closed when the reader exits

	mu      sync.Mutex
	pending [idsPerSocket]*pending
	n       int
	next    byte
	dead    bool
	err     error
}

// pending is one outstanding request. Its fields are fixed once ready is
// set (under clientConn.mu).
type pending struct {
	id        byte
	dest      netip.AddrPort
	code      radius.Code
	auth      [16]byte
	secret    []byte
	pooled    bool // secret is Client.Secret: use Client.macs
	ready     bool
	delivered bool
	ch        chan []byte // capacity 1
}

func (c *Client) init() {
	c.once.Do(func() {
		c.log = c.Logger
		if c.log == nil {
			c.log = slog.New(slog.DiscardHandler)
		}
		c.limiter = newLogLimiter(time.Second)
	})
}

func (c *Client) getMAC(secret []byte, pooled bool) *macState {
	if pooled {
		if m, ok := c.macs.Get().(*macState); ok {
			m.h.Reset()
			return m
		}
	}
	return &macState{h: hmac.New(md5.New, secret)}
}

func (c *Client) putMAC(m *macState, pooled bool) {
	if pooled {
		c.macs.Put(m)
	}
}

// Exchange sends the request p to addr ("host:port") and returns the
// verified reply, parsed with the secret. p is not modified: the Client
// picks the Identifier, adds the Message-Authenticator and computes the
// authenticators on a copy. An Access-Request or Status-Server keeps a
// non-zero p.Authenticator (radius.New fills it from crypto/rand, and a
// User-Password is encrypted with it, RFC 2865 §5.2); a zero one is
// replaced by 16 random octets. When all tries time out the error wraps
// ErrTimeout; when ctx ends first, ctx's error.
func (c *Client) Exchange(ctx context.Context, p *radius.Packet, addr string) (*radius.Packet, error) {
	c.init()
	if p == nil {
		return nil, errors.New("radius: Exchange: nil packet")
	}
	if !isRequestCode(p.Code) {
		return nil, fmt.Errorf("%w: %v is not a request", ErrUnsupportedCode, p.Code)
	}
	secret, pooled := c.Secret, true
	if len(secret) == 0 {
		secret, pooled = p.Secret, false
	}
	if len(secret) == 0 {
		return nil, ErrNoSecret
	}
	dest, err := resolveUDP(ctx, addr)
	if err != nil {
		return nil, err
	}
	q := *p
	q.Secret = secret
	kind := kindHashed
	if !hashedAuthenticator(q.Code) {
		kind = kindRandom
		if q.Authenticator == zeroAuth {
			if _, err := rand.Read(q.Authenticator[:]); err != nil {
				return nil, fmt.Errorf("radius: request authenticator: %w", err)
			}
		}
	}

	pd := &pending{dest: dest, code: q.Code, secret: secret, pooled: pooled, ch: make(chan []byte, 1)}
	cc, err := c.acquire(pd)
	if err != nil {
		return nil, err
	}
	defer cc.release(pd)
	q.Identifier = pd.id
	m := c.getMAC(secret, pooled)
	raw, err := encodePacket(&q, secret, m, kind)
	c.putMAC(m, pooled)
	if err != nil {
		return nil, err
	}
	cc.mu.Lock()
	copy(pd.auth[:], raw[4:headerLen])
	pd.ready = true
	cc.mu.Unlock()

	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	tries := 1 + DefaultRetries
	if c.Retries > 0 {
		tries = 1 + c.Retries
	} else if c.Retries < 0 {
		tries = 1
	}
	for try := 0; try < tries; try++ {
		if _, err := cc.pc.WriteToUDPAddrPort(raw, dest); err != nil {
			if c.isClosed() {
				return nil, ErrClientClosed
			}
			return nil, fmt.Errorf("radius: send %v to %s: %w", q.Code, addr, err)
		}
		t := time.NewTimer(timeout)
		select {
		case b := <-pd.ch:
			t.Stop()
			r, err := radius.Parse(b, secret)
			if err != nil {
				return nil, fmt.Errorf("radius: reply from %s: %w", addr, err)
			}
			return r, nil
		case <-t.C:
			// Double the wait, up to the maximum retransmission time of
			// RFC 5080 §2.2.1 (a longer configured Timeout stays as is).
			timeout = max(timeout, min(2*timeout, maxRetransmissionTime))
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("radius: %v to %s: %w", q.Code, addr, ctx.Err())
		case <-cc.done:
			t.Stop()
			return nil, cc.failure()
		}
	}
	return nil, fmt.Errorf("radius: %v to %s: %w after %d tries", q.Code, addr, ErrTimeout, tries)
}

// DynamicAuth sends a CoA-Request or Disconnect-Request (RFC 5176 §2) and
// returns nil on CoA-ACK / Disconnect-ACK and a *NAKError (matching ErrNAK)
// on CoA-NAK / Disconnect-NAK.
func (c *Client) DynamicAuth(ctx context.Context, p *radius.Packet, addr string) error {
	if p == nil {
		return errors.New("radius: DynamicAuth: nil packet")
	}
	var ack radius.Code
	switch p.Code {
	case radius.CodeCoARequest:
		ack = radius.CodeCoAACK
	case radius.CodeDisconnectRequest:
		ack = radius.CodeDisconnectACK
	default:
		return fmt.Errorf("%w: DynamicAuth needs CoA-Request or Disconnect-Request, not %v", ErrUnsupportedCode, p.Code)
	}
	r, err := c.Exchange(ctx, p, addr)
	if err != nil {
		return err
	}
	if r.Code == ack {
		return nil
	}
	cause, _ := rfc3576.ErrorCause_Lookup(r)
	return &NAKError{Code: r.Code, ErrorCause: cause}
}

// Close closes the Client's sockets; pending and later Exchanges fail with
// ErrClientClosed.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	conns := c.conns
	c.conns = nil
	c.mu.Unlock()
	for _, cc := range conns {
		cc.pc.Close()
	}
	for _, cc := range conns {
		<-cc.done
	}
	return nil
}

func (c *Client) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// acquire finds a socket with a free Identifier for pd, opening one if
// every socket is full.
func (c *Client) acquire(pd *pending) (*clientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClientClosed
	}
	for i := range c.conns {
		j := (c.hint + i) % len(c.conns)
		if c.conns[j].take(pd) {
			c.hint = j
			return c.conns[j], nil
		}
	}
	// Forget dead sockets nobody waits on.
	live := c.conns[:0]
	for _, cc := range c.conns {
		if cc.idleDead() {
			cc.pc.Close()
			continue
		}
		live = append(live, cc)
	}
	clear(c.conns[len(live):])
	c.conns = live

	pc, err := net.ListenUDP("udp", nil)
	if err != nil {
		return nil, fmt.Errorf("radius: client socket: %w", err)
	}
	cc := &clientConn{c: c, pc: pc, done: make(chan struct{})}
	go cc.read()
	c.conns = append(c.conns, cc)
	c.hint = len(c.conns) - 1
	cc.take(pd)
	return cc, nil
}

// take assigns pd a free Identifier of cc.
func (cc *clientConn) take(pd *pending) bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.dead || cc.n >= idsPerSocket {
		return false
	}
	for i := 0; i < idsPerSocket; i++ {
		id := cc.next + byte(i)
		if cc.pending[id] == nil {
			pd.id = id
			cc.pending[id] = pd
			cc.n++
			cc.next = id + 1
			return true
		}
	}
	return false
}

func (cc *clientConn) release(pd *pending) {
	cc.mu.Lock()
	if cc.pending[pd.id] == pd {
		cc.pending[pd.id] = nil
		cc.n--
	}
	cc.mu.Unlock()
}

func (cc *clientConn) idleDead() bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.dead && cc.n == 0
}

// failure is the error for Exchanges on a socket whose reader stopped; nil
// while it runs.
func (cc *clientConn) failure() error {
	cc.mu.Lock()
	dead, err := cc.dead, cc.err
	cc.mu.Unlock()
	if !dead {
		return nil
	}
	if cc.c.isClosed() {
		return ErrClientClosed
	}
	return fmt.Errorf("radius: client socket: %w", err)
}

// read receives replies until the socket fails or is closed.
func (cc *clientConn) read() {
	defer close(cc.done)
	buf := make([]byte, maxPacketLen+1)
	for {
		n, from, err := cc.pc.ReadFromUDPAddrPort(buf)
		if n > 0 {
			cc.deliver(buf[:n], from)
		}
		if err != nil {
			cc.mu.Lock()
			cc.dead, cc.err = true, err
			cc.mu.Unlock()
			if !cc.c.isClosed() {
				cc.c.log.Error("radius: client socket failed", "err", err.Error())
			}
			return
		}
	}
}

// deliver hands a verified reply to the Exchange waiting for it and
// ignores everything else.
func (cc *clientConn) deliver(b []byte, from netip.AddrPort) {
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	pkt, info, err := checkPacket(b)
	if err != nil {
		cc.ignore("malformed", from, err)
		return
	}
	cc.mu.Lock()
	pd := cc.pending[pkt[1]]
	if pd == nil || !pd.ready || pd.delivered {
		cc.mu.Unlock()
		cc.ignore("no_request", from, nil)
		return
	}
	cc.mu.Unlock()
	if from != pd.dest {
		cc.ignore("wrong_source", from, nil)
		return
	}
	m := cc.c.getMAC(pd.secret, pd.pooled)
	err = verifyReply(m, pkt, info, pd.code, pd.id, &pd.auth, pd.secret)
	cc.c.putMAC(m, pd.pooled)
	if err != nil {
		cc.ignore("unverified", from, err)
		return
	}
	reply := bytes.Clone(pkt)
	cc.mu.Lock()
	if cc.pending[pd.id] == pd && !pd.delivered {
		pd.delivered = true
		pd.ch <- reply
	}
	cc.mu.Unlock()
}

func (cc *clientConn) ignore(reason string, from netip.AddrPort, err error) {
	c := cc.c
	if !c.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	if ok, suppressed := c.limiter.allow(reason, time.Now()); ok {
		attrs := []any{"reason", reason, "from", from.String(), "suppressed", suppressed}
		if err != nil {
			attrs = append(attrs, "err", err.Error())
		}
		c.log.Debug("radius: datagram ignored", attrs...)
	}
}

// resolveUDP turns "host:port" into an address, resolving names.
func resolveUDP(ctx context.Context, addr string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("radius: address %q: %w", addr, err)
	}
	pn, err := net.DefaultResolver.LookupPort(ctx, "udp", port)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("radius: address %q: %w", addr, err)
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("radius: address %q: %w", addr, err)
	}
	if len(ips) == 0 {
		return netip.AddrPort{}, fmt.Errorf("radius: address %q: no IP address", addr)
	}
	ip := ips[0]
	for _, a := range ips { // prefer IPv4, as most NAS configurations do
		if a.Unmap().Is4() {
			ip = a
			break
		}
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(pn)), nil
}
