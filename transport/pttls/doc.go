// Package pttls implements PT-TLS, the TLS-based Posture Transport protocol
// of RFC 6876: the message framing (§3.5), the IETF message types (§3.6),
// version negotiation (§3.7), SASL client authentication (§3.8), PT-TLS
// Error messages (§3.9), and a client and a server that carry PB-TNC batches
// (RFC 5793) between a TNCC and a TNCS.
//
// A PT-TLS session runs in four phases: the TLS handshake, version
// negotiation (the client sends a Version Request, the server answers with a
// Version Response), optional SASL client authentication (the server sends
// a SASL Mechanisms list; an empty list ends the phase), and data transport,
// in which either side sends PB-TNC Batch messages.
//
// The codecs in this package are pure: Message.AppendBinary and
// ParseMessage do no I/O, check every length before allocating and copy
// bytes out of their input. ReadMessage reads one message from a stream and
// checks the announced length against a maximum before reading the body.
//
// Client and ServerHandshake run the negotiation over any net.Conn (a
// *tls.Conn, or a DTLS connection for the SM channel); Server accepts
// secured connections from a net.Listener and hands each negotiated Conn to
// a Handler in its own goroutine. This package imports no other package of
// trustnac.
package pttls
