package tnc

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"trustnac/transport/eap"
	"trustnac/transport/pbtnc"
)

// TestServerRejects feeds hand-made Responses to a Server. Every step but the
// last must be accepted without ending the method; the last must fail with
// err, or end as done/success say.
func TestServerRejects(t *testing.T) {
	type step struct {
		in   []byte
		want []byte // expected Request type-data; nil: not checked
	}
	cdata := batch(t, false, pbtnc.BatchCDATA, 30)
	tnc := func(p TNCPacket) []byte { p.Version = 1; return tncData(t, p) }
	ack := []byte{0x01}
	tests := []struct {
		name    string
		cfg     ServerConfig
		steps   []step
		err     error
		done    bool
		success bool
	}{
		{name: "EAP-TNC version 2", cfg: ServerConfig{Type: eap.TypeTNC}, steps: []step{{in: concat([]byte{0x02}, cdata)}}, err: ErrVersion},
		{name: "PT-EAP version 0", cfg: ServerConfig{Type: eap.TypePTEAP}, steps: []step{{in: concat([]byte{0x00}, cdata)}}, err: ErrVersion},
		{name: "PT-EAP version 2 ack", cfg: ServerConfig{Type: eap.TypePTEAP}, steps: []step{{in: []byte{0x02}}}, err: ErrVersion},
		{name: "PT-EAP S from the peer", cfg: ServerConfig{Type: eap.TypePTEAP}, steps: []step{{in: concat([]byte{0x81}, cdata)}}, err: ErrProtocol},
		{name: "EAP-TNC S from the peer", cfg: ServerConfig{Type: eap.TypeTNC}, steps: []step{{in: tnc(TNCPacket{Start: true, Data: cdata})}}, err: ErrProtocol},
		{name: "PT-EAP IF-TNCCS 1.1", cfg: ServerConfig{Type: eap.TypePTEAP}, steps: []step{{in: concat([]byte{0x01}, []byte("<?xml version=\"1.0\"?><TNCCS-Batch/>"))}}, err: ErrTNCCS11},
		{name: "EAP-TNC IF-TNCCS 1.1", cfg: ServerConfig{Type: eap.TypeTNC}, steps: []step{{in: tnc(TNCPacket{Data: []byte("<TNCCS-Batch/>")})}}, err: ErrTNCCS11},
		{name: "L beyond the cap", cfg: ServerConfig{Type: eap.TypeTNC, MaxMessage: 100}, steps: []step{{in: tnc(TNCPacket{LengthIncluded: true, More: true, MessageLength: 101, Data: cdata[:10]})}}, err: ErrTooLarge},
		{name: "L beyond 4 GiB", cfg: ServerConfig{Type: eap.TypeTNC}, steps: []step{{in: tnc(TNCPacket{LengthIncluded: true, More: true, MessageLength: 0xffffffff, Data: cdata[:10]})}}, err: ErrTooLarge},
		{name: "EAP-TNC unfragmented beyond the cap", cfg: ServerConfig{Type: eap.TypeTNC, MaxMessage: 100}, steps: []step{{in: tnc(TNCPacket{Data: make([]byte, 101)})}}, err: ErrTooLarge},
		{name: "PT-EAP beyond the cap", cfg: ServerConfig{Type: eap.TypePTEAP, MaxMessage: 100}, steps: []step{{in: concat([]byte{0x01}, make([]byte, 101))}}, err: ErrTooLarge},
		{name: "first fragment without L", cfg: ServerConfig{Type: eap.TypeTNC}, steps: []step{{in: tnc(TNCPacket{More: true, Data: cdata[:10]})}}, err: ErrFragment},
		{name: "first fragment holds all of L", cfg: ServerConfig{Type: eap.TypeTNC}, steps: []step{{in: tnc(TNCPacket{LengthIncluded: true, More: true, MessageLength: 10, Data: cdata[:10]})}}, err: ErrFragment},
		{name: "empty first fragment", cfg: ServerConfig{Type: eap.TypeTNC}, steps: []step{{in: tnc(TNCPacket{LengthIncluded: true, More: true, MessageLength: 10})}}, err: ErrFragment},
		{name: "unfragmented with a wrong L", cfg: ServerConfig{Type: eap.TypeTNC}, steps: []step{{in: tnc(TNCPacket{LengthIncluded: true, MessageLength: uint32(len(cdata) + 1), Data: cdata})}}, err: ErrFragment},
		{name: "data beyond L", cfg: ServerConfig{Type: eap.TypeTNC}, steps: []step{
			{in: tnc(TNCPacket{LengthIncluded: true, More: true, MessageLength: 20, Data: cdata[:10]}), want: ack},
			{in: tnc(TNCPacket{Data: cdata[10:21]})},
		}, err: ErrFragment},
		{name: "L changes", cfg: ServerConfig{Type: eap.TypeTNC}, steps: []step{
			{in: tnc(TNCPacket{LengthIncluded: true, More: true, MessageLength: 20, Data: cdata[:10]}), want: ack},
			{in: tnc(TNCPacket{LengthIncluded: true, More: true, MessageLength: 30, Data: cdata[10:15]})},
		}, err: ErrFragment},
		{name: "message shorter than L", cfg: ServerConfig{Type: eap.TypeTNC}, steps: []step{
			{in: tnc(TNCPacket{LengthIncluded: true, More: true, MessageLength: 20, Data: cdata[:10]}), want: ack},
			{in: tnc(TNCPacket{Data: cdata[10:15]})},
		}, err: ErrFragment},
		{name: "empty middle fragment", cfg: ServerConfig{Type: eap.TypeTNC}, steps: []step{
			{in: tnc(TNCPacket{LengthIncluded: true, More: true, MessageLength: 20, Data: cdata[:10]}), want: ack},
			{in: tnc(TNCPacket{More: true})},
		}, err: ErrFragment},
		{name: "M after all of L", cfg: ServerConfig{Type: eap.TypeTNC}, steps: []step{
			{in: tnc(TNCPacket{LengthIncluded: true, More: true, MessageLength: 20, Data: cdata[:10]}), want: ack},
			{in: tnc(TNCPacket{More: true, Data: cdata[10:20]})},
		}, err: ErrFragment},
		{name: "S in a fragment", cfg: ServerConfig{Type: eap.TypeTNC}, steps: []step{
			{in: tnc(TNCPacket{LengthIncluded: true, More: true, MessageLength: 20, Data: cdata[:10]}), want: ack},
			{in: tnc(TNCPacket{Start: true, Data: cdata[10:20]})},
		}, err: ErrProtocol},
		{name: "fragment flood", cfg: ServerConfig{Type: eap.TypeTNC, MaxFragments: 4}, steps: []step{
			{in: tnc(TNCPacket{LengthIncluded: true, More: true, MessageLength: 1000, Data: []byte{2}}), want: ack},
			{in: tnc(TNCPacket{More: true, Data: []byte{0}}), want: ack},
			{in: tnc(TNCPacket{More: true, Data: []byte{0}}), want: ack},
			{in: tnc(TNCPacket{More: true, Data: []byte{1}}), want: ack},
			{in: tnc(TNCPacket{More: true, Data: []byte{0}})},
		}, err: ErrTooManyFragments},
		{name: "reassembly with L repeated", cfg: ServerConfig{Type: eap.TypeTNC}, steps: []step{
			{in: tnc(TNCPacket{LengthIncluded: true, More: true, MessageLength: uint32(len(cdata)), Data: cdata[:10]}), want: ack},
			{in: tnc(TNCPacket{LengthIncluded: true, More: true, MessageLength: uint32(len(cdata)), Data: cdata[10:20]}), want: ack},
			{in: tnc(TNCPacket{Data: cdata[20:]})},
		}},
		{name: "empty message before any batch", cfg: ServerConfig{Type: eap.TypePTEAP}, steps: []step{{in: []byte{0x01}}}, err: ErrProtocol},
		{name: "empty type-data", cfg: ServerConfig{Type: eap.TypePTEAP}, steps: []step{{in: nil}}, err: ErrMalformed},
		{name: "EAP-TNC short length", cfg: ServerConfig{Type: eap.TypeTNC}, steps: []step{{in: []byte{0x81, 0}}}, err: ErrMalformed},
		{name: "data while an ack is due", cfg: ServerConfig{Type: eap.TypeTNC, MaxFragment: 32}, steps: []step{
			{in: tnc(TNCPacket{Data: cdata})},
			{in: tnc(TNCPacket{Data: cdata})},
		}, err: ErrProtocol},
		{name: "peer closes before a result", cfg: ServerConfig{Type: eap.TypePTEAP}, steps: []step{
			{in: concat([]byte{0x01}, cdata)},
			{in: concat([]byte{0x01}, batch(t, false, pbtnc.BatchClose, 0))},
		}, err: ErrSession},
		{name: "empty message before the result", cfg: ServerConfig{Type: eap.TypePTEAP}, steps: []step{
			{in: concat([]byte{0x01}, cdata)},
			{in: []byte{0x01}},
		}, err: ErrProtocol},
		{name: "garbage batch: CLOSE, then failure", cfg: ServerConfig{Type: eap.TypePTEAP}, steps: []step{
			{in: []byte{0x01, 2, 0, 0, 1, 0, 0, 0, 99, 0xde, 0xad}},
			{in: []byte{0x01}},
		}, err: ErrSession},
		{name: "result acknowledged", cfg: ServerConfig{Type: eap.TypeTNC}, steps: []step{
			{in: tnc(TNCPacket{Data: cdata})},
			{in: tnc(TNCPacket{Data: batch(t, false, pbtnc.BatchCDATA, 5)})},
			{in: ack},
		}, done: true, success: true},
		{name: "result answered by CLOSE", cfg: ServerConfig{Type: eap.TypePTEAP}, steps: []step{
			{in: concat([]byte{0x01}, cdata)},
			{in: concat([]byte{0x01}, batch(t, false, pbtnc.BatchCDATA, 5))},
			{in: concat([]byte{0x01}, batch(t, false, pbtnc.BatchClose, 0))},
		}, done: true, success: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewServer(tt.cfg, pbtnc.NewServer(&fakeIMV{rounds: 1, body: 100, rec: pbtnc.RecommendationAllowed}, pbtnc.Config{MaxBatchSize: pbtnc.EAPMaxBatchSize}))
			if s.Type() != tt.cfg.Type {
				t.Fatalf("Type() = %v", s.Type())
			}
			start, err := s.Start(ctx)
			if err != nil {
				t.Fatal(err)
			}
			wantStart := byte(TNCFlagStart | 1)
			if tt.cfg.Type == eap.TypePTEAP {
				wantStart = PTEAPFlagStart | 1
			}
			if !bytes.Equal(start, []byte{wantStart}) {
				t.Fatalf("Start = %x", start)
			}
			var res eap.Step
			for i, st := range tt.steps {
				res, err = s.Process(ctx, st.in)
				last := i == len(tt.steps)-1
				if (!last || tt.err == nil) && err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if !last && res.Done {
					t.Fatalf("step %d ended the method", i)
				}
				if st.want != nil && !bytes.Equal(res.Data, st.want) {
					t.Fatalf("step %d: Request %x, want %x", i, res.Data, st.want)
				}
			}
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("last step: %v, want %v", err, tt.err)
				}
				return
			}
			if res.Done != tt.done || res.Success != tt.success {
				t.Fatalf("last step: %+v, want done %v success %v", res, tt.done, tt.success)
			}
		})
	}
}

// TestServerGarbageBatch checks what the server sends for a batch PB-TNC
// rejects: a CLOSE with a fatal PB-Error, before the method fails.
func TestServerGarbageBatch(t *testing.T) {
	for _, typ := range []eap.Type{eap.TypePTEAP, eap.TypeTNC} {
		t.Run(typ.String(), func(t *testing.T) {
			ss := pbtnc.NewServer(&fakeIMV{}, pbtnc.Config{MaxBatchSize: pbtnc.EAPMaxBatchSize})
			s := NewServer(ServerConfig{Type: typ}, ss)
			if _, err := s.Start(ctx); err != nil {
				t.Fatal(err)
			}
			res, err := s.Process(ctx, []byte{0x01, 2, 0, 0, 9, 0, 0, 0, 8})
			if err != nil || res.Done {
				t.Fatalf("Process = %+v, %v; want the CLOSE to go out", res, err)
			}
			pe, err := closeError(res.Data[1:])
			if err != nil || !pe.Fatal {
				t.Fatalf("Request carries %x: %v %+v", res.Data, err, pe)
			}
			var ve *VersionError
			_, err = s.Process(ctx, []byte{0x01})
			if !errors.Is(err, ErrSession) || errors.As(err, &ve) {
				t.Fatalf("after CLOSE: %v", err)
			}
			var sent *pbtnc.Error
			if !errors.As(err, &sent) || sent.Code != pe.Code {
				t.Fatalf("error %v does not carry the PB-Error sent (%v)", err, pe)
			}
		})
	}
}

func TestServerVersionError(t *testing.T) {
	s := NewServer(ServerConfig{Type: eap.TypeTNC}, pbtnc.NewServer(&fakeIMV{}, pbtnc.Config{}))
	if _, err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := s.Process(ctx, []byte{0x03})
	var ve *VersionError
	if !errors.As(err, &ve) || ve.Got != 3 || ve.Want != 1 || ve.Type != eap.TypeTNC {
		t.Fatalf("err = %v", err)
	}
}

func TestServerMisuse(t *testing.T) {
	ss := pbtnc.NewServer(&fakeIMV{}, pbtnc.Config{})
	bad := NewServer(ServerConfig{Type: eap.TypeTTLS}, ss)
	if _, err := bad.Start(ctx); !errors.Is(err, ErrConfig) {
		t.Fatalf("Start with TTLS type: %v", err)
	}
	if _, err := bad.Process(ctx, []byte{1}); !errors.Is(err, ErrConfig) {
		t.Fatalf("Process with TTLS type: %v", err)
	}
	s := NewServer(ServerConfig{Type: eap.TypePTEAP}, ss)
	if _, err := s.Process(ctx, []byte{1}); !errors.Is(err, ErrProtocol) {
		t.Fatalf("Process before Start: %v", err)
	}
	if _, err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Start(ctx); !errors.Is(err, ErrProtocol) {
		t.Fatalf("second Start: %v", err)
	}
}

// countingSession answers with a fixed batch and counts Steps.
type countingSession struct {
	out   []byte
	steps int
}

func (c *countingSession) Step(context.Context, []byte) ([]byte, error) { c.steps++; return c.out, nil }
func (c *countingSession) State() pbtnc.State                           { return pbtnc.StateClientWorking }

// TestServerSendTooLarge: a session that returns a batch above MaxMessage
// fails the method instead of sending it.
func TestServerSendTooLarge(t *testing.T) {
	cs := &countingSession{out: make([]byte, 200)}
	s := NewServer(ServerConfig{Type: eap.TypeTNC, MaxMessage: 100}, cs)
	if _, err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Process(ctx, []byte{0x01, 2}); !errors.Is(err, ErrTooLarge) || cs.steps != 1 {
		t.Fatalf("err %v after %d steps", err, cs.steps)
	}
}

func TestServerAfterEnd(t *testing.T) {
	s := NewServer(ServerConfig{Type: eap.TypePTEAP}, pbtnc.NewServer(&fakeIMV{rec: pbtnc.RecommendationAllowed}, pbtnc.Config{}))
	if _, err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := s.Process(ctx, concat([]byte{0x01}, batch(t, false, pbtnc.BatchCDATA, 5)))
	if err != nil || res.Done {
		t.Fatalf("CDATA: %+v %v", res, err)
	}
	if res, err = s.Process(ctx, []byte{0x01}); err != nil || !res.Done || !res.Success {
		t.Fatalf("ack of RESULT: %+v %v", res, err)
	}
	if _, err = s.Process(ctx, []byte{0x01}); !errors.Is(err, ErrProtocol) {
		t.Fatalf("Response after the end: %v", err)
	}
}
