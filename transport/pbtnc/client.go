package pbtnc

import (
	"context"
	"fmt"
)

// ClientHandler is the IMC layer behind a PB-TNC Client (TNCC): the agent.
type ClientHandler interface {
	// Begin returns the PB-PA messages of the first CDATA batch of a
	// handshake (also after SRETRY/CRETRY).
	Begin(ctx context.Context) ([]PA, error)
	// Receive delivers the PB-PA messages of one SDATA batch and returns
	// those of the next CDATA batch (may be empty).
	Receive(ctx context.Context, msgs []PA) ([]PA, error)
	// Result delivers the outcome of a RESULT batch.
	Result(ctx context.Context, r Result) error
}

// Client is the PB-TNC Client (TNCC) side of one PB-TNC session
// (RFC 5793 §3.2). It performs no I/O: send what Start returns, feed every
// received batch to Step and send what it returns. A Client is safe for
// concurrent use, but its handler is called with the Client locked and
// must not call back into it.
type Client struct {
	machine
	h            ClientHandler
	lang         string
	closeAfter   bool
	pendingBegin bool // a CRETRY was sent: the next SDATA starts a handshake
}

// NewClient returns a Client in the Init state.
func NewClient(h ClientHandler, cfg Config) *Client {
	c := &Client{h: h, lang: cfg.Language, closeAfter: cfg.CloseAfterResult}
	c.init(false, cfg)
	return c
}

// Start begins the session: it returns the first CDATA batch, holding the
// PB-Language-Preference (if Config.Language is set) and the PB-PA
// messages from Begin. It is allowed only in the Init state (ErrState).
func (c *Client) Start(ctx context.Context) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != StateInit {
		return nil, fmt.Errorf("%w: Start in state %v", ErrState, c.state)
	}
	return c.handshake(ctx, nil, false, nil)
}

// Step handles one batch received from the PB-TNC Server and returns the
// batch to send back (nil: none).
//
// SDATA goes to the handler's Receive, whose answer is sent as CDATA (the
// first SDATA after a CRETRY, or in Init, starts a handshake: Begin, then
// Receive). RESULT goes to the handler's Result; the client then stays in
// Decided, or answers CLOSE if Config.CloseAfterResult. SRETRY starts a
// new handshake with a CDATA from Begin. A received CLOSE moves to End and
// returns nil, with an error wrapping ErrPeerError if it carried a
// PB-Error.
//
// Errors are reported as by Server.Step: send the returned bytes, then
// close the transport when State() is StateEnd.
func (c *Client) Step(ctx context.Context, in []byte) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h, st := c.checkHeader(in, clientMayReceive)
	if st != nil {
		return st.out, st.err
	}
	cont, st := c.receive(in, h)
	if st != nil {
		return st.out, st.err
	}
	perr := cont.peerErr().orNil()
	switch h.typ {
	case BatchSDATA:
		if c.state == StateInit || c.pendingBegin {
			return c.handshake(ctx, cont.pas, true, perr)
		}
		if err := c.countRound(); err != nil {
			return c.localFail(err)
		}
		pas, err := c.h.Receive(ctx, cont.pas)
		if err != nil {
			return c.handlerFail("Receive", err)
		}
		return c.sendCDATA(pas, false, perr)
	case BatchResult:
		r := cont.result
		c.result = &r
		c.pendingBegin = false
		c.state = StateDecided
		if err := c.h.Result(ctx, r); err != nil {
			return c.handlerFail("Result", err)
		}
		if c.closeAfter {
			return c.closeBatch(), perr
		}
		return nil, perr
	default: // BatchSRetry
		return c.handshake(ctx, nil, false, perr)
	}
}

// handshake starts a handshake: Begin, then (deliver) Receive of the
// SDATA that came with it; the answer goes out as a CDATA batch.
func (c *Client) handshake(ctx context.Context, received []PA, deliver bool, perr error) ([]byte, error) {
	c.pendingBegin = false
	c.rounds = 0
	pas, err := c.h.Begin(ctx)
	if err != nil {
		return c.handlerFail("Begin", err)
	}
	if deliver {
		if err := c.countRound(); err != nil {
			return c.localFail(err)
		}
		more, err := c.h.Receive(ctx, received)
		if err != nil {
			return c.handlerFail("Receive", err)
		}
		pas = append(pas, more...)
	}
	return c.sendCDATA(pas, true, perr)
}

// sendCDATA sends a CDATA batch, with the language preference first in the
// first batch of a handshake.
func (c *Client) sendCDATA(pas []PA, first bool, perr error) ([]byte, error) {
	msgs := make([]Message, 0, len(pas)+1)
	var err error
	if first && c.lang != "" {
		msgs, err = appendMessage(msgs, LanguagePreference(c.lang), MsgLanguagePreference, false)
		if err != nil {
			return c.localFail(err)
		}
	}
	if msgs, err = paMessages(msgs, pas); err != nil {
		return c.localFail(err)
	}
	b, err := c.encode(BatchCDATA, msgs)
	if err != nil {
		return c.localFail(err)
	}
	c.state = StateServerWorking
	return b, perr
}

// Retry returns a CRETRY batch asking the server for a new handshake
// (RFC 5793 §3.2, §4.1). It is allowed in the Decided, Server Working and
// Client Working states; the server answers with SDATA or RESULT, and the
// first SDATA of the new handshake is delivered after Begin. Otherwise it
// returns ErrState.
func (c *Client) Retry(ctx context.Context) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.state {
	case StateDecided, StateServerWorking, StateClientWorking:
	default:
		return nil, fmt.Errorf("%w: CRETRY in state %v", ErrState, c.state)
	}
	b, err := c.encode(BatchCRetry, nil)
	if err != nil {
		return nil, err
	}
	c.state = StateServerWorking
	c.pendingBegin = true
	return b, nil
}

// Close returns an empty CLOSE batch and moves to End (RFC 5793 §4.1).
func (c *Client) Close() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeBatch()
}

// State returns the current state.
func (c *Client) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Result returns the outcome of the last RESULT batch received, nil
// before the first. It must not be modified.
func (c *Client) Result() *Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.result
}
