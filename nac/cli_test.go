package nac

import (
	"math"
	"runtime/debug"
	"testing"
)

// The PDP collects less often than Go's default, under a memory limit,
// unless GOGC or GOMEMLIMIT say otherwise.
func TestTunePDPGC(t *testing.T) {
	oldGC := debug.SetGCPercent(100)
	oldLimit := debug.SetMemoryLimit(math.MaxInt64)
	defer func() {
		debug.SetGCPercent(oldGC)
		debug.SetMemoryLimit(oldLimit)
	}()

	tunePDPGC(func(string) string { return "" })
	if got := debug.SetGCPercent(100); got != pdpGCPercent {
		t.Errorf("GOGC = %d, want %d", got, pdpGCPercent)
	}
	if got := debug.SetMemoryLimit(math.MaxInt64); got == math.MaxInt64 || got <= 0 {
		t.Errorf("memory limit = %d, want a quarter of the RAM", got)
	}

	env := map[string]string{"GOGC": "50", "GOMEMLIMIT": "1GiB"}
	tunePDPGC(func(k string) string { return env[k] })
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("with GOGC set, the PDP changed it to %d", got)
	}
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("with GOMEMLIMIT set, the PDP changed the limit to %d", got)
	}
}
