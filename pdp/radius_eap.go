package pdp

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"trustnac/policies"
	"trustnac/transport/eap"
	"trustnac/transport/eap/mschapv2"
	"trustnac/transport/eap/tnc"
	"trustnac/transport/eap/ttls"
	"trustnac/transport/pbtnc"
)

// maxEAPRounds bounds the exchanges of one outer conversation: TTLS
// fragments of ~1 KiB carrying PB-TNC batches of up to 64 KiB.
const maxEAPRounds = 4096

// conversation is one EAP conversation in progress, between Access-Challenges.
type conversation struct {
	mu      sync.Mutex
	state   string
	created time.Time
	// last is when the conversation's latest packet came, as the time
	// since created (monotonic, unlike a wall-clock stamp): handlers set
	// it under mu, the sweeper reads it under conversations.mu only.
	last     atomic.Int64 // time.Duration
	server   *eap.Server
	tunnel   *ttls.Server
	inner    *ttls.InnerServer
	posture  *Assessment
	password string // user authenticated by password inside the tunnel, "" if none
	closed   bool
}

func (c *conversation) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
		if c.tunnel != nil {
			c.tunnel.Close()
		}
	}
}

// conversations holds the conversations by State, expiring stalled ones.
type conversations struct {
	mu       sync.Mutex
	m        map[string]*conversation
	max      int
	timeout  time.Duration
	lifetime time.Duration
	expired  atomic.Uint64
	stop     chan struct{}
	once     sync.Once
}

func newConversations(max int, timeout, lifetime time.Duration) *conversations {
	cs := &conversations{m: map[string]*conversation{}, max: max, timeout: timeout, lifetime: lifetime, stop: make(chan struct{})}
	go cs.sweep()
	return cs
}

func (cs *conversations) sweep() {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-cs.stop:
			return
		case now := <-tick.C:
			cs.expire(now)
		}
	}
}

func (cs *conversations) expire(now time.Time) {
	var gone []*conversation
	cs.mu.Lock()
	for k, c := range cs.m {
		age := now.Sub(c.created)
		if age-time.Duration(c.last.Load()) > cs.timeout || age > cs.lifetime {
			delete(cs.m, k)
			gone = append(gone, c)
		}
	}
	cs.mu.Unlock()
	for _, c := range gone {
		cs.expired.Add(1)
		c.close()
	}
}

var errTooManyConversations = errors.New("pdp: too many EAP conversations in progress")

func (cs *conversations) add(c *conversation) error {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if len(cs.m) >= cs.max {
		return errTooManyConversations
	}
	cs.m[c.state] = c
	return nil
}

func (cs *conversations) get(state string) *conversation {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.m[state]
}

func (cs *conversations) remove(c *conversation) {
	cs.mu.Lock()
	if cs.m[c.state] == c {
		delete(cs.m, c.state)
	}
	cs.mu.Unlock()
	c.close()
}

func (cs *conversations) len() int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return len(cs.m)
}

func (cs *conversations) close() {
	cs.once.Do(func() { close(cs.stop) })
	cs.mu.Lock()
	all := cs.m
	cs.m = map[string]*conversation{}
	cs.mu.Unlock()
	for _, c := range all {
		c.close()
	}
}

// serveEAP relays one EAP packet of a conversation (RFC 3579).
func (r *RADIUS) serveEAP(ctx context.Context, q *request, msg []byte) *radius.Packet {
	pkt, err := eap.Parse(msg)
	if err != nil {
		r.log.Info("malformed EAP-Message", "nas", q.nas, "mac", q.mac, "err", err)
		return r.eapReject(q, 0, "malformed EAP packet")
	}
	if r.cfg.TLS == nil {
		return r.eapReject(q, pkt.ID, "EAP is not enabled")
	}
	var c *conversation
	if state, err := rfc2865.State_Lookup(q.Packet); err == nil {
		if c = r.conv.get(string(state)); c == nil {
			r.log.Info("EAP conversation unknown or expired", "nas", q.nas, "mac", q.mac)
			return r.eapReject(q, pkt.ID, "EAP conversation expired")
		}
	} else {
		if pkt.Code != eap.CodeResponse || pkt.Type != eap.TypeIdentity {
			return r.eapReject(q, pkt.ID, "EAP conversation must start with an Identity")
		}
		c = &conversation{state: string(newState()), created: time.Now()}
		c.server = eap.NewServer(r.outerSelector(q, c), maxEAPRounds)
		if err := r.conv.add(c); err != nil {
			r.log.Warn("EAP refused", "nas", q.nas, "mac", q.mac, "err", err)
			return r.eapReject(q, pkt.ID, "server busy")
		}
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return r.eapReject(q, pkt.ID, "EAP conversation expired")
	}
	c.last.Store(int64(time.Since(c.created)))
	out, err := c.server.Handle(ctx, pkt)
	c.mu.Unlock()
	if err != nil {
		// A packet EAP says to discard (wrong Identifier): no answer, the
		// NAS retransmits or gives up.
		r.stats.dropped.Add(1)
		r.log.Debug("EAP packet discarded", "nas", q.nas, "mac", q.mac, "err", err)
		return nil
	}
	switch out.Code {
	case eap.CodeRequest:
		resp := q.Packet.Response(radius.CodeAccessChallenge)
		setEAP(resp, out)
		rfc2865.State_Set(resp, []byte(c.state))
		r.stats.challenges.Add(1)
		return resp
	case eap.CodeSuccess:
		r.conv.remove(c)
		d := r.eapDecision(q, c)
		if d == nil {
			return r.eapReject(q, out.ID, "no decision")
		}
		return r.reply(q, d, out, c.tunnel.MSK())
	default:
		r.conv.remove(c)
		r.log.Info("EAP authentication failed", "nas", q.nas, "mac", q.mac, "identity", c.server.Identity(), "err", c.server.Err())
		return r.eapReject(q, out.ID, "authentication failed")
	}
}

func (r *RADIUS) eapReject(q *request, id uint8, why string) *radius.Packet {
	resp := r.reject(q, why)
	setEAP(resp, &eap.Packet{Code: eap.CodeFailure, ID: id})
	return resp
}

// eapDecision is the decision a successful conversation earned: the
// posture assessment's, else the password-only one.
func (r *RADIUS) eapDecision(q *request, c *conversation) *Decision {
	if c.posture != nil {
		if d := c.posture.Decision(); d != nil {
			return d
		}
	}
	pol := r.cfg.Policy.Policy()
	if pol == nil || c.password == "" {
		return nil
	}
	ep := q.endpoint(c.password, "eap")
	pd := pol.DecideAuth(policies.Endpoint{ID: ep.ID, Identity: c.password, Channel: "eap"})
	d := r.cfg.TNCS.Decide(ep, pd, nil)
	d.InReply = true
	d.Reasons = append(d.Reasons, "no posture assessment inside EAP-TTLS")
	r.record(d)
	return d
}

// outerSelector offers EAP-TTLS and nothing else: PB-TNC travels only
// inside a server-authenticated tunnel.
func (r *RADIUS) outerSelector(q *request, c *conversation) eap.Selector {
	return eap.SelectorFunc(func(ctx context.Context, identity string, done []eap.ServerMethod, nak []eap.Type) (eap.ServerMethod, bool, error) {
		if len(done) > 0 || nak != nil {
			return nil, len(done) > 0, nil
		}
		c.tunnel = ttls.NewServer(&ttls.ServerConfig{
			TLS:         r.cfg.TLS,
			MaxFragment: r.fragmentSize(q),
			Phase2: func(ttls.TunnelInfo) ttls.Phase2 {
				c.inner = ttls.NewInnerServer(ttls.InnerConfig{
					PAP:       r.innerPAP(c),
					Selector:  r.innerSelector(q, c),
					MaxRounds: maxEAPRounds,
				})
				return c.inner
			},
		})
		return c.tunnel, false, nil
	})
}

// defaultFragment is the TLS bytes per EAP-TTLS packet when the NAS sends no
// Framed-MTU: what the smallest EAP MTU carries. A smaller Framed-MTU is
// raised to that MTU.
const defaultFragment = eap.MinMTU - ttls.HeaderLen

// fragmentSize is the TLS bytes per EAP-TTLS packet for the conversation
// that q starts: what the NAS's Framed-MTU leaves (RFC 3579 §2.4: the EAP
// packet must fit the link to the peer), else defaultFragment, and never
// more than the configured MaxFragment.
func (r *RADIUS) fragmentSize(q *request) int {
	size := defaultFragment
	if mtu, err := rfc2865.FramedMTU_Lookup(q.Packet); err == nil {
		size = max(int(mtu), eap.MinMTU) - ttls.HeaderLen
	}
	if r.cfg.MaxFragment > 0 && size > r.cfg.MaxFragment {
		size = r.cfg.MaxFragment
	}
	return min(size, maxEAPInChallenge-ttls.HeaderLen)
}

// maxEAPInChallenge is the largest EAP packet an Access-Challenge carries
// within RADIUS's 4096 bytes (RFC 2865 §3): besides the header, State and
// Message-Authenticator, each 253 bytes of EAP take a 2-byte
// EAP-Message attribute header (RFC 3579 §3.1).
const maxEAPInChallenge = 3800

// innerPAP verifies TTLS/PAP (RFC 5281 §11.2.5) unless the policy refuses
// passwords.
func (r *RADIUS) innerPAP(c *conversation) func(ctx context.Context, user, pass string) bool {
	if r.cfg.Users == nil {
		return nil
	}
	return func(ctx context.Context, user, pass string) bool {
		pol := r.cfg.Policy.Policy()
		if pol == nil || pol.UserAuth == policies.UserAuthNone {
			return false
		}
		if !r.cfg.Users.Verify(user, pass) {
			return false
		}
		c.password = user
		return true
	}
}

// innerSelector runs, inside the tunnel, the password check the policy asks
// for (EAP-MSCHAPv2) and then the posture assessment (PT-EAP, or EAP-TNC
// when the peer proposes it).
func (r *RADIUS) innerSelector(q *request, c *conversation) eap.Selector {
	return eap.SelectorFunc(func(ctx context.Context, identity string, done []eap.ServerMethod, nak []eap.Type) (eap.ServerMethod, bool, error) {
		pol := r.cfg.Policy.Policy()
		if pol == nil {
			return nil, false, errNoPolicy
		}
		var authed, postured bool
		for _, m := range done {
			switch m := m.(type) {
			case ttls.PAPDone, *ttls.PAPDone:
				// TTLS/PAP is a password-only login: stock supplicants
				// (wpa_supplicant) fail the whole conversation when an
				// inner EAP method follows PAP, so none is offered.
				// Endpoints that do posture use inner EAP throughout.
				return nil, true, nil
			case *mschapv2.Server:
				authed = true
				c.password = m.User()
			case *tnc.Server:
				postured = true
			}
		}
		if postured {
			return nil, true, nil
		}
		canPassword := r.cfg.Users != nil && pol.UserAuth != policies.UserAuthNone
		anon := anonymousNAI(identity)
		if !authed && pol.UserAuth == policies.UserAuthRequired && (nak != nil || !canPassword || anon) {
			return nil, false, errors.New("pdp: policy requires a password and the peer offers none")
		}
		// A password first where one can be checked; a peer without one
		// says so with the anonymous identity, or answers with a Nak that
		// proposes the posture methods.
		if !authed && canPassword && nak == nil && !anon {
			return r.mschapv2(), false, nil
		}
		switch {
		case nak == nil:
			return r.postureMethod(q, c, identity, eap.TypePTEAP), false, nil
		case contains(nak, eap.TypePTEAP):
			return r.postureMethod(q, c, identity, eap.TypePTEAP), false, nil
		case contains(nak, eap.TypeTNC):
			return r.postureMethod(q, c, identity, eap.TypeTNC), false, nil
		case !authed && canPassword && contains(nak, eap.TypeMSCHAPv2):
			return r.mschapv2(), false, nil
		case authed:
			// The peer cannot do posture: decide on the password alone.
			return nil, true, nil
		}
		return nil, false, errors.New("pdp: peer offers neither posture nor a password")
	})
}

// anonymousNAI reports whether an inner EAP identity is the anonymous NAI
// (RFC 7542 §2.4), by which a peer without a password says it has none, so
// no password method is offered to it; nothing about accounts leaks, since
// no account is named.
func anonymousNAI(identity string) bool {
	user, _, _ := strings.Cut(identity, "@")
	return user == "" || user == "anonymous"
}

func contains[T comparable](list []T, v T) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func (r *RADIUS) mschapv2() eap.ServerMethod {
	return mschapv2.NewServer(mschapv2.ServerConfig{
		Name: "trustnac",
		Lookup: func(ctx context.Context, user string) ([]byte, bool) {
			return r.cfg.Users.NTHash(user)
		},
	})
}

// postureMethod starts a PB-TNC session with the TNCS inside the tunnel.
// The endpoint's identity counts for the policy only when a password
// proved it.
func (r *RADIUS) postureMethod(q *request, c *conversation, identity string, t eap.Type) eap.ServerMethod {
	ep := q.endpoint(c.password, "eap")
	c.posture = r.cfg.TNCS.NewAssessment(ep)
	cfg := r.cfg.TNCS.PBConfig()
	if cfg.MaxBatchSize == 0 || cfg.MaxBatchSize > pbtnc.EAPMaxBatchSize {
		cfg.MaxBatchSize = pbtnc.EAPMaxBatchSize
	}
	return tnc.NewServer(tnc.ServerConfig{Type: t, MaxMessage: pbtnc.EAPMaxBatchSize}, pbtnc.NewServer(c.posture, cfg))
}
