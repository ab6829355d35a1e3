package smdtls

import (
	"crypto/hmac"
	"fmt"

	"github.com/emmansun/gmsm/sm3"
)

// Key-derivation constants (RFC 5246 §6.3, RFC 5288 §3).
const (
	masterSecretLen = 48
	randomLen       = 32
	sm4KeyLen       = 16
	fixedIVLen      = 4 // the implicit part of the GCM nonce, the "salt"
	keyBlockLen     = 2*sm4KeyLen + 2*fixedIVLen

	// maxExportLen caps ExportKeyingMaterial's output.
	maxExportLen = 1 << 16
)

// prfSM3 fills dst with PRF(secret, label, seed...) of RFC 5246 §5, with
// HMAC-SM3 as the P_hash function:
//
//	P_SM3(secret, seed) = HMAC_SM3(secret, A(1) + seed) +
//	                      HMAC_SM3(secret, A(2) + seed) + ...
//	A(0) = seed, A(i) = HMAC_SM3(secret, A(i-1))
//	PRF(secret, label, seed) = P_SM3(secret, label + seed)
//
// GB/T 38636 (TLCP) defines its PRF the same way with SM3. The seeds are
// concatenated.
func prfSM3(dst, secret []byte, label string, seeds ...[]byte) {
	mac := hmac.New(sm3.New, secret)
	writeSeed := func() {
		mac.Write([]byte(label))
		for _, s := range seeds {
			mac.Write(s)
		}
	}
	writeSeed()
	a := mac.Sum(nil) // A(1)
	var block []byte
	for len(dst) > 0 {
		mac.Reset()
		mac.Write(a)
		writeSeed()
		block = mac.Sum(block[:0])
		dst = dst[copy(dst, block):]
		mac.Reset()
		mac.Write(a)
		a = mac.Sum(a[:0]) // A(i+1)
	}
}

// keyBlock is the key material of RFC 5246 §6.3 for an AEAD suite with
// SM4-128 and a 4-byte fixed IV (RFC 5288 §3); the MAC keys are empty.
type keyBlock struct {
	clientKey, serverKey   [sm4KeyLen]byte
	clientSalt, serverSalt [fixedIVLen]byte
}

// expandKeys computes key_block = PRF(master_secret, "key expansion",
// server_random + client_random) and splits it (RFC 5246 §6.3).
func expandKeys(master, clientRandom, serverRandom []byte) keyBlock {
	var kb [keyBlockLen]byte
	prfSM3(kb[:], master, "key expansion", serverRandom, clientRandom)
	var k keyBlock
	rest := kb[:]
	rest = rest[copy(k.clientKey[:], rest):]
	rest = rest[copy(k.serverKey[:], rest):]
	rest = rest[copy(k.clientSalt[:], rest):]
	copy(k.serverSalt[:], rest)
	clear(kb[:])
	return k
}

// reservedExportLabels are the PRF labels TLS 1.2 itself uses; RFC 5705
// §4 forbids them as exporter labels.
var reservedExportLabels = map[string]bool{
	"client finished":        true,
	"server finished":        true,
	"master secret":          true,
	"key expansion":          true,
	"extended master secret": true,
}

// exportKeyingMaterial is the RFC 5705 §4 exporter over PRF_SM3:
//
//	PRF(master_secret, label, client_random + server_random
//	    [+ context_value_length + context_value])
//
// A nil context means "no context"; a non-nil empty context is a context
// of length zero, which gives different output (RFC 5705 §4).
func exportKeyingMaterial(master, clientRandom, serverRandom []byte, label string, context []byte, length int) ([]byte, error) {
	switch {
	case len(master) == 0:
		return nil, fmt.Errorf("smdtls: exporter: handshake not complete")
	case reservedExportLabels[label]:
		return nil, fmt.Errorf("smdtls: exporter: label %q is reserved (RFC 5705 §4)", label)
	case length <= 0 || length > maxExportLen:
		return nil, fmt.Errorf("smdtls: exporter: length %d outside [1, %d]", length, maxExportLen)
	case len(context) > 0xFFFF:
		return nil, fmt.Errorf("smdtls: exporter: context of %d bytes exceeds 65535", len(context))
	}
	out := make([]byte, length)
	if context == nil {
		prfSM3(out, master, label, clientRandom, serverRandom)
	} else {
		n := []byte{byte(len(context) >> 8), byte(len(context))}
		prfSM3(out, master, label, clientRandom, serverRandom, n, context)
	}
	return out, nil
}
