package pdp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
	"layeh.com/radius/rfc3576"

	"trustnac/imv"
	"trustnac/policies"
	tradius "trustnac/transport/radius"
)

// Accounting returns the handler of the accounting port (RFC 2866): it
// keeps the session table, so the PDP knows which NAS and port hold each
// endpoint.
func (r *RADIUS) Accounting() tradius.Handler { return tradius.HandlerFunc(r.serveAccounting) }

func (r *RADIUS) serveAccounting(ctx context.Context, req *tradius.Request) *radius.Packet {
	if req.Packet.Code != radius.CodeAccountingRequest {
		r.stats.dropped.Add(1)
		return nil
	}
	r.stats.acct.Add(1)
	p := req.Packet
	q := r.parse(req)
	status, err := rfc2866.AcctStatusType_Lookup(p)
	if err != nil {
		r.log.Info("accounting request without Acct-Status-Type", "nas", q.nas)
		return nil // RFC 2866 §5.1: it must be present; not acknowledged
	}
	nasAddr := req.Remote.Addr().Unmap()
	if ip, err := rfc2865.NASIPAddress_Lookup(p); err == nil {
		if a, ok := netip.AddrFromSlice(ip.To4()); ok && !a.IsUnspecified() {
			nasAddr = a
		}
	}
	var err2 error
	switch status {
	case rfc2866.AcctStatusType_Value_Start, rfc2866.AcctStatusType_Value_InterimUpdate:
		id := rfc2866.AcctSessionID_GetString(p)
		if id == "" {
			r.log.Info("accounting request without Acct-Session-Id", "nas", q.nas)
			break
		}
		s := &Session{
			NAS: req.Client.Name, NASAddr: nasAddr, NASID: rfc2865.NASIdentifier_GetString(p),
			ID: id, MAC: q.mac, User: q.user, Port: q.port, Updated: time.Now().UTC(),
		}
		s.Started = s.Updated
		if status == rfc2866.AcctStatusType_Value_InterimUpdate {
			s.Interims = 1
		}
		if ip, err := rfc2865.FramedIPAddress_Lookup(p); err == nil {
			s.IP, _ = netip.AddrFromSlice(ip.To4())
		}
		s.Endpoint = q.endpoint("", "").ID
		if role, ok := strings.CutPrefix(rfc2865.Class_GetString(p), classPrefix); ok && policies.IsRole(role) {
			s.Role = role
		}
		err2 = r.cfg.Sessions.Put(s)
	case rfc2866.AcctStatusType_Value_Stop:
		err2 = r.cfg.Sessions.Delete(req.Client.Name, rfc2866.AcctSessionID_GetString(p))
	case rfc2866.AcctStatusType_Value_AccountingOn, rfc2866.AcctStatusType_Value_AccountingOff:
		err2 = r.cfg.Sessions.DeleteNAS(req.Client.Name)
	}
	if err2 != nil {
		// Not acknowledged, so the NAS retries: accounting must not be lost.
		r.log.Error("store session", "nas", q.nas, "err", err2)
		return nil
	}
	return p.Response(radius.CodeAccountingResponse)
}

// OnDecision sends CoA when a decision made outside RADIUS (PT-TLS, a
// re-decision after a policy change) changes the role of an endpoint a NAS
// holds a session for. Decisions made in a RADIUS exchange travel in its
// Access-Accept. It implements TNCSConfig.OnDecision.
func (r *RADIUS) OnDecision(d *Decision) {
	if d.InReply {
		return
	}
	var ip netip.Addr
	if host, _, err := net.SplitHostPort(d.Endpoint.Remote); err == nil {
		ip, _ = netip.ParseAddr(host)
		ip = ip.Unmap()
	}
	sessions := r.cfg.Sessions.Find(d.Endpoint.MAC, ip)
	for _, s := range sessions {
		if s.MAC != "" && r.cfg.Store != nil {
			// What the device's next MAB request will get while fresh.
			r.cfg.Store.Put(&Record{
				ID: postureID(s.MAC), MAC: s.MAC, Identity: d.Endpoint.Identity, Channel: d.Endpoint.Channel,
				Remote: d.Endpoint.Remote, Role: d.Role, Rule: d.Rule, Groups: d.Groups, Reasons: d.Reasons,
				Recommendation: d.Combined.Recommendation.String(), Policy: d.Policy, DecidedAt: time.Now().UTC(),
			})
		}
		if s.Role == d.Role {
			continue
		}
		go r.changeRole(s, d)
	}
}

// changeRole tells a NAS the new role of a session: CoA with the role's
// Filter-Id and VLAN, or Disconnect for deny and when the NAS cannot change
// the session in place (RFC 5176 §3.5: NAK with Error-Cause 401-407).
func (r *RADIUS) changeRole(s Session, d *Decision) {
	if r.cfg.CoA == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	log := r.log.With("nas", s.NAS, "session", s.ID, "mac", s.MAC, "from", s.Role, "to", d.Role)
	if d.Role != policies.RoleDeny {
		p := r.dynamicAuth(radius.CodeCoARequest, s)
		setRole(p, d)
		r.stats.coa.Add(1)
		err := r.cfg.CoA.DynamicAuth(ctx, s.NAS, s.NASAddr, p)
		if err == nil {
			r.cfg.Sessions.SetRole(s.NAS, s.ID, d.Role)
			log.Info("CoA acknowledged")
			return
		}
		var nak *tradius.NAKError
		if !errors.As(err, &nak) {
			r.stats.coaFailed.Add(1)
			log.Warn("CoA failed", "err", err)
			return
		}
		log.Info("CoA refused; disconnecting instead", "error_cause", uint32(nak.ErrorCause))
	}
	p := r.dynamicAuth(radius.CodeDisconnectRequest, s)
	r.stats.coa.Add(1)
	if err := r.cfg.CoA.DynamicAuth(ctx, s.NAS, s.NASAddr, p); err != nil {
		r.stats.coaFailed.Add(1)
		log.Warn("Disconnect failed", "err", err)
		return
	}
	r.cfg.Sessions.SetRole(s.NAS, s.ID, d.Role)
	log.Info("Disconnect acknowledged")
}

// dynamicAuth starts a CoA or Disconnect request with the session's
// identification attributes (RFC 5176 §3).
func (r *RADIUS) dynamicAuth(code radius.Code, s Session) *radius.Packet {
	p := radius.New(code, nil)
	rfc2866.AcctSessionID_SetString(p, s.ID)
	if s.MAC != "" {
		rfc2865.CallingStationID_SetString(p, s.MAC)
	}
	if s.User != "" {
		rfc2865.UserName_SetString(p, s.User)
	}
	if s.NASID != "" {
		rfc2865.NASIdentifier_SetString(p, s.NASID)
	}
	if s.NASAddr.Is4() {
		rfc2865.NASIPAddress_Set(p, net.IP(s.NASAddr.AsSlice()))
	}
	return p
}

// Redecide decides again, with the policy now in force, every endpoint whose
// decision can be made from what is stored: MAB and password-only endpoints,
// and assessed endpoints from the facts they reported. Changed roles are
// recorded and reach their NAS by CoA. Call it after a policy reload.
//
// Facts measured against the reference values (the TPM verifier's
// pcrs_match) cannot be re-decided from what is stored: when the policy's
// reference values changed, the endpoints attested before are assessed
// again instead (reassess).
func (r *RADIUS) Redecide(pol *policies.Policy) {
	recs, err := r.cfg.Store.List()
	if err != nil {
		r.log.Error("re-decision after policy change", "err", err)
		return
	}
	refs := referencesKey(pol)
	r.mu.Lock()
	refsChanged := r.refs != "" && r.refs != refs
	r.refs = refs
	r.mu.Unlock()
	for _, rec := range recs {
		if refsChanged && rec.Facts["tpm"] != nil {
			r.reassess(rec)
			continue
		}
		ep := policies.Endpoint{ID: rec.ID, MAC: rec.MAC, Identity: rec.Identity, Channel: rec.Channel}
		var pd policies.Decision
		switch rec.Channel {
		case "mab":
			if r.freshPosture(rec.MAC) != nil {
				continue // the posture assessment decides, and is re-decided itself
			}
			pd = pol.DecideMAB(ep)
		case "pap":
			pd = pol.DecideAuth(ep)
		case "pt-tls", "eap", "sm-dtls":
			if rec.Facts == nil {
				continue
			}
			pd = pol.Decide(ep, rec.Facts)
		default:
			continue
		}
		if pd.Role == rec.Role && pd.Rule == rec.Rule {
			continue
		}
		ie := imv.Endpoint{ID: rec.ID, MAC: rec.MAC, Identity: rec.Identity, Channel: rec.Channel, Remote: rec.Remote}
		d := r.cfg.TNCS.Decide(ie, pd, rec.Facts)
		d.Reasons = append(d.Reasons, "policy changed")
		r.log.Info("role changed by policy", "endpoint", rec.ID, "from", rec.Role, "to", pd.Role)
		r.cfg.TNCS.Record(d)
	}
}

// NAS is a RADIUS client of the PDP as the CoA sender knows it.
type NAS struct {
	Name    string
	Secret  []byte
	CoAPort int // default 3799 (RFC 5176 §3)
}

// CoAClients sends Dynamic Authorization requests to the configured NASes,
// each with its own secret. It implements CoASender.
type CoAClients struct {
	nases   map[string]NAS
	clients map[string]*tradius.Client
}

// NewCoAClients returns a sender for nases; timeout and retries bound each
// request (0: the client's defaults).
func NewCoAClients(nases []NAS, timeout time.Duration, retries int) *CoAClients {
	c := &CoAClients{nases: map[string]NAS{}, clients: map[string]*tradius.Client{}}
	for _, n := range nases {
		if n.CoAPort == 0 {
			n.CoAPort = 3799
		}
		c.nases[n.Name] = n
		c.clients[n.Name] = &tradius.Client{Secret: n.Secret, Timeout: timeout, Retries: retries}
	}
	return c
}

// DynamicAuth implements CoASender.
func (c *CoAClients) DynamicAuth(ctx context.Context, nas string, addr netip.Addr, p *radius.Packet) error {
	n, ok := c.nases[nas]
	if !ok {
		return errors.New("pdp: CoA: unknown NAS " + strconv.Quote(nas))
	}
	p.Secret = n.Secret
	return c.clients[nas].DynamicAuth(ctx, p, netip.AddrPortFrom(addr, uint16(n.CoAPort)).String())
}

// Close releases the clients' sockets.
func (c *CoAClients) Close() error {
	for _, cl := range c.clients {
		cl.Close()
	}
	return nil
}

// referencesKey identifies a policy's reference values, so Redecide can tell
// whether they changed.
func referencesKey(pol *policies.Policy) string {
	h := sha256.New()
	for _, rs := range pol.References {
		rs.Line = 0
		b, _ := json.Marshal(rs) // maps marshal with sorted keys
		h.Write(b)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// reassess asks the NASes holding rec's endpoint to authenticate it again,
// with a CoA-Request whose Service-Type is Authorize Only (RFC 5176 §3.1):
// an 802.1X port runs EAP again, posture included, and a MAB port asks
// again, which then gets the MAB decision until the agent's next
// assessment, since the posture that admitted it is no longer fresh.
func (r *RADIUS) reassess(rec *Record) {
	var ip netip.Addr
	if host, _, err := net.SplitHostPort(rec.Remote); err == nil {
		ip, _ = netip.ParseAddr(host)
		ip = ip.Unmap()
	}
	sessions := r.cfg.Sessions.Find(rec.MAC, ip)
	if len(sessions) == 0 {
		r.log.Info("reference values changed; the endpoint is assessed again when it next connects", "endpoint", rec.ID)
		return
	}
	for _, s := range sessions {
		if s.MAC != "" && r.cfg.Store != nil {
			if p := r.freshPosture(s.MAC); p != nil {
				p.DecidedAt = time.Time{} // stale: MAB no longer carries it
				r.cfg.Store.Put(p)
			}
		}
		if r.cfg.CoA == nil {
			continue
		}
		go r.requestReauth(s, rec.ID)
	}
}

func (r *RADIUS) requestReauth(s Session, endpoint string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := r.dynamicAuth(radius.CodeCoARequest, s)
	rfc2865.ServiceType_Set(p, rfc2865.ServiceType(rfc3576.ServiceType_Value_AuthorizeOnly))
	rfc2865.State_Set(p, newState()) // RFC 5176 §3.1: Authorize Only carries a State
	r.stats.coa.Add(1)
	r.stats.reassess.Add(1)
	log := r.log.With("nas", s.NAS, "session", s.ID, "mac", s.MAC, "endpoint", endpoint)
	if err := r.cfg.CoA.DynamicAuth(ctx, s.NAS, s.NASAddr, p); err != nil {
		r.stats.coaFailed.Add(1)
		log.Warn("re-assessment request failed", "err", err)
		return
	}
	log.Info("re-assessment requested: reference values changed")
}
