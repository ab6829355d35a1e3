package ttls_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"

	"trustnac/transport/eap"
	"trustnac/transport/eap/ttls"
)

// The PDP's side: EAP-TTLS as the outer method, PAP or inner EAP inside, then whatever inner
// methods (posture) the inner Selector picks. One Server per conversation; Close it when the
// conversation is dropped.
func ExampleNewServer() {
	var cert tls.Certificate         // the PDP's certificate
	var postureSelector eap.Selector // e.g. PT-EAP after PAPDone or an inner method
	checkPassword := func(ctx context.Context, user, password string) bool { return false }

	var tunnel *ttls.Server
	outer := eap.NewServer(eap.SelectorFunc(func(ctx context.Context, id string, done []eap.ServerMethod, nak []eap.Type) (eap.ServerMethod, bool, error) {
		if len(done) > 0 || nak != nil {
			return nil, len(done) > 0, nil
		}
		tunnel = ttls.NewServer(&ttls.ServerConfig{
			TLS: &tls.Config{Certificates: []tls.Certificate{cert}},
			Phase2: func(ttls.TunnelInfo) ttls.Phase2 {
				return ttls.NewInnerServer(ttls.InnerConfig{PAP: checkPassword, Selector: postureSelector})
			},
		})
		return tunnel, false, nil
	}), 0)
	_ = outer // relay EAP through outer.Handle; on Success, tunnel.MSK() keys the link
}

// The agent's side: TTLS/PAP, then answer inner EAP methods (posture) through an eap.Peer.
func ExampleNewPeer() {
	roots := x509.NewCertPool() // the CA of the PDP's certificate
	peer := eap.NewPeer("anonymous", eap.PeerFactory{Type: eap.TypeTTLS, New: func() eap.PeerMethod {
		// Phase 2 state is per conversation: a fresh inner peer each time.
		inner := eap.NewPeer("alice" /* inner methods, e.g. PT-EAP */)
		return ttls.NewPeer(&ttls.PeerConfig{
			TLS:    &tls.Config{RootCAs: roots, ServerName: "pdp.example.net"},
			Phase2: ttls.NewInnerPeer("alice", "password", inner),
		})
	}})
	_ = peer // answer EAPOL-carried EAP with peer.Handle
}
