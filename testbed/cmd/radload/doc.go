// Command radload is a RADIUS load generator for trustnac's PDP and, for comparison, FreeRADIUS.
// It keeps -c transactions in flight — single Access-Requests for MAB and PAP, whole EAP
// conversations for the ttls modes — and reports the rate and latency percentiles. Every request
// carries a Message-Authenticator and every reply is verified (testbed/radius-bench/README.md).
//
// Modes: mab (MAC Authentication Bypass, Service-Type Call-Check), pap (RFC 2865 User-Password),
// ttls-pap (EAP-TTLS, RFC 5281, with PAP inside) and ttls-posture (EAP-TTLS with the trustnac
// agent's posture assessment inside: PT-EAP, RFC 7171, carrying PB-TNC, RFC 5793). The ttls modes
// act as supplicant and pass-through NAS at once (RFC 3579) through tradius.EAPConversation.
package main
