package pttls

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Timing defaults.
const (
	// DefaultHandshakeTimeout bounds the whole negotiation: the TLS
	// handshake, version negotiation and SASL.
	DefaultHandshakeTimeout = 10 * time.Second
	// DefaultIdleTimeout bounds each read in the data transport phase.
	DefaultIdleTimeout = 2 * time.Minute

	// errorWriteTimeout bounds sending a PT-TLS Error before closing.
	errorWriteTimeout = time.Second
	// lingerTimeout and lingerMax bound how long and how much a closing
	// side drains from a misbehaving peer so that its PT-TLS Error is
	// read rather than lost to a TCP reset.
	lingerTimeout = 250 * time.Millisecond
	lingerMax     = 256 << 10
	// maxSkipped caps consecutive messages of unsupported types skipped
	// in the data phase.
	maxSkipped = 16
)

// Conn is a PT-TLS session in the data transport phase (RFC 6876 §3): it
// carries PB-TNC batches. ReadBatch and WriteBatch may be called from
// different goroutines; two concurrent readers (or writers) are serialized.
type Conn struct {
	nc       net.Conn
	limit    uint32
	idle     time.Duration
	identity string
	data     bool // in the data transport phase: per-operation deadlines

	rmu     sync.Mutex
	hdr     [HeaderLen]byte
	skipped int

	wmu    sync.Mutex
	nextID uint32
	wbuf   []byte

	closeOnce sync.Once
	closeErr  error
}

func newConn(nc net.Conn, limit uint32, idle time.Duration) *Conn {
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}
	return &Conn{nc: nc, limit: limit, idle: idle}
}

// Identity returns the identity SASL authenticated for this connection, or
// "" when no SASL authentication took place (or on the client side).
func (c *Conn) Identity() string { return c.identity }

// NetConn returns the underlying connection (a *tls.Conn, typically), e.g.
// for its ConnectionState or addresses.
func (c *Conn) NetConn() net.Conn { return c.nc }

// Close closes the connection.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() { c.closeErr = c.nc.Close() })
	return c.closeErr
}

// closeLinger half-closes the connection, drains what the peer still sends
// for a short while, then closes: used after sending a PT-TLS Error so the
// peer can read it.
func (c *Conn) closeLinger() {
	c.closeOnce.Do(func() {
		if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		_ = c.nc.SetReadDeadline(time.Now().Add(lingerTimeout))
		_, _ = io.CopyN(io.Discard, c.nc, lingerMax)
		c.closeErr = c.nc.Close()
	})
}

// writeMessage sends one IETF message with the next message identifier.
func (c *Conn) writeMessage(typ MessageType, value []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeLocked(typ, value, c.idle)
}

func (c *Conn) writeLocked(typ MessageType, value []byte, timeout time.Duration) error {
	if len(value) > int(c.limit)-HeaderLen {
		return fmt.Errorf("%w: %v value of %d bytes, maximum message size %d", ErrTooLarge, typ, len(value), c.limit)
	}
	c.wbuf = appendHeader(c.wbuf[:0], VendorIETF, typ, uint32(HeaderLen+len(value)), c.nextID)
	c.wbuf = append(c.wbuf, value...)
	if c.data {
		if err := c.nc.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
			return fmt.Errorf("pttls: write %v: %w", typ, err)
		}
	}
	_, err := c.nc.Write(c.wbuf)
	if cap(c.wbuf) > eagerBody {
		c.wbuf = nil // do not keep a large batch buffer alive
	}
	if err != nil {
		return fmt.Errorf("pttls: write %v: %w", typ, err)
	}
	c.nextID++
	return nil
}

// SendError sends a PT-TLS Error message with an IETF code and a copy of the
// offending message (its first MaxErrorCopy bytes). The connection stays
// open; most errors are fatal, so callers usually Close next.
func (c *Conn) SendError(code ErrorCode, offending []byte) error {
	e := &Error{Vendor: VendorIETF, Code: code, Header: offending}
	value, err := e.AppendBinary(nil)
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeLocked(TypeError, value, errorWriteTimeout)
}

// fail sends e to the peer (best effort), closes the connection and
// returns e.
func (c *Conn) fail(e *Error) *Error {
	value, err := e.AppendBinary(nil)
	if err == nil {
		c.wmu.Lock()
		if !c.data {
			_ = c.nc.SetWriteDeadline(time.Now().Add(errorWriteTimeout))
		}
		err = c.writeLocked(TypeError, value, errorWriteTimeout)
		c.wmu.Unlock()
	}
	if err != nil {
		_ = c.Close()
	} else {
		c.closeLinger()
	}
	return e
}

// recv reads the next message. A framing error (bad or excessive Message
// Length) is sent to the peer as a PT-TLS Error, the connection is closed
// and the *Error returned. A PT-TLS Error from the peer is returned as a
// remote *Error (never answered, RFC 6876 §3.9) and the connection is
// closed. raw is the header and the start of the value, for Error copies.
func (c *Conn) recv() (m *Message, raw []byte, err error) {
	m, hdr, err := readMessage(c.nc, c.limit, &c.hdr)
	if err != nil {
		var pe *Error
		if errors.As(err, &pe) {
			return nil, nil, c.fail(pe)
		}
		return nil, nil, err
	}
	raw = make([]byte, 0, min(HeaderLen+len(m.Value), MaxErrorCopy))
	raw = append(raw, hdr...)
	raw = append(raw, m.Value[:min(len(m.Value), MaxErrorCopy-HeaderLen)]...)
	if m.Vendor == VendorIETF && m.Type == TypeError {
		var e Error
		if err := e.UnmarshalBinary(m.Value); err != nil {
			_ = c.Close()
			return nil, raw, fmt.Errorf("pttls: peer sent a malformed PT-TLS Error: %w", err)
		}
		_ = c.Close()
		return nil, raw, &e
	}
	return m, raw, nil
}

// unexpected answers a message that is not allowed here: Type Not Supported
// for a type this package does not know (another vendor's, or the IETF
// Experimental type), Invalid Message for a known type in the wrong phase
// (RFC 6876 §3.6). It closes the connection.
func (c *Conn) unexpected(m *Message, raw []byte, phase string) *Error {
	if m.Vendor != VendorIETF || !m.Type.known() {
		return c.fail(protoError(CodeTypeNotSupported, raw,
			fmt.Errorf("%w: vendor %d type %d %s", ErrUnexpected, m.Vendor, uint32(m.Type), phase)))
	}
	return c.fail(protoError(CodeInvalidMessage, raw, fmt.Errorf("%w: %v %s", ErrUnexpected, m.Type, phase)))
}

// WriteBatch sends one PB-TNC batch in a PB-TNC Batch message with a fresh
// message identifier (RFC 6876 §3.6, type 7). The write is bounded by the
// idle timeout.
func (c *Conn) WriteBatch(batch []byte) error {
	return c.writeMessage(TypePBBatch, batch)
}

// ReadBatch returns the value of the next PB-TNC Batch message. Each read
// waits at most the idle timeout (the error then wraps
// os.ErrDeadlineExceeded and the connection stays open). Messages of other
// vendors and unknown IETF types are answered with Type Not Supported and
// skipped. A PT-TLS Error from the peer closes the connection and is
// returned as a remote *Error. A malformed or oversized message, or a
// negotiation message in the data phase, is answered with a PT-TLS Error,
// closes the connection and is returned as a local *Error.
func (c *Conn) ReadBatch() ([]byte, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for {
		if err := c.nc.SetReadDeadline(time.Now().Add(c.idle)); err != nil {
			return nil, fmt.Errorf("pttls: read: %w", err)
		}
		m, raw, err := c.recv()
		if err != nil {
			var pe *Error
			if errors.As(err, &pe) {
				return nil, err
			}
			return nil, fmt.Errorf("pttls: read: %w", err)
		}
		switch {
		case m.Vendor == VendorIETF && m.Type == TypePBBatch:
			c.skipped = 0
			return m.Value, nil
		case m.Vendor == VendorIETF && m.Type.known():
			return nil, c.unexpected(m, raw, "in the data transport phase")
		}
		c.skipped++
		if c.skipped > maxSkipped {
			return nil, c.fail(protoError(CodeTypeNotSupported, raw,
				fmt.Errorf("%w: more than %d unsupported messages in a row", ErrUnexpected, maxSkipped)))
		}
		if err := c.SendError(CodeTypeNotSupported, raw); err != nil {
			return nil, err
		}
	}
}
