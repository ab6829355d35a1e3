package nac

import (
	"log/slog"

	"trustnac/imc"
	"trustnac/transport/eap"
	"trustnac/transport/eap/mschapv2"
	"trustnac/transport/eap/tnc"
	"trustnac/transport/eap/ttls"
	"trustnac/transport/pbtnc"
)

// eapLogChunk is the piece of a measurement log one PA-TNC attribute
// carries over EAP, well inside a 65,522-byte PB-TNC batch.
const eapLogChunk = 48 << 10

// AgentEAP is the agent as an EAP peer: EAP-TTLS with the PDP's
// certificate checked as for PT-TLS, and inside the tunnel EAP-MSCHAPv2
// when the agent has a password, then the posture assessment over PT-EAP
// (or EAP-TNC) with the agent's collectors. The same peer runs over EAPOL
// on a port and, in tests and load generators, relayed over RADIUS.
type AgentEAP struct {
	Peer    *eap.Peer
	hs      *imc.Handshake
	tunnel  *ttls.Peer
	release func()
}

// NewAgentEAP builds the agent's EAP peer for one conversation. Close
// releases the collectors.
func NewAgentEAP(cfg *AgentConfig, log *slog.Logger) (*AgentEAP, error) {
	tc, err := agentTLSConfig(cfg.PDP)
	if err != nil {
		return nil, err
	}
	password, err := agentPassword(cfg)
	if err != nil {
		return nil, err
	}
	cols, release, err := agentCollectors(cfg, log, eapLogChunk)
	if err != nil {
		return nil, err
	}
	a := &AgentEAP{hs: imc.NewClient(cols, log).Handshake(), release: release}
	// Without a password the inner identity is the anonymous NAI: an
	// identity nothing proves does not count, and the PDP then goes straight
	// to the posture assessment instead of offering a password method first.
	identity := "anonymous"
	if password != "" && cfg.Identity != "" {
		identity = cfg.Identity
	}
	pbcfg := pbtnc.Config{Language: cfg.Language, MaxBatchSize: pbtnc.EAPMaxBatchSize}
	posture := func(t eap.Type) eap.PeerFactory {
		return eap.PeerFactory{Type: t, New: func() eap.PeerMethod {
			return tnc.NewPeer(tnc.PeerConfig{Type: t}, pbtnc.NewClient(a.hs, pbcfg))
		}}
	}
	var methods []eap.PeerFactory
	if password != "" && cfg.Identity != "" {
		methods = append(methods, eap.PeerFactory{Type: eap.TypeMSCHAPv2, New: func() eap.PeerMethod {
			return mschapv2.NewPeer(cfg.Identity, password)
		}})
	}
	methods = append(methods, posture(eap.TypePTEAP), posture(eap.TypeTNC))
	inner := eap.NewPeer(identity, methods...)
	a.tunnel = ttls.NewPeer(&ttls.PeerConfig{
		TLS:    tc.Clone(),
		Phase2: ttls.NewInnerPeer("", "", inner),
	})
	a.Peer = eap.NewPeer("anonymous", eap.PeerFactory{Type: eap.TypeTTLS, New: func() eap.PeerMethod { return a.tunnel }})
	return a, nil
}

// Outcome is the decision the PDP sent in the posture assessment.
func (a *AgentEAP) Outcome() (imc.Outcome, bool) { return a.hs.Outcome() }

// MSK is the key the conversation derived, nil before success.
func (a *AgentEAP) MSK() []byte { return a.tunnel.MSK() }

// Close releases the tunnel and the collectors.
func (a *AgentEAP) Close() {
	a.tunnel.Close()
	a.release()
}
