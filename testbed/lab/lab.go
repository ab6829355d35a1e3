package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"trustnac/testbed"
)

// Config says where the lab's inputs are and where it keeps its state.
type Config struct {
	// Bin is the built nac binary (absolute or relative to the working
	// directory).
	Bin string
	// Top is the repository root: policies/examples/lab.yaml and
	// testbed/fixtures are read from it.
	Top string
	// Dir holds state, configs, pid files and logs (default DefaultDir).
	Dir string
	// Out receives progress lines (nil: discarded).
	Out io.Writer
}

// Lab is a built lab.
type Lab struct {
	Config
	Eps []*Endpoint
	// Pin is the PDP certificate's fingerprint the agents pin.
	Pin string

	mu    sync.Mutex
	procs map[string]*proc
	tpms  map[string]*testbed.SWTPM
	// LinkUp is when each endpoint's port went up.
	LinkUp map[string]time.Time
}

// New returns a lab for cfg without building anything.
func New(cfg Config) (*Lab, error) {
	if cfg.Dir == "" {
		cfg.Dir = DefaultDir
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	var err error
	if cfg.Dir, err = filepath.Abs(cfg.Dir); err != nil {
		return nil, err
	}
	if cfg.Bin != "" {
		if cfg.Bin, err = filepath.Abs(cfg.Bin); err != nil {
			return nil, err
		}
	}
	if cfg.Top != "" {
		if cfg.Top, err = filepath.Abs(cfg.Top); err != nil {
			return nil, err
		}
	}
	return &Lab{Config: cfg, Eps: Endpoints(), procs: map[string]*proc{}, tpms: map[string]*testbed.SWTPM{},
		LinkUp: map[string]time.Time{}}, nil
}

func (l *Lab) say(format string, args ...any) {
	fmt.Fprintf(l.Out, "testbed: "+format+"\n", args...)
}

// Endpoint returns the endpoint named name, or nil.
func (l *Lab) Endpoint(name string) *Endpoint {
	for _, e := range l.Eps {
		if e.Name == name {
			return e
		}
	}
	return nil
}

// Available reports why the lab cannot run here, or nil.
func Available() error {
	if os.Geteuid() != 0 {
		return ErrNotRoot
	}
	for _, bin := range []string{"ip", "bridge", "nft", "tpm2_pcrread", "tpm2_pcrextend"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("lab: %s not installed (scripts/install-deps.sh)", bin)
		}
	}
	return testbed.SWTPMAvailable()
}

// Up builds the lab: namespaces, bridge, uplinks, swtpms, the PDP, the
// servers, the PEP, and the endpoints that are not Late, each with its
// agent. It first removes what an earlier lab left. On failure it leaves
// things for Down (the caller's cleanup) and the logs to read.
func (l *Lab) Up(ctx context.Context) error {
	if err := Available(); err != nil {
		return err
	}
	if l.Bin == "" || l.Top == "" {
		return errors.New("lab: Config.Bin and Config.Top are required")
	}
	if err := Down(ctx, l.Dir, l.Out); err != nil {
		return err
	}
	for _, d := range []string{"run", "log", "pdp", "pep"} {
		if err := os.MkdirAll(filepath.Join(l.Dir, d), 0o755); err != nil {
			return fmt.Errorf("lab: %w", err)
		}
	}
	for _, e := range l.Eps {
		if err := os.MkdirAll(l.epDir(e), 0o755); err != nil {
			return fmt.Errorf("lab: %w", err)
		}
	}
	l.say("state and logs in %s", l.Dir)
	if err := l.network(ctx); err != nil {
		return err
	}
	if err := l.startTPMs(ctx); err != nil {
		return err
	}
	if err := l.writePDP(ctx); err != nil {
		return err
	}
	if err := l.startPDP(ctx); err != nil {
		return err
	}
	if err := l.startServers(ctx); err != nil {
		return err
	}
	if err := l.startPEP(ctx); err != nil {
		return err
	}
	for _, e := range l.Eps {
		if !e.Late {
			if err := l.AddEndpoint(ctx, e); err != nil {
				return err
			}
		}
	}
	return nil
}

func (l *Lab) epDir(e *Endpoint) string { return filepath.Join(l.Dir, "ep", e.Name) }

// sysctls make the namespaces quiet: no IPv6 chatter on the locked ports.
var sysctls = []string{
	"net.ipv6.conf.all.disable_ipv6=1",
	"net.ipv6.conf.default.disable_ipv6=1",
}

// quickARP makes ARP on dev in ns retry every 100 ms, so that probing
// measures the PEP and not ARP's back-off.
func quickARP(ctx context.Context, ns, dev string) error {
	_, err := run(ctx, "ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.neigh."+dev+".retrans_time_ms=100")
	return err
}

func (l *Lab) newNS(ctx context.Context, ns string) error {
	if err := ip(ctx, "netns", "add", ns); err != nil {
		return err
	}
	if err := ip(ctx, "-n", ns, "link", "set", "lo", "up"); err != nil {
		return err
	}
	for _, s := range sysctls {
		if _, err := run(ctx, "ip", "netns", "exec", ns, "sysctl", "-qw", s); err != nil {
			return err
		}
	}
	return nil
}

// network makes the namespaces, the bridge and the uplinks.
func (l *Lab) network(ctx context.Context) error {
	l.say("namespaces %s{hv,pdp,rem,srv}, bridge %s %s/24", Prefix, Bridge, AddrBridge)
	for _, ns := range []string{NSHypervisor, NSPDP, NSRemedy, NSServer} {
		if err := l.newNS(ctx, ns); err != nil {
			return err
		}
	}
	steps := [][]string{
		{"-n", NSHypervisor, "link", "add", Bridge, "type", "bridge", "stp_state", "0"},
		{"-n", NSHypervisor, "addr", "add", AddrBridge + "/24", "dev", Bridge},
		{"-n", NSHypervisor, "link", "set", Bridge, "up"},
	}
	for _, u := range Uplinks {
		steps = append(steps,
			[]string{"-n", NSHypervisor, "link", "add", u.Port, "type", "veth", "peer", "name", "eth0", "netns", u.NS},
			[]string{"-n", NSHypervisor, "link", "set", u.Port, "master", Bridge},
			[]string{"-n", NSHypervisor, "link", "set", u.Port, "up"},
			[]string{"-n", u.NS, "addr", "add", u.Addr + "/24", "dev", "eth0"},
			[]string{"-n", u.NS, "link", "set", "eth0", "up"},
		)
	}
	for _, s := range steps {
		if err := ip(ctx, s...); err != nil {
			return err
		}
	}
	for _, u := range Uplinks {
		if err := quickARP(ctx, u.NS, "eth0"); err != nil {
			return err
		}
	}
	return nil
}

// startTPMs starts one swtpm per endpoint that has a TPM, in parallel,
// each in its endpoint's namespace, and extends PCR 7 of the tampered
// ones after the reference values are read.
func (l *Lab) startTPMs(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make([]error, len(l.Eps))
	for i, e := range l.Eps {
		if !e.TPM {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			dir := filepath.Join(l.epDir(e), "tpm")
			s, err := testbed.StartSWTPM(ctx, dir, testbed.SWTPMOptions{Banks: []string{"sha256"}})
			if err != nil {
				errs[i] = fmt.Errorf("lab: swtpm of %s: %w", e.Name, err)
				return
			}
			l.mu.Lock()
			l.tpms[e.Name] = s
			l.mu.Unlock()
			for _, pid := range pidsUnder(dir) {
				os.WriteFile(l.pidFile("swtpm-"+e.Name), []byte(fmt.Sprintf("%d\n", pid)), 0o644)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	l.say("swtpm per endpoint: %d started", len(l.tpms))
	return nil
}

// TPMSocket is the swtpm socket of endpoint e ("" without a TPM).
func (l *Lab) TPMSocket(e *Endpoint) string {
	if !e.TPM {
		return ""
	}
	return filepath.Join(l.epDir(e), "tpm", "tpm.sock")
}

// ekRoots are the EK CA certificates of every endpoint's swtpm.
func (l *Lab) ekRoots() []string {
	var out []string
	for _, e := range l.Eps {
		if e.TPM {
			ca := filepath.Join(l.epDir(e), "tpm", "ca")
			out = append(out, filepath.Join(ca, "swtpm-localca-rootca-cert.pem"), filepath.Join(ca, "issuercert.pem"))
		}
	}
	return out
}

func (l *Lab) tpm2(ctx context.Context, e *Endpoint, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "TPM2TOOLS_TCTI=swtpm:path="+l.TPMSocket(e))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("lab: %s on %s's TPM: %w: %s", args[0], e.Name, err, out)
	}
	return string(out), nil
}

// ReadPCRs reads the sha256 PCRs the lab records from e's swtpm.
func (l *Lab) ReadPCRs(ctx context.Context, e *Endpoint) (map[int]string, error) {
	sel := make([]string, len(PCRs))
	for i, p := range PCRs {
		sel[i] = fmt.Sprint(p)
	}
	out, err := l.tpm2(ctx, e, "tpm2_pcrread", "sha256:"+strings.Join(sel, ","))
	if err != nil {
		return nil, err
	}
	return parsePCRRead(out)
}

// PolicyPath is the policy file the PDP reloads when it changes.
func (l *Lab) PolicyPath() string { return filepath.Join(l.Dir, "pdp", "policy.yaml") }

// writePDP writes the policy (with reference values read from the swtpms
// as an admin records a golden image's), the users and the PDP config, and
// only then tampers with the tampered endpoints' PCR 7.
func (l *Lab) writePDP(ctx context.Context) error {
	var healthy, fleet map[int]string
	for _, e := range l.Eps {
		if !e.TPM {
			continue
		}
		pcrs, err := l.ReadPCRs(ctx, e)
		if err != nil {
			return err
		}
		if e.Identity == "tpm-healthy" {
			healthy = pcrs
		} else if fleet == nil {
			fleet = pcrs
		}
	}
	if healthy == nil {
		return errors.New("lab: no healthy TPM endpoint to read reference values from")
	}
	if fleet == nil {
		fleet = healthy
	}
	base, err := os.ReadFile(filepath.Join(l.Top, "policies", "examples", "lab.yaml"))
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	pol, err := PolicyFile(base, l.Eps, healthy, fleet)
	if err != nil {
		return err
	}
	files := map[string][]byte{
		l.PolicyPath(): pol,
		filepath.Join(l.Dir, "pdp", "users.yaml"): UsersFile(l.Eps),
		filepath.Join(l.Dir, "pdp", "pdp.yaml"):   PDPConfig(l.Dir, l.ekRoots()),
		filepath.Join(l.Dir, "pep", "pep.yaml"):   PEPConfig(l.Dir),
	}
	for p, b := range files {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			return fmt.Errorf("lab: %w", err)
		}
	}
	if out, err := run(ctx, l.Bin, "policy", "check", l.PolicyPath()); err != nil {
		return fmt.Errorf("lab: the generated policy is refused: %w\n%s", err, out)
	}
	for _, e := range l.Eps {
		if e.Tamper {
			l.say("extending PCR 7 of %s's TPM (a changed Secure Boot policy)", e.Name)
			if _, err := l.tpm2(ctx, e, "tpm2_pcrextend", "7:sha256="+strings.Repeat("5a", 32)); err != nil {
				return err
			}
		}
	}
	return nil
}

var pinRE = regexp.MustCompile(`fingerprint=(sha256:[0-9a-f]{64})`)

func (l *Lab) startPDP(ctx context.Context) error {
	p, err := l.start("pdp", NSPDP, l.Bin, "pdp", "--config", filepath.Join(l.Dir, "pdp", "pdp.yaml"))
	if err != nil {
		return err
	}
	if err := waitFor(ctx, 20*time.Second, p, func() bool { return logHas(p.Log, "pdp ready") }); err != nil {
		return err
	}
	b, _ := os.ReadFile(p.Log)
	m := pinRE.FindSubmatch(b)
	if m == nil {
		return fmt.Errorf("lab: no certificate fingerprint in %s", p.Log)
	}
	l.Pin = string(m[1])
	l.say("nac pdp ready in %s at %s (RADIUS 1812/1813, PT-TLS %d), certificate %s…", NSPDP, AddrPDP, PortPTTLS, l.Pin[:19])
	return nil
}

func (l *Lab) startServers(ctx context.Context) error {
	for _, s := range []struct{ name, ns, addr, text string }{
		{"http-rem", NSRemedy, AddrRemedy, "trustnac lab remediation server: follow the instructions you were given"},
		{"http-srv", NSServer, AddrServer, "trustnac lab server: the rest of the network"},
	} {
		listen := fmt.Sprintf("%s:%d", s.addr, PortHTTP)
		p, err := l.start(s.name, s.ns, l.Bin, "testbed", "httpd", "--listen", listen, "--text", s.text)
		if err != nil {
			return err
		}
		dst := mustAddrPort(listen)
		if err := waitFor(ctx, 10*time.Second, p, func() bool { return dial(s.ns, dst, probeTimeout) }); err != nil {
			return err
		}
	}
	l.say("remediation server http://%s/, server http://%s/ up", AddrRemedy, AddrServer)
	return nil
}

func (l *Lab) startPEP(ctx context.Context) error {
	p, err := l.start("pep", NSHypervisor, l.Bin, "pep", "--config", filepath.Join(l.Dir, "pep", "pep.yaml"))
	if err != nil {
		return err
	}
	err = waitFor(ctx, 20*time.Second, p, func() bool { return logHas(p.Log, "pep ready") })
	if err != nil {
		return err
	}
	l.say("nac pep ready in %s on %s (uplinks %s unmanaged)", NSHypervisor, Bridge, "up-pdp, up-rem, up-srv")
	return nil
}

// AddEndpoint makes e's namespace and port the way a cable is plugged into
// a switch port that is already up: the port is set up and enslaved to
// the bridge while the endpoint's side is still down (no carrier), the PEP
// must lock it, the agent starts, and only then the endpoint's link comes
// up (LinkUp records when).
func (l *Lab) AddEndpoint(ctx context.Context, e *Endpoint) error {
	ns, port := e.NS(), e.Port()
	if !netnsExists(ns) {
		if err := l.newNS(ctx, ns); err != nil {
			return err
		}
	}
	for _, s := range [][]string{
		{"-n", NSHypervisor, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns},
		{"-n", ns, "link", "set", "eth0", "address", e.MAC},
		{"-n", ns, "addr", "add", e.Addr + "/24", "dev", "eth0"},
		{"-n", NSHypervisor, "link", "set", port, "up"},
		{"-n", NSHypervisor, "link", "set", port, "master", Bridge},
	} {
		if err := ip(ctx, s...); err != nil {
			return err
		}
	}
	if err := quickARP(ctx, ns, "eth0"); err != nil {
		return err
	}
	// A port is locked by the PEP before it carries anything.
	if err := waitFor(ctx, 10*time.Second, l.procs["pep"], func() bool { return portLocked(ctx, port) }); err != nil {
		return fmt.Errorf("lab: the PEP did not lock port %s: %w", port, err)
	}
	if e.Agent {
		if err := l.writeAgent(e); err != nil {
			return err
		}
	}
	if e.Agent && e.Method == Dot1X {
		if _, err := l.start("agent-"+e.Name, ns, l.Bin, "agent", "--config", l.agentConfig(e)); err != nil {
			return err
		}
	}
	if err := ip(ctx, "-n", ns, "link", "set", "eth0", "up"); err != nil {
		return err
	}
	l.mu.Lock()
	l.LinkUp[e.Name] = time.Now()
	l.mu.Unlock()
	l.say("endpoint %-8s %s %s on port %s (locked), method %s", e.Name, e.MAC, e.Addr, port, e.Method)
	return nil
}

func (l *Lab) agentConfig(e *Endpoint) string { return filepath.Join(l.epDir(e), "agent.yaml") }

// OSRoot is the facts tree endpoint e's OS collector reads.
func (l *Lab) OSRoot(e *Endpoint) string { return filepath.Join(l.epDir(e), "root") }

// StatusFile is the agent's status file (802.1X endpoints).
func (l *Lab) StatusFile(e *Endpoint) string { return filepath.Join(l.epDir(e), "status.json") }

func (l *Lab) writeAgent(e *Endpoint) error {
	root := l.OSRoot(e)
	if err := copyTree(filepath.Join(l.Top, "testbed", "fixtures", e.Fixture), root); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(l.epDir(e), "password"), []byte(Password(e.Identity)+"\n"), 0o600); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	return os.WriteFile(l.agentConfig(e), AgentConfig(l.Dir, e, l.Pin, root, l.TPMSocket(e)), 0o600)
}

// copyTree copies the regular files and directories under src to dst.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
}

// Down removes every lab in dir and what it started: processes by pid
// file, by namespace and by command line, then the namespaces (their links
// and nftables tables go with them) and dir. It is idempotent.
func Down(ctx context.Context, dir string, out io.Writer) error { return down(ctx, dir, out, false) }

// DownKeepLogs is Down but leaves dir/log for reading.
func DownKeepLogs(ctx context.Context, dir string, out io.Writer) error {
	return down(ctx, dir, out, true)
}

func down(ctx context.Context, dir string, out io.Writer, keepLogs bool) error {
	if os.Geteuid() != 0 {
		return ErrNotRoot
	}
	if dir == "" {
		dir = DefaultDir
	}
	if out == nil {
		out = io.Discard
	}
	var pids []int
	if ents, err := os.ReadDir(filepath.Join(dir, "run")); err == nil {
		for _, e := range ents {
			if pid, err := readPid(filepath.Join(dir, "run", e.Name())); err == nil && processAlive(pid) {
				pids = append(pids, pid)
			}
		}
	}
	nss := listNetns(Prefix)
	for _, ns := range nss {
		pids = append(pids, netnsPids(ctx, ns)...)
	}
	pids = append(pids, pidsUnder(dir)...)
	pids = uniq(pids)
	killPids(pids, 3*time.Second)
	var errs []error
	for _, ns := range nss {
		if err := ip(ctx, "netns", "del", ns); err != nil && netnsExists(ns) {
			errs = append(errs, err)
		}
	}
	if keepLogs {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if e.Name() != "log" {
				if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
					errs = append(errs, err)
				}
			}
		}
	} else if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, err)
	}
	if len(pids)+len(nss) > 0 {
		fmt.Fprintf(out, "testbed: down: %d processes stopped, %d namespaces removed\n", len(pids), len(nss))
	}
	return errors.Join(errs...)
}

func uniq(xs []int) []int {
	seen := map[int]bool{}
	var out []int
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
