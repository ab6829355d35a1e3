package osimc

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"time"

	"trustnac/transport/patnc"
)

const (
	// maxRPMOutput caps what is read from `rpm -qa`.
	maxRPMOutput = 64 << 20
	// rpmTimeout bounds one `rpm -qa` run.
	rpmTimeout = 30 * time.Second
	// rpmQueryFormat prints "name<TAB>[epoch:]version-release" per package.
	rpmQueryFormat = `%{NAME}\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\n`
)

// rpmPackages lists the packages of the configured RPM database by running
// the rpm binary. It reports ok false, without error, when there is no rpm
// binary or no database: the machine simply does not use RPM. The list is
// cached under rpmDBKey, so rpm runs again only when the database, its
// directory or the binary changed. The returned slice is shared with the
// cache and must not be modified.
func (c *Collector) rpmPackages(ctx context.Context) (pkgs []patnc.Package, ok bool, err error) {
	e := &c.cache.rpm
	dbPath := c.files.rpmDB
	if fi, err := os.Stat(dbPath); err != nil || !fi.IsDir() {
		e.forget()
		return nil, false, nil
	}
	bin, err := exec.LookPath("rpm")
	if err != nil {
		e.forget()
		return nil, false, nil
	}
	key, settled, keyed := rpmDBKey(dbPath, bin, c.now)
	if keyed {
		if pkgs, hit := e.get(key); hit {
			return pkgs, true, nil
		}
	}
	e.loads.Add(1)
	pkgs, err = runRPM(ctx, bin, dbPath, c.cfg.MaxPackages)
	if err != nil {
		e.forget()
		return nil, false, err
	}
	if keyed {
		e.put(key, slices.Clip(pkgs), settled)
	}
	return pkgs, true, nil
}

// runRPM lists the packages of the RPM database at dbPath with the rpm
// binary bin.
func runRPM(ctx context.Context, bin, dbPath string, maxPackages int) ([]patnc.Package, error) {
	ctx, cancel := context.WithTimeout(ctx, rpmTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--dbpath", dbPath, "-qa", "--qf", rpmQueryFormat)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("osimc: rpm: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("osimc: rpm: %w", err)
	}
	pkgs, perr := parseRPMOutput(stdout, maxPackages)
	// Drain and reap whatever happens, so the child never lingers.
	_, _ = io.Copy(io.Discard, stdout)
	werr := cmd.Wait()
	if perr != nil {
		return nil, perr
	}
	if werr != nil {
		return nil, fmt.Errorf("osimc: rpm: %w", werr)
	}
	return pkgs, nil
}

// parseRPMOutput parses "name<TAB>version" lines as printed with
// rpmQueryFormat. Names seen before (gpg-pubkey entries, multilib
// packages) are reported once; malformed lines are skipped.
func parseRPMOutput(r io.Reader, maxPackages int) ([]patnc.Package, error) {
	var pkgs []patnc.Package
	seen := make(map[string]struct{})
	lr := newLineReader(r, maxRPMOutput)
	defer lr.release()
	for {
		line, ok := lr.next()
		if !ok {
			break
		}
		name, version, found := bytes.Cut(line, []byte("\t"))
		name = bytes.TrimSpace(name)
		version = bytes.TrimSpace(version)
		if !found || !validPackage(string(name), string(version)) {
			continue
		}
		if _, dup := seen[string(name)]; dup {
			continue
		}
		if len(pkgs) >= maxPackages {
			return nil, fmt.Errorf("%w (%d)", errTooManyPackages, maxPackages)
		}
		n := string(name)
		seen[n] = struct{}{}
		pkgs = append(pkgs, patnc.Package{Name: n, Version: string(version)})
	}
	if err := lr.Err(); err != nil {
		return nil, fmt.Errorf("osimc: rpm output: %w", err)
	}
	return pkgs, nil
}
