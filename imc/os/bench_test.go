package osimc

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// healthyFixture is the testbed's healthy endpoint tree, the root the
// end-to-end tests and radload's posture mode point the collector at.
var healthyFixture = filepath.Join("..", "..", "testbed", "fixtures", "healthy")

// BenchmarkBeginRealMachine measures a full collection on this machine:
// os-release, uname, the dpkg status file, /proc/net and the sysctls.
func BenchmarkBeginRealMachine(b *testing.B) {
	if _, err := os.Stat(DefaultDpkgStatus); err != nil {
		b.Skip("not a dpkg-based machine:", err)
	}
	ctx := context.Background()
	c := New(Config{}, nil)
	b.ReportAllocs()
	var n int64
	for b.Loop() {
		s, _ := c.NewSession(ctx)
		attrs, err := s.Begin(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if len(attrs) != len(beginAttributes) {
			b.Fatalf("sent %d attributes, want %d", len(attrs), len(beginAttributes))
		}
		n = 0
		for _, a := range attrs {
			n += int64(len(a.Value))
		}
	}
	b.ReportMetric(float64(n), "attr-bytes/op")
}

// BenchmarkBeginFixture measures a full collection against the testbed's
// healthy fixture tree: the per-assessment cost of the agent in the
// posture benchmarks, where every file is a small regular file.
func BenchmarkBeginFixture(b *testing.B) {
	if _, err := os.Stat(healthyFixture); err != nil {
		b.Skip("no healthy fixture:", err)
	}
	c := New(Config{Root: healthyFixture}, nil)
	benchBegin(b, func() *Collector { return c })
}

// BenchmarkBeginFixtureNewCollector is BenchmarkBeginFixture with a new
// collector for every collection, as the agent builds them per
// conversation: collectors of one configuration share their cache.
func BenchmarkBeginFixtureNewCollector(b *testing.B) {
	if _, err := os.Stat(healthyFixture); err != nil {
		b.Skip("no healthy fixture:", err)
	}
	benchBegin(b, func() *Collector { return New(Config{Root: healthyFixture}, nil) })
}

// benchBegin runs Begin on a new session of the collector next returns.
func benchBegin(b *testing.B, next func() *Collector) {
	b.ReportAllocs()
	for b.Loop() {
		if attrs := begin(b, next()); len(attrs) != len(beginAttributes) {
			b.Fatalf("sent %d attributes, want %d", len(attrs), len(beginAttributes))
		}
	}
}

// BenchmarkParseDpkgStatus measures the status-file parser on this
// machine's status file.
func BenchmarkParseDpkgStatus(b *testing.B) {
	data, err := os.ReadFile(DefaultDpkgStatus)
	if err != nil {
		b.Skip(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseDpkgStatus(bytesReader(data), DefaultMaxPackages); err != nil {
			b.Fatal(err)
		}
	}
}
