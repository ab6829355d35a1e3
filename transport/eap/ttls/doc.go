// Package ttls is EAP-TTLS version 0 (RFC 5281) over crypto/tls, with TLS 1.2 and TLS 1.3
// (RFC 9427): the server-authenticated tunnel in which trustnac carries the inner
// authentication (PAP, inner EAP such as EAP-MSCHAPv2) and the posture assessment (PT-EAP or
// EAP-TNC with PB-TNC).
//
// The pieces:
//
//   - The AVP codec (RFC 5281 §10.1, the Diameter AVP format): AVP, ParseAVPs, AppendAVPs.
//   - The EAP-TTLS type-data framing (RFC 5281 §9.1): Message, with the L, M and S flags.
//   - Server, an eap.ServerMethod and eap.KeyingMethod, and Peer, an eap.PeerMethod and
//     eap.KeyingMethod. Both fragment what they send (RFC 5281 §9.2.2), reassemble what they
//     receive within caps, run crypto/tls over an in-memory connection, and export MSK and
//     EMSK (RFC 5281 §8; RFC 9427 §2.1 for TLS 1.3).
//   - The phase 2 handlers: InnerServer (the PDP's: PAP, then inner EAP methods through an
//     eap.Server) and InnerPeer (the agent's: PAP credentials and/or an inner eap.Peer).
//
// The TLS engine. crypto/tls wants a net.Conn and runs its handshake as one blocking call, so
// each conversation gets an in-memory connection and, during the handshake only, one goroutine
// that runs it. Process hands it the peer's TLS bytes and returns as soon as TLS blocks reading
// for more, with whatever TLS wrote; a step that does not get there within the configured
// timeout fails the conversation. After the handshake the goroutine has ended: application
// data is read and written synchronously, the connection answering "would block" (a temporary
// net.Error, which crypto/tls does not treat as fatal) when the input is used up. A
// conversation dropped mid-handshake must be released with Close.
//
// TLS 1.2 and TLS 1.3. Keys come from the TLS exporter: "ttls keying material" without context
// for TLS 1.2 (which crypto/tls exports only with the Extended Master Secret, RFC 7627; the
// server refuses TLS 1.2 ClientHellos without it), and "EXPORTER_EAP_TLS_Key_Material" with
// the context 0x15 (the EAP-TTLS type) for TLS 1.3 (RFC 9427 §2.1); MSK is the first 64 bytes of
// 128, EMSK the next 64. With TLS 1.3 the handshake ends with the client's Finished, to which
// the server has nothing to say: it then sends a Request with no data, which makes the peer
// start phase 2 (this is what wpa_supplicant expects). Session resumption is disabled on both
// sides, so phase 2 always runs.
package ttls
