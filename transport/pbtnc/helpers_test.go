package pbtnc

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// unhex decodes a hex string, ignoring spaces, newlines and "|" separators
// used to lay vectors out like the RFC figures.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	r := strings.NewReplacer(" ", "", "\n", "", "\t", "", "|", "")
	b, err := hex.DecodeString(r.Replace(s))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// raw encodes a batch, failing the test on error.
func raw(t testing.TB, fromServer bool, typ BatchType, msgs ...Message) []byte {
	t.Helper()
	b := Batch{FromServer: fromServer, Type: typ, Messages: msgs}
	out, err := b.MarshalBinary()
	if err != nil {
		t.Fatalf("encode %v batch: %v", typ, err)
	}
	return out
}

// expectFatal checks that out is a CLOSE batch from the given side carrying
// exactly one fatal PB-Error with the code (and, for Invalid Parameter,
// the offset), and that err reports the same *Error.
func expectFatal(t testing.TB, out []byte, err error, fromServer bool, code ErrorCode, offset uint32) *Error {
	t.Helper()
	var got *Error
	if !errors.As(err, &got) {
		t.Fatalf("error %v does not carry a *Error", err)
	}
	if got.Code != code || !got.Fatal || got.Vendor != VendorIETF {
		t.Fatalf("error = %v (code %d fatal %v), want fatal %v", got, got.Code, got.Fatal, code)
	}
	if code == ErrInvalidParameter && got.Offset != offset {
		t.Fatalf("error offset = %d, want %d (%v)", got.Offset, offset, got)
	}
	b, perr := ParseBatch(out, 0)
	if perr != nil {
		t.Fatalf("reply does not parse: %v (% x)", perr, out)
	}
	if b.Type != BatchClose || b.FromServer != fromServer {
		t.Fatalf("reply is %v from server=%v, want CLOSE from server=%v", b.Type, b.FromServer, fromServer)
	}
	if len(b.Messages) != 1 || b.Messages[0].Type != MsgError || !b.Messages[0].NoSkip {
		t.Fatalf("reply messages = %+v, want one PB-Error with NOSKIP", b.Messages)
	}
	var sent Error
	if err := sent.UnmarshalBinary(b.Messages[0].Value); err != nil {
		t.Fatalf("PB-Error in reply: %v", err)
	}
	if sent.Code != code || !sent.Fatal || (code == ErrInvalidParameter && sent.Offset != offset) {
		t.Fatalf("sent PB-Error = %+v, want fatal %v offset %d", sent, code, offset)
	}
	return got
}

// testIMV is a ServerHandler: it answers `rounds` CDATA batches with one
// PB-PA each, then ends the handshake with result.
type testIMV struct {
	rounds      int
	result      Result
	begins      int
	n           int
	received    [][]PA
	failBegin   error
	failReceive error
	bigReply    int // >0: reply with a PB-PA of this body size
}

func (v *testIMV) BeginHandshake(context.Context) error {
	v.begins++
	v.n = 0
	return v.failBegin
}

func (v *testIMV) Receive(_ context.Context, msgs []PA) ([]PA, *Result, error) {
	if v.failReceive != nil {
		return nil, nil, v.failReceive
	}
	v.received = append(v.received, msgs)
	v.n++
	if v.bigReply > 0 {
		return []PA{{Subtype: SubtypeOS, CollectorID: AnyID, ValidatorID: 7, Body: make([]byte, v.bigReply)}}, nil, nil
	}
	if v.n > v.rounds {
		r := v.result
		return nil, &r, nil
	}
	body := fmt.Sprintf("srv-%d-%d", v.begins, v.n)
	return []PA{{Subtype: SubtypeOS, CollectorID: AnyID, ValidatorID: 7, Body: []byte(body)}}, nil, nil
}

// testIMC is a ClientHandler that answers every PB-PA with an "ack-" one.
type testIMC struct {
	begins      int
	received    [][]PA
	results     []Result
	failBegin   error
	failReceive error
	failResult  error
}

func (c *testIMC) Begin(context.Context) ([]PA, error) {
	c.begins++
	if c.failBegin != nil {
		return nil, c.failBegin
	}
	body := fmt.Sprintf("begin-%d", c.begins)
	return []PA{{Subtype: SubtypeOS, CollectorID: 1, ValidatorID: AnyID, Body: []byte(body)}}, nil
}

func (c *testIMC) Receive(_ context.Context, msgs []PA) ([]PA, error) {
	if c.failReceive != nil {
		return nil, c.failReceive
	}
	c.received = append(c.received, msgs)
	out := make([]PA, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, PA{Subtype: m.Subtype, CollectorID: 1, ValidatorID: m.ValidatorID, Exclusive: true,
			Body: append([]byte("ack-"), m.Body...)})
	}
	return out, nil
}

func (c *testIMC) Result(_ context.Context, r Result) error {
	c.results = append(c.results, r)
	return c.failResult
}

// exchange drives batches between client and server starting with first
// (sent by the client) until one side has nothing to send. It returns the
// batch types seen on the wire in order.
func exchange(t testing.TB, c *Client, s *Server, first []byte) []BatchType {
	t.Helper()
	ctx := context.Background()
	var seen []BatchType
	out, fromClient := first, true
	for i := 0; out != nil; i++ {
		if i > 1000 {
			t.Fatal("exchange does not terminate")
		}
		b, err := ParseBatch(out, 0)
		if err != nil {
			t.Fatalf("wire batch does not parse: %v", err)
		}
		seen = append(seen, b.Type)
		if fromClient {
			out, err = s.Step(ctx, out)
		} else {
			out, err = c.Step(ctx, out)
		}
		if err != nil {
			t.Fatalf("step (to server=%v): %v", fromClient, err)
		}
		fromClient = !fromClient
	}
	return seen
}

func ptr[T any](v T) *T { return &v }
