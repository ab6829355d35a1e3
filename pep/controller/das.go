package controller

import (
	"context"
	"fmt"
	"net"
	"slices"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2866"
	"layeh.com/radius/rfc3576"

	tradius "trustnac/transport/radius"
)

// startDAS starts the Dynamic Authorization server (RFC 5176) when configured; the returned
// function stops it.
func (c *Controller) startDAS(ctx context.Context) (func(), error) {
	if c.cfg.DASListen == "" {
		return nil, nil
	}
	clients, err := tradius.NewClients(c.cfg.DASClients)
	if err != nil {
		return nil, fmt.Errorf("controller: das clients: %w", err)
	}
	pc, err := net.ListenPacket("udp", c.cfg.DASListen)
	if err != nil {
		return nil, fmt.Errorf("controller: das: %w", err)
	}
	srv := &tradius.Server{
		Clients: clients,
		Handler: tradius.HandlerFunc(func(_ context.Context, r *tradius.Request) *radius.Packet { return c.serveDAS(ctx, r) }),
		Codes:   []radius.Code{radius.CodeCoARequest, radius.CodeDisconnectRequest},
		Logger:  c.log.With("component", "pep/das"),
	}
	c.dasMu.Lock()
	c.dasAddr = pc.LocalAddr()
	c.dasMu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(pc)
	}()
	c.log.Info("DAS listening", "addr", pc.LocalAddr().String())
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		srv.Shutdown(sctx)
		cancel()
		<-done
	}, nil
}

// serveDAS answers a CoA-Request or Disconnect-Request (RFC 5176 §3). The ACK of a CoA that
// changes the role goes out only after the kernel holds the new binding.
func (c *Controller) serveDAS(ctx context.Context, r *tradius.Request) *radius.Packet {
	p := r.Packet
	ack, nakCode := radius.CodeDisconnectACK, radius.CodeDisconnectNAK
	if p.Code == radius.CodeCoARequest {
		ack, nakCode = radius.CodeCoAACK, radius.CodeCoANAK
	}
	log := c.log.With("das", p.Code.String(), "client", r.Client.Name)
	nak := func(cause rfc3576.ErrorCause, why string, args ...any) *radius.Packet {
		c.st.coaNAK.Add(1)
		log.Info("DAS request refused: "+why, append([]any{"error_cause", int(cause)}, args...)...)
		out := p.Response(nakCode)
		rfc3576.ErrorCause_Set(out, cause)
		return out
	}
	d := parseDAS(p)
	if d.NASID != "" && d.NASID != c.cfg.NASIdentifier {
		return nak(rfc3576.ErrorCause_Value_NASIdentificationMismatch, "NAS-Identifier is not ours", "nas_identifier", d.NASID)
	}
	if d.NASIP.IsValid() && c.cfg.NASIP.IsValid() && d.NASIP != c.cfg.NASIP {
		return nak(rfc3576.ErrorCause_Value_NASIdentificationMismatch, "NAS-IP-Address is not ours", "nas_ip", d.NASIP.String())
	}
	if d.Unsupported != 0 {
		return nak(rfc3576.ErrorCause_Value_UnsupportedAttribute, "unsupported attribute", "type", int(d.Unsupported))
	}
	if d.BadService {
		return nak(rfc3576.ErrorCause_Value_UnsupportedService, "unsupported Service-Type")
	}
	if d.SessionID == "" && d.MAC == nil {
		return nak(rfc3576.ErrorCause_Value_MissingAttribute, "no session identification")
	}
	s, ok := c.findSession(d)
	if !ok {
		return nak(rfc3576.ErrorCause_Value_SessionContextNotFound, "no such session", "session", d.SessionID, "mac", d.MAC.String())
	}
	log = log.With("port", s.Port, "mac", s.MAC.String(), "session", s.ID)
	if p.Code == radius.CodeDisconnectRequest {
		c.st.disconnects.Add(1)
		c.end(ctx, s.Port, s.MAC, rfc2866.AcctTerminateCause_Value_AdminReset, true)
		log.Info("disconnected by the PDP")
		return p.Response(ack)
	}
	c.st.coa.Add(1)
	if d.AuthorizeOnly {
		log.Info("re-authentication requested by the PDP")
		c.reauthenticate(ctx, s.MAC, true)
		return p.Response(ack)
	}
	if !d.HasAuthz {
		return nak(rfc3576.ErrorCause_Value_MissingAttribute, "CoA changes nothing the PEP enforces")
	}
	a, err := ParseAuthorization(p)
	if err != nil {
		return nak(rfc3576.ErrorCause_Value_InvalidRequest, err.Error())
	}
	if a.Unknown != "" {
		c.st.unknownRoles.Add(1)
		return nak(rfc3576.ErrorCause_Value_InvalidRequest, "unknown role", "filter_id", a.Unknown)
	}
	if a.Role == RoleDeny {
		c.end(ctx, s.Port, s.MAC, rfc2866.AcctTerminateCause_Value_AdminReset, true)
		log.Info("denied by CoA: session ended")
		return p.Response(ack)
	}
	if err := c.rebind(ctx, s, a); err != nil {
		return nak(rfc3576.ErrorCause_Value_ResourcesUnavailable, "enforcement failed", "err", err)
	}
	log.Info("role changed by CoA", "role", a.Role, "vlan", a.VLAN)
	return p.Response(ack)
}

// findSession looks a session up by Acct-Session-Id, else by Calling-Station-Id (and
// NAS-Port-Id when given). When both are given they must name the same session.
func (c *Controller) findSession(d dasRequest) (Session, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.sessions {
		switch {
		case d.SessionID != "" && s.ID != d.SessionID:
		case d.MAC != nil && !slices.Equal(s.MAC, d.MAC):
		case d.Port != "" && s.Port != d.Port:
		default:
			return *s, true
		}
	}
	return Session{}, false
}

// rebind changes a session's role (and VLAN) in place; the session's expiry stays unless the
// CoA carries a Session-Timeout.
func (c *Controller) rebind(ctx context.Context, s Session, a Authorization) error {
	if a.SessionTimeout == 0 && !s.Expires.IsZero() {
		a.SessionTimeout = time.Until(s.Expires)
		if c.cfg.Reauth || s.Method == MethodMAB {
			a.SessionTimeout -= c.grace()
		}
		if a.SessionTimeout <= 0 {
			a.SessionTimeout = time.Second
		}
	}
	return c.admit(ctx, s.Port, s.MAC, s.Method, a)
}
