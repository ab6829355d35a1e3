package tnc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"trustnac/transport/eap"
	"trustnac/transport/pbtnc"
)

var ctx = context.Background()

// fakeIMV answers `rounds` CDATA batches with a PB-PA of `body` octets each,
// then sends a RESULT with the recommendation.
type fakeIMV struct {
	rounds   int
	body     int
	rec      pbtnc.AccessRecommendation
	fail     error
	n        int
	received int // PB-PA messages received
}

func (v *fakeIMV) BeginHandshake(context.Context) error { v.n = 0; return nil }

func (v *fakeIMV) Receive(_ context.Context, msgs []pbtnc.PA) ([]pbtnc.PA, *pbtnc.Result, error) {
	if v.fail != nil {
		return nil, nil, v.fail
	}
	v.received += len(msgs)
	v.n++
	if v.n > v.rounds {
		return nil, &pbtnc.Result{Recommendation: v.rec}, nil
	}
	return []pbtnc.PA{{Subtype: pbtnc.SubtypeOS, CollectorID: pbtnc.AnyID, ValidatorID: 1, Body: pattern(v.body, byte(v.n))}}, nil, nil
}

// fakeIMC opens with a PB-PA of `body` octets and answers every PB-PA with
// one of the same size.
type fakeIMC struct {
	body     int
	fail     error
	results  []pbtnc.Result
	received int
}

func (c *fakeIMC) Begin(context.Context) ([]pbtnc.PA, error) {
	if c.fail != nil {
		return nil, c.fail
	}
	return []pbtnc.PA{{Subtype: pbtnc.SubtypeOS, CollectorID: 1, ValidatorID: pbtnc.AnyID, Body: pattern(c.body, 0xee)}}, nil
}

func (c *fakeIMC) Receive(_ context.Context, msgs []pbtnc.PA) ([]pbtnc.PA, error) {
	c.received += len(msgs)
	out := make([]pbtnc.PA, 0, len(msgs))
	for _, m := range msgs {
		seed := byte(0x55)
		if len(m.Body) > 0 {
			seed = m.Body[0] ^ 0xff
		}
		out = append(out, pbtnc.PA{Subtype: m.Subtype, CollectorID: 1, ValidatorID: m.ValidatorID, Body: pattern(c.body, seed)})
	}
	return out, nil
}

func (c *fakeIMC) Result(_ context.Context, r pbtnc.Result) error {
	c.results = append(c.results, r)
	return nil
}

// pattern returns n non-trivial octets (n >= 1).
func pattern(n int, seed byte) []byte {
	b := make([]byte, max(n, 1))
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

// wire records what crossed the wire in a conversation.
type wire struct {
	requests  [][]byte // type-data of method Requests
	responses [][]byte // type-data of method Responses
}

// converse runs an EAP conversation between an eap.Server offering m once and
// an eap.Peer running newPeer, encoding and parsing every packet. It returns
// both engines and the method type-data seen.
func converse(t testing.TB, m eap.ServerMethod, newPeer func() eap.PeerMethod) (*eap.Server, *eap.Peer, *wire) {
	t.Helper()
	offered := false
	sel := eap.SelectorFunc(func(_ context.Context, _ string, done []eap.ServerMethod, _ []eap.Type) (eap.ServerMethod, bool, error) {
		if !offered {
			offered = true
			return m, false, nil
		}
		return nil, len(done) > 0, nil
	})
	srv := eap.NewServer(sel, 0)
	peer := eap.NewPeer("endpoint-1", eap.PeerFactory{Type: m.Type(), New: newPeer})
	w := &wire{}
	req := srv.Start(7)
	for i := 0; ; i++ {
		if i > 2000 {
			t.Fatal("conversation does not end")
		}
		req = reparse(t, req)
		if req.Code == eap.CodeRequest && req.Type == m.Type() {
			w.requests = append(w.requests, req.Data)
		}
		resp, err := peer.Handle(ctx, req)
		if req.Code == eap.CodeSuccess || req.Code == eap.CodeFailure {
			return srv, peer, w
		}
		if resp == nil {
			if peer.Outcome() == eap.Failed {
				return srv, peer, w
			}
			t.Fatalf("peer dropped %v: %v", req, err)
		}
		resp = reparse(t, resp)
		if resp.Type == m.Type() {
			w.responses = append(w.responses, resp.Data)
		}
		req, err = srv.Handle(ctx, resp)
		if err != nil {
			t.Fatalf("server: %v", err)
		}
	}
}

func reparse(t testing.TB, p *eap.Packet) *eap.Packet {
	t.Helper()
	b, err := p.MarshalBinary()
	if err != nil {
		t.Fatalf("encode %v: %v", p, err)
	}
	q, err := eap.Parse(b)
	if err != nil {
		t.Fatalf("parse %v: %v", p, err)
	}
	return q
}

// sessions builds a PB-TNC server and client limited to EAP batch sizes.
func sessions(imv *fakeIMV, imc *fakeIMC, closeAfter bool) (*pbtnc.Server, *pbtnc.Client) {
	cfg := pbtnc.Config{MaxBatchSize: pbtnc.EAPMaxBatchSize}
	s := pbtnc.NewServer(imv, cfg)
	cfg.CloseAfterResult = closeAfter
	return s, pbtnc.NewClient(imc, cfg)
}

// tncData builds EAP-TNC type-data.
func tncData(t testing.TB, p TNCPacket) []byte {
	t.Helper()
	b, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// batch builds a PB-TNC batch from the client (or the server).
func batch(t testing.TB, fromServer bool, typ pbtnc.BatchType, body int) []byte {
	t.Helper()
	var msgs []pbtnc.Message
	if body > 0 {
		msgs = append(msgs, pbtnc.PA{Subtype: pbtnc.SubtypeOS, CollectorID: 1, ValidatorID: pbtnc.AnyID, Body: pattern(body, 1)}.Message())
	}
	b, err := (&pbtnc.Batch{FromServer: fromServer, Type: typ, Messages: msgs}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// closeError returns the PB-Error in a CLOSE batch, or an error.
func closeError(b []byte) (*pbtnc.Error, error) {
	bt, err := pbtnc.ParseBatch(b, 0)
	if err != nil {
		return nil, err
	}
	if bt.Type != pbtnc.BatchClose {
		return nil, fmt.Errorf("%v batch, want CLOSE", bt.Type)
	}
	for _, m := range bt.Messages {
		if m.Type == pbtnc.MsgError {
			var e pbtnc.Error
			if err := e.UnmarshalBinary(m.Value); err != nil {
				return nil, err
			}
			return &e, nil
		}
	}
	return nil, errors.New("CLOSE without PB-Error")
}

func concat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
