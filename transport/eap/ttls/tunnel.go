package ttls

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// DefaultTimeout bounds one step of the TLS handshake (from handing TLS the peer's bytes to TLS
// asking for more).
const DefaultTimeout = 10 * time.Second

// maxTLSOutput caps what TLS may write in one step; it guards against a runaway engine, not
// against the peer (TLS writes only what this side produces).
const maxTLSOutput = 4 << 20

// errWouldBlock is what the in-memory connection answers, after the handshake, when its input
// is used up. It is a temporary net.Error, which crypto/tls does not record as fatal, so the
// next Read resumes where this one stopped.
var errWouldBlock = &wouldBlock{}

type wouldBlock struct{}

func (*wouldBlock) Error() string   { return "ttls: no more input (would block)" }
func (*wouldBlock) Timeout() bool   { return true }
func (*wouldBlock) Temporary() bool { return true }

// pipe is the net.Conn under crypto/tls: Read takes the peer's bytes fed by the driver, Write
// collects what TLS sends. While blocking is set (during the handshake, which runs in its own
// goroutine), a Read without input tells the driver TLS is waiting and blocks until fed or
// closed.
type pipe struct {
	mu       sync.Mutex
	in, out  []byte
	blocking bool
	waiting  bool // a blocking Read found no input and waits to be fed
	closed   bool
	outErr   error
	wake     chan struct{} // driver → reader: input added, or closed
	idle     chan struct{} // reader → driver: waiting for input
}

func newPipe() *pipe {
	return &pipe{blocking: true, wake: make(chan struct{}, 1), idle: make(chan struct{}, 1)}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (p *pipe) Read(b []byte) (int, error) {
	p.mu.Lock()
	for {
		if p.closed {
			p.mu.Unlock()
			return 0, net.ErrClosed
		}
		if len(p.in) > 0 {
			n := copy(b, p.in)
			p.in = p.in[n:]
			if len(p.in) == 0 {
				p.in = nil
			}
			p.mu.Unlock()
			return n, nil
		}
		if !p.blocking {
			p.mu.Unlock()
			return 0, errWouldBlock
		}
		p.waiting = true
		p.mu.Unlock()
		signal(p.idle)
		<-p.wake
		p.mu.Lock()
	}
}

func (p *pipe) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0, net.ErrClosed
	}
	if len(p.out)+len(b) > maxTLSOutput {
		p.outErr = fmt.Errorf("%w: TLS wrote more than %d bytes in one step", ErrTooLarge, maxTLSOutput)
		return 0, p.outErr
	}
	p.out = append(p.out, b...)
	return len(b), nil
}

// feed adds the peer's bytes and wakes a waiting reader.
func (p *pipe) feed(b []byte) {
	p.mu.Lock()
	p.in = append(p.in, b...)
	p.waiting = false
	p.mu.Unlock()
	signal(p.wake)
}

func (p *pipe) isWaiting() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waiting
}

func (p *pipe) take() ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out, err := p.out, p.outErr
	p.out, p.outErr = nil, nil
	return out, err
}

func (p *pipe) setBlocking(v bool) {
	p.mu.Lock()
	p.blocking = v
	p.mu.Unlock()
}

func (p *pipe) Close() error {
	p.mu.Lock()
	p.closed = true
	p.in, p.out = nil, nil
	p.mu.Unlock()
	signal(p.wake)
	return nil
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "eap" }
func (pipeAddr) String() string  { return "eap-ttls" }

func (p *pipe) LocalAddr() net.Addr                { return pipeAddr{} }
func (p *pipe) RemoteAddr() net.Addr               { return pipeAddr{} }
func (p *pipe) SetDeadline(t time.Time) error      { return nil }
func (p *pipe) SetReadDeadline(t time.Time) error  { return nil }
func (p *pipe) SetWriteDeadline(t time.Time) error { return nil }

// tunnel is one TLS connection driven step by step. It is used by one goroutine at a time
// (the Server's or Peer's), apart from close, which may come from anywhere.
type tunnel struct {
	conn    *pipe
	tc      *tls.Conn
	timeout time.Duration
	maxApp  int

	done     chan struct{}       // closed when the handshake goroutine has ended
	hsErr    error               // set by the handshake goroutine before done
	state    tls.ConnectionState // set by the handshake goroutine before done, on success
	finished bool                // the driver has seen the handshake succeed
	broken   error               // sticky failure
	// scratch receives decrypted application data; readApp returns copies
	// of the exact size, and most messages carry none at all.
	scratch []byte

	closeOnce sync.Once
}

// newTunnel starts the handshake of a client or server connection over a fresh pipe.
func newTunnel(server bool, cfg *tls.Config, timeout time.Duration, maxApp int) *tunnel {
	t := &tunnel{conn: newPipe(), timeout: timeout, maxApp: maxApp, done: make(chan struct{})}
	if server {
		t.tc = tls.Server(t.conn, cfg)
	} else {
		t.tc = tls.Client(t.conn, cfg)
	}
	go t.handshake()
	return t
}

func (t *tunnel) handshake() {
	defer close(t.done)
	if err := t.tc.Handshake(); err != nil {
		t.hsErr = err
		return
	}
	t.state = t.tc.ConnectionState()
}

// established reports whether the handshake has succeeded (as of the last step).
func (t *tunnel) established() bool { return t.finished }

// connState is the state of the finished handshake; the zero value before.
func (t *tunnel) connState() tls.ConnectionState {
	if !t.finished {
		return tls.ConnectionState{}
	}
	return t.state
}

// step hands TLS the peer's bytes and returns what TLS wrote and the application data it
// decrypted. An error is final: the handshake failed (out may then hold an alert for the peer),
// TLS stalled, or the connection broke.
func (t *tunnel) step(ctx context.Context, in []byte) (out, app []byte, err error) {
	if t.broken != nil {
		return nil, nil, t.broken
	}
	if !t.finished {
		t.conn.feed(in)
		if err := t.wait(ctx); err != nil {
			t.broken = err
			out, _ = t.conn.take()
			t.close()
			return out, nil, err
		}
		select {
		case <-t.done:
		default:
			out, err := t.conn.take()
			if err != nil {
				t.broken = err
				t.close()
			}
			return out, nil, err
		}
		if t.hsErr != nil {
			t.broken = fmt.Errorf("ttls: TLS handshake: %w", t.hsErr)
			out, _ = t.conn.take()
			t.close()
			return out, nil, t.broken
		}
		t.finished = true
		t.conn.setBlocking(false)
	} else {
		t.conn.feed(in)
	}
	app, err = t.readApp()
	out, oerr := t.conn.take()
	if err == nil {
		err = oerr
	}
	if err != nil {
		t.broken = err
		return out, nil, err
	}
	return out, app, nil
}

// wait blocks until the handshake goroutine waits for input or has ended.
func (t *tunnel) wait(ctx context.Context) error {
	timer := time.NewTimer(t.timeout)
	defer timer.Stop()
	for {
		select {
		case <-t.conn.idle:
			if t.conn.isWaiting() {
				return nil
			}
		case <-t.done:
			return nil
		case <-timer.C:
			return fmt.Errorf("%w: no progress within %v", ErrStalled, t.timeout)
		case <-ctx.Done():
			return fmt.Errorf("ttls: %w", ctx.Err())
		}
	}
}

// readApp reads the application data TLS can decrypt from the input at hand.
func (t *tunnel) readApp() ([]byte, error) {
	app := t.scratch[:0]
	defer func() { t.scratch = app[:0] }()
	for {
		if len(app) == cap(app) {
			grown := make([]byte, len(app), min(max(2*cap(app), 4096), t.maxApp+1))
			copy(grown, app)
			app = grown
		}
		n, err := t.tc.Read(app[len(app):cap(app)])
		app = app[:len(app)+n]
		if len(app) > t.maxApp {
			return nil, fmt.Errorf("%w: more than %d bytes of tunnelled data in one message", ErrTooLarge, t.maxApp)
		}
		if err != nil {
			if errors.Is(err, errWouldBlock) {
				if len(app) == 0 {
					return nil, nil
				}
				return bytes.Clone(app), nil
			}
			return nil, fmt.Errorf("ttls: reading tunnelled data: %w", err)
		}
	}
}

// write encrypts application data and returns the TLS records to send.
func (t *tunnel) write(data []byte) ([]byte, error) {
	if t.broken != nil {
		return nil, t.broken
	}
	if !t.finished {
		return nil, errors.New("ttls: write before the handshake finished")
	}
	if _, err := t.tc.Write(data); err != nil {
		t.broken = fmt.Errorf("ttls: writing tunnelled data: %w", err)
		return nil, t.broken
	}
	out, err := t.conn.take()
	if err != nil {
		t.broken = err
	}
	return out, err
}

// close releases the handshake goroutine, if it still runs, and waits a little for it to end
// (a goroutine blocked reading ends at once; one stuck in a callback of the TLS config cannot
// be helped). It is idempotent and safe from any goroutine.
func (t *tunnel) close() {
	t.closeOnce.Do(func() {
		t.conn.Close()
		timer := time.NewTimer(min(t.timeout, time.Second))
		defer timer.Stop()
		select {
		case <-t.done:
		case <-timer.C:
		}
	})
}
