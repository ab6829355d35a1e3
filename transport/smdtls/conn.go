package smdtls

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/dtls/v2"
	"github.com/pion/dtls/v2/pkg/protocol"

	"trustnac/transport/pttls"
)

// arqParams tune the fragment layer's retransmission.
type arqParams struct {
	window    int           // bytes sent per round before asking for an ACK
	rtoMin    time.Duration // first retransmission timeout of a round
	rtoMax    time.Duration // backoff ceiling, and the probe interval while the receiver holds a message
	maxMisses int           // consecutive unanswered rounds before ErrPeerUnreachable
}

var defaultARQ = arqParams{window: 32 << 10, rtoMin: 250 * time.Millisecond, rtoMax: 4 * time.Second, maxMisses: 8}

// connStats count fragment-layer events (for tests and debugging).
type connStats struct {
	framesIn    atomic.Uint64 // frames received from DTLS
	dupFrames   atomic.Uint64 // fragments of messages already complete
	strayFrames atomic.Uint64 // fragments of no message in reassembly
	malformed   atomic.Uint64 // frames that did not parse or did not fit
	retransmits atomic.Uint64 // fragments sent more than once
	timeouts    atomic.Uint64 // rounds that ended without an ACK
}

// Conn is an established SM-DTLS association carrying PT-TLS messages
// (RFC 6876 §3.5). As a net.Conn its byte stream is the sequence of
// PT-TLS messages: Write takes whole messages (it buffers a message
// written in pieces until its header's Message Length is reached) and Read
// returns their bytes in order. ReadMessage and WriteMessage do the
// framing. One reader and one writer may work concurrently.
//
// Write returns once the peer has taken the message into its one-message
// inbox: the first message returns at once, a second blocks until the
// peer reads the first. After a Write fails (timeout, unreachable peer)
// every later Write returns the same error, as with crypto/tls.
type Conn struct {
	dc       *dtls.Conn
	sess     *session
	log      *slog.Logger
	maxMsg   int
	chunk    int
	arq      arqParams
	identity []byte
	stats    connStats

	// mu guards the receive state, the inbox and tx.
	mu           sync.Mutex
	rx           reassembler
	inbox        []byte
	inboxFull    bool
	held         []byte // complete message waiting for the inbox
	heldFull     bool
	heldMsg      uint32
	heldCount    int
	lastDone     uint32 // last message taken into the inbox
	lastDoneN    int    // its fragment count
	anyDone      bool
	tx           *sendState
	readable     chan struct{}
	readDeadline deadline

	rmu  sync.Mutex
	rbuf []byte

	wmu           sync.Mutex
	werr          error // sticky: a message was abandoned half-sent
	wpend         []byte
	sendNum       uint32
	frame         []byte
	writeDeadline deadline

	dead      chan struct{}
	deadOnce  sync.Once
	deadErr   error
	closing   atomic.Bool
	closeOnce sync.Once
	loopDone  chan struct{}
}

func newConn(dc *dtls.Conn, sess *session, cfg *Config, identity []byte) *Conn {
	c := &Conn{
		dc:       dc,
		sess:     sess,
		log:      cfg.Logger.With("peer", dc.RemoteAddr().String()),
		maxMsg:   cfg.MaxMessage,
		chunk:    fragmentChunk(cfg.MTU),
		arq:      defaultARQ,
		identity: bytes.Clone(identity),
		readable: make(chan struct{}, 1),
		dead:     make(chan struct{}),
		loopDone: make(chan struct{}),
	}
	c.rx.max = cfg.MaxMessage
	go c.readLoop()
	return c
}

// PeerIdentity returns the PSK identity of the association: on the server
// the identity the client authenticated with, on the client its own.
func (c *Conn) PeerIdentity() []byte { return bytes.Clone(c.identity) }

// ExportKeyingMaterial returns length bytes of keying material exported
// from the association (RFC 5705 §4, PRF_SM3): both ends get the same
// bytes for the same label and context; other associations get unrelated
// bytes. A nil context means "no context" and differs from an empty one.
// TLS's own labels are refused.
func (c *Conn) ExportKeyingMaterial(label string, context []byte, length int) ([]byte, error) {
	return c.sess.export(label, context, length)
}

// CipherSuite returns the negotiated suite's name.
func (c *Conn) CipherSuite() string { return CipherSuiteName }

// LocalAddr returns the local UDP address.
func (c *Conn) LocalAddr() net.Addr { return c.dc.LocalAddr() }

// RemoteAddr returns the peer's UDP address.
func (c *Conn) RemoteAddr() net.Addr { return c.dc.RemoteAddr() }

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	c.readDeadline.set(t)
	c.writeDeadline.set(t)
	return nil
}

// SetReadDeadline bounds Read and ReadMessage, also those already blocked.
func (c *Conn) SetReadDeadline(t time.Time) error { c.readDeadline.set(t); return nil }

// SetWriteDeadline bounds Write and WriteMessage, also those already
// blocked waiting for acknowledgements.
func (c *Conn) SetWriteDeadline(t time.Time) error { c.writeDeadline.set(t); return nil }

// Close tells the peer (a CLOSE frame, then DTLS close_notify; over UDP
// both are best effort) and releases the association. Blocked reads and
// writes return errors wrapping net.ErrClosed.
func (c *Conn) Close() error {
	err := fmt.Errorf("smdtls: close: %w", net.ErrClosed)
	c.closeOnce.Do(func() {
		err = nil
		c.closing.Store(true)
		alive := true
		select {
		case <-c.dead:
			alive = false
		default:
		}
		if cerr := c.shutdown(alive); cerr != nil && !errors.Is(cerr, dtls.ErrConnClosed) && !errors.Is(cerr, net.ErrClosed) {
			err = fmt.Errorf("smdtls: close: %w", cerr)
		}
		<-c.loopDone
		c.die(net.ErrClosed)
	})
	return err
}

// ReadMessage reads one PT-TLS message (pttls.ReadMessage over the stream,
// with the reassembly cap as maximum size).
func (c *Conn) ReadMessage() (*pttls.Message, error) {
	return pttls.ReadMessage(c, uint32(c.maxMsg))
}

// WriteMessage sends one PT-TLS message and returns once the peer has
// taken it.
func (c *Conn) WriteMessage(m *pttls.Message) error {
	b, err := m.AppendBinary(nil)
	if err != nil {
		return err
	}
	_, err = c.Write(b)
	return err
}

// Read reads bytes of the PT-TLS message stream.
func (c *Conn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if len(p) == 0 {
		return 0, nil
	}
	for len(c.rbuf) == 0 {
		msg, err := c.nextMessage()
		if err != nil {
			return 0, err
		}
		c.rbuf = msg
	}
	n := copy(p, c.rbuf)
	c.rbuf = c.rbuf[n:]
	return n, nil
}

// Write sends PT-TLS messages. p may hold several whole messages or a
// part of one; each message is sent as soon as it is complete, and Write
// returns when the peer has taken every complete message in p.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return 0, c.werr
	}
	data := p
	if len(c.wpend) > 0 {
		c.wpend = append(c.wpend, p...)
		data = c.wpend
	}
	for len(data) >= pttls.HeaderLen {
		n := binary.BigEndian.Uint32(data[8:12])
		switch {
		case n < pttls.HeaderLen:
			c.wpend = nil
			return 0, fmt.Errorf("%w: PT-TLS Message Length %d is shorter than its header", ErrMalformed, n)
		case int64(n) > int64(c.maxMsg):
			c.wpend = nil
			return 0, fmt.Errorf("%w: PT-TLS message of %d bytes, maximum %d", ErrTooLarge, n, c.maxMsg)
		case len(data) < int(n):
			goto keep
		}
		if err := c.sendMessage(data[:n]); err != nil {
			// The peer may hold part or all of the message under its
			// number: the stream cannot go on (as with crypto/tls).
			c.wpend, c.werr = nil, err
			return 0, err
		}
		data = data[n:]
	}
keep:
	switch {
	case len(data) == 0:
		c.wpend = nil
	case len(c.wpend) > 0:
		c.wpend = c.wpend[:copy(c.wpend, data)]
	default:
		c.wpend = append([]byte(nil), data...)
	}
	return len(p), nil
}

// sendMessage sends one message and waits until the peer has taken it.
// Each round sends up to a window (32 KiB) of unacknowledged fragments, the last with
// POLL; the peer's ACK starts the next round, a timeout resends.
func (c *Conn) sendMessage(msg []byte) error {
	count := fragmentCount(len(msg), c.chunk)
	tx := newSendState(c.sendNum, count)
	c.mu.Lock()
	c.tx = tx
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.tx = nil
		c.mu.Unlock()
	}()

	rto, misses := c.arq.rtoMin, 0
	window := max(2, c.arq.window/c.chunk)
	batch := make([]int, 0, window)
	probe := false
	for {
		c.mu.Lock()
		delivered, all := tx.delivered, tx.all
		batch = tx.nextBatch(batch[:0], window)
		c.mu.Unlock()
		if delivered {
			c.sendNum++
			return nil
		}
		wait := rto
		if all {
			// The peer has every fragment but its inbox is full: wait for
			// its reader, probing (the last fragment, with POLL) when it
			// has been quiet for rtoMax.
			wait, batch = c.arq.rtoMax, batch[:0]
			if probe {
				batch = append(batch, count-1)
			}
		}
		for i, idx := range batch {
			if err := c.writeFragment(tx, msg, idx, i == len(batch)-1); err != nil {
				return err
			}
		}
		acked, err := c.awaitAck(tx, wait)
		if err != nil {
			return err
		}
		if acked {
			rto, misses, probe = c.arq.rtoMin, 0, false
			continue
		}
		if all && !probe {
			probe = true
			continue
		}
		c.stats.timeouts.Add(1)
		if misses++; misses > c.arq.maxMisses {
			return fmt.Errorf("%w: message %d after %d retransmission rounds", ErrPeerUnreachable, tx.msg, c.arq.maxMisses)
		}
		rto = min(2*rto, c.arq.rtoMax)
	}
}

func (c *Conn) writeFragment(tx *sendState, msg []byte, i int, poll bool) error {
	select {
	case <-c.dead:
		return c.writeErr()
	default:
	}
	off, n := fragmentSpan(len(msg), c.chunk, i)
	f := dataFrame{Poll: poll, Msg: tx.msg, Total: uint32(len(msg)), Chunk: uint16(c.chunk), Index: uint16(i), Payload: msg[off : off+n]}
	b, err := f.appendBinary(c.frame[:0])
	if err != nil {
		return err
	}
	c.frame = b
	if _, err := c.dc.Write(b); err != nil {
		return fmt.Errorf("smdtls: write: %w", err)
	}
	if tx.sent.has(i) {
		c.stats.retransmits.Add(1)
	} else {
		tx.sent.set(i)
	}
	return nil
}

// awaitAck waits up to wait for an ACK of the message in flight.
func (c *Conn) awaitAck(tx *sendState, wait time.Duration) (bool, error) {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		expired, changed, stop := c.writeDeadline.wait()
		select {
		case <-tx.notify:
			stop()
			return true, nil
		case <-timer.C:
			stop()
			return false, nil
		case <-c.dead:
			stop()
			return false, c.writeErr()
		case <-expired:
			return false, &timeoutError{op: "write"}
		case <-changed:
			stop()
		}
	}
}

func (c *Conn) writeErr() error {
	if errors.Is(c.deadErr, net.ErrClosed) {
		return fmt.Errorf("smdtls: write: %w", net.ErrClosed)
	}
	return fmt.Errorf("smdtls: write: connection lost: %w", c.deadErr)
}

// nextMessage waits for a delivered message and takes it.
func (c *Conn) nextMessage() ([]byte, error) {
	for {
		c.mu.Lock()
		if c.inboxFull {
			msg, ack := c.takeLocked()
			c.mu.Unlock()
			if ack != nil {
				c.writeAck(ack)
			}
			return msg, nil
		}
		c.mu.Unlock()
		select {
		case <-c.dead:
			c.mu.Lock()
			full := c.inboxFull
			c.mu.Unlock()
			if full {
				continue
			}
			if c.deadErr == io.EOF {
				return nil, io.EOF
			}
			return nil, fmt.Errorf("smdtls: read: %w", c.deadErr)
		default:
		}
		expired, changed, stop := c.readDeadline.wait()
		select {
		case <-c.readable:
		case <-c.dead:
		case <-changed:
		case <-expired:
			return nil, &timeoutError{op: "read"}
		}
		stop()
	}
}

// takeLocked empties the inbox, moves a held message in, and returns the
// ACK that tells the peer so.
func (c *Conn) takeLocked() ([]byte, *ackFrame) {
	msg := c.inbox
	c.inbox, c.inboxFull = nil, false
	if !c.heldFull {
		return msg, nil
	}
	h, n, count := c.held, c.heldMsg, c.heldCount
	c.held, c.heldFull = nil, false
	c.deliverLocked(h, n, count)
	return msg, &ackFrame{Msg: n, Base: uint16(count), Delivered: true}
}

func (c *Conn) deliverLocked(msg []byte, n uint32, count int) {
	c.inbox, c.inboxFull = msg, true
	c.lastDone, c.lastDoneN, c.anyDone = n, count, true
	select {
	case c.readable <- struct{}{}:
	default:
	}
}

func (c *Conn) writeAck(a *ackFrame) {
	b, err := a.appendBinary(make([]byte, 0, ackHeaderLen+len(a.Bitmap)))
	if err == nil {
		_, err = c.dc.Write(b)
	}
	if err != nil {
		c.log.Debug("smdtls: ACK not sent", "msg", a.Msg, "err", err)
	}
}

// readLoop receives records until the association ends.
func (c *Conn) readLoop() {
	defer close(c.loopDone)
	buf := make([]byte, maxPlaintextLen+1024)
	soft := 0
	for {
		n, err := c.dc.Read(buf)
		if err == nil {
			soft = 0
			c.handleFrame(buf[:n])
			continue
		}
		var fatal *protocol.FatalError
		if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.As(err, &fatal) || soft > 64 {
			c.die(c.readLoopCause(err))
			_ = c.dc.Close()
			return
		}
		soft++ // a warning alert or a transient error pion passes up
		c.log.Debug("smdtls: read", "err", err)
	}
}

// shutdown closes the DTLS association, which sends close_notify; with
// notify it first sends a CLOSE frame (see frame.go for why).
func (c *Conn) shutdown(notify bool) error {
	if notify {
		_, _ = c.dc.Write([]byte{frameClose, 0})
	}
	return c.dc.Close()
}

func (c *Conn) readLoopCause(err error) error {
	if c.closing.Load() {
		return net.ErrClosed
	}
	if a := c.sess.alert.Load(); a != nil && a.Level == 2 {
		return a
	}
	if errors.Is(err, io.EOF) {
		return io.EOF
	}
	return err
}

func (c *Conn) die(err error) {
	c.deadOnce.Do(func() {
		c.deadErr = err
		close(c.dead)
	})
}

func (c *Conn) handleFrame(b []byte) {
	c.stats.framesIn.Add(1)
	kind, df, af, err := parseFrame(b)
	if err != nil {
		c.stats.malformed.Add(1)
		c.log.Debug("smdtls: frame dropped", "err", err)
		return
	}
	switch kind {
	case frameData:
		reply, err := c.onData(&df)
		if err != nil {
			c.log.Warn("smdtls: closing connection", "err", err)
			c.die(err)
			_ = c.shutdown(true)
			return
		}
		if reply != nil {
			c.writeAck(reply)
		}
	case frameClose:
		c.die(io.EOF)
		_ = c.dc.Close()
	case frameAck:
		c.mu.Lock()
		if tx := c.tx; tx != nil && af.Msg == tx.msg {
			tx.apply(&af)
			select {
			case tx.notify <- struct{}{}:
			default:
			}
		}
		c.mu.Unlock()
	}
}

// onData files one fragment and returns the ACK to send, if any. An error
// (a message above the reassembly cap) is fatal for the connection.
func (c *Conn) onData(f *dataFrame) (*ackFrame, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	count := fragmentCount(int(f.Total), int(f.Chunk))
	switch {
	case f.Msg == c.rx.next && !c.heldFull:
		msg, done, err := c.rx.add(f)
		if err != nil {
			if errors.Is(err, ErrTooLarge) {
				return nil, err
			}
			c.stats.malformed.Add(1)
			return nil, nil
		}
		if !done {
			if f.Poll {
				a := c.rx.ack()
				return &a, nil
			}
			return nil, nil
		}
		a := &ackFrame{Msg: f.Msg, Base: uint16(count)}
		if c.inboxFull {
			c.held, c.heldFull, c.heldMsg, c.heldCount = msg, true, f.Msg, count
			return a, nil
		}
		c.deliverLocked(msg, f.Msg, count)
		a.Delivered = true
		return a, nil
	case c.heldFull && f.Msg == c.heldMsg:
		c.stats.dupFrames.Add(1)
		if f.Poll {
			return &ackFrame{Msg: f.Msg, Base: uint16(c.heldCount)}, nil
		}
	case c.anyDone && f.Msg == c.lastDone:
		c.stats.dupFrames.Add(1)
		if f.Poll {
			return &ackFrame{Msg: f.Msg, Base: uint16(c.lastDoneN), Delivered: true}, nil
		}
	default:
		c.stats.strayFrames.Add(1)
	}
	return nil, nil
}

// deadline is a settable point in time whose waiters learn of changes.
type deadline struct {
	mu      sync.Mutex
	t       time.Time
	changed chan struct{}
}

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	d.t = t
	if d.changed != nil {
		close(d.changed)
	}
	d.changed = make(chan struct{})
	d.mu.Unlock()
}

// wait returns a channel that fires at the deadline (nil when there is
// none), a channel closed when the deadline is changed, and a function
// releasing the timer.
func (d *deadline) wait() (<-chan time.Time, <-chan struct{}, func()) {
	d.mu.Lock()
	t := d.t
	if d.changed == nil {
		d.changed = make(chan struct{})
	}
	changed := d.changed
	d.mu.Unlock()
	if t.IsZero() {
		return nil, changed, func() {}
	}
	dur := time.Until(t)
	if dur <= 0 {
		fired := make(chan time.Time, 1)
		fired <- t
		return fired, changed, func() {}
	}
	timer := time.NewTimer(dur)
	return timer.C, changed, func() { timer.Stop() }
}
