package pbtnc

import (
	"fmt"
	"strconv"
	"sync"
)

// State is a state of the PB-TNC state machine (RFC 5793 §3.2), shared by
// the PB-TNC Client and Server.
type State int

// PB-TNC states (RFC 5793 §3.2).
const (
	// StateInit: no batch exchanged yet.
	StateInit State = iota
	// StateServerWorking: the PB-TNC Server is to send the next batch.
	StateServerWorking
	// StateClientWorking: the PB-TNC Client is to send the next batch.
	StateClientWorking
	// StateDecided: the server sent a RESULT; either side may retry.
	StateDecided
	// StateEnd: a CLOSE batch was sent or received.
	StateEnd
)

// String returns the RFC 5793 name of the state.
func (s State) String() string {
	switch s {
	case StateInit:
		return "Init"
	case StateServerWorking:
		return "Server Working"
	case StateClientWorking:
		return "Client Working"
	case StateDecided:
		return "Decided"
	case StateEnd:
		return "End"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// Config tunes a Client or Server.
type Config struct {
	// MaxBatchSize bounds batches received and sent; 0 means
	// DefaultMaxBatchSize. Use EAPMaxBatchSize over PT-EAP.
	MaxBatchSize uint32
	// MaxRounds caps the data batches received in one handshake; exceeding
	// it ends the session with a fatal Local Error. 0 means 64.
	MaxRounds int
	// Language is the client's Accept-Language value (for example
	// "en, zh;q=0.8"), sent as PB-Language-Preference in the first CDATA
	// batch of every handshake; "" sends none.
	Language string
	// CloseAfterResult makes the client answer a RESULT batch with CLOSE
	// (one-shot agents); otherwise it stays in Decided.
	CloseAfterResult bool
}

const defaultMaxRounds = 64

// serverMayReceive is the RFC 5793 §3.2 table of batch types a PB-TNC
// Server accepts in each state (CLOSE is accepted in every state but End).
func serverMayReceive(s State, t BatchType) bool {
	switch s {
	case StateInit:
		return t == BatchCDATA
	case StateServerWorking, StateDecided:
		return t == BatchCRetry
	case StateClientWorking:
		return t == BatchCDATA || t == BatchCRetry
	}
	return false
}

// clientMayReceive is the RFC 5793 §3.2 table of batch types a PB-TNC
// Client accepts in each state (CLOSE is accepted in every state but End).
func clientMayReceive(s State, t BatchType) bool {
	switch s {
	case StateInit:
		return t == BatchSDATA
	case StateServerWorking:
		return t == BatchSDATA || t == BatchResult || t == BatchSRetry
	case StateClientWorking, StateDecided:
		return t == BatchSRetry
	}
	return false
}

// machine holds what Client and Server share: the state, limits and the
// helpers that build outgoing batches and end the session on errors.
type machine struct {
	mu        sync.Mutex
	server    bool
	maxSize   uint32
	maxRounds int
	state     State
	rounds    int
	result    *Result
}

func (m *machine) init(server bool, cfg Config) {
	m.server = server
	m.maxSize = cfg.MaxBatchSize
	if m.maxSize == 0 {
		m.maxSize = DefaultMaxBatchSize
	}
	m.maxRounds = cfg.MaxRounds
	if m.maxRounds <= 0 {
		m.maxRounds = defaultMaxRounds
	}
}

func (m *machine) side() string {
	if m.server {
		return "server"
	}
	return "client"
}

// encode builds a batch sent by this side, bounded by the maximum size.
func (m *machine) encode(t BatchType, msgs []Message) ([]byte, error) {
	b := Batch{FromServer: m.server, Type: t, Messages: msgs}
	out, err := b.AppendBinary(nil)
	if err != nil {
		return nil, err
	}
	if uint64(len(out)) > uint64(m.maxSize) {
		return nil, fmt.Errorf("%w: %v batch of %d bytes, limit %d", ErrBatchTooLarge, t, len(out), m.maxSize)
	}
	return out, nil
}

// fail ends the session: a CLOSE batch carrying the fatal PB-Error e.
func (m *machine) fail(e *Error) []byte {
	m.state = StateEnd
	out, err := m.encode(BatchClose, []Message{e.Message()})
	if err != nil {
		// Only a maximum batch size below 28 bytes gets here.
		out, _ = (&Batch{FromServer: m.server, Type: BatchClose}).AppendBinary(nil)
	}
	return out
}

// protocolFail ends the session over a protocol error detected in a
// received batch; the returned error is the *Error sent.
func (m *machine) protocolFail(e *Error) ([]byte, error) {
	return m.fail(e), e
}

// localFail ends the session with a fatal Local Error caused by cause.
func (m *machine) localFail(cause error) ([]byte, error) {
	e := &Error{Fatal: true, Code: ErrLocalError}
	return m.fail(e), &localError{cause: cause, sent: e}
}

// handlerFail ends the session after a handler error.
func (m *machine) handlerFail(call string, err error) ([]byte, error) {
	return m.localFail(fmt.Errorf("%w: %s %s: %w", ErrHandler, m.side(), call, err))
}

// countRound counts a data batch received in the current handshake.
func (m *machine) countRound() error {
	m.rounds++
	if m.rounds > m.maxRounds {
		return fmt.Errorf("%w: more than %d", ErrTooManyRounds, m.maxRounds)
	}
	return nil
}

// stop is what Step returns when a received batch ends processing early:
// it was a CLOSE, or failed a check.
type stop struct {
	out []byte
	err error
}

// checkHeader runs the header, direction and state checks common to both
// sides. A non-nil stop holds what Step returns.
func (m *machine) checkHeader(in []byte, mayReceive func(State, BatchType) bool) (header, *stop) {
	if m.state == StateEnd {
		return header{}, &stop{err: ErrClosed}
	}
	h, pe := parseHeader(in, m.maxSize)
	if pe != nil {
		return h, m.protocolStop(pe)
	}
	if h.fromServer != !m.server {
		if m.server {
			pe = invalidParam(1, "D bit set in a batch from the PB-TNC Client")
		} else {
			pe = invalidParam(1, "D bit clear in a batch from the PB-TNC Server")
		}
		return h, m.protocolStop(pe)
	}
	if h.typ == BatchClose {
		return h, &stop{err: m.peerClosed(in, h)}
	}
	if !mayReceive(m.state, h.typ) {
		return h, m.protocolStop(newError(ErrUnexpectedBatchType,
			"%v batch received by the %s in state %v", h.typ, m.side(), m.state))
	}
	return h, nil
}

// receive decodes and validates a batch whose header passed checkHeader.
// A fatal PB-Error from the peer in a non-CLOSE batch ends the session
// with an empty CLOSE; c.peerErr reports a non-fatal one.
func (m *machine) receive(in []byte, h header) (*content, *stop) {
	b, pe := decodeMessages(in, h)
	var c *content
	if pe == nil {
		c, pe = validate(b)
	}
	if pe != nil {
		return nil, m.protocolStop(pe)
	}
	if p := c.peerErr(); p != nil && p.e.Fatal {
		return nil, &stop{out: m.closeBatch(), err: p}
	}
	return c, nil
}

func (m *machine) protocolStop(pe *Error) *stop {
	out, err := m.protocolFail(pe)
	return &stop{out: out, err: err}
}

// peerClosed handles a received CLOSE batch: the session ends and nothing
// is sent back. A PB-Error in it is reported as an ErrPeerError.
func (m *machine) peerClosed(in []byte, h header) error {
	m.state = StateEnd
	b, pe := decodeMessages(in, h)
	if pe != nil {
		return fmt.Errorf("pbtnc: malformed CLOSE batch: %w", pe)
	}
	var first *Error
	for i := range b.Messages {
		msg := &b.Messages[i]
		if msg.Vendor != VendorIETF || msg.Type != MsgError {
			continue
		}
		e := new(Error)
		if e.unmarshal(msg.Value, false) != nil {
			continue
		}
		if first == nil || (e.Fatal && !first.Fatal) {
			first = e
		}
	}
	if first != nil {
		return &peerError{e: first}
	}
	return nil
}

// closeBatch moves to End and returns an empty CLOSE batch.
func (m *machine) closeBatch() []byte {
	m.state = StateEnd
	out, _ := (&Batch{FromServer: m.server, Type: BatchClose}).AppendBinary(nil)
	return out
}

// localError reports a local failure and the fatal Local Error sent for it.
type localError struct {
	cause error
	sent  *Error
}

func (e *localError) Error() string   { return e.cause.Error() + " (sent fatal Local Error)" }
func (e *localError) Unwrap() []error { return []error{e.cause, e.sent} }

// paMessages converts PB-PA values to messages.
func paMessages(dst []Message, pas []PA) ([]Message, error) {
	var err error
	for i := range pas {
		if dst, err = appendMessage(dst, pas[i], MsgPA, true); err != nil {
			return nil, err
		}
	}
	return dst, nil
}
