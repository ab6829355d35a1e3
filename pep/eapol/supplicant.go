package eapol

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"trustnac/transport/eap"
)

// Supplicant PAE timer defaults (IEEE 802.1X-2010 §8.2: startPeriod, heldPeriod, authPeriod;
// §8.2.9: maxStart).
const (
	DefaultStartPeriod = 30 * time.Second
	DefaultMaxStart    = 3
	DefaultHeldPeriod  = 60 * time.Second
	DefaultAuthPeriod  = 30 * time.Second
)

// ErrNoAuthenticator is returned by Supplicant.Run when MaxStart EAPOL-Starts went unanswered:
// the port has no 802.1X authenticator (IEEE 802.1X-2010 §8.2.11 treats the port as
// authorized then); the agent falls back to posture over IP.
var ErrNoAuthenticator = errors.New("eapol: no authenticator answered EAPOL-Start")

// Supplicant is the supplicant PAE of one port (IEEE 802.1X-2010 §8, §12): it asks for
// authentication with EAPOL-Start, answers the authenticator's EAP Requests through an eap.Peer,
// and follows the supplicant timers: Start again every StartPeriod up to MaxStart, HELD for
// HeldPeriod after a Failure, back to Start when the authenticator goes silent for AuthPeriod.
// A new EAP-Request/Identity (re-authentication, or an authenticator that restarted) begins a
// conversation with a fresh Peer from NewPeer. Set the fields, then call Run once.
type Supplicant struct {
	Conn FrameConn
	// NewPeer returns the EAP peer of one conversation.
	NewPeer     func() *eap.Peer
	StartPeriod time.Duration
	MaxStart    int
	HeldPeriod  time.Duration
	AuthPeriod  time.Duration
	// Version is the EAPOL protocol version sent (default DefaultVersion).
	Version uint8
	// Once makes Run return after the first conversation that ends (Succeeded or Failed),
	// leaving the port as it is (no Logoff).
	Once   bool
	Logger *slog.Logger
	// OnOutcome is called when a conversation ends, with the authenticator's address.
	OnOutcome func(o eap.Outcome, authenticator net.HardwareAddr)
	// Restart, when it delivers, makes the supplicant start over at once from CONNECTING
	// (IEEE 802.1X-2010 §8.2.11: an EAPOL-Start now, the held period cut short), as a user or
	// an administrator asking for re-authentication does. Nil never restarts.
	Restart <-chan struct{}
}

type suppState uint8

const (
	spConnecting suppState = iota
	spAuthenticating
	spAuthenticated
	spHeld
)

// Run runs the supplicant until ctx ends, then sends EAPOL-Logoff and returns the outcome of the
// last conversation with ctx's error. It returns earlier with ErrNoAuthenticator (see there),
// with the error of a failing port, or, with Once, after the first outcome.
func (s *Supplicant) Run(ctx context.Context) (eap.Outcome, error) {
	if s.Conn == nil || s.NewPeer == nil {
		return eap.Pending, errors.New("eapol: Supplicant needs a Conn and NewPeer")
	}
	startPeriod := cmpOr(s.StartPeriod, DefaultStartPeriod)
	heldPeriod := cmpOr(s.HeldPeriod, DefaultHeldPeriod)
	authPeriod := cmpOr(s.AuthPeriod, DefaultAuthPeriod)
	maxStart := cmpOr(s.MaxStart, DefaultMaxStart)
	version := cmpOr(s.Version, DefaultVersion)
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	rx := make(chan rxFrame)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			src, f, err := s.Conn.ReadFrom(rctx)
			select {
			case rx <- rxFrame{src, f, err}:
			case <-rctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()

	var (
		st        = spConnecting
		starts    int
		auth      net.HardwareAddr // the authenticator, once it spoke
		peer      *eap.Peer
		lastIdent *eap.Packet
		outcome   = eap.Pending
		timer     = time.NewTimer(0)
	)
	defer timer.Stop()
	// Every frame goes to the PAE group address (IEEE 802.1X-2010 §11.1.1),
	// also once the authenticator is known: a Linux bridge delivers that
	// link-local address to the authenticator's socket even on a locked
	// port, where a frame to the port's own address from a MAC the bridge
	// does not know yet is dropped before the socket sees it.
	send := func(f *Frame) {
		if err := s.Conn.WriteTo(PAEGroupAddr, f); err != nil {
			log.Warn("eapol: supplicant send", "err", err)
		}
	}
	for {
		select {
		case <-ctx.Done():
			if starts > 0 || auth != nil {
				send(&Frame{Version: version, Type: TypeLogoff})
			}
			return outcome, ctx.Err()
		case <-s.Restart:
			log.Info("eapol: re-authentication asked for")
			st, starts, auth, peer, lastIdent = spConnecting, 0, nil, nil, nil
			timer.Reset(0)
		case <-timer.C:
			switch st {
			case spConnecting:
				if starts >= maxStart {
					return outcome, ErrNoAuthenticator
				}
				starts++
				send(&Frame{Version: version, Type: TypeStart})
				timer.Reset(startPeriod)
			case spAuthenticating, spHeld:
				if st == spAuthenticating {
					log.Info("eapol: authenticator went silent", "authenticator", auth.String())
				}
				st, starts, auth, peer, lastIdent = spConnecting, 0, nil, nil, nil
				timer.Reset(0)
			}
		case m := <-rx:
			if m.err != nil {
				if ctx.Err() != nil {
					continue // the Logoff case runs next
				}
				return outcome, m.err
			}
			if m.f.Type != TypeEAPPacket {
				continue // Starts and Logoffs of other supplicants on the segment, Key frames
			}
			p, err := m.f.EAP()
			if err != nil {
				continue
			}
			known := auth != nil && bytes.Equal(m.src, auth)
			switch {
			case p.Code == eap.CodeRequest && p.Type == eap.TypeIdentity:
				if !known && (st == spAuthenticating || st == spAuthenticated) {
					continue // another authenticator on a conversation's segment
				}
				retrans := st == spAuthenticating && lastIdent != nil && lastIdent.ID == p.ID && slices.Equal(lastIdent.Data, p.Data)
				if !retrans {
					peer, st, lastIdent = s.NewPeer(), spAuthenticating, p
					auth = append(net.HardwareAddr(nil), m.src...)
				}
			case st != spAuthenticating || !known:
				continue // nothing outstanding from this authenticator
			}
			resp, err := peer.Handle(ctx, p)
			if err != nil {
				log.Debug("eapol: EAP packet ignored", "err", err)
			}
			if resp != nil {
				f, err := NewEAPFrame(version, resp)
				if err != nil {
					log.Warn("eapol: supplicant", "err", fmt.Errorf("encode response: %w", err))
					continue
				}
				send(f)
				timer.Reset(authPeriod)
			}
			switch peer.Outcome() {
			case eap.Succeeded:
				st, outcome = spAuthenticated, eap.Succeeded
				timer.Stop()
				log.Info("eapol: authenticated", "authenticator", auth.String())
			case eap.Failed:
				st, outcome = spHeld, eap.Failed
				timer.Reset(heldPeriod)
				log.Info("eapol: authentication failed", "authenticator", auth.String(), "err", peer.Err())
			default:
				continue
			}
			if s.OnOutcome != nil {
				s.OnOutcome(outcome, auth)
			}
			if s.Once {
				return outcome, nil
			}
		}
	}
}

func cmpOr[T int | uint8 | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}
