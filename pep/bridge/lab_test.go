package bridge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// lab is a bridge in its own network namespace with veth ports to endpoint namespaces: the
// real-kernel test bed of this package. Every test builds its own.
type lab struct {
	t      testing.TB
	host   string // namespace holding the bridge br0
	hostNS netns.NsHandle
	h      *netlink.Handle
	eps    []*endpoint
}

// endpoint is one namespace behind bridge port Port, with interface If at IP.
type endpoint struct {
	NS   string
	Port string
	If   string
	IP   netip.Addr
	MAC  net.HardwareAddr
}

var labSeq atomic.Int32

// needRoot skips tests that need CAP_NET_ADMIN and network namespaces.
func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces, bridges and nftables tables")
	}
}

// newNS creates a named network namespace and removes it when the test ends.
func newNS(t testing.TB, name string) netns.NsHandle {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("get netns: %v", err)
	}
	defer orig.Close()
	h, err := netns.NewNamed(name)
	if err != nil {
		netns.Set(orig)
		runtime.UnlockOSThread()
		t.Skipf("cannot create network namespace (%v): needs root with namespace support", err)
	}
	if err := netns.Set(orig); err != nil {
		t.Fatalf("restore netns: %v", err) // thread stays locked and dies with the goroutine
	}
	runtime.UnlockOSThread()
	t.Cleanup(func() {
		h.Close()
		netns.DeleteNamed(name)
	})
	return h
}

// newLab builds br0 with n endpoints: endpoint i has port p<i>, interface e<i>, IP
// 10.99.0.<i+1>/24 and MAC 02:00:00:00:00:<i+1>.
func newLab(t testing.TB, n int) *lab {
	t.Helper()
	needRoot(t)
	id := fmt.Sprintf("tnac%d-%d", os.Getpid()%100000, labSeq.Add(1))
	l := &lab{t: t, host: id + "-br"}
	l.hostNS = newNS(t, l.host)
	var err error
	if l.h, err = netlink.NewHandleAt(l.hostNS); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.h.Close)
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0"}}
	must(t, l.h.LinkAdd(br))
	must(t, l.h.LinkSetUp(br))
	for i := range n {
		ep := &endpoint{
			NS:   fmt.Sprintf("%s-e%d", id, i),
			Port: fmt.Sprintf("p%d", i),
			If:   fmt.Sprintf("e%d", i),
			IP:   netip.AddrFrom4([4]byte{10, 99, 0, byte(i + 1)}),
			MAC:  net.HardwareAddr{2, 0, 0, 0, 0, byte(i + 1)},
		}
		ens := newNS(t, ep.NS)
		must(t, l.h.LinkAdd(&netlink.Veth{
			LinkAttrs: netlink.LinkAttrs{Name: ep.Port}, PeerName: ep.If,
			PeerHardwareAddr: ep.MAC, PeerNamespace: netlink.NsFd(int(ens)),
		}))
		port, err := l.h.LinkByName(ep.Port)
		must(t, err)
		must(t, l.h.LinkSetMaster(port, br))
		must(t, l.h.LinkSetUp(port))
		eh, err := netlink.NewHandleAt(ens)
		must(t, err)
		ifc, err := eh.LinkByName(ep.If)
		must(t, err)
		must(t, eh.AddrAdd(ifc, &netlink.Addr{IPNet: &net.IPNet{IP: ep.IP.AsSlice(), Mask: net.CIDRMask(24, 32)}}))
		must(t, eh.LinkSetUp(ifc))
		lo, err := eh.LinkByName("lo")
		must(t, err)
		must(t, eh.LinkSetUp(lo))
		eh.Close()
		l.listen(ep)
		l.eps = append(l.eps, ep)
	}
	return l
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// inNS runs f on a thread switched into the named namespace; sockets f opens stay there.
func inNS(t testing.TB, name string, f func()) {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer orig.Close()
	target, err := netns.GetFromName(name)
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	f()
	if err := netns.Set(orig); err != nil {
		t.Fatalf("restore netns: %v", err) // thread stays locked and dies with the goroutine
	}
	runtime.UnlockOSThread()
}

// listen accepts TCP connections on port 80 of the endpoint until the test ends.
func (l *lab) listen(ep *endpoint) {
	var ln net.Listener
	inNS(l.t, ep.NS, func() {
		var err error
		ln, err = net.Listen("tcp", netip.AddrPortFrom(ep.IP, 80).String())
		must(l.t, err)
	})
	l.t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
}

// reach tells whether a TCP connection from endpoint from to endpoint to succeeds.
func (l *lab) reach(from, to *endpoint, timeout time.Duration) bool {
	var err error
	inNS(l.t, from.NS, func() {
		var c net.Conn
		d := net.Dialer{Timeout: timeout}
		c, err = d.Dial("tcp", netip.AddrPortFrom(to.IP, 80).String())
		if err == nil {
			c.Close()
		}
	})
	return err == nil
}

// expectReach checks reachability both ways round: an expected success gets a few tries (the
// first can race neighbour resolution), an expected failure one short try.
func (l *lab) expectReach(from, to *endpoint, want bool) {
	l.t.Helper()
	got := false
	if want {
		for range 3 {
			if got = l.reach(from, to, 500*time.Millisecond); got {
				break
			}
		}
	} else {
		got = l.reach(from, to, 250*time.Millisecond)
	}
	if got != want {
		l.t.Errorf("%s → %s: reachable=%t, want %t", from.IP, to.IP, got, want)
	}
}

// setMAC changes an endpoint's MAC (to spoof another) and flushes its neighbours.
func (l *lab) setMAC(ep *endpoint, mac net.HardwareAddr) {
	ens, err := netns.GetFromName(ep.NS)
	must(l.t, err)
	defer ens.Close()
	eh, err := netlink.NewHandleAt(ens)
	must(l.t, err)
	defer eh.Close()
	ifc, err := eh.LinkByName(ep.If)
	must(l.t, err)
	must(l.t, eh.LinkSetHardwareAddr(ifc, mac))
}

// config returns an enforcer Config for the lab's bridge.
func (l *lab) config() Config {
	return Config{Bridge: "br0", NetNSPath: "/var/run/netns/" + l.host}
}

// newEnforcer starts an enforcer on the lab and closes it when the test ends.
func (l *lab) newEnforcer(cfg Config) *Enforcer {
	l.t.Helper()
	e, err := New(cfg)
	must(l.t, err)
	l.t.Cleanup(func() { e.Close() })
	return e
}

// nft opens an nftables connection to the lab's namespace, for inspecting what New built.
func (l *lab) nft() *nftables.Conn {
	c, err := nftables.New(nftables.WithNetNSFd(int(l.hostNS)))
	must(l.t, err)
	return c
}

// ruleCount counts the rules in the enforcer's chains.
func (l *lab) ruleCount(table string) int {
	c := l.nft()
	tb := &nftables.Table{Name: table, Family: nftables.TableFamilyBridge}
	n := 0
	for _, ch := range []string{chainForward, chainOut, chainIn} {
		rules, err := c.GetRules(tb, &nftables.Chain{Name: ch, Table: tb})
		must(l.t, err)
		n += len(rules)
	}
	return n
}

var bg = context.Background()

// errIs is a small helper for error tables.
func errIs(err, target error) bool {
	if target == nil {
		return err == nil
	}
	return errors.Is(err, target)
}
