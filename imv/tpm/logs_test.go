package tpmimv

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"trustnac/imv"
	"trustnac/imv/tpm/eventlog"
	"trustnac/imv/tpm/ima"
	"trustnac/transport/patnc"
)

// The log plumbing — pieces, offsets, the per-AK cache, replays against
// the quoted PCRs — is tested with stand-ins for the log formats: a "boot
// log" replays when its SHA-256 is the quoted sha256 PCR 4, an "IMA log"
// is one path per line, each extended into PCR 10 as testTPM.extend does.
// integration_test.go runs the real eventlog and ima packages.

func fakeLogs(t *testing.T) {
	t.Helper()
	oldBoot, oldParse, oldReplay, oldPadded := replayBootLog, parseIMALog, replayIMALog, replayIMAPadded
	t.Cleanup(func() {
		replayBootLog, parseIMALog, replayIMALog, replayIMAPadded = oldBoot, oldParse, oldReplay, oldPadded
	})
	replayIMAPadded = func([]ima.Entry, uint16) ([]byte, error) { return nil, errors.New("ima: no padded replay here") }
	replayBootLog = func(log []byte, pcrs map[uint16]map[int][]byte) (*eventlog.Result, error) {
		if _, has10 := pcrs[algSHA256][10]; has10 {
			t.Error("the boot log was replayed against PCR 10")
		}
		if bytes.HasPrefix(log, []byte("garbage")) {
			return nil, fmt.Errorf("%w: fake", eventlog.ErrMalformed)
		}
		sb := true
		d := sha256.Sum256(log)
		r := &eventlog.Result{Events: bytes.Count(log, []byte("\n")), SecureBoot: &sb, BootLoaders: []string{"b007"}, Kernels: []string{"ke51"}, KernelCmdline: "ro quiet"}
		if r.Replayed = bytes.Equal(d[:], pcrs[algSHA256][4]); !r.Replayed {
			r.Mismatches = []string{"sha256:4"}
		}
		return r, nil
	}
	parseIMALog = func(log []byte, max int) ([]ima.Entry, error) {
		var out []ima.Entry
		for _, line := range strings.SplitAfter(string(log), "\n") {
			if line == "" {
				continue
			}
			if !strings.HasSuffix(line, "\n") {
				return nil, errors.New("ima: truncated entry")
			}
			out = append(out, ima.Entry{PCR: 10, Template: "ima-ng", Path: strings.TrimSuffix(line, "\n")})
		}
		return out, nil
	}
	replayIMALog = func(entries []ima.Entry, bank uint16) ([]byte, error) {
		v := make([]byte, digestSize(bank))
		for _, e := range entries {
			v = sum(bank, nil, append(v, sum(bank, nil, []byte(e.Path))...))
		}
		return v, nil
	}
}

// logEndpoint is an endpoint with logs that it sends in pieces.
type logEndpoint struct {
	*lab
	boot, ima []byte
	piece     int // bytes per piece
	// silentPastEnd: send nothing for an offset past the log's end
	silentPastEnd bool
	requests      [][2]int // offsets asked for, per round: boot, IMA (-1 NoLog)
	quotes        int
}

func newLogEndpoint(t *testing.T, cfg Config) *logEndpoint {
	fakeLogs(t)
	l := newLab(t, AKAlgECDSAP256, cfg)
	approve(t, l.store, l.ak, MethodEKCert)
	return &logEndpoint{lab: l, piece: 1 << 20}
}

// setBoot gives the endpoint a boot log and measures it into PCR 4.
func (e *logEndpoint) setBoot(log []byte) {
	e.boot = log
	d := sha256.Sum256(log)
	e.tpm.pcrs[algSHA256][4] = d[:]
}

// addIMA appends IMA entries to the log and extends them into PCR 10.
func (e *logEndpoint) addIMA(paths ...string) {
	for _, p := range paths {
		e.ima = append(e.ima, p+"\n"...)
		e.tpm.extend(10, []byte(p))
	}
}

func (e *logEndpoint) answer(t *testing.T, req *patnc.TPMQuoteRequest) []patnc.Value {
	e.quotes++
	vals := []patnc.Value{e.tpm.quote(t, req)}
	offs := [2]int{-1, -1}
	for _, lr := range req.Logs {
		log := e.boot
		if lr.Kind == patnc.LogIMA {
			log = e.ima
		}
		if lr.Offset == patnc.NoLog {
			continue
		}
		offs[lr.Kind-1] = int(lr.Offset)
		if e.silentPastEnd && int(lr.Offset) > len(log) {
			continue
		}
		off := min(int(lr.Offset), len(log))
		end := min(off+e.piece, len(log))
		vals = append(vals, &patnc.MeasurementLog{Kind: lr.Kind, Offset: uint64(off), Total: uint64(len(log)), Data: slices.Clone(log[off:end])})
	}
	e.requests = append(e.requests, offs)
	return vals
}

func (e *logEndpoint) run(t *testing.T) imv.Result {
	t.Helper()
	e.requests, e.quotes = nil, 0
	s := e.session(t)
	out := e.begin(t, s)
	for round := 0; len(out) > 0; round++ {
		if round > 100 {
			t.Fatal("the session keeps asking")
		}
		req := find[*patnc.TPMQuoteRequest](out)
		if req == nil {
			t.Fatalf("asked %v", out)
		}
		out = exchange(t, s, e.answer(t, req)...)
	}
	return s.Result()
}

// bootLog makes a log of n lines.
func bootLog(n int, tag string) []byte {
	var b []byte
	for i := range n {
		b = fmt.Appendf(b, "%s event %06d\n", tag, i)
	}
	return b
}

func TestLogsInPieces(t *testing.T) {
	e := newLogEndpoint(t, Config{})
	e.setBoot(bootLog(1000, "boot")) // 18 000 bytes
	e.addIMA("boot_aggregate", "/usr/bin/bash", "/usr/lib/libc.so.6")
	e.piece = 5000
	r := e.run(t)
	wantRec(t, r, imv.Allow, "")
	if e.quotes != 4 {
		t.Errorf("%d rounds for 18 000 bytes at 5000 a piece, want 4", e.quotes)
	}
	want := [][2]int{{0, 0}, {5000, -1}, {10000, -1}, {15000, -1}}
	if !slices.Equal(e.requests, want) {
		t.Errorf("offsets asked %v, want %v", e.requests, want)
	}
	f, imaf := SplitFacts(r.Facts)
	if f["eventlog_replayed"] != true || f["eventlog_events"] != int64(1000) || f["secure_boot"] != true ||
		f["kernel_cmdline"] != "ro quiet" || len(f["boot_loaders"].([]any)) != 1 {
		t.Errorf("tpm facts %v", f)
	}
	if imaf["replayed"] != true || imaf["entries"] != int64(3) || imaf["template"] != "ima-ng" || imaf["allowlist_ok"] != false {
		t.Errorf("ima facts %v", imaf)
	}
}

func TestLogCache(t *testing.T) {
	e := newLogEndpoint(t, Config{})
	e.setBoot(bootLog(1000, "boot"))
	e.addIMA("boot_aggregate", "/usr/bin/bash")
	wantRec(t, e.run(t), imv.Allow, "")

	// Next time the verifier asks from a little before what it holds.
	e.addIMA("/usr/bin/vim")
	r := e.run(t)
	wantRec(t, r, imv.Allow, "")
	if want := [][2]int{{len(e.boot) - logOverlap, 0}}; !slices.Equal(e.requests, want) {
		t.Errorf("offsets asked %v, want %v", e.requests, want)
	}
	if _, imaf := SplitFacts(r.Facts); imaf["entries"] != int64(3) {
		t.Errorf("ima facts %v", imaf)
	}

	// A log that changed within the overlap is asked for again from 0.
	e.setBoot(bytes.Replace(e.boot, []byte("boot event 000999"), []byte("boot event 00099X"), 1))
	wantRec(t, e.run(t), imv.Allow, "")
	if want := [][2]int{{len(e.boot) - logOverlap, 0}, {0, -1}}; !slices.Equal(e.requests, want) {
		t.Errorf("offsets asked %v, want %v", e.requests, want)
	}

	// A change before the overlap shows only in the replay: the verifier
	// fetches the whole log once more.
	e.setBoot(bytes.Replace(e.boot, []byte("boot event 000001"), []byte("boot event 00000X"), 1))
	wantRec(t, e.run(t), imv.Allow, "")
	if want := [][2]int{{len(e.boot) - logOverlap, 0}, {0, -1}}; !slices.Equal(e.requests, want) {
		t.Errorf("offsets asked %v, want %v", e.requests, want)
	}

	// After a reboot both logs differ from the cached ones, which the
	// overlaps show.
	e.tpm.reset++
	e.setBoot(bootLog(1000, "next"))
	e.ima = nil
	e.tpm.pcrs[algSHA256][10], e.tpm.pcrs[algSHA1][10] = make([]byte, 32), make([]byte, 20)
	e.addIMA("boot_aggregate")
	wantRec(t, e.run(t), imv.Allow, "")
	if want := [][2]int{{len(e.boot) - logOverlap, 0}, {0, -1}}; !slices.Equal(e.requests, want) {
		t.Errorf("offsets asked %v, want %v", e.requests, want)
	}

	// An identical boot log after a reboot is still good: it replays.
	e.tpm.reset++
	wantRec(t, e.run(t), imv.Allow, "")
	if want := [][2]int{{len(e.boot) - logOverlap, 0}}; !slices.Equal(e.requests, want) {
		t.Errorf("offsets asked %v, want %v", e.requests, want)
	}

	// A collector that sends nothing for an offset past its log is asked
	// once more from 0.
	e.ima = nil
	e.tpm.pcrs[algSHA256][10], e.tpm.pcrs[algSHA1][10] = make([]byte, 32), make([]byte, 20)
	for i := range 600 {
		e.addIMA(fmt.Sprintf("/usr/bin/file%03d", i))
	}
	wantRec(t, e.run(t), imv.Allow, "")
	long := len(e.ima)
	e.ima = nil
	e.tpm.pcrs[algSHA256][10], e.tpm.pcrs[algSHA1][10] = make([]byte, 32), make([]byte, 20)
	e.addIMA("a")
	e.silentPastEnd = true
	r = e.run(t)
	wantRec(t, r, imv.Allow, "")
	if want := [][2]int{{len(e.boot) - logOverlap, long - logOverlap}, {-1, 0}}; !slices.Equal(e.requests, want) {
		t.Errorf("offsets asked %v, want %v", e.requests, want)
	}
	if _, imaf := SplitFacts(r.Facts); imaf["entries"] != int64(1) {
		t.Errorf("ima facts %v", imaf)
	}
}

func TestLogCacheBound(t *testing.T) {
	c := newLogCache(100)
	c.put("a", patnc.LogBoot, make([]byte, 60))
	c.put("b", patnc.LogBoot, make([]byte, 30))
	if d := c.get("a", patnc.LogBoot); len(d) != 60 { // a is now the most recent
		t.Fatal("a evicted early")
	}
	c.put("c", patnc.LogIMA, make([]byte, 30))
	if d := c.get("b", patnc.LogBoot); d != nil {
		t.Error("b, the least recently used, was kept past the bound")
	}
	if d := c.get("c", patnc.LogIMA); len(d) != 30 {
		t.Error("c lost")
	}
	if c.size > 100 {
		t.Errorf("size %d over the bound", c.size)
	}
	c.put("d", patnc.LogBoot, make([]byte, 101))
	if d := c.get("d", patnc.LogBoot); d != nil {
		t.Error("kept a log larger than the whole cache")
	}
	c.drop("a", patnc.LogBoot)
	if d := c.get("a", patnc.LogBoot); d != nil || c.size != 30 {
		t.Errorf("drop: size %d", c.size)
	}
}

func TestIMALogAfterQuote(t *testing.T) {
	e := newLogEndpoint(t, Config{})
	e.addIMA("boot_aggregate", "/usr/bin/a")
	// Entries measured between the quote and reading the log: the quote
	// covers the first two.
	e.ima = append(e.ima, "/usr/bin/b\n/usr/bin/c\n"...)
	r := e.run(t)
	wantRec(t, r, imv.Allow, "")
	if _, imaf := SplitFacts(r.Facts); imaf["replayed"] != true || imaf["entries"] != int64(2) {
		t.Errorf("ima facts %v", imaf)
	}
}

func TestLogsRefused(t *testing.T) {
	tests := []struct {
		name   string
		cfg    Config
		setup  func(e *logEndpoint)
		want   imv.Recommendation
		reason string
	}{
		{
			name:   "boot log that does not replay",
			setup:  func(e *logEndpoint) { e.setBoot(bootLog(10, "boot")); e.boot = bootLog(10, "hidden") },
			want:   imv.Isolate,
			reason: "measured-boot event log does not replay to the quoted PCRs (sha256:4)",
		},
		{
			name:   "boot log that does not parse",
			setup:  func(e *logEndpoint) { e.setBoot([]byte("garbage")) },
			want:   imv.Isolate,
			reason: "measured-boot event log could not be read",
		},
		{
			name: "IMA log that does not replay",
			setup: func(e *logEndpoint) {
				e.addIMA("boot_aggregate", "/usr/bin/evil")
				e.ima = []byte("boot_aggregate\n/usr/bin/good\n")
			},
			want:   imv.Isolate,
			reason: "IMA measurement log does not replay",
		},
		{
			name: "IMA log with more unquoted entries than tolerated",
			setup: func(e *logEndpoint) {
				e.addIMA("boot_aggregate")
				for i := range imaTail + 1 {
					e.ima = fmt.Appendf(e.ima, "/late/%d\n", i)
				}
			},
			want:   imv.Isolate,
			reason: "IMA measurement log does not replay",
		},
		{
			name:   "IMA log that does not parse",
			setup:  func(e *logEndpoint) { e.ima = []byte("truncated") },
			want:   imv.Isolate,
			reason: "IMA measurement log could not be read",
		},
		{
			name:   "boot log required",
			cfg:    Config{RequireBootLog: true},
			want:   imv.Isolate,
			reason: "did not send its measured-boot event log",
		},
		{
			name:   "IMA log required",
			cfg:    Config{RequireIMALog: true},
			want:   imv.Isolate,
			reason: "did not send its IMA measurement log",
		},
		{
			name:   "IMA log without PCR 10",
			cfg:    Config{PCRs: []int{0, 7}},
			setup:  func(e *logEndpoint) { e.addIMA("boot_aggregate") },
			want:   imv.Isolate,
			reason: "does not cover PCR 10",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newLogEndpoint(t, tc.cfg)
			if tc.setup != nil {
				tc.setup(e)
			}
			r := e.run(t)
			wantRec(t, r, tc.want, tc.reason)
			if r.Facts["quote_verified"] != true {
				t.Error("quote_verified false")
			}
		})
	}
}

// TestLogsStalled: a collector that stops sending a log.
func TestLogsStalled(t *testing.T) {
	e := newLogEndpoint(t, Config{RequireBootLog: true})
	e.setBoot(bootLog(100, "boot"))
	e.piece = 1000
	s := e.session(t)
	req := find[*patnc.TPMQuoteRequest](e.begin(t, s))
	out := exchange(t, s, e.answer(t, req)...)
	req = find[*patnc.TPMQuoteRequest](out)
	if req == nil {
		t.Fatal("no second request")
	}
	// Quote, but no log.
	if out := exchange(t, s, e.tpm.quote(t, req)); len(out) != 0 {
		t.Fatalf("asks again: %v", out)
	}
	wantRec(t, s.Result(), imv.Isolate, "did not send its measured-boot event log")
}

// TestLogsGap: a piece beyond what the verifier holds is not used, and a
// round without progress ends the asking.
func TestLogsGap(t *testing.T) {
	e := newLogEndpoint(t, Config{})
	e.setBoot(bootLog(100, "boot"))
	s := e.session(t)
	req := find[*patnc.TPMQuoteRequest](e.begin(t, s))
	out := exchange(t, s, e.tpm.quote(t, req),
		&patnc.MeasurementLog{Kind: patnc.LogBoot, Offset: 10, Total: uint64(len(e.boot)), Data: e.boot[10:20]},
		&patnc.MeasurementLog{Kind: patnc.LogIMA})
	if len(out) != 0 {
		t.Fatalf("asked %v", out)
	}
	r := s.Result()
	wantRec(t, r, imv.Allow, "")
	if r.Facts["eventlog_replayed"] != false {
		t.Error("replayed a log with a gap")
	}
}

func TestLogCacheOff(t *testing.T) {
	e := newLogEndpoint(t, Config{LogCacheAKs: -1})
	e.setBoot(bootLog(1000, "boot"))
	wantRec(t, e.run(t), imv.Allow, "")
	wantRec(t, e.run(t), imv.Allow, "")
	if want := [][2]int{{0, 0}}; !slices.Equal(e.requests, want) {
		t.Errorf("offsets asked %v, want %v without a cache", e.requests, want)
	}
}
