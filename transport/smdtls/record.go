package smdtls

import (
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/emmansun/gmsm/sm4"
)

// Record-layer sizes (RFC 6347 §4.1, RFC 5288 §3).
const (
	recordHeaderLen  = 13 // type(1) version(2) epoch(2) sequence_number(6) length(2)
	explicitNonceLen = 8  // GCMNonce.nonce_explicit
	gcmTagLen        = 16
	gcmNonceLen      = fixedIVLen + explicitNonceLen
	maxPlaintextLen  = 1 << 14 // RFC 5246 §6.2.1
)

// errRecordAuth reports a record whose GCM tag does not verify.
var errRecordAuth = errors.New("smdtls: record authentication failed")

// recordCipher protects DTLS 1.2 records in one direction with an AEAD in
// the RFC 5288 layout:
//
//	nonce            = salt (4, from the key block) || nonce_explicit (8)
//	nonce_explicit   = epoch (2) || sequence_number (6) of the record
//	additional_data  = epoch || sequence_number || type || version || length
//	                   (length of the plaintext, RFC 5246 §6.2.3.3)
//	DTLSCiphertext   = header || nonce_explicit || ciphertext || tag
//
// Using the record's own epoch and sequence number as nonce_explicit keeps
// nonces unique per key without a random source (RFC 5288 §3 allows any
// unique value; pion's replay window guarantees each is accepted once).
type recordCipher struct {
	aead cipher.AEAD
	salt [fixedIVLen]byte
}

// newSM4Cipher returns the SM4-GCM record cipher for key and salt.
// crypto/cipher.NewGCM picks up gmsm's accelerated SM4-GCM.
func newSM4Cipher(key, salt []byte) (*recordCipher, error) {
	block, err := sm4.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("smdtls: SM4 key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("smdtls: SM4-GCM: %w", err)
	}
	return newRecordCipher(aead, salt)
}

func newRecordCipher(aead cipher.AEAD, salt []byte) (*recordCipher, error) {
	if aead.NonceSize() != gcmNonceLen || aead.Overhead() != gcmTagLen || len(salt) != fixedIVLen {
		return nil, errors.New("smdtls: record cipher needs a 12-byte nonce, a 16-byte tag and a 4-byte salt")
	}
	rc := &recordCipher{aead: aead}
	copy(rc.salt[:], salt)
	return rc, nil
}

// additionalData builds the AEAD additional data from a record header
// and the plaintext length.
func additionalData(hdr []byte, plainLen int) [recordHeaderLen]byte {
	var ad [recordHeaderLen]byte
	copy(ad[:11], hdr[3:11]) // epoch || sequence_number
	ad[8] = hdr[0]           // type
	ad[9], ad[10] = hdr[1], hdr[2]
	binary.BigEndian.PutUint16(ad[11:], uint16(plainLen))
	return ad
}

// seal appends the protected form of rec (a DTLSPlaintext record: header
// and fragment) to dst. dst must not overlap rec.
func (rc *recordCipher) seal(dst, rec []byte) ([]byte, error) {
	if len(rec) < recordHeaderLen {
		return dst, fmt.Errorf("%w: record of %d bytes", ErrMalformed, len(rec))
	}
	hdr, plain := rec[:recordHeaderLen], rec[recordHeaderLen:]
	if len(plain) > maxPlaintextLen {
		return dst, fmt.Errorf("%w: plaintext of %d bytes exceeds %d", ErrMalformed, len(plain), maxPlaintextLen)
	}
	var nonce [gcmNonceLen]byte
	copy(nonce[:fixedIVLen], rc.salt[:])
	copy(nonce[fixedIVLen:], hdr[3:11])
	ad := additionalData(hdr, len(plain))

	start := len(dst)
	dst = append(dst, hdr...)
	dst = append(dst, hdr[3:11]...) // nonce_explicit
	dst = rc.aead.Seal(dst, nonce[:], plain, ad[:])
	binary.BigEndian.PutUint16(dst[start+11:], uint16(explicitNonceLen+len(plain)+gcmTagLen))
	return dst, nil
}

// open verifies and decrypts one protected record (header, explicit nonce,
// ciphertext and tag, nothing after it) and appends the DTLSPlaintext
// record (header with the plaintext length, then the plaintext) to dst.
// Errors wrap ErrMalformed, or errRecordAuth for a tag that does not
// verify. dst must not overlap rec.
func (rc *recordCipher) open(dst, rec []byte) ([]byte, error) {
	if len(rec) < recordHeaderLen+explicitNonceLen+gcmTagLen {
		return dst, fmt.Errorf("%w: protected record of %d bytes", ErrMalformed, len(rec))
	}
	if n := int(binary.BigEndian.Uint16(rec[11:13])); n != len(rec)-recordHeaderLen {
		return dst, fmt.Errorf("%w: record length field %d, %d bytes follow", ErrMalformed, n, len(rec)-recordHeaderLen)
	}
	hdr := rec[:recordHeaderLen]
	body := rec[recordHeaderLen+explicitNonceLen:]
	plainLen := len(body) - gcmTagLen
	if plainLen > maxPlaintextLen {
		return dst, fmt.Errorf("%w: plaintext of %d bytes exceeds %d", ErrMalformed, plainLen, maxPlaintextLen)
	}
	var nonce [gcmNonceLen]byte
	copy(nonce[:fixedIVLen], rc.salt[:])
	copy(nonce[fixedIVLen:], rec[recordHeaderLen:recordHeaderLen+explicitNonceLen])
	ad := additionalData(hdr, plainLen)

	start := len(dst)
	dst = append(dst, hdr...)
	out, err := rc.aead.Open(dst, nonce[:], body, ad[:])
	if err != nil {
		return dst[:start], errRecordAuth
	}
	binary.BigEndian.PutUint16(out[start+11:], uint16(plainLen))
	return out, nil
}
