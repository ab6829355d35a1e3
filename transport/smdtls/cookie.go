package smdtls

import (
	"crypto/hmac"
	"crypto/rand"
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/emmansun/gmsm/sm3"
)

// Stateless cookies (RFC 6347 §4.2.1): the server keeps no state for a
// ClientHello until the client echoes a cookie that only the server could
// have made for that address. Layout (cookieLen bytes):
//
//	version (1) = 1 || issued (4, Unix seconds) ||
//	HMAC-SM3(key, ip(16) || port(2) || issued || ClientHello body without
//	         the cookie field)[:16]
const (
	cookieVersion  = 1
	cookieMACLen   = 16
	cookieLen      = 1 + 4 + cookieMACLen
	cookieLifetime = 60 * time.Second
	cookieSkew     = 2 * time.Second
)

// cookieJar makes and checks stateless cookies with a key chosen at
// random when the Listener starts.
type cookieJar struct {
	key [32]byte
	now func() time.Time
}

func newCookieJar() (*cookieJar, error) {
	j := &cookieJar{now: time.Now}
	if _, err := rand.Read(j.key[:]); err != nil {
		return nil, err
	}
	return j, nil
}

func (j *cookieJar) mac(dst []byte, addr netip.AddrPort, issued uint32, ch *clientHello) []byte {
	h := hmac.New(sm3.New, j.key[:])
	ip := addr.Addr().Unmap().As16()
	var buf [16 + 2 + 4]byte
	copy(buf[:16], ip[:])
	binary.BigEndian.PutUint16(buf[16:], addr.Port())
	binary.BigEndian.PutUint32(buf[18:], issued)
	h.Write(buf[:])
	before, after := ch.bodyParts()
	h.Write(before)
	h.Write(after)
	return h.Sum(dst)[:len(dst)+cookieMACLen]
}

// issue returns a fresh cookie for a ClientHello from addr.
func (j *cookieJar) issue(addr netip.AddrPort, ch *clientHello) []byte {
	issued := uint32(j.now().Unix())
	c := make([]byte, 5, cookieLen+sm3.Size)
	c[0] = cookieVersion
	binary.BigEndian.PutUint32(c[1:5], issued)
	return j.mac(c, addr, issued, ch)
}

// valid reports whether ch carries a cookie this jar made for addr and the
// same ClientHello, no older than cookieLifetime.
func (j *cookieJar) valid(addr netip.AddrPort, ch *clientHello) bool {
	c := ch.cookie
	if len(c) != cookieLen || c[0] != cookieVersion {
		return false
	}
	issued := binary.BigEndian.Uint32(c[1:5])
	now := j.now()
	t := time.Unix(int64(issued), 0)
	if t.After(now.Add(cookieSkew)) || now.Sub(t) > cookieLifetime {
		return false
	}
	want := j.mac(make([]byte, 0, sm3.Size), addr, issued, ch)
	return hmac.Equal(want, c[5:])
}
