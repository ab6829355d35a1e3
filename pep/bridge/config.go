package bridge

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
)

// allRoles a binding can have. Deny is never bound: a denied endpoint is simply not in the kernel.
const (
	RoleAdmit     = "admit"     // full access
	RoleRemediate = "remediate" // restricted: DHCP, DNS, Config.Restricted
	RoleAssess    = "assess"    // restricted: DHCP, DNS, Config.Restricted
	RoleIsolate   = "isolate"   // restricted: DHCP, DNS, Config.Restricted
)

// allRoles lists every role the enforcer knows, in the order of their nftables sets.
var allRoles = []string{RoleAdmit, RoleRemediate, RoleAssess, RoleIsolate}

// restrictedRoles are the roles that only reach the allowed destinations.
var restrictedRoles = []string{RoleRemediate, RoleAssess, RoleIsolate}

// DefaultTable is the name of the nftables table when Config.Table is empty.
const DefaultTable = "trustnac"

// defaultPVID is the bridge's default port VLAN (default_pvid, IEEE 802.1Q-2018 §9.6 VID 1).
const defaultPVID = 1

// maxVLAN is the highest usable VID (IEEE 802.1Q-2018 §9.6: 0 and 4095 are reserved).
const maxVLAN = 4094

// maxRestricted caps Config.Restricted: the allowed sets are meant for a handful of servers.
const maxRestricted = 1024

// Config configures an Enforcer.
type Config struct {
	// Bridge is the name of the Linux bridge whose ports are managed. Required.
	Bridge string
	// Table is the name of the nftables table of family bridge; DefaultTable when empty.
	Table string
	// Restricted lists the destinations (PDP, remediation servers) that endpoints in the
	// restricted roles (assess, isolate, remediate) may reach besides DHCP and DNS.
	Restricted []netip.Prefix
	// VLANs turns VLAN assignment on: the bridge gets vlan_filtering=1 and Bind sets port PVIDs.
	VLANs bool
	// MAB sets the mab flag on locked ports (kernel ≥ 6.2) so the kernel reports unknown MACs as
	// locked FDB entries. The kernel requires learning on for MAB, so learning stays on then.
	MAB bool
	// NetNSPath, when set, is the path of the network namespace (e.g. /var/run/netns/x) that
	// holds the bridge; empty means the namespace of the calling process.
	NetNSPath string
	// Logger receives audit events (lock, bind, unbind, reconcile); slog.DiscardHandler when nil.
	Logger *slog.Logger
}

// validate checks c and fills in defaults, returning the normalised copy.
func (c Config) validate() (Config, error) {
	if c.Bridge == "" {
		return c, fmt.Errorf("bridge: %w: no bridge name", ErrInvalidConfig)
	}
	if len(c.Bridge) >= ifNameSize {
		return c, fmt.Errorf("bridge: %w: bridge name %q too long", ErrInvalidConfig, c.Bridge)
	}
	if c.Table == "" {
		c.Table = DefaultTable
	}
	if len(c.Table) > 255 {
		return c, fmt.Errorf("bridge: %w: table name too long", ErrInvalidConfig)
	}
	if len(c.Restricted) > maxRestricted {
		return c, fmt.Errorf("bridge: %w: %d restricted prefixes, at most %d", ErrInvalidConfig, len(c.Restricted), maxRestricted)
	}
	for _, p := range c.Restricted {
		if !p.IsValid() {
			return c, fmt.Errorf("bridge: %w: invalid restricted prefix", ErrInvalidConfig)
		}
	}
	c.Restricted = slices.Clone(c.Restricted)
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c, nil
}

// validRole reports whether r is one of allRoles.
func validRole(r string) bool { return slices.Contains(allRoles, r) }

// Sentinel errors callers can test with errors.Is.
var (
	// ErrInvalidConfig reports a Config that New cannot use.
	ErrInvalidConfig = errors.New("invalid config")
	// ErrInvalidBinding reports a pep.Binding with an unknown role, a bad MAC or a bad VLAN.
	ErrInvalidBinding = errors.New("invalid binding")
	// ErrVLANsOff reports a binding with a VLAN on an enforcer without Config.VLANs.
	ErrVLANsOff = errors.New("binding has a VLAN but VLANs are off")
	// ErrNotBridgePort reports an interface that is not a port of Config.Bridge.
	ErrNotBridgePort = errors.New("not a port of the bridge")
	// ErrNotLocked reports a Bind on a port that was not locked first with Lock.
	ErrNotLocked = errors.New("port is not locked")
	// ErrKernelSupport reports a kernel that did not apply a port flag (locked needs ≥ 5.18,
	// mab ≥ 6.2).
	ErrKernelSupport = errors.New("kernel did not apply the port flag")
	// ErrExpired reports a binding whose Expires has already passed.
	ErrExpired = errors.New("binding already expired")
	// ErrClosed reports use of an Enforcer after Close.
	ErrClosed = errors.New("enforcer closed")
)
