package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	tradius "trustnac/transport/radius"
)

// transaction runs the i-th measured unit and classifies it; rounds is the number of RADIUS round
// trips it took. err explains outError (and is kept as a sample).
type transaction func(ctx context.Context, i uint64) (o outcome, rounds int, err error)

// options are the command-line flags.
type options struct {
	addr, secret, mode string
	concurrency, n     int
	duration, warmup   time.Duration
	macs               int
	user, password     string
	identity           string
	nasIP              string
	timeout            time.Duration
	retries            int
	expectFilter       string
	expectVLAN         string
	expectFilterOther  string
	expectVLANOther    string
	ca, serverName     string
	tlsVersion         string
	osRoot, pin        string
	keyExchange        string
	serverPID          int
	expectPosture      string
	maxFailures        float64
	json               bool
	cpuProfile         string
}

func main() {
	// radload shares the CPUs with the server it measures: collecting its garbage a quarter as
	// often leaves more of them to the server (GOGC in the environment still decides).
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("radload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.addr, "addr", "127.0.0.1:1812", "RADIUS authentication server `host:port`")
	fs.StringVar(&o.secret, "secret", "testing123", "shared secret")
	fs.StringVar(&o.mode, "mode", "mab", "mab | pap | ttls-pap | ttls-posture")
	fs.IntVar(&o.concurrency, "c", 64, "transactions in flight")
	fs.DurationVar(&o.duration, "d", 10*time.Second, "measured duration (after -warmup)")
	fs.IntVar(&o.n, "n", 0, "measure this many transactions instead of -d")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "load before measuring starts")
	fs.IntVar(&o.macs, "macs", 1000, "distinct MACs cycled, from 02:00:00:00:00:01 up")
	fs.StringVar(&o.user, "user", "alice", "PAP user")
	fs.StringVar(&o.password, "password", "alice-password", "PAP password")
	fs.StringVar(&o.identity, "identity", "", "ttls-pap: outer EAP identity (default -user); ttls-posture sends the agent's, anonymous")
	fs.StringVar(&o.nasIP, "nas-ip", "127.0.0.1", "NAS-IP-Address sent")
	fs.DurationVar(&o.timeout, "timeout", 2*time.Second, "wait for a reply per try")
	fs.IntVar(&o.retries, "retries", 0, "retransmissions after the first try")
	fs.StringVar(&o.expectFilter, "expect-filter", "", "Filter-Id every Accept must carry (MAB: that of 02:00:00:00:00:01)")
	fs.StringVar(&o.expectVLAN, "expect-vlan", "", "Tunnel-Private-Group-Id every Accept must carry (MAB: that of 02:00:00:00:00:01)")
	fs.StringVar(&o.expectFilterOther, "expect-filter-other", "", "MAB: Filter-Id for the other MACs (default -expect-filter)")
	fs.StringVar(&o.expectVLANOther, "expect-vlan-other", "", "MAB: Tunnel-Private-Group-Id for the other MACs (default -expect-vlan)")
	fs.StringVar(&o.ca, "ca", "", "ttls: PEM `file` of the CA that issued the server certificate (ttls-pap: required; ttls-posture: this or -pin)")
	fs.StringVar(&o.serverName, "server-name", "", "ttls: name the server certificate must carry (required with -ca)")
	fs.StringVar(&o.tlsVersion, "tls", "", "ttls-pap: TLS version, 1.2 (default) or 1.3; ttls-posture: the agent speaks 1.3 only")
	fs.StringVar(&o.osRoot, "os-root", "testbed/fixtures/healthy", "ttls-posture: root `dir` the agent's OS collector reads (etc/os-release, proc/...)")
	fs.StringVar(&o.pin, "pin", "", "ttls-posture: the server certificate's `sha256:hex` fingerprint, instead of or besides -ca")
	fs.StringVar(&o.keyExchange, "key-exchange", "", "ttls-posture: what the agent's TLS offers first, hybrid (default, X25519MLKEM768) or classic (X25519)")
	fs.StringVar(&o.expectPosture, "expect-posture", "", "ttls-posture: role the agent must learn from the posture result (admit, remediate, isolate, assess, deny)")
	fs.Float64Var(&o.maxFailures, "max-failures", 0.01, "exit 1 when rejects+timeouts exceed this fraction of transactions")
	fs.BoolVar(&o.json, "json", false, "print one JSON object")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write radload's own CPU profile to `file`")
	fs.IntVar(&o.serverPID, "server-pid", 0, "report the CPU time this server `process` (all its threads) spends per transaction, from /proc")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	switch {
	case o.concurrency < 1:
		return nil, errors.New("-c must be at least 1")
	case o.n < 0 || (o.n == 0 && o.duration <= 0):
		return nil, errors.New("give -d > 0 or -n > 0")
	case o.macs < 1 || o.macs > 1<<24:
		return nil, errors.New("-macs must be between 1 and 2^24")
	case o.secret == "":
		return nil, errors.New("-secret is empty")
	}
	if o.identity == "" {
		o.identity = o.user
	}
	if o.expectFilterOther == "" {
		o.expectFilterOther = o.expectFilter
	}
	if o.expectVLANOther == "" {
		o.expectVLANOther = o.expectVLAN
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "radload:", err)
		return 2
	}
	nasIP, err := netip.ParseAddr(o.nasIP)
	if err != nil || !nasIP.Is4() {
		fmt.Fprintf(stderr, "radload: -nas-ip %q is not an IPv4 address\n", o.nasIP)
		return 2
	}
	retries := o.retries
	if retries == 0 {
		retries = -1 // tradius: 0 is its default of 2, negative is none
	}
	client := &tradius.Client{Secret: []byte(o.secret), Timeout: o.timeout, Retries: retries}
	defer client.Close()
	g := &generator{opts: o, client: client, secret: []byte(o.secret), nasIP: nasIP}
	tx, err := g.transaction()
	if err != nil {
		fmt.Fprintln(stderr, "radload:", err)
		return 2
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "radload:", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "radload:", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}
	s := measure(ctx, o, tx)
	s.Mode, s.Addr, s.Concurrency = o.mode, o.addr, o.concurrency
	if o.json {
		e := json.NewEncoder(stdout)
		if err := e.Encode(s); err != nil {
			fmt.Fprintln(stderr, "radload:", err)
			return 1
		}
	} else {
		s.printText(stdout)
	}
	total := s.Total()
	switch {
	case total == 0:
		fmt.Fprintln(stderr, "radload: nothing measured")
		return 1
	case s.Error > 0:
		fmt.Fprintf(stderr, "radload: %d transactions failed their checks\n", s.Error)
		return 1
	case float64(s.Reject+s.Timeout) > o.maxFailures*float64(total):
		fmt.Fprintf(stderr, "radload: %d rejects and %d timeouts of %d exceed -max-failures %g\n", s.Reject, s.Timeout, total, o.maxFailures)
		return 1
	}
	return 0
}

// measure runs -c workers, each one transaction after the other: first for -warmup without
// recording, then for -d (or until -n transactions started after the warm-up).
func measure(ctx context.Context, o *options, tx transaction) Summary {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	from := start.Add(o.warmup)
	until := from.Add(o.duration)
	var seq, tickets atomic.Uint64
	recs := make([]*recorder, o.concurrency)
	var wg sync.WaitGroup
	for w := range recs {
		r := &recorder{}
		recs[w] = r
		wg.Go(func() {
			for ctx.Err() == nil {
				t0 := time.Now()
				measured := !t0.Before(from)
				if o.n == 0 && !t0.Before(until) {
					return
				}
				if measured && o.n > 0 && tickets.Add(1) > uint64(o.n) {
					return
				}
				out, rounds, err := tx(ctx, seq.Add(1)-1)
				if ctx.Err() != nil {
					return // interrupted: the transaction did not finish on its own
				}
				if measured {
					r.add(out, time.Since(t0), rounds, err)
				}
			}
		})
	}
	meter := &cpuMeter{serverPID: o.serverPID}
	started := make(chan struct{})
	begin := time.AfterFunc(time.Until(from), func() { meter.start(); close(started) })
	wg.Wait()
	if begin.Stop() {
		meter.start() // ended before the warm-up did: nothing was measured
	} else {
		<-started
	}
	meter.stop()
	s := summarize(merge(recs), time.Since(from))
	meter.perTransaction(&s)
	return s
}
