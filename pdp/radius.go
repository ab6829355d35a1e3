package pdp

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2868"
	"layeh.com/radius/rfc2869"
	"layeh.com/radius/vendors/microsoft"

	"trustnac/imv"
	"trustnac/policies"
	"trustnac/transport/eap"
	tradius "trustnac/transport/radius"
)

// RADIUSConfig configures the PDP's RADIUS authentication and accounting
// handlers.
type RADIUSConfig struct {
	TNCS     *TNCS
	Policy   *PolicySource
	Store    Store
	Sessions *SessionTable
	// Users verifies PAP and EAP-MSCHAPv2; nil refuses passwords.
	Users *Users
	// TLS holds the EAP-TTLS server certificate; nil refuses EAP.
	TLS *tls.Config
	// SessionTimeout is sent for roles without their own (0: none).
	SessionTimeout time.Duration
	// EAPTimeout is how long an EAP conversation may wait for the NAS's
	// next request before its State expires (default 30s); EAPLifetime
	// bounds a whole conversation (default 2m).
	EAPTimeout  time.Duration
	EAPLifetime time.Duration
	// MaxEAPSessions bounds conversations in progress (default 4096).
	MaxEAPSessions int
	// MaxFragment caps the TLS payload of one EAP-TTLS packet; within it
	// the NAS's Framed-MTU decides, else 1024 (0: no cap but the NAS's).
	MaxFragment int
	// PostureLifetime is how long a posture decision made over another
	// channel (PT-TLS) holds for the MAB requests of the same MAC
	// (default 24h).
	PostureLifetime time.Duration
	// CoA sends Dynamic Authorization requests; nil sends none.
	CoA CoASender
	Log *slog.Logger
}

// CoASender sends a CoA-Request or Disconnect-Request to the NAS of a
// session (RFC 5176).
type CoASender interface {
	DynamicAuth(ctx context.Context, nas string, addr netip.Addr, p *radius.Packet) error
}

// RADIUS answers Access-Requests (MAB, PAP, EAP-TTLS with PT-EAP or
// EAP-TNC inside) and Accounting-Requests for the PDP.
type RADIUS struct {
	cfg   RADIUSConfig
	log   *slog.Logger
	conv  *conversations
	stats radiusStats

	mu   sync.Mutex
	last map[string]lastDecision // endpoint ID → its stored decision
	refs string                  // referencesKey of the policy last seen by Redecide

	// What the MAB and PAP handlers keep between requests, so that a
	// repeated request costs little (see nameTable).
	names     nameTable
	decisions atomic.Pointer[decisionMemo]
	posture   *postureGen // nil: every MAB request reads the store
}

// lastDecision is what record compares a RADIUS decision with to tell
// whether it changed.
type lastDecision struct {
	role, rule, policy, identity string
	reasons                      []string
}

type radiusStats struct {
	mab, pap, eap, accepts, rejects, challenges, dropped, acct, coa, coaFailed, reassess atomic.Uint64
}

// NewRADIUS returns the handlers. Close releases the EAP conversations.
func NewRADIUS(cfg RADIUSConfig) *RADIUS {
	if cfg.EAPTimeout <= 0 {
		cfg.EAPTimeout = 30 * time.Second
	}
	if cfg.EAPLifetime <= 0 {
		cfg.EAPLifetime = 2 * time.Minute
	}
	if cfg.MaxEAPSessions <= 0 {
		cfg.MaxEAPSessions = 4096
	}
	if cfg.PostureLifetime <= 0 {
		cfg.PostureLifetime = 24 * time.Hour
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Sessions == nil {
		cfg.Sessions, _ = NewSessionTable(nil)
	}
	r := &RADIUS{cfg: cfg, log: cfg.Log, last: map[string]lastDecision{}}
	if bs, ok := cfg.Store.(*BoltStore); ok {
		// The bbolt file is this process's alone, and the posture records
		// in it are written only through r.cfg.Store (postureID), which
		// invalidates the cache. A store that other PDPs write to (etcd)
		// gets no cache.
		r.posture = new(postureGen)
		r.cfg.Store = &postureStore{Store: bs, gen: r.posture}
	}
	if cfg.Policy != nil {
		if pol := cfg.Policy.Policy(); pol != nil {
			r.refs = referencesKey(pol)
		}
	}
	r.conv = newConversations(cfg.MaxEAPSessions, cfg.EAPTimeout, cfg.EAPLifetime)
	return r
}

// Close ends the EAP conversations in progress.
func (r *RADIUS) Close() { r.conv.close() }

// Sessions is the session table fed by accounting.
func (r *RADIUS) Sessions() *SessionTable { return r.cfg.Sessions }

// Stats returns counters of the RADIUS handlers.
func (r *RADIUS) Stats() map[string]uint64 {
	s := &r.stats
	return map[string]uint64{
		"mab": s.mab.Load(), "pap": s.pap.Load(), "eap": s.eap.Load(),
		"accept": s.accepts.Load(), "reject": s.rejects.Load(), "challenge": s.challenges.Load(),
		"dropped": s.dropped.Load(), "accounting": s.acct.Load(),
		"coa": s.coa.Load(), "coa_failed": s.coaFailed.Load(), "reassess": s.reassess.Load(),
		"eap_conversations": uint64(r.conv.len()), "eap_expired": r.conv.expired.Load(),
	}
}

// request is what the handlers read from an Access-Request.
type request struct {
	*tradius.Request
	names
	ent *nameEntry // what the handlers keep for requests with these names
}

// names are the strings parse derives from the attributes that say who
// and where a request is from.
type names struct {
	user    string
	mac     string // Calling-Station-Id, normalised; "" when absent or not a MAC
	macID   string // "mac:" + mac, "" without mac
	station string // Calling-Station-Id as sent
	nas     string // NAS-Identifier or client name
	port    string // NAS-Port-Id, else NAS-Port in decimal
	remote  string // nas + " " + port
	mab     bool   // the User-Name is the MAC address of the Calling-Station-Id
}

func (r *RADIUS) parse(req *tradius.Request) request {
	p := req.Packet
	var a nameAttrs
	a[0], _ = p.Lookup(rfc2865.UserName_Type)
	a[1], _ = p.Lookup(rfc2865.CallingStationID_Type)
	a[2], _ = p.Lookup(rfc2865.NASIdentifier_Type)
	a[3], _ = p.Lookup(rfc2869.NASPortID_Type)
	a[4], _ = p.Lookup(rfc2865.NASPort_Type)
	ent := r.names.get(&a, req.Client.Name)
	return request{Request: req, names: ent.names, ent: ent}
}

// nameAttrs are the values of User-Name, Calling-Station-Id,
// NAS-Identifier, NAS-Port-Id and NAS-Port, nil when absent.
type nameAttrs [5][]byte

// newNames derives the names of a request from its attributes and the
// name of its client.
func newNames(a *nameAttrs, client string) *nameEntry {
	e := new(nameEntry)
	n := &e.names
	*n = names{user: string(a[0]), station: string(a[1]), nas: string(a[2]), port: string(a[3])}
	if mac, err := policies.NormalizeMAC(n.station); err == nil {
		n.mac, n.macID = mac, "mac:"+mac
		n.mab = sameMAC(n.user, mac)
	}
	if n.nas == "" {
		n.nas = client
	}
	if n.port == "" && len(a[4]) == 4 {
		n.port = strconv.FormatUint(uint64(binary.BigEndian.Uint32(a[4])), 10)
	}
	n.remote = n.nas + " " + n.port
	return e
}

// endpoint names the device behind a request: by MAC when the NAS sent one,
// else by the user name.
func (q *request) endpoint(identity, channel string) imv.Endpoint {
	ep := imv.Endpoint{MAC: q.mac, Identity: identity, Channel: channel, Remote: q.remote}
	switch {
	case q.macID != "":
		ep.ID = q.macID
	case q.mac != "":
		ep.ID = "mac:" + q.mac
	case identity != "":
		ep.ID = "id:" + identity
	default:
		ep.ID = "nas:" + q.nas + "/" + q.port
	}
	return ep
}

// ServeRADIUS implements tradius.Handler for the authentication port.
func (r *RADIUS) ServeRADIUS(ctx context.Context, req *tradius.Request) *radius.Packet {
	if req.Packet.Code != radius.CodeAccessRequest {
		r.stats.dropped.Add(1)
		return nil
	}
	q := r.parse(req)
	if msg, ok := tradius.EAPMessage(req.Packet); ok {
		r.stats.eap.Add(1)
		eq := new(request) // the EAP conversation may keep it
		*eq = q
		return r.serveEAP(ctx, eq, msg)
	}
	if q.mab {
		r.stats.mab.Add(1)
		return r.serveMAB(&q)
	}
	if pass, err := rfc2865.UserPassword_LookupString(req.Packet); err == nil {
		r.stats.pap.Add(1)
		return r.servePAP(&q, pass)
	}
	if _, err := rfc2865.CHAPPassword_Lookup(req.Packet); err == nil {
		return r.reject(&q, "CHAP is not supported")
	}
	return r.reject(&q, "no credentials")
}

// sameMAC reports whether a User-Name is the MAC address mac in any usual
// format: what a NAS doing MAB sends.
func sameMAC(user, mac string) bool { return policies.SameMAC(user, mac) }

func (r *RADIUS) serveMAB(q *request) *radius.Packet {
	pol := r.cfg.Policy.Policy()
	if pol == nil {
		return r.reject(q, "no policy in force")
	}
	ep := q.endpoint("", "mab")
	pd := r.decideMAB(pol, q, policies.Endpoint{ID: ep.ID, MAC: q.mac, Channel: "mab"})
	d := r.cfg.TNCS.Decide(ep, pd, nil)
	// A device admitted by MAB that then proved its posture over another
	// channel keeps that posture's role while it is fresh.
	if rec := r.devicePosture(q); rec != nil {
		d.Role, d.Params = rec.Role, pol.RoleParams(rec.Role)
		d.Rule, d.Reasons = rec.Rule, append([]string{"posture assessed over " + rec.Channel}, rec.Reasons...)
		d.Remediation = d.Params.Remediation
	}
	d.InReply = true
	r.record(d)
	return r.reply(q, d, nil, nil)
}

// freshPosture returns the posture decision another channel made for the
// device with this MAC, nil when there is none or it is too old.
// The record is the caller's to modify.
func (r *RADIUS) freshPosture(mac string) *Record {
	if mac == "" || r.cfg.Store == nil {
		return nil
	}
	rec, err := r.cfg.Store.Get(postureID(mac))
	if err != nil || time.Since(rec.DecidedAt) >= r.cfg.PostureLifetime {
		return nil
	}
	return rec
}

// devicePosture is freshPosture(q.mac), with the record kept in q.ent
// for postureCacheTTL at most, and only until a posture record is written
// through r.cfg.Store (postureStore).
func (r *RADIUS) devicePosture(q *request) *Record {
	if r.posture == nil || q.ent == nil {
		return r.freshPosture(q.mac)
	}
	if q.mac == "" {
		return nil
	}
	now := time.Now()
	gen := r.posture.n.Load()
	pm := q.ent.posture.Load()
	if pm == nil || pm.gen != gen || !now.Before(pm.expires) {
		rec, err := r.cfg.Store.Get(postureID(q.mac))
		switch {
		case err == nil:
		case errors.Is(err, ErrNotFound):
			rec = nil
		default:
			return nil // not kept: the next request tries again
		}
		// Kept with the generation read before the look-up: if a write
		// raced it, the generation has moved on and the entry is stale.
		pm = &postureMemo{gen: gen, rec: rec, expires: now.Add(postureCacheTTL)}
		q.ent.posture.Store(pm)
	}
	if pm.rec == nil || now.Sub(pm.rec.DecidedAt) >= r.cfg.PostureLifetime {
		return nil
	}
	rec := *pm.rec
	return &rec
}

func (r *RADIUS) servePAP(q *request, pass string) *radius.Packet {
	pol := r.cfg.Policy.Policy()
	if pol == nil {
		return r.reject(q, "no policy in force")
	}
	if r.cfg.Users == nil || pol.UserAuth == policies.UserAuthNone {
		return r.reject(q, "password authentication is not accepted")
	}
	if q.user == "" || !r.cfg.Users.Verify(q.user, pass) {
		r.log.Info("PAP authentication failed", "user", q.user, "nas", q.nas, "mac", q.mac)
		return r.reject(q, "authentication failed")
	}
	ep := q.endpoint(q.user, "pap")
	pd := r.decideAuth(pol, policies.Endpoint{ID: ep.ID, Identity: q.user, Channel: "pap"})
	d := r.cfg.TNCS.Decide(ep, pd, nil)
	d.InReply = true
	r.record(d)
	return r.reply(q, d, nil, nil)
}

// record stores a RADIUS decision when it differs from the endpoint's last
// one; a repeated decision (the next re-authentication) is only audited.
func (r *RADIUS) record(d *Decision) {
	r.mu.Lock()
	last, ok := r.last[d.Endpoint.ID]
	same := ok && last.role == d.Role && last.rule == d.Rule && last.policy == d.Policy &&
		last.identity == d.Endpoint.Identity && slices.Equal(last.reasons, d.Reasons)
	if !same {
		if len(r.last) > 1<<20 {
			clear(r.last)
		}
		r.last[d.Endpoint.ID] = lastDecision{role: d.Role, rule: d.Rule, policy: d.Policy,
			identity: d.Endpoint.Identity, reasons: slices.Clip(d.Reasons)}
	}
	r.mu.Unlock()
	if same && d.Facts == nil {
		r.cfg.TNCS.Audit(d)
		return
	}
	r.cfg.TNCS.Record(d)
}

// reply turns a decision into Access-Accept or Access-Reject (RFC 2865,
// RFC 3580 §3.31 for the VLAN), with EAP's final packet and keys when given.
func (r *RADIUS) reply(q *request, d *Decision, final *eap.Packet, msk []byte) *radius.Packet {
	if d.Role == policies.RoleDeny {
		resp := newReply(q.Packet, radius.CodeAccessReject, nil)
		replyMessage(resp, reasonText(d))
		if final != nil {
			setEAP(resp, &eap.Packet{Code: eap.CodeFailure, ID: final.ID})
		}
		r.stats.rejects.Add(1)
		return resp
	}
	timeout := time.Duration(d.Params.SessionTimeout) * time.Second
	if timeout == 0 {
		timeout = r.cfg.SessionTimeout
	}
	text := reasonText(d)
	if d.Role == policies.RoleAdmit {
		text = ""
	}
	resp := newReply(q.Packet, radius.CodeAccessAccept, acceptAttrs(d, timeout, text))
	if final != nil {
		setEAP(resp, final)
	}
	if len(msk) >= 64 {
		// RFC 2548 §2.4.2-3: the Recv-Key is the first half of the MSK.
		microsoft.MSMPPERecvKey_Set(resp, msk[:32])
		microsoft.MSMPPESendKey_Set(resp, msk[32:64])
	}
	r.stats.accepts.Add(1)
	return resp
}

func (r *RADIUS) reject(q *request, why string) *radius.Packet {
	resp := newReply(q.Packet, radius.CodeAccessReject, nil)
	replyMessage(resp, why)
	r.stats.rejects.Add(1)
	r.log.Debug("Access-Reject", "nas", q.nas, "user", q.user, "mac", q.mac, "reason", why)
	return resp
}

// replyPacket is a reply with room for its attributes, so that it takes
// one allocation.
type replyPacket struct {
	p     radius.Packet
	attrs [12]*radius.AVP
}

// newReply is req.Response(code) with attrs (copied) and room for more.
func newReply(req *radius.Packet, code radius.Code, attrs []*radius.AVP) *radius.Packet {
	rp := &replyPacket{p: radius.Packet{Code: code, Identifier: req.Identifier, Authenticator: req.Authenticator, Secret: req.Secret}}
	if len(attrs)+4 <= len(rp.attrs) {
		rp.p.Attributes = rp.attrs[:len(attrs)]
	} else {
		rp.p.Attributes = make(radius.Attributes, len(attrs), len(attrs)+4)
	}
	copy(rp.p.Attributes, attrs)
	return &rp.p
}

// tunnelTypeVLAN is Tunnel-Type VLAN (RFC 3580 §3.31).
const tunnelTypeVLAN rfc2868.TunnelType = 13

// setRole puts a decision's enforcement into a reply or CoA-Request: the
// role as Filter-Id (RFC 2865 §5.11), its VLAN as Tunnel-Type VLAN,
// Tunnel-Medium-Type 802 and Tunnel-Private-Group-Id (RFC 3580 §3.31), and
// the role in Class so that accounting tells it back. p must carry none of
// these yet.
func setRole(p *radius.Packet, d *Decision) {
	p.Attributes = append(p.Attributes, roleAttrs(d)...)
}

// encodeAccept puts the attributes of an Access-Accept for d into p: the
// role (setRole), Session-Timeout and Termination-Action RADIUS-Request
// (RFC 2865 §5.27, §5.29) when timeout is positive, the identity as
// User-Name, and text as Reply-Message. It is what acceptAttrs caches.
func encodeAccept(p *radius.Packet, d *Decision, timeout time.Duration, text string) {
	encodeRole(p, d)
	if timeout > 0 {
		rfc2865.SessionTimeout_Set(p, rfc2865.SessionTimeout(timeout/time.Second))
		rfc2865.TerminationAction_Set(p, rfc2865.TerminationAction_Value_RADIUSRequest)
	}
	if d.Endpoint.Identity != "" {
		rfc2865.UserName_SetString(p, d.Endpoint.Identity)
	}
	if len(text) > 253 {
		text = text[:253]
	}
	if text != "" {
		rfc2865.ReplyMessage_SetString(p, text)
	}
}

// encodeRole is setRole without the cache.
func encodeRole(p *radius.Packet, d *Decision) {
	filter := d.Params.FilterID
	if filter == "" {
		filter = d.Role
	}
	rfc2865.FilterID_SetString(p, filter)
	if v := d.Params.VLAN; v > 0 {
		rfc2868.TunnelType_Set(p, 0, tunnelTypeVLAN)
		rfc2868.TunnelMediumType_Set(p, 0, rfc2868.TunnelMediumType_Value_IEEE802)
		rfc2868.TunnelPrivateGroupID_SetString(p, 0, strconv.Itoa(v))
	}
	rfc2865.Class_SetString(p, classPrefix+d.Role)
}

// classPrefix starts the Class attribute the PDP sends.
const classPrefix = "trustnac:"

// replyMessage sets a Reply-Message (RFC 2865 §5.18), cut to one attribute.
func replyMessage(p *radius.Packet, s string) {
	if len(s) > 253 {
		s = s[:253]
	}
	if s != "" {
		p.Attributes.Del(rfc2865.ReplyMessage_Type)
		p.Attributes = append(p.Attributes, stringAttr(rfc2865.ReplyMessage_Type, s))
	}
}

func reasonText(d *Decision) string {
	if len(d.Reasons) == 0 {
		return ""
	}
	return d.Reasons[0]
}

func setEAP(p *radius.Packet, e *eap.Packet) {
	b, err := e.MarshalBinary()
	if err == nil {
		tradius.SetEAPMessage(p, b)
	}
}

// postureID is the ID of the record that carries, for a MAB device, the
// role its posture assessment over another channel earned. Posture records
// are written only through RADIUS.cfg.Store, which keeps the posture cache
// (postureStore) in step.
func postureID(mac string) string { return postureIDPrefix + mac }

const postureIDPrefix = "posture:"

func newState() []byte {
	b := make([]byte, 18)
	rand.Read(b)
	copy(b, "tn")
	return b
}

var errNoPolicy = errors.New("pdp: no policy in force")

// The caches below let a repeated MAB or PAP request (the next
// re-authentication of the same device) cost little: the strings derived
// from its attributes and, with them, the device's MAB decision and
// posture record (nameTable); the policy's decisions by MAC and by identity
// (decisionMemo); and reply attributes (attrCache). Each map is bounded and
// starts afresh when full.

// maxCached bounds the maps of a decisionMemo.
const maxCached = 1 << 16

// nameTable interns the names of requests by the attributes they come
// from, so that the next request of the same device allocates none.
type nameTable struct {
	mu sync.RWMutex
	m  map[string]*nameEntry
}

// nameEntry is the names of a request and what the handlers keep for the
// device they name.
type nameEntry struct {
	names
	mab     atomic.Pointer[mabMemo]     // the device's MAB decision
	posture atomic.Pointer[postureMemo] // the device's posture record
}

// mabMemo is the MAB decision of pol for a device.
type mabMemo struct {
	pol *policies.Policy
	d   policies.Decision
}

// postureMemo is the posture record of a device (nil: none) as read at
// posture generation gen.
type postureMemo struct {
	gen     uint64
	rec     *Record
	expires time.Time
}

const (
	maxNames      = 1 << 14 // entries of a nameTable
	maxNameKeyLen = 256     // longer keys are not kept
)

// get returns the names of a request with attributes a from client.
func (t *nameTable) get(a *nameAttrs, client string) *nameEntry {
	// The key: each value with a length in front, then the client.
	var buf [maxNameKeyLen]byte
	key := buf[:0]
	for _, v := range a {
		if len(key)+1+len(v) > maxNameKeyLen {
			return newNames(a, client)
		}
		key = append(key, byte(len(v)))
		key = append(key, v...)
	}
	if len(key)+len(client) > maxNameKeyLen {
		return newNames(a, client)
	}
	key = append(key, client...)
	t.mu.RLock()
	n := t.m[string(key)]
	t.mu.RUnlock()
	if n != nil {
		return n
	}
	n = newNames(a, client)
	t.mu.Lock()
	if t.m == nil || len(t.m) >= maxNames {
		t.m = make(map[string]*nameEntry)
	}
	t.m[string(key)] = n
	t.mu.Unlock()
	return n
}

// decisionMemo holds the decisions of one policy that depend on nothing
// but the MAC (DecideMAB) or the identity (DecideAuth), without their
// traces. Their slices are shared: they are clipped, so that an append
// copies, and must not be modified in place.
type decisionMemo struct {
	pol *policies.Policy
	// byIdentity: no group has a match condition, so DecideAuth depends
	// on the identity alone (a condition could read endpoint.id).
	byIdentity bool

	mu   sync.RWMutex
	mab  map[string]policies.Decision // by normalised MAC
	auth map[string]policies.Decision // by identity
}

// memo returns the decision memo of pol, replacing that of an older
// policy.
func (r *RADIUS) memo(pol *policies.Policy) *decisionMemo {
	m := r.decisions.Load()
	if m != nil && m.pol == pol {
		return m
	}
	nm := &decisionMemo{pol: pol, byIdentity: true, mab: map[string]policies.Decision{}, auth: map[string]policies.Decision{}}
	for _, g := range pol.Groups {
		if g.Match != "" {
			nm.byIdentity = false
		}
	}
	if r.decisions.CompareAndSwap(m, nm) {
		return nm
	}
	if m = r.decisions.Load(); m != nil && m.pol == pol {
		return m
	}
	return nm // a racing reload: use this one once
}

// decideMAB is pol.DecideMAB(ep) for ep as serveMAB builds it from q (ID
// and channel follow from the MAC), memoised in q.ent and by MAC. A
// decision in which a group's condition failed to evaluate is not kept:
// the failure may not repeat (the time limit).
func (r *RADIUS) decideMAB(pol *policies.Policy, q *request, ep policies.Endpoint) policies.Decision {
	if q.ent != nil {
		if m := q.ent.mab.Load(); m != nil && m.pol == pol {
			return m.d
		}
	}
	m := r.memo(pol)
	d, kept := m.decide(m.mab, ep.MAC, func() policies.Decision { return pol.DecideMAB(ep) })
	if kept && q.ent != nil {
		q.ent.mab.Store(&mabMemo{pol: pol, d: d})
	}
	return d
}

// decideAuth is pol.DecideAuth(ep), memoised by identity when the policy
// allows it.
func (r *RADIUS) decideAuth(pol *policies.Policy, ep policies.Endpoint) policies.Decision {
	m := r.memo(pol)
	if !m.byIdentity {
		return pol.DecideAuth(ep)
	}
	d, _ := m.decide(m.auth, ep.Identity, func() policies.Decision { return pol.DecideAuth(ep) })
	return d
}

// decide returns the decision table (m.mab or m.auth) holds under key, or
// else decide's, which it keeps unless a group's condition failed to
// evaluate: the failure may not repeat (the time limit). kept says the
// decision returned is the table's, shared and clipped (shareable).
func (m *decisionMemo) decide(table map[string]policies.Decision, key string, decide func() policies.Decision) (d policies.Decision, kept bool) {
	m.mu.RLock()
	d, ok := table[key]
	m.mu.RUnlock()
	if ok {
		return d, true
	}
	d = decide()
	if errored(d.Trace) {
		return d, false
	}
	d = shareable(d)
	m.mu.Lock()
	if len(table) >= maxCached {
		clear(table)
	}
	table[key] = d
	m.mu.Unlock()
	return d, true
}

func errored(trace []policies.TraceStep) bool {
	for _, s := range trace {
		if s.Errored {
			return true
		}
	}
	return false
}

// shareable drops d's trace, which nobody on the RADIUS path reads, and
// clips its slices.
func shareable(d policies.Decision) policies.Decision {
	d.Trace = nil
	d.Groups = slices.Clip(d.Groups)
	d.Reasons = slices.Clip(d.Reasons)
	return d
}

// postureGen counts writes of posture records through postureStore. A
// device's posture record kept in its nameEntry holds only while the count
// is what it was when the record was read, and for postureCacheTTL at
// most, which bounds what a writer that bypasses postureStore could leave
// stale. Posture writes are rare (an assessment over another channel of a
// device with a NAS session), so one count for all devices does.
type postureGen struct{ n atomic.Uint64 }

const postureCacheTTL = time.Second

// postureStore is the Store RADIUS writes through: writing a posture
// record moves the posture generation on before and after the write, so
// that neither a record read before it nor one read while it was under
// way is used after it.
type postureStore struct {
	Store
	gen *postureGen
}

// Put implements Store.
func (s *postureStore) Put(rec *Record) error {
	if !strings.HasPrefix(rec.ID, postureIDPrefix) {
		return s.Store.Put(rec)
	}
	s.gen.n.Add(1)
	defer s.gen.n.Add(1)
	return s.Store.Put(rec)
}

// roleKey is what the RADIUS attributes of a role depend on.
type roleKey struct {
	role, filter string
	vlan         int
}

// acceptKey is what the attributes of an Access-Accept depend on.
type acceptKey struct {
	roleKey
	timeout        time.Duration
	identity, text string
}

// attrCache holds reply attributes that repeat from one reply to the next.
// They are shared between packets: nothing may modify them in place
// (radius.Attributes.Set replaces an AVP rather than changing it).
var attrCache struct {
	roles   boundedMemo[roleKey, []*radius.AVP]
	accepts boundedMemo[acceptKey, []*radius.AVP]
	strings boundedMemo[stringAttrKey, *radius.AVP]
}

// maxAttrCache bounds each map of attrCache.
const maxAttrCache = 4096

// boundedMemo maps keys to values made on first use; it starts afresh
// when it holds maxAttrCache of them.
type boundedMemo[K comparable, V any] struct {
	mu sync.RWMutex
	m  map[K]V
}

// get returns the value of k, made by newValue if k is new.
func (c *boundedMemo[K, V]) get(k K, newValue func() V) V {
	c.mu.RLock()
	v, ok := c.m[k]
	c.mu.RUnlock()
	if ok {
		return v
	}
	v = newValue()
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxAttrCache {
		c.m = make(map[K]V)
	}
	c.m[k] = v
	c.mu.Unlock()
	return v
}

type stringAttrKey struct {
	typ   radius.Type
	value string
}

func roleKeyOf(d *Decision) roleKey {
	return roleKey{role: d.Role, filter: d.Params.FilterID, vlan: d.Params.VLAN}
}

// roleAttrs returns the attributes encodeRole gives d, from the cache. The
// slice is shared: append to a copy.
func roleAttrs(d *Decision) []*radius.AVP {
	return attrCache.roles.get(roleKeyOf(d), func() []*radius.AVP {
		var p radius.Packet
		encodeRole(&p, d)
		return slices.Clip(p.Attributes)
	})
}

// acceptAttrs returns the attributes encodeAccept gives d, timeout and
// text, from the cache. The slice is shared: append to a copy.
func acceptAttrs(d *Decision, timeout time.Duration, text string) []*radius.AVP {
	k := acceptKey{roleKey: roleKeyOf(d), timeout: timeout, identity: d.Endpoint.Identity, text: text}
	return attrCache.accepts.get(k, func() []*radius.AVP {
		var p radius.Packet
		encodeAccept(&p, d, timeout, text)
		return slices.Clip(p.Attributes)
	})
}

// stringAttr returns an attribute of type typ holding s, which must fit
// (253 octets), shared with other packets when it was seen before.
func stringAttr(typ radius.Type, s string) *radius.AVP {
	return attrCache.strings.get(stringAttrKey{typ, s}, func() *radius.AVP {
		return &radius.AVP{Type: typ, Attribute: radius.Attribute(s)}
	})
}
