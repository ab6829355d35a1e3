package mschapv2

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"

	"trustnac/transport/eap"
)

// Errors callers test with errors.Is.
var (
	// ErrAuthFailed: the user is unknown or the password wrong (the server
	// cannot tell them apart to the peer, and does not to its caller), or
	// the server reported a failure to the peer.
	ErrAuthFailed = errors.New("mschapv2: authentication failed")
	// ErrAuthenticator: the server's authenticator response (S=) is wrong:
	// it does not know the password hash.
	ErrAuthenticator = errors.New("mschapv2: server failed to prove knowledge of the password hash")
	// ErrProtocol: a packet out of sequence or with a mismatched
	// MS-CHAPv2-ID.
	ErrProtocol = errors.New("mschapv2: protocol violation")
)

// Messages sent in Success and Failure Requests.
const (
	successText = "Authentication succeeded"
	failureText = "Authentication failed"
)

// ServerConfig configures a Server.
type ServerConfig struct {
	// Name is the authenticator's name sent in the Challenge.
	Name string
	// Lookup returns the NT hash (NTHash) of the user's password. ok false,
	// or a hash that is not 16 octets, fails the authentication exactly as
	// a wrong password does.
	Lookup func(ctx context.Context, user string) (ntHash []byte, ok bool)
	// Rand supplies the challenges; nil means crypto/rand.
	Rand io.Reader
}

type serverState uint8

const (
	srvInit serverState = iota
	srvChallenged
	srvSucceeded // Success Request sent
	srvFailed    // Failure Request sent
	srvDone
)

// dummyHash stands in for the hash of unknown users so that they cost what a
// wrong password costs.
var dummyHash = [16]byte{0x5a, 0x1f, 0x3c, 0x77, 0x02, 0xe9, 0x48, 0xb1, 0x90, 0x6d, 0xc4, 0x2b, 0xf8, 0x13, 0xa6, 0x5e}

// Server is the EAP server side of EAP-MSCHAPv2, one eap.ServerMethod per
// conversation. It sends a Challenge, checks the peer's NT-Response against
// the looked-up NT hash, then sends a Success Request with the
// authenticator response, and succeeds once the peer acknowledged it
// (draft-kamath-pppext-eap-mschapv2 §2). On a wrong response it sends a
// Failure Request (E=691, R=0) and fails after the peer's Failure Response.
// It is not safe for concurrent use.
type Server struct {
	cfg       ServerConfig
	state     serverState
	id        uint8
	challenge [16]byte
	name      string // the peer's Name from its Response
	user      string // set on success
}

var _ eap.ServerMethod = (*Server)(nil)

// NewServer returns the server method for one conversation.
func NewServer(cfg ServerConfig) *Server {
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	return &Server{cfg: cfg}
}

// Type is eap.TypeMSCHAPv2.
func (s *Server) Type() eap.Type { return eap.TypeMSCHAPv2 }

// User is the authenticated user name (the Name of the peer's Response),
// "" unless the method succeeded.
func (s *Server) User() string { return s.user }

// Start returns the Challenge (draft-kamath-pppext-eap-mschapv2 §2.1).
func (s *Server) Start(context.Context) ([]byte, error) {
	if s.state != srvInit {
		return nil, fmt.Errorf("%w: Start called twice", ErrProtocol)
	}
	var r [17]byte
	if _, err := io.ReadFull(s.cfg.Rand, r[:]); err != nil {
		return nil, fmt.Errorf("mschapv2: challenge: %w", err)
	}
	copy(s.challenge[:], r[:16])
	s.id = r[16]
	s.state = srvChallenged
	p := Packet{OpCode: OpChallenge, ID: s.id, Value: s.challenge[:], Name: s.cfg.Name}
	return p.MarshalBinary()
}

// Process handles the peer's Response, Success Response or Failure
// Response.
func (s *Server) Process(ctx context.Context, data []byte) (eap.Step, error) {
	var p Packet
	if err := p.UnmarshalBinary(data); err != nil {
		s.state = srvDone
		return eap.Step{}, err
	}
	switch s.state {
	case srvChallenged:
		return s.response(ctx, &p)
	case srvSucceeded:
		s.state = srvDone
		if p.OpCode == OpSuccess && p.Short {
			s.user = s.name
			return eap.Step{Done: true, Success: true}, nil
		}
		return eap.Step{}, fmt.Errorf("%w: %v instead of the Success Response", ErrProtocol, p.OpCode)
	case srvFailed:
		s.state = srvDone
		if p.OpCode == OpFailure && p.Short {
			return eap.Step{}, ErrAuthFailed
		}
		return eap.Step{}, fmt.Errorf("%w (then %v instead of the Failure Response)", ErrAuthFailed, p.OpCode)
	}
	return eap.Step{}, fmt.Errorf("%w: Response outside the exchange", ErrProtocol)
}

// response checks the peer's Response (RFC 2759 §8.1) and answers with a
// Success Request (§5) or a Failure Request (§6).
func (s *Server) response(ctx context.Context, p *Packet) (eap.Step, error) {
	if p.OpCode != OpResponse || p.Short {
		s.state = srvDone
		return eap.Step{}, fmt.Errorf("%w: %v instead of a Response", ErrProtocol, p.OpCode)
	}
	if p.ID != s.id {
		s.state = srvDone
		return eap.Step{}, fmt.Errorf("%w: MS-CHAPv2-ID %d, challenge had %d", ErrProtocol, p.ID, s.id)
	}
	var rv ResponseValue
	if err := rv.UnmarshalBinary(p.Value); err != nil {
		s.state = srvDone
		return eap.Step{}, err
	}
	s.name = p.Name
	hash, found := dummyHash, 0
	if s.cfg.Lookup != nil {
		if h, ok := s.cfg.Lookup(ctx, p.Name); ok && len(h) == len(hash) {
			copy(hash[:], h)
			found = 1
		}
	}
	want := GenerateNTResponse(s.challenge, rv.PeerChallenge, p.Name, hash)
	auth := AuthenticatorResponse(hash, want, rv.PeerChallenge, s.challenge, p.Name)
	if subtle.ConstantTimeCompare(want[:], rv.NTResponse[:])&found == 1 {
		s.state = srvSucceeded
		out := Packet{OpCode: OpSuccess, ID: s.id, Message: FormatSuccess(auth, successText)}
		d, err := out.MarshalBinary()
		return eap.Step{Data: d}, err
	}
	s.state = srvFailed
	var c [16]byte
	if _, err := io.ReadFull(s.cfg.Rand, c[:]); err != nil {
		return eap.Step{}, fmt.Errorf("mschapv2: challenge: %w", err)
	}
	f := Failure{Code: ErrorAuthenticationFailed, Challenge: c[:], Version: 3, Message: failureText}
	out := Packet{OpCode: OpFailure, ID: s.id, Message: f.String()}
	d, err := out.MarshalBinary()
	return eap.Step{Data: d}, err
}
