package ttls

import (
	"crypto/tls"
	"fmt"
	"slices"

	"trustnac/transport/eap"
)

// Key derivation (RFC 5281 §8, RFC 9427 §2.1).
const (
	// keyLabelTLS12 is the exporter label of RFC 5281 §8: TLS-PRF-128(master_secret,
	// "ttls keying material", client.random || server.random), the RFC 5705 exporter without
	// context.
	keyLabelTLS12 = "ttls keying material"
	// keyLabelTLS13 is the exporter label of RFC 9427 §2.1, used with the EAP Type-Code as the
	// context.
	keyLabelTLS13  = "EXPORTER_EAP_TLS_Key_Material"
	keyMaterialLen = 128 // MSK (64) || EMSK (64)
	// KeyLen is the length of MSK and of EMSK (RFC 5247 §2.1).
	KeyLen = 64

	extExtendedMasterSecret = 23 // RFC 7627 §5.1
)

// exportKeys derives MSK and EMSK from the finished handshake.
func exportKeys(cs *tls.ConnectionState) (msk, emsk []byte, err error) {
	var km []byte
	switch cs.Version {
	case tls.VersionTLS13:
		km, err = cs.ExportKeyingMaterial(keyLabelTLS13, []byte{byte(eap.TypeTTLS)}, keyMaterialLen)
	case tls.VersionTLS12:
		km, err = cs.ExportKeyingMaterial(keyLabelTLS12, nil, keyMaterialLen)
		if err != nil {
			err = fmt.Errorf("%w: %v", ErrNoExtendedMasterSecret, err)
		}
	default:
		return nil, nil, fmt.Errorf("ttls: no key derivation for TLS version %#04x", cs.Version)
	}
	if err != nil {
		return nil, nil, err
	}
	if len(km) != keyMaterialLen {
		return nil, nil, fmt.Errorf("ttls: exporter gave %d bytes, want %d", len(km), keyMaterialLen)
	}
	return km[:KeyLen:KeyLen], km[KeyLen:], nil
}

// hardenServer returns a copy of c for an EAP-TTLS server: TLS 1.2 at least, no session tickets
// (no resumption, so phase 2 always runs), and ClientHellos that would negotiate TLS 1.2
// without the Extended Master Secret refused up front.
func hardenServer(c *tls.Config) *tls.Config {
	c = c.Clone()
	harden := func(c *tls.Config) {
		c.MinVersion = max(c.MinVersion, tls.VersionTLS12)
		c.SessionTicketsDisabled = true
	}
	harden(c)
	base := c.Clone()
	user := c.GetConfigForClient
	c.GetConfigForClient = func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
		eff := base
		var nc *tls.Config
		if user != nil {
			var err error
			if nc, err = user(hi); err != nil {
				return nil, err
			}
			if nc != nil {
				nc = nc.Clone()
				harden(nc)
				eff = nc
			}
		}
		if err := requireEMS(hi, eff); err != nil {
			return nil, err
		}
		return nc, nil
	}
	return c
}

// requireEMS refuses a ClientHello that would negotiate TLS 1.2 without offering the Extended
// Master Secret extension, without which crypto/tls exports no keys.
func requireEMS(hi *tls.ClientHelloInfo, c *tls.Config) error {
	maxV := c.MaxVersion
	if maxV == 0 {
		maxV = tls.VersionTLS13
	}
	if maxV >= tls.VersionTLS13 && slices.Contains(hi.SupportedVersions, tls.VersionTLS13) {
		return nil
	}
	if !slices.Contains(hi.Extensions, extExtendedMasterSecret) {
		return fmt.Errorf("%w: the ClientHello does not offer it", ErrNoExtendedMasterSecret)
	}
	return nil
}

// hardenPeer returns a copy of c for an EAP-TTLS peer: TLS 1.2 at least, no session cache, no
// renegotiation.
func hardenPeer(c *tls.Config) *tls.Config {
	c = c.Clone()
	c.MinVersion = max(c.MinVersion, tls.VersionTLS12)
	c.ClientSessionCache = nil
	c.Renegotiation = tls.RenegotiateNever
	return c
}
