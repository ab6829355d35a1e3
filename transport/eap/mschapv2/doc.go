// Package mschapv2 is EAP-MSCHAPv2 (EAP type 26, draft-kamath-pppext-eap-mschapv2),
// the MS-CHAP-v2 exchange of RFC 2759 carried in EAP, as trustnac runs it
// inside the EAP-TTLS tunnel to authenticate a user before posture
// assessment.
//
// The server never holds passwords: it looks up NT password hashes (MD4 of
// the UTF-16LE password, RFC 2759 §8.3; see NTHash) and proves knowledge of
// the hash to the peer with the authenticator response (RFC 2759 §8.7). The
// peer verifies that proof in constant time and accepts EAP-Success only
// after it. Unknown users and wrong passwords look and cost the same on the
// server: both are checked against a hash, a dummy one for unknown users.
//
// The packet codec (Packet, FormatSuccess/ParseSuccess, Failure) is pure;
// the RFC 2759 §8 functions (NTHash, ChallengeHash, ChallengeResponse,
// GenerateNTResponse, AuthenticatorResponse) take the hash, not the
// password, so the server can use them.
package mschapv2
