// Package eap is the Extensible Authentication Protocol (RFC 3748) as trustnac speaks it: the packet
// codec, the method interfaces, and the conversation engines of both sides (authenticator/server and
// peer) that run Identity, method selection with Nak, and method chaining.
//
// The methods live in subpackages: ttls (EAP-TTLS, RFC 5281, with RFC 9427 for TLS 1.3),
// mschapv2 (EAP-MSCHAPv2) and tnc (EAP-TNC, type 38, and PT-EAP, RFC 7171, type 54, carrying
// PB-TNC). The same engine runs the outer conversation relayed by RADIUS and the inner
// conversation inside the TTLS tunnel.
package eap
