package ttls

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"testing"
)

func TestMessageEncoding(t *testing.T) {
	cases := []struct {
		name string
		m    Message
		wire []byte
	}{
		{"start", Message{Flags: FlagStart}, []byte{0x20}},
		{"ack", Message{}, []byte{0}},
		{"first fragment", Message{Flags: FlagLength | FlagMore, Length: 0x010203, Data: []byte{0x16, 3}},
			[]byte{0xc0, 0, 1, 2, 3, 0x16, 3}},
		{"middle fragment", Message{Flags: FlagMore, Data: []byte{9}}, []byte{0x40, 9}},
		{"unfragmented with length", Message{Flags: FlagLength, Length: 1, Data: []byte{7}}, []byte{0x80, 0, 0, 0, 1, 7}},
		{"version 1 start", Message{Flags: FlagStart | 1}, []byte{0x21}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.m.MarshalBinary()
			if err != nil || !bytes.Equal(got, c.wire) {
				t.Fatalf("encoded % x, %v; want % x", got, err, c.wire)
			}
			var back Message
			if err := back.UnmarshalBinary(c.wire); err != nil {
				t.Fatal(err)
			}
			if back.Flags != c.m.Flags || back.Length != c.m.Length || !bytes.Equal(back.Data, c.m.Data) {
				t.Fatalf("decoded %+v, want %+v", back, c.m)
			}
		})
	}
	for _, bad := range [][]byte{nil, {0x80}, {0x80, 0, 0, 0}} {
		var m Message
		if err := m.UnmarshalBinary(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("% x: %v, want ErrMalformed", bad, err)
		}
	}
}

// TestReassembler runs sequences of fragments through the reassembly rules of RFC 5281 §9.2.2.
func TestReassembler(t *testing.T) {
	frag := func(f Flags, length uint32, n int) Message {
		return Message{Flags: f, Length: length, Data: bytes.Repeat([]byte{'x'}, n)}
	}
	const L, M = FlagLength, FlagMore
	cases := []struct {
		name    string
		seq     []Message
		wantLen int   // length of the complete message, when the sequence ends without error
		wantErr error // error expected on the last message
	}{
		{"unfragmented", []Message{frag(0, 0, 50)}, 50, nil},
		{"unfragmented with L", []Message{frag(L, 50, 50)}, 50, nil},
		{"three fragments", []Message{frag(L|M, 250, 100), frag(M, 0, 100), frag(0, 0, 50)}, 250, nil},
		{"L repeated", []Message{frag(L|M, 250, 100), frag(L|M, 250, 100), frag(L, 250, 50)}, 250, nil},
		{"M without L", []Message{frag(M, 0, 100)}, 0, ErrFragment},
		{"L beyond cap", []Message{frag(L|M, 1001, 100)}, 0, ErrTooLarge},
		{"L 4 GiB", []Message{frag(L|M, 0xffffffff, 100)}, 0, ErrTooLarge},
		{"unfragmented beyond cap", []Message{frag(0, 0, 1001)}, 0, ErrTooLarge},
		{"unfragmented L lies", []Message{frag(L, 60, 50)}, 0, ErrFragment},
		{"first fragment holds all", []Message{frag(L|M, 100, 100)}, 0, ErrFragment},
		{"L changes", []Message{frag(L|M, 250, 100), frag(L|M, 300, 100)}, 0, ErrFragment},
		{"data beyond L", []Message{frag(L|M, 250, 100), frag(M, 0, 100), frag(0, 0, 51)}, 0, ErrFragment},
		{"short of L", []Message{frag(L|M, 250, 100), frag(0, 0, 100)}, 0, ErrFragment},
		{"S inside", []Message{frag(L|M, 250, 100), frag(FlagStart, 0, 10)}, 0, ErrFragment},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := reassembler{maxMessage: 1000}
			for i, m := range c.seq {
				msg, complete, err := r.add(&m)
				last := i == len(c.seq)-1
				if !last {
					if err != nil || complete {
						t.Fatalf("fragment %d: complete=%v err=%v", i, complete, err)
					}
					continue
				}
				if c.wantErr != nil {
					if !errors.Is(err, c.wantErr) {
						t.Fatalf("err = %v, want %v", err, c.wantErr)
					}
					return
				}
				if err != nil || !complete || len(msg) != c.wantLen {
					t.Fatalf("complete=%v len=%d err=%v, want %d bytes", complete, len(msg), err, c.wantLen)
				}
			}
		})
	}
}

func TestFragmentFlood(t *testing.T) {
	r := reassembler{maxMessage: DefaultMaxMessage}
	first := Message{Flags: FlagLength | FlagMore, Length: DefaultMaxMessage, Data: []byte{1}}
	if _, _, err := r.add(&first); err != nil {
		t.Fatal(err)
	}
	var err error
	n := 1
	for ; err == nil && n < 1<<20; n++ {
		m := Message{Flags: FlagMore, Data: []byte{1}}
		_, _, err = r.add(&m)
	}
	if !errors.Is(err, ErrFragment) || n > maxFragments(DefaultMaxMessage)+1 {
		t.Fatalf("flood stopped after %d fragments with %v", n, err)
	}
}

func TestFragmenter(t *testing.T) {
	msg := make([]byte, 250)
	for i := range msg {
		msg[i] = byte(i)
	}
	f := fragmenter{max: 100}
	var got []Message
	for b := f.load(msg); ; b = f.next() {
		var m Message
		if err := m.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		got = append(got, m)
		if !f.busy() {
			break
		}
	}
	want := []Flags{FlagLength | FlagMore, FlagMore, 0}
	if len(got) != len(want) {
		t.Fatalf("%d fragments, want %d", len(got), len(want))
	}
	r := reassembler{maxMessage: 1000}
	for i, m := range got {
		if m.Flags != want[i] || (i == 0 && m.Length != 250) || len(m.Data) > 100 {
			t.Fatalf("fragment %d: %+v", i, m)
		}
		out, complete, err := r.add(&m)
		if err != nil {
			t.Fatal(err)
		}
		if complete && !bytes.Equal(out, msg) {
			t.Fatal("reassembled message differs")
		}
	}
	// A message that fits goes out whole, without L.
	if b := f.load(msg[:100]); b[0] != 0 || len(b) != 101 || f.busy() {
		t.Fatalf("small message: % x", b[:1])
	}
}

// TestServerFraming feeds a Server bad framing and floods: each must fail the conversation
// without allocating anything like what the peer announces.
func TestServerFraming(t *testing.T) {
	ctx := context.Background()
	enc := func(m Message) []byte { b, _ := m.MarshalBinary(); return b }
	flood := [][]byte{enc(Message{Flags: FlagLength | FlagMore, Length: DefaultMaxMessage, Data: []byte{0x16}})}
	for range 5000 {
		flood = append(flood, enc(Message{Flags: FlagMore}))
	}
	cases := []struct {
		name string
		seq  [][]byte
		want error
		cfg  func(*ServerConfig)
	}{
		{"empty type-data", [][]byte{{}}, ErrMalformed, nil},
		{"version 1", [][]byte{{0x01, 0x16}}, ErrMalformed, nil},
		{"S from the peer", [][]byte{{0x20}}, ErrMalformed, nil},
		{"no ClientHello", [][]byte{{0x00}}, ErrMalformed, nil},
		{"lying L", [][]byte{enc(Message{Flags: FlagLength | FlagMore, Length: 0xffffffff, Data: []byte{0x16}})}, ErrTooLarge, nil},
		{"fragment flood", flood, ErrFragment, nil},
		{"total cap", [][]byte{
			enc(Message{Flags: FlagLength | FlagMore, Length: 3000, Data: make([]byte, 1000)}),
			enc(Message{Flags: FlagMore, Data: make([]byte, 1000)}),
		}, ErrTooLarge, func(c *ServerConfig) { c.MaxTotal = 1500 }},
		{"not TLS", [][]byte{append([]byte{0}, "GET / HTTP/1.1\r\n\r\n"...)}, nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			base := runtime.NumGoroutine()
			cfg := &ServerConfig{TLS: serverTLS(t, 0), Phase2: func(TunnelInfo) Phase2 { return NewInnerServer(InnerConfig{}) }}
			if c.cfg != nil {
				c.cfg(cfg)
			}
			s := NewServer(cfg)
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			before := ms.TotalAlloc
			var err error
			for i, b := range c.seq {
				step, e := s.Process(ctx, b)
				if e != nil {
					err = e
					if i != len(c.seq)-1 && c.name != "fragment flood" {
						t.Fatalf("failed early, at %d: %v", i, e)
					}
					break
				}
				if step.Done {
					t.Fatal("conversation ended without an error")
				}
			}
			runtime.ReadMemStats(&ms)
			if err == nil || (c.want != nil && !errors.Is(err, c.want)) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if alloc := ms.TotalAlloc - before; alloc > 1<<20 {
				t.Errorf("allocated %d bytes", alloc)
			}
			if _, err := s.Process(ctx, []byte{0}); !errors.Is(err, ErrClosed) {
				t.Errorf("Process after a failure: %v", err)
			}
			waitGoroutines(t, base)
		})
	}
}

// TestServerDataDuringFragments: while the server sends its flight in fragments, the peer may
// only acknowledge.
func TestServerDataDuringFragments(t *testing.T) {
	ctx := context.Background()
	p := NewPeer(&PeerConfig{TLS: peerTLS(t, 0), MaxFragment: 4000, Phase2: NewInnerPeer("a", "b", nil)})
	defer p.Close()
	hello, err := p.Process(ctx, []byte{byte(FlagStart)})
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(&ServerConfig{TLS: serverTLS(t, 0), MaxFragment: 64, Phase2: func(TunnelInfo) Phase2 { return nil }})
	st, err := s.Process(ctx, hello)
	if err != nil || st.Data[0] != byte(FlagLength|FlagMore) {
		t.Fatalf("first fragment: % x %v", st.Data[:1], err)
	}
	if st, err = s.Process(ctx, ack()); err != nil || st.Data[0] != byte(FlagMore) {
		t.Fatalf("second fragment: %v", err)
	}
	if _, err := s.Process(ctx, []byte{0, 0x16, 3, 3}); !errors.Is(err, ErrFragment) {
		t.Fatalf("data instead of an ack: %v", err)
	}
}
