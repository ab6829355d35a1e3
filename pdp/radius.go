package pdp

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"log/slog"
	"net/netip"
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
	last map[string]string // endpoint ID → summary of its stored decision
	refs string            // referencesKey of the policy last seen by Redecide
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
	r := &RADIUS{cfg: cfg, log: cfg.Log, last: map[string]string{}}
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
	user    string
	mac     string // Calling-Station-Id, normalised; "" when absent or not a MAC
	station string // Calling-Station-Id as sent
	nas     string // NAS-Identifier or client name
	port    string
}

func (r *RADIUS) parse(req *tradius.Request) *request {
	p := req.Packet
	q := &request{Request: req, user: rfc2865.UserName_GetString(p), station: rfc2865.CallingStationID_GetString(p)}
	if mac, err := policies.NormalizeMAC(q.station); err == nil {
		q.mac = mac
	}
	q.nas = rfc2865.NASIdentifier_GetString(p)
	if q.nas == "" {
		q.nas = req.Client.Name
	}
	q.port = rfc2869.NASPortID_GetString(p)
	if q.port == "" {
		if n, err := rfc2865.NASPort_Lookup(p); err == nil {
			q.port = strconv.FormatUint(uint64(n), 10)
		}
	}
	return q
}

// endpoint names the device behind a request: by MAC when the NAS sent one,
// else by the user name.
func (q *request) endpoint(identity, channel string) imv.Endpoint {
	ep := imv.Endpoint{MAC: q.mac, Identity: identity, Channel: channel, Remote: q.nas + " " + q.port}
	switch {
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
		return r.serveEAP(ctx, q, msg)
	}
	if q.mac != "" && sameMAC(q.user, q.mac) {
		r.stats.mab.Add(1)
		return r.serveMAB(q)
	}
	if _, err := rfc2865.UserPassword_Lookup(req.Packet); err == nil {
		r.stats.pap.Add(1)
		return r.servePAP(q)
	}
	if _, err := rfc2865.CHAPPassword_Lookup(req.Packet); err == nil {
		return r.reject(q, "CHAP is not supported")
	}
	return r.reject(q, "no credentials")
}

// sameMAC reports whether a User-Name is the MAC address mac in any usual
// format: what a NAS doing MAB sends.
func sameMAC(user, mac string) bool {
	m, err := policies.NormalizeMAC(user)
	return err == nil && m == mac
}

func (r *RADIUS) serveMAB(q *request) *radius.Packet {
	pol := r.cfg.Policy.Policy()
	if pol == nil {
		return r.reject(q, "no policy in force")
	}
	ep := q.endpoint("", "mab")
	pd := pol.DecideMAB(policies.Endpoint{ID: ep.ID, MAC: q.mac, Channel: "mab"})
	d := r.cfg.TNCS.Decide(ep, pd, nil)
	// A device admitted by MAB that then proved its posture over another
	// channel keeps that posture's role while it is fresh.
	if rec := r.freshPosture(q.mac); rec != nil {
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

func (r *RADIUS) servePAP(q *request) *radius.Packet {
	pol := r.cfg.Policy.Policy()
	if pol == nil {
		return r.reject(q, "no policy in force")
	}
	if r.cfg.Users == nil || pol.UserAuth == policies.UserAuthNone {
		return r.reject(q, "password authentication is not accepted")
	}
	pass := rfc2865.UserPassword_GetString(q.Packet)
	if q.user == "" || !r.cfg.Users.Verify(q.user, pass) {
		r.log.Info("PAP authentication failed", "user", q.user, "nas", q.nas, "mac", q.mac)
		return r.reject(q, "authentication failed")
	}
	ep := q.endpoint(q.user, "pap")
	pd := pol.DecideAuth(policies.Endpoint{ID: ep.ID, Identity: q.user, Channel: "pap"})
	d := r.cfg.TNCS.Decide(ep, pd, nil)
	d.InReply = true
	r.record(d)
	return r.reply(q, d, nil, nil)
}

// record stores a RADIUS decision when it differs from the endpoint's last
// one; a repeated decision (the next re-authentication) is only audited.
func (r *RADIUS) record(d *Decision) {
	sum := d.Role + "\x00" + d.Rule + "\x00" + d.Policy + "\x00" + d.Endpoint.Identity + "\x00" + strings.Join(d.Reasons, "\x00")
	r.mu.Lock()
	same := r.last[d.Endpoint.ID] == sum
	if !same {
		if len(r.last) > 1<<20 {
			clear(r.last)
		}
		r.last[d.Endpoint.ID] = sum
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
		resp := q.Packet.Response(radius.CodeAccessReject)
		replyMessage(resp, reasonText(d))
		if final != nil {
			setEAP(resp, &eap.Packet{Code: eap.CodeFailure, ID: final.ID})
		}
		r.stats.rejects.Add(1)
		return resp
	}
	resp := q.Packet.Response(radius.CodeAccessAccept)
	setRole(resp, d)
	timeout := time.Duration(d.Params.SessionTimeout) * time.Second
	if timeout == 0 {
		timeout = r.cfg.SessionTimeout
	}
	if timeout > 0 {
		rfc2865.SessionTimeout_Set(resp, rfc2865.SessionTimeout(timeout/time.Second))
		rfc2865.TerminationAction_Set(resp, rfc2865.TerminationAction_Value_RADIUSRequest)
	}
	if d.Endpoint.Identity != "" {
		rfc2865.UserName_SetString(resp, d.Endpoint.Identity)
	}
	if text := reasonText(d); text != "" && d.Role != policies.RoleAdmit {
		replyMessage(resp, text)
	}
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
	resp := q.Packet.Response(radius.CodeAccessReject)
	replyMessage(resp, why)
	r.stats.rejects.Add(1)
	r.log.Debug("Access-Reject", "nas", q.nas, "user", q.user, "mac", q.mac, "reason", why)
	return resp
}

// tunnelTypeVLAN is Tunnel-Type VLAN (RFC 3580 §3.31).
const tunnelTypeVLAN rfc2868.TunnelType = 13

// setRole puts a decision's enforcement into a reply or CoA-Request: the
// role as Filter-Id (RFC 2865 §5.11), its VLAN as Tunnel-Type VLAN,
// Tunnel-Medium-Type 802 and Tunnel-Private-Group-Id (RFC 3580 §3.31), and
// the role in Class so that accounting tells it back.
func setRole(p *radius.Packet, d *Decision) {
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
		rfc2865.ReplyMessage_SetString(p, s)
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
// role its posture assessment over another channel earned.
func postureID(mac string) string { return "posture:" + mac }

func newState() []byte {
	b := make([]byte, 18)
	rand.Read(b)
	copy(b, "tn")
	return b
}

var errNoPolicy = errors.New("pdp: no policy in force")
