package bridge

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"trustnac/pep"
)

// Enforcer is the Linux bridge pep.Enforcer. Its methods are safe for concurrent use; they are
// serialised, since netlink sockets and nftables batches are not.
type Enforcer struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	closed  bool
	nsFile  *os.File // the namespace, when Config.NetNSPath is set
	link    *netlink.Handle
	rt      map[int]*nl.SocketHandle // raw NETLINK_ROUTE socket for bridge port flags
	nft     *nftables.Conn
	rs      *ruleset
	managed map[string]bool // ports in the ports set
}

var _ pep.Enforcer = (*Enforcer)(nil)

// New checks cfg, opens netlink and nftables connections in the bridge's namespace and installs
// the nftables table (idempotently: rules are re-created in one transaction, role and port sets
// keep their contents). With cfg.VLANs it turns on vlan_filtering on the bridge. On error
// nothing stays open and ports stay as they were.
func New(cfg Config) (*Enforcer, error) {
	cfg, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	e := &Enforcer{cfg: cfg, log: cfg.Logger.With("component", "pep/bridge", "bridge", cfg.Bridge),
		rs: newRuleset(cfg.Table), managed: map[string]bool{}}
	ok := false
	defer func() {
		if !ok {
			e.closeLocked()
		}
	}()

	ns := netns.None()
	var nftOpts []nftables.ConnOption
	if cfg.NetNSPath != "" {
		e.nsFile, err = os.Open(cfg.NetNSPath)
		if err != nil {
			return nil, fmt.Errorf("bridge: open netns: %w", err)
		}
		ns = netns.NsHandle(int(e.nsFile.Fd()))
		nftOpts = append(nftOpts, nftables.WithNetNSFd(int(e.nsFile.Fd())))
	}
	if e.link, err = netlink.NewHandleAt(ns); err != nil {
		return nil, fmt.Errorf("bridge: netlink: %w", err)
	}
	sock, err := nl.GetNetlinkSocketAt(ns, netns.None(), unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("bridge: netlink socket: %w", err)
	}
	e.rt = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: {Socket: sock}}
	if e.nft, err = nftables.New(append(nftOpts, nftables.AsLasting())...); err != nil {
		return nil, fmt.Errorf("bridge: nftables: %w", err)
	}

	br, err := e.bridgeLink()
	if err != nil {
		return nil, err
	}
	filtering := br.VlanFiltering != nil && *br.VlanFiltering
	switch {
	case cfg.VLANs && !filtering:
		if err := e.link.BridgeSetVlanFiltering(br, true); err != nil {
			if errors.Is(err, unix.EOPNOTSUPP) { // CONFIG_BRIDGE_VLAN_FILTERING off
				err = fmt.Errorf("%w: %w", ErrKernelSupport, err)
			}
			return nil, fmt.Errorf("bridge: set vlan_filtering on %s: %w", cfg.Bridge, err)
		}
	case !cfg.VLANs && filtering:
		// FDB entries without a VLAN would never match the PVID the bridge tags frames with.
		return nil, fmt.Errorf("bridge: %w: %s has vlan_filtering on but VLANs are off", ErrInvalidConfig, cfg.Bridge)
	}

	if err := e.rs.install(e.nft, cfg.Restricted); err != nil {
		return nil, err
	}
	if err := e.nft.Flush(); err != nil {
		return nil, fmt.Errorf("bridge: install table %s: %w", cfg.Table, err)
	}
	ports, err := e.nft.GetSetElements(e.rs.ports)
	if err != nil {
		return nil, fmt.Errorf("bridge: read set %s: %w", setPorts, err)
	}
	for _, el := range ports {
		e.managed[ifnameFromKey(el.Key)] = true
	}
	ok = true
	e.log.Info("enforcer ready", "table", cfg.Table, "managed_ports", len(e.managed), "vlans", cfg.VLANs, "mab", cfg.MAB)
	return e, nil
}

// Close releases the netlink and nftables connections. Kernel state is left as it is: ports stay
// locked and bindings stay in force (fail closed). Use Cleanup to remove them.
func (e *Enforcer) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closeLocked()
}

func (e *Enforcer) closeLocked() error {
	if e.closed {
		return nil
	}
	e.closed = true
	var errs []error
	if e.nft != nil {
		errs = append(errs, e.nft.CloseLasting())
	}
	for _, s := range e.rt {
		s.Socket.Close()
	}
	if e.link != nil {
		e.link.Close()
	}
	if e.nsFile != nil {
		errs = append(errs, e.nsFile.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("bridge: close: %w", err)
	}
	return nil
}

// lock takes the mutex and checks the enforcer is open and ctx is live.
func (e *Enforcer) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bridge: %w", err)
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return fmt.Errorf("bridge: %w", ErrClosed)
	}
	return nil
}

// Lock makes port a managed port (pep.Enforcer): the port is added to the ports set (so nftables
// drops what it forwards for unbound MACs), then locked with learning off (or, with Config.MAB,
// locked with mab and learning on), and the MACs the bridge learned on it before are flushed,
// since a locked port lets through any MAC with an FDB entry. The flags are read back: a kernel
// that ignored them gives ErrKernelSupport. Locking a locked port is a no-op apart from the
// flush.
func (e *Enforcer) Lock(ctx context.Context, port string) error {
	if err := e.lock(ctx); err != nil {
		return err
	}
	defer e.mu.Unlock()
	l, err := e.portLink(port)
	if err != nil {
		return err
	}
	if err := e.nft.SetAddElements(e.rs.ports, []nftables.SetElement{{Key: ifnameKey(port)}}); err != nil {
		return fmt.Errorf("bridge: lock %s: %w", port, err)
	}
	if err := e.nft.Flush(); err != nil {
		return fmt.Errorf("bridge: lock %s: add to set %s: %w", port, setPorts, err)
	}
	e.managed[port] = true
	if err := e.setPortFlags(l, true, e.cfg.MAB); err != nil {
		return err
	}
	if err := e.flushDynamic(l); err != nil {
		return err
	}
	pi, err := e.portInfo(l.Attrs().Index)
	if err != nil {
		return err
	}
	if !pi.Locked || pi.MAB != e.cfg.MAB || pi.Learning != e.cfg.MAB {
		return fmt.Errorf("bridge: lock %s: %w (locked=%t mab=%t learning=%t)", port, ErrKernelSupport, pi.Locked, pi.MAB, pi.Learning)
	}
	e.log.Info("port locked", "event", "lock", "port", port, "mab", e.cfg.MAB)
	return nil
}

// Bind admits b.MAC on b.Port in b.Role (pep.Enforcer), replacing any earlier binding of the MAC:
// with VLANs it first sets the port's PVID, then installs a static, sticky FDB entry for the MAC
// on the port and finally, in one nftables transaction, puts the MAC into its role's set and out
// of all others. Until that transaction the MAC is in no set and nftables drops its frames, so a
// failed Bind never admits more than before. The port must have been locked with Lock. A
// non-zero b.Expires becomes the set element's timeout: when it passes, the kernel drops the
// MAC from its set and with it the endpoint's access, without the PEP (an expired b.Expires
// gives ErrExpired).
func (e *Enforcer) Bind(ctx context.Context, b pep.Binding) error {
	if err := e.checkBinding(b); err != nil {
		return err
	}
	if err := e.lock(ctx); err != nil {
		return err
	}
	defer e.mu.Unlock()
	if err := e.bind(b); err != nil {
		return err
	}
	e.log.Info("endpoint bound", "event", "bind", "port", b.Port, "mac", b.MAC.String(), "role", b.Role, "vlan", b.VLAN)
	return nil
}

func (e *Enforcer) checkBinding(b pep.Binding) error {
	switch {
	case !validRole(b.Role):
		return fmt.Errorf("bridge: %w: role %q", ErrInvalidBinding, b.Role)
	case len(b.MAC) != 6:
		return fmt.Errorf("bridge: %w: MAC of %d bytes", ErrInvalidBinding, len(b.MAC))
	case b.MAC[0]&1 != 0:
		return fmt.Errorf("bridge: %w: multicast MAC %s", ErrInvalidBinding, b.MAC)
	case b.VLAN < 0 || b.VLAN > maxVLAN:
		return fmt.Errorf("bridge: %w: VLAN %d", ErrInvalidBinding, b.VLAN)
	case b.VLAN != 0 && !e.cfg.VLANs:
		return fmt.Errorf("bridge: %w: VLAN %d", ErrVLANsOff, b.VLAN)
	case b.Port == "" || len(b.Port) >= ifNameSize:
		return fmt.Errorf("bridge: %w: port %q", ErrInvalidBinding, b.Port)
	}
	return nil
}

func (e *Enforcer) bind(b pep.Binding) error {
	if !e.managed[b.Port] {
		return fmt.Errorf("bridge: bind on %s: %w", b.Port, ErrNotLocked)
	}
	timeout, err := timeoutOf(b.Expires)
	if err != nil {
		return err
	}
	l, err := e.portLink(b.Port)
	if err != nil {
		return err
	}
	vid := 0
	if e.cfg.VLANs {
		vid = cmp.Or(b.VLAN, defaultPVID)
		if err := e.setPVID(l, vid); err != nil {
			return err
		}
		// An entry for the MAC under another VLAN would keep it open there.
		if err := e.delFDB(b.MAC, func(n netlink.Neigh) bool { return n.Vlan != vid || n.LinkIndex != l.Attrs().Index }); err != nil {
			return err
		}
	}
	n := &netlink.Neigh{
		LinkIndex:    l.Attrs().Index,
		Family:       unix.AF_BRIDGE,
		State:        netlink.NUD_NOARP, // "static": never ages out
		Flags:        netlink.NTF_MASTER | netlink.NTF_STICKY,
		HardwareAddr: slices.Clone(b.MAC),
		Vlan:         vid,
	}
	if err := e.link.NeighSet(n); err != nil {
		return fmt.Errorf("bridge: bind %s on %s: fdb: %w", b.MAC, b.Port, err)
	}
	return e.moveMAC(b.MAC, b.Role, timeout)
}

// moveMAC puts mac into role's set, with the given timeout (0 for none), and removes it from
// every other role set (role "" removes it from all), in one transaction. Deleting a missing
// element fails a transaction, so the MAC is first added to every set and deleted from it
// (no need to know where it was), then added again to its role's set with its timeout: adding
// an existing element would not refresh its timeout.
func (e *Enforcer) moveMAC(mac net.HardwareAddr, role string, timeout time.Duration) error {
	el := []nftables.SetElement{{Key: macKey(mac)}}
	for _, r := range allRoles {
		s := e.rs.roles[r]
		if err := e.nft.SetAddElements(s, el); err != nil {
			return fmt.Errorf("bridge: set %s: %w", r, err)
		}
		if err := e.nft.SetDeleteElements(s, el); err != nil {
			return fmt.Errorf("bridge: set %s: %w", r, err)
		}
	}
	if role != "" {
		if err := e.nft.SetAddElements(e.rs.roles[role], []nftables.SetElement{{Key: macKey(mac), Timeout: timeout}}); err != nil {
			return fmt.Errorf("bridge: set %s: %w", role, err)
		}
	}
	if err := e.nft.Flush(); err != nil {
		return fmt.Errorf("bridge: move %s to %q: %w", mac, role, err)
	}
	return nil
}

// timeoutOf turns a binding's Expires into an nftables element timeout: 0 for never, whole
// milliseconds rounded up, ErrExpired when the time has passed.
func timeoutOf(expires time.Time) (time.Duration, error) {
	if expires.IsZero() {
		return 0, nil
	}
	d := time.Until(expires)
	if d <= 0 {
		return 0, fmt.Errorf("bridge: %w at %s", ErrExpired, expires.Format(time.RFC3339))
	}
	return (d + time.Millisecond - 1).Truncate(time.Millisecond), nil
}

// Unbind removes the binding of mac on port (pep.Enforcer): the MAC leaves every role set (in
// one transaction) and its FDB entries on the port are deleted. The port stays locked and keeps
// its PVID. A MAC bound on another port since (it moved) keeps that binding. Unbinding a MAC
// that is not bound is not an error.
func (e *Enforcer) Unbind(ctx context.Context, port string, mac net.HardwareAddr) error {
	if len(mac) != 6 {
		return fmt.Errorf("bridge: %w: MAC of %d bytes", ErrInvalidBinding, len(mac))
	}
	if err := e.lock(ctx); err != nil {
		return err
	}
	defer e.mu.Unlock()
	l, err := e.portLink(port)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) && e.managed[port] {
		// The port is gone, and its FDB entries with it: the MAC leaves the role sets unless
		// it is bound on another port.
		elsewhere, err := e.fdbElsewhere(mac, 0)
		if err != nil {
			return err
		}
		if !elsewhere {
			if err := e.moveMAC(mac, "", 0); err != nil {
				return err
			}
		}
		e.log.Info("endpoint unbound", "event", "unbind", "port", port, "mac", mac.String(), "port_gone", true)
		return nil
	}
	if err != nil {
		return err
	}
	idx := l.Attrs().Index
	// A MAC that has moved to another port (Bind replaced its entry) keeps its role there.
	elsewhere, err := e.fdbElsewhere(mac, idx)
	if err != nil {
		return err
	}
	if !elsewhere {
		if err := e.moveMAC(mac, "", 0); err != nil {
			return err
		}
	}
	if err := e.delFDB(mac, func(n netlink.Neigh) bool { return n.LinkIndex == idx }); err != nil {
		return err
	}
	e.log.Info("endpoint unbound", "event", "unbind", "port", port, "mac", mac.String())
	return nil
}

// setEntry is a MAC's membership in a role set.
type setEntry struct {
	role    string
	expires time.Time // zero: no timeout
}

// kernelState is what the kernel holds for the managed ports.
type kernelState struct {
	fdb   []netlink.Neigh     // static FDB entries on managed ports
	roles map[string]setEntry // MAC (string form) → role set it is in
	names map[int]string      // port index → name
}

func (e *Enforcer) readState() (*kernelState, error) {
	st := &kernelState{roles: map[string]setEntry{}, names: map[int]string{}}
	now := time.Now()
	for port := range e.managed {
		l, err := e.link.LinkByName(port)
		if err != nil {
			continue // a port that went away has no bindings
		}
		st.names[l.Attrs().Index] = port
	}
	all, err := e.link.NeighList(0, unix.AF_BRIDGE)
	if err != nil {
		return nil, fmt.Errorf("bridge: read fdb: %w", err)
	}
	for _, n := range all {
		if _, ok := st.names[n.LinkIndex]; ok && isOurFDB(n) {
			st.fdb = append(st.fdb, n)
		}
	}
	for _, r := range allRoles {
		els, err := e.nft.GetSetElements(e.rs.roles[r])
		if err != nil {
			return nil, fmt.Errorf("bridge: read set %s: %w", r, err)
		}
		for _, el := range els {
			if len(el.Key) == 6 {
				se := setEntry{role: r}
				if el.Timeout != 0 {
					se.expires = now.Add(el.Expires).Truncate(time.Millisecond)
				}
				st.roles[net.HardwareAddr(el.Key).String()] = se
			}
		}
	}
	return st, nil
}

// isOurFDB reports whether n is an FDB entry of the kind Bind installs: in the bridge's FDB (a
// dump reports NDA_MASTER for those, not NTF_MASTER), static, not local.
func isOurFDB(n netlink.Neigh) bool {
	return isBridgeFDB(n) && n.State&netlink.NUD_NOARP != 0 && n.State&netlink.NUD_PERMANENT == 0
}

// isBridgeFDB reports whether n is in the bridge's FDB rather than the port device's own.
func isBridgeFDB(n netlink.Neigh) bool {
	return n.Flags&netlink.NTF_SELF == 0 && n.MasterIndex != 0
}

// Bindings reads back the bindings the kernel holds (pep.Enforcer): static FDB entries on
// managed ports whose MAC is in a role set. The VLAN is the FDB entry's VLAN, reported as 0 when
// it is the default PVID 1. Expires comes from the set element's remaining timeout (to the
// millisecond); a binding whose timeout ran out has left its set and is not reported. The result
// is sorted by port and MAC.
func (e *Enforcer) Bindings(ctx context.Context) ([]pep.Binding, error) {
	if err := e.lock(ctx); err != nil {
		return nil, err
	}
	defer e.mu.Unlock()
	st, err := e.readState()
	if err != nil {
		return nil, err
	}
	var out []pep.Binding
	for _, n := range st.fdb {
		se, ok := st.roles[n.HardwareAddr.String()]
		if !ok {
			continue
		}
		vlan := n.Vlan
		if vlan == defaultPVID || !e.cfg.VLANs {
			vlan = 0
		}
		out = append(out, pep.Binding{Port: st.names[n.LinkIndex], MAC: slices.Clone(n.HardwareAddr), Role: se.role, VLAN: vlan, Expires: se.expires})
	}
	sortBindings(out)
	return out, nil
}

func sortBindings(bs []pep.Binding) {
	slices.SortFunc(bs, func(a, b pep.Binding) int {
		return cmp.Or(cmp.Compare(a.Port, b.Port), bytes.Compare(a.MAC, b.MAC), cmp.Compare(a.VLAN, b.VLAN))
	})
}

// Reconcile makes the kernel hold exactly want: every wanted binding is (re)applied with Bind's
// semantics, FDB entries on managed ports that no wanted binding explains are deleted and MACs
// that no wanted binding names leave the role sets (one transaction). Every binding is checked
// before anything changes; the ports must be locked. It keeps going after a failure and returns
// all failures joined, so one bad port does not leave stale admissions elsewhere.
func (e *Enforcer) Reconcile(ctx context.Context, want []pep.Binding) error {
	live := make([]pep.Binding, 0, len(want))
	for _, b := range want {
		if err := e.checkBinding(b); err != nil {
			return err
		}
		if _, err := timeoutOf(b.Expires); err == nil {
			live = append(live, b) // an expired session is simply not wanted any more
		}
	}
	want = live
	if err := e.lock(ctx); err != nil {
		return err
	}
	defer e.mu.Unlock()

	type key struct {
		port string
		mac  string
	}
	wanted := map[key]int{} // → the FDB entry's VLAN
	wantMAC := map[string]bool{}
	var errs []error
	for _, b := range want {
		vid := 0
		if e.cfg.VLANs {
			vid = cmp.Or(b.VLAN, defaultPVID)
		}
		wanted[key{b.Port, b.MAC.String()}] = vid
		wantMAC[b.MAC.String()] = true
	}
	st, err := e.readState()
	if err != nil {
		return err
	}
	// Remove first: a wanted binding that moves a MAC replaces the old entry anyway.
	removed := 0
	var stale []nftables.SetElement
	for mac := range st.roles {
		if !wantMAC[mac] {
			hw, _ := net.ParseMAC(mac)
			stale = append(stale, nftables.SetElement{Key: macKey(hw)})
		}
	}
	if len(stale) > 0 {
		// As in moveMAC: add then delete, so a MAC in more than one set leaves all of them.
		for _, r := range allRoles {
			if err := e.nft.SetAddElements(e.rs.roles[r], stale); err != nil {
				errs = append(errs, err)
			}
			if err := e.nft.SetDeleteElements(e.rs.roles[r], stale); err != nil {
				errs = append(errs, err)
			}
		}
		if err := e.nft.Flush(); err != nil {
			errs = append(errs, fmt.Errorf("bridge: reconcile: remove %d MACs from role sets: %w", len(stale), err))
		}
	}
	for _, n := range st.fdb {
		k := key{st.names[n.LinkIndex], n.HardwareAddr.String()}
		if vid, ok := wanted[k]; ok && vid == n.Vlan {
			continue
		}
		if err := e.delNeigh(n); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("bridge: reconcile: delete fdb %s on %s: %w", n.HardwareAddr, k.port, err))
			continue
		}
		removed++
	}
	for _, b := range want {
		if err := e.bind(b); err != nil {
			errs = append(errs, err)
		}
	}
	e.log.Info("reconciled", "event", "reconcile", "bindings", len(want), "stale_macs", len(stale), "stale_fdb", removed, "errors", len(errs))
	return errors.Join(errs...)
}

// Cleanup undoes the enforcement (only when the PEP is told to): managed ports are unlocked
// (locked, mab off, learning on), the static FDB entries on them are deleted and the nftables
// table is removed. The Enforcer stays open but manages no port afterwards; a later New installs
// the table again.
func (e *Enforcer) Cleanup(ctx context.Context) error {
	if err := e.lock(ctx); err != nil {
		return err
	}
	defer e.mu.Unlock()
	var errs []error
	st, err := e.readState()
	if err != nil {
		errs = append(errs, err)
	} else {
		for _, n := range st.fdb {
			if err := e.delNeigh(n); err != nil && !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("bridge: cleanup: delete fdb %s: %w", n.HardwareAddr, err))
			}
		}
	}
	for port := range e.managed {
		l, err := e.link.LinkByName(port)
		if err != nil {
			continue
		}
		if err := e.setPortFlags(l, false, false); err != nil {
			errs = append(errs, err)
		}
	}
	e.nft.DelTable(e.rs.table)
	if err := e.nft.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
		errs = append(errs, fmt.Errorf("bridge: cleanup: delete table %s: %w", e.cfg.Table, err))
	}
	e.managed = map[string]bool{}
	e.log.Info("enforcement removed", "event", "cleanup", "errors", len(errs))
	return errors.Join(errs...)
}
