// Package tnc carries PB-TNC batches (RFC 5793) inside EAP, as an inner method
// of the EAP-TTLS tunnel. It implements two EAP methods:
//
//   - PT-EAP (RFC 7171, EAP type 54): one octet of flags (S) and version (1)
//     before the batch; no fragmentation of its own, the tunnel fragments.
//   - EAP-TNC (TCG IF-T for Tunneled EAP Methods, EAP type 38): flags L, M,
//     S and version (1), a 4-octet message length with L, and fragmentation
//     in the manner of EAP-TLS (RFC 5216 §2.1.5): the first fragment carries
//     L and M, further ones M, the last neither; each fragment is acknowledged
//     with an empty message.
//
// The codecs (TNCPacket, PTEAPPacket) are pure. Server and Peer are the
// eap.ServerMethod and eap.PeerMethod that feed reassembled batches to a
// PB-TNC session (*pbtnc.Server or *pbtnc.Client) and send what it returns.
// The EAP outcome says whether the PB-TNC exchange completed, not what the
// posture verdict was: an endpoint assessed as non-compliant still completes
// the method successfully, and the PDP reads the decision from its TNCS.
//
// IF-TNCCS 1.1 (the XML TNCCS-Batch spoken by hostapd and wpa_supplicant) is
// detected and refused with ErrTNCCS11.
package tnc
