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

// Defaults and bounds of ServerConfig and PeerConfig.
const (
	// DefaultMaxFragment is the TLS bytes sent per EAP packet by default; 1024 keeps a
	// fragment, with its EAP and RADIUS headers, well inside a 4096-byte RADIUS packet.
	DefaultMaxFragment = 1024
	// HeaderLen is what an EAP-TTLS packet adds to its TLS bytes: the EAP header, Type,
	// flags and TLS Message Length (RFC 5281 §9.1).
	HeaderLen = eap.HeaderLen + 1 + 1 + 4
	// MaxFragmentLimit is the most TLS bytes an EAP packet can carry: 65535 minus HeaderLen.
	MaxFragmentLimit = eap.MaxLength - HeaderLen
	// DefaultMaxMessage caps a reassembled TLS message from the other side: 64 KiB of tunnelled
	// data (a full PB-TNC batch in PT-EAP in an EAP-Message AVP) plus the TLS record overhead.
	DefaultMaxMessage = 64<<10 + 1<<10
	// DefaultMaxTotal caps the TLS bytes received over a whole conversation.
	DefaultMaxTotal = 16 << 20
)

// ServerConfig configures an EAP-TTLS server (one per conversation, or shared: NewServer
// copies it).
type ServerConfig struct {
	// TLS holds the server certificate(s). The server works on a copy with MinVersion raised
	// to TLS 1.2, SessionTicketsDisabled set, and TLS 1.2 without Extended Master Secret
	// refused.
	TLS *tls.Config
	// MaxFragment is the TLS bytes per EAP-Request (default DefaultMaxFragment, at most
	// MaxFragmentLimit).
	MaxFragment int
	// MaxMessage caps a reassembled TLS message from the peer, as announced by its TLS Message
	// Length (default DefaultMaxMessage).
	MaxMessage int
	// MaxTotal caps the TLS bytes received in the whole conversation (default DefaultMaxTotal).
	MaxTotal int
	// Timeout bounds one handshake step (default DefaultTimeout).
	Timeout time.Duration
	// Phase2 is called once, when the handshake has succeeded, for the handler of the
	// tunnelled AVPs. Required.
	Phase2 func(t TunnelInfo) Phase2
}

// TunnelInfo describes the TLS tunnel phase 2 runs in.
type TunnelInfo struct {
	Version     uint16 // tls.VersionTLS12 or tls.VersionTLS13
	CipherSuite uint16
	ServerName  string // the SNI the peer sent, "" if none
}

// Phase2Status is the outcome of one phase 2 round.
type Phase2Status int

// Phase 2 outcomes.
const (
	Phase2Continue Phase2Status = iota // send the reply AVPs and wait for the peer's answer
	Phase2Success                      // the peer is authenticated: EAP-TTLS succeeds
	Phase2Failure                      // authentication failed: EAP-TTLS fails
)

// String names the status.
func (s Phase2Status) String() string {
	switch s {
	case Phase2Continue:
		return "continue"
	case Phase2Success:
		return "success"
	case Phase2Failure:
		return "failure"
	}
	return fmt.Sprintf("Phase2Status(%d)", int(s))
}

// Phase2 is the server's inner handler (RFC 5281 §11): it gets the AVPs the peer sent through
// the tunnel and returns the AVPs to send back. An error fails the conversation.
type Phase2 interface {
	Process(ctx context.Context, avps []AVP) (reply []AVP, st Phase2Status, err error)
}

// Server is the EAP-TTLS server side of one conversation (RFC 5281 §7–§9); it implements
// eap.ServerMethod and eap.KeyingMethod. Apart from Close, it is not safe for concurrent use.
type Server struct {
	cfg     ServerConfig
	tlsConf *tls.Config
	cfgErr  error

	tun    atomic.Pointer[tunnel]
	closed atomic.Bool

	in         reassembler
	out        fragmenter
	total      int
	p2         Phase2
	kicked     bool // sent the empty Request that lets the peer start phase 2
	phase2Seen bool // the peer has sent AVPs
	state      tls.ConnectionState
	msk, emsk  []byte
	succeeded  bool
	ended      bool
}

// NewServer returns the server side of one conversation. Configuration errors (no TLS config,
// no Phase2) surface from Start.
func NewServer(cfg *ServerConfig) *Server {
	s := &Server{}
	if cfg == nil {
		s.cfgErr = errors.New("ttls: no ServerConfig")
		return s
	}
	s.cfg = *cfg
	c := &s.cfg
	setLimits(&c.MaxFragment, &c.MaxMessage, &c.MaxTotal, &c.Timeout)
	switch {
	case c.TLS == nil:
		s.cfgErr = errors.New("ttls: ServerConfig without TLS")
	case c.Phase2 == nil:
		s.cfgErr = errors.New("ttls: ServerConfig without Phase2")
	default:
		s.tlsConf = hardenServer(c.TLS)
	}
	s.in.maxMessage = c.MaxMessage
	s.out.max = c.MaxFragment
	return s
}

// setLimits fills the limits a configuration left at zero with the defaults.
func setLimits(maxFragment, maxMessage, maxTotal *int, timeout *time.Duration) {
	if *maxFragment <= 0 {
		*maxFragment = DefaultMaxFragment
	}
	*maxFragment = min(*maxFragment, MaxFragmentLimit)
	if *maxMessage <= 0 {
		*maxMessage = DefaultMaxMessage
	}
	if *maxTotal <= 0 {
		*maxTotal = DefaultMaxTotal
	}
	if *timeout <= 0 {
		*timeout = DefaultTimeout
	}
}

// Type is eap.TypeTTLS.
func (s *Server) Type() eap.Type { return eap.TypeTTLS }

// Start returns the EAP-TTLS Start: the S flag, version 0, no data (RFC 5281 §9.2.1).
func (s *Server) Start(ctx context.Context) ([]byte, error) {
	if s.cfgErr != nil {
		return nil, s.cfgErr
	}
	if s.closed.Load() || s.ended {
		return nil, ErrClosed
	}
	return []byte{byte(FlagStart)}, nil
}

// Process handles the type-data of the peer's Response: acknowledgements of our fragments,
// fragments of the peer's TLS message, TLS handshake messages, and after the handshake the
// tunnelled AVPs, which go to Phase2. Any error ends the conversation (and releases TLS).
func (s *Server) Process(ctx context.Context, data []byte) (eap.Step, error) {
	if s.cfgErr != nil {
		return eap.Step{}, s.cfgErr
	}
	if s.closed.Load() || s.ended {
		return eap.Step{}, ErrClosed
	}
	st, err := s.process(ctx, data)
	if err != nil || st.Done {
		s.ended = true
		s.release()
	}
	if err != nil {
		return eap.Step{}, err
	}
	if st.Done && st.Success {
		s.succeeded = true
	}
	return st, nil
}

func (s *Server) process(ctx context.Context, data []byte) (eap.Step, error) {
	var m Message
	if err := m.UnmarshalBinary(data); err != nil {
		return eap.Step{}, err
	}
	if v := m.Version(); v != 0 {
		return eap.Step{}, fmt.Errorf("%w: peer answered with EAP-TTLS version %d, only 0 was offered", ErrMalformed, v)
	}
	if m.Flags&FlagStart != 0 {
		return eap.Step{}, fmt.Errorf("%w: S flag in a Response", ErrMalformed)
	}
	s.total += len(m.Data)
	if s.total > s.cfg.MaxTotal {
		return eap.Step{}, fmt.Errorf("%w: more than %d TLS bytes in one conversation", ErrTooLarge, s.cfg.MaxTotal)
	}
	if s.out.busy() {
		if !m.IsAck() {
			return eap.Step{}, fmt.Errorf("%w: peer sent data instead of acknowledging a fragment", ErrFragment)
		}
		return eap.Step{Data: s.out.next()}, nil
	}
	msg, complete, err := s.in.add(&m)
	if err != nil {
		return eap.Step{}, err
	}
	if !complete {
		return eap.Step{Data: ack()}, nil
	}
	return s.message(ctx, msg)
}

// message handles one complete TLS message from the peer.
func (s *Server) message(ctx context.Context, msg []byte) (eap.Step, error) {
	t := s.tun.Load()
	if t == nil {
		if len(msg) == 0 {
			return eap.Step{}, fmt.Errorf("%w: peer answered Start without a ClientHello", ErrMalformed)
		}
		t = newTunnel(true, s.tlsConf, s.cfg.Timeout, s.cfg.MaxMessage)
		s.tun.Store(t)
		if s.closed.Load() {
			t.close()
			return eap.Step{}, ErrClosed
		}
	}
	var out, app []byte
	if len(msg) > 0 {
		var err error
		if out, app, err = t.step(ctx, msg); err != nil {
			return eap.Step{}, err
		}
	}
	if !t.established() {
		if len(out) == 0 {
			return eap.Step{}, fmt.Errorf("%w: TLS handshake waits for more and has nothing to send", ErrMalformed)
		}
		return eap.Step{Data: s.out.load(out)}, nil
	}
	if s.p2 == nil {
		if err := s.establish(t); err != nil {
			return eap.Step{}, err
		}
	}
	if len(app) == 0 {
		switch {
		case len(out) > 0: // the server's Finished (TLS 1.2), or other TLS output
			return eap.Step{Data: s.out.load(out)}, nil
		case !s.kicked && !s.phase2Seen:
			// TLS 1.3: the client's Finished ended the handshake and the server has nothing to
			// say; a Request without data makes the peer start phase 2.
			s.kicked = true
			return eap.Step{Data: ack()}, nil
		}
		return eap.Step{}, fmt.Errorf("%w: Response without tunnelled AVPs", ErrPhase2)
	}
	s.phase2Seen = true
	avps, err := ParseAVPs(app)
	if err != nil {
		return eap.Step{}, err
	}
	reply, st, err := s.p2.Process(ctx, avps)
	if err != nil {
		return eap.Step{}, fmt.Errorf("ttls: phase 2: %w", err)
	}
	switch st {
	case Phase2Success:
		return eap.Step{Done: true, Success: true}, nil
	case Phase2Failure:
		return eap.Step{Done: true}, nil
	case Phase2Continue:
	default:
		return eap.Step{}, fmt.Errorf("ttls: phase 2 returned %v", st)
	}
	if len(reply) == 0 {
		return eap.Step{}, fmt.Errorf("%w: phase 2 continues with nothing to send", ErrPhase2)
	}
	enc := AppendAVPs(nil, reply...)
	rec, err := t.write(enc)
	if err != nil {
		return eap.Step{}, err
	}
	return eap.Step{Data: s.out.load(append(out, rec...))}, nil
}

// establish derives the keys and creates the phase 2 handler once the handshake is done.
func (s *Server) establish(t *tunnel) error {
	cs := t.connState()
	msk, emsk, err := exportKeys(&cs)
	if err != nil {
		return err
	}
	p2 := s.cfg.Phase2(TunnelInfo{Version: cs.Version, CipherSuite: cs.CipherSuite, ServerName: cs.ServerName})
	if p2 == nil {
		return errors.New("ttls: Phase2 returned no handler")
	}
	s.state, s.msk, s.emsk, s.p2 = cs, msk, emsk, p2
	return nil
}

func (s *Server) release() {
	if t := s.tun.Load(); t != nil {
		t.close()
	}
}

// Phase2 is the phase 2 handler created for this conversation, nil before the handshake
// finished.
func (s *Server) Phase2() Phase2 { return s.p2 }

// ConnectionState is the state of the finished TLS handshake; the zero value before.
func (s *Server) ConnectionState() tls.ConnectionState { return s.state }

// MSK returns the 64-byte Master Session Key (RFC 5281 §8, RFC 9427 §2.1), nil unless the
// conversation succeeded.
func (s *Server) MSK() []byte {
	if !s.succeeded {
		return nil
	}
	return s.msk
}

// EMSK returns the 64-byte Extended Master Session Key, nil unless the conversation succeeded.
func (s *Server) EMSK() []byte {
	if !s.succeeded {
		return nil
	}
	return s.emsk
}

// Close releases the TLS engine: the handshake goroutine of a conversation abandoned mid-way
// ends. It is idempotent, safe to call from any goroutine, and must be called when a
// conversation is dropped before it ended (one that ended has released TLS already).
func (s *Server) Close() {
	s.closed.Store(true)
	s.release()
}

var (
	_ eap.ServerMethod = (*Server)(nil)
	_ eap.KeyingMethod = (*Server)(nil)
)
