package bridge

import (
	"testing"
)

// FuzzPortInfo feeds RTM_NEWLINK payloads to the bridge port decoder. Whatever decodes must
// encode and decode again to the same value (the encoder writes the three flags the decoder
// reads, so the value, not the bytes, is compared).
func FuzzPortInfo(f *testing.F) {
	for _, p := range []portInfo{
		{Index: 4, Name: "p0", Master: 2, HasProtinfo: true, Locked: true},
		{Index: 5, Name: "vm-tap0", Master: 2, HasProtinfo: true, Locked: true, MAB: true, Learning: true},
		{Index: 2, Name: "br0"},
	} {
		b, err := p.appendBinary(nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var p portInfo
		if err := p.unmarshalBinary(b); err != nil {
			return
		}
		enc, err := p.appendBinary(nil)
		if err != nil {
			t.Fatalf("decoded %+v but cannot encode it: %v", p, err)
		}
		var q portInfo
		if err := q.unmarshalBinary(enc); err != nil {
			t.Fatalf("re-decode of %x: %v", enc, err)
		}
		if p != q {
			t.Fatalf("round trip: %+v → %+v", p, q)
		}
	})
}
