//go:build linux

package eapol

import (
	"context"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"trustnac/transport/eap"
)

// testNetns is a fresh network namespace; the test's process stays in its own.
type testNetns struct{ fd int }

func newTestNetns(t *testing.T) *testNetns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces, veth pairs and AF_PACKET sockets")
	}
	runtime.LockOSThread()
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer unix.Close(orig)
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		t.Skipf("cannot create a network namespace: %v", err)
	}
	fd, ferr := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
		t.Fatalf("cannot return to the original namespace: %v", err) // thread stays locked and dies
	}
	runtime.UnlockOSThread()
	if ferr != nil {
		t.Fatal(ferr)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return &testNetns{fd: fd}
}

// do runs fn on a thread inside the namespace; sockets fn opens and processes it starts stay
// there.
func (n *testNetns) do(t *testing.T, fn func() error) error {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if err := unix.Setns(n.fd, unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// vethPair creates two connected veth interfaces with fixed MACs in the namespace, both up.
func (n *testNetns) vethPair(t *testing.T, a, b string, macA, macB net.HardwareAddr) {
	t.Helper()
	err := n.do(t, func() error {
		v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: a, HardwareAddr: macA}, PeerName: b, PeerHardwareAddr: macB}
		if err := netlink.LinkAdd(v); err != nil {
			return err
		}
		for _, name := range []string{"lo", a, b} {
			l, err := netlink.LinkByName(name)
			if err != nil {
				return err
			}
			if err := netlink.LinkSetUp(l); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("veth pair: %v", err)
	}
}

func (n *testNetns) open(t *testing.T, ifname string) *Conn {
	t.Helper()
	var c *Conn
	if err := n.do(t, func() (err error) { c, err = Open(ifname); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestVeth(t *testing.T) {
	ns := newTestNetns(t)
	ns.vethPair(t, "pep0", "agent0", macAuth, macSupp)
	ac := ns.open(t, "pep0")
	sc := ns.open(t, "agent0")
	if got := ac.HardwareAddr().String(); got != macAuth.String() {
		t.Fatalf("HardwareAddr %s", got)
	}
	ev := newEvents()
	a := &Authenticator{Conn: ac, Port: "pep0", Backend: newFakeBackend(), TxPeriod: time.Second, QuietPeriod: time.Second}
	ev.wire(a)
	runBG(t, func(ctx context.Context) {
		if err := a.Run(ctx); err != nil {
			t.Errorf("Authenticator.Run: %v", err)
		}
	})

	t.Run("success and logoff", func(t *testing.T) {
		outcomes := make(chan eap.Outcome, 4)
		cancel, errc := runSupplicant(t, sc, newEchoPeer("alice", false), outcomes)
		r := ev.result(t, wait)
		if !r.r.Accept || r.mac != macSupp.String() || r.r.Role != "admit" {
			t.Fatalf("result %+v", r)
		}
		if o := <-outcomes; o != eap.Succeeded {
			t.Fatalf("outcome %v", o)
		}
		cancel()
		<-errc
		if m := ev.logoff(t, wait); m != macSupp.String() {
			t.Fatalf("logoff from %s", m)
		}
	})

	t.Run("malformed frames counted", func(t *testing.T) {
		before := ac.Stats().Malformed
		src := []byte{0x02, 0xcc, 0, 0, 0, 9}
		hdr := append(append(append([]byte{}, PAEGroupAddr...), src...), 0x88, 0x8e)
		bad := [][]byte{
			append(append([]byte{}, hdr...), 2, 1, 0, 50),                   // body longer than the frame
			append(append([]byte{}, hdr...), 2, 0, 0, 4, 2, 1, 0, 40),       // EAP Length beyond the body
			append(append([]byte{}, hdr...), 0, 1, 0, 0),                    // version 0
			append(append([]byte{}, hdr...), 2),                             // short PDU
			append(append(append([]byte{}, hdr[:12]...), 0x88, 0x8e), 2, 0), // short PDU, padded below
		}
		for _, b := range bad {
			for len(b) < MinEthernetFrame && len(b) > 16 && b[14] != 2 {
				b = append(b, 0)
			}
			if err := sc.writeRaw(b); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, "malformed count", func() bool { return ac.Stats().Malformed-before >= uint64(len(bad)) })
		if got := ac.Stats().Malformed - before; got != uint64(len(bad)) {
			t.Fatalf("malformed %d, want %d", got, len(bad))
		}
	})

	t.Run("flood rate limited", func(t *testing.T) {
		ac.SetRateLimit(RateLimit{Rate: 10, Burst: 20})
		startsBefore := a.Stats().Starts
		lim := ac.Stats().RateLimited
		begin := time.Now()
		const flood = 1000
		for range flood {
			if err := sc.WriteTo(macAuth, &Frame{Version: 2, Type: TypeStart}); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, "rate limiting", func() bool { return ac.Stats().RateLimited-lim > flood/2 })
		time.Sleep(100 * time.Millisecond) // let the tail of the flood arrive
		elapsed := time.Since(begin).Seconds()
		acted := a.Stats().Starts - startsBefore
		if maxOK := uint64(20 + 10*elapsed + 1); acted > maxOK || acted == 0 {
			t.Fatalf("%d Starts acted on in %.2fs, want 1..%d", acted, elapsed, maxOK)
		}
		t.Logf("flood: %d acted on, %d dropped by the limiter", acted, ac.Stats().RateLimited-lim)
	})
}
