package mschapv2

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzPacket decodes EAP-MSCHAPv2 type-data and checks that it re-encodes to
// the same octets, that Success and Failure messages that parse survive a
// format/parse round trip, and that a Server after its Challenge and a Peer
// before and after one handle the input without panicking.
func FuzzPacket(f *testing.F) {
	for _, s := range packetSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var p Packet
		if err := p.UnmarshalBinary(data); err == nil {
			b, err := p.MarshalBinary()
			if err != nil || !bytes.Equal(b, data) || p.Len() != len(data) {
				t.Fatalf("round trip of %x: %x, %v (Len %d)", data, b, err, p.Len())
			}
			var q Packet
			if err := q.UnmarshalBinary(b); err != nil || !reflect.DeepEqual(p, q) {
				t.Fatalf("decode-encode-decode %+v != %+v (%v)", p, q, err)
			}
			if !p.Short && p.OpCode == OpSuccess {
				if auth, msg, err := ParseSuccess(p.Message); err == nil {
					a2, m2, err := ParseSuccess(FormatSuccess(auth, msg))
					if err != nil || a2 != auth || m2 != msg {
						t.Fatalf("success message round trip: %x %q %v", a2, m2, err)
					}
				}
			}
			if !p.Short && p.OpCode == OpFailure {
				if fl, err := ParseFailure(p.Message); err == nil {
					f2, err := ParseFailure(fl.String())
					if err != nil || !reflect.DeepEqual(fl, f2) {
						t.Fatalf("failure message round trip: %+v -> %q -> %+v, %v", fl, fl.String(), f2, err)
					}
				}
			}
		} else if !errors.Is(err, ErrMalformed) {
			t.Fatalf("error %v is not ErrMalformed", err)
		}

		s := NewServer(ServerConfig{Name: "pdp", Lookup: users(map[string]string{"alice": "pw"}), Rand: zeros{}})
		if _, err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if st, err := s.Process(ctx, data); err == nil && !st.Done {
			_, _ = s.Process(ctx, []byte{byte(OpSuccess)})
		}

		c := NewPeer("alice", "pw")
		c.rand = zeros{}
		_, _ = c.Process(ctx, data)
		c = NewPeer("alice", "pw")
		c.rand = zeros{}
		ch, _ := (&Packet{OpCode: OpChallenge, Value: make([]byte, 16)}).MarshalBinary()
		if _, err := c.Process(ctx, ch); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Process(ctx, data); err == nil && c.Succeeded() && p.OpCode != OpSuccess {
			t.Fatal("peer succeeded without a Success Request")
		}
	})
}

func packetSeeds(t testing.TB) [][]byte {
	enc := func(p Packet) []byte {
		b, err := p.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	rv := ResponseValue{}
	v, _ := rv.AppendBinary(nil)
	return [][]byte{
		enc(Packet{OpCode: OpChallenge, ID: 1, Value: bytes.Repeat([]byte{0x5b}, 16), Name: "pdp.example"}),
		enc(Packet{OpCode: OpResponse, ID: 0, Value: v, Name: "alice"}),
		enc(Packet{OpCode: OpSuccess, ID: 0, Message: "S=407A5589115FD0D6209F510FE9C04566932CDA56 M=Authentication succeeded"}),
		enc(Packet{OpCode: OpFailure, ID: 0, Message: "E=691 R=0 C=5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B V=3 M=Authentication failed"}),
		{byte(OpSuccess)},
		{byte(OpFailure)},
		{1, 1, 0, 99, 16},
		{2, 0, 0, 21, 16, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		{7, 0, 0, 4},
		enc(Packet{OpCode: OpFailure, ID: 0, Message: "E=648 R=1 V=3"}),
		{},
	}
}

var updateSeeds = flag.Bool("update-seeds", false, "rewrite the fuzz seed corpus under testdata/fuzz")

// TestWriteFuzzSeeds writes the seed corpus in the "go test fuzz v1" format
// when run with -update-seeds:
//
//	go test -run TestWriteFuzzSeeds -update-seeds ./transport/eap/mschapv2/
func TestWriteFuzzSeeds(t *testing.T) {
	if !*updateSeeds {
		t.Skip("run with -update-seeds to rewrite testdata/fuzz")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzPacket")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, s := range packetSeeds(t) {
		b := fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", s)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
