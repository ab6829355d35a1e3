package tnc

import (
	"context"
	"errors"
	"fmt"

	"trustnac/transport/eap"
	"trustnac/transport/pbtnc"
)

// ServerSession is the PB-TNC Server (TNCS) behind a Server; *pbtnc.Server
// satisfies it. Step takes a batch received from the PB-TNC Client and
// returns the batch to send (RFC 5793 §3.2).
type ServerSession interface {
	Step(ctx context.Context, in []byte) ([]byte, error)
	State() pbtnc.State
}

var _ ServerSession = (*pbtnc.Server)(nil)

// Server is the EAP server side of PT-EAP (RFC 7171) or EAP-TNC, one
// eap.ServerMethod per conversation, carrying the batches of one PB-TNC
// session. It is not safe for concurrent use.
//
// Start sends the S flag and version without data; the PB-TNC Client (the
// peer) opens with a CDATA batch. Each reassembled batch from the peer goes
// to Session().Step and the answer goes out in the next Request. The method
// ends:
//   - with success when the exchange completed: after the RESULT batch the
//     peer answers with an empty message (its client stays Decided) or a
//     CLOSE batch without error;
//   - with failure (an error wrapping ErrSession) when the PB-TNC session
//     ends without a result: a CLOSE batch from this side carrying a fatal
//     PB-Error goes out first, and the peer's next Response ends the method;
//   - with failure on a framing error (ErrVersion, ErrFragment, ErrTooLarge,
//     ErrTooManyFragments, ErrProtocol, ErrMalformed, ErrTNCCS11).
//
// The posture verdict is not the EAP outcome: a completed exchange that
// recommended isolation still succeeds.
type Server struct {
	ch      channel
	cfgErr  error
	sess    ServerSession
	started bool
	done    bool
	closing error // a CLOSE for this failure was sent; the next Response ends the method
}

var _ eap.ServerMethod = (*Server)(nil)

// NewServer returns the server method for one conversation, driving s. A
// cfg.Type other than eap.TypePTEAP or eap.TypeTNC makes Start fail with
// ErrConfig.
func NewServer(cfg ServerConfig, s ServerSession) *Server {
	ch, err := newChannel(cfg.Type, cfg.MaxMessage, cfg.MaxFragment, cfg.MaxFragments)
	return &Server{ch: ch, cfgErr: err, sess: s}
}

// Type is the configured EAP type.
func (s *Server) Type() eap.Type { return s.ch.typ }

// Session returns the PB-TNC session the method drives.
func (s *Server) Session() ServerSession { return s.sess }

// Start returns the type-data of the Start Request: the S flag and the
// version, no data (RFC 7171 §4.1).
func (s *Server) Start(context.Context) ([]byte, error) {
	if s.cfgErr != nil {
		return nil, s.cfgErr
	}
	if s.started {
		return nil, fmt.Errorf("%w: Start called twice", ErrProtocol)
	}
	s.started = true
	return s.ch.start(), nil
}

// Process handles the type-data of the peer's Response.
func (s *Server) Process(ctx context.Context, data []byte) (eap.Step, error) {
	if s.cfgErr != nil {
		return eap.Step{}, s.cfgErr
	}
	if !s.started || s.done {
		return eap.Step{}, fmt.Errorf("%w: Response outside the exchange", ErrProtocol)
	}
	st, err := s.process(ctx, data)
	if err != nil || st.Done {
		s.done = true
	}
	return st, err
}

func (s *Server) process(ctx context.Context, data []byte) (eap.Step, error) {
	p, err := s.ch.decode(data)
	if err != nil {
		return eap.Step{}, err
	}
	if err := s.ch.checkVersion(&p); err != nil {
		return eap.Step{}, err
	}
	if p.Start {
		return eap.Step{}, fmt.Errorf("%w: S flag from the peer", ErrProtocol)
	}
	if s.ch.sending() {
		if !isAck(&p) {
			return eap.Step{}, fmt.Errorf("%w: data while a fragment acknowledgement was due", ErrProtocol)
		}
		return eap.Step{Data: s.ch.next()}, nil
	}
	if s.closing != nil {
		return eap.Step{}, s.closing
	}
	batch, complete, err := s.ch.receive(&p)
	if err != nil {
		return eap.Step{}, err
	}
	if !complete {
		return eap.Step{Data: s.ch.ack()}, nil
	}
	if len(batch) == 0 {
		if s.sess.State() == pbtnc.StateDecided {
			return eap.Step{Done: true, Success: true}, nil
		}
		return eap.Step{}, fmt.Errorf("%w: empty message in PB-TNC state %v", ErrProtocol, s.sess.State())
	}
	if batch[0] == '<' {
		return eap.Step{}, ErrTNCCS11
	}
	prev := s.sess.State()
	out, err := s.sess.Step(ctx, batch)
	if s.sess.State() == pbtnc.StateEnd {
		if out == nil { // the peer sent CLOSE (or the session was over)
			if err == nil && prev == pbtnc.StateDecided {
				return eap.Step{Done: true, Success: true}, nil
			}
			if err == nil {
				err = fmt.Errorf("peer closed the session in state %v", prev)
			}
			return eap.Step{}, fmt.Errorf("%w: %w", ErrSession, err)
		}
		if err == nil {
			err = errors.New("session closed")
		}
		s.closing = fmt.Errorf("%w: %w", ErrSession, err)
		return s.send(out)
	}
	if out == nil {
		return eap.Step{}, fmt.Errorf("%w: no batch to send in state %v (%v)", ErrSession, s.sess.State(), err)
	}
	// A non-nil err here is a non-fatal PB-Error from the peer; the
	// exchange goes on with the normal reply.
	return s.send(out)
}

func (s *Server) send(batch []byte) (eap.Step, error) {
	d, err := s.ch.send(batch)
	if err != nil {
		return eap.Step{}, err
	}
	return eap.Step{Data: d}, nil
}
