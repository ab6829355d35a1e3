package nac

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"trustnac/imv"
	smkeyimv "trustnac/imv/smkey"
	"trustnac/pdp"
	"trustnac/policies"
	"trustnac/transport/pttls"
	"trustnac/transport/smdtls"
)

// Defaults of the PDP's sm section.
const (
	// DefaultSMPort is the UDP port of the SM channel, the PT-TLS port
	// number (RFC 6876 §6.2 assigns 271/tcp; trustnac uses 271/udp beside
	// it).
	DefaultSMPort = 271
	// DefaultPSKLifetime is how long an issued PSK is valid.
	DefaultPSKLifetime = 720 * time.Hour
	// minPSKLifetime and maxPSKLifetime bound sm.psk_lifetime.
	minPSKLifetime = time.Minute
	maxPSKLifetime = 5 * 365 * 24 * time.Hour
)

// SMListenConf configures the PDP's SM channel (the `sm` section): PT-TLS
// framing over SM4-GCM/SM3 DTLS 1.2 (transport/smdtls) with per-endpoint
// PSKs issued at enrollment. It is on by default.
type SMListenConf struct {
	// Listen is the UDP address. Default: the host of pttls.listen with
	// port 271 (port 0 when pttls.listen has port 0, as tests use); "off"
	// disables the SM channel (no listener, no PSKs issued).
	Listen string `yaml:"listen"`
	// MTU is the largest datagram sent (default smdtls.DefaultMTU, 1200).
	MTU int `yaml:"mtu"`
	// HandshakeTimeout bounds one DTLS handshake (default 10s).
	HandshakeTimeout Duration `yaml:"handshake_timeout"`
	// PSKLifetime is how long an issued PSK is valid (default 720h); an
	// endpoint re-enrolls over PT-TLS when its PSK is past half of it.
	PSKLifetime Duration `yaml:"psk_lifetime"`
	// SM2Keys is a file of registered SM2 public keys (PEM, each with its
	// endpoint identity) of endpoints without a TPM; "" registers none.
	SM2Keys string `yaml:"sm2_keys"`
}

// Off reports whether the SM channel is disabled.
func (c *SMListenConf) Off() bool { return c == nil || c.Listen == "off" }

func (c *SMListenConf) resolve(dir string) {
	c.SM2Keys = resolve(dir, c.SM2Keys)
}

func (c *SMListenConf) setDefaults(p *PDPConfig) {
	if c.Listen == "" {
		host, port := "", strconv.Itoa(DefaultSMPort)
		if h, pt, err := net.SplitHostPort(p.PTTLS.Listen); err == nil {
			host = h
			if pt == "0" {
				port = "0"
			}
		}
		c.Listen = net.JoinHostPort(host, port)
	}
	if c.MTU == 0 {
		c.MTU = smdtls.DefaultMTU
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = Duration(smdtls.DefaultHandshakeTimeout)
	}
	if c.PSKLifetime == 0 {
		c.PSKLifetime = Duration(DefaultPSKLifetime)
	}
}

func (c *SMListenConf) validate() []error {
	var errs []error
	if c.Listen != "off" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			errs = append(errs, fmt.Errorf("sm.listen: %w", err))
		}
	}
	if c.MTU != 0 && (c.MTU < smdtls.MinMTU || c.MTU > smdtls.MaxMTU) {
		errs = append(errs, fmt.Errorf("sm.mtu %d: want %d to %d", c.MTU, smdtls.MinMTU, smdtls.MaxMTU))
	}
	if c.HandshakeTimeout.D() > time.Minute {
		errs = append(errs, errors.New("sm.handshake_timeout: at most 1m"))
	}
	if l := c.PSKLifetime.D(); l != 0 && (l < minPSKLifetime || l > maxPSKLifetime) {
		errs = append(errs, fmt.Errorf("sm.psk_lifetime %v: want %v to %v", l, minPSKLifetime, maxPSKLifetime))
	}
	return errs
}

// SMAddr is the address the SM-DTLS listener is bound to, nil when the SM
// channel is off.
func (p *PDP) SMAddr() net.Addr {
	if p.smLn == nil {
		return nil
	}
	return p.smLn.Addr()
}

// PSKs is the PDP's store of SM-channel PSKs, nil when the SM channel is
// off.
func (p *PDP) PSKs() *pdp.PSKStore { return p.psks }

// smKeyVerifier is the verifier of SM2 key-pair enrollment: PSKs for
// endpoints without a TPM, whose keys sm.sm2_keys registers, when a group
// of theirs sets allow_sm2_key.
func (p *PDP) smKeyVerifier() (*smkeyimv.Verifier, error) {
	var keys smkeyimv.KeyRegistry
	if f := p.cfg.SM.SM2Keys; f != "" {
		r, err := smkeyimv.LoadRegistry(f)
		if err != nil {
			return nil, fmt.Errorf("nac: sm.sm2_keys: %w", err)
		}
		keys = r
		p.log.Info("registered SM2 keys loaded", "file", f, "keys", r.Len())
	}
	return smkeyimv.New(smkeyimv.Config{
		Keys:   keys,
		Allow:  p.allowsSM2Key,
		Issuer: pdp.PSKIssuer{Store: p.psks, Kind: pdp.PSKKindSM2, Lifetime: p.cfg.SM.PSKLifetime.D()},
	}, p.log), nil
}

// allowsSM2Key is the policy in force on SM2 key-pair endpoints: allowed
// when a group of ep sets allow_sm2_key.
func (p *PDP) allowsSM2Key(ep imv.Endpoint) bool {
	pol := p.policy.Policy()
	if pol == nil {
		return false
	}
	return pol.AllowsSM2Key(pol.GroupsOf(policies.Endpoint{ID: ep.ID, MAC: ep.MAC, Identity: ep.Identity, Channel: ep.Channel}))
}

// now is the PDP's clock for PSKs.
func (p *PDP) now() time.Time {
	if p.clock != nil {
		return p.clock()
	}
	return time.Now()
}

// endpointOfPSK names the endpoint a valid PSK identity was issued to
// (pdp.TNCSConfig.EndpointOfPSK). The PSK of an SM2 key-pair endpoint
// counts only while the policy in force still allows such endpoints.
func (p *PDP) endpointOfPSK(identity string) (string, error) {
	if p.psks == nil {
		return "", errors.New("the SM channel is off")
	}
	k, err := p.psks.Lookup(identity)
	if err != nil {
		return "", err
	}
	switch {
	case k.Revoked:
		return "", errors.New("revoked")
	case !p.now().Before(k.Expires):
		return "", errors.New("expired")
	}
	if k.Kind == pdp.PSKKindSM2 {
		ep := imv.Endpoint{ID: k.Endpoint, Channel: policies.ChannelSMDTLS}
		if name, ok := strings.CutPrefix(k.Endpoint, "id:"); ok {
			ep.Identity = name
		}
		if !p.allowsSM2Key(ep) {
			return "", errors.New("the policy does not allow SM2 key-pair endpoints for " + k.Endpoint)
		}
	}
	return k.Endpoint, nil
}

// startSM starts the SM-DTLS listener: PT-TLS framing over SM4-GCM/SM3
// DTLS 1.2 whose clients authenticate with the PSKs in the store, served
// by the same TNCS as PT-TLS. The PT-TLS limits apply to its sessions; it
// offers no SASL (the PSK names the endpoint).
func (p *PDP) startSM() error {
	c := p.cfg.SM
	if c.Off() {
		return nil
	}
	addr, err := net.ResolveUDPAddr("udp", c.Listen)
	if err != nil {
		return fmt.Errorf("nac: sm listen: %w", err)
	}
	log := p.log.With("listener", "sm-dtls")
	ln, err := smdtls.Listen("udp", addr, &smdtls.Config{
		PSKStore:         p.psks,
		MTU:              c.MTU,
		HandshakeTimeout: c.HandshakeTimeout.D(),
		MaxConns:         p.cfg.PTTLS.MaxConns,
		Logger:           log,
	})
	if err != nil {
		return fmt.Errorf("nac: sm listen: %w", err)
	}
	p.smLn = ln
	pt := p.cfg.PTTLS
	p.smServer = &pttls.Server{
		Config: pttls.ServerConfig{
			MaxMessageSize:   pt.MaxMessageSize,
			HandshakeTimeout: pt.HandshakeTimeout.D(),
			IdleTimeout:      pt.IdleTimeout.D(),
		},
		Handler:  p.tncs,
		Logger:   log,
		MaxConns: pt.MaxConns,
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := p.smServer.Serve(ln); err != nil && !errors.Is(err, pttls.ErrServerClosed) {
			p.log.Error("sm-dtls server", "err", err)
		}
	}()
	p.onStop(func(ctx context.Context) error {
		err := p.smServer.Shutdown(ctx)
		<-done
		return err
	})
	return nil
}

// statsWithSM are the counters of the RADIUS servers and, under "sm-dtls",
// of the SM-DTLS listener (ClientHellos answered statelessly, handshakes,
// failures, associations) for the admin API's /v1/stats.
func (p *PDP) statsWithSM() map[string]map[string]uint64 {
	out := p.serverStats()
	if p.smLn != nil {
		st := p.smLn.Stats()
		out["sm-dtls"] = map[string]uint64{
			"hello_verifies": st.HelloVerifies,
			"handshakes":     st.Handshakes,
			"failed":         st.Failed,
			"accepted":       st.Accepted,
			"dropped":        st.Dropped,
			"active":         uint64(st.Active),
		}
	}
	return out
}
