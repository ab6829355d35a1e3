package imc

import (
	"bytes"
	"context"
	"testing"

	"trustnac/transport/patnc"
	"trustnac/transport/pbtnc"
)

// bindingSpy is a collector that records the channel binding its session
// sees.
type bindingSpy struct{ seen [][]byte }

func (b *bindingSpy) Name() string             { return "spy" }
func (b *bindingSpy) Subtype() pbtnc.PASubtype { return pbtnc.SubtypeTesting }
func (b *bindingSpy) NewSession(ctx context.Context) (Session, error) {
	b.seen = append(b.seen, ChannelBinding(ctx))
	return b, nil
}
func (b *bindingSpy) Begin(ctx context.Context) ([]patnc.Attribute, error) {
	b.seen = append(b.seen, ChannelBinding(ctx))
	return nil, nil
}
func (b *bindingSpy) Receive(ctx context.Context, msg *patnc.Message) ([]patnc.Attribute, error) {
	b.seen = append(b.seen, ChannelBinding(ctx))
	return nil, nil
}

func TestChannelBinding(t *testing.T) {
	body, _ := (&patnc.Message{ID: 1}).MarshalBinary()
	msg := []pbtnc.PA{{Subtype: pbtnc.SubtypeTesting, Body: body}}
	bind, other := []byte("binding of this channel"), []byte("set on the context")
	for _, tc := range []struct {
		name    string
		hs, ctx []byte
		want    []byte
	}{
		{"none", nil, nil, nil},
		{"handshake", bind, nil, bind},
		{"context", nil, other, other},
		{"context wins", bind, other, other},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spy := &bindingSpy{}
			h := NewClient([]Collector{spy}, nil).Handshake()
			h.ChannelBinding = tc.hs
			ctx := WithChannelBinding(context.Background(), tc.ctx)
			if _, err := h.Begin(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := h.Receive(ctx, msg); err != nil {
				t.Fatal(err)
			}
			if len(spy.seen) != 3 {
				t.Fatalf("seen %d times", len(spy.seen))
			}
			for i, b := range spy.seen {
				if !bytes.Equal(b, tc.want) {
					t.Fatalf("call %d saw %q, want %q", i, b, tc.want)
				}
			}
		})
	}
	// The context keeps its own copy.
	b := []byte{1, 2, 3}
	ctx := WithChannelBinding(context.Background(), b)
	b[0] = 9
	if got := ChannelBinding(ctx); got[0] != 1 {
		t.Fatal("the binding aliases the caller's slice")
	}
}
