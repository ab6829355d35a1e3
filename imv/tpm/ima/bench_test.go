package ima

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"testing"
)

// benchLog is a 10,000-entry ima-ng list with sha256 file digests.
func benchLog(n int) []byte {
	es := make([]testEntry, 0, n)
	es = append(es, ngEntry("sha256", sha256Of("aggregate"), "boot_aggregate"))
	for i := 1; i < n; i++ {
		d := sha256.Sum256(binary.LittleEndian.AppendUint32(nil, uint32(i)))
		es = append(es, ngEntry("sha256", d[:], fmt.Sprintf("/usr/lib/x86_64-linux-gnu/lib%05d.so.1", i)))
	}
	return encodeAll(es)
}

func BenchmarkIMAReplay(b *testing.B) {
	log := benchLog(10000)
	entries, err := ParseBinary(log, 0)
	if err != nil {
		b.Fatal(err)
	}
	for _, bank := range []struct {
		name string
		alg  uint16
	}{{"sha1", AlgSHA1}, {"sha256", AlgSHA256}, {"sm3_256", AlgSM3256}} {
		b.Run(bank.name, func(b *testing.B) {
			b.SetBytes(int64(len(log)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Replay(entries, bank.alg); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "replays/s")
		})
	}
}

func BenchmarkIMAParseBinary(b *testing.B) {
	log := benchLog(10000)
	b.SetBytes(int64(len(log)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseBinary(log, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAllowlistCheck(b *testing.B) {
	log := benchLog(10000)
	entries, err := ParseBinary(log, 0)
	if err != nil {
		b.Fatal(err)
	}
	var list []byte
	for _, e := range entries[1:] {
		list = fmt.Appendf(list, "%x  %s\n", e.FileDigest, e.Path)
	}
	a, err := ParseAllowlist(list)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if v := a.Check(entries); len(v) != 0 {
			b.Fatalf("violations: %v", v[:1])
		}
	}
}
