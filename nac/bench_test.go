package nac

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"
)

// benchPDP starts a PDP without SASL on loopback for benchmarks.
func benchPDP(b *testing.B) *PDP {
	b.Helper()
	dir := b.TempDir()
	cfg := &PDPConfig{
		StateDir: filepath.Join(dir, "state"),
		Policy:   "testdata/policy.yaml",
		PTTLS:    PTTLSListenConf{Listen: "127.0.0.1:0"},
		API:      APIConfig{Listen: "off"},
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	p := NewPDP(cfg, slog.New(slog.DiscardHandler))
	if err := p.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Stop(context.Background()) })
	return p
}

// BenchmarkAssessmentPTTLS is one full assessment per op: TCP connect, TLS
// 1.3 handshake, PT-TLS negotiation, the OS collector reading its tree, the
// PB-TNC handshake, the policy decision, the store write and the RESULT.
func BenchmarkAssessmentPTTLS(b *testing.B) {
	for _, par := range []int{1, 8} {
		b.Run(map[int]string{1: "serial", 8: "parallel8"}[par], func(b *testing.B) {
			p := benchPDP(b)
			cfg := &AgentConfig{
				PDP:        AgentPDPConfig{Address: p.PTTLSAddr().String(), Pin: p.Fingerprint},
				Timeout:    Duration(10 * time.Second),
				Collectors: CollectorsConfig{OS: &OSCollectorConfig{Root: fixture("healthy")}},
			}
			cfg.SetDefaults()
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			b.SetParallelism(par)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					o, err := RunAgent(context.Background(), cfg, log)
					if err != nil {
						b.Error(err)
						return
					}
					if o.Role != "admit" {
						b.Errorf("role %s", o.Role)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "assessments/s")
		})
	}
}
