package lab

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLabScenario builds the nac binary, brings the whole lab up and plays
// the scenario: every outcome must be the expected one, proved with traffic.
// It needs root, swtpm and tpm2-tools, and takes a minute or two.
func TestLabScenario(t *testing.T) {
	if err := Available(); err != nil {
		t.Skipf("lab not available: %v", err)
	}
	if testing.Short() {
		t.Skip("the lab scenario is not short")
	}
	top, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "nac")
	build := exec.Command("go", "build", "-o", bin, "./nac/cmd/nac")
	build.Dir = top
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var progress strings.Builder
	l, err := New(Config{Bin: bin, Top: top, Dir: filepath.Join(tmp, "lab"), Out: &progress})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	t.Cleanup(func() {
		if t.Failed() {
			for _, name := range []string{"pdp", "pep", "agent-healthy", "agent-remed", "agent-mab", "agent-vm"} {
				t.Logf("--- %s log (tail):\n%s", name, tailFile(l.LogFile(name), 40))
			}
		}
		if err := Down(context.Background(), l.Dir, nil); err != nil {
			t.Errorf("down: %v", err)
		}
		for _, ns := range listNetns(Prefix) {
			t.Errorf("namespace %s left after Down", ns)
		}
	})
	if err := l.Up(ctx); err != nil {
		t.Fatalf("up: %v\n%s", err, progress.String())
	}
	rep := l.Run(ctx, nil)
	var table strings.Builder
	rep.Table(&table)
	t.Logf("\n%s", table.String())
	if !rep.Passed() {
		t.Fatalf("outcomes not as expected:\n%s\nprogress:\n%s", table.String(), progress.String())
	}
	want := map[string]bool{}
	for _, c := range rep.Checks {
		want[c.Endpoint+"/"+c.Phase] = true
	}
	for _, k := range []string{"healthy/join", "tampered/join", "remed/join", "mab/join", "denied/join",
		"mab/PT-TLS → CoA", "vm/hot-plugged", "remed/fixed + SIGHUP", "healthy/references changed"} {
		if !want[k] {
			t.Errorf("no check %s", k)
		}
	}
	// Down is idempotent.
	if err := Down(ctx, l.Dir, nil); err != nil {
		t.Fatalf("down: %v", err)
	}
	if err := Down(ctx, l.Dir, nil); err != nil {
		t.Fatalf("second down: %v", err)
	}
	if _, err := os.Stat(l.Dir); !os.IsNotExist(err) {
		t.Errorf("lab directory left: %v", err)
	}
}

// TestDownAfterCrash leaves processes, namespaces and links as a crashed
// `nac testbed up` would, and Down must remove them all.
func TestDownAfterCrash(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	if err := Available(); err != nil {
		t.Skipf("lab not available: %v", err)
	}
	dir := filepath.Join(t.TempDir(), "lab")
	l, err := New(Config{Bin: "/bin/true", Top: ".", Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Down(context.Background(), dir, nil) })
	ctx := context.Background()
	if err := Down(ctx, dir, nil); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"run", "log"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	if err := l.network(ctx); err != nil {
		t.Fatal(err)
	}
	// A daemon in a namespace with a pid file, one without.
	p, err := l.start("sleeper", NSPDP, "sleep", "300")
	if err != nil {
		t.Fatal(err)
	}
	orphan := exec.Command("ip", "netns", "exec", NSServer, "sleep", "300")
	if err := orphan.Start(); err != nil {
		t.Fatal(err)
	}
	go orphan.Wait()
	if err := waitFor(ctx, 5*time.Second, nil, func() bool { return len(netnsPids(ctx, NSServer)) > 0 }); err != nil {
		t.Fatal(err)
	}
	if err := Down(ctx, dir, nil); err != nil {
		t.Fatal(err)
	}
	if err := waitFor(ctx, 5*time.Second, nil, func() bool { return !p.alive() }); err != nil {
		t.Errorf("the daemon with a pid file still runs")
	}
	if processAlive(orphan.Process.Pid) {
		t.Errorf("the process in %s still runs", NSServer)
	}
	if left := listNetns(Prefix); len(left) > 0 {
		t.Errorf("namespaces left: %v", left)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("directory left")
	}
	if err := Down(ctx, dir, nil); err != nil {
		t.Errorf("second down: %v", err)
	}
	// DownKeepLogs keeps the logs and nothing else.
	for _, d := range []string{"run", "log", "pdp"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	os.WriteFile(filepath.Join(dir, "log", "pdp.log"), []byte("x\n"), 0o644)
	if err := DownKeepLogs(ctx, dir, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "log", "pdp.log")); err != nil {
		t.Errorf("DownKeepLogs removed the logs: %v", err)
	}
	for _, d := range []string{"run", "pdp"} {
		if _, err := os.Stat(filepath.Join(dir, d)); !os.IsNotExist(err) {
			t.Errorf("DownKeepLogs left %s", d)
		}
	}
}
