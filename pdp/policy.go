package pdp

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"trustnac/policies"
)

// PolicySource holds the policy in force and reloads it from its file. A
// reload that brings an invalid file is refused: the last good policy stays
// in force and the error is logged.
type PolicySource struct {
	path string
	log  *slog.Logger
	cur  atomic.Pointer[policies.Policy]

	mu       sync.Mutex // serialises reloads
	modTime  time.Time
	size     int64
	onChange []func(*policies.Policy)
}

// LoadPolicySource loads the policy file at path. An invalid file is an
// error: the PDP does not start without a valid policy.
func LoadPolicySource(path string, log *slog.Logger) (*PolicySource, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ps := &PolicySource{path: path, log: log}
	if err := ps.Reload(); err != nil {
		return nil, err
	}
	return ps, nil
}

// Policy returns the policy in force.
func (ps *PolicySource) Policy() *policies.Policy { return ps.cur.Load() }

// Path is the policy file.
func (ps *PolicySource) Path() string { return ps.path }

// OnChange registers f to run after each successful reload, for example to
// re-assess endpoints whose decision the new policy changes.
func (ps *PolicySource) OnChange(f func(*policies.Policy)) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.onChange = append(ps.onChange, f)
}

// Reload reads the file again. On error the policy in force is kept.
func (ps *PolicySource) Reload() error {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	st, statErr := os.Stat(ps.path)
	p, err := policies.LoadFile(ps.path)
	if statErr == nil {
		// Remember this version even when it is invalid, so the watcher
		// does not log the same error every round.
		ps.modTime, ps.size = st.ModTime(), st.Size()
	}
	if err != nil {
		return fmt.Errorf("pdp: %w", err)
	}
	first := ps.cur.Load() == nil
	ps.cur.Store(p)
	if !first {
		ps.log.Info("policy reloaded", "file", ps.path, "rules", len(p.Rules))
		for _, f := range ps.onChange {
			f(p)
		}
	}
	return nil
}

// changed reports whether the file differs from the version last read.
func (ps *PolicySource) changed() bool {
	st, err := os.Stat(ps.path)
	if err != nil {
		return false
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return !st.ModTime().Equal(ps.modTime) || st.Size() != ps.size
}

// Watch reloads the policy when the file changes (checked every interval)
// or when a value arrives on hup (SIGHUP), until ctx ends.
func (ps *PolicySource) Watch(ctx context.Context, interval time.Duration, hup <-chan os.Signal) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		case <-t.C:
			if !ps.changed() {
				continue
			}
		}
		if err := ps.Reload(); err != nil {
			ps.log.Error("policy reload refused, keeping the last good policy", "err", err)
		}
	}
}
