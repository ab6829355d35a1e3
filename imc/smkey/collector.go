package smkeyimc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"

	"trustnac/imc"
	"trustnac/transport/patnc"
	"trustnac/transport/pbtnc"
)

// Subtype is the PA subtype of SM2 key-pair enrollment.
var Subtype = pbtnc.PASubtype{Vendor: patnc.VendorTrustnac, Subtype: patnc.PASubtypeTrustnacSMKey}

// Errors callers test.
var (
	// ErrConfig is wrapped by the errors of New for a bad Config.
	ErrConfig = errors.New("smkeyimc: bad config")
	// ErrKey is wrapped when the key file holds no usable SM2 private key.
	ErrKey = errors.New("smkeyimc: no SM2 private key")
)

// maxKeyFile caps the key file read.
const maxKeyFile = 64 << 10

// Config configures the collector.
type Config struct {
	// KeyFile is the PEM file of the endpoint's SM2 private key: a
	// "PRIVATE KEY" (PKCS #8) or "EC PRIVATE KEY" (SEC 1) block, as
	// GenerateKeyFile writes or gmssl / openssl make. Required.
	KeyFile string
	// Enroll, when set and true at the start of a handshake, makes the
	// collector send its public key and a PSK Request. Needs OnPSK.
	Enroll func() bool
	// OnPSK receives a granted PSK after decrypting it: the agent stores
	// it (mode 0600). The same identity and key may be granted again (a
	// no-op); a new identity is a rotation. Never log the key.
	OnPSK func(identity string, key []byte, expires time.Time)
}

// Collector sends the endpoint's SM2 public key and decrypts the PSK the
// PDP encrypted to it. It implements imc.Collector.
type Collector struct {
	cfg  Config
	priv *sm2.PrivateKey
	pkix []byte
	log  *slog.Logger
}

var _ imc.Collector = (*Collector)(nil)

// New reads the key file and returns the collector. A nil log discards.
func New(cfg Config, log *slog.Logger) (*Collector, error) {
	if cfg.KeyFile == "" {
		return nil, fmt.Errorf("%w: KeyFile is required", ErrConfig)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	priv, err := LoadKeyFile(cfg.KeyFile)
	if err != nil {
		return nil, err
	}
	pkix, err := smx509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("smkeyimc: public key: %w", err)
	}
	return &Collector{cfg: cfg, priv: priv, pkix: pkix, log: log.With("imc", "smkey")}, nil
}

// LoadKeyFile reads an SM2 private key from a PEM file (see
// Config.KeyFile).
func LoadKeyFile(path string) (*sm2.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("smkeyimc: %w", err)
	}
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrKey, path, maxKeyFile)
	}
	return ParsePrivateKeyPEM(data)
}

// ParsePrivateKeyPEM parses the first private key block of PEM data: PKCS
// #8 ("PRIVATE KEY") or SEC 1 ("EC PRIVATE KEY"), which must be an SM2
// key.
func ParsePrivateKeyPEM(data []byte) (*sm2.PrivateKey, error) {
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, fmt.Errorf("%w: no PRIVATE KEY or EC PRIVATE KEY block", ErrKey)
		}
		switch b.Type {
		case "PRIVATE KEY":
			k, err := smx509.ParsePKCS8PrivateKey(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%w: %v", ErrKey, err)
			}
			priv, ok := k.(*sm2.PrivateKey)
			if !ok {
				return nil, fmt.Errorf("%w: the PKCS #8 key is a %T", ErrKey, k)
			}
			return priv, nil
		case "EC PRIVATE KEY":
			priv, err := smx509.ParseSM2PrivateKey(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%w: %v", ErrKey, err)
			}
			return priv, nil
		}
	}
}

// GenerateKeyFile makes a new SM2 key pair and writes the private key to
// path as PKCS #8 PEM with mode 0600, refusing to overwrite a file.
func GenerateKeyFile(path string) (*sm2.PrivateKey, error) {
	priv, err := sm2.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("smkeyimc: %w", err)
	}
	der, err := smx509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("smkeyimc: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("smkeyimc: %w", err)
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("smkeyimc: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("smkeyimc: %w", err)
	}
	return priv, nil
}

// PublicKeyPKIX returns the DER SubjectPublicKeyInfo of the endpoint's key.
func (c *Collector) PublicKeyPKIX() []byte { return append([]byte(nil), c.pkix...) }

// PublicKeyPEM returns the public key as the PDP's key file registers it,
// with the Endpoint header naming endpoint.
func (c *Collector) PublicKeyPEM(endpoint string) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Headers: map[string]string{"Endpoint": endpoint}, Bytes: c.pkix})
}

// Fingerprint returns "sm3:" and the hex SM3 digest of PublicKeyPKIX, as
// the PDP names the key.
func (c *Collector) Fingerprint() string {
	d := sm3.Sum(c.pkix)
	return "sm3:" + hex.EncodeToString(d[:])
}

// Name returns "smkey".
func (c *Collector) Name() string { return "smkey" }

// Subtype returns Subtype.
func (c *Collector) Subtype() pbtnc.PASubtype { return Subtype }

// NewSession starts the collector's part of one handshake.
func (c *Collector) NewSession(ctx context.Context) (imc.Session, error) {
	return &session{c: c}, nil
}

type session struct {
	c      *Collector
	asked  bool
	gotOne bool
}

// Begin sends the public key and a PSK Request when Config.Enroll says so;
// otherwise nothing.
func (s *session) Begin(ctx context.Context) ([]patnc.Attribute, error) {
	c := s.c
	if c.cfg.Enroll == nil || c.cfg.OnPSK == nil || !c.cfg.Enroll() {
		return nil, nil
	}
	var out []patnc.Attribute
	for _, v := range []patnc.Value{&patnc.SM2PublicKey{PKIX: c.pkix}, &patnc.PSKRequest{Kind: patnc.PSKKindSM2}} {
		a, err := patnc.EncodeAttribute(v, false)
		if err != nil {
			return nil, fmt.Errorf("smkeyimc: %w", err)
		}
		out = append(out, a)
	}
	s.asked = true
	return out, nil
}

// Receive takes the PSK grant: a refusal is logged with its reason; a
// grant is decrypted and handed to Config.OnPSK. Only one grant per
// handshake, and only when asked for. A malformed message is answered with
// a PA-TNC error (RFC 5792 §4.2.8).
func (s *session) Receive(ctx context.Context, msg *patnc.Message) ([]patnc.Attribute, error) {
	c := s.c
	values, rejected := msg.DecodeAll()
	if len(rejected) > 0 {
		for _, r := range rejected {
			c.log.Warn("rejecting PA-TNC message from verifier", "attr", r.Attr.ID().String(), "err", r.Err)
		}
		return patnc.Answers(rejected)
	}
	for _, v := range values {
		g, ok := v.(*patnc.PSKGrant)
		if !ok {
			continue
		}
		if !s.asked || s.gotOne {
			c.log.Warn("PSK grant that was not asked for ignored")
			continue
		}
		s.gotOne = true
		if g.Refused {
			c.log.Warn("PDP refused the SM channel key", "reason", g.Reason)
			continue
		}
		key, err := c.Decrypt(g)
		if err != nil {
			c.log.Warn("cannot decrypt the SM channel key", "identity", g.Identity, "err", err)
			continue
		}
		c.log.Info("received SM channel key", "identity", g.Identity, "expires", g.Expires.Format(time.RFC3339))
		c.cfg.OnPSK(g.Identity, key, g.Expires)
	}
	return nil, nil
}

// Decrypt recovers the key of an SM2 PSK grant with the endpoint's private
// key (GB/T 32918.4, C1C3C2); a ciphertext for another key fails its C3
// check.
func (c *Collector) Decrypt(g *patnc.PSKGrant) ([]byte, error) {
	if g == nil || g.Refused || g.Kind != patnc.PSKKindSM2 || g.Identity == "" || len(g.Ciphertext) == 0 {
		return nil, errors.New("smkeyimc: not an SM2 PSK grant")
	}
	key, err := sm2.Decrypt(c.priv, g.Ciphertext)
	if err != nil {
		return nil, fmt.Errorf("smkeyimc: decrypt: %w", err)
	}
	if len(key) < 16 || len(key) > 64 {
		return nil, fmt.Errorf("smkeyimc: PSK of %d bytes", len(key))
	}
	return key, nil
}
