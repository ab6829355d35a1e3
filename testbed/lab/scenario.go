package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"
)

// Check is one expected outcome, proved with traffic.
type Check struct {
	Endpoint string
	MAC      string
	Port     string
	// Phase is the step of the scenario ("join", "fixed + SIGHUP", ...).
	Phase string
	// Method is how the PDP decided (from its record: 802.1X, MAB, PT-TLS).
	Method string
	// Expect is the role expected; Role the one the kernel enforces
	// ("-" when the MAC is in no role set: the port stays locked for it).
	Expect, Role string
	// Agent is the role the endpoint's own agent reported (its status
	// file, 802.1X endpoints), "" when it has none.
	Agent string
	// Reasons are the PDP's reasons for its decision.
	Reasons string
	// Reach is what TCP probes reached (P the PDP, R the remediation
	// server, S the server); Want what the expected role allows.
	Reach, Want Reach
	// Took is the time from the trigger (link up, CoA, SIGHUP, policy
	// change) to the first packet forwarded to the role's probe target; 0
	// when none was expected or seen.
	Took time.Duration
	Pass bool
	// Note explains a failure and names the log to read.
	Note string
}

// Report is the outcome of Run.
type Report struct {
	Checks []*Check
}

// Passed reports whether every check passed.
func (r *Report) Passed() bool {
	for _, c := range r.Checks {
		if !c.Pass {
			return false
		}
	}
	return len(r.Checks) > 0
}

// record is the part of the PDP's endpoint record (pdp.Record) the
// scenario reads from its admin API.
type record struct {
	ID        string    `json:"id"`
	MAC       string    `json:"mac"`
	Identity  string    `json:"identity"`
	Channel   string    `json:"channel"`
	Role      string    `json:"role"`
	Reasons   []string  `json:"reasons"`
	DecidedAt time.Time `json:"decided_at"`
}

// records asks the PDP's admin API (a unix socket in the lab directory).
func (l *Lab) records(ctx context.Context) ([]record, error) {
	sock := filepath.Join(l.Dir, "pdp", "api.sock")
	c := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}}}
	req, err := http.NewRequestWithContext(ctx, "GET", "http://pdp/v1/endpoints", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("lab: PDP API: %w", err)
	}
	defer resp.Body.Close()
	var recs []record
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&recs); err != nil {
		return nil, fmt.Errorf("lab: PDP API: %w", err)
	}
	return recs, nil
}

func normMAC(s string) string {
	return strings.ToLower(strings.NewReplacer(":", "", "-", "", ".", "").Replace(s))
}

// latest is the newest record of e: by MAC, or by identity for PT-TLS.
func latest(recs []record, e *Endpoint) *record {
	var best *record
	for i := range recs {
		r := &recs[i]
		if normMAC(r.MAC) != normMAC(e.MAC) && (e.Identity == "" || r.Identity != e.Identity) {
			continue
		}
		if best == nil || r.DecidedAt.After(best.DecidedAt) {
			best = r
		}
	}
	return best
}

func methodOf(channel string) string {
	switch channel {
	case "eap":
		return "802.1X"
	case "mab":
		return "MAB"
	case "pttls", "pt-tls":
		return "PT-TLS"
	case "":
		return "-"
	}
	return channel
}

// target is the probe that proves a role's first forwarded packet: the
// server for admit, the PDP for the restricted roles.
func target(role string) netip.AddrPort {
	if role == "admit" {
		return probeServer
	}
	return probePDP
}

// prober dials dst from ns every 100 ms (each dial up to 500 ms) from t0
// on and reports the time from t0 to the first connection that opened.
type prober struct {
	first chan time.Duration
	stop  context.CancelFunc
}

func startProber(ctx context.Context, ns string, dst netip.AddrPort, t0 time.Time) *prober {
	ctx, cancel := context.WithCancel(ctx)
	p := &prober{first: make(chan time.Duration, 1), stop: cancel}
	go func() {
		var once sync.Once
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			go func() {
				if dial(ns, dst, 500*time.Millisecond) {
					once.Do(func() { p.first <- time.Since(t0); cancel() })
				}
			}()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return p
}

// await waits until the kernel enforces expect for e (for "deny": until
// the PDP recorded deny and the MAC is in no role set), then proves it with
// traffic. With byTraffic (an endpoint that just joined), probing starts at
// once and Took is the time from t0 to the first forwarded packet; else Took
// is the time from t0 until the kernel enforced the role.
func (l *Lab) await(ctx context.Context, e *Endpoint, phase, expect string, t0 time.Time, d time.Duration, byTraffic bool) *Check {
	c := &Check{Endpoint: e.Name, MAC: e.MAC, Port: e.Port(), Phase: phase, Expect: expect, Want: ReachOf(expect)}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var pr *prober
	switch {
	case expect == "deny":
		// A device without a supplicant must send something to be seen.
		pr = startProber(ctx, e.NS(), probePDP, t0)
	case byTraffic:
		pr = startProber(ctx, e.NS(), target(expect), t0)
	}
	if pr != nil {
		defer pr.stop()
	}
	mac := strings.ToLower(e.MAC)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var rec *record
	seen := false
	for !seen {
		role := roleSets(ctx, PEPTable)[mac]
		if recs, err := l.records(ctx); err == nil {
			rec = latest(recs, e)
		}
		c.Role = role
		if expect == "deny" {
			seen = role == "" && rec != nil && rec.Role == "deny" && rec.DecidedAt.After(t0.Add(-time.Second))
		} else {
			seen = role == expect
		}
		if seen {
			if !byTraffic && expect != "deny" {
				c.Took = time.Since(t0)
			}
			break
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
			continue
		}
		break
	}
	switch {
	case seen && expect == "deny":
		// Keep knocking a while: nothing may pass.
		select {
		case took := <-pr.first:
			c.Note = fmt.Sprintf("a packet passed after %v", took.Round(time.Millisecond))
		case <-time.After(time.Second):
		case <-ctx.Done():
		}
	case seen && byTraffic:
		select {
		case c.Took = <-pr.first:
		case <-ctx.Done():
		}
	}
	if pr != nil {
		pr.stop()
	}
	if c.Role == "" {
		c.Role = "-"
	}
	if rec != nil {
		c.Method = methodOf(rec.Channel)
		c.Reasons = strings.Join(rec.Reasons, "; ")
	}
	role := c.Role
	if expect == "deny" && seen {
		role, c.Role = "deny", "deny (locked)"
	}
	c.Reach = ProbeReach(e.NS())
	c.Agent = l.agentRole(e)
	c.Pass = role == expect && c.Reach == c.Want && c.Note == ""
	if !c.Pass && c.Note == "" {
		c.Note = fmt.Sprintf("want %s reaching %s, got %s reaching %s; logs: %s", expect, c.Want, c.Role, c.Reach, l.logsOf(e))
	}
	return c
}

// logsOf names the logs that explain e's outcome.
func (l *Lab) logsOf(e *Endpoint) string {
	logs := []string{l.LogFile("pep"), l.LogFile("pdp")}
	if e.Agent {
		logs = append([]string{l.LogFile("agent-" + e.Name)}, logs...)
	}
	return strings.Join(logs, " ")
}

// Run plays the scenario on a lab that is Up: every endpoint's outcome
// proved with traffic, MAB → PT-TLS → CoA, a hot-plugged VM, the fixed
// remediation terminal, and the reference-value change that isolates an
// admitted TPM terminal. step is told of each check as it completes.
func (l *Lab) Run(ctx context.Context, step func(*Check)) *Report {
	rep := &Report{}
	var mu sync.Mutex
	add := func(c *Check) {
		mu.Lock()
		rep.Checks = append(rep.Checks, c)
		mu.Unlock()
		if step != nil {
			step(c)
		}
	}
	// 1. Every endpoint that joined at Up.
	l.say("step 1: each endpoint's outcome, proved with traffic")
	var wg sync.WaitGroup
	for _, e := range l.Eps {
		if e.Late {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			add(l.await(ctx, e, "join", e.Expect, l.LinkUp[e.Name], 30*time.Second, true))
		}()
	}
	wg.Wait()
	// 1b. The MAB device assesses itself over PT-TLS; the PDP's CoA moves it.
	if e := l.Endpoint("mab"); e != nil {
		l.say("step 1b: %s runs nac agent over PT-TLS; the PDP sends a CoA", e.Name)
		add(l.ptTLS(ctx, e, "PT-TLS → CoA"))
	}
	// 1c. A VM-like endpoint plugged in while everything runs.
	for _, e := range l.Eps {
		if !e.Late {
			continue
		}
		l.say("step 1c: plugging %s into %s while running", e.Port(), Bridge)
		if err := l.AddEndpoint(ctx, e); err != nil {
			add(&Check{Endpoint: e.Name, MAC: e.MAC, Port: e.Port(), Phase: "hot-plugged", Expect: e.Expect, Role: "-", Note: err.Error()})
			continue
		}
		add(l.await(ctx, e, "hot-plugged", e.Expect, l.LinkUp[e.Name], 30*time.Second, true))
	}
	// 2. Fix the remediation terminal and tell its agent.
	if e := l.Endpoint("remed"); e != nil {
		l.say("step 2: fixing %s (telnet removed from its facts), SIGHUP to its agent", e.Name)
		t0 := time.Now()
		if err := l.FixFacts(e); err != nil {
			add(&Check{Endpoint: e.Name, Phase: "fixed + SIGHUP", Expect: "admit", Note: err.Error()})
		} else {
			add(l.await(ctx, e, "fixed + SIGHUP", "admit", t0, 30*time.Second, false))
		}
	}
	// 3. New reference values for the healthy image: re-assessment by CoA.
	if e := l.Endpoint("healthy"); e != nil {
		l.say("step 3: changing the reference values of %s in the policy; the PDP re-assesses by CoA", RefHealthy)
		t0 := time.Now()
		if err := l.ChangeReferences(); err != nil {
			add(&Check{Endpoint: e.Name, Phase: "references changed", Expect: "isolate", Note: err.Error()})
		} else {
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				add(l.await(ctx, e, "references changed", "isolate", t0, 30*time.Second, false))
			}()
			if m := l.Endpoint("mab"); m != nil {
				// Its posture is stale: the re-asked MAB gives assess until
				// the agent assesses again.
				wg.Add(1)
				go func() {
					defer wg.Done()
					add(l.await(ctx, m, "references changed", "assess", t0, 30*time.Second, false))
					add(l.ptTLS(ctx, m, "re-assessed over PT-TLS"))
				}()
			}
			wg.Wait()
			// The other admitted TPM terminals were re-assessed too and
			// stay admitted.
			for _, o := range l.Eps {
				if o.Name == "remed" || o.Name == "vm" {
					wg.Add(1)
					go func() {
						defer wg.Done()
						c := l.await(ctx, o, "references changed", "admit", t0, 20*time.Second, false)
						c.Took = 0 // stayed admitted: nothing to time
						add(c)
					}()
				}
			}
			wg.Wait()
		}
	}
	return rep
}

// ptTLS runs e's agent once over PT-TLS and awaits the CoA's admit.
func (l *Lab) ptTLS(ctx context.Context, e *Endpoint, phase string) *Check {
	t0 := time.Now()
	code, err := l.RunAgentOnce(ctx, e)
	if err != nil || code != 0 {
		return &Check{Endpoint: e.Name, MAC: e.MAC, Port: e.Port(), Phase: phase, Expect: "admit", Role: "-",
			Note: fmt.Sprintf("nac agent over PT-TLS: exit %d %v; see %s", code, err, l.LogFile("agent-"+e.Name))}
	}
	c := l.await(ctx, e, phase, "admit", t0, 20*time.Second, false)
	c.Method = "PT-TLS+CoA"
	return c
}

// RunAgentOnce runs `nac agent` in e's namespace once (PT-TLS), output
// appended to its log, and returns its exit code (0 admit).
func (l *Lab) RunAgentOnce(ctx context.Context, e *Endpoint) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	f, err := os.OpenFile(l.LogFile("agent-"+e.Name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return -1, err
	}
	defer f.Close()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", e.NS(), l.Bin, "agent", "--config", l.agentConfig(e))
	cmd.Stdout, cmd.Stderr = f, f
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), nil
	}
	if err != nil {
		return -1, err
	}
	return 0, nil
}

// FixFacts removes telnet from e's facts tree (the healthy fixture's port
// list and packages) and sends SIGHUP to its agent to re-authenticate.
func (l *Lab) FixFacts(e *Endpoint) error {
	healthy := filepath.Join(l.Top, "testbed", "fixtures", "healthy")
	if err := copyTree(healthy, l.OSRoot(e)); err != nil {
		return err
	}
	return l.signal("agent-"+e.Name, syscall.SIGHUP)
}

// ChangeReferences replaces the healthy image's PCR 7 reference value in
// the policy file (atomically); the PDP reloads it on its own.
func (l *Lab) ChangeReferences() error {
	b, err := os.ReadFile(l.PolicyPath())
	if err != nil {
		return err
	}
	nb, err := replaceReference(b, RefHealthy, 7, strings.Repeat("ab", 32))
	if err != nil {
		return err
	}
	tmp := l.PolicyPath() + ".new"
	if err := os.WriteFile(tmp, nb, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, l.PolicyPath())
}

// Table writes the report as a table.
func (r *Report) Table(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ENDPOINT\tMAC\tPORT\tPHASE\tMETHOD\tROLE\tAGENT\tEXPECT\tREACH\tTIME\tRESULT\tREASONS")
	checks := append([]*Check(nil), r.Checks...)
	sort.SliceStable(checks, func(i, j int) bool { return phaseOrder(checks[i].Phase) < phaseOrder(checks[j].Phase) })
	for _, c := range checks {
		took := "-"
		if c.Took > 0 {
			took = c.Took.Round(10 * time.Millisecond).String()
		}
		res := "PASS"
		if !c.Pass {
			res = "FAIL"
		}
		reasons := c.Reasons
		if len(reasons) > 60 {
			reasons = reasons[:57] + "..."
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s/%s\t%s\t%s\t%s\n", c.Endpoint, c.MAC, c.Port, c.Phase,
			dash(c.Method), dash(c.Role), dash(c.Agent), c.Expect, c.Reach, c.Want, took, res, dash(reasons))
	}
	tw.Flush()
	fmt.Fprintln(w, "ROLE: what the kernel enforces (nac pep's nftables sets); AGENT: what the endpoint's agent reported (802.1X)")
	fmt.Fprintln(w, "REACH: got/want, P = PDP 10.77.0.2:271, R = remediation 10.77.0.3:80, S = server 10.77.0.4:80 (TCP from the endpoint's namespace)")
	fmt.Fprintln(w, "TIME: join/hot-plugged: from link up to the first TCP connection through the bridge to S (admit) or P (restricted);")
	fmt.Fprintln(w, "      later phases: from the trigger (SIGHUP, policy file written, agent run) until the kernel enforced the role")
	for _, c := range checks {
		if !c.Pass {
			fmt.Fprintf(w, "FAIL %s (%s): %s\n", c.Endpoint, c.Phase, c.Note)
		}
	}
}

func phaseOrder(p string) int {
	for i, x := range []string{"join", "PT-TLS → CoA", "hot-plugged", "fixed + SIGHUP", "references changed", "re-assessed over PT-TLS"} {
		if p == x {
			return i
		}
	}
	return 99
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// agentRole is the role in e's agent status file, "" without one.
func (l *Lab) agentRole(e *Endpoint) string {
	if e.Method != Dot1X {
		return ""
	}
	b, err := os.ReadFile(l.StatusFile(e))
	if err != nil {
		return ""
	}
	var st struct {
		Role string `json:"role"`
	}
	if json.Unmarshal(b, &st) != nil {
		return ""
	}
	return st.Role
}

// Knock makes the endpoints without a supplicant send traffic until the
// PDP decided them by MAB (up to 15 s), as such devices do on their own.
func (l *Lab) Knock(ctx context.Context) {
	var wg sync.WaitGroup
	for _, e := range l.Eps {
		if e.Method == Dot1X || !netnsExists(e.NS()) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.await(ctx, e, "join", e.Expect, l.LinkUp[e.Name], 15*time.Second, true)
		}()
	}
	wg.Wait()
}
