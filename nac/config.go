package nac

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// maxConfigSize bounds a configuration file.
const maxConfigSize = 1 << 20

// Duration is a time.Duration written in configuration files as "30s",
// "2m", "1h30m".
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	if v < 0 {
		return fmt.Errorf("line %d: negative duration %q", n.Line, s)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// D is the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// LogConfig configures logging of a role.
type LogConfig struct {
	// Level is debug, info, warn or error (default info).
	Level string `yaml:"level"`
	// Format is text or json (default text).
	Format string `yaml:"format"`
	// Audit is a file the decisions are appended to as JSON lines, besides
	// the log; "" logs them only to the log.
	Audit string `yaml:"audit"`
}

func (c *LogConfig) validate() error {
	switch c.Level {
	case "", "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log.level %q: want debug, info, warn or error", c.Level)
	}
	switch c.Format {
	case "", "text", "json":
	default:
		return fmt.Errorf("log.format %q: want text or json", c.Format)
	}
	return nil
}

// PDPConfig is the configuration of `nac pdp`.
type PDPConfig struct {
	// StateDir holds the store (pdp.db) and the generated certificate.
	StateDir string `yaml:"state_dir"`
	// Policy is the policy file.
	Policy string `yaml:"policy"`
	// PolicyCheckInterval is how often the policy file is checked for
	// changes (default 2s). SIGHUP reloads at once.
	PolicyCheckInterval Duration        `yaml:"policy_check_interval"`
	PTTLS               PTTLSListenConf `yaml:"pttls"`
	PBTNC               PBTNCConfig     `yaml:"pbtnc"`
	TPM                 TPMVerifierConf `yaml:"tpm"`
	API                 APIConfig       `yaml:"api"`
	RADIUS              *RADIUSConfig   `yaml:"radius"`
	// SM is the SM4-GCM/SM3 DTLS listener (pdp_sm.go); on by default.
	SM  *SMListenConf `yaml:"sm"`
	Log LogConfig     `yaml:"log"`
}

// RADIUSConfig configures the PDP's RADIUS server; without the section the
// PDP serves no RADIUS.
type RADIUSConfig struct {
	// AuthListen and AcctListen are UDP addresses (defaults ":1812" and
	// ":1813"); "off" disables accounting.
	AuthListen string `yaml:"auth_listen"`
	AcctListen string `yaml:"acct_listen"`
	// Clients are the NASes (switches, PEPs) allowed to ask.
	Clients []RADIUSClientConf `yaml:"clients"`
	// UsersFile holds the accounts for PAP and EAP-MSCHAPv2 (nac passwd);
	// without it passwords are refused.
	UsersFile string `yaml:"users_file"`
	// SessionTimeout is sent for roles without their own session_timeout
	// (default 1h; "0s" sends none).
	SessionTimeout *Duration `yaml:"session_timeout"`
	// MaxInFlight bounds requests handled at once (default 4096).
	MaxInFlight int     `yaml:"max_in_flight"`
	EAP         EAPConf `yaml:"eap"`
	CoA         CoAConf `yaml:"coa"`
}

// RADIUSClientConf is one NAS.
type RADIUSClientConf struct {
	Name string `yaml:"name"`
	// Network is the NAS's address or a CIDR network of NASes.
	Network string `yaml:"network"`
	// Secret, or better SecretFile (first line), is the shared secret.
	Secret     string `yaml:"secret"`
	SecretFile string `yaml:"secret_file"`
	// CoAPort is where the NAS listens for CoA/Disconnect (default 3799).
	CoAPort int `yaml:"coa_port"`
}

// readSecret returns an inline secret or the first line of a secret file.
func readSecret(inline, file string) ([]byte, error) {
	if file == "" {
		return []byte(inline), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("nac: %w", err)
	}
	s, _, _ := strings.Cut(string(b), "\n")
	s = strings.TrimRight(s, "\r")
	if s == "" {
		return nil, fmt.Errorf("nac: %s: empty secret", file)
	}
	return []byte(s), nil
}

// Key exchanges of TLS (EAPConf.KeyExchange, AgentPDPConfig.KeyExchange).
const (
	KeyExchangeHybrid  = "hybrid"
	KeyExchangeClassic = "classic"
)

// EAPConf configures EAP-TTLS.
type EAPConf struct {
	// Cert and Key are the TTLS server certificate; default the PT-TLS one.
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
	// MaxFragment caps the TLS payload of one EAP-TTLS packet. Below it the
	// NAS's Framed-MTU decides (1400 from most switches and `nac pep`), and
	// without one the payload is 1010 bytes (a 1020-byte EAP packet, the
	// smallest EAP MTU). Above 3790 it is cut to what an Access-Challenge
	// carries.
	MaxFragment int `yaml:"max_fragment"`
	// Timeout expires a conversation whose next request does not come
	// (default 30s); MaxSessions bounds conversations in progress (4096).
	Timeout     Duration `yaml:"timeout"`
	MaxSessions int      `yaml:"max_sessions"`
	// TLSMin is "1.2" (default) or "1.3".
	TLSMin string `yaml:"tls_min"`
	// KeyExchange is "hybrid" (default): the TLS 1.3 tunnel prefers
	// X25519MLKEM768 when the peer offers it, so that what travels inside
	// (passwords, posture, the MSK) stays confidential against a later
	// quantum computer. "classic" uses ECDHE alone (X25519, P-256): its
	// smaller first flights save one EAP round trip and about a third of
	// the handshake's CPU on both sides.
	KeyExchange string `yaml:"key_exchange"`
}

// CoAConf bounds Dynamic Authorization requests to NASes.
type CoAConf struct {
	Timeout Duration `yaml:"timeout"` // per try (default 2s)
	Retries int      `yaml:"retries"` // default 2
}

// TPMVerifierConf configures the TPM attestation verifier of the PDP.
type TPMVerifierConf struct {
	// EKRoots are PEM files of the CAs that issue TPM endorsement key
	// certificates (TPM vendors' roots; swtpm_localca's in the testbed).
	EKRoots []string `yaml:"ek_roots"`
	// IMAAllowlist is the file of allowed IMA file digests ("" : no check).
	IMAAllowlist string `yaml:"ima_allowlist"`
	// PCRs are quoted (default 0-7 and 10).
	PCRs []int `yaml:"pcrs"`
	// Banks are asked for: sha1, sha256, sha384, sm3_256 (default sha256, sha1).
	Banks []string `yaml:"banks"`
}

// PTTLSListenConf configures the PDP's PT-TLS listener (RFC 6876).
type PTTLSListenConf struct {
	// Listen is the TCP address (default ":271").
	Listen string `yaml:"listen"`
	// Cert and Key are the TLS certificate and key files. When both are
	// absent on disk, a self-signed certificate for Names is created and
	// its fingerprint logged (default files in StateDir).
	Cert  string   `yaml:"cert"`
	Key   string   `yaml:"key"`
	Names []string `yaml:"names"`
	// UsersFile lists the SASL PLAIN users; without it no SASL is offered.
	UsersFile   string `yaml:"users_file"`
	RequireSASL bool   `yaml:"require_sasl"`
	// Bounds of each connection.
	MaxMessageSize   uint32   `yaml:"max_message_size"`
	HandshakeTimeout Duration `yaml:"handshake_timeout"`
	IdleTimeout      Duration `yaml:"idle_timeout"`
	MaxConns         int      `yaml:"max_conns"`
}

// PBTNCConfig bounds PB-TNC sessions.
type PBTNCConfig struct {
	MaxBatchSize uint32 `yaml:"max_batch_size"`
	MaxRounds    int    `yaml:"max_rounds"`
}

// APIConfig configures the read-only admin API.
type APIConfig struct {
	// Listen is a TCP address or "unix:/path"; "off" disables the API
	// (default 127.0.0.1:8271).
	Listen string `yaml:"listen"`
}

// AgentConfig is the configuration of `nac agent`.
type AgentConfig struct {
	PDP AgentPDPConfig `yaml:"pdp"`
	// Identity and the password (PasswordFile preferred) authenticate the
	// endpoint with SASL PLAIN when the PDP asks.
	Identity     string `yaml:"identity"`
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
	// Language is the Accept-Language sent in PB-TNC (default "en").
	Language string `yaml:"language"`
	// Timeout bounds the whole assessment (default 30s).
	Timeout    Duration         `yaml:"timeout"`
	Collectors CollectorsConfig `yaml:"collectors"`
	// Dot1X makes the agent an 802.1X supplicant on an interface
	// (agent_link.go); without it the agent assesses once over PT-TLS.
	Dot1X *AgentDot1XConfig `yaml:"dot1x"`
	// SM is the SM channel: enrollment and SM-DTLS (agent_sm.go).
	SM  *AgentSMConfig `yaml:"sm"`
	Log LogConfig      `yaml:"log"`
}

// AgentPDPConfig says where the PDP is and how the agent knows it is the
// right one: a CA file, a certificate pin, or both.
type AgentPDPConfig struct {
	// Address is host:port of the PDP's PT-TLS listener (default
	// 127.0.0.1:271).
	Address string `yaml:"address"`
	// ServerName is the name the PDP's certificate must carry (default the
	// host of Address).
	ServerName string `yaml:"server_name"`
	// CA is a PEM file of certificates trusted to issue the PDP's.
	CA string `yaml:"ca"`
	// Pin is the PDP certificate's fingerprint, "sha256:<hex>", as `nac pdp`
	// prints it.
	Pin string `yaml:"pin"`
	// KeyExchange is what the agent's TLS (PT-TLS and EAP-TTLS) offers
	// first: "hybrid" (default, X25519MLKEM768) or "classic" (P-256 alone:
	// a ClientHello a third the size and no ML-KEM key to make). Set it as
	// the PDP's radius.eap.key_exchange is set: a classic agent gets a
	// classic tunnel from a hybrid PDP too.
	KeyExchange string `yaml:"key_exchange"`
}

// CollectorsConfig enables and configures the agent's collectors.
type CollectorsConfig struct {
	OS  *OSCollectorConfig  `yaml:"os"`
	TPM *TPMCollectorConfig `yaml:"tpm"`
}

// TPMCollectorConfig configures the TPM collector; without it the agent
// reports no TPM evidence.
type TPMCollectorConfig struct {
	// Device is the TPM: a device path (default /dev/tpmrm0) or
	// "unix:/path" for swtpm's socket.
	Device string `yaml:"device"`
	// StateDir keeps the attestation key blobs (default
	// /var/lib/trustnac/agent).
	StateDir string `yaml:"state_dir"`
	// AKAlg is ecc-p256 (default) or sm2; EKAlg is rsa (default) or ecc.
	AKAlg string `yaml:"ak_alg"`
	EKAlg string `yaml:"ek_alg"`
	// EventLog and IMALog are the measurement logs ("-" for none; empty
	// for the kernel's securityfs files).
	EventLog string `yaml:"event_log"`
	IMALog   string `yaml:"ima_log"`
}

// OSCollectorConfig configures the operating system collector.
type OSCollectorConfig struct {
	// Disabled turns the collector off.
	Disabled bool `yaml:"disabled"`
	// Root is prefixed to every path the collector reads ("" is /); tests
	// and the demo point it at a prepared tree.
	Root string `yaml:"root"`
}

// decodeStrict decodes one YAML document into v; unknown fields are errors.
func decodeStrict(name string, r io.Reader, v any) error {
	data, err := io.ReadAll(io.LimitReader(r, maxConfigSize+1))
	if err != nil {
		return fmt.Errorf("nac: %s: %w", name, err)
	}
	if len(data) > maxConfigSize {
		return fmt.Errorf("nac: %s: larger than %d bytes", name, maxConfigSize)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("nac: %s: empty configuration", name)
		}
		return fmt.Errorf("nac: %s: %w", name, err)
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return fmt.Errorf("nac: %s: more than one YAML document", name)
	}
	return nil
}

// loadFile decodes the configuration file at path into v.
func loadFile(path string, v any) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("nac: %w", err)
	}
	defer f.Close()
	return decodeStrict(path, f, v)
}

// resolve makes p relative to the directory of the configuration file.
func resolve(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// LoadPDPConfig reads, defaults and validates a PDP configuration. Relative
// paths in it are relative to the file's directory.
func LoadPDPConfig(path string) (*PDPConfig, error) {
	c := new(PDPConfig)
	if err := loadFile(path, c); err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	c.StateDir = resolve(dir, c.StateDir)
	c.Policy = resolve(dir, c.Policy)
	c.PTTLS.Cert = resolve(dir, c.PTTLS.Cert)
	c.PTTLS.Key = resolve(dir, c.PTTLS.Key)
	c.PTTLS.UsersFile = resolve(dir, c.PTTLS.UsersFile)
	c.Log.Audit = resolve(dir, c.Log.Audit)
	c.TPM.IMAAllowlist = resolve(dir, c.TPM.IMAAllowlist)
	for i, r := range c.TPM.EKRoots {
		c.TPM.EKRoots[i] = resolve(dir, r)
	}
	if r := c.RADIUS; r != nil {
		r.UsersFile = resolve(dir, r.UsersFile)
		r.EAP.Cert = resolve(dir, r.EAP.Cert)
		r.EAP.Key = resolve(dir, r.EAP.Key)
		for i := range r.Clients {
			r.Clients[i].SecretFile = resolve(dir, r.Clients[i].SecretFile)
		}
	}
	if c.SM != nil {
		c.SM.resolve(dir)
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("nac: %s: %w", path, err)
	}
	return c, nil
}

// SetDefaults fills what the file left out.
func (c *PDPConfig) SetDefaults() {
	if c.StateDir == "" {
		c.StateDir = "/var/lib/trustnac/pdp"
	}
	if c.PolicyCheckInterval == 0 {
		c.PolicyCheckInterval = Duration(2 * time.Second)
	}
	if c.PTTLS.Listen == "" {
		c.PTTLS.Listen = ":271"
	}
	if c.PTTLS.Cert == "" && c.PTTLS.Key == "" {
		c.PTTLS.Cert = filepath.Join(c.StateDir, "pdp-cert.pem")
		c.PTTLS.Key = filepath.Join(c.StateDir, "pdp-key.pem")
	}
	if len(c.PTTLS.Names) == 0 {
		c.PTTLS.Names = []string{"localhost", "127.0.0.1", "::1"}
		if h, err := os.Hostname(); err == nil {
			c.PTTLS.Names = append(c.PTTLS.Names, h)
		}
	}
	if c.API.Listen == "" {
		c.API.Listen = "127.0.0.1:8271"
	}
	if r := c.RADIUS; r != nil {
		if r.AuthListen == "" {
			r.AuthListen = ":1812"
		}
		if r.AcctListen == "" {
			r.AcctListen = ":1813"
		}
		if r.SessionTimeout == nil {
			d := Duration(time.Hour)
			r.SessionTimeout = &d
		}
		if r.EAP.Cert == "" && r.EAP.Key == "" {
			r.EAP.Cert, r.EAP.Key = c.PTTLS.Cert, c.PTTLS.Key
		}
	}
	if c.SM == nil {
		c.SM = new(SMListenConf)
	}
	c.SM.setDefaults(c)
}

// Validate checks the configuration as a whole.
func (c *PDPConfig) Validate() error {
	var errs []error
	if c.Policy == "" {
		errs = append(errs, errors.New("policy: a policy file is required"))
	}
	if _, _, err := net.SplitHostPort(c.PTTLS.Listen); err != nil {
		errs = append(errs, fmt.Errorf("pttls.listen: %w", err))
	}
	if (c.PTTLS.Cert == "") != (c.PTTLS.Key == "") {
		errs = append(errs, errors.New("pttls: cert and key go together"))
	}
	if c.PTTLS.RequireSASL && c.PTTLS.UsersFile == "" {
		errs = append(errs, errors.New("pttls.require_sasl needs pttls.users_file"))
	}
	if c.PTTLS.MaxConns < 0 {
		errs = append(errs, errors.New("pttls.max_conns must not be negative"))
	}
	if c.PBTNC.MaxRounds < 0 {
		errs = append(errs, errors.New("pbtnc.max_rounds must not be negative"))
	}
	for _, p := range c.TPM.PCRs {
		if p < 0 || p > 23 {
			errs = append(errs, fmt.Errorf("tpm.pcrs: %d is not a PCR (0-23)", p))
		}
	}
	for _, b := range c.TPM.Banks {
		if _, ok := bankAlgs[b]; !ok {
			errs = append(errs, fmt.Errorf("tpm.banks: %q: want sha1, sha256, sha384 or sm3_256", b))
		}
	}
	if c.API.Listen != "off" && !strings.HasPrefix(c.API.Listen, "unix:") {
		if _, _, err := net.SplitHostPort(c.API.Listen); err != nil {
			errs = append(errs, fmt.Errorf("api.listen: %w", err))
		}
	}
	if c.RADIUS != nil {
		errs = append(errs, c.RADIUS.validate()...)
	}
	if c.SM != nil {
		errs = append(errs, c.SM.validate()...)
	}
	if err := c.Log.validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (r *RADIUSConfig) validate() []error {
	var errs []error
	if _, _, err := net.SplitHostPort(r.AuthListen); err != nil {
		errs = append(errs, fmt.Errorf("radius.auth_listen: %w", err))
	}
	if r.AcctListen != "off" {
		if _, _, err := net.SplitHostPort(r.AcctListen); err != nil {
			errs = append(errs, fmt.Errorf("radius.acct_listen: %w", err))
		}
	}
	if len(r.Clients) == 0 {
		errs = append(errs, errors.New("radius.clients: at least one NAS is required"))
	}
	names := map[string]bool{}
	for i, cl := range r.Clients {
		what := fmt.Sprintf("radius.clients[%d]", i)
		if cl.Name == "" {
			errs = append(errs, fmt.Errorf("%s: name is required", what))
		} else if names[cl.Name] {
			errs = append(errs, fmt.Errorf("%s: duplicate name %q", what, cl.Name))
		}
		names[cl.Name] = true
		if _, err := parseNetwork(cl.Network); err != nil {
			errs = append(errs, fmt.Errorf("%s: network: %w", what, err))
		}
		if (cl.Secret == "") == (cl.SecretFile == "") {
			errs = append(errs, fmt.Errorf("%s: give exactly one of secret and secret_file", what))
		}
		if cl.CoAPort < 0 || cl.CoAPort > 65535 {
			errs = append(errs, fmt.Errorf("%s: coa_port %d", what, cl.CoAPort))
		}
	}
	if (r.EAP.Cert == "") != (r.EAP.Key == "") {
		errs = append(errs, errors.New("radius.eap: cert and key go together"))
	}
	switch r.EAP.TLSMin {
	case "", "1.2", "1.3":
	default:
		errs = append(errs, fmt.Errorf("radius.eap.tls_min %q: want 1.2 or 1.3", r.EAP.TLSMin))
	}
	switch r.EAP.KeyExchange {
	case "", KeyExchangeHybrid, KeyExchangeClassic:
	default:
		errs = append(errs, fmt.Errorf("radius.eap.key_exchange %q: want %s or %s", r.EAP.KeyExchange, KeyExchangeHybrid, KeyExchangeClassic))
	}
	if r.EAP.MaxFragment != 0 && (r.EAP.MaxFragment < 256 || r.EAP.MaxFragment > 4000) {
		errs = append(errs, fmt.Errorf("radius.eap.max_fragment %d: want 256 to 4000", r.EAP.MaxFragment))
	}
	if r.MaxInFlight < 0 || r.EAP.MaxSessions < 0 || r.CoA.Retries < 0 {
		errs = append(errs, errors.New("radius: limits must not be negative"))
	}
	return errs
}

// parseNetwork reads an address or a CIDR network.
func parseNetwork(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// LoadAgentConfig reads, defaults and validates an agent configuration.
func LoadAgentConfig(path string) (*AgentConfig, error) {
	c := new(AgentConfig)
	if err := loadFile(path, c); err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	c.PDP.CA = resolve(dir, c.PDP.CA)
	c.PasswordFile = resolve(dir, c.PasswordFile)
	if c.Collectors.OS != nil {
		c.Collectors.OS.Root = resolve(dir, c.Collectors.OS.Root)
	}
	if t := c.Collectors.TPM; t != nil {
		t.StateDir = resolve(dir, t.StateDir)
		if t.EventLog != "-" {
			t.EventLog = resolve(dir, t.EventLog)
		}
		if t.IMALog != "-" {
			t.IMALog = resolve(dir, t.IMALog)
		}
	}
	if c.Dot1X != nil {
		c.Dot1X.resolve(dir)
	}
	if c.SM != nil {
		c.SM.resolve(dir)
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("nac: %s: %w", path, err)
	}
	return c, nil
}

// SetDefaults fills what the file left out.
func (c *AgentConfig) SetDefaults() {
	if c.PDP.Address == "" {
		c.PDP.Address = "127.0.0.1:271"
	}
	if c.PDP.ServerName == "" {
		if host, _, err := net.SplitHostPort(c.PDP.Address); err == nil {
			c.PDP.ServerName = host
		}
	}
	if c.Language == "" {
		c.Language = "en"
	}
	if c.Timeout == 0 {
		c.Timeout = Duration(30 * time.Second)
	}
	if c.Collectors.OS == nil {
		c.Collectors.OS = &OSCollectorConfig{}
	}
	if t := c.Collectors.TPM; t != nil {
		if t.Device == "" {
			t.Device = "/dev/tpmrm0"
		}
		if t.StateDir == "" {
			t.StateDir = "/var/lib/trustnac/agent"
		}
		if t.AKAlg == "" {
			t.AKAlg = "ecc-p256"
		}
		if t.EKAlg == "" {
			t.EKAlg = "rsa"
		}
	}
	if c.Dot1X != nil {
		c.Dot1X.setDefaults()
	}
	if c.SM != nil {
		c.SM.setDefaults(c)
	}
}

// Validate checks the configuration as a whole.
func (c *AgentConfig) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.PDP.Address); err != nil {
		errs = append(errs, fmt.Errorf("pdp.address: %w", err))
	}
	if c.PDP.CA == "" && c.PDP.Pin == "" {
		errs = append(errs, errors.New("pdp: set ca or pin, so the agent knows it talks to the real PDP"))
	}
	if c.PDP.Pin != "" && !validPin(c.PDP.Pin) {
		errs = append(errs, fmt.Errorf("pdp.pin %q: want sha256: and 64 hex digits", c.PDP.Pin))
	}
	switch c.PDP.KeyExchange {
	case "", KeyExchangeHybrid, KeyExchangeClassic:
	default:
		errs = append(errs, fmt.Errorf("pdp.key_exchange %q: want %s or %s", c.PDP.KeyExchange, KeyExchangeHybrid, KeyExchangeClassic))
	}
	if c.Password != "" && c.PasswordFile != "" {
		errs = append(errs, errors.New("password and password_file: set one"))
	}
	if t := c.Collectors.TPM; t != nil {
		if t.AKAlg != "ecc-p256" && t.AKAlg != "sm2" {
			errs = append(errs, fmt.Errorf("collectors.tpm.ak_alg %q: want ecc-p256 or sm2", t.AKAlg))
		}
		if t.EKAlg != "rsa" && t.EKAlg != "ecc" {
			errs = append(errs, fmt.Errorf("collectors.tpm.ek_alg %q: want rsa or ecc", t.EKAlg))
		}
	}
	if (c.Password != "" || c.PasswordFile != "") && c.Identity == "" {
		errs = append(errs, errors.New("a password needs an identity"))
	}
	if c.Dot1X != nil {
		errs = append(errs, c.Dot1X.validate()...)
	}
	if c.SM != nil {
		errs = append(errs, c.SM.validate(c)...)
	}
	if err := c.Log.validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// bankAlgs are the PCR banks by name, as TPM_ALG_IDs.
var bankAlgs = map[string]uint16{"sha1": 0x0004, "sha256": 0x000B, "sha384": 0x000C, "sm3_256": 0x0012}

func validPin(s string) bool {
	h, ok := strings.CutPrefix(s, "sha256:")
	if !ok || len(h) != 64 {
		return false
	}
	for _, r := range h {
		if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
			return false
		}
	}
	return true
}
