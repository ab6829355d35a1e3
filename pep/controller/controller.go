package controller

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"layeh.com/radius/rfc2866"

	"trustnac/pep"
	"trustnac/pep/eapol"
	tradius "trustnac/transport/radius"
)

// Session is one endpoint admitted on one managed port.
type Session struct {
	Port      string
	MAC       net.HardwareAddr
	Method    string // MethodDot1X or MethodMAB
	ID        string // Acct-Session-Id
	User      string
	Role      string
	VLAN      int
	Class     [][]byte
	Started   time.Time
	Expires   time.Time  // zero: never
	IP        netip.Addr // learned from ARP
	reauthAt  time.Time  // MAB: ask again at this time
	reauthing bool
	interimAt time.Time
}

// port is one managed bridge port with its authenticator.
type port struct {
	name   string
	index  int
	up     bool
	conn   *eapol.Conn
	auth   *eapol.Authenticator
	cancel context.CancelFunc
	done   chan struct{}
	// failed is set when reading the port failed (ENETDOWN after the link went down
	// administratively); its sockets are then replaced when the link comes back.
	failed atomic.Bool
}

// mabWait is a MAC seen by the kernel on a locked port (NTF_EXT_LOCKED), waiting for MAB.
type mabWait struct {
	port     string
	timer    *time.Timer
	inflight bool
	hold     time.Time // no new MAB request before
	dot1x    bool      // spoke EAPOL: no MAB while held
}

// Controller manages the ports of one bridge. Create it with New, then call Run once.
type Controller struct {
	cfg    Config
	enf    Enforcer
	log    *slog.Logger
	client *tradius.Client
	nas    NAS
	acctQ  chan acctRecord
	ready  chan struct{}

	dasMu   sync.Mutex
	dasAddr net.Addr

	bridgeIndex int

	mu       sync.Mutex
	ports    map[string]*port
	sessions map[string]*Session // by MAC
	mab      map[string]*mabWait // by MAC
	arp      map[string]arpSeen  // by MAC
	wg       sync.WaitGroup

	st counters
}

type counters struct {
	accepts, rejects, backendErrs, unknownRoles, mabRequests, mabAccepts, mabRejects,
	coa, coaNAK, disconnects, acctSent, acctFailed, acctDropped, ipLearned, portsAdded, portsRemoved,
	expired atomic.Uint64
}

// Stats returns the controller's counters by name.
func (c *Controller) Stats() map[string]uint64 {
	s := &c.st
	return map[string]uint64{
		"accepts": s.accepts.Load(), "rejects": s.rejects.Load(), "backend_errors": s.backendErrs.Load(),
		"unknown_roles": s.unknownRoles.Load(), "mab_requests": s.mabRequests.Load(),
		"mab_accepts": s.mabAccepts.Load(), "mab_rejects": s.mabRejects.Load(), "coa": s.coa.Load(),
		"das_nak": s.coaNAK.Load(), "disconnects": s.disconnects.Load(), "acct_sent": s.acctSent.Load(),
		"acct_failed": s.acctFailed.Load(), "acct_dropped": s.acctDropped.Load(), "ip_learned": s.ipLearned.Load(),
		"ports_added": s.portsAdded.Load(), "ports_removed": s.portsRemoved.Load(), "expired": s.expired.Load(),
	}
}

// New checks cfg and returns a Controller enforcing through enf.
func New(cfg Config, enf Enforcer) (*Controller, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if enf == nil {
		return nil, fmt.Errorf("%w: no enforcer", ErrInvalidConfig)
	}
	cfg.Ports, cfg.Exclude = slices.Clone(cfg.Ports), slices.Clone(cfg.Exclude)
	c := &Controller{
		cfg: cfg, enf: enf, log: cfg.Logger.With("component", "pep"),
		client:   &tradius.Client{Secret: cfg.Secret, Timeout: cfg.Timeout, Retries: cfg.Retries, Logger: cfg.Logger},
		nas:      NAS{Identifier: cfg.NASIdentifier, IP: cfg.NASIP, Bridge: cfg.Bridge},
		acctQ:    make(chan acctRecord, 4096),
		ready:    make(chan struct{}),
		ports:    map[string]*port{},
		sessions: map[string]*Session{},
		mab:      map[string]*mabWait{},
		arp:      map[string]arpSeen{},
	}
	return c, nil
}

// Ready is closed when every managed port is locked and served and the DAS listens.
func (c *Controller) Ready() <-chan struct{} { return c.ready }

// DASAddr is the Dynamic Authorization server's address once Ready, nil without one.
func (c *Controller) DASAddr() net.Addr {
	c.dasMu.Lock()
	defer c.dasMu.Unlock()
	return c.dasAddr
}

// Sessions returns a copy of the current sessions, sorted by port and MAC.
func (c *Controller) Sessions() []Session {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Session, 0, len(c.sessions))
	for _, s := range c.sessions {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b Session) int {
		if a.Port != b.Port {
			if a.Port < b.Port {
				return -1
			}
			return 1
		}
		return slices.Compare(a.MAC, b.MAC)
	})
	return out
}

// wanted reports whether a port of the bridge named name is to be managed.
func (c *Controller) wanted(name string) bool {
	if slices.Contains(c.cfg.Exclude, name) {
		return false
	}
	return len(c.cfg.Ports) == 0 || slices.Contains(c.cfg.Ports, name)
}

// grace is how long past Session-Timeout a binding stays in force, so that re-authentication
// can finish before the kernel ends the session: the supplicant's retries and the PDP's.
func (c *Controller) grace() time.Duration {
	return c.cfg.TxPeriod*time.Duration(c.cfg.MaxReq+1) + c.cfg.Timeout*time.Duration(max(c.cfg.Retries, 0)+1) + 5*time.Second
}

// Run locks the managed ports, reconciles the kernel with what was admitted before, serves the
// ports, the DAS and MAB until ctx ends, then stops (leaving kernel state in force unless
// CleanupOnExit). A failure to lock a port at start is an error: nothing is served then.
func (c *Controller) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	br, err := linkByName(c.cfg.Bridge)
	if err != nil {
		return fmt.Errorf("controller: bridge %s: %w", c.cfg.Bridge, err)
	}
	c.bridgeIndex = br.Attrs().Index
	c.nas.BridgeMAC = slices.Clone(br.Attrs().HardwareAddr)
	if err := os.MkdirAll(c.cfg.StateDir, 0o700); err != nil {
		return fmt.Errorf("controller: state dir: %w", err)
	}

	// Subscribe before listing, so no port added in between is missed.
	links, err := subscribeLinks(ctx, false)
	if err != nil {
		return err
	}
	names, err := bridgePorts(c.bridgeIndex)
	if err != nil {
		return err
	}
	// 1. Lock before anything else.
	var managed []portLink
	for _, pl := range names {
		if !c.wanted(pl.name) {
			continue
		}
		if err := c.enf.Lock(ctx, pl.name); err != nil {
			return fmt.Errorf("controller: lock %s: %w", pl.name, err)
		}
		managed = append(managed, pl)
	}
	// 2. Reconcile what the kernel holds with the managed ports.
	kept, err := c.restore(ctx, managed)
	if err != nil {
		return err
	}
	// 3. Accounting: this NAS (re)started; then the sessions it still holds.
	c.wg.Add(1)
	go c.accountingLoop(ctx)
	c.queueAcct(acctRecord{Status: AcctOn, SessionID: SessionID(c.bridgeIndex, c.nas.BridgeMAC, time.Now())})
	for _, s := range kept {
		c.queueAcct(c.record(s, AcctStart))
	}
	// 4. Serve the ports.
	for _, pl := range managed {
		if err := c.servePort(ctx, pl); err != nil {
			c.log.Error("serve port", "port", pl.name, "err", err)
		}
	}
	// 5. Re-authenticate at once what was admitted before the restart.
	for _, s := range kept {
		c.reauthenticate(ctx, s.MAC, true)
	}
	if c.cfg.MAB {
		if err := c.watchFDB(ctx); err != nil {
			c.stopPorts()
			return err
		}
	}
	das, err := c.startDAS(ctx)
	if err != nil {
		c.stopPorts()
		return err
	}
	c.wg.Add(1)
	go c.janitor(ctx)
	c.log.Info("pep ready", "bridge", c.cfg.Bridge, "ports", len(managed), "sessions", len(kept), "mab", c.cfg.MAB, "das", c.cfg.DASListen)
	close(c.ready)

	for {
		select {
		case <-ctx.Done():
			return c.shutdown(das)
		case u, ok := <-links:
			if !ok {
				// ENOBUFS after a burst of changes ends the subscription: subscribe again,
				// listing every link, so a port added meanwhile is still locked and served.
				links = nil
				if ctx.Err() != nil {
					continue
				}
				time.Sleep(200 * time.Millisecond)
				if links, err = subscribeLinks(ctx, true); err != nil {
					c.log.Error("link subscription lost; ports added from now on are not served", "err", err)
					links = nil
				} else {
					c.log.Info("link subscription renewed")
				}
				continue
			}
			c.linkUpdate(ctx, u)
		}
	}
}

func (c *Controller) shutdown(das func()) error {
	if das != nil {
		das()
	}
	c.stopPorts()
	c.mu.Lock()
	for _, w := range c.mab {
		if w.timer != nil {
			w.timer.Stop()
		}
	}
	c.mu.Unlock()
	var err error
	if c.cfg.CleanupOnExit {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c.mu.Lock()
		for _, s := range c.sessions {
			c.sendAcctNow(ctx, c.record(s, AcctStop, rfc2866.AcctTerminateCause_Value_AdminReboot))
		}
		c.sessions = map[string]*Session{}
		c.saveLocked()
		c.mu.Unlock()
		c.sendAcctNow(ctx, acctRecord{Status: AcctOff, SessionID: SessionID(c.bridgeIndex, c.nas.BridgeMAC, time.Now())})
		err = c.enf.Cleanup(ctx)
		cancel()
		c.log.Info("enforcement removed on exit", "err", err)
	}
	c.wg.Wait()
	c.client.Close()
	c.log.Info("pep stopped", "stats", c.Stats())
	return err
}

// restore reads back the kernel's bindings, keeps those on managed ports (Reconcile removes
// the rest) and rebuilds the sessions from them and the state file.
func (c *Controller) restore(ctx context.Context, managed []portLink) ([]*Session, error) {
	stored, err := readState(c.cfg.StateDir)
	if err != nil {
		c.log.Warn("state file unreadable; sessions are re-authenticated without it", "err", err)
	}
	byMAC := map[string]storedSession{}
	for _, s := range stored {
		byMAC[s.MAC] = s
	}
	index := map[string]int{}
	for _, pl := range managed {
		index[pl.name] = pl.index
	}
	bs, err := c.enf.Bindings(ctx)
	if err != nil {
		return nil, fmt.Errorf("controller: read bindings: %w", err)
	}
	var keep []pep.Binding
	var kept []*Session
	now := time.Now()
	for _, b := range bs {
		if _, ok := index[b.Port]; !ok {
			continue
		}
		keep = append(keep, b)
		s := &Session{Port: b.Port, MAC: b.MAC, Role: b.Role, VLAN: b.VLAN, Expires: b.Expires, Method: MethodDot1X, Started: now, interimAt: now.Add(c.cfg.InterimInterval)}
		if st, ok := byMAC[b.MAC.String()]; ok && st.Port == b.Port {
			s.Method, s.ID, s.User, s.Class, s.Started = st.Method, st.SessionID, st.User, st.Class, st.Started
			s.IP, _ = netip.ParseAddr(st.IP)
		}
		if s.ID == "" {
			s.ID = SessionID(index[b.Port], b.MAC, now)
		}
		kept = append(kept, s)
	}
	if err := c.enf.Reconcile(ctx, keep); err != nil {
		c.log.Error("reconcile", "err", err)
	}
	c.mu.Lock()
	for _, s := range kept {
		c.sessions[s.MAC.String()] = s
		c.log.Info("session kept across restart", "port", s.Port, "mac", s.MAC.String(), "role", s.Role, "session", s.ID, "method", s.Method)
	}
	c.saveLocked()
	c.mu.Unlock()
	c.log.Info("reconciled with the kernel", "bindings", len(bs), "kept", len(kept), "dropped", len(bs)-len(keep))
	return kept, nil
}

// saveLocked writes the state file; c.mu is held.
func (c *Controller) saveLocked() {
	ss := make([]storedSession, 0, len(c.sessions))
	for _, s := range c.sessions {
		st := storedSession{Port: s.Port, MAC: s.MAC.String(), Method: s.Method, SessionID: s.ID, User: s.User, Class: s.Class, Started: s.Started}
		if s.IP.IsValid() {
			st.IP = s.IP.String()
		}
		ss = append(ss, st)
	}
	slices.SortFunc(ss, func(a, b storedSession) int {
		if a.MAC < b.MAC {
			return -1
		}
		if a.MAC > b.MAC {
			return 1
		}
		return 0
	})
	if err := writeState(c.cfg.StateDir, ss); err != nil {
		c.log.Error("write state", "err", err)
	}
}

// servePort opens the port's EAPOL socket and starts its authenticator (and ARP snooping).
// The port must be locked already.
func (c *Controller) servePort(ctx context.Context, pl portLink) error {
	conn, err := eapol.Open(pl.name)
	if err != nil {
		return err
	}
	pctx, cancel := context.WithCancel(ctx)
	p := &port{name: pl.name, index: pl.index, up: pl.up, conn: conn, cancel: cancel, done: make(chan struct{})}
	p.auth = &eapol.Authenticator{
		Conn: conn, Port: pl.name, Backend: &eapBackend{c: c, port: pl.name, ids: map[[6]byte]string{}},
		TxPeriod: c.cfg.TxPeriod, QuietPeriod: c.cfg.QuietPeriod, MaxReq: c.cfg.MaxReq,
		ReauthFromSessionTimeout: c.cfg.Reauth, Logger: c.log,
		OnResult: func(mac net.HardwareAddr, r *eapol.Result) { c.onResult(pctx, pl.name, mac, r) },
		OnLogoff: func(mac net.HardwareAddr) { c.onLogoff(pctx, pl.name, mac) },
		OnStart:  func(mac net.HardwareAddr) { c.onStart(pl.name, mac) },
	}
	c.mu.Lock()
	c.ports[pl.name] = p
	c.mu.Unlock()
	go func() {
		defer close(p.done)
		defer conn.Close()
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); c.snoopARP(pctx, pl.name, pl.index) }()
		// A port whose link goes down fails reads (ENETDOWN); serve it again once it is back,
		// as long as it is managed.
		for {
			err := p.auth.Run(pctx)
			if pctx.Err() != nil {
				break
			}
			p.failed.Store(true)
			c.log.Warn("authenticator interrupted; restarting", "port", pl.name, "err", err)
			select {
			case <-pctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
		wg.Wait()
	}()
	c.log.Info("port served", "port", pl.name)
	return nil
}

func (c *Controller) stopPorts() {
	c.mu.Lock()
	ps := make([]*port, 0, len(c.ports))
	for _, p := range c.ports {
		ps = append(ps, p)
	}
	c.mu.Unlock()
	for _, p := range ps {
		p.cancel()
		<-p.done
	}
}

// reauthenticate asks mac's port to authenticate it again: EAP-Request/Identity for 802.1X, a
// new MAB request for MAB.
func (c *Controller) reauthenticate(ctx context.Context, mac net.HardwareAddr, authorized bool) {
	c.mu.Lock()
	s := c.sessions[mac.String()]
	if s == nil {
		c.mu.Unlock()
		return
	}
	p := c.ports[s.Port]
	method, portName := s.Method, s.Port
	if method == MethodMAB {
		s.reauthing = true
	}
	c.mu.Unlock()
	switch {
	case method == MethodMAB:
		c.wg.Add(1)
		go func() { defer c.wg.Done(); c.mabRequest(ctx, portName, mac) }()
	case p != nil:
		go func() {
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if err := p.auth.Reauthenticate(rctx, mac, authorized); err != nil && ctx.Err() == nil {
				c.log.Warn("re-authenticate", "port", portName, "mac", mac.String(), "err", err)
			}
		}()
	}
}

// onResult applies an authenticator's final Result.
func (c *Controller) onResult(ctx context.Context, portName string, mac net.HardwareAddr, r *eapol.Result) {
	switch {
	case r.Accept:
		c.st.accepts.Add(1)
		a := Authorization{Role: r.Role, VLAN: r.VLAN, SessionTimeout: r.SessionTimeout, Class: r.Class, User: r.User}
		c.admit(ctx, portName, mac, MethodDot1X, a)
	case r.Err != nil:
		c.st.backendErrs.Add(1)
		c.mu.Lock()
		s := c.sessions[mac.String()]
		c.mu.Unlock()
		if s != nil {
			c.log.Warn("PDP unreachable; the session keeps its role until it expires", "port", portName, "mac", mac.String(), "role", s.Role, "session", s.ID, "expires", s.Expires)
		}
	default:
		c.st.rejects.Add(1)
		c.log.Info("endpoint rejected", "port", portName, "mac", mac.String())
		c.end(ctx, portName, mac, rfc2866.AcctTerminateCause_Value_UserError, false)
	}
}

func (c *Controller) onLogoff(ctx context.Context, portName string, mac net.HardwareAddr) {
	c.log.Info("endpoint logged off", "port", portName, "mac", mac.String())
	c.end(ctx, portName, mac, rfc2866.AcctTerminateCause_Value_UserRequest, false)
}

func (c *Controller) onStart(portName string, mac net.HardwareAddr) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := mac.String()
	w := c.mab[k]
	if w == nil {
		w = &mabWait{port: portName}
		c.mab[k] = w
	}
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
	w.dot1x = true
	w.hold = time.Now().Add(c.cfg.QuietPeriod + c.cfg.TxPeriod*time.Duration(c.cfg.MaxReq+1))
}

// admit enforces an authorization for mac on a port and records the session: a new session
// gets an Acct-Session-Id and an Accounting-Start, a re-authenticated or changed one an
// Interim-Update. deny ends the session instead.
func (c *Controller) admit(ctx context.Context, portName string, mac net.HardwareAddr, method string, a Authorization) error {
	log := c.log.With("port", portName, "mac", mac.String(), "method", method)
	if a.Role == RoleDeny {
		log.Info("access denied by the PDP")
		c.end(ctx, portName, mac, rfc2866.AcctTerminateCause_Value_UserError, false)
		return nil
	}
	if a.Unknown != "" {
		c.st.unknownRoles.Add(1)
		log.Error("PDP sent a role this PEP does not know: isolating the endpoint (fail closed)", "filter_id", a.Unknown)
		a.Role = RoleIsolate
	}
	vlan := a.VLAN
	if !c.cfg.VLANs && vlan != 0 {
		log.Debug("VLAN ignored: vlans off", "vlan", vlan)
		vlan = 0
	}
	now := time.Now()
	var expires time.Time
	if a.SessionTimeout > 0 {
		expires = now.Add(a.SessionTimeout)
		if c.cfg.Reauth || method == MethodMAB {
			expires = expires.Add(c.grace())
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	k := mac.String()
	old := c.sessions[k]
	if old != nil && old.Port != portName {
		// The endpoint moved: its session on the other port ends.
		c.endLocked(ctx, old, rfc2866.AcctTerminateCause_Value_PortPreempted)
		old = nil
	}
	if err := c.enf.Bind(ctx, pep.Binding{Port: portName, MAC: mac, Role: a.Role, VLAN: vlan, Expires: expires}); err != nil {
		log.Error("bind failed; the endpoint stays locked", "role", a.Role, "err", err)
		if old != nil {
			c.endLocked(ctx, old, rfc2866.AcctTerminateCause_Value_NASError)
		} else {
			c.enf.Unbind(ctx, portName, mac)
		}
		return err
	}
	if w := c.mab[k]; w != nil && w.timer != nil {
		w.timer.Stop()
	}
	delete(c.mab, k)
	s := old
	if s == nil {
		idx := 0
		if p := c.ports[portName]; p != nil {
			idx = p.index
		}
		s = &Session{Port: portName, MAC: slices.Clone(mac), Started: now, ID: SessionID(idx, mac, now), interimAt: now.Add(c.cfg.InterimInterval)}
		if seen, ok := c.arp[k]; ok && seen.port == portName && now.Sub(seen.at) < 10*time.Minute {
			s.IP = seen.ip
		}
		c.sessions[k] = s
	}
	s.Method, s.Role, s.VLAN, s.Expires, s.reauthing = method, a.Role, vlan, expires, false
	if len(a.Class) > 0 {
		s.Class = a.Class
	}
	if a.User != "" {
		s.User = a.User
	}
	s.reauthAt = time.Time{}
	if method == MethodMAB && a.SessionTimeout > 0 {
		s.reauthAt = now.Add(a.SessionTimeout)
	}
	log.Info("endpoint admitted", "role", a.Role, "vlan", vlan, "session", s.ID, "expires", expires, "user", s.User)
	if old == nil {
		c.saveLocked()
		c.queueAcct(c.record(s, AcctStart))
	} else {
		c.queueAcct(c.record(s, AcctInterim))
	}
	return nil
}

// end ends mac's session on portName (if it has one there) and unbinds the MAC there in any
// case: Accounting-Stop with cause, the binding removed, the port stays locked. forget also
// drops the authenticator's PAE session.
func (c *Controller) end(ctx context.Context, portName string, mac net.HardwareAddr, cause rfc2866.AcctTerminateCause, forget bool) {
	c.mu.Lock()
	s := c.sessions[mac.String()]
	if s != nil && s.Port == portName {
		c.endLocked(ctx, s, cause)
	} else if err := c.enf.Unbind(ctx, portName, mac); err != nil {
		c.log.Warn("unbind", "port", portName, "mac", mac.String(), "err", err)
	}
	p := c.ports[portName]
	c.mu.Unlock()
	if forget && p != nil {
		fctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		p.auth.Forget(fctx, mac)
		cancel()
	}
}

// endLocked ends s; c.mu is held.
func (c *Controller) endLocked(ctx context.Context, s *Session, cause rfc2866.AcctTerminateCause) {
	if err := c.enf.Unbind(ctx, s.Port, s.MAC); err != nil {
		c.log.Warn("unbind", "port", s.Port, "mac", s.MAC.String(), "err", err)
	}
	delete(c.sessions, s.MAC.String())
	c.saveLocked()
	c.queueAcct(c.record(s, AcctStop, cause))
	c.log.Info("session ended", "port", s.Port, "mac", s.MAC.String(), "role", s.Role, "session", s.ID, "cause", cause.String())
}

// record makes the accounting record of s.
func (c *Controller) record(s *Session, status AcctStatus, cause ...rfc2866.AcctTerminateCause) acctRecord {
	r := acctRecord{Status: status, SessionID: s.ID, Port: s.Port, MAC: slices.Clone(s.MAC), User: s.User, IP: s.IP, Class: s.Class, Started: s.Started, Method: s.Method}
	if len(cause) > 0 {
		r.Cause = cause[0]
	}
	return r
}

// janitor ends expired sessions, re-asks MAB sessions at their Session-Timeout and sends
// Interim-Updates.
func (c *Controller) janitor(ctx context.Context) {
	defer c.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			var reauth []net.HardwareAddr
			c.mu.Lock()
			for _, s := range c.sessions {
				switch {
				case !s.Expires.IsZero() && now.After(s.Expires):
					c.st.expired.Add(1)
					c.endLocked(ctx, s, rfc2866.AcctTerminateCause_Value_SessionTimeout)
					continue
				case s.Method == MethodMAB && !s.reauthAt.IsZero() && now.After(s.reauthAt) && !s.reauthing:
					reauth = append(reauth, s.MAC)
				}
				if now.After(s.interimAt) {
					s.interimAt = now.Add(c.cfg.InterimInterval)
					c.queueAcct(c.record(s, AcctInterim))
				}
			}
			c.mu.Unlock()
			for _, mac := range reauth {
				c.reauthenticate(ctx, mac, true)
			}
			if c.cfg.MAB {
				c.retryLocked(ctx)
			}
		}
	}
}

// linkUpdate handles a change of a link: a new port of the bridge is locked first and then
// served; a port that left the bridge or went away ends its sessions; a port whose link went
// down ends its sessions (link down ends the session, IEEE 802.1X-2010 §12.5 portEnabled).
func (c *Controller) linkUpdate(ctx context.Context, u linkEvent) {
	c.mu.Lock()
	p := c.ports[u.name]
	c.mu.Unlock()
	member := !u.deleted && u.master == c.bridgeIndex
	switch {
	case p == nil && member && c.wanted(u.name):
		if err := c.enf.Lock(ctx, u.name); err != nil {
			c.log.Error("new port could not be locked; not served", "port", u.name, "err", err)
			return
		}
		c.st.portsAdded.Add(1)
		if err := c.servePort(ctx, portLink{name: u.name, index: u.index, up: u.up}); err != nil {
			c.log.Error("serve new port", "port", u.name, "err", err)
		}
	case p != nil && !member:
		c.st.portsRemoved.Add(1)
		c.log.Info("port removed", "port", u.name)
		c.endPort(ctx, u.name, rfc2866.AcctTerminateCause_Value_PortError)
		p.cancel()
		<-p.done
		c.mu.Lock()
		delete(c.ports, u.name)
		c.mu.Unlock()
	case p != nil:
		c.mu.Lock()
		wasUp := p.up
		p.up = u.up
		c.mu.Unlock()
		switch {
		case wasUp && !u.up:
			c.log.Info("port link down", "port", u.name)
			c.endPort(ctx, u.name, rfc2866.AcctTerminateCause_Value_LostCarrier)
		case !wasUp && u.up && p.failed.Load():
			// Reading failed while the link was down: serve the port afresh, with new
			// sockets. (A carrier change alone does not disturb the sockets, and replacing
			// them would lose the EAPOL-Start the endpoint sends as its link comes up.)
			c.log.Info("port link up; replacing its sockets", "port", u.name)
			p.cancel()
			<-p.done
			c.mu.Lock()
			delete(c.ports, u.name)
			c.mu.Unlock()
			if err := c.servePort(ctx, portLink{name: u.name, index: u.index, up: true}); err != nil {
				c.log.Error("serve port after link up", "port", u.name, "err", err)
			}
		}
	}
}

// endPort ends every session on a port.
func (c *Controller) endPort(ctx context.Context, name string, cause rfc2866.AcctTerminateCause) {
	c.mu.Lock()
	var macs []net.HardwareAddr
	for _, s := range c.sessions {
		if s.Port == name {
			macs = append(macs, s.MAC)
		}
	}
	c.mu.Unlock()
	for _, m := range macs {
		c.end(ctx, name, m, cause, true)
	}
}
