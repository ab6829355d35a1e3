package lab

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"trustnac/pdp"
)

// BenchConfig configures Bench.
type BenchConfig struct {
	// N is the number of repetitions of each side (default 10).
	N int
	// Only runs one side: "nac" or "hostapd" ("" both).
	Only string
}

// The reference side of the benchmark: a bridge whose port is guarded by
// hostapd -D wired backed by FreeRADIUS, mirroring the lab's addresses in
// 10.78.0.0/24.
const (
	nsBenchHV  = Prefix + "b-hv"
	nsBenchRad = Prefix + "b-rad"
	nsBenchSrv = Prefix + "b-srv"
	nsBenchEP  = Prefix + "b-ep"
	benchBr    = "br-bench"
	benchPort  = "p-hb"
	benchMAC   = "02:78:00:00:00:11"
	benchUser  = "alice"
)

var (
	benchServer = netip.MustParseAddrPort("10.78.0.4:80")
	labServer   = probeServer
)

// Bench measures the time from link up to the first packet forwarded
// through the bridge, N times each, interleaved in the same run:
//
//   - nac: the lab's healthy terminal (nac agent, 802.1X with EAP-TTLS and
//     the TNC posture handshake inside: OS facts and a TPM quote checked
//     against reference values) on a port of nac pep, decided by nac pdp;
//   - hostapd: wpa_supplicant -D wired (EAP-TTLS/PAP, no posture) on a
//     locked port of another bridge, hostapd -D wired as the authenticator,
//     FreeRADIUS as the server, and hostapd_cli's action script adding the
//     FDB entry on AP-STA-CONNECTED (what makes hostapd's decision
//     forward packets on a locked port).
//
// Both endpoints have static ARP entries for their server, so the first
// forwarded TCP SYN (probes every 20 ms) marks the admission.
func (l *Lab) Bench(ctx context.Context, cfg BenchConfig, w io.Writer) error {
	if cfg.N <= 0 {
		cfg.N = 10
	}
	doNac := cfg.Only == "" || cfg.Only == "nac"
	doHostapd := cfg.Only == "" || cfg.Only == "hostapd"
	if !doNac && !doHostapd {
		return fmt.Errorf("lab: bench: --only %q: want nac or hostapd", cfg.Only)
	}
	var healthy *Endpoint
	for _, e := range l.Eps {
		if e.Name == "healthy" {
			healthy = e
		}
	}
	if healthy == nil {
		return errors.New("lab: bench: no healthy endpoint")
	}
	l.Eps = []*Endpoint{healthy}
	defer DownKeepLogs(context.Background(), l.Dir, l.Out)
	if err := l.Up(ctx); err != nil {
		return err
	}
	if err := staticARP(ctx, healthy.NS(), NSServer, AddrServer, healthy.Addr); err != nil {
		return err
	}
	if doHostapd {
		if err := l.benchReference(ctx); err != nil {
			return err
		}
	}
	type side struct {
		name       string
		ok         bool
		times, eap []time.Duration
		run        func() (round, error)
		watch      *eapolWatch
	}
	sides := []*side{
		{name: "nac", ok: doNac, run: func() (round, error) { return l.benchNac(ctx, healthy) }},
		{name: "hostapd", ok: doHostapd, run: func() (round, error) { return l.benchHostapd(ctx) }},
	}
	for i, ns := range []string{healthy.NS(), nsBenchEP} {
		if !sides[i].ok {
			continue
		}
		w, err := watchEAPOL(ns)
		if err != nil {
			return err
		}
		defer w.Close()
		sides[i].watch = w
	}
	fmt.Fprintf(w, "bench: link up → first forwarded packet, %d repetitions each, interleaved\n", cfg.N)
	for i := 0; i < cfg.N; i++ {
		for _, s := range sides {
			if !s.ok {
				continue
			}
			s.watch.Arm()
			r, err := s.run()
			if err != nil {
				return fmt.Errorf("%w (logs in %s/log)", err, l.Dir)
			}
			// From the first EAPOL frame on the endpoint's link on, what
			// is measured is the 802.1X conversation and the enforcement,
			// not when the supplicant chose to begin.
			first := s.watch.FirstAfter(r.linkUp)
			if first.IsZero() || first.After(r.forwarded) {
				return fmt.Errorf("lab: bench: %s: no EAPOL frame between link up and the first forwarded packet (%v after link up; EAPOL frames at %v)",
					s.name, r.forwarded.Sub(r.linkUp), s.watch.since(r.linkUp))
			}
			total, eap := r.forwarded.Sub(r.linkUp), r.forwarded.Sub(first)
			s.times, s.eap = append(s.times, total), append(s.eap, eap)
			fmt.Fprintf(w, "bench: %-8s #%-2d link up → forwarded %-8v first EAPOL frame → forwarded %v\n", s.name, i+1,
				total.Round(time.Millisecond), eap.Round(time.Millisecond))
		}
	}
	fmt.Fprintln(w)
	what := []string{
		"nac pep + nac pdp: 802.1X, EAP-TTLS, MSCHAPv2, PB-TNC posture (OS facts, TPM quote vs reference values)",
		"hostapd -D wired + FreeRADIUS 3.2 + wpa_supplicant -D wired: 802.1X, EAP-TTLS/PAP, no posture",
	}
	for i, s := range sides {
		if s.ok {
			fmt.Fprintf(w, "%s\n    link up → first forwarded packet: median %v (min %v, max %v)\n    first EAPOL frame → first forwarded packet: median %v (min %v, max %v)\n",
				what[i], median(s.times).Round(time.Millisecond), slices.Min(s.times).Round(time.Millisecond), slices.Max(s.times).Round(time.Millisecond),
				median(s.eap).Round(time.Millisecond), slices.Min(s.eap).Round(time.Millisecond), slices.Max(s.eap).Round(time.Millisecond))
		}
	}
	if doNac && doHostapd {
		fmt.Fprintf(w, "ratio nac/hostapd, link up → forwarded: %.2f; first EAPOL frame → forwarded: %.2f\n",
			float64(median(sides[0].times))/float64(median(sides[1].times)),
			float64(median(sides[0].eap))/float64(median(sides[1].eap)))
	}
	return nil
}

// round is one measurement: when the link came up and when the first
// packet was forwarded.
type round struct {
	linkUp, forwarded time.Time
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// staticARP makes the endpoint in epNS and the server in srvNS know each
// other's MAC, so that no ARP round trip blurs the measurement.
func staticARP(ctx context.Context, epNS, srvNS, srvAddr, epAddr string) error {
	em, err := macOf(ctx, epNS)
	if err != nil {
		return err
	}
	sm, err := macOf(ctx, srvNS)
	if err != nil {
		return err
	}
	if err := ip(ctx, "-n", epNS, "neigh", "replace", srvAddr, "lladdr", sm, "dev", "eth0", "nud", "permanent"); err != nil {
		return err
	}
	return ip(ctx, "-n", srvNS, "neigh", "replace", epAddr, "lladdr", em, "dev", "eth0", "nud", "permanent")
}

// firstPacket brings eth0 of ns up and probes dst every 20 ms until a TCP
// connection opens; it returns the time from link up.
func firstPacket(ctx context.Context, ns string, dst netip.AddrPort, srvMAC string) (round, error) {
	t0 := time.Now() // before: the link is up before ip(8) returns
	if err := ip(ctx, "-n", ns, "link", "set", "eth0", "up"); err != nil {
		return round{}, err
	}
	if err := serverARP(ctx, ns, dst, srvMAC); err != nil {
		return round{}, err
	}
	return probeFrom(ctx, ns, dst, t0)
}

// serverARP (re)makes the endpoint's static ARP entry for the server: link
// down flushes even permanent entries, and a SYN waiting for ARP would
// leave later than the probe believes.
func serverARP(ctx context.Context, ns string, dst netip.AddrPort, mac string) error {
	return ip(ctx, "-n", ns, "neigh", "replace", dst.Addr().String(), "lladdr", mac, "dev", "eth0", "nud", "permanent")
}

// macOf is the MAC of eth0 in ns.
func macOf(ctx context.Context, ns string) (string, error) {
	b, err := run(ctx, "ip", "netns", "exec", ns, "cat", "/sys/class/net/eth0/address")
	return strings.TrimSpace(b), err
}

// probeFrom probes dst from ns every 20 ms until a TCP connection opens.
// The connection's SYN is the first forwarded packet: it left when the dial
// began (static ARP, no retransmission within the 1 s timeout).
func probeFrom(ctx context.Context, ns string, dst netip.AddrPort, t0 time.Time) (round, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	first := make(chan time.Time, 1)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		go func() {
			sent := time.Now()
			if dial(ns, dst, time.Second) {
				select {
				case first <- sent:
				default:
				}
			}
		}()
		select {
		case at := <-first:
			return round{linkUp: t0, forwarded: at}, nil
		case <-ctx.Done():
			return round{}, fmt.Errorf("lab: bench: nothing forwarded from %s to %s within 60s", ns, dst)
		case <-tick.C:
		}
	}
}

// linkDown takes eth0 of ns down and waits until gone() holds.
func linkDown(ctx context.Context, ns string, what string, gone func() bool) error {
	if err := ip(ctx, "-n", ns, "link", "set", "eth0", "down"); err != nil {
		return err
	}
	if err := waitFor(ctx, 15*time.Second, nil, gone); err != nil {
		return fmt.Errorf("lab: bench: %s after link down: %w", what, err)
	}
	return nil
}

// fdbHas reports whether the bridge in ns has an FDB entry for mac on port.
func fdbHas(ctx context.Context, ns, port, mac string) bool {
	out, err := run(ctx, "bridge", "-n", ns, "fdb", "show", "dev", port)
	if err != nil {
		return false
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.ToLower(line), strings.ToLower(mac)) && !strings.Contains(line, "locked") {
			return true
		}
	}
	return false
}

func (l *Lab) benchNac(ctx context.Context, e *Endpoint) (round, error) {
	mac := strings.ToLower(e.MAC)
	err := linkDown(ctx, e.NS(), "nac pep kept the session", func() bool {
		return roleSets(ctx, PEPTable)[mac] == "" && !fdbHas(ctx, NSHypervisor, e.Port(), e.MAC)
	})
	if err != nil {
		return round{}, err
	}
	audit := filepath.Join(l.Dir, "log", "decisions.jsonl")
	before := countIn(audit, `"mac":"`+mac+`"`)
	srv, err := macOf(ctx, NSServer)
	if err != nil {
		return round{}, err
	}
	d, err := firstPacket(ctx, e.NS(), labServer, srv)
	if err != nil {
		return round{}, err
	}
	// Every round must be a new decision of the PDP (a full posture
	// assessment), not a binding left over.
	if err := waitFor(ctx, 5*time.Second, nil, func() bool { return countIn(audit, `"mac":"`+mac+`"`) > before }); err != nil {
		return round{}, errors.New("lab: bench: the packet passed without a new decision of the PDP")
	}
	return d, nil
}

// benchHostapd runs one round of the reference side. Neither hostapd -D
// wired nor wpa_supplicant -D wired notices the link going down and up
// again, so each round starts both afresh, as for a cable plugged into a
// port that never saw the station: FDB entry removed, hostapd and
// hostapd_cli (re)started and attached, then the link up and the
// supplicant started.
func (l *Lab) benchHostapd(ctx context.Context) (round, error) {
	dir := filepath.Join(l.Dir, "bench")
	for _, name := range []string{"bench-wpa_supplicant", "bench-hostapd-cli", "bench-hostapd"} {
		if p := l.procs[name]; p != nil && p.alive() {
			killPids([]int{p.Pid}, 3*time.Second)
			<-p.done
		}
	}
	err := linkDown(ctx, nsBenchEP, "the FDB entry stayed", func() bool {
		run(ctx, "bridge", "-n", nsBenchHV, "fdb", "del", benchMAC, "dev", benchPort, "master")
		return !fdbHas(ctx, nsBenchHV, benchPort, benchMAC)
	})
	if err != nil {
		return round{}, err
	}
	if err := l.startHostapd(ctx, dir); err != nil {
		return round{}, err
	}
	t0 := time.Now()
	if err := ip(ctx, "-n", nsBenchEP, "link", "set", "eth0", "up"); err != nil {
		return round{}, err
	}
	if _, err := l.start("bench-wpa_supplicant", nsBenchEP, "wpa_supplicant", "-D", "wired", "-i", "eth0", "-c", filepath.Join(dir, "supplicant.conf")); err != nil {
		return round{}, err
	}
	srv, err := macOf(ctx, nsBenchSrv)
	if err != nil {
		return round{}, err
	}
	if err := serverARP(ctx, nsBenchEP, benchServer, srv); err != nil {
		return round{}, err
	}
	return probeFrom(ctx, nsBenchEP, benchServer, t0)
}

// startHostapd starts hostapd on the bench port and hostapd_cli with the
// action script, and waits until both are ready.
func (l *Lab) startHostapd(ctx context.Context, dir string) error {
	ctrl := filepath.Join(dir, "hostapd", benchPort)
	os.Remove(ctrl)
	hp, err := l.start("bench-hostapd", nsBenchHV, "hostapd", "-t", filepath.Join(dir, "hostapd.conf"))
	if err != nil {
		return err
	}
	if err := waitFor(ctx, 10*time.Second, hp, func() bool { _, err := os.Stat(ctrl); return err == nil }); err != nil {
		return err
	}
	hc, err := l.start("bench-hostapd-cli", nsBenchHV, "hostapd_cli", "-p", filepath.Join(dir, "hostapd"), "-i", benchPort, "-a", filepath.Join(dir, "action.sh"))
	if err != nil {
		return err
	}
	// hostapd_cli has attached when it holds a socket.
	return waitFor(ctx, 10*time.Second, hc, func() bool { return attached(hc.Pid) })
}

// attached reports whether process pid has a socket open (hostapd_cli
// attached to hostapd's control interface).
func attached(pid int) bool {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return false
	}
	for _, e := range ents {
		if t, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name())); err == nil && strings.HasPrefix(t, "socket:") {
			return true
		}
	}
	return false
}

// benchReference builds the hostapd + FreeRADIUS side.
func (l *Lab) benchReference(ctx context.Context) error {
	dir := filepath.Join(l.Dir, "bench")
	for _, d := range []string{"raddb/certs", "raddb/mods-config/files", "run", "hostapd"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	for _, ns := range []string{nsBenchHV, nsBenchRad, nsBenchSrv, nsBenchEP} {
		if err := l.newNS(ctx, ns); err != nil {
			return err
		}
	}
	steps := [][]string{
		{"-n", nsBenchHV, "link", "add", benchBr, "type", "bridge", "stp_state", "0"},
		{"-n", nsBenchHV, "addr", "add", "10.78.0.1/24", "dev", benchBr},
		{"-n", nsBenchHV, "link", "set", benchBr, "up"},
	}
	for _, u := range []struct{ ns, port, addr string }{{nsBenchRad, "up-rad", "10.78.0.2"}, {nsBenchSrv, "up-srv", "10.78.0.4"}} {
		steps = append(steps,
			[]string{"-n", nsBenchHV, "link", "add", u.port, "type", "veth", "peer", "name", "eth0", "netns", u.ns},
			[]string{"-n", nsBenchHV, "link", "set", u.port, "up"},
			[]string{"-n", nsBenchHV, "link", "set", u.port, "master", benchBr},
			[]string{"-n", u.ns, "addr", "add", u.addr + "/24", "dev", "eth0"},
			[]string{"-n", u.ns, "link", "set", "eth0", "up"})
	}
	steps = append(steps,
		[]string{"-n", nsBenchHV, "link", "add", benchPort, "type", "veth", "peer", "name", "eth0", "netns", nsBenchEP},
		[]string{"-n", nsBenchEP, "link", "set", "eth0", "address", benchMAC},
		[]string{"-n", nsBenchEP, "addr", "add", "10.78.0.11/24", "dev", "eth0"},
		[]string{"-n", nsBenchHV, "link", "set", benchPort, "up"},
		[]string{"-n", nsBenchHV, "link", "set", benchPort, "master", benchBr},
	)
	for _, s := range steps {
		if err := ip(ctx, s...); err != nil {
			return err
		}
	}
	if _, err := run(ctx, "bridge", "-n", nsBenchHV, "link", "set", "dev", benchPort, "locked", "on", "learning", "off"); err != nil {
		return err
	}
	if err := staticARP(ctx, nsBenchEP, nsBenchSrv, "10.78.0.4", "10.78.0.11"); err != nil {
		return err
	}
	if _, err := l.start("bench-http", nsBenchSrv, l.Bin, "testbed", "httpd", "--listen", benchServer.String(), "--text", "bench server"); err != nil {
		return err
	}
	// FreeRADIUS with the configuration of testbed/radius-bench, listening
	// on the bench network.
	if err := writeCerts(filepath.Join(dir, "raddb", "certs")); err != nil {
		return err
	}
	conf, err := os.ReadFile(filepath.Join(l.Top, "testbed", "radius-bench", "freeradius", "radiusd.conf"))
	if err != nil {
		return err
	}
	c := strings.NewReplacer("@DIR@", dir, "@LOGDIR@", filepath.Join(l.Dir, "log"), "@AUTH_PORT@", "1812",
		"@ACCT_PORT@", "1813", "@SECRET@", Secret, "@TLS_MAX@", "1.2").Replace(string(conf))
	c = strings.Replace(c, "ipaddr = 127.0.0.1", "ipaddr = 10.78.0.0/24", 1) // the client
	c = strings.ReplaceAll(c, "ipaddr = 127.0.0.1", "ipaddr = *")            // the listeners
	users, err := os.ReadFile(filepath.Join(l.Top, "testbed", "radius-bench", "freeradius", "users"))
	if err != nil {
		return err
	}
	nt := strings.TrimPrefix(pdp.HashNT(Password(benchUser)), "nthash$")
	files := map[string]string{
		filepath.Join(dir, "raddb", "radiusd.conf"):                      c,
		filepath.Join(dir, "raddb", "mods-config", "files", "authorize"): strings.ReplaceAll(string(users), "@NTHASH@", nt),
		filepath.Join(dir, "hostapd.conf"): fmt.Sprintf(`interface=%s
driver=wired
ctrl_interface=%s/hostapd
ieee8021x=1
eapol_version=2
eap_reauth_period=0
use_pae_group_addr=1
own_ip_addr=10.78.0.1
nas_identifier=hostapd-bench
auth_server_addr=10.78.0.2
auth_server_port=1812
auth_server_shared_secret=%s
`, benchPort, dir, Secret),
		filepath.Join(dir, "action.sh"): fmt.Sprintf("#!/bin/sh\n# hostapd_cli action: IFACE EVENT MAC\ncase \"$2\" in\nAP-STA-CONNECTED) exec bridge fdb replace \"$3\" dev %s master static ;;\nAP-STA-DISCONNECTED) exec bridge fdb del \"$3\" dev %s master ;;\nesac\n", benchPort, benchPort),
		filepath.Join(dir, "supplicant.conf"): fmt.Sprintf(`ap_scan=0
network={
	key_mgmt=IEEE8021X
	eap=TTLS
	identity="%s"
	anonymous_identity="anonymous"
	password="%s"
	ca_cert="%s/raddb/certs/ca.pem"
	phase2="auth=PAP"
	eapol_flags=0
}
`, benchUser, Password(benchUser), dir),
	}
	for p, b := range files {
		if err := os.WriteFile(p, []byte(b), 0o700); err != nil {
			return err
		}
	}
	if out, err := run(ctx, "freeradius", "-C", "-d", filepath.Join(dir, "raddb")); err != nil {
		return fmt.Errorf("lab: bench: FreeRADIUS refuses its configuration: %w\n%s", err, out)
	}
	rad, err := l.start("bench-freeradius", nsBenchRad, "freeradius", "-f", "-d", filepath.Join(dir, "raddb"))
	if err != nil {
		return err
	}
	radLog := filepath.Join(l.Dir, "log", "freeradius.log")
	if err := waitFor(ctx, 20*time.Second, rad, func() bool { return logHas(radLog, "Ready to process requests") }); err != nil {
		return fmt.Errorf("%w\n%s", err, tailFile(radLog, 20))
	}
	l.say("bench: hostapd -D wired on %s (locked) in %s, FreeRADIUS in %s, wpa_supplicant in %s", benchPort, nsBenchHV, nsBenchRad, nsBenchEP)
	return nil
}

// writeCerts writes a CA and a server certificate (ECDSA P-256) for
// FreeRADIUS's EAP-TTLS: ca.pem, server.pem, server.key.
func writeCerts(dir string) error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "trustnac bench CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(48 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "radius.bench.test"},
		DNSNames: []string{"radius.bench.test"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(48 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	for name, blk := range map[string]*pem.Block{
		"ca.pem":     {Type: "CERTIFICATE", Bytes: caDER},
		"server.pem": {Type: "CERTIFICATE", Bytes: der},
		"server.key": {Type: "EC PRIVATE KEY", Bytes: kb},
	} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(blk), 0o600); err != nil {
			return err
		}
	}
	return nil
}
