package eapol

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"trustnac/transport/eap"
)

// Backend is the authentication server behind a pass-through authenticator (IEEE 802.1X-2010
// §8.1, the backend authentication state machine's AAA side). The PEP implements it with RADIUS.
type Backend interface {
	// Relay forwards an EAP Response from mac and returns what the server answered: the next EAP
	// packet to send to the supplicant (Request, Success or Failure), and on Success/Failure the
	// final Result (Accept with attributes, or Reject). state carries RADIUS State between calls.
	Relay(ctx context.Context, mac net.HardwareAddr, eapResp []byte, state []byte) (eapOut []byte, newState []byte, res *Result, err error)
}

// Result is the backend's decision on one supplicant.
type Result struct {
	Accept         bool
	Role           string        // the role to enforce (RADIUS Filter-Id)
	VLAN           int           // the VLAN to put the port in, 0 for none (Tunnel-Private-Group-Id)
	SessionTimeout time.Duration // re-authenticate after this when ReauthFromSessionTimeout (Session-Timeout)
	// Class holds the Class attributes of the Access-Accept (RFC 2865 §5.25), echoed in
	// accounting.
	Class [][]byte
	// User is the identity the supplicant gave (EAP-Response/Identity, RFC 3748 §5.1) or the
	// User-Name the server returned.
	User string
	// Err is set, with Accept false, when the Backend failed (server unreachable, bad answer)
	// rather than rejected: the caller may keep an existing binding until it expires.
	Err error
}

// Authenticator defaults (IEEE 802.1X-2010 §8.2: txPeriod, quietPeriod; §8.2.9: maxReq).
const (
	DefaultTxPeriod      = 30 * time.Second
	DefaultQuietPeriod   = 60 * time.Second
	DefaultMaxReq        = 2
	DefaultServerTimeout = 30 * time.Second
	DefaultMaxSessions   = 1024
)

// Authenticator is the authenticator PAE of one port (IEEE 802.1X-2010 §8, §12), a pass-through
// relay: it answers EAPOL-Start with an EAP-Request/Identity, relays each EAP-Response to the
// Backend and what the Backend answers back to the supplicant, and reports the Backend's final
// Result. It keeps one session per supplicant MAC, so a shared segment behind one port works.
// Set the fields, then call Run once.
type Authenticator struct {
	Conn    FrameConn
	Port    string // the port's name, for logs
	Backend Backend
	// TxPeriod is the wait for a Response before the last Request is sent again.
	TxPeriod time.Duration
	// QuietPeriod is how long Starts from a MAC are ignored after its authentication failed.
	QuietPeriod time.Duration
	// ReauthFromSessionTimeout re-authenticates an accepted supplicant when its Result's
	// SessionTimeout expires (a new EAP-Request/Identity), keeping the port open meanwhile.
	ReauthFromSessionTimeout bool
	// MaxReq is how many times a Request is sent again before the session is abandoned.
	MaxReq int
	// ServerTimeout bounds one Backend.Relay call (default DefaultServerTimeout).
	ServerTimeout time.Duration
	// MaxSessions caps the supplicants tracked on the port (default DefaultMaxSessions).
	MaxSessions int
	// Version is the EAPOL protocol version sent (default DefaultVersion).
	Version uint8
	Logger  *slog.Logger

	// OnResult is called with every final Result: Accept or Reject from the Backend, and a
	// Reject when an accepted supplicant stops answering re-authentication. Called from Run's
	// goroutine; it must not block for long.
	OnResult func(mac net.HardwareAddr, r *Result)
	// OnLogoff is called when a supplicant sends EAPOL-Logoff.
	OnLogoff func(mac net.HardwareAddr)
	// OnStart is called when a supplicant's EAPOL-Start is acted on (it speaks 802.1X), before
	// the EAP-Request/Identity goes out; the PEP cancels a pending MAB for the MAC.
	OnStart func(mac net.HardwareAddr)

	cmdOnce sync.Once
	cmds    chan func(*authRun)
	runMu   sync.Mutex
	stopped chan struct{} // closed when the current Run returns

	starts, logoffs, responses, dropped, accepts, rejects, timeouts, backendErrs atomic.Uint64
}

// AuthenticatorStats counts an Authenticator's events.
type AuthenticatorStats struct {
	Starts        uint64 // EAPOL-Starts acted on
	Logoffs       uint64 // EAPOL-Logoffs
	Responses     uint64 // EAP Responses relayed to the Backend
	Dropped       uint64 // frames ignored: wrong type, wrong Identifier, quiet period, session cap
	Accepts       uint64
	Rejects       uint64
	Timeouts      uint64 // sessions abandoned after MaxReq retransmissions
	BackendErrors uint64 // Relay calls that failed
}

// Stats returns the counters.
func (a *Authenticator) Stats() AuthenticatorStats {
	return AuthenticatorStats{
		Starts: a.starts.Load(), Logoffs: a.logoffs.Load(), Responses: a.responses.Load(),
		Dropped: a.dropped.Load(), Accepts: a.accepts.Load(), Rejects: a.rejects.Load(),
		Timeouts: a.timeouts.Load(), BackendErrors: a.backendErrs.Load(),
	}
}

type authState uint8

const (
	stAuthenticating authState = iota // a Request is outstanding or a Relay in flight
	stAuthenticated
	stHeld // failed: quiet period
)

type session struct {
	mac        net.HardwareAddr
	state      authState
	authorized bool // the last Result was an Accept
	id         uint8
	lastReq    *eap.Packet
	reqCount   int
	radState   []byte
	busy       bool
	gen        uint64 // bumped when a conversation restarts; stale relay answers are dropped
	timer      *time.Timer
	timerGen   uint64
	heldUntil  time.Time
}

type rxFrame struct {
	src net.HardwareAddr
	f   *Frame
	err error
}

type relayDone struct {
	key           [6]byte
	gen           uint64
	out, newState []byte
	res           *Result
	err           error
}

type timerFired struct {
	key [6]byte
	gen uint64
}

type authRun struct {
	*Authenticator
	ctx      context.Context
	sessions map[[6]byte]*session
	relays   chan relayDone
	timers   chan timerFired
	timerSeq uint64
	wg       sync.WaitGroup
}

func (a *Authenticator) defaults() {
	if a.TxPeriod <= 0 {
		a.TxPeriod = DefaultTxPeriod
	}
	if a.QuietPeriod <= 0 {
		a.QuietPeriod = DefaultQuietPeriod
	}
	if a.MaxReq <= 0 {
		a.MaxReq = DefaultMaxReq
	}
	if a.ServerTimeout <= 0 {
		a.ServerTimeout = DefaultServerTimeout
	}
	if a.MaxSessions <= 0 {
		a.MaxSessions = DefaultMaxSessions
	}
	if a.Version == 0 {
		a.Version = DefaultVersion
	}
	if a.Logger == nil {
		a.Logger = slog.New(slog.DiscardHandler)
	}
}

// Run serves the port until ctx ends (returning nil) or reading the port fails.
func (a *Authenticator) Run(ctx context.Context) error {
	if a.Conn == nil || a.Backend == nil {
		return errors.New("eapol: Authenticator needs a Conn and a Backend")
	}
	a.defaults()
	cmds := a.commands()
	a.runMu.Lock()
	stopped := make(chan struct{})
	a.stopped = stopped
	a.runMu.Unlock()
	defer close(stopped)
	ctx, cancel := context.WithCancel(ctx)
	r := &authRun{
		Authenticator: a, ctx: ctx,
		sessions: make(map[[6]byte]*session),
		relays:   make(chan relayDone),
		timers:   make(chan timerFired),
	}
	rx := make(chan rxFrame)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			src, f, err := a.Conn.ReadFrom(ctx)
			select {
			case rx <- rxFrame{src, f, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	defer func() {
		cancel()
		for _, s := range r.sessions {
			r.stopTimer(s)
		}
		r.wg.Wait()
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-rx:
			if m.err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return m.err
			}
			r.frame(m.src, m.f)
		case d := <-r.relays:
			r.relayed(d)
		case t := <-r.timers:
			r.fired(t)
		case f := <-cmds:
			f(r)
		}
	}
}

func key(mac net.HardwareAddr) (k [6]byte) { copy(k[:], mac); return k }

func (r *authRun) log(s *session, msg string, args ...any) {
	r.Logger.LogAttrs(r.ctx, slog.LevelInfo, msg, append([]slog.Attr{slog.String("port", r.Port), slog.String("mac", s.mac.String())}, attrs(args)...)...)
}

func attrs(args []any) []slog.Attr {
	var out []slog.Attr
	for i := 0; i+1 < len(args); i += 2 {
		if k, ok := args[i].(string); ok {
			out = append(out, slog.Any(k, args[i+1]))
		}
	}
	return out
}

func (r *authRun) frame(src net.HardwareAddr, f *Frame) {
	if len(src) != 6 || src[0]&1 != 0 {
		r.dropped.Add(1) // a group source address is never a supplicant
		return
	}
	k := key(src)
	s := r.sessions[k]
	switch f.Type {
	case TypeStart:
		if s == nil {
			if len(r.sessions) >= r.MaxSessions {
				r.dropped.Add(1)
				return
			}
			s = &session{mac: append(net.HardwareAddr(nil), src...), id: uint8(rand.Uint32())}
			r.sessions[k] = s
		}
		if s.state == stHeld && time.Now().Before(s.heldUntil) {
			r.dropped.Add(1)
			return
		}
		r.starts.Add(1)
		if r.OnStart != nil {
			r.OnStart(append(net.HardwareAddr(nil), src...))
		}
		r.restart(s)
	case TypeLogoff:
		r.logoffs.Add(1)
		if s != nil && s.state != stHeld { // a held MAC stays held: Logoff does not end the quiet period
			r.stopTimer(s)
			delete(r.sessions, k)
			r.log(s, "eapol: logoff")
		}
		if r.OnLogoff != nil {
			r.OnLogoff(append(net.HardwareAddr(nil), src...))
		}
	case TypeEAPPacket:
		p, err := f.EAP()
		if err != nil || s == nil || s.state != stAuthenticating || s.busy || p.Code != eap.CodeResponse || p.ID != s.id {
			r.dropped.Add(1)
			return
		}
		raw, err := p.MarshalBinary()
		if err != nil {
			r.dropped.Add(1)
			return
		}
		r.stopTimer(s)
		s.busy = true
		r.responses.Add(1)
		d := relayDone{key: k, gen: s.gen}
		mac, state := s.mac, s.radState
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			ctx, cancel := context.WithTimeout(r.ctx, r.ServerTimeout)
			d.out, d.newState, d.res, d.err = r.Backend.Relay(ctx, mac, raw, state)
			cancel()
			select {
			case r.relays <- d:
			case <-r.ctx.Done():
			}
		}()
	default:
		r.dropped.Add(1) // EAPOL-Key, MKA, announcements: not for a wired pass-through PAE
	}
}

// restart opens a new conversation with an EAP-Request/Identity (§8.2.4, §12.5).
func (r *authRun) restart(s *session) {
	r.stopTimer(s)
	s.gen++
	s.busy = false
	s.state = stAuthenticating
	s.radState = nil
	s.id++
	r.request(s, &eap.Packet{Code: eap.CodeRequest, ID: s.id, Type: eap.TypeIdentity})
}

func (r *authRun) request(s *session, p *eap.Packet) {
	s.id, s.lastReq, s.reqCount = p.ID, p, 0
	r.send(s, p)
	r.startTimer(s, r.TxPeriod)
}

func (r *authRun) send(s *session, p *eap.Packet) {
	f, err := NewEAPFrame(r.Version, p)
	if err == nil {
		err = r.Conn.WriteTo(s.mac, f)
	}
	if err != nil {
		r.Logger.Warn("eapol: send", "port", r.Port, "mac", s.mac.String(), "err", err)
	}
}

func (r *authRun) startTimer(s *session, d time.Duration) {
	r.stopTimer(s)
	r.timerSeq++
	s.timerGen = r.timerSeq
	t := timerFired{key: key(s.mac), gen: s.timerGen}
	s.timer = time.AfterFunc(d, func() {
		select {
		case r.timers <- t:
		case <-r.ctx.Done():
		}
	})
}

func (r *authRun) stopTimer(s *session) {
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	s.timerGen = 0
}

func (r *authRun) fired(t timerFired) {
	s := r.sessions[t.key]
	if s == nil || s.timerGen != t.gen {
		return // stopped or replaced meanwhile
	}
	s.timer = nil
	switch s.state {
	case stHeld:
		delete(r.sessions, t.key) // quiet period over: forget it
	case stAuthenticated:
		r.log(s, "eapol: re-authenticating")
		r.restart(s)
	case stAuthenticating:
		if s.reqCount >= r.MaxReq {
			r.timeouts.Add(1)
			r.log(s, "eapol: supplicant stopped answering", "requests", s.reqCount+1)
			delete(r.sessions, t.key)
			if s.authorized && r.OnResult != nil {
				r.OnResult(s.mac, &Result{Accept: false}) // fail closed
			}
			return
		}
		s.reqCount++
		r.send(s, s.lastReq)
		r.startTimer(s, r.TxPeriod)
	}
}

func (r *authRun) relayed(d relayDone) {
	s := r.sessions[d.key]
	if s == nil || s.gen != d.gen || !s.busy {
		return // logged off or restarted meanwhile
	}
	s.busy = false
	if d.err != nil {
		r.backendErrs.Add(1)
		r.Logger.Warn("eapol: backend", "port", r.Port, "mac", s.mac.String(), "err", d.err)
		r.failErr(s, nil, d.err) // fail closed: the port stays shut for this MAC
		return
	}
	s.radState = d.newState
	var out *eap.Packet
	if len(d.out) > 0 {
		p, err := eap.Parse(d.out)
		if err != nil {
			r.backendErrs.Add(1)
			r.Logger.Warn("eapol: backend sent bad EAP", "port", r.Port, "mac", s.mac.String(), "err", err)
			r.fail(s, nil)
			return
		}
		out = p
	}
	switch {
	case out != nil && out.Code == eap.CodeRequest && d.res == nil:
		r.request(s, out)
	case out != nil && out.Code == eap.CodeSuccess && d.res != nil && d.res.Accept:
		r.accepts.Add(1)
		r.send(s, out)
		s.state, s.authorized = stAuthenticated, true
		r.log(s, "eapol: accepted", "role", d.res.Role, "vlan", d.res.VLAN)
		if r.ReauthFromSessionTimeout && d.res.SessionTimeout > 0 {
			r.startTimer(s, d.res.SessionTimeout)
		}
		if r.OnResult != nil {
			res := *d.res
			r.OnResult(s.mac, &res)
		}
	default:
		// Failure, a Reject, or an answer that does not add up (Success without an Accept,
		// an Accept with a Request): deny.
		r.fail(s, out)
	}
}

// fail ends the conversation with EAP-Failure, reports a Reject and holds the MAC for the quiet
// period (§8.2.4 HELD).
func (r *authRun) fail(s *session, out *eap.Packet) { r.failErr(s, out, nil) }

// failErr is fail with the Backend's error, if that was the cause, in the reported Result.
func (r *authRun) failErr(s *session, out *eap.Packet, cause error) {
	r.rejects.Add(1)
	if out == nil || out.Code != eap.CodeFailure {
		out = &eap.Packet{Code: eap.CodeFailure, ID: s.id}
	}
	r.send(s, out)
	s.state, s.authorized = stHeld, false
	s.gen++
	s.heldUntil = time.Now().Add(r.QuietPeriod)
	r.startTimer(s, r.QuietPeriod)
	r.log(s, "eapol: rejected")
	if r.OnResult != nil {
		r.OnResult(s.mac, &Result{Accept: false, Err: cause})
	}
}

// ErrNotRunning is returned by the control methods when the Authenticator's Run has ended or
// their ctx ended before Run took the command.
var ErrNotRunning = errors.New("eapol: authenticator not running")

func (a *Authenticator) commands() chan func(*authRun) {
	a.cmdOnce.Do(func() { a.cmds = make(chan func(*authRun)) })
	return a.cmds
}

// do hands f to Run's goroutine and waits until it ran.
func (a *Authenticator) do(ctx context.Context, f func(*authRun)) error {
	a.runMu.Lock()
	stopped := a.stopped
	a.runMu.Unlock()
	done := make(chan struct{})
	select {
	case a.commands() <- func(r *authRun) { f(r); close(done) }:
	case <-ctx.Done():
		return ErrNotRunning
	case <-stopped: // nil before the first Run: never ready
		return ErrNotRunning
	}
	<-done
	return nil
}

// Reauthenticate starts a new conversation with mac at once: an EAP-Request/Identity sent to the
// supplicant's unicast address (IEEE 802.1X-2010 §8.2.4 reAuthenticate). authorized says the
// MAC is admitted now (a session kept across a PEP restart, a CoA Authorize-Only): if the
// supplicant then stops answering, OnResult reports a Reject so the caller can end the session.
// A MAC in its quiet period is left alone. It blocks until Run took the command or ctx ended.
func (a *Authenticator) Reauthenticate(ctx context.Context, mac net.HardwareAddr, authorized bool) error {
	if len(mac) != 6 || mac[0]&1 != 0 {
		return errors.New("eapol: Reauthenticate: not a unicast MAC")
	}
	mac = append(net.HardwareAddr(nil), mac...)
	return a.do(ctx, func(r *authRun) {
		k := key(mac)
		s := r.sessions[k]
		if s == nil {
			if len(r.sessions) >= r.MaxSessions {
				r.dropped.Add(1)
				return
			}
			s = &session{mac: mac, id: uint8(rand.Uint32())}
			r.sessions[k] = s
		}
		if s.state == stHeld && time.Now().Before(s.heldUntil) {
			return
		}
		s.authorized = s.authorized || authorized
		r.log(s, "eapol: re-authenticating on request")
		r.restart(s)
	})
}

// Forget ends the PAE session of mac without a word to the supplicant (Disconnect-Request, link
// down): its timers stop and no Result is reported for it. An unknown MAC is not an error.
func (a *Authenticator) Forget(ctx context.Context, mac net.HardwareAddr) error {
	k := key(mac)
	return a.do(ctx, func(r *authRun) {
		if s := r.sessions[k]; s != nil {
			r.stopTimer(s)
			delete(r.sessions, k)
		}
	})
}
