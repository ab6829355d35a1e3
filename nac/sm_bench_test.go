package nac

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"trustnac/pdp"
	"trustnac/transport/smdtls"
)

// The SM channel against PT-TLS over TLS 1.3 on loopback, both served by
// the same in-process PDP (benchPDP: SM listener on by default). Record
// throughput, SM4-GCM against AES-GCM, is transport/smdtls's
// BenchmarkSM4GCMSeal and BenchmarkAESGCMSeal; `make bench-sm` runs all
// of them in one go.

// benchPSK issues a PSK for endpoint in p's store, as enrollment would.
func benchPSK(b *testing.B, p *PDP, endpoint string) *agentPSK {
	b.Helper()
	k, key, err := p.PSKs().Issue(endpoint, pdp.PSKKindTPM, "sha256:bench", time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	return &agentPSK{Identity: k.Identity, Key: key, Issued: k.Issued, Expires: k.Expires}
}

// BenchmarkSMHandshake is one channel handshake per op, connection set-up
// and close included: SM-DTLS (cookie exchange, PSK with SM3 PRF,
// extended master secret, SM4-GCM Finished) against TCP + TLS 1.3 (X25519,
// the PDP's ECDSA P-256 certificate, checked by pin).
func BenchmarkSMHandshake(b *testing.B) {
	p := benchPDP(b)
	b.Run("sm-dtls", func(b *testing.B) {
		psk := benchPSK(b, p, "id:bench")
		raddr := p.SMAddr().(*net.UDPAddr)
		cfg := &smdtls.Config{Identity: []byte(psk.Identity), PSK: psk.Key}
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			c, err := smdtls.Dial(context.Background(), "udp", raddr, cfg)
			if err != nil {
				b.Fatal(err)
			}
			c.Close()
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "handshakes/s")
	})
	b.Run("pt-tls-tls13", func(b *testing.B) {
		tc, err := agentTLSConfig(AgentPDPConfig{Pin: p.Fingerprint, ServerName: "localhost"})
		if err != nil {
			b.Fatal(err)
		}
		addr := p.PTTLSAddr().String()
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			raw, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			c := tls.Client(raw, tc)
			if err := c.Handshake(); err != nil {
				b.Fatal(err)
			}
			c.Close()
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "handshakes/s")
	})
}

// BenchmarkSMAssessment is one full assessment per op with the OS
// collector (RunAgent): over SM-DTLS with a stored PSK, against PT-TLS
// over TLS 1.3 (TCP connect, TLS handshake, PT-TLS negotiation). The
// PB-TNC handshake, the policy decision and the store write are the same.
func BenchmarkSMAssessment(b *testing.B) {
	p := benchPDP(b)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	base := func() *AgentConfig {
		return &AgentConfig{
			PDP:        AgentPDPConfig{Address: p.PTTLSAddr().String(), Pin: p.Fingerprint},
			Timeout:    Duration(10 * time.Second),
			Collectors: CollectorsConfig{OS: &OSCollectorConfig{Root: fixture("healthy")}},
		}
	}
	run := func(b *testing.B, cfg *AgentConfig) {
		cfg.SetDefaults()
		if err := cfg.Validate(); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			o, err := RunAgent(context.Background(), cfg, log)
			if err != nil {
				b.Fatal(err)
			}
			if o.Role != "admit" {
				b.Fatalf("role %s", o.Role)
			}
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "assessments/s")
	}
	b.Run("sm-dtls", func(b *testing.B) {
		cfg := base()
		no := false
		cfg.SM = &AgentSMConfig{Address: p.SMAddr().String(), PSKFile: filepath.Join(b.TempDir(), "psk.json"), Enroll: &no}
		if err := storePSK(cfg.SM.PSKFile, benchPSK(b, p, "id:bench")); err != nil {
			b.Fatal(err)
		}
		pt0 := p.ptServer.Stats().Accepted
		run(b, cfg)
		if n := p.ptServer.Stats().Accepted - pt0; n != 0 {
			b.Fatalf("%d assessments went over PT-TLS", n)
		}
	})
	b.Run("pt-tls-tls13", func(b *testing.B) {
		run(b, base())
	})
}
