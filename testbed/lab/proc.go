package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is a daemon of the lab: its pid file and log live under the lab
// directory, so a later `nac testbed down` finds it.
type proc struct {
	Name string // e.g. "pdp", "agent-healthy"
	NS   string
	Log  string
	Pid  int
	done chan struct{}
}

func (l *Lab) pidFile(name string) string { return filepath.Join(l.Dir, "run", name+".pid") }

// LogFile is the log of the lab process name ("pdp", "pep",
// "agent-healthy", "http-srv", ...).
func (l *Lab) LogFile(name string) string { return filepath.Join(l.Dir, "log", name+".log") }

// start runs argv in namespace ns as a daemon of its own session, output
// appended to its log, pid recorded.
func (l *Lab) start(name, ns string, argv ...string) (*proc, error) {
	logPath := l.LogFile(name)
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	defer f.Close()
	full := argv
	if ns != "" {
		full = append([]string{"ip", "netns", "exec", ns}, argv...)
	}
	cmd := exec.Command(full[0], full[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("lab: start %s: %w", name, err)
	}
	p := &proc{Name: name, NS: ns, Log: logPath, Pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	if err := os.WriteFile(l.pidFile(name), []byte(strconv.Itoa(p.Pid)+"\n"), 0o644); err != nil {
		cmd.Process.Kill()
		return nil, fmt.Errorf("lab: %w", err)
	}
	l.procs[name] = p
	return p, nil
}

// alive reports whether p still runs.
func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// waitFor polls cond every 50 ms until it holds, p dies or d passes.
func waitFor(ctx context.Context, d time.Duration, p *proc, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		if cond() {
			return nil
		}
		if p != nil && !p.alive() {
			return fmt.Errorf("lab: %s exited; see %s:\n%s", p.Name, p.Log, tailFile(p.Log, 25))
		}
		select {
		case <-ctx.Done():
			if p != nil {
				return fmt.Errorf("lab: %s not ready within %v; see %s:\n%s", p.Name, d, p.Log, tailFile(p.Log, 25))
			}
			return fmt.Errorf("lab: condition not met within %v", d)
		case <-t.C:
		}
	}
}

// logHas reports whether the file at path contains sub.
func logHas(path, sub string) bool {
	b, _ := os.ReadFile(path)
	return strings.Contains(string(b), sub)
}

// countIn counts sub in the file at path.
func countIn(path, sub string) int {
	b, _ := os.ReadFile(path)
	return strings.Count(string(b), sub)
}

// tailFile returns the last n lines of the file at path.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// signal sends sig to the named lab process (by its pid file).
func (l *Lab) signal(name string, sig syscall.Signal) error {
	pid, err := readPid(l.pidFile(name))
	if err != nil {
		return err
	}
	return syscall.Kill(pid, sig)
}

func readPid(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("lab: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0, fmt.Errorf("lab: bad pid file %s", path)
	}
	return pid, nil
}

// cmdline is the NUL-separated command line of pid, "" when gone.
func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return string(b)
}

// killPids sends SIGTERM to pids, waits up to grace for them to go, then
// SIGKILLs what is left.
func killPids(pids []int, grace time.Duration) {
	if len(pids) == 0 {
		return
	}
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGTERM)
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		left := 0
		for _, pid := range pids {
			if processAlive(pid) {
				left++
			}
		}
		if left == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// processAlive reports whether pid runs (a zombie does not count).
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// pidsUnder returns the pids whose command line mentions dir: the lab's
// swtpms and any daemon whose pid file was lost.
func pidsUnder(dir string) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil || dir == "" {
		return nil
	}
	self := os.Getpid()
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		args := strings.Split(cmdline(pid), "\x00")
		if !labProgram[filepath.Base(args[0])] {
			continue
		}
		for _, arg := range args {
			if arg == dir || strings.HasPrefix(arg, dir+"/") || strings.Contains(arg, "="+dir+"/") {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

// netnsPids returns the pids of processes in namespace ns.
func netnsPids(ctx context.Context, ns string) []int {
	out, err := run(ctx, "ip", "netns", "pids", ns)
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(out) {
		if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	return pids
}

// labProgram are the programs the lab starts; Down kills only these by
// their command line.
var labProgram = map[string]bool{"swtpm": true, "nac": true, "ip": true, "hostapd": true,
	"wpa_supplicant": true, "freeradius": true}
