// Package controller is the per-hypervisor PEP controller behind `nac pep`: it manages the ports
// of one Linux bridge (locked first, then served), runs an IEEE 802.1X-2010 authenticator PAE on
// each with the PDP as RADIUS backend (RFC 3579, RFC 3580), turns the kernel's locked FDB
// entries into MAC authentication bypass (MAB) requests, enforces each Access-Accept through a
// pep.Enforcer, reports sessions in RADIUS accounting (RFC 2866) and answers the PDP's Dynamic
// Authorization requests (CoA and Disconnect, RFC 5176).
//
// It fails closed: managed ports are locked before anything else and stay locked; an Accept
// whose role the PEP does not know binds the isolate role; when the PDP cannot be reached no
// new endpoint is admitted and admitted ones keep their role until their binding expires. A
// restart reads the kernel's bindings back, drops those of ports no longer managed and
// re-authenticates the rest at once; a small state file keeps what the kernel cannot (method,
// Acct-Session-Id, Class).
package controller
