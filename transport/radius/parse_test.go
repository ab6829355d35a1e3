package radius

import (
	"bytes"
	"testing"

	radius "layeh.com/radius"
)

// checkParseChecked decodes b with parseChecked (inline room for inline
// attributes) when checkPacket accepts it, and compares the result with
// radius.Parse's.
func checkParseChecked(t *testing.T, b []byte, inline int) {
	t.Helper()
	pkt, info, err := checkPacket(b)
	if err != nil {
		return
	}
	want, err := radius.Parse(pkt, testSecret)
	if err != nil {
		t.Fatalf("radius.Parse rejects what checkPacket accepted: %v", err)
	}
	var got radius.Packet
	avps := make([]radius.AVP, inline)
	ptrs := make([]*radius.AVP, inline)
	src := bytes.Clone(pkt)
	parseChecked(&got, avps, ptrs, src, info, testSecret)
	if got.Code != want.Code || got.Identifier != want.Identifier || got.Authenticator != want.Authenticator ||
		!bytes.Equal(got.Secret, want.Secret) {
		t.Fatalf("header %v %d %x, want %v %d %x", got.Code, got.Identifier, got.Authenticator, want.Code, want.Identifier, want.Authenticator)
	}
	if len(got.Attributes) != len(want.Attributes) || len(got.Attributes) != info.attrs {
		t.Fatalf("%d attributes, radius.Parse %d, checkPacket %d", len(got.Attributes), len(want.Attributes), info.attrs)
	}
	if (got.Attributes == nil) != (want.Attributes == nil) {
		t.Fatalf("attributes nil %v, radius.Parse nil %v", got.Attributes == nil, want.Attributes == nil)
	}
	for i, a := range got.Attributes {
		w := want.Attributes[i]
		if a.Type != w.Type || !bytes.Equal(a.Attribute, w.Attribute) || (a.Attribute == nil) != (w.Attribute == nil) {
			t.Fatalf("attribute %d: %d %x, want %d %x", i, a.Type, a.Attribute, w.Type, w.Attribute)
		}
	}
	// Values are copies: the datagram buffer is reused after parsing.
	clear(src)
	for i, a := range got.Attributes {
		if !bytes.Equal(a.Attribute, want.Attributes[i].Attribute) {
			t.Fatalf("attribute %d changed with the input buffer", i)
		}
	}
	// An append to one value does not reach the next.
	if len(got.Attributes) >= 2 {
		_ = append(got.Attributes[0].Attribute, 0xAA, 0xAA, 0xAA)
		if !bytes.Equal(got.Attributes[1].Attribute, want.Attributes[1].Attribute) {
			t.Fatal("an append to one attribute overwrote the next")
		}
	}
}

func TestParseChecked(t *testing.T) {
	many := make([]attr, 40)
	for i := range many {
		many[i] = attr{byte(26 + i%3), bytes.Repeat([]byte{byte(i)}, i%5)}
	}
	for _, tt := range []struct {
		name string
		b    []byte
	}{
		{"no attributes", buildRequest(radius.CodeAccessRequest, 1, authOf("none"), nil, buildOpts{noMA: true})},
		{"typical", benchRequest()},
		{"empty values", buildRequest(radius.CodeAccessRequest, 2, authOf("empty"), []attr{{1, nil}, {31, nil}, {1, []byte("x")}}, buildOpts{})},
		{"more than inline", buildRequest(radius.CodeAccessRequest, 3, authOf("many"), many, buildOpts{})},
		{"padding after Length", buildRequest(radius.CodeAccessRequest, 4, authOf("pad"), []attr{{1, []byte("user")}}, buildOpts{trailing: []byte{1, 2, 3}})},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := checkPacket(tt.b); err != nil {
				t.Fatal(err)
			}
			checkParseChecked(t, tt.b, inlineAttrs)
			checkParseChecked(t, tt.b, 2)
		})
	}
}

// FuzzParseChecked checks that the server's decoder agrees with
// radius.Parse on every datagram checkPacket accepts, with and without
// room for the attributes inline.
func FuzzParseChecked(f *testing.F) {
	f.Add(benchRequest())
	f.Add(buildRequest(radius.CodeAccessRequest, 2, authOf("empty"), []attr{{1, nil}, {31, nil}, {1, []byte("x")}}, buildOpts{}))
	f.Add(buildRequest(radius.CodeAccountingRequest, 3, authOf("acct"), []attr{{40, []byte{0, 0, 0, 1}}, {44, []byte("s-1")}}, buildOpts{}))
	f.Fuzz(func(t *testing.T, b []byte) {
		checkParseChecked(t, b, inlineAttrs)
		checkParseChecked(t, b, 1)
	})
}
