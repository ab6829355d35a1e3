package bridge

import (
	"bytes"
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// bridgeLink looks up Config.Bridge and checks it is a bridge.
func (e *Enforcer) bridgeLink() (*netlink.Bridge, error) {
	l, err := e.link.LinkByName(e.cfg.Bridge)
	if err != nil {
		return nil, fmt.Errorf("bridge: %s: %w", e.cfg.Bridge, err)
	}
	br, ok := l.(*netlink.Bridge)
	if !ok {
		return nil, fmt.Errorf("bridge: %w: %s is a %s, not a bridge", ErrInvalidConfig, e.cfg.Bridge, l.Type())
	}
	return br, nil
}

// portLink looks up port and checks it is enslaved to Config.Bridge.
func (e *Enforcer) portLink(port string) (netlink.Link, error) {
	if port == "" || len(port) >= ifNameSize {
		return nil, fmt.Errorf("bridge: %w: port %q", ErrNotBridgePort, port)
	}
	br, err := e.bridgeLink()
	if err != nil {
		return nil, err
	}
	l, err := e.link.LinkByName(port)
	if err != nil {
		return nil, fmt.Errorf("bridge: port %s: %w", port, err)
	}
	if l.Attrs().MasterIndex != br.Attrs().Index {
		return nil, fmt.Errorf("bridge: %s: %w %s", port, ErrNotBridgePort, e.cfg.Bridge)
	}
	return l, nil
}

// setPortFlags sets the locked and mab flags of a bridge port, and learning to what they need,
// in one RTM_SETLINK (family AF_BRIDGE, nested IFLA_PROTINFO): learning off when locked without
// MAB, on otherwise (the kernel refuses mab without learning). vishvananda/netlink has no setter
// for IFLA_BRPORT_MAB, so the message is built here.
func (e *Enforcer) setPortFlags(l netlink.Link, locked, mab bool) error {
	learning := !locked || mab
	req := nl.NewNetlinkRequest(unix.RTM_SETLINK, unix.NLM_F_ACK)
	req.Sockets = e.rt
	msg := nl.NewIfInfomsg(unix.AF_BRIDGE)
	msg.Index = int32(l.Attrs().Index)
	req.AddData(msg)
	pi := nl.NewRtAttr(unix.IFLA_PROTINFO|unix.NLA_F_NESTED, nil)
	// The kernel applies the three together and checks mab against the new learning and
	// locked values; a kernel before 6.2 silently ignores mab (Lock reads the flags back).
	pi.AddRtAttr(brportLearning, []byte{boolByte(learning)})
	pi.AddRtAttr(brportLocked, []byte{boolByte(locked)})
	pi.AddRtAttr(brportMAB, []byte{boolByte(mab)})
	req.AddData(pi)
	if _, err := req.Execute(unix.NETLINK_ROUTE, 0); err != nil {
		return fmt.Errorf("bridge: set port flags on %s (locked=%t mab=%t): %w", l.Attrs().Name, locked, mab, err)
	}
	return nil
}

// portInfo reads the bridge port flags of the port with the given index (RTM_GETLINK dump of
// family AF_BRIDGE, as `bridge link show` does) and decodes them with portInfo.unmarshalBinary.
func (e *Enforcer) portInfo(index int) (portInfo, error) {
	req := nl.NewNetlinkRequest(unix.RTM_GETLINK, unix.NLM_F_DUMP)
	req.Sockets = e.rt
	req.AddData(nl.NewIfInfomsg(unix.AF_BRIDGE))
	msgs, err := req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWLINK)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return portInfo{}, fmt.Errorf("bridge: read port flags: %w", err)
	}
	for _, m := range msgs {
		var pi portInfo
		if err := pi.unmarshalBinary(m); err != nil {
			return portInfo{}, err
		}
		if int(pi.Index) == index && pi.HasProtinfo {
			return pi, nil
		}
	}
	return portInfo{}, fmt.Errorf("bridge: port index %d: %w", index, ErrNotBridgePort)
}

// flushDynamic deletes the entries the bridge learned on a port (neither static nor local):
// on a locked port any FDB entry opens the port for its MAC.
func (e *Enforcer) flushDynamic(l netlink.Link) error {
	idx := l.Attrs().Index
	all, err := e.link.NeighList(idx, unix.AF_BRIDGE)
	if err != nil {
		return fmt.Errorf("bridge: read fdb of %s: %w", l.Attrs().Name, err)
	}
	for _, n := range all {
		if n.LinkIndex != idx || !isBridgeFDB(n) ||
			n.State&(netlink.NUD_NOARP|netlink.NUD_PERMANENT) != 0 {
			continue
		}
		if err := e.delNeigh(n); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("bridge: flush learned %s on %s: %w", n.HardwareAddr, l.Attrs().Name, err)
		}
	}
	return nil
}

// delFDB deletes the static FDB entries of mac for which match is true.
func (e *Enforcer) delFDB(mac net.HardwareAddr, match func(netlink.Neigh) bool) error {
	all, err := e.link.NeighList(0, unix.AF_BRIDGE)
	if err != nil {
		return fmt.Errorf("bridge: read fdb: %w", err)
	}
	for _, n := range all {
		if !bytes.Equal(n.HardwareAddr, mac) || !isOurFDB(n) || !match(n) {
			continue
		}
		if err := e.delNeigh(n); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("bridge: delete fdb %s vlan %d: %w", mac, n.Vlan, err)
		}
	}
	return nil
}

// setPVID makes vid the port's only untagged PVID: it adds vid (pvid untagged) and then removes
// every other VLAN of the port, as an access port carries one VLAN.
func (e *Enforcer) setPVID(l netlink.Link, vid int) error {
	idx := l.Attrs().Index
	all, err := e.link.BridgeVlanList()
	if err != nil {
		return fmt.Errorf("bridge: read vlans: %w", err)
	}
	var others []uint16
	have := false
	for _, v := range all[int32(idx)] {
		switch {
		case int(v.Vid) == vid && v.PortVID() && v.EngressUntag():
			have = true
		case int(v.Vid) != vid:
			others = append(others, v.Vid)
		}
	}
	if !have {
		if err := e.link.BridgeVlanAdd(l, uint16(vid), true, true, false, true); err != nil {
			return fmt.Errorf("bridge: set pvid %d on %s: %w", vid, l.Attrs().Name, err)
		}
	}
	for _, o := range others {
		if err := e.link.BridgeVlanDel(l, o, false, false, false, true); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("bridge: remove vlan %d from %s: %w", o, l.Attrs().Name, err)
		}
	}
	return nil
}

// delNeigh deletes a bridge FDB entry read from a dump: the dump does not carry NTF_MASTER,
// without which the kernel would look in the port device's own table.
func (e *Enforcer) delNeigh(n netlink.Neigh) error {
	n.Family = unix.AF_BRIDGE
	n.Flags = netlink.NTF_MASTER
	return e.link.NeighDel(&n)
}

// fdbElsewhere reports whether mac has a static FDB entry on a port other than portIndex.
func (e *Enforcer) fdbElsewhere(mac net.HardwareAddr, portIndex int) (bool, error) {
	all, err := e.link.NeighList(0, unix.AF_BRIDGE)
	if err != nil {
		return false, fmt.Errorf("bridge: read fdb: %w", err)
	}
	for _, n := range all {
		if bytes.Equal(n.HardwareAddr, mac) && isOurFDB(n) && n.LinkIndex != portIndex {
			return true, nil
		}
	}
	return false, nil
}
