package ttls

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"unicode/utf8"

	"trustnac/transport/eap"
)

// Phase 2 limits.
const (
	// MaxUserName caps a User-Name, as RADIUS does (RFC 2865 §5.1).
	MaxUserName = 253
	// MaxPassword caps a PAP password; padded to a multiple of 16 (RFC 5281 §11.2.5) it takes
	// at most maxPasswordAVP bytes.
	MaxPassword    = 253
	maxPasswordAVP = 256
	// MaxEAPMessage caps an inner EAP packet carried in EAP-Message AVPs. RFC 5281 §11.2.1
	// puts the packet in one AVP; several are concatenated, as RADIUS does (RFC 3579 §3.1).
	MaxEAPMessage = 64 << 10
)

// encodePassword pads a PAP password with NULs to a multiple of 16 octets (RFC 5281 §11.2.5).
func encodePassword(pw string) ([]byte, error) {
	switch {
	case pw == "":
		return nil, errors.New("ttls: empty PAP password")
	case len(pw) > MaxPassword:
		return nil, fmt.Errorf("ttls: PAP password of %d bytes exceeds %d", len(pw), MaxPassword)
	case bytes.IndexByte([]byte(pw), 0) >= 0:
		return nil, errors.New("ttls: PAP password contains a NUL")
	}
	b := make([]byte, (len(pw)+15)/16*16)
	copy(b, pw)
	return b, nil
}

// decodePassword strips the NUL padding of a User-Password AVP (RFC 5281 §11.2.5).
func decodePassword(b []byte) (string, error) {
	if len(b) > maxPasswordAVP {
		return "", fmt.Errorf("%w: User-Password of %d bytes exceeds %d", ErrMalformed, len(b), maxPasswordAVP)
	}
	pw := bytes.TrimRight(b, "\x00")
	switch {
	case len(pw) == 0:
		return "", fmt.Errorf("%w: empty User-Password", ErrMalformed)
	case len(pw) > MaxPassword:
		return "", fmt.Errorf("%w: password of %d bytes exceeds %d", ErrMalformed, len(pw), MaxPassword)
	}
	return string(pw), nil
}

func checkUserName(b []byte) (string, error) {
	switch {
	case len(b) == 0:
		return "", fmt.Errorf("%w: empty User-Name", ErrMalformed)
	case len(b) > MaxUserName:
		return "", fmt.Errorf("%w: User-Name of %d bytes exceeds %d", ErrMalformed, len(b), MaxUserName)
	case !utf8.Valid(b) || bytes.IndexByte(b, 0) >= 0:
		return "", fmt.Errorf("%w: User-Name is not UTF-8 text", ErrMalformed)
	}
	return string(b), nil
}

// joinEAP concatenates the EAP-Message AVPs into one EAP packet.
func joinEAP(avps []AVP) (pkt []byte, ok bool, err error) {
	for _, a := range avps {
		if a.Code != AVPEAPMessage || a.Vendor != 0 {
			continue
		}
		if len(pkt)+len(a.Data) > MaxEAPMessage {
			return nil, false, fmt.Errorf("%w: EAP-Message AVPs exceed %d bytes", ErrTooLarge, MaxEAPMessage)
		}
		pkt, ok = append(pkt, a.Data...), true
	}
	return pkt, ok, nil
}

func eapMessage(p *eap.Packet) ([]AVP, error) {
	b, err := p.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("ttls: inner EAP: %w", err)
	}
	return []AVP{{Code: AVPEAPMessage, Mandatory: true, Data: b}}, nil
}

// PAPDone is an eap.ServerMethod marker that records a TTLS/PAP success (RFC 5281 §11.2.5):
// InnerServer passes it to eap.Server.Begin, so that the Selector sees it among the methods
// done. It is not a method: Type is 0, and Start and Process fail.
type PAPDone struct{ User string }

var errPAPDone = errors.New("ttls: PAPDone records a PAP success and cannot run")

// Type is 0: no EAP method.
func (PAPDone) Type() eap.Type { return 0 }

// Start fails: PAPDone is a marker.
func (PAPDone) Start(context.Context) ([]byte, error) { return nil, errPAPDone }

// Process fails: PAPDone is a marker.
func (PAPDone) Process(context.Context, []byte) (eap.Step, error) { return eap.Step{}, errPAPDone }

// InnerConfig configures the server's phase 2.
type InnerConfig struct {
	// PAP checks TTLS/PAP credentials (RFC 5281 §11.2.5); nil refuses PAP.
	PAP func(ctx context.Context, user, password string) bool
	// Selector picks the inner EAP methods (RFC 5281 §11.2.1). It is consulted when the peer
	// starts inner EAP with its identity, and after a PAP success through
	// eap.Server.Begin(ctx, user, 0, PAPDone{User: user}): returning (nil, true) there ends
	// phase 2 with success on the password alone. Nil: PAP alone, inner EAP refused.
	Selector eap.Selector
	// MaxRounds bounds the inner EAP conversation (eap.NewServer).
	MaxRounds int
}

// InnerServer is the server's phase 2 handler (a Phase2): TTLS/PAP and/or an inner EAP
// conversation run by an eap.Server, whose EAP packets travel in EAP-Message AVPs. The inner
// EAP-Success and EAP-Failure are not sent through the tunnel: they end phase 2 (Phase2Success,
// Phase2Failure) and the outer conversation carries the verdict.
type InnerServer struct {
	cfg   InnerConfig
	conv  *eap.Server
	user  string
	ended bool
}

// NewInnerServer returns the phase 2 handler of one conversation.
func NewInnerServer(cfg InnerConfig) *InnerServer { return &InnerServer{cfg: cfg} }

// EAP is the inner EAP conversation, nil if none happened.
func (s *InnerServer) EAP() *eap.Server { return s.conv }

// User is the user authenticated by PAP, or else the identity given in the inner EAP
// conversation; "" before either.
func (s *InnerServer) User() string {
	if s.user != "" || s.conv == nil {
		return s.user
	}
	return s.conv.Identity()
}

func serverKnows(code, vendor uint32) bool {
	return vendor == 0 && (code == AVPUserName || code == AVPUserPassword || code == AVPEAPMessage)
}

// Process implements Phase2.
func (s *InnerServer) Process(ctx context.Context, avps []AVP) ([]AVP, Phase2Status, error) {
	if s.ended {
		return nil, Phase2Failure, fmt.Errorf("%w: AVPs after phase 2 ended", ErrPhase2)
	}
	reply, st, err := s.process(ctx, avps)
	if err != nil || st != Phase2Continue {
		s.ended = true
	}
	if err != nil {
		st = Phase2Failure
	}
	return reply, st, err
}

func (s *InnerServer) process(ctx context.Context, avps []AVP) ([]AVP, Phase2Status, error) {
	if err := CheckMandatory(avps, serverKnows); err != nil {
		return nil, Phase2Failure, err
	}
	pkt, hasEAP, err := joinEAP(avps)
	if err != nil {
		return nil, Phase2Failure, err
	}
	_, hasPassword := findAVP(avps, AVPUserPassword, 0)
	if hasPassword && (hasEAP || s.conv != nil) {
		return nil, Phase2Failure, fmt.Errorf("%w: User-Password alongside inner EAP", ErrPhase2)
	}
	switch {
	case s.conv != nil:
		if !hasEAP {
			return nil, Phase2Failure, fmt.Errorf("%w: no EAP-Message during inner EAP", ErrPhase2)
		}
		return s.innerEAP(ctx, pkt)
	case hasPassword:
		return s.pap(ctx, avps)
	case hasEAP:
		if s.cfg.Selector == nil {
			return nil, Phase2Failure, fmt.Errorf("%w: inner EAP is not accepted", ErrPhase2)
		}
		s.conv = eap.NewServer(s.cfg.Selector, s.cfg.MaxRounds)
		return s.innerEAP(ctx, pkt)
	}
	return nil, Phase2Failure, fmt.Errorf("%w: neither User-Password nor EAP-Message", ErrPhase2)
}

// pap checks TTLS/PAP credentials (RFC 5281 §11.2.5) and, on success, lets the Selector decide
// whether inner EAP methods follow.
func (s *InnerServer) pap(ctx context.Context, avps []AVP) ([]AVP, Phase2Status, error) {
	name, ok := findAVP(avps, AVPUserName, 0)
	if !ok {
		return nil, Phase2Failure, fmt.Errorf("%w: User-Password without User-Name", ErrPhase2)
	}
	user, err := checkUserName(name.Data)
	if err != nil {
		return nil, Phase2Failure, err
	}
	pw, _ := findAVP(avps, AVPUserPassword, 0)
	password, err := decodePassword(pw.Data)
	if err != nil {
		return nil, Phase2Failure, err
	}
	if s.cfg.PAP == nil {
		return nil, Phase2Failure, fmt.Errorf("%w: PAP is not accepted", ErrPhase2)
	}
	if !s.cfg.PAP(ctx, user, password) {
		return nil, Phase2Failure, nil
	}
	s.user = user
	if s.cfg.Selector == nil {
		return nil, Phase2Success, nil
	}
	s.conv = eap.NewServer(s.cfg.Selector, s.cfg.MaxRounds)
	first, err := s.conv.Begin(ctx, user, 0, PAPDone{User: user})
	if err != nil {
		return nil, Phase2Failure, fmt.Errorf("ttls: inner EAP: %w", err)
	}
	return s.answer(first)
}

func (s *InnerServer) innerEAP(ctx context.Context, raw []byte) ([]AVP, Phase2Status, error) {
	p, err := eap.Parse(raw)
	if err != nil {
		return nil, Phase2Failure, fmt.Errorf("%w: inner EAP: %w", ErrMalformed, err)
	}
	out, err := s.conv.Handle(ctx, p)
	if err != nil {
		// A packet to discard: the tunnel neither loses nor repeats packets, so it is an error.
		return nil, Phase2Failure, fmt.Errorf("%w: inner EAP: %w", ErrPhase2, err)
	}
	return s.answer(out)
}

// answer maps the inner conversation's next packet to the phase 2 outcome.
func (s *InnerServer) answer(p *eap.Packet) ([]AVP, Phase2Status, error) {
	switch p.Code {
	case eap.CodeSuccess:
		return nil, Phase2Success, nil
	case eap.CodeFailure:
		return nil, Phase2Failure, nil
	}
	avps, err := eapMessage(p)
	if err != nil {
		return nil, Phase2Failure, err
	}
	return avps, Phase2Continue, nil
}

var _ Phase2 = (*InnerServer)(nil)

// InnerPeer is the peer's phase 2 handler (a PeerPhase2): TTLS/PAP credentials and/or an inner
// EAP conversation run by an eap.Peer.
type InnerPeer struct {
	user, password string
	eap            *eap.Peer
	credsSent      bool
	eapStarted     bool
}

// NewInnerPeer returns the phase 2 handler of one conversation. With a password it starts with
// User-Name and User-Password (PAP, RFC 5281 §11.2.5), and then answers any inner EAP the server
// starts through eapPeer. Without one ("") it starts inner EAP with an EAP-Response/Identity of
// eapPeer's identity, as if answering an Identity Request with Identifier 0 (the implicit
// identity request wpa_supplicant uses, RFC 5281 §11.2.1). eapPeer may be nil when no inner EAP
// is expected.
func NewInnerPeer(user, password string, eapPeer *eap.Peer) *InnerPeer {
	return &InnerPeer{user: user, password: password, eap: eapPeer}
}

// Start implements PeerPhase2.
func (p *InnerPeer) Start() ([]AVP, error) {
	if p.password != "" {
		if _, err := checkUserName([]byte(p.user)); err != nil {
			return nil, err
		}
		pw, err := encodePassword(p.password)
		if err != nil {
			return nil, err
		}
		p.credsSent = true
		return []AVP{
			{Code: AVPUserName, Mandatory: true, Data: []byte(p.user)},
			{Code: AVPUserPassword, Mandatory: true, Data: pw},
		}, nil
	}
	if p.eap == nil {
		return nil, errors.New("ttls: inner peer with neither a password nor an EAP peer")
	}
	resp, err := p.eap.Handle(context.Background(), &eap.Packet{Code: eap.CodeRequest, ID: 0, Type: eap.TypeIdentity})
	if err != nil {
		return nil, fmt.Errorf("ttls: inner EAP identity: %w", err)
	}
	if resp == nil {
		return nil, errors.New("ttls: inner EAP peer gave no identity")
	}
	p.eapStarted = true
	return eapMessage(resp)
}

func peerKnows(code, vendor uint32) bool {
	return vendor == 0 && (code == AVPEAPMessage || code == AVPReplyMessage)
}

// Process implements PeerPhase2: EAP-Message AVPs go through the inner eap.Peer; a message
// without one (a Reply-Message, say) gets no answer.
func (p *InnerPeer) Process(ctx context.Context, avps []AVP) ([]AVP, error) {
	if err := CheckMandatory(avps, peerKnows); err != nil {
		return nil, err
	}
	raw, ok, err := joinEAP(avps)
	if err != nil || !ok {
		return nil, err
	}
	if p.eap == nil {
		return nil, fmt.Errorf("%w: the server started inner EAP and this peer has none", ErrPhase2)
	}
	req, err := eap.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: inner EAP: %w", ErrMalformed, err)
	}
	resp, err := p.eap.Handle(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("ttls: inner EAP: %w", err)
	}
	if resp == nil {
		return nil, nil
	}
	p.eapStarted = true
	return eapMessage(resp)
}

// Succeeded implements PeerPhase2. After PAP: the credentials went out and whatever inner EAP
// method the server ran last succeeded (none ran: true). After inner EAP alone: the last inner
// method succeeded. Never after the inner EAP conversation failed.
func (p *InnerPeer) Succeeded() bool {
	if p.eap != nil && p.eap.Outcome() == eap.Failed {
		return false
	}
	var m eap.PeerMethod
	if p.eap != nil {
		m = p.eap.Method()
	}
	switch {
	case p.credsSent:
		return m == nil || m.Succeeded()
	case p.eapStarted:
		return m != nil && m.Succeeded()
	}
	return false
}

var _ PeerPhase2 = (*InnerPeer)(nil)
