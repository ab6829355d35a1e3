package radius

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"sync"

	radius "layeh.com/radius"
)

// Wire constants (RFC 2865 §3, §5; RFC 2869 §5.14).
const (
	headerLen       = 20                     // Code, Identifier, Length, Authenticator
	maxPacketLen    = radius.MaxPacketLength // 4096, RFC 2865 §3
	maxAttrValueLen = 253                    // RFC 2865 §5

	typeProxyState           radius.Type = 33 // RFC 2865 §5.33
	typeEAPMessage           radius.Type = 79 // RFC 3579 §3.1
	typeMessageAuthenticator radius.Type = 80 // RFC 2869 §5.14

	maAttrLen = 2 + md5.Size // the only valid Message-Authenticator length
)

var zeroAuth [16]byte

// packetInfo is what checkPacket learns walking the attributes.
type packetInfo struct {
	maOff       int // offset of the first Message-Authenticator value, -1 if none
	maCount     int
	proxyStates int
	attrs       int // number of attributes
}

// checkPacket applies the length rules of RFC 2865 §3 and the attribute
// format of RFC 2865 §5 to a datagram b. It returns the packet (b cut to
// its Length field; octets beyond it are padding) and where its
// Message-Authenticator is.
func checkPacket(b []byte) ([]byte, packetInfo, error) {
	info := packetInfo{maOff: -1}
	if len(b) < headerLen {
		return nil, info, fmt.Errorf("%w: %d octets, shorter than the header", ErrMalformed, len(b))
	}
	if len(b) > maxPacketLen {
		return nil, info, fmt.Errorf("%w: datagram longer than %d octets", ErrMalformed, maxPacketLen)
	}
	length := int(binary.BigEndian.Uint16(b[2:4]))
	if length < headerLen || length > maxPacketLen {
		return nil, info, fmt.Errorf("%w: Length %d out of range", ErrMalformed, length)
	}
	if length > len(b) {
		return nil, info, fmt.Errorf("%w: Length %d exceeds the %d octets received", ErrMalformed, length, len(b))
	}
	b = b[:length]
	for off := headerLen; off < length; {
		if length-off < 2 {
			return nil, info, fmt.Errorf("%w: truncated attribute at offset %d", ErrMalformed, off)
		}
		l := int(b[off+1])
		if l < 2 || l > length-off {
			return nil, info, fmt.Errorf("%w: attribute at offset %d has length %d", ErrMalformed, off, l)
		}
		switch radius.Type(b[off]) {
		case typeMessageAuthenticator:
			if l != maAttrLen {
				return nil, info, fmt.Errorf("%w: Message-Authenticator of length %d", ErrMalformed, l)
			}
			info.maCount++
			if info.maOff < 0 {
				info.maOff = off + 2
			}
		case typeProxyState:
			info.proxyStates++
		}
		info.attrs++
		off += l
	}
	return b, info, nil
}

// parseChecked decodes pkt, which checkPacket accepted with info, into p
// as radius.Parse would: Code, Identifier, Authenticator, secret, and the
// attributes in order, each value copied out of pkt (nil for an empty
// one). All values share one copy of the attribute octets, each capped at
// its own length so that an append cannot reach its neighbour. The AVPs
// and the attribute list live in avps and ptrs when info.attrs fits them,
// so that a typical request costs one allocation.
func parseChecked(p *radius.Packet, avps []radius.AVP, ptrs []*radius.AVP, pkt []byte, info packetInfo, secret []byte) {
	*p = radius.Packet{Code: radius.Code(pkt[0]), Identifier: pkt[1], Secret: secret}
	copy(p.Authenticator[:], pkt[4:headerLen])
	n := info.attrs
	if n == 0 {
		return
	}
	if n > len(avps) || n > len(ptrs) {
		avps = make([]radius.AVP, n)
		ptrs = make([]*radius.AVP, n)
	}
	avps, ptrs = avps[:n], ptrs[:n]
	data := make([]byte, len(pkt)-headerLen)
	copy(data, pkt[headerLen:])
	for i, off := 0, 0; i < n; i++ {
		l := int(data[off+1])
		avps[i].Type = radius.Type(data[off])
		avps[i].Attribute = nil
		if l > 2 {
			avps[i].Attribute = radius.Attribute(data[off+2 : off+l : off+l])
		}
		ptrs[i] = &avps[i]
		off += l
	}
	p.Attributes = radius.Attributes(ptrs[:n:n])
}

// sumMA computes the Message-Authenticator of pkt (RFC 2869 §5.14): the
// HMAC-MD5 of the packet with the Message-Authenticator value at maOff
// taken as zero and, when auth is non-nil, auth in the Authenticator field.
// m must be keyed with the shared secret and reset.
func sumMA(m *macState, pkt []byte, maOff int, auth *[16]byte) []byte {
	h := m.h
	h.Write(pkt[:4])
	if auth != nil {
		// Through m's buffer: a pointer handed to the hash.Hash interface
		// escapes, and auth is often on the caller's stack.
		m.auth = *auth
		h.Write(m.auth[:])
	} else {
		h.Write(pkt[4:headerLen])
	}
	h.Write(pkt[headerLen:maOff])
	h.Write(zeroAuth[:])
	h.Write(pkt[maOff+md5.Size:])
	return h.Sum(m.sum[:0])
}

var md5Pool = sync.Pool{New: func() any { return &macState{h: md5.New()} }}

// sumAuth computes MD5(Code|Identifier|Length|auth|Attributes|secret), the
// Response Authenticator of RFC 2865 §3 (auth: the Request Authenticator)
// and the Request Authenticator of RFC 2866 §3 and RFC 5176 §2.3 (auth:
// zero).
func sumAuth(pkt []byte, auth *[16]byte, secret []byte) (out [16]byte) {
	m := md5Pool.Get().(*macState)
	m.h.Reset()
	m.h.Write(pkt[:4])
	m.auth = *auth // see sumMA
	m.h.Write(m.auth[:])
	m.h.Write(pkt[headerLen:])
	m.h.Write(secret)
	copy(out[:], m.h.Sum(m.sum[:0]))
	md5Pool.Put(m)
	return out
}

func newMAC(secret []byte) *macState { return &macState{h: hmac.New(md5.New, secret)} }

// isRequestCode reports whether c is a request code this package knows.
func isRequestCode(c radius.Code) bool {
	switch c {
	case radius.CodeAccessRequest, radius.CodeStatusServer, radius.CodeAccountingRequest,
		radius.CodeCoARequest, radius.CodeDisconnectRequest:
		return true
	}
	return false
}

// hashedAuthenticator reports whether requests of code c carry an MD5
// Request Authenticator (RFC 2866 §3, RFC 5176 §2.3) rather than a random
// one (RFC 2865 §3, RFC 5997 §3).
func hashedAuthenticator(c radius.Code) bool {
	return c == radius.CodeAccountingRequest || c == radius.CodeCoARequest || c == radius.CodeDisconnectRequest
}

// replyRequiresMA reports whether a reply to a request of code c must carry
// a Message-Authenticator (RFC 3579 §3.2, RFC 5997 §3, Blast-RADIUS).
func replyRequiresMA(c radius.Code) bool {
	return c == radius.CodeAccessRequest || c == radius.CodeStatusServer
}

// replyCodeOK reports whether rep answers a request of code req (RFC 2865
// §4, RFC 2866 §4, RFC 5176 §2, RFC 5997 §3).
func replyCodeOK(req, rep radius.Code) bool {
	switch req {
	case radius.CodeAccessRequest:
		return rep == radius.CodeAccessAccept || rep == radius.CodeAccessReject || rep == radius.CodeAccessChallenge
	case radius.CodeAccountingRequest:
		return rep == radius.CodeAccountingResponse
	case radius.CodeStatusServer:
		return rep == radius.CodeAccessAccept || rep == radius.CodeAccountingResponse
	case radius.CodeCoARequest:
		return rep == radius.CodeCoAACK || rep == radius.CodeCoANAK
	case radius.CodeDisconnectRequest:
		return rep == radius.CodeDisconnectACK || rep == radius.CodeDisconnectNAK
	}
	return false
}

// isReplyCode reports whether c is a reply code this package knows.
func isReplyCode(c radius.Code) bool {
	switch c {
	case radius.CodeAccessAccept, radius.CodeAccessReject, radius.CodeAccessChallenge,
		radius.CodeAccountingResponse, radius.CodeCoAACK, radius.CodeCoANAK,
		radius.CodeDisconnectACK, radius.CodeDisconnectNAK:
		return true
	}
	return false
}

// verifyMA checks the single Message-Authenticator of pkt in constant time.
func verifyMA(m *macState, pkt []byte, info packetInfo, auth *[16]byte) error {
	switch {
	case info.maCount == 0:
		return ErrMissingMessageAuthenticator
	case info.maCount > 1:
		return fmt.Errorf("%w: %d Message-Authenticator attributes", ErrMalformed, info.maCount)
	}
	if !hmac.Equal(sumMA(m, pkt, info.maOff, auth), pkt[info.maOff:info.maOff+md5.Size]) {
		return ErrBadMessageAuthenticator
	}
	return nil
}

// verifyRequest checks the authenticators of a request (RFC 2865 §3,
// RFC 2866 §3, RFC 2869 §5.14, RFC 5176 §2.3/§3.5, RFC 5997 §3):
// Access-Request and Status-Server need a valid Message-Authenticator;
// Accounting-Request, CoA-Request and Disconnect-Request need a valid MD5
// Request Authenticator and, if they carry one, a valid
// Message-Authenticator computed over a zero Authenticator field.
func verifyRequest(m *macState, pkt []byte, info packetInfo, secret []byte) error {
	code := radius.Code(pkt[0])
	switch {
	case code == radius.CodeAccessRequest || code == radius.CodeStatusServer:
		return verifyMA(m, pkt, info, nil)
	case hashedAuthenticator(code):
		want := sumAuth(pkt, &zeroAuth, secret)
		if subtle.ConstantTimeCompare(want[:], pkt[4:headerLen]) != 1 {
			return ErrBadAuthenticator
		}
		if info.maCount == 0 {
			return nil
		}
		return verifyMA(m, pkt, info, &zeroAuth)
	}
	return fmt.Errorf("%w: %v", ErrUnsupportedCode, code)
}

// verifyReply checks a reply to a request of code reqCode, Identifier
// reqID and Request Authenticator reqAuth (RFC 2865 §3, RFC 3579 §3.2).
func verifyReply(m *macState, pkt []byte, info packetInfo, reqCode radius.Code, reqID byte, reqAuth *[16]byte, secret []byte) error {
	code := radius.Code(pkt[0])
	if pkt[1] != reqID {
		return fmt.Errorf("%w: Identifier %d, want %d", ErrUnexpectedReply, pkt[1], reqID)
	}
	if !replyCodeOK(reqCode, code) {
		return fmt.Errorf("%w: %v in reply to %v", ErrUnexpectedReply, code, reqCode)
	}
	want := sumAuth(pkt, reqAuth, secret)
	if subtle.ConstantTimeCompare(want[:], pkt[4:headerLen]) != 1 {
		return ErrBadAuthenticator
	}
	if info.maCount == 0 && !replyRequiresMA(reqCode) {
		return nil
	}
	return verifyMA(m, pkt, info, reqAuth)
}

// encodeKind says how encodePacket fills the Authenticator field.
type encodeKind int

const (
	kindRandom      encodeKind = iota // Access-Request, Status-Server: p.Authenticator as is
	kindHashed                        // Accounting, CoA, Disconnect request: MD5 over a zero field
	kindReply                         // reply: MD5 over p.Authenticator (the Request Authenticator)
	kindStatusReply                   // reply to Status-Server: as kindReply, always with a Message-Authenticator (RFC 5997 §3)
)

// encodePacket encodes p with a Message-Authenticator as its first
// attribute (replacing any p carries), as the Blast-RADIUS mitigations
// recommend, then fills the Authenticator field according to kind.
func encodePacket(p *radius.Packet, secret []byte, m *macState, kind encodeKind) ([]byte, error) {
	if len(secret) == 0 {
		return nil, ErrNoSecret
	}
	// Accounting-Response carries no Message-Authenticator: RFC 2866 does
	// not define one there and implementations disagree on how to compute
	// it (FreeRADIUS over a zero authenticator, hostapd over the request's),
	// so either would reject ours. Its Response Authenticator protects it.
	withMA := !(kind == kindReply && p.Code == radius.CodeAccountingResponse)
	if kind == kindStatusReply {
		kind = kindReply
	}
	size := headerLen
	if withMA {
		size += maAttrLen
	}
	for _, a := range p.Attributes {
		if a == nil || a.Type == typeMessageAuthenticator {
			continue
		}
		if a.Type < 0 || a.Type > 255 {
			return nil, fmt.Errorf("radius: attribute type %d out of range", a.Type)
		}
		if len(a.Attribute) > maxAttrValueLen {
			return nil, fmt.Errorf("radius: attribute %d: %d octets exceed %d", a.Type, len(a.Attribute), maxAttrValueLen)
		}
		size += 2 + len(a.Attribute)
		if size > maxPacketLen {
			return nil, fmt.Errorf("radius: %v exceeds %d octets", p.Code, maxPacketLen)
		}
	}
	b := make([]byte, size)
	b[0] = byte(p.Code)
	b[1] = p.Identifier
	binary.BigEndian.PutUint16(b[2:4], uint16(size))
	if kind != kindHashed {
		copy(b[4:headerLen], p.Authenticator[:])
	}
	off := headerLen
	if withMA {
		b[headerLen] = byte(typeMessageAuthenticator)
		b[headerLen+1] = maAttrLen
		off += maAttrLen
	}
	for _, a := range p.Attributes {
		if a == nil || a.Type == typeMessageAuthenticator {
			continue
		}
		b[off] = byte(a.Type)
		b[off+1] = byte(2 + len(a.Attribute))
		off += 2 + copy(b[off+2:], a.Attribute)
	}
	if withMA {
		maOff := headerLen + 2
		copy(b[maOff:], sumMA(m, b, maOff, nil))
	}
	switch kind {
	case kindHashed:
		auth := sumAuth(b, &zeroAuth, secret)
		copy(b[4:headerLen], auth[:])
	case kindReply:
		auth := sumAuth(b, &p.Authenticator, secret)
		copy(b[4:headerLen], auth[:])
	}
	return b, nil
}

// EncodeRequest encodes the request p (Access-Request, Status-Server,
// Accounting-Request, CoA-Request or Disconnect-Request) with p.Secret and a
// Message-Authenticator as its first attribute (RFC 2869 §5.14, RFC 3579
// §3.2), replacing any present. Access-Request and Status-Server keep
// p.Authenticator, which the caller fills from crypto/rand (RFC 2865 §3);
// the others get the MD5 Request Authenticator of RFC 2866 §3 / RFC 5176
// §2.3, computed after the Message-Authenticator (which is computed over a
// zero Authenticator field, RFC 5176 §3.5).
func EncodeRequest(p *radius.Packet) ([]byte, error) {
	if !isRequestCode(p.Code) {
		return nil, fmt.Errorf("%w: %v is not a request", ErrUnsupportedCode, p.Code)
	}
	if len(p.Secret) == 0 {
		return nil, ErrNoSecret
	}
	kind := kindRandom
	if hashedAuthenticator(p.Code) {
		kind = kindHashed
	}
	return encodePacket(p, p.Secret, newMAC(p.Secret), kind)
}

// EncodeReply encodes the reply p with p.Secret. p.Authenticator must hold
// the Request Authenticator of the request it answers, as
// radius.Packet.Response leaves it. The Message-Authenticator goes first and
// is computed over the Request Authenticator (RFC 3579 §3.2); then the
// Response Authenticator of RFC 2865 §3 replaces it.
func EncodeReply(p *radius.Packet) ([]byte, error) {
	if !isReplyCode(p.Code) {
		return nil, fmt.Errorf("%w: %v is not a reply", ErrUnsupportedCode, p.Code)
	}
	if len(p.Secret) == 0 {
		return nil, ErrNoSecret
	}
	return encodePacket(p, p.Secret, newMAC(p.Secret), kindReply)
}

// VerifyRequest checks a received request b against secret the way Server
// does: RFC 2865 §3 length rules and attribute format, then a
// Message-Authenticator required on Access-Request and Status-Server, and
// the MD5 Request Authenticator (plus the Message-Authenticator if present)
// on Accounting-Request, CoA-Request and Disconnect-Request. Errors wrap
// ErrMalformed, ErrMissingMessageAuthenticator, ErrBadMessageAuthenticator,
// ErrBadAuthenticator or ErrUnsupportedCode.
func VerifyRequest(b, secret []byte) error {
	if len(secret) == 0 {
		return ErrNoSecret
	}
	pkt, info, err := checkPacket(b)
	if err != nil {
		return err
	}
	return verifyRequest(newMAC(secret), pkt, info, secret)
}

// VerifyReply checks reply b against the request it answers (as sent, with
// its Authenticator) the way Client does: same Identifier, a reply code
// that fits the request, the Response Authenticator (RFC 2865 §3) and the
// Message-Authenticator (RFC 3579 §3.2), which is required when the request
// was an Access-Request or Status-Server. Errors wrap the sentinels of
// VerifyRequest or ErrUnexpectedReply.
func VerifyReply(b, request, secret []byte) error {
	if len(secret) == 0 {
		return ErrNoSecret
	}
	if len(request) < headerLen {
		return fmt.Errorf("%w: request of %d octets", ErrMalformed, len(request))
	}
	pkt, info, err := checkPacket(b)
	if err != nil {
		return err
	}
	var reqAuth [16]byte
	copy(reqAuth[:], request[4:headerLen])
	return verifyReply(newMAC(secret), pkt, info, radius.Code(request[0]), request[1], &reqAuth, secret)
}

// VerifyMessageAuthenticator checks the Message-Authenticator of packet b
// (RFC 2869 §5.14) in constant time. auth is what the Authenticator field
// holds while the HMAC is computed: nil for the field as received
// (Access-Request, Status-Server), zero for Accounting-Request, CoA-Request
// and Disconnect-Request (RFC 5176 §3.5), the Request Authenticator for a
// reply (RFC 3579 §3.2). It fails with ErrMissingMessageAuthenticator when
// there is none and ErrMalformed when there are several.
func VerifyMessageAuthenticator(b, secret []byte, auth *[16]byte) error {
	if len(secret) == 0 {
		return ErrNoSecret
	}
	pkt, info, err := checkPacket(b)
	if err != nil {
		return err
	}
	return verifyMA(newMAC(secret), pkt, info, auth)
}
