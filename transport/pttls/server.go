package pttls

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxConns is the default bound on concurrent connections of a
// Server.
const DefaultMaxConns = 1024

// Handler serves one negotiated PT-TLS session: typically it runs the TNCS
// side of PB-TNC over c. ctx ends when the server is forced to shut down.
// The server closes c when ServePTTLS returns.
type Handler interface {
	ServePTTLS(ctx context.Context, c *Conn)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, c *Conn)

// ServePTTLS calls f(ctx, c).
func (f HandlerFunc) ServePTTLS(ctx context.Context, c *Conn) { f(ctx, c) }

// Server accepts PT-TLS sessions (RFC 6876) and hands each negotiated Conn
// to Handler in its own goroutine. Its fields must not change after Serve
// is called.
type Server struct {
	// Config is the negotiation configuration for every connection.
	Config ServerConfig
	// Handler serves each negotiated session.
	Handler Handler
	// Logger receives connection events; nil discards them. Passwords and
	// keys are never logged.
	Logger *slog.Logger
	// MaxConns bounds concurrent connections (negotiating or served); 0
	// means DefaultMaxConns. A connection beyond it is closed at once.
	MaxConns int

	mu        sync.Mutex
	started   bool
	shutdown  bool
	ctx       context.Context
	cancel    context.CancelFunc
	listeners map[net.Listener]struct{}
	conns     map[net.Conn]struct{}
	wg        sync.WaitGroup

	accepted atomic.Uint64
	rejected atomic.Uint64
	errors   atomic.Uint64
}

// Stats are a Server's counters, for metrics.
type Stats struct {
	// Accepted counts connections taken into service.
	Accepted uint64
	// Rejected counts connections closed at once because MaxConns was
	// reached.
	Rejected uint64
	// Errors counts failed negotiations and panicking handlers.
	Errors uint64
	// Active is the number of connections being negotiated or served.
	Active int
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	active := len(s.conns)
	s.mu.Unlock()
	return Stats{
		Accepted: s.accepted.Load(),
		Rejected: s.rejected.Load(),
		Errors:   s.errors.Load(),
		Active:   active,
	}
}

func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

// initLocked sets up the server state once; s.mu must be held.
func (s *Server) initLocked() {
	if s.started {
		return
	}
	s.started = true
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.listeners = make(map[net.Listener]struct{})
	s.conns = make(map[net.Conn]struct{})
}

// Serve accepts connections from l until Shutdown or an accept error. l
// must yield secured connections (e.g. from tls.NewListener with TLS 1.2 or
// later); each is negotiated (ServerHandshake) and served by Handler in its
// own goroutine. Serve returns ErrServerClosed after Shutdown, and closes l
// when it returns.
func (s *Server) Serve(l net.Listener) error {
	if s.Handler == nil {
		return errors.New("pttls: Server has no Handler")
	}
	if err := s.Config.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	s.initLocked()
	if s.shutdown {
		s.mu.Unlock()
		_ = l.Close()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
		_ = l.Close()
	}()

	log := s.logger()
	maxConns := s.MaxConns
	if maxConns <= 0 {
		maxConns = DefaultMaxConns
	}
	var backoff time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			down := s.shutdown
			s.mu.Unlock()
			if down {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				log.Warn("pttls: accept failed; retrying", "err", err, "retry_in", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		s.mu.Lock()
		switch {
		case s.shutdown:
			s.mu.Unlock()
			_ = nc.Close()
			return ErrServerClosed
		case len(s.conns) >= maxConns:
			s.mu.Unlock()
			s.rejected.Add(1)
			log.Warn("pttls: connection rejected: too many connections",
				"remote", nc.RemoteAddr().String(), "max_conns", maxConns)
			_ = nc.Close()
			continue
		}
		s.conns[nc] = struct{}{}
		s.wg.Add(1)
		ctx := s.ctx
		s.mu.Unlock()
		s.accepted.Add(1)
		go s.serveConn(ctx, nc, log)
	}
}

// serveConn negotiates and serves one connection.
func (s *Server) serveConn(ctx context.Context, nc net.Conn, log *slog.Logger) {
	remote := nc.RemoteAddr().String()
	var c *Conn
	defer func() {
		if r := recover(); r != nil {
			s.errors.Add(1)
			log.Error("pttls: handler panicked; connection closed",
				"remote", remote, "panic", r, "stack", string(debug.Stack()))
		}
		if c != nil {
			_ = c.Close()
		} else {
			_ = nc.Close()
		}
		s.mu.Lock()
		delete(s.conns, nc)
		s.mu.Unlock()
		s.wg.Done()
	}()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var err error
	c, err = ServerHandshake(ctx, nc, &s.Config)
	if err != nil {
		s.errors.Add(1)
		log.Warn("pttls: negotiation failed", "remote", remote, "err", err)
		return
	}
	log.Info("pttls: session negotiated", "remote", remote, "identity", c.Identity())
	s.Handler.ServePTTLS(ctx, c)
	log.Debug("pttls: session ended", "remote", remote, "identity", c.Identity())
}

// Shutdown stops the server: it closes the listeners at once, waits for the
// connections in service to end until ctx is done, then closes those left,
// cancels their handlers' contexts and returns ctx.Err(). After Shutdown,
// Serve returns ErrServerClosed.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.initLocked()
	s.shutdown = true
	for l := range s.listeners {
		_ = l.Close()
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		s.cancel()
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for nc := range s.conns {
			_ = nc.Close()
		}
		s.mu.Unlock()
		s.cancel()
		return ctx.Err()
	}
}
