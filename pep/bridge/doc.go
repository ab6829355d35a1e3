// Package bridge is the Linux bridge implementation of pep.Enforcer: it enforces the PDP's
// decisions on a kernel bridge with locked ports, static FDB entries, port VLANs (netlink) and an
// nftables table of family bridge holding one MAC set per role.
//
// # Model
//
// A managed port is locked (IFLA_BRPORT_LOCKED, linux/if_link.h; kernel ≥ 5.18): the bridge
// forwards a frame received on it only when an FDB entry for the frame's source MAC (and VLAN)
// points at that very port. Link-local frames such as EAPOL (ethertype 0x888e, group address
// 01:80:C2:00:00:03, IEEE 802.1X-2020 §11.1) are still delivered to the host on the port's
// net_device, so the authenticator keeps hearing the supplicant. Learning is off on locked ports
// so that nothing but the enforcer's static, sticky FDB entries unlocks a MAC; with Config.MAB
// the port also gets IFLA_BRPORT_MAB (kernel ≥ 6.2), which the kernel only accepts with learning
// on: unknown MACs then show up as "locked" FDB entries (NTF_EXT_LOCKED) for the PEP to turn
// into MAB Access-Requests, but still cannot send.
//
// On top of the FDB, the nftables table (family bridge, name Config.Table, default "trustnac")
// decides what a bound MAC may reach. Rules are per role, never per endpoint: the rule count is
// constant and endpoints only move between the sets admit, remediate, assess and isolate. A MAC
// in admit may send anywhere; a MAC in one of the restricted roles may reach only ARP, DHCP
// (udp 67/68), DNS (udp/tcp 53), IPv6 neighbour discovery and the Config.Restricted prefixes (PDP
// and remediation servers, sets allowed4/allowed6), and receives only the replies of those. The
// forward hook drops everything else received on a managed port (set ports). Bind changes the role
// of a MAC in a single nftables transaction. The role sets have timeouts: a binding's Expires
// (Session-Timeout) becomes its element's timeout, so the kernel ends an expired session by
// itself, fail closed, even while the PEP is down; the stale FDB entry that stays behind admits
// nothing on its own and goes at the next Unbind or Reconcile.
//
// # Restart and reconciliation
//
// New makes the table, sets and chains exist (idempotently) and, in one transaction, flushes and
// re-creates the chain rules and the allowed sets from Config. The contents of the role sets and
// of the ports set are kept, so a restarting PEP never opens a gap: the kernel keeps enforcing the
// last decisions until Reconcile replaces them with the PDP's. Bindings reads back FDB entries,
// set memberships and PVIDs; Reconcile makes the kernel equal to a wanted list of bindings.
//
// # VLANs
//
// With Config.VLANs the bridge gets vlan_filtering=1 and Bind sets the port's PVID (untagged)
// from Binding.VLAN, removing the port's previous PVID; a binding without a VLAN uses the
// bridge default PVID 1. The uplink and the bridge device must carry the VLANs the PDP hands out:
// that is the administrator's job. Without Config.VLANs, vlan_filtering is left alone (off on a
// fresh bridge) and a binding with a VLAN is refused (ErrVLANsOff).
package bridge
