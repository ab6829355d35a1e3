package tpmimc

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"trustnac/transport/patnc"
)

// BenchmarkQuote measures Collector.Quote on the simulator: SRK, AK load,
// PCR reads before and after, TPM2_Quote over SHA-256 and SHA-1 PCRs 0–7
// and 10, flushes.
func BenchmarkQuote(b *testing.B) {
	c := newCollector(b, sim(b), Config{})
	ctx := context.Background()
	if _, err := c.AK(ctx); err != nil {
		b.Fatal(err)
	}
	n, sel := nonce(1), twoBanks()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Quote(ctx, n, sel); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSessionQuote measures a whole quote round of the session:
// decode the request, quote, one boot log piece, encode the answer.
func BenchmarkSessionQuote(b *testing.B) {
	dir := b.TempDir()
	boot := filepath.Join(dir, "boot.log")
	if err := os.WriteFile(boot, logData(64<<10), 0o600); err != nil {
		b.Fatal(err)
	}
	c := newCollector(b, sim(b), Config{StateDir: dir, EventLog: boot, IMALog: "-"})
	ctx := context.Background()
	s, _ := c.NewSession(ctx)
	msg := &patnc.Message{ID: 1}
	if err := msg.Add(&patnc.TPMQuoteRequest{Nonce: nonce(1), Selections: twoBanks(),
		Logs: []patnc.LogRequest{{Kind: patnc.LogBoot}}}, false); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		attrs, err := s.Receive(ctx, msg)
		if err != nil || len(attrs) != 2 {
			b.Fatalf("%d attributes, %v", len(attrs), err)
		}
	}
}

// BenchmarkLogPiece reads 256 KiB pieces of a 4 MiB log file.
func BenchmarkLogPiece(b *testing.B) {
	path := filepath.Join(b.TempDir(), "log")
	if err := os.WriteFile(path, logData(4<<20), 0o600); err != nil {
		b.Fatal(err)
	}
	c := newCollector(b, &fakeTPM{}, Config{EventLog: path})
	b.SetBytes(DefaultMaxLogChunk)
	off := uint64(0)
	for b.Loop() {
		p, err := c.LogPiece(patnc.LogBoot, off)
		if err != nil {
			b.Fatal(err)
		}
		off = (off + uint64(len(p.Data))) % p.Total
	}
}
