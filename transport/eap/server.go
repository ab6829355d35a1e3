package eap

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// Selector chooses the server's methods. Next is called after the peer's identity is known with
// done empty, after each method that succeeded with it appended to done, and after a Nak with the
// types the peer proposed. It returns the next method, or nil to end: with Success when at least
// one method succeeded and the Selector is content, which it says with finish = true; with
// Failure otherwise.
type Selector interface {
	Next(ctx context.Context, identity string, done []ServerMethod, nak []Type) (m ServerMethod, finish bool, err error)
}

// SelectorFunc adapts a function to Selector.
type SelectorFunc func(ctx context.Context, identity string, done []ServerMethod, nak []Type) (ServerMethod, bool, error)

// Next implements Selector.
func (f SelectorFunc) Next(ctx context.Context, identity string, done []ServerMethod, nak []Type) (ServerMethod, bool, error) {
	return f(ctx, identity, done, nak)
}

// Server limits.
const (
	MaxIdentity      = 1024 // bytes of an EAP-Response/Identity
	DefaultMaxRounds = 512  // Request/Response exchanges in one conversation
)

// ErrIgnored is returned for a packet a conversation must silently discard (RFC 3748 §4.1: a
// Response whose Identifier does not match the outstanding Request, a Request sent to a server).
var ErrIgnored = errors.New("eap: packet ignored")

// Outcome is how a conversation ended.
type Outcome uint8

// Outcomes.
const (
	Pending Outcome = iota
	Succeeded
	Failed
)

// Server is the authenticator side of one EAP conversation (RFC 3748 §2, the pass-through
// authenticator's backend). It is not safe for concurrent use.
type Server struct {
	sel       Selector
	maxRounds int
	rounds    int

	identity string
	started  bool // identity received
	lastID   uint8
	cur      ServerMethod
	done     []ServerMethod
	naked    bool // the current method was proposed after a Nak; a second Nak fails
	outcome  Outcome
	err      error
}

// NewServer returns a conversation that uses sel to pick methods; maxRounds <= 0 means
// DefaultMaxRounds.
func NewServer(sel Selector, maxRounds int) *Server {
	if maxRounds <= 0 {
		maxRounds = DefaultMaxRounds
	}
	return &Server{sel: sel, maxRounds: maxRounds}
}

// Identity is the identity the peer gave, "" before.
func (s *Server) Identity() string { return s.identity }

// Methods returns the methods that succeeded, in order.
func (s *Server) Methods() []ServerMethod { return s.done }

// Current is the method in progress (or the last one), nil before the first.
func (s *Server) Current() ServerMethod { return s.cur }

// Outcome reports whether the conversation has ended, and Err why it failed.
func (s *Server) Outcome() Outcome { return s.outcome }

// Err is the reason of a Failed outcome.
func (s *Server) Err() error { return s.err }

// Start returns the EAP-Request/Identity that opens the conversation. A pass-through
// authenticator usually sends its own and relays the Response, so Handle also accepts an
// Identity Response without a prior Start.
func (s *Server) Start(id uint8) *Packet {
	s.lastID = id
	return &Packet{Code: CodeRequest, ID: id, Type: TypeIdentity}
}

// Begin starts the conversation for a peer whose identity is already established (inside a
// tunnel after a non-EAP authentication such as TTLS/PAP): pre are the methods that count as
// done, id the Identifier of the last packet exchanged. It returns the first Request, or Success
// or Failure as the Selector decides.
func (s *Server) Begin(ctx context.Context, identity string, id uint8, pre ...ServerMethod) (*Packet, error) {
	if s.started {
		return nil, errors.New("eap: conversation already started")
	}
	s.started, s.identity, s.lastID = true, identity, id
	s.done = append(s.done, pre...)
	return s.next(ctx, nil)
}

// Handle processes one packet from the peer and returns the packet to send: the next Request,
// Success or Failure. ErrIgnored (wrapped) means the packet must be discarded and nothing sent.
func (s *Server) Handle(ctx context.Context, p *Packet) (*Packet, error) {
	if s.outcome != Pending {
		return nil, fmt.Errorf("%w: conversation already ended", ErrIgnored)
	}
	if p.Code != CodeResponse {
		return nil, fmt.Errorf("%w: %s from the peer", ErrIgnored, p.Code)
	}
	if !s.started {
		if p.Type != TypeIdentity {
			if s.cur == nil && s.rounds == 0 && p.Type == TypeNak {
				return nil, fmt.Errorf("%w: Nak before any method", ErrIgnored)
			}
			return s.fail(p.ID, fmt.Errorf("eap: expected an Identity, got %s", p.Type)), nil
		}
		if len(p.Data) > MaxIdentity {
			return s.fail(p.ID, fmt.Errorf("eap: identity of %d bytes exceeds %d", len(p.Data), MaxIdentity)), nil
		}
		s.started = true
		s.lastID = p.ID
		s.identity = string(p.Data)
		return s.next(ctx, nil)
	}
	if p.ID != s.lastID {
		return nil, fmt.Errorf("%w: Identifier %d, outstanding Request has %d", ErrIgnored, p.ID, s.lastID)
	}
	s.rounds++
	if s.rounds > s.maxRounds {
		return s.fail(p.ID, fmt.Errorf("eap: more than %d rounds", s.maxRounds)), nil
	}
	switch {
	case p.Type == TypeNak:
		if s.naked || len(p.Data) == 0 {
			return s.fail(p.ID, fmt.Errorf("eap: peer refused %s", s.cur.Type())), nil
		}
		nak := make([]Type, 0, len(p.Data))
		for _, t := range p.Data {
			nak = append(nak, Type(t))
		}
		s.naked = true
		return s.next(ctx, nak)
	case p.Type == TypeNotification:
		return nil, fmt.Errorf("%w: Notification Response", ErrIgnored)
	case p.Type != s.cur.Type():
		return s.fail(p.ID, fmt.Errorf("eap: peer answered %s to a %s Request", p.Type, s.cur.Type())), nil
	}
	st, err := s.cur.Process(ctx, p.Data)
	if err != nil {
		return s.fail(p.ID, fmt.Errorf("eap: %s: %w", s.cur.Type(), err)), nil
	}
	if !st.Done {
		return s.request(st.Data), nil
	}
	if !st.Success {
		return s.fail(p.ID, fmt.Errorf("eap: %s failed", s.cur.Type())), nil
	}
	s.done = append(s.done, s.cur)
	s.naked = false
	return s.next(ctx, nil)
}

func (s *Server) next(ctx context.Context, nak []Type) (*Packet, error) {
	m, finish, err := s.sel.Next(ctx, s.identity, slices.Clip(s.done), nak)
	if err != nil {
		return s.fail(s.lastID, err), nil
	}
	if m == nil {
		if finish && len(s.done) > 0 {
			s.outcome = Succeeded
			return &Packet{Code: CodeSuccess, ID: s.lastID}, nil
		}
		return s.fail(s.lastID, errors.New("eap: no acceptable method")), nil
	}
	if nak != nil && !slices.Contains(nak, m.Type()) {
		return s.fail(s.lastID, fmt.Errorf("eap: peer proposed %v, none acceptable", nak)), nil
	}
	data, err := m.Start(ctx)
	if err != nil {
		return s.fail(s.lastID, fmt.Errorf("eap: %s: %w", m.Type(), err)), nil
	}
	s.cur = m
	return s.request(data), nil
}

func (s *Server) request(data []byte) *Packet {
	s.lastID++
	return &Packet{Code: CodeRequest, ID: s.lastID, Type: s.cur.Type(), Data: data}
}

// fail ends the conversation. The Failure carries the Identifier of the Response it answers
// (RFC 3748 §4.2).
func (s *Server) fail(id uint8, err error) *Packet {
	s.outcome, s.err = Failed, err
	return &Packet{Code: CodeFailure, ID: id}
}
