package ttls

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"trustnac/transport/eap"
)

// PeerConfig configures an EAP-TTLS peer. Phase2 is per conversation, so is the PeerConfig
// that holds it.
type PeerConfig struct {
	// TLS authenticates the server: RootCAs and ServerName, or InsecureSkipVerify with a
	// VerifyPeerCertificate that pins the server's certificate. The peer works on a copy with
	// MinVersion raised to TLS 1.2, no session cache and no renegotiation.
	TLS *tls.Config
	// MaxFragment is the TLS bytes per EAP-Response (default DefaultMaxFragment).
	MaxFragment int
	// MaxMessage caps a reassembled TLS message from the server (default DefaultMaxMessage).
	MaxMessage int
	// MaxTotal caps the TLS bytes received in the whole conversation (default DefaultMaxTotal).
	MaxTotal int
	// Timeout bounds one handshake step (default DefaultTimeout).
	Timeout time.Duration
	// Phase2 speaks the inner protocol (InnerPeer). Required.
	Phase2 PeerPhase2
}

// PeerPhase2 is the peer's inner handler (RFC 5281 §11).
type PeerPhase2 interface {
	// Start returns the first AVPs, sent once the handshake is done: the peer speaks first
	// in phase 2 (RFC 5281 §11.2).
	Start() ([]AVP, error)
	// Process handles the AVPs the server sent and returns those to answer with.
	Process(ctx context.Context, avps []AVP) ([]AVP, error)
	// Succeeded reports whether the inner authentication reached a state in which the
	// server's EAP-Success is acceptable.
	Succeeded() bool
}

// Peer is the EAP-TTLS peer side of one conversation (RFC 5281 §7–§9); it implements
// eap.PeerMethod and eap.KeyingMethod. Apart from Close, it is not safe for concurrent use.
//
// Errors of Process that leave the conversation intact (a malformed Request, one before the
// Start) make eap.Peer drop the Request; any error after TLS consumed data wraps
// eap.ErrPeerGiveUp. When the TLS handshake fails with an alert to send (for instance the
// server's certificate is not trusted), the alert goes out as the Response, so that the server
// fails at once, and the peer gives up on the next Request.
type Peer struct {
	cfg     PeerConfig
	tlsConf *tls.Config
	cfgErr  error

	tun    atomic.Pointer[tunnel]
	closed atomic.Bool

	in          reassembler
	out         fragmenter
	total       int
	established bool
	p2Started   bool
	state       tls.ConnectionState
	msk, emsk   []byte
	dead        error
}

// NewPeer returns the peer side of one conversation. Configuration errors surface from
// Process as a give-up.
func NewPeer(cfg *PeerConfig) *Peer {
	p := &Peer{}
	if cfg == nil {
		p.cfgErr = errors.New("ttls: no PeerConfig")
		return p
	}
	p.cfg = *cfg
	c := &p.cfg
	setLimits(&c.MaxFragment, &c.MaxMessage, &c.MaxTotal, &c.Timeout)
	switch {
	case c.TLS == nil:
		p.cfgErr = errors.New("ttls: PeerConfig without TLS")
	case c.Phase2 == nil:
		p.cfgErr = errors.New("ttls: PeerConfig without Phase2")
	default:
		p.tlsConf = hardenPeer(c.TLS)
	}
	p.in.maxMessage = c.MaxMessage
	p.out.max = c.MaxFragment
	return p
}

// Type is eap.TypeTTLS.
func (p *Peer) Type() eap.Type { return eap.TypeTTLS }

// Process handles the type-data of an EAP-TTLS Request and returns that of the Response.
func (p *Peer) Process(ctx context.Context, data []byte) ([]byte, error) {
	if p.cfgErr != nil {
		return nil, fmt.Errorf("%w: %w", eap.ErrPeerGiveUp, p.cfgErr)
	}
	if p.closed.Load() {
		return nil, fmt.Errorf("%w: %w", eap.ErrPeerGiveUp, ErrClosed)
	}
	if p.dead != nil {
		return nil, p.dead
	}
	return p.process(ctx, data)
}

// fatal ends the conversation: every later Request gets the same give-up.
func (p *Peer) fatal(err error) error {
	p.dead = fmt.Errorf("%w: %w", eap.ErrPeerGiveUp, err)
	p.release()
	return p.dead
}

func (p *Peer) process(ctx context.Context, data []byte) ([]byte, error) {
	var m Message
	if err := m.UnmarshalBinary(data); err != nil {
		return nil, err
	}
	t := p.tun.Load()
	if m.Flags&FlagStart != 0 {
		// The server's version may be higher; the peer answers with its own, 0 (RFC 5281 §9.1).
		// Data in the Start is an optional hint and is ignored.
		if t != nil {
			return nil, fmt.Errorf("%w: Start in the middle of a conversation", ErrMalformed)
		}
		t = newTunnel(false, p.tlsConf, p.cfg.Timeout, p.cfg.MaxMessage)
		p.tun.Store(t)
		if p.closed.Load() {
			return nil, p.fatal(ErrClosed)
		}
		out, _, err := t.step(ctx, nil)
		if err != nil {
			return nil, p.fatal(err)
		}
		if len(out) == 0 {
			return nil, p.fatal(errors.New("ttls: TLS wrote no ClientHello"))
		}
		return p.out.load(out), nil
	}
	if t == nil {
		return nil, fmt.Errorf("%w: Request before the EAP-TTLS Start", ErrMalformed)
	}
	p.total += len(m.Data)
	if p.total > p.cfg.MaxTotal {
		return nil, p.fatal(fmt.Errorf("%w: more than %d TLS bytes in one conversation", ErrTooLarge, p.cfg.MaxTotal))
	}
	if p.out.busy() {
		if !m.IsAck() {
			return nil, p.fatal(fmt.Errorf("%w: server sent data instead of acknowledging a fragment", ErrFragment))
		}
		return p.out.next(), nil
	}
	msg, complete, err := p.in.add(&m)
	if err != nil {
		return nil, p.fatal(err)
	}
	if !complete {
		return ack(), nil
	}
	return p.message(ctx, t, msg)
}

// message handles one complete TLS message from the server.
func (p *Peer) message(ctx context.Context, t *tunnel, msg []byte) ([]byte, error) {
	var out, app []byte
	if len(msg) > 0 {
		var err error
		if out, app, err = t.step(ctx, msg); err != nil {
			err = p.fatal(err)
			if len(out) > 0 {
				return p.out.load(out), nil // the alert, so the server fails too
			}
			return nil, err
		}
	}
	if !t.established() {
		if len(out) == 0 {
			return nil, p.fatal(fmt.Errorf("%w: TLS handshake waits for more and has nothing to send", ErrMalformed))
		}
		return p.out.load(out), nil
	}
	if !p.established {
		cs := t.connState()
		msk, emsk, err := exportKeys(&cs)
		if err != nil {
			return nil, p.fatal(err)
		}
		p.state, p.msk, p.emsk, p.established = cs, msk, emsk, true
	}
	if p.state.Version == tls.VersionTLS13 && len(app) == 1 && app[0] == 0 {
		app = nil // an RFC 9190 §2.5 protected success indication: not TTLS's, harmless
	}
	var reply []AVP
	var err error
	switch {
	case len(app) > 0:
		avps, perr := ParseAVPs(app)
		if perr != nil {
			return nil, p.fatal(perr)
		}
		p.p2Started = true
		reply, err = p.cfg.Phase2.Process(ctx, avps)
	case !p.p2Started:
		// The peer speaks first (RFC 5281 §11.2). TLS 1.2: the server's Finished ended the
		// handshake. TLS 1.3: the handshake ended with our Finished, in out; the first AVPs go
		// in the same message (RFC 5281 §7.4 lets the client send them with its Finished),
		// which saves the round trip of an empty Request.
		p.p2Started = true
		reply, err = p.cfg.Phase2.Start()
	}
	if err != nil {
		return nil, p.fatal(fmt.Errorf("ttls: phase 2: %w", err))
	}
	if len(reply) > 0 {
		rec, err := t.write(AppendAVPs(nil, reply...))
		if err != nil {
			return nil, p.fatal(err)
		}
		out = append(out, rec...)
	}
	if len(out) == 0 {
		return ack(), nil
	}
	return p.out.load(out), nil
}

func (p *Peer) release() {
	if t := p.tun.Load(); t != nil {
		t.close()
	}
}

// Succeeded reports whether the server was authenticated by the TLS handshake, keys were
// derived, and phase 2 succeeded (PeerPhase2.Succeeded).
func (p *Peer) Succeeded() bool {
	return p.dead == nil && p.established && p.cfg.Phase2 != nil && p.cfg.Phase2.Succeeded()
}

// ConnectionState is the state of the finished TLS handshake; the zero value before.
func (p *Peer) ConnectionState() tls.ConnectionState { return p.state }

// MSK returns the 64-byte Master Session Key (RFC 5281 §8, RFC 9427 §2.1), nil unless
// Succeeded.
func (p *Peer) MSK() []byte {
	if !p.Succeeded() {
		return nil
	}
	return p.msk
}

// EMSK returns the 64-byte Extended Master Session Key, nil unless Succeeded.
func (p *Peer) EMSK() []byte {
	if !p.Succeeded() {
		return nil
	}
	return p.emsk
}

// Close releases the TLS engine of a conversation abandoned mid-handshake. It is idempotent
// and safe to call from any goroutine.
func (p *Peer) Close() {
	p.closed.Store(true)
	p.release()
}

var (
	_ eap.PeerMethod   = (*Peer)(nil)
	_ eap.KeyingMethod = (*Peer)(nil)
)
