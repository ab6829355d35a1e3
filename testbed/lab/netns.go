package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ErrNotRoot is returned by what needs root (namespaces, bridges).
var ErrNotRoot = errors.New("lab: needs root (network namespaces, bridges, nftables)")

// cmdTimeout bounds each helper command (ip, bridge, nft, tpm2-tools).
const cmdTimeout = 20 * time.Second

// run runs a command and returns its output; the error carries the output.
func run(ctx context.Context, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("lab: %s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// ip runs ip(8).
func ip(ctx context.Context, args ...string) error {
	_, err := run(ctx, "ip", args...)
	return err
}

// netnsExists reports whether the named namespace exists.
func netnsExists(name string) bool {
	_, err := os.Stat("/run/netns/" + name)
	return err == nil
}

// listNetns returns the namespaces whose names start with prefix.
func listNetns(prefix string) []string {
	ents, err := os.ReadDir("/run/netns")
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	return out
}

// InNetns runs fn on an OS thread that has entered the named network
// namespace; sockets fn creates belong to it. The thread is given back
// only when it could return to the original namespace.
func InNetns(name string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("lab: own netns: %w", err)
			return
		}
		defer unix.Close(orig)
		target, err := unix.Open("/run/netns/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("lab: netns %s: %w", name, err)
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("lab: setns %s: %w", name, err)
			return
		}
		ferr := fn()
		if unix.Setns(orig, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		} // else the goroutine ends locked and Go discards the thread
		errc <- ferr
	}()
	return <-errc
}

// probeTimeout bounds one TCP probe.
const probeTimeout = 400 * time.Millisecond

// dial reports whether a TCP connection to dst opens from namespace ns.
func dial(ns string, dst netip.AddrPort, timeout time.Duration) bool {
	ok := false
	InNetns(ns, func() error {
		c, err := net.DialTimeout("tcp", dst.String(), timeout)
		if err == nil {
			ok = true
			c.Close()
		}
		return nil
	})
	return ok
}

// ProbeReach probes the PDP, the remediation server and the server from
// namespace ns, each with a TCP connection.
func ProbeReach(ns string) Reach {
	var r Reach
	type res struct {
		i  int
		ok bool
	}
	ch := make(chan res, 3)
	for i, dst := range []netip.AddrPort{probePDP, probeRemedy, probeServer} {
		go func() { ch <- res{i, dial(ns, dst, probeTimeout)} }()
	}
	for range 3 {
		x := <-ch
		switch x.i {
		case 0:
			r.PDP = x.ok
		case 1:
			r.Remedy = x.ok
		case 2:
			r.Server = x.ok
		}
	}
	return r
}

// portLocked reports whether bridge port port in the hypervisor namespace
// has the kernel's locked flag.
func portLocked(ctx context.Context, port string) bool {
	out, err := run(ctx, "bridge", "-n", NSHypervisor, "-d", "link", "show", "dev", port)
	if err != nil {
		return false
	}
	return regexp.MustCompile(`\blocked on\b`).MatchString(out)
}

var macRE = regexp.MustCompile(`(?i)\b[0-9a-f]{2}(?::[0-9a-f]{2}){5}\b`)

var setRE = regexp.MustCompile(`(?s)\bset ([a-z0-9_-]+) \{(.*?)\n\s*\}`)

// roleSets reads the PEP's nftables role sets with one `nft list table`:
// MAC → role, for the roles the bridge enforcer keeps.
func roleSets(ctx context.Context, table string) map[string]string {
	out := map[string]string{}
	s, err := run(ctx, "ip", "netns", "exec", NSHypervisor, "nft", "list", "table", "bridge", table)
	if err != nil {
		return out
	}
	return parseRoleSets(s)
}

// parseRoleSets reads `nft list table` output.
func parseRoleSets(s string) map[string]string {
	out := map[string]string{}
	for _, m := range setRE.FindAllStringSubmatch(s, -1) {
		switch m[1] {
		case "admit", "remediate", "assess", "isolate":
		default:
			continue
		}
		if i := strings.Index(m[2], "elements"); i >= 0 {
			for _, mac := range macRE.FindAllString(m[2][i:], -1) {
				out[strings.ToLower(mac)] = m[1]
			}
		}
	}
	return out
}

func mustAddrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
