// Package eapol is the EAPOL layer of IEEE 802.1X-2010 (port-based network access control) that
// both sides of trustnac's 802.1X admission use: the PEP's authenticator PAE on each managed
// bridge port, relaying EAP to the PDP through a Backend, and the agent's supplicant PAE, which
// answers EAP through an eap.Peer.
//
// It holds a pure codec for EAPOL PDUs and their Ethernet framing (802.1X-2010 §11), AF_PACKET
// port sockets bound to one interface with the PAE group address joined (Conn, Linux only), a
// per-source token bucket that drops EAPOL floods, and the two port access entities
// (Authenticator, Supplicant) with the 802.1X timers that matter for a wired port.
package eapol
