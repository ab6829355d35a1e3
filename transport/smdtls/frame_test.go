package smdtls

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
)

func TestFrameCodec(t *testing.T) {
	valid := []struct {
		name string
		kind byte
		d    dataFrame
		a    ackFrame
	}{
		{"single fragment", frameData, dataFrame{Poll: true, Msg: 7, Total: 5, Chunk: 100, Index: 0, Payload: []byte("hello")}, ackFrame{}},
		{"empty message", frameData, dataFrame{Msg: 0, Total: 0, Chunk: minChunk}, ackFrame{}},
		{"middle fragment", frameData, dataFrame{Msg: 1 << 31, Total: 1000, Chunk: 300, Index: 1, Payload: bytes.Repeat([]byte{1}, 300)}, ackFrame{}},
		{"last fragment", frameData, dataFrame{Msg: 2, Total: 1000, Chunk: 300, Index: 3, Payload: bytes.Repeat([]byte{2}, 100)}, ackFrame{}},
		{"ack", frameAck, dataFrame{}, ackFrame{Msg: 3, Base: 10, Bitmap: []byte{0x80, 0x01}}},
		{"ack delivered", frameAck, dataFrame{}, ackFrame{Delivered: true, Msg: 4, Base: 3}},
		{"ack full bitmap", frameAck, dataFrame{}, ackFrame{Msg: 5, Bitmap: bytes.Repeat([]byte{0xFF}, maxAckBitmap)}},
	}
	for _, tt := range valid {
		var b []byte
		var err error
		if tt.kind == frameData {
			b, err = tt.d.appendBinary(nil)
		} else {
			b, err = tt.a.appendBinary(nil)
		}
		if err != nil {
			t.Fatalf("%s: encode: %v", tt.name, err)
		}
		kind, d, a, err := parseFrame(b)
		if err != nil || kind != tt.kind {
			t.Fatalf("%s: parse: kind %d, %v", tt.name, kind, err)
		}
		if kind == frameData && !reflect.DeepEqual(d, tt.d) || kind == frameAck && !reflect.DeepEqual(a, tt.a) {
			t.Errorf("%s: round trip gave %+v %+v", tt.name, d, a)
		}
		if kind == frameData && len(b) > 0 {
			b[len(b)-1] ^= 0xFF // parse copied the payload out
			if len(d.Payload) > 0 && d.Payload[len(d.Payload)-1] == b[len(b)-1] {
				t.Errorf("%s: payload aliases the input", tt.name)
			}
		}
	}

	data := func(f dataFrame) []byte {
		b := []byte{frameData, 0}
		if f.Poll {
			b[1] = flagPoll
		}
		b = append(b, byte(f.Msg>>24), byte(f.Msg>>16), byte(f.Msg>>8), byte(f.Msg))
		b = append(b, byte(f.Total>>24), byte(f.Total>>16), byte(f.Total>>8), byte(f.Total))
		b = append(b, byte(f.Chunk>>8), byte(f.Chunk), byte(f.Index>>8), byte(f.Index))
		return append(b, f.Payload...)
	}
	invalid := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"one byte", []byte{frameData}},
		{"unknown kind", []byte{9, 0, 0, 0, 0, 0, 0, 0}},
		{"short DATA", data(dataFrame{Total: 5, Chunk: 100})[:10]},
		{"DATA flags", append([]byte{frameData, 0x02}, data(dataFrame{Total: 0, Chunk: 100})[2:]...)},
		{"chunk too small", data(dataFrame{Total: 10, Chunk: minChunk - 1, Payload: make([]byte, 10)})},
		{"index past count", data(dataFrame{Total: 100, Chunk: 100, Index: 1})},
		{"payload too long", data(dataFrame{Total: 5, Chunk: 100, Payload: make([]byte, 6)})},
		{"payload too short", data(dataFrame{Total: 200, Chunk: 100, Index: 0, Payload: make([]byte, 99)})},
		{"too many fragments", data(dataFrame{Total: 1 << 30, Chunk: minChunk, Payload: make([]byte, minChunk)})},
		{"short ACK", []byte{frameAck, 0, 0, 0, 0, 0, 0}},
		{"ACK flags", []byte{frameAck, 0x80, 0, 0, 0, 0, 0, 0}},
		{"CLOSE with a body", []byte{frameClose, 0, 0}},
		{"CLOSE flags", []byte{frameClose, 1}},
		{"ACK bitmap too long", append([]byte{frameAck, 0, 0, 0, 0, 0, 0, 0}, make([]byte, maxAckBitmap+1)...)},
	}
	for _, tt := range invalid {
		if _, _, _, err := parseFrame(tt.b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", tt.name, err)
		}
	}
	if _, err := (&dataFrame{Total: 5, Chunk: 100, Payload: make([]byte, 4)}).appendBinary(nil); err == nil {
		t.Error("encoding an inconsistent DATA frame succeeded")
	}
	if _, err := (&ackFrame{Bitmap: make([]byte, maxAckBitmap+1)}).appendBinary(nil); err == nil {
		t.Error("encoding an oversized ACK succeeded")
	}
}

// fragments cuts msg into DATA frames of message number n.
func fragments(n uint32, msg []byte, chunk int) []dataFrame {
	count := fragmentCount(len(msg), chunk)
	out := make([]dataFrame, count)
	for i := range out {
		off, l := fragmentSpan(len(msg), chunk, i)
		out[i] = dataFrame{Msg: n, Total: uint32(len(msg)), Chunk: uint16(chunk), Index: uint16(i), Payload: msg[off : off+l]}
	}
	return out
}

func TestReassembler(t *testing.T) {
	msg := make([]byte, 1000)
	for i := range msg {
		msg[i] = byte(i * 13)
	}
	frags := fragments(0, msg, 96) // 11 fragments, the last 40 bytes
	orders := map[string][]int{
		"in order":  {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10},
		"reversed":  {10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0},
		"shuffled":  rand.New(rand.NewPCG(1, 2)).Perm(11),
		"with dups": {0, 0, 3, 1, 3, 2, 10, 4, 5, 6, 7, 9, 9, 8},
	}
	for name, order := range orders {
		r := reassembler{max: 4096}
		var got []byte
		for k, i := range order {
			m, done, err := r.add(&frags[i])
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if done != (k == len(order)-1) {
				t.Fatalf("%s: done=%v after %d fragments", name, done, k+1)
			}
			got = m
		}
		if !bytes.Equal(got, msg) {
			t.Errorf("%s: message differs", name)
		}
		if r.next != 1 || r.active {
			t.Errorf("%s: next %d active %v", name, r.next, r.active)
		}
		if want := uint64(len(order) - 11); r.dups != want {
			t.Errorf("%s: %d dups, want %d", name, r.dups, want)
		}
	}

	// ACK state: base and bitmap.
	r := reassembler{max: 4096}
	for _, i := range []int{0, 1, 3, 4, 9} {
		r.add(&frags[i])
	}
	a := r.ack()
	// base 2; after it: 2 no, 3 yes, 4 yes, 5-8 no, 9 yes, 10 no.
	if a.Msg != 0 || a.Base != 2 || !bytes.Equal(a.Bitmap, []byte{0b01100001}) {
		t.Errorf("ack = %+v", a)
	}
	s := newSendState(0, 11)
	s.apply(&a)
	if got := s.nextBatch(nil, 100); !reflect.DeepEqual(got, []int{2, 5, 6, 7, 8, 10}) {
		t.Errorf("unacknowledged after the ACK: %v", got)
	}
	if got := s.nextBatch(nil, 2); !reflect.DeepEqual(got, []int{2, 5}) {
		t.Errorf("window of 2: %v", got)
	}
	if s.all || s.delivered {
		t.Error("sender thinks the message is complete")
	}
	s.apply(&ackFrame{Msg: 0, Base: 11})
	if !s.all || s.delivered || len(s.nextBatch(nil, 10)) != 0 {
		t.Errorf("after a full ACK: all %v delivered %v", s.all, s.delivered)
	}
	if s.apply(&ackFrame{Msg: 1, Delivered: true}) || s.delivered {
		t.Error("an ACK for another message counted")
	}
	s.apply(&ackFrame{Msg: 0, Base: 11, Delivered: true})
	if !s.delivered {
		t.Error("DELIVERED not taken")
	}

	errs := []struct {
		name string
		r    reassembler
		f    dataFrame
		want error
	}{
		{"over the cap", reassembler{max: 999}, frags[0], ErrTooLarge},
		{"other message", reassembler{max: 4096, next: 5}, frags[0], ErrMalformed},
	}
	for _, tt := range errs {
		if _, _, err := tt.r.add(&tt.f); !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
		if tt.r.buf != nil {
			t.Errorf("%s: allocated a buffer", tt.name)
		}
	}
	// A fragment that disagrees with the first one.
	r = reassembler{max: 4096}
	r.add(&frags[0])
	odd := fragments(0, make([]byte, 2000), 96)[1]
	if _, _, err := r.add(&odd); !errors.Is(err, ErrMalformed) {
		t.Errorf("inconsistent fragment: %v", err)
	}
}

func TestBitsetFirstClear(t *testing.T) {
	for _, n := range []int{1, 63, 64, 65, 130} {
		s := newBitset(n)
		for i := 0; i < n; i++ {
			if got := s.firstClear(0, n); got != i {
				t.Fatalf("n=%d: firstClear = %d, want %d", n, got, i)
			}
			s.set(i)
		}
		if got := s.firstClear(0, n); got != n {
			t.Errorf("n=%d full: firstClear = %d", n, got)
		}
	}
}

func TestConfig(t *testing.T) {
	store := PSKStoreFunc(func([]byte) ([]byte, error) { return nil, nil })
	tests := []struct {
		name   string
		cfg    *Config
		server bool
		ok     bool
	}{
		{"server defaults", &Config{PSKStore: store}, true, true},
		{"server without store", &Config{}, true, false},
		{"client", &Config{Identity: []byte("a"), PSK: testPSK(1)}, false, true},
		{"client without identity", &Config{PSK: testPSK(1)}, false, false},
		{"client identity too long", &Config{Identity: make([]byte, MaxIdentityLen+1), PSK: testPSK(1)}, false, false},
		{"client PSK too short", &Config{Identity: []byte("a"), PSK: make([]byte, MinPSKLen-1)}, false, false},
		{"MTU too small", &Config{PSKStore: store, MTU: MinMTU - 1}, true, false},
		{"MTU too large", &Config{PSKStore: store, MTU: MaxMTU + 1}, true, false},
		{"MaxMessage too small", &Config{PSKStore: store, MaxMessage: MinMaxMessage - 1}, true, false},
		{"MaxMessage too large", &Config{PSKStore: store, MaxMessage: MaxMessageLimit + 1}, true, false},
		{"negative timeout", &Config{PSKStore: store, HandshakeTimeout: -1}, true, false},
		{"nil", nil, true, false},
	}
	for _, tt := range tests {
		s, err := tt.cfg.settled(tt.server)
		if (err == nil) != tt.ok {
			t.Errorf("%s: err = %v", tt.name, err)
		}
		if err == nil && (s.MTU != DefaultMTU || s.MaxMessage != DefaultMaxMessage || s.Logger == nil) {
			t.Errorf("%s: defaults not applied: %+v", tt.name, s)
		}
	}
	// Every allowed MTU and MaxMessage fits the fragment numbering.
	if n := fragmentCount(MaxMessageLimit, fragmentChunk(MinMTU)); n > maxFragments || fragmentChunk(MinMTU) < minChunk {
		t.Errorf("MaxMessageLimit at MinMTU needs %d fragments", n)
	}
	if fragmentChunk(MaxMTU) > 0xFFFF {
		t.Error("chunk does not fit 16 bits")
	}
}

func TestAlertErrorIs(t *testing.T) {
	tests := []struct {
		desc uint8
		want error
	}{
		{AlertBadRecordMAC, ErrAuthFailed},
		{AlertDecryptError, ErrAuthFailed},
		{AlertUnknownPSKIdentity, ErrUnknownIdentity},
		{AlertInsufficientSecurity, ErrNoSharedSuite},
		{AlertHandshakeFailure, ErrNoSharedSuite},
		{AlertInternalError, nil},
	}
	for _, tt := range tests {
		err := fmt.Errorf("wrapped: %w", &AlertError{Level: 2, Description: tt.desc, Remote: true})
		for _, s := range []error{ErrAuthFailed, ErrUnknownIdentity, ErrNoSharedSuite} {
			if errors.Is(err, s) != (s == tt.want) {
				t.Errorf("alert %d: errors.Is(%v) = %v", tt.desc, s, !(s == tt.want))
			}
		}
		if err.Error() == "" {
			t.Error("empty message")
		}
	}
}
