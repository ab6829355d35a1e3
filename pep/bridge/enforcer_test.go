package bridge

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"trustnac/pep"
)

// TestEnforcement walks one endpoint through the states a PEP puts it in and checks, with real
// TCP connections through the bridge, what it can reach. p0 and p1 are managed endpoint ports,
// p2 is an unmanaged uplink with a server behind it.
func TestEnforcement(t *testing.T) {
	t.Parallel()
	l := newLab(t, 3)
	a, b, srv := l.eps[0], l.eps[1], l.eps[2]
	cfg := l.config()
	cfg.Restricted = []netip.Prefix{netip.PrefixFrom(srv.IP, 32)}
	e := l.newEnforcer(cfg)

	// Before locking, the bridge forwards everything: the lab itself works.
	l.expectReach(a, srv, true)
	l.expectReach(a, b, true)

	must(t, e.Lock(bg, a.Port))
	must(t, e.Lock(bg, b.Port))
	l.expectReach(a, srv, false)
	l.expectReach(srv, a, false)
	l.expectReach(a, b, false)

	must(t, e.Bind(bg, pep.Binding{Port: a.Port, MAC: a.MAC, Role: RoleAdmit}))
	l.expectReach(a, srv, true)
	l.expectReach(srv, a, true)
	l.expectReach(a, b, false) // b is still unbound

	must(t, e.Bind(bg, pep.Binding{Port: b.Port, MAC: b.MAC, Role: RoleAdmit}))
	l.expectReach(a, b, true)

	// isolate: only the restricted destination, in both directions.
	must(t, e.Bind(bg, pep.Binding{Port: a.Port, MAC: a.MAC, Role: RoleIsolate}))
	l.expectReach(a, srv, true)
	l.expectReach(a, b, false)
	l.expectReach(b, a, false)

	// Spoofing: a MAC without an FDB entry on the port does not pass the locked port ...
	l.setMAC(a, net.HardwareAddr{2, 0, 0, 0, 0, 0x99})
	l.expectReach(a, srv, false)
	l.setMAC(a, a.MAC)
	l.expectReach(a, srv, true)
	// ... nor does a bound MAC used on another locked port.
	l.setMAC(b, a.MAC)
	l.expectReach(b, srv, false)
	l.setMAC(b, b.MAC)
	l.expectReach(b, srv, true)

	must(t, e.Unbind(bg, a.Port, a.MAC))
	l.expectReach(a, srv, false)
	l.expectReach(a, b, false)
	l.expectReach(b, srv, true)

	got, err := e.Bindings(bg)
	must(t, err)
	if want := []string{"p1 02:00:00:00:00:02 admit 0"}; !slices.Equal(format(got), want) {
		t.Errorf("Bindings = %q, want %q", format(got), want)
	}
}

// TestRolesRestricted checks every restricted role behaves as isolate and that admit reaches a
// destination outside Restricted.
func TestRolesRestricted(t *testing.T) {
	t.Parallel()
	l := newLab(t, 3)
	a, b, srv := l.eps[0], l.eps[1], l.eps[2]
	cfg := l.config()
	// b is the one allowed destination here; the server is not.
	cfg.Restricted = []netip.Prefix{netip.PrefixFrom(b.IP, 32), netip.MustParsePrefix("2001:db8::/32")}
	e := l.newEnforcer(cfg)
	must(t, e.Lock(bg, a.Port))
	must(t, e.Lock(bg, b.Port))
	must(t, e.Bind(bg, pep.Binding{Port: b.Port, MAC: b.MAC, Role: RoleAdmit}))
	for _, role := range []string{RoleAssess, RoleRemediate, RoleIsolate} {
		t.Run(role, func(t *testing.T) {
			l.t = t
			must(t, e.Bind(bg, pep.Binding{Port: a.Port, MAC: a.MAC, Role: role}))
			l.expectReach(a, b, true)
			l.expectReach(a, srv, false)
			l.expectReach(srv, a, false)
		})
	}
	l.t = t
	must(t, e.Bind(bg, pep.Binding{Port: a.Port, MAC: a.MAC, Role: RoleAdmit}))
	l.expectReach(a, srv, true)
}

// TestRestartReconcile checks that a second enforcer on the same kernel state (a restarted PEP)
// reads back the same bindings, adds no rules, and that Reconcile makes the kernel equal want.
func TestRestartReconcile(t *testing.T) {
	t.Parallel()
	l := newLab(t, 3)
	cfg := l.config()
	cfg.Restricted = []netip.Prefix{netip.MustParsePrefix("10.99.0.3/32")}
	e1 := l.newEnforcer(cfg)
	rules := l.ruleCount(DefaultTable)
	if rules == 0 {
		t.Fatal("no rules installed")
	}
	for _, ep := range l.eps[:2] {
		must(t, e1.Lock(bg, ep.Port))
	}
	must(t, e1.Bind(bg, pep.Binding{Port: "p0", MAC: l.eps[0].MAC, Role: RoleAdmit, Expires: time.Now().Add(time.Hour)}))
	must(t, e1.Bind(bg, pep.Binding{Port: "p1", MAC: l.eps[1].MAC, Role: RoleAssess}))
	// Many more endpoints: the rule count must not grow with them.
	for i := range 50 {
		must(t, e1.Bind(bg, pep.Binding{Port: "p1", MAC: net.HardwareAddr{2, 1, 0, 0, 0, byte(i)}, Role: allRoles[i%4]}))
	}
	if n := l.ruleCount(DefaultTable); n != rules {
		t.Errorf("rule count %d after 52 bindings, %d before", n, rules)
	}
	before, err := e1.Bindings(bg)
	must(t, err)
	if len(before) != 52 {
		t.Fatalf("Bindings gave %d, want 52", len(before))
	}
	must(t, e1.Close())

	e2 := l.newEnforcer(cfg) // the "restarted" PEP
	if n := l.ruleCount(DefaultTable); n != rules {
		t.Errorf("rule count %d after restart, want %d", n, rules)
	}
	after, err := e2.Bindings(bg)
	must(t, err)
	if !slices.Equal(format(after), format(before)) {
		t.Errorf("bindings after restart differ:\n got %q\nwant %q", format(after), format(before))
	}
	for i := range min(len(after), len(before)) {
		if d := after[i].Expires.Sub(before[i].Expires).Abs(); d > time.Second || after[i].Expires.IsZero() != before[i].Expires.IsZero() {
			t.Errorf("%s: Expires %v after restart, %v before", after[i].MAC, after[i].Expires, before[i].Expires)
		}
	}
	l.expectReach(l.eps[0], l.eps[2], true) // enforcement kept across the restart

	// The PDP now says: p0's endpoint is isolated, one new MAC on p1 is admitted, nothing else.
	want := []pep.Binding{
		{Port: "p0", MAC: l.eps[0].MAC, Role: RoleIsolate},
		{Port: "p1", MAC: net.HardwareAddr{2, 2, 0, 0, 0, 1}, Role: RoleAdmit},
	}
	must(t, e2.Reconcile(bg, want))
	got, err := e2.Bindings(bg)
	must(t, err)
	if !slices.Equal(format(got), format(want)) {
		t.Errorf("after Reconcile: %q, want %q", format(got), format(want))
	}
	// Nothing stale is left in the sets or the FDB.
	c := l.nft()
	n := 0
	for _, r := range allRoles {
		els, err := c.GetSetElements(e2.rs.roles[r])
		must(t, err)
		n += len(els)
	}
	if n != 2 {
		t.Errorf("%d MACs in role sets after Reconcile, want 2", n)
	}
	if n := len(l.staticFDB()); n != 2 {
		t.Errorf("%d static FDB entries after Reconcile, want 2", n)
	}
	l.expectReach(l.eps[1], l.eps[2], false) // p1's old MAC is gone
	// Reconcile is idempotent.
	must(t, e2.Reconcile(bg, want))
	if n := l.ruleCount(DefaultTable); n != rules {
		t.Errorf("rule count %d after Reconcile, want %d", n, rules)
	}

	// Cleanup removes the table and unlocks the ports.
	must(t, e2.Cleanup(bg))
	if _, err := l.nft().ListTableOfFamily(DefaultTable, 7); err == nil {
		t.Error("table still there after Cleanup")
	}
	p0, err := l.h.LinkByName("p0")
	must(t, err)
	pi, err := e2.portInfo(p0.Attrs().Index)
	must(t, err)
	if pi.Locked || !pi.Learning {
		t.Errorf("after Cleanup p0 locked=%t learning=%t", pi.Locked, pi.Learning)
	}
	l.expectReach(l.eps[1], l.eps[2], true)
}

// TestVLAN checks the PVID is applied, read back and replaced.
func TestVLAN(t *testing.T) {
	t.Parallel()
	l := newLab(t, 2)
	cfg := l.config()
	cfg.VLANs = true
	e, err := New(cfg)
	if errors.Is(err, ErrKernelSupport) {
		t.Skipf("kernel without bridge VLAN filtering (CONFIG_BRIDGE_VLAN_FILTERING): %v", err)
	}
	must(t, err)
	t.Cleanup(func() { e.Close() })
	br, err := l.h.LinkByName("br0")
	must(t, err)
	if vf := br.(*netlink.Bridge).VlanFiltering; vf == nil || !*vf {
		t.Fatal("vlan_filtering not on")
	}
	must(t, e.Lock(bg, "p0"))
	mac := l.eps[0].MAC
	for _, vlan := range []int{100, 200, 0} {
		must(t, e.Bind(bg, pep.Binding{Port: "p0", MAC: mac, Role: RoleAdmit, VLAN: vlan}))
		got, err := e.Bindings(bg)
		must(t, err)
		if want := []string{fmt.Sprintf("p0 %s admit %d", mac, vlan)}; !slices.Equal(format(got), want) {
			t.Errorf("VLAN %d: Bindings = %q, want %q", vlan, format(got), want)
		}
		wantVID := max(vlan, defaultPVID)
		if vids := l.portVLANs("p0"); !slices.Equal(vids, []string{fmt.Sprintf("%d pvid untagged", wantVID)}) {
			t.Errorf("VLAN %d: port VLANs %q", vlan, vids)
		}
		if fdb := l.staticFDB(); len(fdb) != 1 || fdb[0].Vlan != wantVID {
			t.Errorf("VLAN %d: FDB %v", vlan, fdb)
		}
	}
	// Without VLANs configured, a binding with a VLAN is refused.
	l2 := newLab(t, 1)
	e2 := l2.newEnforcer(l2.config())
	must(t, e2.Lock(bg, "p0"))
	if err := e2.Bind(bg, pep.Binding{Port: "p0", MAC: mac, Role: RoleAdmit, VLAN: 5}); !errIs(err, ErrVLANsOff) {
		t.Errorf("Bind with VLAN, VLANs off: %v", err)
	}
}

// TestLockFlags checks the kernel port flags Lock sets, with and without MAB, and that Lock
// flushes MACs learned before.
func TestLockFlags(t *testing.T) {
	t.Parallel()
	for _, mab := range []bool{false, true} {
		t.Run(fmt.Sprintf("mab=%t", mab), func(t *testing.T) {
			l := newLab(t, 2)
			cfg := l.config()
			cfg.MAB = mab
			e := l.newEnforcer(cfg)
			l.expectReach(l.eps[0], l.eps[1], true) // the bridge learns e0's MAC on p0
			if len(l.learned("p0")) == 0 {
				t.Fatal("nothing learned on p0 before Lock")
			}
			must(t, e.Lock(bg, "p0"))
			p0, err := l.h.LinkByName("p0")
			must(t, err)
			pi, err := e.portInfo(p0.Attrs().Index)
			must(t, err)
			if !pi.Locked || pi.MAB != mab || pi.Learning != mab {
				t.Errorf("flags: locked=%t mab=%t learning=%t", pi.Locked, pi.MAB, pi.Learning)
			}
			if n := l.learned("p0"); len(n) != 0 {
				t.Errorf("learned entries left after Lock: %v", n)
			}
			l.expectReach(l.eps[0], l.eps[1], false)
			if mab { // the kernel reports the unknown MAC as a locked entry
				found := false
				for _, n := range l.fdb("p0") {
					found = found || n.HardwareAddr.String() == l.eps[0].MAC.String() && n.FlagsExt&ntfExtLocked != 0
				}
				if !found {
					t.Error("no locked FDB entry for the unknown MAC with MAB on")
				}
			}
			// Idempotent.
			must(t, e.Lock(bg, "p0"))
			if err := e.Lock(bg, "nonexistent"); err == nil {
				t.Error("Lock on a missing port succeeded")
			}
		})
	}
}

// TestErrors checks the errors callers test for.
func TestErrors(t *testing.T) {
	t.Parallel()
	l := newLab(t, 2)
	e := l.newEnforcer(l.config())
	must(t, l.h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "loose0"}, PeerName: "loose1"}))
	must(t, e.Lock(bg, "p0"))
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	for _, tc := range []struct {
		name string
		b    pep.Binding
		want error
	}{
		{"ok", pep.Binding{Port: "p0", MAC: mac, Role: RoleAssess}, nil},
		{"unknown role", pep.Binding{Port: "p0", MAC: mac, Role: "deny"}, ErrInvalidBinding},
		{"short MAC", pep.Binding{Port: "p0", MAC: mac[:5], Role: RoleAdmit}, ErrInvalidBinding},
		{"multicast MAC", pep.Binding{Port: "p0", MAC: net.HardwareAddr{1, 0, 0x5e, 0, 0, 1}, Role: RoleAdmit}, ErrInvalidBinding},
		{"VLAN range", pep.Binding{Port: "p0", MAC: mac, Role: RoleAdmit, VLAN: 4095}, ErrInvalidBinding},
		{"not locked", pep.Binding{Port: "p1", MAC: mac, Role: RoleAdmit}, ErrNotLocked},
		{"empty port", pep.Binding{MAC: mac, Role: RoleAdmit}, ErrInvalidBinding},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := e.Bind(bg, tc.b); !errIs(err, tc.want) {
				t.Errorf("Bind: %v, want %v", err, tc.want)
			}
		})
	}
	if err := e.Lock(bg, "loose0"); !errIs(err, ErrNotBridgePort) {
		t.Errorf("Lock on a non-port: %v", err)
	}
	if err := e.Reconcile(bg, []pep.Binding{{Port: "p0", MAC: mac, Role: "bogus"}}); !errIs(err, ErrInvalidBinding) {
		t.Errorf("Reconcile with a bad binding: %v", err)
	}
	if _, err := New(Config{Bridge: "loose0", NetNSPath: l.config().NetNSPath}); !errIs(err, ErrInvalidConfig) {
		t.Errorf("New on a non-bridge: %v", err)
	}
	must(t, e.Close())
	if err := e.Lock(bg, "p0"); !errIs(err, ErrClosed) {
		t.Errorf("Lock after Close: %v", err)
	}
}

// format renders bindings for comparison.
func format(bs []pep.Binding) []string {
	var out []string
	for _, b := range bs {
		out = append(out, fmt.Sprintf("%s %s %s %d", b.Port, b.MAC, b.Role, b.VLAN))
	}
	slices.Sort(out)
	return out
}

// fdb lists the bridge FDB entries on a port.
func (l *lab) fdb(port string) []netlink.Neigh {
	p, err := l.h.LinkByName(port)
	must(l.t, err)
	all, err := l.h.NeighList(p.Attrs().Index, unix.AF_BRIDGE)
	must(l.t, err)
	var out []netlink.Neigh
	for _, n := range all {
		if n.LinkIndex == p.Attrs().Index && isBridgeFDB(n) {
			out = append(out, n)
		}
	}
	return out
}

// learned lists the dynamic (learned, not locked) entries on a port.
func (l *lab) learned(port string) []netlink.Neigh {
	var out []netlink.Neigh
	for _, n := range l.fdb(port) {
		if n.State&(netlink.NUD_NOARP|netlink.NUD_PERMANENT) == 0 && n.FlagsExt&ntfExtLocked == 0 {
			out = append(out, n)
		}
	}
	return out
}

// staticFDB lists the static entries on all the lab's ports.
func (l *lab) staticFDB() []netlink.Neigh {
	var out []netlink.Neigh
	for _, ep := range l.eps {
		for _, n := range l.fdb(ep.Port) {
			if isOurFDB(n) {
				out = append(out, n)
			}
		}
	}
	return out
}

// portVLANs describes the VLANs of a port as "vid [pvid] [untagged]".
func (l *lab) portVLANs(port string) []string {
	p, err := l.h.LinkByName(port)
	must(l.t, err)
	all, err := l.h.BridgeVlanList()
	must(l.t, err)
	var out []string
	for _, v := range all[int32(p.Attrs().Index)] {
		s := fmt.Sprint(v.Vid)
		if v.PortVID() {
			s += " pvid"
		}
		if v.EngressUntag() {
			s += " untagged"
		}
		out = append(out, strings.TrimSpace(s))
	}
	return out
}

// ntfExtLocked is NTF_EXT_LOCKED (linux/neighbour.h): an FDB entry the kernel made for an
// unknown MAC on a locked port with MAB on.
const ntfExtLocked = 1 << 1

// TestBindMovesMAC checks Bind replaces an earlier binding of the MAC on another port (an
// endpoint, or a VM, that moved) and that Unbind on the old port then leaves the new one alone.
func TestBindMovesMAC(t *testing.T) {
	t.Parallel()
	l := newLab(t, 3)
	e := l.newEnforcer(l.config())
	must(t, e.Lock(bg, "p0"))
	must(t, e.Lock(bg, "p1"))
	mac := l.eps[0].MAC
	must(t, e.Bind(bg, pep.Binding{Port: "p0", MAC: mac, Role: RoleAdmit}))
	must(t, e.Bind(bg, pep.Binding{Port: "p1", MAC: mac, Role: RoleAssess}))
	got, err := e.Bindings(bg)
	must(t, err)
	if want := []string{fmt.Sprintf("p1 %s assess 0", mac)}; !slices.Equal(format(got), want) {
		t.Errorf("after move: %q, want %q", format(got), want)
	}
	l.expectReach(l.eps[0], l.eps[2], false) // the FDB entry now points at p1
	must(t, e.Unbind(bg, "p0", mac))
	got, err = e.Bindings(bg)
	must(t, err)
	if want := []string{fmt.Sprintf("p1 %s assess 0", mac)}; !slices.Equal(format(got), want) {
		t.Errorf("after Unbind on the old port: %q, want %q", format(got), want)
	}
	must(t, e.Unbind(bg, "p1", mac))
	if got, err = e.Bindings(bg); err != nil || len(got) != 0 {
		t.Errorf("after Unbind: %q, %v", format(got), err)
	}
	if fdb := l.staticFDB(); len(fdb) != 0 {
		t.Errorf("static FDB after Unbind: %v", fdb)
	}
}

// TestExpires checks a binding's Expires is kept in the kernel (set element timeout), read back
// and enforced without the PEP doing anything.
func TestExpires(t *testing.T) {
	t.Parallel()
	l := newLab(t, 2)
	e := l.newEnforcer(l.config())
	must(t, e.Lock(bg, "p0"))
	a, srv := l.eps[0], l.eps[1]
	if err := e.Bind(bg, pep.Binding{Port: "p0", MAC: a.MAC, Role: RoleAdmit, Expires: time.Now().Add(-time.Second)}); !errIs(err, ErrExpired) {
		t.Errorf("Bind with a past Expires: %v", err)
	}
	expires := time.Now().Add(1200 * time.Millisecond)
	must(t, e.Bind(bg, pep.Binding{Port: "p0", MAC: a.MAC, Role: RoleAdmit, Expires: expires}))
	got, err := e.Bindings(bg)
	must(t, err)
	if len(got) != 1 || got[0].Expires.Sub(expires).Abs() > 100*time.Millisecond {
		t.Fatalf("Bindings = %+v, want one expiring at %s", got, expires.Format(time.StampMilli))
	}
	l.expectReach(a, srv, true)
	time.Sleep(time.Until(expires) + 100*time.Millisecond)
	l.expectReach(a, srv, false)
	if got, err := e.Bindings(bg); err != nil || len(got) != 0 {
		t.Errorf("after expiry: %+v, %v", got, err)
	}
	// A re-Bind (re-authentication) without Expires clears the timeout.
	must(t, e.Bind(bg, pep.Binding{Port: "p0", MAC: a.MAC, Role: RoleAdmit, Expires: time.Now().Add(time.Hour)}))
	must(t, e.Bind(bg, pep.Binding{Port: "p0", MAC: a.MAC, Role: RoleAdmit}))
	if got, err := e.Bindings(bg); err != nil || len(got) != 1 || !got[0].Expires.IsZero() {
		t.Errorf("after re-Bind without Expires: %+v, %v", got, err)
	}
}
