package radius

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	radius "layeh.com/radius"
)

// Server defaults. The reply cache is the duplicate detection cache of
// RFC 5080 §2.2.2.
const (
	DefaultMaxInFlight = 4096
	DefaultCacheTTL    = 10 * time.Second
	DefaultCacheSize   = 65536
)

// Request is a verified request handed to a Handler: its source address
// belongs to Client and its authenticators checked out with Client's
// secret. Packet is parsed from a copy of the datagram, with Secret set to
// the client's secret (which must not be modified).
type Request struct {
	Packet   *radius.Packet
	Client   *ClientConfig
	Remote   netip.AddrPort
	Local    net.Addr
	Received time.Time
}

// Handler answers a request (RFC 2865 §4, RFC 2866 §4, RFC 5176 §3). A nil
// reply means drop. The reply's Identifier and Authenticator are set by the
// Server, so radius.Packet.Response or a fresh packet both do; its Code must
// answer the request's. Handlers run concurrently.
type Handler interface {
	ServeRADIUS(ctx context.Context, r *Request) *radius.Packet
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, r *Request) *radius.Packet

// ServeRADIUS calls f(ctx, r).
func (f HandlerFunc) ServeRADIUS(ctx context.Context, r *Request) *radius.Packet { return f(ctx, r) }

// Server is a RADIUS server (RFC 2865, RFC 2866, RFC 5176 Dynamic
// Authorization Server, RFC 5997 Status-Server) over any number of packet
// sockets. It verifies every datagram before its Handler sees it, answers
// retransmissions from a reply cache (RFC 5080 §2.2.2), bounds concurrent
// handlers and puts a Message-Authenticator first in every reply. Handlers
// run on a pool of long-lived goroutines, one more started only when none
// is idle and idle ones ending after a while.
//
// Set the fields before the first Serve; do not change them afterwards.
type Server struct {
	// Clients is the table of NASes; datagrams from other addresses are
	// dropped without an answer (RFC 2865 §3).
	Clients *Clients
	// Handler answers the requests; Status-Server is answered by the
	// Server itself.
	Handler Handler
	// Accounting makes this an accounting server (RFC 2866): it accepts
	// Accounting-Request and answers Status-Server with
	// Accounting-Response (RFC 5997 §3). Otherwise it is an authentication
	// server: Access-Request, and Access-Accept to Status-Server.
	Accounting bool
	// Codes, when set, replaces the request codes implied by Accounting,
	// e.g. CoA-Request and Disconnect-Request for a Dynamic Authorization
	// Server (RFC 5176). Only request codes are allowed.
	Codes []radius.Code
	// MaxInFlight bounds the handlers running at once (default 4096);
	// beyond it new requests are dropped and counted.
	MaxInFlight int
	// CacheTTL is how long a reply is kept for retransmissions (default 10s).
	CacheTTL time.Duration
	// CacheSize bounds the reply cache (default 65536 entries); the oldest
	// entries are evicted first.
	CacheSize int
	// Logger receives drop and error reports, rate-limited to one per
	// second per reason and client. nil discards them.
	Logger *slog.Logger
	// Stats receives the counters. nil: the server allocates one at the
	// first Serve; Server.Snapshot reads it in either case.
	Stats *Stats

	once    sync.Once
	initErr error
	log     *slog.Logger
	stats   *Stats
	accept  [256]bool
	cache   *replyCache
	limiter *logLimiter
	maxInfl int64
	infl    atomic.Int64
	ctx     context.Context
	cancel  context.CancelFunc

	handlers sync.WaitGroup
	serving  sync.WaitGroup
	mu       sync.Mutex
	closing  bool
	conns    map[net.PacketConn]struct{}

	poolMu     sync.Mutex
	idle       []*worker // idle workers, most recently idle last
	nworkers   int
	epoch      uint64      // counts retireIdle runs
	janitor    *time.Timer // runs retireIdle; nil while there are no workers
	poolClosed bool        // Shutdown: workers leave instead of idling
	workers    sync.WaitGroup

	spawn      func(func())     // test hook: runs a handler job; nil: a pooled worker
	clock      func() time.Time // test hook; nil: time.Now
	workerIdle time.Duration    // test hook; 0: defaultWorkerIdle
}

func (s *Server) init() error {
	s.once.Do(func() {
		s.log = s.Logger
		if s.log == nil {
			s.log = slog.New(slog.DiscardHandler)
		}
		if s.Stats == nil {
			s.Stats = new(Stats)
		}
		s.stats = s.Stats
		s.maxInfl = int64(s.MaxInFlight)
		if s.maxInfl <= 0 {
			s.maxInfl = DefaultMaxInFlight
		}
		ttl := s.CacheTTL
		if ttl <= 0 {
			ttl = DefaultCacheTTL
		}
		size := s.CacheSize
		if size <= 0 {
			size = DefaultCacheSize
		}
		s.cache = newReplyCache(ttl, size)
		s.limiter = newLogLimiter(time.Second)
		s.ctx, s.cancel = context.WithCancel(context.Background())
		s.conns = make(map[net.PacketConn]struct{})

		codes := s.Codes
		if codes == nil {
			codes = []radius.Code{radius.CodeAccessRequest, radius.CodeStatusServer}
			if s.Accounting {
				codes = []radius.Code{radius.CodeAccountingRequest, radius.CodeStatusServer}
			}
		}
		for _, c := range codes {
			if !isRequestCode(c) {
				s.initErr = fmt.Errorf("radius: server: %w: %v is not a request code", ErrUnsupportedCode, c)
				return
			}
			s.accept[c] = true
		}
		switch {
		case s.Clients == nil:
			s.initErr = errNilClients
		case s.Handler == nil:
			s.initErr = errors.New("radius: server has no Handler")
		}
	})
	return s.initErr
}

// Snapshot returns the server's counters (see Stats.Snapshot).
func (s *Server) Snapshot() map[string]uint64 {
	s.init()
	return s.stats.Snapshot()
}

func (s *Server) now() time.Time {
	if s.clock != nil {
		return s.clock()
	}
	return time.Now()
}

// Serve reads requests from pc and answers them until Shutdown, or until
// reading fails. It returns ErrServerClosed after Shutdown. Several Serve
// calls with different sockets may run at once.
func (s *Server) Serve(pc net.PacketConn) error {
	if err := s.init(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.conns[pc] = struct{}{}
	s.serving.Add(1)
	s.mu.Unlock()
	defer s.serving.Done()

	snd := &connSender{pc: pc}
	snd.udp, _ = pc.(*net.UDPConn)
	local := pc.LocalAddr()
	buf := make([]byte, maxPacketLen+1) // one more to detect oversized datagrams
	for {
		var (
			n    int
			from netip.AddrPort
			err  error
		)
		if snd.udp != nil {
			n, from, err = snd.udp.ReadFromUDPAddrPort(buf)
		} else {
			var addr net.Addr
			n, addr, err = pc.ReadFrom(buf)
			from = addrPortOf(addr)
		}
		if n > 0 && from.IsValid() {
			s.handleDatagram(buf[:n], from, local, snd)
		}
		if err != nil {
			if s.isClosing() {
				return ErrServerClosed
			}
			return fmt.Errorf("radius: read: %w", err)
		}
	}
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// Shutdown stops reading on every socket given to Serve, waits for the
// handlers in flight to finish and their replies to be sent, then closes
// the sockets. If ctx ends first, the handlers' context is cancelled, the
// sockets are closed and ctx's error is returned.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.mu.Lock()
	s.closing = true
	conns := make([]net.PacketConn, 0, len(s.conns))
	for pc := range s.conns {
		conns = append(conns, pc)
	}
	s.mu.Unlock()
	for _, pc := range conns {
		pc.SetReadDeadline(time.Unix(1, 0)) // wake the read loops
	}
	err := waitGroupCtx(ctx, &s.serving)
	if err == nil {
		err = waitGroupCtx(ctx, &s.handlers)
	}
	s.cancel()
	s.closePool()
	if err == nil {
		err = waitGroupCtx(ctx, &s.workers)
	}
	for _, pc := range conns {
		pc.Close()
	}
	return err
}

func waitGroupCtx(ctx context.Context, wg *sync.WaitGroup) error {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// replySender sends a reply datagram.
type replySender interface {
	sendReply(b []byte, to netip.AddrPort) error
}

type connSender struct {
	pc  net.PacketConn
	udp *net.UDPConn
}

func (c *connSender) sendReply(b []byte, to netip.AddrPort) error {
	if c.udp != nil {
		_, err := c.udp.WriteToUDPAddrPort(b, to)
		return err
	}
	_, err := c.pc.WriteTo(b, net.UDPAddrFromAddrPort(to))
	return err
}

func addrPortOf(addr net.Addr) netip.AddrPort {
	switch a := addr.(type) {
	case *net.UDPAddr:
		return a.AddrPort()
	case nil:
		return netip.AddrPort{}
	}
	ap, _ := netip.ParseAddrPort(addr.String())
	return ap
}

// handleDatagram verifies one datagram b from from and dispatches it. It
// runs on the read loop; b is reused after it returns.
func (s *Server) handleDatagram(b []byte, from netip.AddrPort, local net.Addr, snd replySender) {
	st := s.stats
	st.received.Add(1)
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	ce := s.Clients.lookup(from.Addr())
	if ce == nil {
		s.drop(slog.LevelWarn, &st.unknownClient, "unknown_client", "", from, nil)
		return
	}
	name := ce.cfg.Name
	pkt, info, err := checkPacket(b)
	if err != nil {
		s.drop(slog.LevelWarn, &st.malformed, "malformed", name, from, err)
		return
	}
	code := radius.Code(pkt[0])
	if !s.accept[pkt[0]] {
		s.drop(slog.LevelWarn, &st.unsupportedCode, "unsupported_code", name, from, fmt.Errorf("%w: %v", ErrUnsupportedCode, code))
		return
	}
	m := ce.getMAC()
	err = verifyRequest(m, pkt, info, ce.cfg.Secret)
	ce.putMAC(m)
	if err != nil {
		switch {
		case errors.Is(err, ErrMissingMessageAuthenticator):
			if info.proxyStates > 0 {
				err = fmt.Errorf("%w (with Proxy-State)", err)
			}
			s.drop(slog.LevelWarn, &st.missingMessageAuthenticator, "missing_message_authenticator", name, from, err)
		case errors.Is(err, ErrBadMessageAuthenticator):
			s.drop(slog.LevelWarn, &st.badMessageAuthenticator, "bad_message_authenticator", name, from, err)
		case errors.Is(err, ErrBadAuthenticator):
			s.drop(slog.LevelWarn, &st.badAuthenticator, "bad_authenticator", name, from, err)
		case errors.Is(err, ErrMalformed):
			s.drop(slog.LevelWarn, &st.malformed, "malformed", name, from, err)
		default:
			s.drop(slog.LevelWarn, &st.unsupportedCode, "unsupported_code", name, from, err)
		}
		return
	}
	if code == radius.CodeStatusServer {
		s.answerStatusServer(ce, pkt, info, from, snd)
		return
	}

	now := s.now()
	e, cached, state := s.cache.begin(makeCacheKey(from, pkt), now.UnixNano())
	switch state {
	case cacheInProgress:
		s.drop(slog.LevelDebug, &st.duplicate, "duplicate", name, from, nil)
		return
	case cacheAnswered:
		st.duplicateResent.Add(1)
		if err := snd.sendReply(cached, from); err != nil {
			s.sendFailed(name, from, err)
		}
		return
	}
	if s.infl.Add(1) > s.maxInfl {
		s.infl.Add(-1)
		s.cache.abort(e)
		s.drop(slog.LevelWarn, &st.inflightDropped, "inflight_dropped", name, from, nil)
		return
	}
	j := &job{ce: ce, entry: e, snd: snd}
	parseChecked(&j.pkt, j.avps[:], j.ptrs[:], pkt, info, ce.cfg.Secret)
	j.req = Request{Packet: &j.pkt, Client: &ce.cfg, Remote: from, Local: local, Received: now}
	if info.proxyStates > 0 {
		j.proxyStates = make([]*radius.AVP, 0, info.proxyStates)
		for _, a := range j.pkt.Attributes {
			if a.Type == typeProxyState {
				j.proxyStates = append(j.proxyStates, &radius.AVP{Type: a.Type, Attribute: radius.Attribute(radius.Bytes(a.Attribute))})
			}
		}
	}
	s.dispatch(j)
}

// inlineAttrs is how many attributes a job holds without allocating;
// requests from switches carry about a dozen.
const inlineAttrs = 16

// job is one verified request on its way through the Handler. It holds
// the parsed packet, so that a request costs two allocations: the job and
// one copy of its attribute octets.
type job struct {
	req         Request
	pkt         radius.Packet
	avps        [inlineAttrs]radius.AVP
	ptrs        [inlineAttrs]*radius.AVP
	ce          *clientEntry
	entry       cacheRef
	proxyStates []*radius.AVP
	snd         replySender
}

// defaultWorkerIdle is how long a handler worker waits for work before it
// exits (between one and two times this).
const defaultWorkerIdle = 10 * time.Second

// worker is a long-lived handler goroutine. Reusing workers rather than
// starting a goroutine per request keeps their stacks grown: a fresh
// goroutine's stack is grown and copied several times on its way through
// a handler.
type worker struct {
	jobs  chan *job // capacity 1, so a sender never blocks; nil: leave
	epoch uint64    // s.epoch when the worker last became idle
}

// dispatch runs j on the most recently idle worker, or on a new one when
// none is idle. A worker counts in s.infl from when it is given a job until
// it is back on the idle stack, so when none is idle fewer than
// MaxInFlight are busy, and there are never more than MaxInFlight workers.
func (s *Server) dispatch(j *job) {
	s.handlers.Add(1)
	if s.spawn != nil {
		s.spawn(func() {
			defer s.infl.Add(-1)
			s.run(j)
		})
		return
	}
	s.poolMu.Lock()
	if n := len(s.idle); n > 0 {
		w := s.idle[n-1]
		s.idle[n-1] = nil
		s.idle = s.idle[:n-1]
		s.poolMu.Unlock()
		w.jobs <- j
		return
	}
	s.nworkers++
	s.workers.Add(1)
	if s.janitor == nil {
		idle := s.workerIdle
		if idle <= 0 {
			idle = defaultWorkerIdle
		}
		s.janitor = time.AfterFunc(idle, func() { s.retireIdle(idle) })
	}
	s.poolMu.Unlock()
	go s.work(&worker{jobs: make(chan *job, 1)}, j)
}

// work runs jobs on w, starting with j, until retireIdle or Shutdown sends
// it away. Between jobs it waits on its channel alone: a select with a
// timer and the server's context would cost more than the rest of the
// hand-over.
func (s *Server) work(w *worker, j *job) {
	defer s.workers.Done()
	for j != nil {
		s.run(j)
		s.poolMu.Lock()
		closing := s.poolClosed
		if closing {
			s.nworkers--
		} else {
			w.epoch = s.epoch
			s.idle = append(s.idle, w)
		}
		s.poolMu.Unlock()
		s.infl.Add(-1)
		if closing {
			return
		}
		j = <-w.jobs
	}
}

// retireIdle runs every idle period while there are workers: it sends
// away the workers that stayed idle through a whole period. The idle stack
// is ordered by when each worker became idle, oldest first.
func (s *Server) retireIdle(idle time.Duration) {
	s.poolMu.Lock()
	defer s.poolMu.Unlock()
	if s.poolClosed {
		return
	}
	n := 0
	for n < len(s.idle) && s.idle[n].epoch < s.epoch {
		s.idle[n].jobs <- nil
		n++
	}
	if n > 0 {
		k := copy(s.idle, s.idle[n:])
		clear(s.idle[k:])
		s.idle = s.idle[:k]
		s.nworkers -= n
	}
	s.epoch++
	if s.nworkers == 0 {
		s.janitor = nil // dispatch starts it again
		return
	}
	s.janitor.Reset(idle)
}

// closePool sends every idle worker away and makes busy ones leave when
// their job is done.
func (s *Server) closePool() {
	s.poolMu.Lock()
	defer s.poolMu.Unlock()
	s.poolClosed = true
	for i, w := range s.idle {
		w.jobs <- nil
		s.idle[i] = nil
	}
	s.nworkers -= len(s.idle)
	s.idle = s.idle[:0]
	if s.janitor != nil {
		s.janitor.Stop()
		s.janitor = nil
	}
}

// workerCount returns the number of handler workers (for tests).
func (s *Server) workerCount() int {
	s.poolMu.Lock()
	defer s.poolMu.Unlock()
	return s.nworkers
}

// run calls the Handler for j and sends and caches its reply.
// It does not release j's place in MaxInFlight; the caller does.
func (s *Server) run(j *job) {
	defer s.handlers.Done()
	st := s.stats
	reply := s.callHandler(j)
	if reply == nil {
		s.cache.abort(j.entry)
		st.handlerDropped.Add(1)
		return
	}
	b, err := s.encodeReply(j, reply)
	if err != nil {
		s.cache.abort(j.entry)
		s.drop(slog.LevelError, &st.badReply, "bad_reply", j.ce.cfg.Name, j.req.Remote, err)
		return
	}
	s.cache.finish(j.entry, b, s.now().UnixNano())
	if err := j.snd.sendReply(b, j.req.Remote); err != nil {
		s.sendFailed(j.ce.cfg.Name, j.req.Remote, err)
		return
	}
	st.replied.Add(1)
}

// callHandler runs the Handler, turning a panic into a nil reply.
func (s *Server) callHandler(j *job) (reply *radius.Packet) {
	defer func() {
		if v := recover(); v != nil {
			reply = nil
			s.stats.handlerPanic.Add(1)
			if !s.log.Enabled(context.Background(), slog.LevelError) {
				return
			}
			if ok, suppressed := s.limiter.allow("handler_panic\x00"+j.ce.cfg.Name, s.now()); ok {
				s.log.Error("radius: handler panicked; request dropped",
					"client", j.ce.cfg.Name, "from", j.req.Remote.String(),
					"panic", fmt.Sprint(v), "stack", string(debug.Stack()), "suppressed", suppressed)
			}
		}
	}()
	return s.Handler.ServeRADIUS(s.ctx, &j.req)
}

// encodeReply checks reply's code against the request, copies the
// request's Proxy-State attributes if the handler did not (RFC 2865 §5.33)
// and encodes it with a Message-Authenticator and Response Authenticator.
func (s *Server) encodeReply(j *job, reply *radius.Packet) ([]byte, error) {
	req := j.req.Packet
	if !replyCodeOK(req.Code, reply.Code) {
		return nil, fmt.Errorf("radius: handler answered %v with %v", req.Code, reply.Code)
	}
	r := *reply
	r.Identifier = req.Identifier
	r.Authenticator = req.Authenticator
	if len(j.proxyStates) > 0 && !hasAttr(r.Attributes, typeProxyState) {
		attrs := make(radius.Attributes, 0, len(r.Attributes)+len(j.proxyStates))
		attrs = append(attrs, r.Attributes...)
		r.Attributes = append(attrs, j.proxyStates...)
	}
	m := j.ce.getMAC()
	b, err := encodePacket(&r, j.ce.cfg.Secret, m, kindReply)
	j.ce.putMAC(m)
	return b, err
}

func hasAttr(attrs radius.Attributes, t radius.Type) bool {
	for _, a := range attrs {
		if a != nil && a.Type == t {
			return true
		}
	}
	return false
}

// answerStatusServer answers a verified Status-Server (RFC 5997 §3,
// §4.1) without the Handler and without caching the reply.
func (s *Server) answerStatusServer(ce *clientEntry, pkt []byte, info packetInfo, from netip.AddrPort, snd replySender) {
	s.stats.statusServer.Add(1)
	r := radius.Packet{Code: radius.CodeAccessAccept, Identifier: pkt[1]}
	if s.Accounting {
		r.Code = radius.CodeAccountingResponse
	}
	copy(r.Authenticator[:], pkt[4:headerLen])
	if info.proxyStates > 0 {
		for off := headerLen; off < len(pkt); off += int(pkt[off+1]) {
			if radius.Type(pkt[off]) == typeProxyState {
				v := make(radius.Attribute, int(pkt[off+1])-2)
				copy(v, pkt[off+2:])
				r.Attributes = append(r.Attributes, &radius.AVP{Type: typeProxyState, Attribute: v})
			}
		}
	}
	m := ce.getMAC()
	b, err := encodePacket(&r, ce.cfg.Secret, m, kindStatusReply)
	ce.putMAC(m)
	if err != nil {
		s.drop(slog.LevelError, &s.stats.badReply, "bad_reply", ce.cfg.Name, from, err)
		return
	}
	if err := snd.sendReply(b, from); err != nil {
		s.sendFailed(ce.cfg.Name, from, err)
		return
	}
	s.stats.replied.Add(1)
}

// drop counts a dropped request and logs it, at most once a second per
// reason and client.
func (s *Server) drop(level slog.Level, ctr *atomic.Uint64, reason, client string, from netip.AddrPort, err error) {
	ctr.Add(1)
	if !s.log.Enabled(context.Background(), level) {
		return
	}
	ok, suppressed := s.limiter.allow(reason+"\x00"+client, s.now())
	if !ok {
		return
	}
	attrs := []slog.Attr{
		slog.String("reason", reason),
		slog.String("client", client),
		slog.String("from", from.String()),
	}
	if err != nil {
		attrs = append(attrs, slog.String("err", err.Error()))
	}
	if suppressed > 0 {
		attrs = append(attrs, slog.Uint64("suppressed", suppressed))
	}
	s.log.LogAttrs(context.Background(), level, "radius: request dropped", attrs...)
}

func (s *Server) sendFailed(client string, to netip.AddrPort, err error) {
	s.stats.sendError.Add(1)
	if s.isClosing() {
		return
	}
	if ok, suppressed := s.limiter.allow("send_error\x00"+client, s.now()); ok {
		s.log.Warn("radius: sending reply failed", "client", client, "to", to.String(),
			"err", err.Error(), "suppressed", suppressed)
	}
}
