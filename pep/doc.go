// Package pep is the policy enforcement point that runs on each hypervisor (`nac pep`): it makes
// a Linux bridge an IEEE 802.1X authenticator backed by the PDP over RADIUS and enforces the
// PDP's decisions in the kernel — locked bridge ports, FDB entries, nftables sets per role and
// port VLANs.
//
// Subpackages: eapol (the EAPOL codec and AF_PACKET port sockets, used by the authenticator and
// by the agent as supplicant), bridge (the Linux Enforcer on netlink and nftables) and controller
// (the daemon behind `nac pep`: ports, 802.1X relay to RADIUS, MAB, accounting, CoA).
package pep
