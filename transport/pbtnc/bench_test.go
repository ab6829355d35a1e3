package pbtnc

import (
	"context"
	"testing"
)

// benchBatch is a realistic CDATA batch: a language preference and four
// PB-PA messages of about 1 KB (OS facts, a TPM quote, an IMA log excerpt,
// VM facts).
func benchBatch() *Batch {
	b := &Batch{Type: BatchCDATA, Messages: []Message{LanguagePreference("en, zh-CN;q=0.8").Message()}}
	for i, st := range []PASubtype{SubtypeOS, {Vendor: 0x5597, Subtype: 1}, SubtypeNEAClient, SubtypeVPN} {
		body := make([]byte, 1000+i*37)
		for j := range body {
			body[j] = byte(j * (i + 1))
		}
		b.Messages = append(b.Messages, PA{Subtype: st, CollectorID: uint16(i + 1), ValidatorID: AnyID, Body: body}.Message())
	}
	return b
}

func BenchmarkBatchMarshal(b *testing.B) {
	batch := benchBatch()
	data, _ := batch.MarshalBinary()
	buf := make([]byte, 0, len(data))
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = batch.AppendBinary(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseBatch(b *testing.B) {
	data, _ := benchBatch().MarshalBinary()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseBatch(data, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// benchIMC and benchIMV exchange ~1 KB PB-PA messages for a fixed number
// of rounds, like an OS + TPM assessment.
type benchIMC struct{ pa []PA }

func (c *benchIMC) Begin(context.Context) ([]PA, error)         { return c.pa, nil }
func (c *benchIMC) Receive(context.Context, []PA) ([]PA, error) { return c.pa, nil }
func (c *benchIMC) Result(context.Context, Result) error        { return nil }
func (v *benchIMV) BeginHandshake(context.Context) error        { v.n = 0; return nil }
func (v *benchIMV) Receive(context.Context, []PA) ([]PA, *Result, error) {
	v.n++
	if v.n > 2 {
		return nil, &v.res, nil
	}
	return v.pa, nil, nil
}

type benchIMV struct {
	pa  []PA
	res Result
	n   int
}

// BenchmarkHandshake runs one full assessment in memory: Start, three
// CDATA/SDATA rounds with 1 KB PB-PA messages, RESULT and CLOSE.
func BenchmarkHandshake(b *testing.B) {
	body := make([]byte, 1024)
	pas := []PA{{Subtype: SubtypeOS, CollectorID: 1, ValidatorID: AnyID, Body: body},
		{Subtype: PASubtype{0x5597, 1}, CollectorID: 2, ValidatorID: AnyID, Body: body}}
	res := fullResult()
	b.ReportAllocs()
	for b.Loop() {
		c := NewClient(&benchIMC{pa: pas}, Config{Language: "en", CloseAfterResult: true})
		s := NewServer(&benchIMV{pa: pas[:1], res: res}, Config{})
		out, err := c.Start(ctx)
		for toServer := true; out != nil && err == nil; toServer = !toServer {
			if toServer {
				out, err = s.Step(ctx, out)
			} else {
				out, err = c.Step(ctx, out)
			}
		}
		if err != nil || s.State() != StateEnd {
			b.Fatalf("handshake: %v, server state %v", err, s.State())
		}
	}
}
