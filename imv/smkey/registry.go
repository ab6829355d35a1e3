package smkeyimv

import (
	"crypto/ecdsa"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"
)

// Bounds of a key file.
const (
	MaxKeyFileSize = 4 << 20 // bytes
	MaxKeys        = 100000  // registered keys
	maxEndpointLen = 256
)

// EndpointHeader is the PEM header that names the endpoint a registered
// key belongs to.
const EndpointHeader = "Endpoint"

// ErrKeyFile is wrapped by the errors of a key file that cannot be used.
var ErrKeyFile = errors.New("smkeyimv: bad SM2 key file")

// Registration is one registered SM2 public key.
type Registration struct {
	// Endpoint names the endpoint the key belongs to: its ID or its
	// authenticated identity as the PDP sees them (imv.Endpoint.ID or
	// .Identity).
	Endpoint string
	// Fingerprint is "sm3:" and the hex SM3 digest of the key's DER
	// SubjectPublicKeyInfo (see Fingerprint).
	Fingerprint string
	// Public is the key, on sm2.P256().
	Public *ecdsa.PublicKey
}

// KeyRegistry looks up registered keys by fingerprint. *Registry is one;
// the PDP may reload it behind this interface.
type KeyRegistry interface {
	Lookup(fingerprint string) (Registration, bool)
}

// Registry is a set of registered SM2 public keys, read from a key file.
type Registry struct {
	byFP map[string]Registration
}

// Lookup implements KeyRegistry.
func (r *Registry) Lookup(fingerprint string) (Registration, bool) {
	if r == nil {
		return Registration{}, false
	}
	reg, ok := r.byFP[fingerprint]
	return reg, ok
}

// Len returns the number of registered keys.
func (r *Registry) Len() int {
	if r == nil {
		return 0
	}
	return len(r.byFP)
}

// Fingerprint returns "sm3:" and the hex SM3 digest (GB/T 32905) of a DER
// SubjectPublicKeyInfo: how PSKs of kind sm2 name the key they were
// encrypted to.
func Fingerprint(pkix []byte) string {
	d := sm3.Sum(pkix)
	return "sm3:" + hex.EncodeToString(d[:])
}

// ParsePublicKey parses a DER SubjectPublicKeyInfo that must hold an SM2
// public key (id-ecPublicKey on the SM2 curve) and returns it with its
// fingerprint.
func ParsePublicKey(pkix []byte) (*ecdsa.PublicKey, string, error) {
	k, err := smx509.ParsePKIXPublicKey(pkix)
	if err != nil {
		return nil, "", fmt.Errorf("smkeyimv: public key: %w", err)
	}
	pub, ok := k.(*ecdsa.PublicKey)
	if !ok || pub.Curve.Params() != sm2.P256().Params() {
		return nil, "", errors.New("smkeyimv: public key is not an SM2 key")
	}
	return pub, Fingerprint(pkix), nil
}

// LoadRegistry reads a key file (see ParseRegistry).
func LoadRegistry(path string) (*Registry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("smkeyimv: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("smkeyimv: %w", err)
	}
	if st.Size() > MaxKeyFileSize {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrKeyFile, path, MaxKeyFileSize)
	}
	data := make([]byte, st.Size())
	if _, err := f.ReadAt(data, 0); err != nil && st.Size() > 0 {
		return nil, fmt.Errorf("smkeyimv: %s: %w", path, err)
	}
	r, err := ParseRegistry(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// ParseRegistry parses a key file: PEM blocks of type "PUBLIC KEY" (DER
// SubjectPublicKeyInfo of an SM2 key), each with an "Endpoint: <id>"
// header, for example
//
//	-----BEGIN PUBLIC KEY-----
//	Endpoint: terminal-17
//
//	MFkwEwYHKoZIzj0CAQYIKoEcz1UBgi0DQgAE...
//	-----END PUBLIC KEY-----
//
// Text between blocks is ignored. A block of another type, a key that is
// not SM2, a missing endpoint, a key registered twice, or more than
// MaxKeys keys make the whole file invalid (ErrKeyFile): a half-read key
// file would silently refuse endpoints.
func ParseRegistry(data []byte) (*Registry, error) {
	if len(data) > MaxKeyFileSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrKeyFile, MaxKeyFileSize)
	}
	r := &Registry{byFP: map[string]Registration{}}
	rest := data
	for n := 1; ; n++ {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "PUBLIC KEY" {
			return nil, fmt.Errorf("%w: block %d is a %q, want PUBLIC KEY", ErrKeyFile, n, b.Type)
		}
		ep := strings.TrimSpace(b.Headers[EndpointHeader])
		if ep == "" || len(ep) > maxEndpointLen {
			return nil, fmt.Errorf("%w: block %d has no %s header (or one longer than %d bytes)", ErrKeyFile, n, EndpointHeader, maxEndpointLen)
		}
		pub, fp, err := ParsePublicKey(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: block %d (%s): %v", ErrKeyFile, n, ep, err)
		}
		if old, dup := r.byFP[fp]; dup {
			return nil, fmt.Errorf("%w: block %d (%s): key already registered for %s", ErrKeyFile, n, ep, old.Endpoint)
		}
		if len(r.byFP) >= MaxKeys {
			return nil, fmt.Errorf("%w: more than %d keys", ErrKeyFile, MaxKeys)
		}
		r.byFP[fp] = Registration{Endpoint: ep, Fingerprint: fp, Public: pub}
	}
	return r, nil
}
