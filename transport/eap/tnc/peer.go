package tnc

import (
	"context"
	"errors"
	"fmt"

	"trustnac/transport/eap"
	"trustnac/transport/pbtnc"
)

// PeerSession is the PB-TNC Client (TNCC) behind a Peer; *pbtnc.Client
// satisfies it (RFC 5793 §3.2).
type PeerSession interface {
	Start(ctx context.Context) ([]byte, error)
	Step(ctx context.Context, in []byte) ([]byte, error)
	State() pbtnc.State
}

var _ PeerSession = (*pbtnc.Client)(nil)

// Peer is the EAP peer side of PT-EAP (RFC 7171) or EAP-TNC, carrying the
// batches of one PB-TNC session. It is not safe for concurrent use.
//
// The server's Start Request makes the session Start (its first CDATA goes
// out); every batch reassembled from a Request goes to Step and the answer
// goes out in the Response, or an empty message when the session has
// nothing to say (after a RESULT). Succeeded reports true once the session
// reached a result. Framing errors, a version other than 1 after Start and
// IF-TNCCS 1.1 end the conversation (eap.ErrPeerGiveUp).
type Peer struct {
	ch        channel
	cfgErr    error
	sess      PeerSession
	started   bool
	succeeded bool
	err       error
}

var _ eap.PeerMethod = (*Peer)(nil)

// NewPeer returns the peer method for one conversation, driving c. A
// cfg.Type other than eap.TypePTEAP or eap.TypeTNC makes Process fail.
func NewPeer(cfg PeerConfig, c PeerSession) *Peer {
	ch, err := newChannel(cfg.Type, cfg.MaxMessage, cfg.MaxFragment, cfg.MaxFragments)
	return &Peer{ch: ch, cfgErr: err, sess: c}
}

// Type is the configured EAP type.
func (p *Peer) Type() eap.Type { return p.ch.typ }

// Session returns the PB-TNC session the method drives.
func (p *Peer) Session() PeerSession { return p.sess }

// Succeeded reports whether the PB-TNC exchange reached a result (a RESULT
// batch was accepted), which makes an EAP-Success acceptable.
func (p *Peer) Succeeded() bool { return p.succeeded }

// Err is why the method failed: the framing error that made it give up, or
// the PB-TNC error (wrapping ErrSession) that ended the session; nil
// otherwise.
func (p *Peer) Err() error { return p.err }

// Process handles the type-data of a Request and returns that of the
// Response.
func (p *Peer) Process(ctx context.Context, data []byte) ([]byte, error) {
	out, err := p.process(ctx, data)
	if err != nil {
		p.succeeded = false
		if p.err == nil {
			p.err = err
		}
		return nil, fmt.Errorf("%w: %w", eap.ErrPeerGiveUp, err)
	}
	return out, nil
}

func (p *Peer) process(ctx context.Context, data []byte) ([]byte, error) {
	if p.cfgErr != nil {
		return nil, p.cfgErr
	}
	if p.err != nil && !p.ch.sending() {
		return nil, fmt.Errorf("%w: Request after the session failed", ErrProtocol)
	}
	pk, err := p.ch.decode(data)
	if err != nil {
		return nil, err
	}
	if pk.Start {
		if p.started {
			return nil, fmt.Errorf("%w: second Start", ErrProtocol)
		}
		// The server offers its version; a higher one is answered with ours
		// and the server decides (RFC 7171 §4.1). A lower one is refused.
		if pk.Version < p.ch.version {
			return nil, &VersionError{Type: p.ch.typ, Got: pk.Version, Want: p.ch.version}
		}
		p.started = true
		if isAck(&TNCPacket{More: pk.More, LengthIncluded: pk.LengthIncluded, Data: pk.Data}) {
			out, err := p.sess.Start(ctx)
			return p.answer(out, err, false)
		}
		pk.Start = false // the Start carries the server's first batch
	} else {
		if !p.started {
			return nil, fmt.Errorf("%w: Request before Start", ErrProtocol)
		}
		if err := p.ch.checkVersion(&pk); err != nil {
			return nil, err
		}
	}
	if p.ch.sending() {
		if !isAck(&pk) {
			return nil, fmt.Errorf("%w: data while a fragment acknowledgement was due", ErrProtocol)
		}
		return p.ch.next(), nil
	}
	batch, complete, err := p.ch.receive(&pk)
	if err != nil {
		return nil, err
	}
	if !complete {
		return p.ch.ack(), nil
	}
	if len(batch) == 0 {
		return nil, fmt.Errorf("%w: empty Request with no fragment outstanding", ErrProtocol)
	}
	if batch[0] == '<' {
		return nil, ErrTNCCS11
	}
	result := len(batch) >= 4 && batch[3]&0x0f == byte(pbtnc.BatchResult)
	out, err := p.sess.Step(ctx, batch)
	return p.answer(out, err, result)
}

// answer turns what the session returned into the Response type-data.
func (p *Peer) answer(out []byte, err error, result bool) ([]byte, error) {
	if errors.Is(err, pbtnc.ErrClosed) || errors.Is(err, pbtnc.ErrState) {
		return nil, fmt.Errorf("%w: %w", ErrSession, err)
	}
	switch p.sess.State() {
	case pbtnc.StateDecided:
		p.succeeded = true
	case pbtnc.StateEnd:
		// CloseAfterResult: the RESULT was accepted and answered with CLOSE.
		p.succeeded = result && err == nil
		if !p.succeeded {
			if err == nil {
				err = errors.New("session closed without a result")
			}
			p.err = fmt.Errorf("%w: %w", ErrSession, err)
		}
	default:
		p.succeeded = false
	}
	if out == nil {
		return p.ch.ack(), nil
	}
	return p.ch.send(out)
}
