package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"layeh.com/radius"

	"trustnac/nac"
)

// agentIdentity is the outer EAP identity of the trustnac agent (nac.NewAgentEAP), which the
// NAS copies into User-Name.
const agentIdentity = "anonymous"

// postureTransaction returns the unit of mode ttls-posture: one whole EAP-TTLS conversation of
// the trustnac agent (nac.NewAgentEAP) with its posture assessment inside the tunnel, PT-EAP
// (RFC 7171) carrying PB-TNC batches (RFC 5793) with the OS collector's PA-TNC attributes
// (RFC 5792), until the PDP's Access-Accept with the role the posture decided.
func (g *generator) postureTransaction() (transaction, error) {
	o := g.opts
	switch {
	case o.ca == "" && o.pin == "":
		return nil, errors.New("ttls-posture needs -pin or -ca (the server certificate is always verified)")
	case o.ca != "" && o.serverName == "":
		return nil, errors.New("ttls-posture with -ca needs -server-name")
	case o.tlsVersion != "" && o.tlsVersion != "1.3":
		return nil, fmt.Errorf("-tls %q: the agent speaks TLS 1.3 only", o.tlsVersion)
	}
	if fi, err := os.Stat(o.osRoot); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("-os-root %s is not a directory", o.osRoot)
	}
	cfg := &nac.AgentConfig{
		PDP:        nac.AgentPDPConfig{CA: o.ca, ServerName: o.serverName, Pin: o.pin, KeyExchange: o.keyExchange},
		Collectors: nac.CollectorsConfig{OS: &nac.OSCollectorConfig{Root: o.osRoot}},
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// The agent's own log is not radload's output; it costs CPU the server under test needs.
	log := slog.New(slog.DiscardHandler)
	// The agent reads its configuration (the CA, the password) once, as the agent daemon does at
	// link-up; each conversation then measures the posture anew. One agent now, so that a bad -ca
	// stops radload before the load starts.
	agents, err := nac.NewAgentEAPFactory(cfg, log)
	if err != nil {
		return nil, err
	}
	a, err := agents.New()
	if err != nil {
		return nil, err
	}
	a.Close()
	want := expectation{o.expectFilter, o.expectVLAN}
	return func(ctx context.Context, i uint64) (outcome, int, error) {
		a, err := agents.New()
		if err != nil {
			return outError, 0, err
		}
		defer a.Close()
		s := &supplicant{
			peer:     a.Peer,
			userName: agentIdentity,
			// A reject counts as the PDP's decision only after it sent the posture result.
			established: func() bool { _, ok := a.Outcome(); return ok },
			early:       "Access-Reject before the posture result (server certificate refused by -ca or -pin, or the assessment failed)",
			msk:         a.MSK,
			accepted: func(*radius.Packet) error {
				res, ok := a.Outcome()
				if !ok {
					return errors.New("Access-Accept without a posture result: the assessment did not run")
				}
				if o.expectPosture != "" && res.Role != o.expectPosture {
					return fmt.Errorf("posture result %s, want %s", res.Role, o.expectPosture)
				}
				return nil
			},
		}
		return g.converse(ctx, firstMAC+i%uint64(o.macs), s, want)
	}, nil
}
