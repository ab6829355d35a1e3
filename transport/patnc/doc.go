// Package patnc is the PA-TNC message and attribute codec (RFC 5792): the
// 8-byte message header, the 12-byte attribute header, the IETF standard
// attributes 1–12 as typed values, and the PA-TNC Error attribute that answers
// malformed messages and unsupported NOSKIP attributes. trustnac's own TPM
// 2.0 evidence attributes (vendor VendorTrustnac, trustnac.go) decode to
// typed values the same way; TCG attributes (vendor 0x005597) travel as raw
// attributes beside them.
//
// Codecs are pure: no I/O, no logging. Every length is checked against the
// bytes present before anything is allocated.
package patnc
