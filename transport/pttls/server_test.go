package pttls

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type testServer struct {
	srv   *Server
	addr  string
	serve chan error
	log   *syncBuffer
}

// startServer runs s on a TLS 1.3 loopback listener.
func startServer(tb testing.TB, s *Server) *testServer {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ts := &testServer{srv: s, addr: l.Addr().String(), serve: make(chan error, 1), log: &syncBuffer{}}
	if s.Logger == nil {
		s.Logger = slog.New(slog.NewTextHandler(ts.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	go func() { ts.serve <- s.Serve(tls.NewListener(l, serverTLS(tb))) }()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return ts
}

// dial connects a PT-TLS client to the test server.
func (ts *testServer) dial(tb testing.TB, cfg *ClientConfig) (*Conn, error) {
	tb.Helper()
	nc, err := tls.Dial("tcp", ts.addr, clientTLS(tb))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Client(ctx, nc, cfg)
	if c != nil {
		tb.Cleanup(func() { c.Close() })
	}
	return c, err
}

// waitFor polls cond until it holds or a few seconds pass.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	tb.Fatalf("timed out waiting for %s", what)
}

// echo answers every batch with the same batch until the session ends.
var echo = HandlerFunc(func(_ context.Context, c *Conn) {
	for {
		b, err := c.ReadBatch()
		if err != nil {
			return
		}
		if err := c.WriteBatch(b); err != nil {
			return
		}
	}
})

func roundTrip(tb testing.TB, c *Conn, msg string) {
	tb.Helper()
	if err := c.WriteBatch([]byte(msg)); err != nil {
		tb.Fatal(err)
	}
	b, err := c.ReadBatch()
	if err != nil || string(b) != msg {
		tb.Fatalf("echo %q, %v", b, err)
	}
}

func TestServerServes(t *testing.T) {
	var identity string
	var mu sync.Mutex
	ts := startServer(t, &Server{
		Config: ServerConfig{SASL: []ServerMechanism{plainVerifier()}, RequireSASL: true},
		Handler: HandlerFunc(func(ctx context.Context, c *Conn) {
			mu.Lock()
			identity = c.Identity()
			mu.Unlock()
			echo.ServePTTLS(ctx, c)
		}),
	})
	c, err := ts.dial(t, &ClientConfig{SASL: []ClientMechanism{&PlainClient{Username: "alice", Password: "secret"}}})
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, "hello")
	mu.Lock()
	if identity != "alice" {
		t.Errorf("handler saw identity %q", identity)
	}
	mu.Unlock()

	// A failed login is counted and logged without the password.
	if _, err := ts.dial(t, &ClientConfig{SASL: []ClientMechanism{&PlainClient{Username: "alice", Password: "hunter2-guess"}}}); !errors.Is(err, ErrSASLFailed) {
		t.Fatalf("bad password: %v", err)
	}
	waitFor(t, "the failure to be counted", func() bool { return ts.srv.Stats().Errors == 1 })
	waitFor(t, "the failure to be logged", func() bool { return strings.Contains(ts.log.String(), "negotiation failed") })
	if logs := ts.log.String(); strings.Contains(logs, "hunter2") {
		t.Fatalf("log:\n%s", logs)
	}
	st := ts.srv.Stats()
	if st.Accepted != 2 || st.Rejected != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestServerHandlerPanic(t *testing.T) {
	ts := startServer(t, &Server{Handler: HandlerFunc(func(_ context.Context, c *Conn) {
		b, err := c.ReadBatch()
		if err == nil && string(b) == "panic" {
			panic("handler bug")
		}
		echo.ServePTTLS(context.Background(), c)
	})})
	c, err := ts.dial(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WriteBatch([]byte("panic")); err != nil {
		t.Fatal(err)
	}
	if b, err := c.ReadBatch(); err == nil {
		t.Fatalf("read %q from a panicked session", b)
	}
	waitFor(t, "the panic to be counted", func() bool { return ts.srv.Stats().Errors == 1 })
	waitFor(t, "the panic to be logged", func() bool { return strings.Contains(ts.log.String(), "handler bug") })
	// The server still serves.
	c2, err := ts.dial(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c2.WriteBatch([]byte("first")); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c2, "second")
}

func TestServerMaxConns(t *testing.T) {
	release := make(chan struct{})
	ts := startServer(t, &Server{MaxConns: 1, Handler: HandlerFunc(func(_ context.Context, c *Conn) {
		<-release
	})})
	if _, err := ts.dial(t, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.dial(t, nil); err == nil {
		t.Fatal("second connection served beyond MaxConns 1")
	}
	if st := ts.srv.Stats(); st.Rejected != 1 || st.Active != 1 {
		t.Fatalf("stats %+v", st)
	}
	close(release)
	waitFor(t, "the first session to end", func() bool { return ts.srv.Stats().Active == 0 })
	if _, err := ts.dial(t, nil); err != nil {
		t.Fatalf("after release: %v", err)
	}
}

func TestServerShutdown(t *testing.T) {
	t.Run("graceful", func(t *testing.T) {
		ts := startServer(t, &Server{Handler: echo})
		c, err := ts.dial(t, nil)
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, c, "x")
		down := make(chan error, 1)
		go func() { down <- ts.srv.Shutdown(context.Background()) }()
		if err := <-ts.serve; !errors.Is(err, ErrServerClosed) {
			t.Fatalf("Serve returned %v", err)
		}
		// The live session keeps working until its client ends it.
		roundTrip(t, c, "still here")
		c.Close()
		if err := <-down; err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		if _, err := net.Dial("tcp", ts.addr); err == nil {
			t.Fatal("listener still accepts")
		}
	})
	t.Run("forced", func(t *testing.T) {
		var handlerCtx sync.WaitGroup
		ctxDone := make(chan struct{}, 2)
		ts := startServer(t, &Server{Handler: HandlerFunc(func(ctx context.Context, c *Conn) {
			handlerCtx.Done()
			echo.ServePTTLS(ctx, c)
			<-ctx.Done() // a handler that also waits for its context
			ctxDone <- struct{}{}
		})})
		handlerCtx.Add(2)
		var conns []*Conn
		for i := 0; i < 2; i++ {
			c, err := ts.dial(t, nil)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
		}
		handlerCtx.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if err := ts.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Shutdown: %v", err)
		}
		for _, c := range conns {
			if _, err := c.ReadBatch(); err == nil {
				t.Fatal("session survived a forced shutdown")
			}
		}
		for i := 0; i < 2; i++ {
			select {
			case <-ctxDone:
			case <-time.After(5 * time.Second):
				t.Fatal("handler context not cancelled")
			}
		}
		waitFor(t, "connections to be released", func() bool { return ts.srv.Stats().Active == 0 })
	})
}

func TestServeAfterShutdown(t *testing.T) {
	s := &Server{Handler: echo}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(l); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := net.Dial("tcp", l.Addr().String()); err == nil {
		t.Fatal("listener left open")
	}
	if err := (&Server{}).Serve(l); err == nil {
		t.Fatal("Serve without a Handler")
	}
}
