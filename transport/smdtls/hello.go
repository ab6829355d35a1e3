package smdtls

import (
	"encoding/binary"
	"fmt"
)

// Handshake-layer constants (RFC 6347 §4.2.2, §4.3.2; RFC 5246 §7.4).
const (
	hsHeaderLen            = 12 // msg_type(1) length(3) message_seq(2) fragment_offset(3) fragment_length(3)
	hsClientHello          = 1
	hsHelloVerifyRequest   = 3
	dtlsMajor              = 254 // DTLS versions are one's-complemented: 1.0 = {254,255}, 1.2 = {254,253}
	dtls10Minor            = 255
	dtls12Minor            = 253
	maxCookieLen           = 255 // opaque cookie<0..2^8-1> (RFC 6347 §4.3.2)
	maxSessionIDLen        = 32
	clientHelloFixedPrefix = 2 + randomLen // client_version, random
)

// clientHello locates the cookie of a DTLS ClientHello: the first record
// of a datagram, epoch 0, one unfragmented ClientHello in it (as pion and
// most implementations send it). Slices alias the datagram.
type clientHello struct {
	recordEnd int    // end of the first record in the datagram
	body      []byte // handshake body
	cookieAt  int    // offset in body of the cookie length byte
	cookie    []byte // current cookie (aliases body)
}

// parseClientHello decodes the first record of d as a ClientHello.
// Errors wrap ErrMalformed.
func parseClientHello(d []byte) (clientHello, error) {
	var ch clientHello
	if len(d) < recordHeaderLen {
		return ch, fmt.Errorf("%w: datagram of %d bytes", ErrMalformed, len(d))
	}
	if d[0] != contentHandshake {
		return ch, fmt.Errorf("%w: content type %d is not handshake", ErrMalformed, d[0])
	}
	if d[1] != dtlsMajor || (d[2] != dtls12Minor && d[2] != dtls10Minor) {
		return ch, fmt.Errorf("%w: record version %d.%d", ErrMalformed, d[1], d[2])
	}
	if binary.BigEndian.Uint16(d[3:5]) != 0 {
		return ch, fmt.Errorf("%w: ClientHello outside epoch 0", ErrMalformed)
	}
	recLen := int(binary.BigEndian.Uint16(d[11:13]))
	if recordHeaderLen+recLen > len(d) {
		return ch, fmt.Errorf("%w: record length %d, %d bytes follow", ErrMalformed, recLen, len(d)-recordHeaderLen)
	}
	rec := d[recordHeaderLen : recordHeaderLen+recLen]
	if len(rec) < hsHeaderLen {
		return ch, fmt.Errorf("%w: handshake record of %d bytes", ErrMalformed, len(rec))
	}
	if rec[0] != hsClientHello {
		return ch, fmt.Errorf("%w: handshake type %d is not ClientHello", ErrMalformed, rec[0])
	}
	hsLen, fragOff, fragLen := uint24(rec[1:4]), uint24(rec[6:9]), uint24(rec[9:12])
	if fragOff != 0 || fragLen != hsLen {
		return ch, fmt.Errorf("%w: fragmented ClientHello", ErrMalformed)
	}
	if hsHeaderLen+hsLen != len(rec) {
		return ch, fmt.Errorf("%w: ClientHello length %d in a record of %d bytes", ErrMalformed, hsLen, len(rec))
	}
	body := rec[hsHeaderLen:]
	if len(body) < clientHelloFixedPrefix+1 {
		return ch, fmt.Errorf("%w: ClientHello of %d bytes", ErrMalformed, len(body))
	}
	sidLen := int(body[clientHelloFixedPrefix])
	cookieAt := clientHelloFixedPrefix + 1 + sidLen
	if sidLen > maxSessionIDLen || cookieAt >= len(body) {
		return ch, fmt.Errorf("%w: ClientHello session_id", ErrMalformed)
	}
	cookieEnd := cookieAt + 1 + int(body[cookieAt])
	if cookieEnd > len(body) {
		return ch, fmt.Errorf("%w: ClientHello cookie", ErrMalformed)
	}
	ch.recordEnd = recordHeaderLen + recLen
	ch.body = body
	ch.cookieAt = cookieAt
	ch.cookie = body[cookieAt+1 : cookieEnd]
	return ch, nil
}

// bodyParts returns the ClientHello body without the cookie field (its
// length byte and value): what the cookie MAC covers, and exactly the
// body of the client's first ClientHello, which carried no cookie.
func (ch *clientHello) bodyParts() (before, after []byte) {
	return ch.body[:ch.cookieAt], ch.body[ch.cookieAt+1+len(ch.cookie):]
}

// appendWithCookie appends to dst the datagram d (which ch was parsed
// from) with the ClientHello's cookie replaced by cookie; the record and
// handshake lengths are adjusted and records after the first are kept.
// A nil or empty cookie strips it.
func (ch *clientHello) appendWithCookie(dst, d, cookie []byte) ([]byte, error) {
	if len(cookie) > maxCookieLen {
		return dst, fmt.Errorf("%w: cookie of %d bytes", ErrMalformed, len(cookie))
	}
	before, after := ch.bodyParts()
	bodyLen := len(before) + 1 + len(cookie) + len(after)
	if hsHeaderLen+bodyLen > 0xFFFF {
		return dst, fmt.Errorf("%w: ClientHello too long", ErrMalformed)
	}
	start := len(dst)
	dst = append(dst, d[:recordHeaderLen+hsHeaderLen]...)
	binary.BigEndian.PutUint16(dst[start+11:], uint16(hsHeaderLen+bodyLen))
	hs := dst[start+recordHeaderLen:]
	putUint24(hs[1:4], bodyLen)
	putUint24(hs[9:12], bodyLen)
	dst = append(dst, before...)
	dst = append(dst, byte(len(cookie)))
	dst = append(dst, cookie...)
	dst = append(dst, after...)
	return append(dst, d[ch.recordEnd:]...), nil
}

// appendHelloVerifyRequest appends a datagram holding one
// HelloVerifyRequest (RFC 6347 §4.2.1): record and server_version DTLS
// 1.0 as the RFC recommends, the record sequence number copied from the
// ClientHello it answers (recordSeq, 6 bytes), message_seq 0.
func appendHelloVerifyRequest(dst, recordSeq, cookie []byte) []byte {
	bodyLen := 2 + 1 + len(cookie)
	dst = append(dst, contentHandshake, dtlsMajor, dtls10Minor, 0, 0)
	dst = append(dst, recordSeq[:6]...)
	dst = binary.BigEndian.AppendUint16(dst, uint16(hsHeaderLen+bodyLen))
	dst = append(dst, hsHelloVerifyRequest)
	dst = appendUint24(dst, bodyLen)
	dst = append(dst, 0, 0) // message_seq
	dst = appendUint24(dst, 0)
	dst = appendUint24(dst, bodyLen)
	dst = append(dst, dtlsMajor, dtls10Minor, byte(len(cookie)))
	return append(dst, cookie...)
}

// parseHelloVerifyRequest decodes a datagram whose first record is an
// epoch-0 HelloVerifyRequest and returns a copy of its cookie (1..255
// bytes). Errors wrap ErrMalformed.
func parseHelloVerifyRequest(d []byte) ([]byte, error) {
	if len(d) < recordHeaderLen+hsHeaderLen+3 || d[0] != contentHandshake || d[1] != dtlsMajor ||
		binary.BigEndian.Uint16(d[3:5]) != 0 || d[recordHeaderLen] != hsHelloVerifyRequest {
		return nil, fmt.Errorf("%w: not a HelloVerifyRequest", ErrMalformed)
	}
	recLen := int(binary.BigEndian.Uint16(d[11:13]))
	if recordHeaderLen+recLen > len(d) || recLen < hsHeaderLen+3 {
		return nil, fmt.Errorf("%w: HelloVerifyRequest record length %d", ErrMalformed, recLen)
	}
	rec := d[recordHeaderLen : recordHeaderLen+recLen]
	hsLen, fragOff, fragLen := uint24(rec[1:4]), uint24(rec[6:9]), uint24(rec[9:12])
	if fragOff != 0 || fragLen != hsLen || hsHeaderLen+hsLen > len(rec) {
		return nil, fmt.Errorf("%w: HelloVerifyRequest layout", ErrMalformed)
	}
	body := rec[hsHeaderLen : hsHeaderLen+hsLen]
	if len(body) < 3 || body[0] != dtlsMajor {
		return nil, fmt.Errorf("%w: HelloVerifyRequest body", ErrMalformed)
	}
	n := int(body[2])
	if n == 0 || 3+n != len(body) {
		return nil, fmt.Errorf("%w: HelloVerifyRequest cookie of %d bytes in %d", ErrMalformed, n, len(body)-3)
	}
	return append([]byte(nil), body[3:]...), nil
}

// appendPlainAlert appends an unprotected epoch-0 alert record (RFC 5246
// §7.2) with sequence number seq.
func appendPlainAlert(dst []byte, seq uint64, level, desc uint8) []byte {
	dst = append(dst, contentAlert, dtlsMajor, dtls12Minor, 0, 0)
	dst = append(dst, byte(seq>>40), byte(seq>>32), byte(seq>>24), byte(seq>>16), byte(seq>>8), byte(seq))
	dst = binary.BigEndian.AppendUint16(dst, 2)
	return append(dst, level, desc)
}

// parsePlainAlert returns the first unprotected (epoch 0) alert among the
// records of datagram d.
func parsePlainAlert(d []byte) (level, desc uint8, ok bool) {
	for len(d) >= recordHeaderLen {
		n := int(binary.BigEndian.Uint16(d[11:13]))
		if recordHeaderLen+n > len(d) {
			return 0, 0, false
		}
		if d[0] == contentAlert && binary.BigEndian.Uint16(d[3:5]) == 0 && n == 2 {
			return d[recordHeaderLen], d[recordHeaderLen+1], true
		}
		d = d[recordHeaderLen+n:]
	}
	return 0, 0, false
}

func uint24(b []byte) int { return int(b[0])<<16 | int(b[1])<<8 | int(b[2]) }

func putUint24(b []byte, v int) { b[0], b[1], b[2] = byte(v>>16), byte(v>>8), byte(v) }

func appendUint24(dst []byte, v int) []byte { return append(dst, byte(v>>16), byte(v>>8), byte(v)) }
