package mschapv2

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"io"

	"trustnac/transport/eap"
)

// FailureError is a Failure Request received by the peer (RFC 2759 §6),
// with its error code. It matches ErrAuthFailed.
type FailureError struct {
	Failure
}

// Error describes the failure the server reported.
func (e *FailureError) Error() string {
	return fmt.Sprintf("mschapv2: server reported failure E=%d: %s", e.Code, e.Message)
}

// Unwrap returns ErrAuthFailed.
func (e *FailureError) Unwrap() error { return ErrAuthFailed }

type peerState uint8

const (
	peerInit peerState = iota
	peerResponded
	peerDone
)

// Peer is the EAP peer side of EAP-MSCHAPv2. It answers the Challenge with
// an NT-Response, checks the server's authenticator response (S=) in
// constant time, and only then reports Succeeded. A wrong S= makes it give
// up (eap.ErrPeerGiveUp wrapping ErrAuthenticator). It is not safe for
// concurrent use.
type Peer struct {
	user      string
	hash      [16]byte
	rand      io.Reader
	state     peerState
	id        uint8
	expected  [20]byte
	succeeded bool
	err       error
}

var _ eap.PeerMethod = (*Peer)(nil)

// NewPeer returns the peer method for user with password.
func NewPeer(user, password string) *Peer {
	p := &Peer{user: user, rand: rand.Reader}
	copy(p.hash[:], NTHash(password))
	return p
}

// Type is eap.TypeMSCHAPv2.
func (p *Peer) Type() eap.Type { return eap.TypeMSCHAPv2 }

// Succeeded reports whether the server proved knowledge of the password
// hash in a Success Request.
func (p *Peer) Succeeded() bool { return p.succeeded }

// Err is why the method failed: a *FailureError from the server, or the
// error that made the peer give up; nil otherwise.
func (p *Peer) Err() error { return p.err }

// Process handles a Challenge, Success Request or Failure Request. A packet
// that does not parse is discarded (RFC 3748 §2.1); one out of sequence, or
// a wrong authenticator response, ends the conversation.
func (p *Peer) Process(_ context.Context, data []byte) ([]byte, error) {
	var req Packet
	if err := req.UnmarshalBinary(data); err != nil {
		return nil, err
	}
	out, err := p.process(&req)
	if err != nil {
		p.state = peerDone
		p.succeeded = false
		if p.err == nil {
			p.err = err
		}
		return nil, fmt.Errorf("%w: %w", eap.ErrPeerGiveUp, err)
	}
	return out.MarshalBinary()
}

func (p *Peer) process(req *Packet) (*Packet, error) {
	if req.Short {
		return nil, fmt.Errorf("%w: one-octet %v Request", ErrProtocol, req.OpCode)
	}
	switch {
	case p.state == peerInit && req.OpCode == OpChallenge:
		return p.challenge(req)
	case p.state == peerResponded && req.OpCode == OpSuccess:
		if req.ID != p.id {
			return nil, fmt.Errorf("%w: MS-CHAPv2-ID %d, response had %d", ErrProtocol, req.ID, p.id)
		}
		auth, _, err := ParseSuccess(req.Message)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrAuthenticator, err)
		}
		if subtle.ConstantTimeCompare(auth[:], p.expected[:]) != 1 {
			return nil, ErrAuthenticator
		}
		p.state, p.succeeded = peerDone, true
		return &Packet{OpCode: OpSuccess, Short: true}, nil
	case p.state == peerResponded && req.OpCode == OpFailure:
		f, err := ParseFailure(req.Message)
		if err != nil {
			f = Failure{Code: ErrorAuthenticationFailed, Message: req.Message}
		}
		p.state, p.err = peerDone, &FailureError{Failure: f}
		return &Packet{OpCode: OpFailure, Short: true}, nil
	}
	return nil, fmt.Errorf("%w: %v Request in state %d", ErrProtocol, req.OpCode, p.state)
}

// challenge answers the Challenge with a Response (RFC 2759 §4, §8.1).
func (p *Peer) challenge(req *Packet) (*Packet, error) {
	if len(p.user) > MaxName {
		return nil, fmt.Errorf("mschapv2: user name of %d octets exceeds %d", len(p.user), MaxName)
	}
	var auth, peerCh [16]byte
	copy(auth[:], req.Value)
	if _, err := io.ReadFull(p.rand, peerCh[:]); err != nil {
		return nil, fmt.Errorf("mschapv2: peer challenge: %w", err)
	}
	rv := ResponseValue{PeerChallenge: peerCh, NTResponse: GenerateNTResponse(auth, peerCh, p.user, p.hash)}
	p.expected = AuthenticatorResponse(p.hash, rv.NTResponse, peerCh, auth, p.user)
	p.id = req.ID
	p.state = peerResponded
	v, _ := rv.AppendBinary(make([]byte, 0, ResponseSize))
	return &Packet{OpCode: OpResponse, ID: req.ID, Value: v, Name: p.user}, nil
}
