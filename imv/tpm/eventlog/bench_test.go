package eventlog

import (
	"os"
	"path/filepath"
	"testing"
)

// largestRealLog returns the largest of go-attestation's real logs.
func largestRealLog(b *testing.B) (string, []byte) {
	dir := attestTestdata(b)
	var name string
	var log []byte
	for _, n := range realLogs {
		data, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			b.Fatal(err)
		}
		if len(data) > len(log) {
			name, log = n, data
		}
	}
	return name, log
}

func benchReplay(b *testing.B, log []byte) {
	pcrs, err := Compute(log)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(log)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		res, err := Replay(log, pcrs)
		if err != nil || !res.Replayed {
			b.Fatalf("Replay: %v %v", err, res.Mismatches)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "replays/s")
}

// BenchmarkReplay is the full Replay (our parser and replay of every bank, go-attestation's
// cross-check and Secure Boot parsing, the facts) on the largest real log.
func BenchmarkReplay(b *testing.B) {
	name, log := largestRealLog(b)
	b.Logf("%s, %d bytes", name, len(log))
	benchReplay(b, log)
}

// BenchmarkReplayMultiBank is Replay on a real sha1+sha256+sha384 log with GRUB events.
func BenchmarkReplayMultiBank(b *testing.B) {
	benchReplay(b, readLog(b, "ubuntu_2104_shielded_vm_no_secure_boot_eventlog"))
}

// BenchmarkCompute is our own parser and replay alone on the largest real log.
func BenchmarkCompute(b *testing.B) {
	_, log := largestRealLog(b)
	b.SetBytes(int64(len(log)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compute(log); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "replays/s")
}
