package eap

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// Peer is the peer (supplicant) side of one EAP conversation. Methods are created on the first
// Request of their type, from the factories in the order of preference used for Nak. It is not
// safe for concurrent use.
type Peer struct {
	identity  string
	factories map[Type]func() PeerMethod
	prefer    []Type
	cur       PeerMethod
	lastReq   *Packet // last Request answered, for retransmissions
	lastResp  *Packet
	outcome   Outcome
	err       error
}

// PeerFactory creates the peer side of one method.
type PeerFactory struct {
	Type Type
	New  func() PeerMethod
}

// NewPeer returns a peer that answers Identity with identity and runs the given methods, in order
// of preference.
func NewPeer(identity string, methods ...PeerFactory) *Peer {
	p := &Peer{identity: identity, factories: make(map[Type]func() PeerMethod, len(methods))}
	for _, m := range methods {
		p.factories[m.Type] = m.New
		p.prefer = append(p.prefer, m.Type)
	}
	return p
}

// Method is the method in progress or the last one, nil before the first.
func (p *Peer) Method() PeerMethod { return p.cur }

// Outcome reports whether the conversation has ended.
func (p *Peer) Outcome() Outcome { return p.outcome }

// Err is the reason of a Failed outcome.
func (p *Peer) Err() error { return p.err }

// Handle processes one packet from the authenticator and returns the Response to send, or nil
// when there is nothing to send (Success, Failure, or a discarded packet, reported with
// ErrIgnored).
func (p *Peer) Handle(ctx context.Context, req *Packet) (*Packet, error) {
	switch req.Code {
	case CodeSuccess:
		if p.cur == nil || !p.cur.Succeeded() {
			return nil, fmt.Errorf("%w: Success before the method completed", ErrIgnored)
		}
		p.outcome = Succeeded
		return nil, nil
	case CodeFailure:
		p.outcome, p.err = Failed, errors.New("eap: authenticator sent Failure")
		return nil, nil
	case CodeResponse:
		return nil, fmt.Errorf("%w: Response from the authenticator", ErrIgnored)
	}
	if p.lastReq != nil && req.ID == p.lastReq.ID && req.Type == p.lastReq.Type && slices.Equal(req.Data, p.lastReq.Data) {
		return p.lastResp, nil // retransmission: same answer (RFC 3748 §4.1)
	}
	var data []byte
	switch req.Type {
	case TypeIdentity:
		data = []byte(p.identity)
	case TypeNotification:
		data = nil
	default:
		if p.cur == nil || p.cur.Type() != req.Type {
			f, ok := p.factories[req.Type]
			if !ok {
				return p.answer(req, TypeNak, p.nakTypes()), nil
			}
			p.cur = f()
		}
		out, err := p.cur.Process(ctx, req.Data)
		if err != nil {
			if errors.Is(err, ErrPeerGiveUp) {
				p.outcome, p.err = Failed, err
			}
			return nil, fmt.Errorf("%w: %s: %w", ErrIgnored, req.Type, err)
		}
		data = out
	}
	return p.answer(req, req.Type, data), nil
}

func (p *Peer) nakTypes() []byte {
	if len(p.prefer) == 0 {
		return []byte{0} // no alternative (RFC 3748 §5.3.1)
	}
	b := make([]byte, len(p.prefer))
	for i, t := range p.prefer {
		b[i] = byte(t)
	}
	return b
}

func (p *Peer) answer(req *Packet, t Type, data []byte) *Packet {
	resp := &Packet{Code: CodeResponse, ID: req.ID, Type: t, Data: data}
	p.lastReq, p.lastResp = req, resp
	return resp
}
