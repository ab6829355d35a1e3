package controller

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"trustnac/pep"
	tradius "trustnac/transport/radius"
)

// Enforcer is what the controller needs of the kernel side: pep.Enforcer plus reconciliation
// after a restart and removal on request. *bridge.Enforcer satisfies it.
type Enforcer interface {
	pep.Enforcer
	// Reconcile makes the kernel hold exactly the given bindings.
	Reconcile(ctx context.Context, want []pep.Binding) error
	// Cleanup removes everything the enforcer created.
	Cleanup(ctx context.Context) error
}

// Defaults.
const (
	DefaultMABDelay        = 3 * time.Second
	DefaultMABMaxPerPort   = 64
	DefaultInterimInterval = 10 * time.Minute
	DefaultDASListen       = ":3799"
	stateFileName          = "sessions.json"
)

// Config configures a Controller.
type Config struct {
	// Bridge is the Linux bridge whose ports are managed. Required.
	Bridge string
	// Ports lists the managed ports; empty means every port of the bridge, also ports added
	// later, except Exclude.
	Ports   []string
	Exclude []string
	// NASIdentifier (RFC 2865 §5.32) and NASIP (§5.4) identify the PEP to the PDP; at least one
	// is required.
	NASIdentifier string
	NASIP         netip.Addr
	// StateDir holds the session state file (method, Acct-Session-Id, Class per session).
	StateDir string
	// Auth is the PDP's RADIUS authentication address (host:port); Acct its accounting address,
	// "" for no accounting.
	Auth, Acct string
	Secret     []byte
	// Timeout and Retries configure the RADIUS client (tradius.Client).
	Timeout time.Duration
	Retries int
	// InterimInterval is the Interim-Update period (default 10m; RFC 2869 §5.16).
	InterimInterval time.Duration
	// DASListen is the UDP address of the Dynamic Authorization server (RFC 5176); "" for none.
	DASListen  string
	DASClients []tradius.ClientConfig
	// MAB turns MAC authentication bypass on; MABDelay is how long an unknown MAC may speak
	// 802.1X first (default 3s); MABMaxPerPort caps the MACs waiting for MAB on one port.
	MAB           bool
	MABDelay      time.Duration
	MABMaxPerPort int
	// TxPeriod, QuietPeriod and MaxReq are the 802.1X timers (eapol.Authenticator); Reauth
	// re-authenticates at Session-Timeout.
	TxPeriod, QuietPeriod time.Duration
	MaxReq                int
	Reauth                bool
	// VLANs applies the VLAN of Tunnel-Private-Group-Id; without it the VLAN is ignored.
	VLANs bool
	// CleanupOnExit ends every session and removes the enforcement when Run returns.
	CleanupOnExit bool
	Logger        *slog.Logger
}

// ErrInvalidConfig reports a Config that New cannot use.
var ErrInvalidConfig = errors.New("controller: invalid config")

func (c *Config) setDefaults() {
	if c.MABDelay <= 0 {
		c.MABDelay = DefaultMABDelay
	}
	if c.MABMaxPerPort <= 0 {
		c.MABMaxPerPort = DefaultMABMaxPerPort
	}
	if c.InterimInterval <= 0 {
		c.InterimInterval = DefaultInterimInterval
	}
	if c.TxPeriod <= 0 {
		c.TxPeriod = 30 * time.Second
	}
	if c.QuietPeriod <= 0 {
		c.QuietPeriod = 60 * time.Second
	}
	if c.MaxReq <= 0 {
		c.MaxReq = 2
	}
	if c.Timeout <= 0 {
		c.Timeout = tradius.DefaultTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

func (c *Config) validate() error {
	var errs []error
	if c.Bridge == "" {
		errs = append(errs, errors.New("no bridge"))
	}
	if c.NASIdentifier == "" && !c.NASIP.IsValid() {
		errs = append(errs, errors.New("need a NAS identifier or NAS IP"))
	}
	if c.NASIP.IsValid() && !c.NASIP.Is4() {
		errs = append(errs, errors.New("NAS IP must be IPv4"))
	}
	if _, _, err := net.SplitHostPort(c.Auth); err != nil {
		errs = append(errs, fmt.Errorf("auth address: %w", err))
	}
	if c.Acct != "" {
		if _, _, err := net.SplitHostPort(c.Acct); err != nil {
			errs = append(errs, fmt.Errorf("acct address: %w", err))
		}
	}
	if len(c.Secret) == 0 {
		errs = append(errs, errors.New("no RADIUS secret"))
	}
	if c.StateDir == "" {
		errs = append(errs, errors.New("no state dir"))
	}
	if c.DASListen != "" && len(c.DASClients) == 0 {
		errs = append(errs, errors.New("DAS needs at least one client"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return nil
}
