package nac

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"trustnac/imc"
	"trustnac/internal/atomicfile"
	"trustnac/pep/eapol"
	"trustnac/transport/eap"
)

// Fallbacks of the dot1x section: what the agent does on a port where no
// 802.1X authenticator answers.
const (
	// FallbackPTTLS assesses over PT-TLS (RFC 6876): the port admitted the
	// endpoint by MAB into the assess role, and the PDP's CoA moves it.
	FallbackPTTLS = "pt-tls"
	// FallbackNone only reports that no authenticator answered.
	FallbackNone = "none"
)

// Methods reported in AgentLinkStatus.Method.
const (
	MethodDot1X = "802.1X"
	MethodPTTLS = "pt-tls"
)

// AgentDot1XConfig makes the agent an IEEE 802.1X-2010 supplicant on one
// interface (the `dot1x` section of the agent's configuration): when the
// link comes up it authenticates with EAP-TTLS and the TNC handshake inside;
// where no authenticator answers it assesses over PT-TLS instead.
type AgentDot1XConfig struct {
	// Interface is the network interface the agent authenticates on
	// (required).
	Interface string `yaml:"interface"`
	// StartPeriod is the wait between EAPOL-Starts (IEEE 802.1X-2010
	// §8.2.11 startPeriod; default 30s, as the standard).
	StartPeriod Duration `yaml:"start_period"`
	// MaxStart is how many EAPOL-Starts go unanswered before the port
	// counts as having no authenticator (§8.2.11 maxStart; default 3).
	MaxStart int `yaml:"max_start"`
	// HeldPeriod is the wait after a failed authentication before the next
	// attempt (§8.2.11 heldPeriod; default 60s).
	HeldPeriod Duration `yaml:"held_period"`
	// AuthPeriod is how long the agent waits for the authenticator's next
	// Request before starting over (§8.2.11 authPeriod; default 30s).
	AuthPeriod Duration `yaml:"auth_period"`
	// Fallback is FallbackPTTLS (default) or FallbackNone.
	Fallback string `yaml:"fallback"`
	// ReassessPeriod re-runs the PT-TLS assessment this often in fallback
	// mode (default 0: only on link up and on SIGHUP).
	ReassessPeriod Duration `yaml:"reassess_period"`
	// StatusFile, if set, holds the current AgentLinkStatus as JSON,
	// replaced atomically on every change.
	StatusFile string `yaml:"status_file"`
}

func (c *AgentDot1XConfig) resolve(dir string) {
	c.StatusFile = resolve(dir, c.StatusFile)
}

func (c *AgentDot1XConfig) setDefaults() {
	if c.StartPeriod == 0 {
		c.StartPeriod = Duration(eapol.DefaultStartPeriod)
	}
	if c.MaxStart == 0 {
		c.MaxStart = eapol.DefaultMaxStart
	}
	if c.HeldPeriod == 0 {
		c.HeldPeriod = Duration(eapol.DefaultHeldPeriod)
	}
	if c.AuthPeriod == 0 {
		c.AuthPeriod = Duration(eapol.DefaultAuthPeriod)
	}
	if c.Fallback == "" {
		c.Fallback = FallbackPTTLS
	}
}

// maxDot1XPeriod bounds the timers: beyond a day a value is a typo.
const maxDot1XPeriod = 24 * time.Hour

func (c *AgentDot1XConfig) validate() []error {
	var errs []error
	if c.Interface == "" {
		errs = append(errs, errors.New("dot1x.interface: required"))
	} else if len(c.Interface) >= unix.IFNAMSIZ {
		errs = append(errs, fmt.Errorf("dot1x.interface %q: longer than an interface name can be", c.Interface))
	}
	for _, p := range []struct {
		name string
		d    Duration
	}{{"start_period", c.StartPeriod}, {"held_period", c.HeldPeriod}, {"auth_period", c.AuthPeriod}} {
		if p.d < 0 || p.d.D() > maxDot1XPeriod {
			errs = append(errs, fmt.Errorf("dot1x.%s %s: want 0 to 24h", p.name, p.d.D()))
		}
	}
	if c.ReassessPeriod < 0 || (c.ReassessPeriod != 0 && c.ReassessPeriod.D() < time.Second) {
		errs = append(errs, fmt.Errorf("dot1x.reassess_period %s: want 0 (off) or at least 1s", c.ReassessPeriod.D()))
	}
	if c.MaxStart < 0 || c.MaxStart > 100 {
		errs = append(errs, fmt.Errorf("dot1x.max_start %d: want 1 to 100", c.MaxStart))
	}
	if c.Fallback != FallbackPTTLS && c.Fallback != FallbackNone {
		errs = append(errs, fmt.Errorf("dot1x.fallback %q: want %s or %s", c.Fallback, FallbackPTTLS, FallbackNone))
	}
	return errs
}

// Link states and progress reported in AgentLinkStatus.State.
const (
	LinkStateWaiting         = "waiting"          // the interface is not there or not up yet
	LinkStateDown            = "link down"        // the link went down; nothing is authenticated
	LinkStateAuthenticating  = "authenticating"   // 802.1X is running
	LinkStateAuthenticated   = "authenticated"    // EAP Success
	LinkStateFailed          = "failed"           // EAP Failure; held period running
	LinkStateNoAuthenticator = "no authenticator" // no 802.1X authenticator answered
	LinkStateAssessing       = "assessing"        // fallback: PT-TLS assessment running
	LinkStateAssessed        = "assessed"         // fallback: the PDP decided over PT-TLS
)

// AgentLinkStatus is what the agent reports about its link: the last
// outcome and where it came from. It is written as JSON to the status file.
type AgentLinkStatus struct {
	Interface string `json:"interface"`
	// Link is "up" or "down".
	Link string `json:"link"`
	// State is one of the LinkState constants.
	State string `json:"state"`
	// Method is MethodDot1X or MethodPTTLS, for the last outcome.
	Method string `json:"method,omitempty"`
	// Role is the PDP's decision; "deny" after an EAP Failure without one.
	Role        string            `json:"role,omitempty"`
	Reasons     []string          `json:"reasons,omitempty"`
	Remediation []LinkRemediation `json:"remediation,omitempty"`
	// Authenticator is the MAC address of the 802.1X authenticator.
	Authenticator string `json:"authenticator,omitempty"`
	// EAP is "success" or "failure" for an 802.1X outcome.
	EAP string `json:"eap,omitempty"`
	// LinkUpAt is when the link last came up; DecidedAt when the outcome
	// came; SinceLinkUpMS the time between them in milliseconds.
	LinkUpAt      *time.Time `json:"link_up_at,omitempty"`
	DecidedAt     *time.Time `json:"decided_at,omitempty"`
	SinceLinkUpMS int64      `json:"since_link_up_ms,omitempty"`
	// Decisions counts the outcomes since the agent started.
	Decisions int `json:"decisions"`
	// Error is the last error, if the last attempt failed without outcome.
	Error string `json:"error,omitempty"`
}

// LinkRemediation is one remediation instruction of the PDP.
type LinkRemediation struct {
	Text string `json:"text,omitempty"`
	URI  string `json:"uri,omitempty"`
	Lang string `json:"lang,omitempty"`
}

// writeStatusFile replaces path with st as JSON, atomically: a temporary
// file in the same directory, synced, then renamed over path.
func writeStatusFile(path string, st *AgentLinkStatus) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("nac: status file: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("nac: status file: %w", err)
	}
	if err := atomicfile.Write(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("nac: status file: %w", err)
	}
	return nil
}

// linkReporter keeps the status and writes it to the log and status file.
type linkReporter struct {
	mu   sync.Mutex
	st   AgentLinkStatus
	file string
	log  *slog.Logger
}

func (r *linkReporter) update(f func(st *AgentLinkStatus)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(&r.st)
	if r.file == "" {
		return
	}
	if err := writeStatusFile(r.file, &r.st); err != nil {
		r.log.Warn("agent: cannot write the status file", "err", err)
	}
}

func (r *linkReporter) state(s string) {
	r.update(func(st *AgentLinkStatus) { st.State = s })
}

func (r *linkReporter) linkChange(up bool, at time.Time) {
	r.update(func(st *AgentLinkStatus) {
		if up {
			st.Link, st.State, st.LinkUpAt, st.Error = "up", LinkStateAuthenticating, &at, ""
		} else {
			st.Link, st.State, st.Error = "down", LinkStateDown, ""
		}
	})
	if up {
		r.log.Info("agent: link up")
	} else {
		r.log.Info("agent: link down")
	}
}

func (r *linkReporter) failure(state string, err error) {
	r.update(func(st *AgentLinkStatus) {
		st.State = state
		st.Error = err.Error()
	})
}

// outcome records a decision. o is the posture outcome (nil when the PDP
// sent none); eapResult is "success", "failure" or "" for PT-TLS.
func (r *linkReporter) outcome(method string, o *imc.Outcome, eapResult string, authenticator net.HardwareAddr) {
	now := time.Now()
	var attrs []any
	r.update(func(st *AgentLinkStatus) {
		st.Method, st.EAP, st.Error = method, eapResult, ""
		st.Role, st.Reasons, st.Remediation = "", nil, nil
		if o != nil {
			st.Role = o.Role
			st.Reasons = append([]string(nil), o.Reasons...)
			for _, m := range o.Remediation {
				st.Remediation = append(st.Remediation, LinkRemediation{Text: m.Text, URI: m.URI, Lang: m.Lang})
			}
		}
		switch {
		case eapResult == "failure":
			st.State = LinkStateFailed
			if st.Role == "" {
				st.Role = "deny"
				st.Reasons = []string{"802.1X authentication failed"}
			}
		case method == MethodPTTLS:
			st.State = LinkStateAssessed
		default:
			st.State = LinkStateAuthenticated
		}
		st.Authenticator = ""
		if authenticator != nil {
			st.Authenticator = authenticator.String()
		}
		st.DecidedAt = &now
		st.SinceLinkUpMS = 0
		if st.LinkUpAt != nil {
			st.SinceLinkUpMS = now.Sub(*st.LinkUpAt).Milliseconds()
		}
		st.Decisions++
		attrs = []any{"method", method, "role", st.Role, "eap", eapResult,
			"reasons", st.Reasons, "authenticator", st.Authenticator,
			"since_link_up", time.Duration(st.SinceLinkUpMS) * time.Millisecond}
		for _, m := range st.Remediation {
			attrs = append(attrs, "remediation", m.Text+" "+m.URI)
		}
	})
	r.log.Info("agent: decision", attrs...)
}

// linkUp says whether a link carries traffic: operationally up, or, for
// drivers that report no operational state, administratively up with a
// carrier.
func linkUp(l netlink.Link) bool {
	a := l.Attrs()
	switch a.OperState {
	case netlink.OperUp:
		return true
	case netlink.OperUnknown:
		return a.Flags&net.FlagUp != 0 && a.RawFlags&unix.IFF_LOWER_UP != 0
	}
	return false
}

// RunAgentLink runs the agent as the 802.1X supplicant of the interface in
// cfg.Dot1X until ctx ends, then returns nil. It watches the link over
// netlink: on link up it authenticates (EAPOL-Start, EAP-TTLS with the
// PDP's certificate checked, MSCHAPv2 if a password is set, then the TNC
// handshake with the collectors) and answers re-authentications the
// authenticator asks for; on link down it stops. Where no authenticator
// answers, it assesses over PT-TLS (fallback pt-tls). A value on reauth
// (SIGHUP) re-authenticates at once. Outcomes go to log and the status file.
func RunAgentLink(ctx context.Context, cfg *AgentConfig, log *slog.Logger, reauth <-chan os.Signal) error {
	d := cfg.Dot1X
	if d == nil {
		return errors.New("nac: agent: no dot1x section")
	}
	// Fail early on what would fail every conversation.
	if _, err := agentTLSConfig(cfg.PDP); err != nil {
		return err
	}
	if _, err := agentPassword(cfg); err != nil {
		return err
	}
	log = log.With("interface", d.Interface)
	rep := &linkReporter{st: AgentLinkStatus{Interface: d.Interface, Link: "down", State: LinkStateWaiting}, file: d.StatusFile, log: log}
	rep.update(func(*AgentLinkStatus) {})

	updates := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	defer close(done)
	subErr := make(chan error, 1)
	err := netlink.LinkSubscribeWithOptions(updates, done, netlink.LinkSubscribeOptions{
		ListExisting: true,
		ErrorCallback: func(err error) {
			select {
			case subErr <- err:
			default:
			}
		},
	})
	if err != nil {
		return fmt.Errorf("nac: agent: watch links: %w", err)
	}
	// The initial dump says nothing about an interface that does not exist yet.
	if _, err := netlink.LinkByName(d.Interface); err != nil {
		log.Info("agent: waiting for the interface", "err", err)
	}

	var (
		sess  *linkSession
		index int
	)
	stop := func() {
		if sess != nil {
			sess.stop()
			sess = nil
		}
	}
	defer stop()
	for {
		select {
		case <-ctx.Done():
			stop()
			return nil
		case err := <-subErr:
			stop()
			return fmt.Errorf("nac: agent: link watch: %w", err)
		case <-reauth:
			if sess == nil {
				log.Info("agent: re-authentication asked for, but the link is down")
				continue
			}
			select {
			case sess.reauth <- struct{}{}:
			default:
			}
		case u, ok := <-updates:
			if !ok {
				stop()
				if ctx.Err() != nil {
					return nil
				}
				return errors.New("nac: agent: the link watch ended")
			}
			a := u.Link.Attrs()
			if a.Name != d.Interface && !(index != 0 && a.Index == index) {
				continue
			}
			up := u.Header.Type != unix.RTM_DELLINK && a.Name == d.Interface && linkUp(u.Link)
			switch {
			case up && sess == nil:
				index = a.Index
				rep.linkChange(true, time.Now())
				sess = startLinkSession(ctx, cfg, log, rep)
			case !up && sess != nil:
				stop()
				index = 0
				rep.linkChange(false, time.Now())
			}
		}
	}
}

// linkSession is the work of one link-up.
type linkSession struct {
	cancel context.CancelFunc
	done   chan struct{}
	reauth chan struct{}
}

func startLinkSession(ctx context.Context, cfg *AgentConfig, log *slog.Logger, rep *linkReporter) *linkSession {
	ctx, cancel := context.WithCancel(ctx)
	s := &linkSession{cancel: cancel, done: make(chan struct{}), reauth: make(chan struct{}, 1)}
	go func() {
		defer close(s.done)
		runLinkSession(ctx, cfg, log, rep, s.reauth)
	}()
	return s
}

func (s *linkSession) stop() {
	s.cancel()
	<-s.done
}

// runLinkSession authenticates on one link-up until ctx ends.
func runLinkSession(ctx context.Context, cfg *AgentConfig, log *slog.Logger, rep *linkReporter, reauth chan struct{}) {
	d := cfg.Dot1X
	seen := false // an authenticator answered since link up
	for ctx.Err() == nil {
		conn, err := eapol.Open(d.Interface)
		if err != nil {
			log.Warn("agent: cannot open the port", "err", err)
			rep.failure(LinkStateAuthenticating, err)
			if !sleepCtx(ctx, time.Second) {
				return
			}
			continue
		}
		rep.state(LinkStateAuthenticating)
		var (
			cur     *AgentEAP
			factory *AgentEAPFactory // made at the first conversation of this link-up
		)
		s := &eapol.Supplicant{
			Conn:        conn,
			StartPeriod: d.StartPeriod.D(),
			MaxStart:    d.MaxStart,
			HeldPeriod:  d.HeldPeriod.D(),
			AuthPeriod:  d.AuthPeriod.D(),
			Logger:      log,
			Restart:     reauth,
			NewPeer: func() *eap.Peer {
				if cur != nil {
					cur.Close()
					cur = nil
				}
				rep.state(LinkStateAuthenticating)
				var a *AgentEAP
				var err error
				if factory == nil {
					factory, err = NewAgentEAPFactory(cfg, log)
				}
				if err == nil {
					a, err = factory.New()
				}
				if err != nil {
					// A peer without methods refuses every method: the
					// conversation fails and the failure is reported.
					log.Error("agent: cannot start the EAP peer", "err", err)
					return eap.NewPeer("anonymous")
				}
				cur = a
				return a.Peer
			},
			OnOutcome: func(o eap.Outcome, auth net.HardwareAddr) {
				seen = true
				var out *imc.Outcome
				if cur != nil {
					if v, ok := cur.Outcome(); ok {
						out = &v
					}
				}
				res := "success"
				if o == eap.Failed {
					res = "failure"
				}
				rep.outcome(MethodDot1X, out, res, auth)
			},
		}
		_, err = s.Run(ctx)
		conn.Close()
		if cur != nil {
			cur.Close()
		}
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, eapol.ErrNoAuthenticator) && seen:
			// The authenticator that answered before keeps quiet (its own
			// quiet period after a failure): try again after ours.
			log.Info("agent: the authenticator went quiet; trying again", "after", d.HeldPeriod.D())
			if !waitReauth(ctx, reauth, d.HeldPeriod.D()) {
				return
			}
		case errors.Is(err, eapol.ErrNoAuthenticator):
			log.Info("agent: no 802.1X authenticator answered", "fallback", d.Fallback)
			rep.state(LinkStateNoAuthenticator)
			if d.Fallback == FallbackNone {
				// Try 802.1X again when asked to.
				if !waitReauth(ctx, reauth, 0) {
					return
				}
				continue
			}
			if !runFallback(ctx, cfg, log, rep, reauth) {
				return
			}
			log.Info("agent: an 802.1X authenticator spoke; authenticating")
		default:
			log.Warn("agent: supplicant stopped", "err", err)
			rep.failure(LinkStateAuthenticating, err)
			if !sleepCtx(ctx, time.Second) {
				return
			}
		}
	}
}

// Backoff of the PT-TLS fallback between failed attempts.
const (
	fallbackFirstRetry = time.Second
	fallbackMaxRetry   = 30 * time.Second
)

// runFallback assesses over PT-TLS, retrying with backoff until a decision
// comes, then again on reauth and every ReassessPeriod. It returns false
// when ctx ends, and true when an 802.1X authenticator sends an EAP Request
// on the port (one that started late, or a PEP that turned 802.1X on): the
// caller authenticates with 802.1X then.
func runFallback(ctx context.Context, cfg *AgentConfig, log *slog.Logger, rep *linkReporter, reauth chan struct{}) bool {
	d := cfg.Dot1X
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	appeared := make(chan struct{})
	if conn, err := eapol.Open(d.Interface); err != nil {
		log.Warn("agent: cannot watch the port for an authenticator", "err", err)
	} else {
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			if watchAuthenticator(ctx, conn) {
				close(appeared)
				cancel()
			}
		}()
		defer func() { cancel(); wg.Wait(); conn.Close() }()
	}
	for {
		backoff := fallbackFirstRetry
		for {
			rep.state(LinkStateAssessing)
			o, err := RunAgent(ctx, cfg, log)
			if ctx.Err() != nil {
				return chanClosed(appeared)
			}
			if err == nil {
				rep.outcome(MethodPTTLS, o, "", nil)
				break
			}
			log.Warn("agent: assessment over PT-TLS failed; retrying", "err", err, "after", backoff)
			rep.failure(LinkStateAssessing, err)
			if !waitReauth(ctx, reauth, backoff) {
				return chanClosed(appeared)
			}
			backoff = min(2*backoff, fallbackMaxRetry)
		}
		if !waitReauth(ctx, reauth, d.ReassessPeriod.D()) {
			return chanClosed(appeared)
		}
	}
}

// watchAuthenticator reads the port until an EAP Request arrives (true) or
// ctx ends (false).
func watchAuthenticator(ctx context.Context, conn eapol.FrameConn) bool {
	for {
		_, f, err := conn.ReadFrom(ctx)
		if err != nil {
			return false // ctx ended, or the port failed: stay with PT-TLS
		}
		if f.Type != eapol.TypeEAPPacket {
			continue
		}
		if p, err := f.EAP(); err == nil && p.Code == eap.CodeRequest {
			return true
		}
	}
}

func chanClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// waitReauth waits for d (0: for ever), a value on reauth, or the end of
// ctx; it reports whether ctx is still going.
func waitReauth(ctx context.Context, reauth <-chan struct{}, d time.Duration) bool {
	var tc <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		tc = t.C
	}
	select {
	case <-ctx.Done():
		return false
	case <-reauth:
	case <-tc:
	}
	return true
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	return waitReauth(ctx, nil, d)
}
