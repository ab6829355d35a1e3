package osimc

import (
	"context"
	"os"
	"testing"
)

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
