// Package smdtls is trustnac's SM channel: DTLS 1.2 (RFC 6347) over UDP,
// built on pion/dtls, with one private cipher suite,
// TLS_PSK_WITH_SM4_GCM_SM3 (codepoint 0xFF10). The suite does plain PSK key
// exchange (RFC 4279) with a per-endpoint pre-shared key, derives keys
// with the TLS 1.2 PRF (RFC 5246 §5) over HMAC-SM3 — the PRF of TLCP, GB/T
// 38636 — and protects records with SM4-GCM in the layout of RFC 5288.
// The extended master secret (RFC 7627) is required, sessions are never
// resumed, and the RFC 5705 exporter is computed here because pion's does
// not work for custom suites.
//
// In one line: SM4-GCM/SM3 DTLS 1.2 with per-endpoint PSK; SM2 is used
// for attestation and enrollment, not in this channel.
//
// A Listener demultiplexes one UDP socket and answers ClientHellos with a
// stateless HelloVerifyRequest cookie (RFC 6347 §4.2.1): no state exists
// for a peer until it has echoed a valid cookie from its own address.
// Dial is the matching client.
//
// A Conn carries PT-TLS messages (RFC 6876 §3.5, 16-byte header) over the
// DTLS association. Messages larger than one record are fragmented into
// numbered fragments, acknowledged and retransmitted when lost, and
// reassembled under a size cap. Conn is a net.Conn whose byte stream is
// the sequence of PT-TLS messages, so pttls.Client and
// pttls.ServerHandshake run over it unchanged; ReadMessage and
// WriteMessage give the message view directly.
package smdtls
