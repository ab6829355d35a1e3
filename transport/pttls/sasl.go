package pttls

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"unicode/utf8"
)

// ClientMechanism is the client side of a SASL mechanism (RFC 4422) used for
// PT-TLS client authentication (RFC 6876 §3.8).
type ClientMechanism interface {
	// Name returns the registered mechanism name, e.g. "PLAIN".
	Name() string
	// Start returns the initial response sent in the SASL Mechanism
	// Selection message; nil sends none.
	Start() ([]byte, error)
	// Next answers a server challenge (a SASL Authentication Data
	// message). It is also given the additional data of a successful SASL
	// Result, if any; its answer is then discarded.
	Next(challenge []byte) ([]byte, error)
}

// ServerMechanism is the server side of a SASL mechanism (RFC 4422).
type ServerMechanism interface {
	// Name returns the registered mechanism name, e.g. "PLAIN".
	Name() string
	// Start begins one authentication exchange for one connection. ctx
	// ends with the PT-TLS negotiation.
	Start(ctx context.Context) ServerSASLSession
}

// ServerSASLSession is one SASL authentication exchange on the server.
type ServerSASLSession interface {
	// Next consumes the client's response (the initial response from the
	// SASL Mechanism Selection, nil if there was none, then each SASL
	// Authentication Data message). It returns either a challenge to send
	// (done false), or done with the authenticated identity and optional
	// additional data for the SASL Result, or an error, which fails the
	// authentication.
	Next(response []byte) (challenge []byte, done bool, identity string, err error)
}

// maxPlainField is the longest authzid, authcid or password PLAIN carries
// (RFC 4616 §2: up to 255 octets each).
const maxPlainField = 255

// PlainClient is the client side of the SASL PLAIN mechanism (RFC 4616).
// Use it only inside TLS: the password travels in the clear within it.
type PlainClient struct {
	Authzid, Username, Password string
}

// Name returns "PLAIN".
func (p *PlainClient) Name() string { return "PLAIN" }

// message builds the PLAIN message: [authzid] NUL authcid NUL passwd.
func (p *PlainClient) message() ([]byte, error) {
	for _, f := range []string{p.Authzid, p.Username, p.Password} {
		if len(f) > maxPlainField || !utf8.ValidString(f) || bytes.IndexByte([]byte(f), 0) >= 0 {
			return nil, errors.New("pttls: PLAIN fields must be UTF-8 without NUL, at most 255 bytes each")
		}
	}
	if p.Username == "" || p.Password == "" {
		return nil, errors.New("pttls: PLAIN needs a username and a password")
	}
	msg := make([]byte, 0, len(p.Authzid)+len(p.Username)+len(p.Password)+2)
	msg = append(msg, p.Authzid...)
	msg = append(msg, 0)
	msg = append(msg, p.Username...)
	msg = append(msg, 0)
	return append(msg, p.Password...), nil
}

// Start returns the PLAIN message as the initial response.
func (p *PlainClient) Start() ([]byte, error) { return p.message() }

// Next answers an empty challenge with the PLAIN message (for a server that
// ignored the initial response) and refuses any other challenge; PLAIN has
// no additional success data.
func (p *PlainClient) Next(challenge []byte) ([]byte, error) {
	if len(challenge) != 0 {
		return nil, errors.New("pttls: PLAIN got a non-empty challenge")
	}
	return p.message()
}

// PlainServer is the server side of the SASL PLAIN mechanism (RFC 4616).
// Verify checks the credentials (in constant time) and returns the identity
// to record for the connection; an empty identity means the username. It
// must not log the password.
type PlainServer struct {
	Verify func(ctx context.Context, authzid, username, password string) (identity string, err error)
}

// Name returns "PLAIN".
func (p *PlainServer) Name() string { return "PLAIN" }

// Start begins one PLAIN exchange.
func (p *PlainServer) Start(ctx context.Context) ServerSASLSession {
	return &plainSession{ctx: ctx, verify: p.Verify}
}

type plainSession struct {
	ctx        context.Context
	verify     func(ctx context.Context, authzid, username, password string) (string, error)
	challenged bool
}

// Next implements ServerSASLSession for PLAIN.
func (s *plainSession) Next(response []byte) ([]byte, bool, string, error) {
	if len(response) == 0 {
		if s.challenged {
			return nil, false, "", errors.New("pttls: PLAIN: empty response")
		}
		// No initial response: ask for the message with an empty
		// challenge (RFC 4422 §4).
		s.challenged = true
		return []byte{}, false, "", nil
	}
	authzid, username, password, err := parsePlain(response)
	if err != nil {
		return nil, false, "", err
	}
	if s.verify == nil {
		return nil, false, "", errors.New("pttls: PLAIN: no Verify function")
	}
	id, err := s.verify(s.ctx, authzid, username, password)
	if err != nil {
		return nil, false, "", fmt.Errorf("pttls: PLAIN: %w", err)
	}
	if id == "" {
		id = username
	}
	return nil, true, id, nil
}

// parsePlain splits a PLAIN message (RFC 4616 §2).
func parsePlain(b []byte) (authzid, authcid, passwd string, err error) {
	first := bytes.IndexByte(b, 0)
	if first < 0 {
		return "", "", "", errors.New("pttls: PLAIN: malformed message")
	}
	second := bytes.IndexByte(b[first+1:], 0)
	if second < 0 {
		return "", "", "", errors.New("pttls: PLAIN: malformed message")
	}
	second += first + 1
	z, c, p := b[:first], b[first+1:second], b[second+1:]
	if len(c) == 0 || len(p) == 0 || len(z) > maxPlainField || len(c) > maxPlainField || len(p) > maxPlainField ||
		bytes.IndexByte(p, 0) >= 0 || !utf8.Valid(z) || !utf8.Valid(c) || !utf8.Valid(p) {
		return "", "", "", errors.New("pttls: PLAIN: malformed message")
	}
	return string(z), string(c), string(p), nil
}
