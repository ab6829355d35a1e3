package pbtnc

import (
	"context"
	"fmt"
)

// ServerHandler is the IMV layer behind a PB-TNC Server (TNCS).
type ServerHandler interface {
	// BeginHandshake is called when a handshake starts (first CDATA,
	// CRETRY, or the first CDATA after the server's SRETRY).
	BeginHandshake(ctx context.Context) error
	// Receive delivers the PB-PA messages of one client batch and returns
	// either PB-PA messages for an SDATA batch, or a non-nil Result, which
	// ends the handshake with a RESULT batch (carrying out as well).
	Receive(ctx context.Context, msgs []PA) (out []PA, res *Result, err error)
}

// Server is the PB-TNC Server (TNCS) side of one PB-TNC session
// (RFC 5793 §3.2). It performs no I/O: feed every received batch to Step
// and send what it returns. A Server is safe for concurrent use, but its
// handler is called with the Server locked and must not call back into it.
type Server struct {
	machine
	h            ServerHandler
	lang         string
	newHandshake bool // the next CDATA starts a handshake
}

// NewServer returns a Server in the Init state.
func NewServer(h ServerHandler, cfg Config) *Server {
	s := &Server{h: h, newHandshake: true}
	s.init(true, cfg)
	return s
}

// Step handles one batch received from the PB-TNC Client and returns the
// batch to send back (nil: none).
//
// A CDATA batch goes to the handler, whose answer is sent as SDATA or
// RESULT; a CRETRY batch starts a new handshake (BeginHandshake, then
// Receive with no messages). A received CLOSE moves to End and returns
// nil, with an error wrapping ErrPeerError if it carried a PB-Error.
//
// A malformed, oversized, wrong-direction or out-of-state batch returns a
// CLOSE batch with the fatal PB-Error the RFC prescribes and that *Error.
// A handler failure, a too-large batch to send or too many rounds return a
// CLOSE batch with a fatal Local Error and an error wrapping ErrHandler,
// ErrBatchTooLarge or ErrTooManyRounds. A non-fatal PB-Error from the peer
// is returned, wrapping ErrPeerError, along with the normal reply. Send
// the returned bytes, then close the transport when State() is StateEnd.
func (s *Server) Step(ctx context.Context, in []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, st := s.checkHeader(in, serverMayReceive)
	if st != nil {
		return st.out, st.err
	}
	c, st := s.receive(in, h)
	if st != nil {
		return st.out, st.err
	}
	if c.hasLang {
		s.lang = string(c.lang)
	}
	perr := c.peerErr().orNil()
	var msgs []PA
	switch h.typ {
	case BatchCDATA:
		if s.newHandshake {
			if err := s.beginHandshake(ctx); err != nil {
				return s.handlerFail("BeginHandshake", err)
			}
		}
		msgs = c.pas
	case BatchCRetry:
		if err := s.beginHandshake(ctx); err != nil {
			return s.handlerFail("BeginHandshake", err)
		}
	}
	if err := s.countRound(); err != nil {
		return s.localFail(err)
	}
	out, res, err := s.h.Receive(ctx, msgs)
	if err != nil {
		return s.handlerFail("Receive", err)
	}
	if res != nil {
		return s.sendResult(out, res, perr)
	}
	batch, err := paMessages(nil, out)
	if err == nil {
		var b []byte
		if b, err = s.encode(BatchSDATA, batch); err == nil {
			s.state = StateClientWorking
			return b, perr
		}
	}
	return s.localFail(err)
}

func (s *Server) beginHandshake(ctx context.Context) error {
	s.newHandshake = false
	s.rounds = 0
	return s.h.BeginHandshake(ctx)
}

// sendResult ends the handshake with a RESULT batch.
func (s *Server) sendResult(out []PA, res *Result, perr error) ([]byte, error) {
	r := *res
	if len(out) > 0 {
		r.PA = append(append([]PA(nil), out...), res.PA...)
	}
	if r.Assessment == nil {
		a := AssessmentDontKnow
		r.Assessment = &a
	}
	msgs, err := r.messages(nil)
	if err != nil {
		return s.localFail(err)
	}
	b, err := s.encode(BatchResult, msgs)
	if err != nil {
		return s.localFail(err)
	}
	s.result = &r
	s.state = StateDecided
	return b, perr
}

// Retry returns an SRETRY batch asking the client for a new handshake
// (re-assessment of an open session, RFC 5793 §3.2, §4.1). It is allowed
// in the Decided and Client Working states; the client's next CDATA
// starts the handshake (BeginHandshake). Otherwise it returns ErrState.
func (s *Server) Retry(ctx context.Context) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != StateDecided && s.state != StateClientWorking {
		return nil, fmt.Errorf("%w: SRETRY in state %v", ErrState, s.state)
	}
	b, err := s.encode(BatchSRetry, nil)
	if err != nil {
		return nil, err
	}
	s.state = StateClientWorking
	s.newHandshake = true
	return b, nil
}

// Close returns an empty CLOSE batch and moves to End (RFC 5793 §4.1).
func (s *Server) Close() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closeBatch()
}

// State returns the current state.
func (s *Server) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// Language returns the client's PB-Language-Preference (the
// Accept-Language value), "" if none was received.
func (s *Server) Language() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lang
}

// Result returns the result of the last RESULT batch sent, nil before the
// first. It must not be modified.
func (s *Server) Result() *Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.result
}
