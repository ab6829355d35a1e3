package radius

import (
	"bytes"
	"testing"

	radius "layeh.com/radius"
)

func TestEAPMessage(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789"), 60) // 600 octets: 253+253+94
	tests := []struct {
		name   string
		eap    []byte
		chunks []int
	}{
		{"empty is EAP-Start", []byte{}, []int{0}},
		{"small", []byte{2, 1, 0, 5, 1}, []int{5}},
		{"253", big[:253], []int{253}},
		{"254", big[:254], []int{253, 1}},
		{"600", big, []int{253, 253, 94}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &radius.Packet{Code: radius.CodeAccessRequest, Secret: testSecret}
			p.Add(1, radius.Attribute("user"))
			p.Add(79, radius.Attribute("old eap"))
			p.Add(24, radius.Attribute("state"))
			p.Add(79, radius.Attribute("old tail"))
			SetEAPMessage(p, tt.eap)
			var chunks []int
			var order []radius.Type
			for _, a := range p.Attributes {
				order = append(order, a.Type)
				if a.Type == 79 {
					chunks = append(chunks, len(a.Attribute))
				}
			}
			if !equalInts(chunks, tt.chunks) {
				t.Errorf("chunks %v, want %v", chunks, tt.chunks)
			}
			if order[0] != 1 || order[1] != 24 {
				t.Errorf("other attributes moved: %v", order)
			}
			got, ok := EAPMessage(p)
			if !ok || !bytes.Equal(got, tt.eap) {
				t.Fatalf("EAPMessage = %x, %v", got, ok)
			}
			// Through the wire.
			b, err := EncodeRequest(p)
			if err != nil {
				t.Fatal(err)
			}
			q, err := radius.Parse(b, testSecret)
			if err != nil {
				t.Fatal(err)
			}
			got, ok = EAPMessage(q)
			if !ok || !bytes.Equal(got, tt.eap) {
				t.Fatalf("EAPMessage after the wire = %x, %v", got, ok)
			}
		})
	}
	p := &radius.Packet{Code: radius.CodeAccessRequest}
	if _, ok := EAPMessage(p); ok {
		t.Error("EAPMessage found a message in an empty packet")
	}
	// The result is a copy.
	src := []byte{1, 2, 3, 4}
	SetEAPMessage(p, src)
	src[0] = 9
	got, _ := EAPMessage(p)
	got[1] = 9
	if again, _ := EAPMessage(p); !bytes.Equal(again, []byte{1, 2, 3, 4}) {
		t.Errorf("EAP-Message shares memory: %v", again)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
