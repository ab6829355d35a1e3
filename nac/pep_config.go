package nac

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"time"
)

// PEPConfig is the configuration of `nac pep` (policies/examples/pep.yaml documents it).
type PEPConfig struct {
	// Bridge is the Linux bridge whose ports are managed.
	Bridge string `yaml:"bridge"`
	// Ports lists the managed ports; empty means every port of the bridge, also ports added
	// later, except Exclude (the uplinks).
	Ports   []string `yaml:"ports"`
	Exclude []string `yaml:"exclude"`
	// NASIdentifier and NASIP identify this PEP in RADIUS (NAS-Identifier, NAS-IP-Address).
	NASIdentifier string `yaml:"nas_identifier"`
	NASIP         string `yaml:"nas_ip"`
	// StateDir holds the session state file.
	StateDir string        `yaml:"state_dir"`
	RADIUS   PEPRADIUSConf `yaml:"radius"`
	DAS      PEPDASConf    `yaml:"das"`
	MAB      PEPMABConf    `yaml:"mab"`
	Dot1X    PEPDot1XConf  `yaml:"dot1x"`
	// Restricted lists what the assess, isolate and remediate roles reach besides DHCP and DNS
	// (PDP, remediation servers): addresses or CIDR networks.
	Restricted []string `yaml:"restricted"`
	// VLANs turns VLAN assignment on (vlan_filtering on the bridge, PVID per port).
	VLANs bool `yaml:"vlans"`
	// Table is the nftables table (family bridge); default trustnac.
	Table string `yaml:"table"`
	// CleanupOnExit removes the enforcement when the PEP stops (default: kept, fail closed).
	CleanupOnExit bool      `yaml:"cleanup_on_exit"`
	Log           LogConfig `yaml:"log"`
}

// PEPRADIUSConf is the PDP as the PEP's RADIUS server.
type PEPRADIUSConf struct {
	// Auth and Acct are host:port; Acct "off" sends no accounting.
	Auth string `yaml:"auth"`
	Acct string `yaml:"acct"`
	// Secret, or better SecretFile (first line), is the shared secret.
	Secret     string `yaml:"secret"`
	SecretFile string `yaml:"secret_file"`
	// Timeout is the first retransmission time (default 2s), Retries the retransmissions
	// (default 3).
	Timeout *Duration `yaml:"timeout"`
	Retries *int      `yaml:"retries"`
	// InterimInterval is the Interim-Update period (default 10m).
	InterimInterval Duration `yaml:"interim_interval"`
}

// PEPDASConf is the Dynamic Authorization server (RFC 5176).
type PEPDASConf struct {
	// Listen is the UDP address (default ":3799"); "off" for none.
	Listen  string             `yaml:"listen"`
	Clients []RADIUSClientConf `yaml:"clients"`
}

// PEPMABConf configures MAC authentication bypass.
type PEPMABConf struct {
	Enabled bool `yaml:"enabled"`
	// Delay is how long an unknown MAC may start 802.1X before MAB (default 3s).
	Delay Duration `yaml:"delay"`
	// MaxPerPort caps the MACs waiting for MAB on one port (default 64).
	MaxPerPort int `yaml:"max_per_port"`
}

// PEPDot1XConf configures the 802.1X authenticators (IEEE 802.1X-2010 §8.2 timers).
type PEPDot1XConf struct {
	TxPeriod    Duration `yaml:"tx_period"`
	QuietPeriod Duration `yaml:"quiet_period"`
	MaxReq      int      `yaml:"max_req"`
	// Reauth re-authenticates at Session-Timeout (default true).
	Reauth *bool `yaml:"reauth"`
}

// LoadPEPConfig reads, defaults and validates a PEP configuration. Relative paths are relative
// to the file's directory.
func LoadPEPConfig(path string) (*PEPConfig, error) {
	c := new(PEPConfig)
	if err := loadFile(path, c); err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	c.StateDir = resolve(dir, c.StateDir)
	c.RADIUS.SecretFile = resolve(dir, c.RADIUS.SecretFile)
	for i := range c.DAS.Clients {
		c.DAS.Clients[i].SecretFile = resolve(dir, c.DAS.Clients[i].SecretFile)
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("nac: %s: %w", path, err)
	}
	return c, nil
}

// SetDefaults fills what the file left out.
func (c *PEPConfig) SetDefaults() {
	if c.StateDir == "" {
		c.StateDir = "/var/lib/trustnac/pep"
	}
	if c.RADIUS.Timeout == nil {
		d := Duration(2 * time.Second)
		c.RADIUS.Timeout = &d
	}
	if c.RADIUS.Retries == nil {
		n := 3
		c.RADIUS.Retries = &n
	}
	if c.RADIUS.Acct == "" {
		if host, _, err := net.SplitHostPort(c.RADIUS.Auth); err == nil {
			c.RADIUS.Acct = net.JoinHostPort(host, "1813")
		}
	}
	if c.RADIUS.InterimInterval == 0 {
		c.RADIUS.InterimInterval = Duration(10 * time.Minute)
	}
	if c.DAS.Listen == "" {
		c.DAS.Listen = ":3799"
	}
	if c.MAB.Delay == 0 {
		c.MAB.Delay = Duration(3 * time.Second)
	}
	if c.MAB.MaxPerPort == 0 {
		c.MAB.MaxPerPort = 64
	}
	if c.Dot1X.TxPeriod == 0 {
		c.Dot1X.TxPeriod = Duration(30 * time.Second)
	}
	if c.Dot1X.QuietPeriod == 0 {
		c.Dot1X.QuietPeriod = Duration(60 * time.Second)
	}
	if c.Dot1X.MaxReq == 0 {
		c.Dot1X.MaxReq = 2
	}
	if c.Dot1X.Reauth == nil {
		t := true
		c.Dot1X.Reauth = &t
	}
	if c.Table == "" {
		c.Table = "trustnac"
	}
}

// Validate checks the configuration as a whole.
func (c *PEPConfig) Validate() error {
	var errs []error
	if c.Bridge == "" || len(c.Bridge) > 15 {
		errs = append(errs, errors.New("bridge: an interface name is required"))
	}
	for _, p := range append(append([]string(nil), c.Ports...), c.Exclude...) {
		if p == "" || len(p) > 15 || strings.ContainsAny(p, "/ ") {
			errs = append(errs, fmt.Errorf("ports/exclude: %q is not an interface name", p))
		}
	}
	if c.NASIdentifier == "" && c.NASIP == "" {
		errs = append(errs, errors.New("nas_identifier or nas_ip is required"))
	}
	if c.NASIP != "" {
		if a, err := netip.ParseAddr(c.NASIP); err != nil || !a.Is4() {
			errs = append(errs, fmt.Errorf("nas_ip %q: want an IPv4 address", c.NASIP))
		}
	}
	if _, _, err := net.SplitHostPort(c.RADIUS.Auth); err != nil {
		errs = append(errs, fmt.Errorf("radius.auth: %w", err))
	}
	if c.RADIUS.Acct != "off" {
		if _, _, err := net.SplitHostPort(c.RADIUS.Acct); err != nil {
			errs = append(errs, fmt.Errorf("radius.acct: %w", err))
		}
	}
	if (c.RADIUS.Secret == "") == (c.RADIUS.SecretFile == "") {
		errs = append(errs, errors.New("radius: give exactly one of secret and secret_file"))
	}
	if *c.RADIUS.Retries < 0 || *c.RADIUS.Retries > 10 {
		errs = append(errs, fmt.Errorf("radius.retries %d: want 0 to 10", *c.RADIUS.Retries))
	}
	if c.DAS.Listen != "off" {
		if _, _, err := net.SplitHostPort(c.DAS.Listen); err != nil {
			errs = append(errs, fmt.Errorf("das.listen: %w", err))
		}
		if len(c.DAS.Clients) == 0 {
			errs = append(errs, errors.New("das.clients: at least one PDP is required (or das.listen: off)"))
		}
	}
	names := map[string]bool{}
	for i, cl := range c.DAS.Clients {
		what := fmt.Sprintf("das.clients[%d]", i)
		if cl.Name == "" || names[cl.Name] {
			errs = append(errs, fmt.Errorf("%s: a unique name is required", what))
		}
		names[cl.Name] = true
		if _, err := parseNetwork(cl.Network); err != nil {
			errs = append(errs, fmt.Errorf("%s: network: %w", what, err))
		}
		if (cl.Secret == "") == (cl.SecretFile == "") {
			errs = append(errs, fmt.Errorf("%s: give exactly one of secret and secret_file", what))
		}
		if cl.CoAPort != 0 {
			errs = append(errs, fmt.Errorf("%s: coa_port has no meaning here", what))
		}
	}
	for _, r := range c.Restricted {
		if _, err := parseNetwork(r); err != nil {
			errs = append(errs, fmt.Errorf("restricted %q: %w", r, err))
		}
	}
	if c.MAB.MaxPerPort < 0 || c.Dot1X.MaxReq < 0 || c.Dot1X.MaxReq > 10 {
		errs = append(errs, errors.New("mab.max_per_port and dot1x.max_req must be sensible"))
	}
	if err := c.Log.validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
