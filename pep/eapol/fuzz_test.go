package eapol

import (
	"bytes"
	"testing"
)

// FuzzFrame decodes arbitrary PDUs and Ethernet frames; whatever decodes must encode and decode
// to the same frame.
func FuzzFrame(f *testing.F) {
	f.Add([]byte{2, 1, 0, 0})
	f.Add([]byte{2, 0, 0, 5, 1, 1, 0, 5, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		var fr Frame
		if err := fr.UnmarshalBinary(b); err == nil {
			enc, err := fr.MarshalBinary()
			if err != nil {
				t.Fatalf("decoded %v does not encode: %v", &fr, err)
			}
			var again Frame
			if err := again.UnmarshalBinary(enc); err != nil {
				t.Fatalf("re-decode: %v", err)
			}
			if again.Version != fr.Version || again.Type != fr.Type || !bytes.Equal(again.Body, fr.Body) {
				t.Fatalf("round trip: %+v != %+v", again, fr)
			}
			if !bytes.Equal(enc, b[:len(enc)]) {
				t.Fatalf("encoding % x is not a prefix of the input % x", enc, b)
			}
			if fr.Type == TypeEAPPacket {
				if p, err := fr.EAP(); err == nil {
					if _, err := NewEAPFrame(fr.Version, p); err != nil {
						t.Fatalf("EAP %v does not re-encode: %v", p, err)
					}
				}
			}
			_ = fr.String()
		}
		dst, src, ef, err := ParseEthernet(b)
		if err != nil {
			return
		}
		enc, err := AppendEthernet(nil, dst, src, ef)
		if err != nil {
			t.Fatalf("decoded Ethernet frame does not encode: %v", err)
		}
		d2, s2, f2, err := ParseEthernet(enc)
		if err != nil {
			t.Fatalf("re-decode Ethernet: %v", err)
		}
		if !bytes.Equal(d2, dst) || !bytes.Equal(s2, src) || f2.Version != ef.Version || f2.Type != ef.Type || !bytes.Equal(f2.Body, ef.Body) {
			t.Fatal("Ethernet round trip differs")
		}
	})
}
