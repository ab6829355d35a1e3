// Package radius is trustnac's hardening layer around the RADIUS codec of
// layeh.com/radius: a RADIUS server (authentication RFC 2865, accounting
// RFC 2866, Dynamic Authorization RFC 5176, Status-Server RFC 5997) and a
// RADIUS client for the same codes.
//
// Both sides put a Message-Authenticator (RFC 2869 §5.14, RFC 3579 §3.2)
// first in every packet they send and the server requires one on every
// Access-Request and Status-Server, which closes the Blast-RADIUS class of
// forgeries (CVE-2024-3596). Authenticators are compared in constant time.
//
// The Server verifies every datagram before anything else looks at it
// (source address → NAS, RFC 2865 §3 length rules, attribute tiling,
// Message-Authenticator, Request Authenticator), answers retransmissions
// from a per-client reply cache (RFC 5080 §2.2.2), bounds the number of
// handlers in flight and survives panicking handlers. Unknown and
// unverifiable datagrams are silently discarded and counted; nothing is ever
// sent to an unknown address.
//
// The Client multiplexes any number of concurrent requests over one or more
// UDP sockets (256 outstanding Identifiers each), retransmits the identical
// packet on timeout and accepts only replies that verify.
//
// Callers import layeh.com/radius as radius and this package as tradius:
//
//	import (
//		radius "layeh.com/radius"
//		tradius "trustnac/transport/radius"
//	)
package radius
