package mschapv2

import (
	"crypto/des"
	"crypto/sha1"
	"encoding/binary"
	"strings"
	"unicode/utf16"

	"golang.org/x/crypto/md4"
)

// NTHash is NtPasswordHash (RFC 2759 §8.3): the MD4 digest of the password
// in UTF-16LE. The PDP stores this, never the password.
func NTHash(password string) []byte {
	u := utf16.Encode([]rune(password))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	h := md4.New()
	h.Write(b)
	return h.Sum(nil)
}

// hashNTHash is HashNtPasswordHash (RFC 2759 §8.4).
func hashNTHash(ntHash [16]byte) [16]byte {
	h := md4.New()
	h.Write(ntHash[:])
	var out [16]byte
	h.Sum(out[:0])
	return out
}

// hashUser is the user name as it enters ChallengeHash: without a domain
// prefix such as "DOMAIN\" (RFC 2759 §8.2).
func hashUser(user string) string {
	if i := strings.LastIndexByte(user, '\\'); i >= 0 {
		return user[i+1:]
	}
	return user
}

// ChallengeHash (RFC 2759 §8.2): the first 8 octets of
// SHA-1(PeerChallenge | AuthenticatorChallenge | UserName), the user name
// taken without a domain prefix.
func ChallengeHash(peerChallenge, authChallenge [16]byte, user string) [8]byte {
	h := sha1.New()
	h.Write(peerChallenge[:])
	h.Write(authChallenge[:])
	h.Write([]byte(hashUser(user)))
	var sum [sha1.Size]byte
	h.Sum(sum[:0])
	var out [8]byte
	copy(out[:], sum[:8])
	return out
}

// ChallengeResponse (RFC 2759 §8.5): the challenge encrypted with DES under
// the three 7-octet thirds of the NT hash padded with zeros to 21 octets.
func ChallengeResponse(challenge [8]byte, ntHash [16]byte) [24]byte {
	var z [21]byte
	copy(z[:], ntHash[:])
	var out [24]byte
	for i := range 3 {
		desEncrypt(out[8*i:8*i+8], z[7*i:7*i+7], challenge[:])
	}
	return out
}

// desEncrypt is DesEncrypt (RFC 2759 §8.6): a 7-octet key spread over the
// eight 7-bit groups of a DES key (the parity bits, which DES ignores, are
// left zero).
func desEncrypt(dst, key7, clear []byte) {
	k := [8]byte{
		key7[0],
		key7[0]<<7 | key7[1]>>1,
		key7[1]<<6 | key7[2]>>2,
		key7[2]<<5 | key7[3]>>3,
		key7[3]<<4 | key7[4]>>4,
		key7[4]<<3 | key7[5]>>5,
		key7[5]<<2 | key7[6]>>6,
		key7[6] << 1,
	}
	c, _ := des.NewCipher(k[:]) // an 8-octet key never fails
	c.Encrypt(dst, clear)
}

// GenerateNTResponse (RFC 2759 §8.1), from the NT hash rather than the
// password: ChallengeResponse(ChallengeHash(...), ntHash).
func GenerateNTResponse(authChallenge, peerChallenge [16]byte, user string, ntHash [16]byte) [24]byte {
	return ChallengeResponse(ChallengeHash(peerChallenge, authChallenge, user), ntHash)
}

// The constants of GenerateAuthenticatorResponse (RFC 2759 §8.7).
var (
	magic1 = []byte("Magic server to client signing constant")
	magic2 = []byte("Pad to make it do more than one iteration")
)

// AuthenticatorResponse is GenerateAuthenticatorResponse (RFC 2759 §8.7)
// from the NT hash; the Success Request carries it as "S=" and 40 hex
// digits (FormatSuccess).
func AuthenticatorResponse(ntHash [16]byte, ntResponse [24]byte, peerChallenge, authChallenge [16]byte, user string) [20]byte {
	hh := hashNTHash(ntHash)
	h := sha1.New()
	h.Write(hh[:])
	h.Write(ntResponse[:])
	h.Write(magic1)
	var digest [sha1.Size]byte
	h.Sum(digest[:0])
	ch := ChallengeHash(peerChallenge, authChallenge, user)
	h.Reset()
	h.Write(digest[:])
	h.Write(ch[:])
	h.Write(magic2)
	var out [20]byte
	h.Sum(out[:0])
	return out
}
