package nac

import (
	"crypto/tls"
	"log/slog"
	"net"

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

// AgentEAPFactory makes the agent's EAP peers, one per conversation. What
// the configuration fixes (the TLS settings with the PDP's CA, the
// password, the link's fragment size) is read once, when the factory is
// made: at each link-up in 802.1X mode.
type AgentEAPFactory struct {
	cfg      *AgentConfig
	log      *slog.Logger
	tls      *tls.Config
	password string
	fragment int
}

// NewAgentEAPFactory reads what cfg fixes for the conversations to come.
func NewAgentEAPFactory(cfg *AgentConfig, log *slog.Logger) (*AgentEAPFactory, error) {
	tc, err := agentTLSConfig(cfg.PDP)
	if err != nil {
		return nil, err
	}
	password, err := agentPassword(cfg)
	if err != nil {
		return nil, err
	}
	return &AgentEAPFactory{cfg: cfg, log: log, tls: tc, password: password, fragment: eapFragment(linkMTU(cfg))}, nil
}

// NewAgentEAP builds the agent's EAP peer for one conversation. Close
// releases the collectors.
func NewAgentEAP(cfg *AgentConfig, log *slog.Logger) (*AgentEAP, error) {
	f, err := NewAgentEAPFactory(cfg, log)
	if err != nil {
		return nil, err
	}
	return f.New()
}

// New builds the EAP peer of one conversation, with fresh collectors (the
// posture is measured anew each time). Close releases them.
func (f *AgentEAPFactory) New() (*AgentEAP, error) {
	cfg, log, password := f.cfg, f.log, f.password
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
		TLS:         f.tls.Clone(),
		MaxFragment: f.fragment,
		Phase2:      ttls.NewInnerPeer("", "", inner),
	})
	a.Peer = eap.NewPeer("anonymous", eap.PeerFactory{Type: eap.TypeTTLS, New: func() eap.PeerMethod { return a.tunnel }})
	return a, nil
}

// An EAPOL frame (IEEE 802.1X §11.3) puts its 4-byte header before the EAP
// packet, and EAP-TTLS adds ttls.HeaderLen before the TLS bytes.
const (
	eapolHeaderLen = 4
	ethernetMTU    = 1500
)

// eapFragment is the TLS bytes the agent sends per EAP-TTLS packet on a
// link of this MTU: the TLS 1.3 ClientHello with a hybrid key share (about
// 1,480 bytes) then goes in one frame on Ethernet. A jumbo-frame link still
// gets Ethernet's size: the authenticator relays each EAP packet in one
// RADIUS packet of at most 4096 bytes, and switches expect no more. A link
// smaller than the 1020-byte EAP minimum (RFC 3748 §3.1) is taken as that.
func eapFragment(mtu int) int {
	return min(max(mtu, eap.MinMTU), ethernetMTU) - eapolHeaderLen - ttls.HeaderLen
}

// linkMTU is the MTU of the agent's 802.1X interface, Ethernet's when it
// has none or it cannot be read.
func linkMTU(cfg *AgentConfig) int {
	if cfg.Dot1X == nil || cfg.Dot1X.Interface == "" {
		return ethernetMTU
	}
	ifi, err := net.InterfaceByName(cfg.Dot1X.Interface)
	if err != nil || ifi.MTU <= 0 {
		return ethernetMTU
	}
	return ifi.MTU
}

// Outcome is the decision the PDP sent in the posture assessment.
func (a *AgentEAP) Outcome() (imc.Outcome, bool) { return a.hs.Outcome() }

// MSK is the key the conversation derived, nil before success.
func (a *AgentEAP) MSK() []byte { return a.tunnel.MSK() }

// TLS describes the conversation's tunnel once it is established.
func (a *AgentEAP) TLS() tls.ConnectionState { return a.tunnel.ConnectionState() }

// Close releases the tunnel and the collectors.
func (a *AgentEAP) Close() {
	a.tunnel.Close()
	a.release()
}
