package nac

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"trustnac/pdp"
	"trustnac/policies"
	tradius "trustnac/transport/radius"
)

// startRADIUS brings up the RADIUS authentication and accounting servers
// when the configuration has a radius section.
func (p *PDP) startRADIUS() error {
	rc := p.cfg.RADIUS
	if rc == nil {
		return nil
	}
	var clients []tradius.ClientConfig
	var nases []pdp.NAS
	for _, cl := range rc.Clients {
		secret, err := readSecret(cl.Secret, cl.SecretFile)
		if err == nil && len(secret) == 0 {
			err = errors.New("empty secret")
		}
		if err != nil {
			return fmt.Errorf("nac: radius client %s: %w", cl.Name, err)
		}
		network, _ := parseNetwork(cl.Network)
		clients = append(clients, tradius.ClientConfig{Name: cl.Name, Network: network, Secret: secret})
		nases = append(nases, pdp.NAS{Name: cl.Name, Secret: secret, CoAPort: cl.CoAPort})
	}
	table, err := tradius.NewClients(clients)
	if err != nil {
		return fmt.Errorf("nac: radius clients: %w", err)
	}
	var users *pdp.Users
	if rc.UsersFile != "" {
		if users, err = pdp.LoadUsers(rc.UsersFile); err != nil {
			return err
		}
	}
	cert, _, err := pdp.LoadOrCreateCert(rc.EAP.Cert, rc.EAP.Key, p.cfg.PTTLS.Names)
	if err != nil {
		return err
	}
	tlsCfg := &tls.Config{
		Certificates:           []tls.Certificate{cert},
		MinVersion:             tls.VersionTLS12,
		SessionTicketsDisabled: true,
	}
	if rc.EAP.TLSMin == "1.3" {
		tlsCfg.MinVersion = tls.VersionTLS13
	}
	tlsCfg.CurvePreferences = tlsCurves(rc.EAP.KeyExchange)
	sessions, err := pdp.NewSessionTable(p.store)
	if err != nil {
		return err
	}
	coa := pdp.NewCoAClients(nases, rc.CoA.Timeout.D(), rc.CoA.Retries)
	p.onStop(func(context.Context) error { return coa.Close() })
	p.radius = pdp.NewRADIUS(pdp.RADIUSConfig{
		TNCS:           p.tncs,
		Policy:         p.policy,
		Store:          p.store,
		Sessions:       sessions,
		Users:          users,
		TLS:            tlsCfg,
		SessionTimeout: rc.SessionTimeout.D(),
		EAPTimeout:     rc.EAP.Timeout.D(),
		MaxEAPSessions: rc.EAP.MaxSessions,
		MaxFragment:    rc.EAP.MaxFragment,
		CoA:            coa,
		Log:            p.log.With("listener", "radius"),
	})
	p.onStop(func(context.Context) error { p.radius.Close(); return nil })
	p.policy.OnChange(func(pol *policies.Policy) { go p.radius.Redecide(pol) })

	auth := &tradius.Server{
		Clients:     table,
		Handler:     p.radius,
		MaxInFlight: rc.MaxInFlight,
		Stats:       new(tradius.Stats),
		Logger:      p.log.With("listener", "radius-auth"),
	}
	p.radiusServers = map[string]*tradius.Server{"radius_auth": auth}
	if err := p.serveUDP("radius-auth", rc.AuthListen, auth, &p.radiusAuthLn); err != nil {
		return err
	}
	if rc.AcctListen != "off" {
		acct := &tradius.Server{
			Clients:     table,
			Handler:     p.radius.Accounting(),
			MaxInFlight: rc.MaxInFlight,
			Stats:       new(tradius.Stats),
			Accounting:  true,
			Logger:      p.log.With("listener", "radius-acct"),
		}
		p.radiusServers["radius_acct"] = acct
		if err := p.serveUDP("radius-acct", rc.AcctListen, acct, &p.radiusAcctLn); err != nil {
			return err
		}
	}
	return nil
}

// serveUDP runs a RADIUS server on a UDP socket until Stop.
func (p *PDP) serveUDP(name, addr string, srv *tradius.Server, ln *net.PacketConn) error {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return fmt.Errorf("nac: %s listen: %w", name, err)
	}
	*ln = pc
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(pc); err != nil && !errors.Is(err, tradius.ErrServerClosed) {
			p.log.Error(name+" server", "err", err)
		}
	}()
	p.onStop(func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		err := srv.Shutdown(ctx)
		<-done
		return err
	})
	return nil
}

// RADIUSAuthAddr is the address of the RADIUS authentication server, nil
// when RADIUS is off.
func (p *PDP) RADIUSAuthAddr() net.Addr {
	if p.radiusAuthLn == nil {
		return nil
	}
	return p.radiusAuthLn.LocalAddr()
}

// RADIUSAcctAddr is the address of the RADIUS accounting server, nil when
// it is off.
func (p *PDP) RADIUSAcctAddr() net.Addr {
	if p.radiusAcctLn == nil {
		return nil
	}
	return p.radiusAcctLn.LocalAddr()
}

// RADIUS is the PDP's RADIUS handler, nil when RADIUS is off.
func (p *PDP) RADIUS() *pdp.RADIUS { return p.radius }

// serverStats are the counters of the RADIUS servers.
func (p *PDP) serverStats() map[string]map[string]uint64 {
	out := map[string]map[string]uint64{}
	for name, s := range p.radiusServers {
		if s.Stats != nil {
			out[name] = s.Stats.Snapshot()
		}
	}
	return out
}

// tlsCurves are the key exchange groups a server's KeyExchange setting
// allows. Go uses them in its own order of preference (X25519MLKEM768, then
// X25519, then P-256): a server picks the first the client sent a key share
// for, so a classic server still answers a hybrid client's X25519 share and
// a classic agent's P-256 share without a HelloRetryRequest.
func tlsCurves(kx string) []tls.CurveID {
	if kx == KeyExchangeClassic {
		return []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384}
	}
	return []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256, tls.CurveP384}
}
