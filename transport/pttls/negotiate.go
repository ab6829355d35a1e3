package pttls

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"
)

// Negotiation limits.
const (
	// maxSASLRounds caps the SASL authentications a server may ask a
	// client for in one session (RFC 6876 §3.8.10 allows more than one).
	maxSASLRounds = 4
	// maxSASLSteps caps the challenge/response messages of one SASL
	// authentication.
	maxSASLSteps = 16
)

// ClientConfig configures the client (TNCC) side of PT-TLS.
type ClientConfig struct {
	// MaxMessageSize is the largest message accepted from the server and
	// sent to it, header included. 0 means DefaultMaxMessageSize; it must
	// lie between MinMaxMessageSize and MaxMessageSizeLimit.
	MaxMessageSize uint32
	// SASL lists the mechanisms the client can use, in order of
	// preference. They are used only if the server asks for client
	// authentication.
	SASL []ClientMechanism
	// HandshakeTimeout bounds the whole negotiation (TLS handshake,
	// version negotiation, SASL); 0 means DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// IdleTimeout bounds each read and write in the data transport phase;
	// 0 means DefaultIdleTimeout.
	IdleTimeout time.Duration
}

// ServerConfig configures the server (TNCS) side of PT-TLS.
type ServerConfig struct {
	// MaxMessageSize is as in ClientConfig.
	MaxMessageSize uint32
	// SASL lists the mechanisms offered to clients, in order of
	// preference. Empty means no client authentication: the server sends
	// an empty SASL Mechanisms list.
	SASL []ServerMechanism
	// RequireSASL makes SASL authentication mandatory for every client.
	// Without it, a client that presented a TLS certificate the server
	// verified is not asked for SASL. RequireSASL needs at least one
	// mechanism.
	RequireSASL bool
	// HandshakeTimeout and IdleTimeout are as in ClientConfig.
	HandshakeTimeout time.Duration
	IdleTimeout      time.Duration
}

func checkMaxSize(limit uint32) (uint32, error) {
	switch {
	case limit == 0:
		return DefaultMaxMessageSize, nil
	case limit < MinMaxMessageSize || limit > MaxMessageSizeLimit:
		return 0, fmt.Errorf("pttls: MaxMessageSize %d outside [%d, %d]", limit, MinMaxMessageSize, MaxMessageSizeLimit)
	}
	return limit, nil
}

func (cfg *ClientConfig) check() (uint32, error) {
	limit, err := checkMaxSize(cfg.MaxMessageSize)
	if err != nil {
		return 0, err
	}
	for i, m := range cfg.SASL {
		if m == nil || !ValidSASLMechanismName(m.Name()) {
			return 0, fmt.Errorf("pttls: SASL mechanism %d has no valid name", i)
		}
	}
	return limit, nil
}

// Validate checks the configuration.
func (cfg *ServerConfig) Validate() error {
	_, err := cfg.check()
	return err
}

func (cfg *ServerConfig) check() (uint32, error) {
	limit, err := checkMaxSize(cfg.MaxMessageSize)
	if err != nil {
		return 0, err
	}
	if cfg.RequireSASL && len(cfg.SASL) == 0 {
		return 0, errors.New("pttls: RequireSASL without SASL mechanisms")
	}
	if len(cfg.SASL) > MaxSASLMechanisms {
		return 0, fmt.Errorf("pttls: %d SASL mechanisms, limit %d", len(cfg.SASL), MaxSASLMechanisms)
	}
	seen := make(map[string]bool, len(cfg.SASL))
	for i, m := range cfg.SASL {
		if m == nil || !ValidSASLMechanismName(m.Name()) {
			return 0, fmt.Errorf("pttls: SASL mechanism %d has no valid name", i)
		}
		if seen[m.Name()] {
			return 0, fmt.Errorf("pttls: SASL mechanism %s listed twice", m.Name())
		}
		seen[m.Name()] = true
	}
	return limit, nil
}

// handshaker is implemented by *tls.Conn and by DTLS connections.
type handshaker interface {
	HandshakeContext(ctx context.Context) error
}

// negotiate runs the secure-channel handshake (if nc has one) and then run
// under one deadline: the earlier of timeout and ctx's deadline. Cancelling
// ctx interrupts blocked I/O. On failure the connection is closed and the
// error wraps ctx.Err() when ctx ended the negotiation.
func (c *Conn) negotiate(ctx context.Context, timeout time.Duration, run func() error) error {
	if timeout <= 0 {
		timeout = DefaultHandshakeTimeout
	}
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	err := c.nc.SetDeadline(deadline)
	if err == nil {
		stop := context.AfterFunc(ctx, func() { _ = c.nc.SetDeadline(time.Unix(1, 0)) })
		if h, ok := c.nc.(handshaker); ok {
			hctx, cancel := context.WithDeadline(ctx, deadline)
			err = h.HandshakeContext(hctx)
			cancel()
			if err != nil {
				err = fmt.Errorf("pttls: secure channel handshake: %w", err)
			}
		}
		if err == nil {
			err = run()
		}
		// stop reports false when the cancellation hook already ran: the
		// deadline may be in the past, so the session is unusable.
		if stopped := stop(); err == nil && stopped {
			// The data phase sets a deadline per operation, so a
			// failure to clear this one (a half-closed in-memory
			// pipe, say) is harmless.
			_ = c.nc.SetDeadline(time.Time{})
			c.data = true
			return nil
		}
	}
	_ = c.Close()
	if cerr := ctx.Err(); cerr != nil {
		if err == nil {
			return fmt.Errorf("pttls: negotiation: %w", cerr)
		}
		return fmt.Errorf("pttls: negotiation: %w (%w)", cerr, err)
	}
	var pe *Error
	if errors.As(err, &pe) {
		return err
	}
	return fmt.Errorf("pttls: negotiation: %w", err)
}

// Client runs the client side of PT-TLS negotiation over nc (typically a
// *tls.Conn; any net.Conn, e.g. a DTLS connection): the secure-channel
// handshake if nc has a HandshakeContext(ctx) error method, version
// negotiation, and SASL authentication if the server asks for it (RFC 6876
// §3.7, §3.8). All of it is bounded by cfg.HandshakeTimeout and ctx. On
// success the Conn is in the data transport phase; on failure nc is closed.
// A nil cfg means the defaults and no SASL mechanisms.
func Client(ctx context.Context, nc net.Conn, cfg *ClientConfig) (*Conn, error) {
	if cfg == nil {
		cfg = &ClientConfig{}
	}
	limit, err := cfg.check()
	if err != nil {
		_ = nc.Close()
		return nil, err
	}
	c := newConn(nc, limit, cfg.IdleTimeout)
	if err := c.negotiate(ctx, cfg.HandshakeTimeout, func() error { return c.clientNegotiate(cfg) }); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Conn) clientNegotiate(cfg *ClientConfig) error {
	req, _ := VersionRequest{Min: Version, Max: Version, Preferred: Version}.AppendBinary(nil)
	if err := c.writeMessage(TypeVersionRequest, req); err != nil {
		return err
	}
	m, raw, err := c.recv()
	if err != nil {
		return err
	}
	if m.Vendor != VendorIETF || m.Type != TypeVersionResponse {
		return c.unexpected(m, raw, "instead of a Version Response")
	}
	var resp VersionResponse
	if err := resp.UnmarshalBinary(m.Value); err != nil {
		return c.failWith(err, raw)
	}
	if resp.Version != Version {
		return c.fail(protoError(CodeVersionNotSupported, raw,
			fmt.Errorf("%w: server selected version %d", ErrVersion, resp.Version)))
	}
	for round := 0; ; round++ {
		m, raw, err := c.recv()
		if err != nil {
			return err
		}
		if m.Vendor != VendorIETF || m.Type != TypeSASLMechanisms {
			return c.unexpected(m, raw, "instead of SASL Mechanisms")
		}
		var offer SASLMechanisms
		if err := offer.UnmarshalBinary(m.Value); err != nil {
			return c.failWith(err, raw)
		}
		if len(offer.Names) == 0 {
			return nil // negotiation complete
		}
		if round == maxSASLRounds {
			return c.fail(protoError(CodeInvalidMessage, raw,
				fmt.Errorf("%w: more than %d SASL authentications requested", ErrUnexpected, maxSASLRounds)))
		}
		mech := pickMechanism(cfg.SASL, offer.Names)
		if mech == nil {
			return c.fail(protoError(CodeSASLMechanismError, raw,
				fmt.Errorf("%w: server offered %v", ErrNoSASLMechanism, offer.Names)))
		}
		if err := c.clientSASL(mech); err != nil {
			return err
		}
	}
}

// failWith sends a codec error (an *Error) with a copy of the message it
// is about, or closes for any other error.
func (c *Conn) failWith(err error, raw []byte) error {
	var pe *Error
	if errors.As(err, &pe) {
		return c.fail(protoError(pe.Code, raw, pe.err))
	}
	_ = c.Close()
	return err
}

func pickMechanism(mine []ClientMechanism, offered []string) ClientMechanism {
	for _, m := range mine {
		for _, name := range offered {
			if m.Name() == name {
				return m
			}
		}
	}
	return nil
}

// clientSASL runs one SASL authentication (RFC 6876 §3.8.1).
func (c *Conn) clientSASL(mech ClientMechanism) error {
	initial, err := mech.Start()
	if err != nil {
		return c.fail(protoError(CodeSASLMechanismError, nil, fmt.Errorf("SASL %s: %w", mech.Name(), err)))
	}
	sel, err := SASLMechanismSelection{Name: mech.Name(), Initial: initial}.AppendBinary(nil)
	if err != nil {
		_ = c.Close()
		return err
	}
	if err := c.writeMessage(TypeSASLMechanismSelection, sel); err != nil {
		return err
	}
	for step := 0; ; step++ {
		m, raw, err := c.recv()
		if err != nil {
			return err
		}
		if step == maxSASLSteps {
			return c.fail(protoError(CodeInvalidMessage, raw,
				fmt.Errorf("%w: SASL %s exceeds %d steps", ErrUnexpected, mech.Name(), maxSASLSteps)))
		}
		if m.Vendor != VendorIETF {
			return c.unexpected(m, raw, "during SASL")
		}
		switch m.Type {
		case TypeSASLAuthData:
			resp, err := mech.Next(m.Value)
			if err != nil {
				return c.fail(protoError(CodeSASLMechanismError, raw, fmt.Errorf("SASL %s: %w", mech.Name(), err)))
			}
			if err := c.writeMessage(TypeSASLAuthData, resp); err != nil {
				return err
			}
		case TypeSASLResult:
			var res SASLResult
			if err := res.UnmarshalBinary(m.Value); err != nil {
				return c.failWith(err, raw)
			}
			if res.Code != SASLSuccess {
				c.closeLinger()
				return fmt.Errorf("pttls: SASL %s: server says %v: %w", mech.Name(), res.Code, ErrSASLFailed)
			}
			if len(res.Data) > 0 {
				if _, err := mech.Next(res.Data); err != nil {
					return c.fail(protoError(CodeSASLMechanismError, raw,
						fmt.Errorf("SASL %s: additional data: %w", mech.Name(), err)))
				}
			}
			return nil
		default:
			return c.unexpected(m, raw, "during SASL")
		}
	}
}

// ServerHandshake runs the server side of PT-TLS negotiation over nc: the
// secure-channel handshake if nc has a HandshakeContext(ctx) error method,
// then version negotiation (a Version Request whose range excludes version 1
// is answered with Version Not Supported) and SASL client authentication as
// cfg asks (RFC 6876 §3.7, §3.8). All of it is bounded by
// cfg.HandshakeTimeout and ctx; ctx is also given to the SASL mechanisms. On
// success the Conn is in the data transport phase and Identity returns the
// SASL identity; on failure nc is closed. A nil cfg means the defaults and no
// client authentication.
func ServerHandshake(ctx context.Context, nc net.Conn, cfg *ServerConfig) (*Conn, error) {
	if cfg == nil {
		cfg = &ServerConfig{}
	}
	limit, err := cfg.check()
	if err != nil {
		_ = nc.Close()
		return nil, err
	}
	c := newConn(nc, limit, cfg.IdleTimeout)
	if err := c.negotiate(ctx, cfg.HandshakeTimeout, func() error { return c.serverNegotiate(ctx, cfg) }); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Conn) serverNegotiate(ctx context.Context, cfg *ServerConfig) error {
	m, raw, err := c.recv()
	if err != nil {
		return err
	}
	if m.Vendor != VendorIETF || m.Type != TypeVersionRequest {
		return c.unexpected(m, raw, "instead of a Version Request")
	}
	var req VersionRequest
	if err := req.UnmarshalBinary(m.Value); err != nil {
		return c.failWith(err, raw)
	}
	if !req.Includes(Version) {
		return c.fail(protoError(CodeVersionNotSupported, raw,
			fmt.Errorf("%w: client offers versions %d to %d", ErrVersion, req.Min, req.Max)))
	}
	resp, _ := VersionResponse{Version: Version}.AppendBinary(nil)
	if err := c.writeMessage(TypeVersionResponse, resp); err != nil {
		return err
	}
	if len(cfg.SASL) > 0 && (cfg.RequireSASL || !verifiedClientCert(c.nc)) {
		if err := c.serverSASL(ctx, cfg.SASL); err != nil {
			return err
		}
	}
	done, _ := SASLMechanisms{}.AppendBinary(nil)
	return c.writeMessage(TypeSASLMechanisms, done)
}

// verifiedClientCert reports whether nc is a TLS connection whose client
// presented a certificate that the server verified.
func verifiedClientCert(nc net.Conn) bool {
	cs, ok := nc.(interface{ ConnectionState() tls.ConnectionState })
	return ok && len(cs.ConnectionState().VerifiedChains) > 0
}

// serverSASL offers mechs and runs one SASL authentication (RFC 6876 §3.8.1).
// A failed authentication is answered with a SASL Result of Failure and
// closes the connection: this server offers no retries.
func (c *Conn) serverSASL(ctx context.Context, mechs []ServerMechanism) error {
	names := make([]string, len(mechs))
	for i, m := range mechs {
		names[i] = m.Name()
	}
	offer, err := SASLMechanisms{Names: names}.AppendBinary(nil)
	if err != nil {
		return err
	}
	if err := c.writeMessage(TypeSASLMechanisms, offer); err != nil {
		return err
	}
	m, raw, err := c.recv()
	if err != nil {
		return err
	}
	if m.Vendor != VendorIETF || m.Type != TypeSASLMechanismSelection {
		return c.unexpected(m, raw, "instead of a SASL Mechanism Selection")
	}
	var sel SASLMechanismSelection
	if err := sel.UnmarshalBinary(m.Value); err != nil {
		return c.failWith(err, raw)
	}
	var mech ServerMechanism
	for _, cand := range mechs {
		if cand.Name() == sel.Name {
			mech = cand
			break
		}
	}
	if mech == nil {
		return c.fail(protoError(CodeSASLMechanismError, raw,
			fmt.Errorf("%w: client selected %q, not offered", ErrNoSASLMechanism, sel.Name)))
	}
	session := mech.Start(ctx)
	response := sel.Initial
	for step := 0; ; step++ {
		challenge, done, identity, err := session.Next(response)
		switch {
		case err != nil:
			c.sendSASLResult(SASLResult{Code: SASLFailure})
			return fmt.Errorf("pttls: SASL %s: %w: %w", mech.Name(), ErrSASLFailed, err)
		case done:
			value, err := SASLResult{Code: SASLSuccess, Data: challenge}.AppendBinary(nil)
			if err != nil {
				c.sendSASLResult(SASLResult{Code: SASLMechanismFailure})
				return fmt.Errorf("pttls: SASL %s: %w: %w", mech.Name(), ErrSASLFailed, err)
			}
			if err := c.writeMessage(TypeSASLResult, value); err != nil {
				return err
			}
			c.identity = identity
			return nil
		case step == maxSASLSteps:
			c.sendSASLResult(SASLResult{Code: SASLAbort})
			return fmt.Errorf("pttls: SASL %s exceeds %d steps: %w", mech.Name(), maxSASLSteps, ErrSASLFailed)
		}
		if err := c.writeMessage(TypeSASLAuthData, challenge); err != nil {
			return err
		}
		m, raw, err := c.recv()
		if err != nil {
			return err
		}
		if m.Vendor != VendorIETF || m.Type != TypeSASLAuthData {
			return c.unexpected(m, raw, "during SASL")
		}
		response = m.Value
	}
}

// sendSASLResult sends a failing SASL Result and closes the connection.
func (c *Conn) sendSASLResult(r SASLResult) {
	if value, err := r.AppendBinary(nil); err == nil {
		_ = c.writeMessage(TypeSASLResult, value)
	}
	c.closeLinger()
}
