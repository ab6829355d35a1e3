// Command radload is a RADIUS load generator for trustnac's PDP and, for comparison, FreeRADIUS.
// It keeps -c transactions in flight — single Access-Requests for MAB and PAP, whole EAP-TTLS
// conversations for the ttls modes — and reports the rate and latency percentiles. Every request
// carries a Message-Authenticator and every reply is verified (testbed/radius-bench/README.md).
//
// Modes: mab (MAC Authentication Bypass, Service-Type Call-Check), pap (RFC 2865 User-Password)
// and ttls-pap (EAP-TTLS, RFC 5281, with PAP inside, over RADIUS as RFC 3579 describes).
package main
