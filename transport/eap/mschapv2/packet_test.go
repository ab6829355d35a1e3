package mschapv2

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestPacketCodec(t *testing.T) {
	ch := bytes.Repeat([]byte{0xab}, 16)
	resp := bytes.Repeat([]byte{0xcd}, 49)
	tests := []struct {
		name string
		in   []byte
		want *Packet // nil: ErrMalformed
	}{
		{"challenge", concat([]byte{1, 7, 0, 24, 16}, ch, []byte("pdp")), &Packet{OpCode: OpChallenge, ID: 7, Value: ch, Name: "pdp"}},
		{"challenge without name", concat([]byte{1, 7, 0, 21, 16}, ch), &Packet{OpCode: OpChallenge, ID: 7, Value: ch}},
		{"response", concat([]byte{2, 7, 0, 56, 49}, resp, []byte("al")), &Packet{OpCode: OpResponse, ID: 7, Value: resp, Name: "al"}},
		{"success request", concat([]byte{3, 7, 0, 8}, []byte("S=AB")), &Packet{OpCode: OpSuccess, ID: 7, Message: "S=AB"}},
		{"failure request", concat([]byte{4, 9, 0, 9}, []byte("E=691")), &Packet{OpCode: OpFailure, ID: 9, Message: "E=691"}},
		{"success request without message", []byte{3, 7, 0, 4}, &Packet{OpCode: OpSuccess, ID: 7}},
		{"success response", []byte{3}, &Packet{OpCode: OpSuccess, Short: true}},
		{"failure response", []byte{4}, &Packet{OpCode: OpFailure, Short: true}},
		{"empty", nil, nil},
		{"short challenge", []byte{1}, nil},
		{"header only challenge", []byte{1, 7, 0, 4}, nil},
		{"MS-Length too long", concat([]byte{1, 7, 0, 25, 16}, ch, []byte("pdp")), nil},
		{"MS-Length too short", concat([]byte{3, 7, 0, 5}, []byte("S=AB")), nil},
		{"challenge value size 8", concat([]byte{1, 7, 0, 13, 8}, ch[:8]), nil},
		{"response value size 16", concat([]byte{2, 7, 0, 21, 16}, ch), nil},
		{"truncated response value", concat([]byte{2, 7, 0, 25, 49}, ch[:16]), nil},
		{"change password unsupported", []byte{7, 7, 0, 4}, nil},
		{"unknown opcode", []byte{9, 7, 0, 4}, nil},
		{"name too long", concat([]byte{2, 7, 0x01, 0x37, 49}, resp, bytes.Repeat([]byte{'a'}, 257)), nil},
		{"message too long", concat([]byte{3, 7, 0x04, 0x05}, bytes.Repeat([]byte{'a'}, 1025)), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Packet
			err := p.UnmarshalBinary(tt.in)
			if tt.want == nil {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("UnmarshalBinary = %+v, %v; want ErrMalformed", p, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(&p, tt.want) {
				t.Fatalf("got %+v, want %+v", p, tt.want)
			}
			b, err := p.MarshalBinary()
			if err != nil || !bytes.Equal(b, tt.in) || p.Len() != len(b) {
				t.Fatalf("encoded %x (%v, Len %d), want %x", b, err, p.Len(), tt.in)
			}
		})
	}
}

func TestPacketEncodeErrors(t *testing.T) {
	tests := []struct {
		name string
		p    Packet
	}{
		{"short challenge", Packet{OpCode: OpChallenge, Short: true}},
		{"challenge value", Packet{OpCode: OpChallenge, Value: make([]byte, 15)}},
		{"response value", Packet{OpCode: OpResponse, Value: make([]byte, 16)}},
		{"long name", Packet{OpCode: OpResponse, Value: make([]byte, 49), Name: strings.Repeat("x", 257)}},
		{"long message", Packet{OpCode: OpSuccess, Message: strings.Repeat("x", 1025)}},
		{"change password", Packet{OpCode: OpChangePassword}},
	}
	for _, tt := range tests {
		if _, err := tt.p.MarshalBinary(); err == nil {
			t.Errorf("%s: encoded", tt.name)
		}
	}
}

func TestUnmarshalCopies(t *testing.T) {
	in := concat([]byte{1, 7, 0, 21, 16}, bytes.Repeat([]byte{1}, 16))
	var p Packet
	if err := p.UnmarshalBinary(in); err != nil {
		t.Fatal(err)
	}
	in[5] = 9
	if p.Value[0] != 1 {
		t.Fatal("Value aliases the input")
	}
}

func TestResponseValue(t *testing.T) {
	v := ResponseValue{Flags: 0}
	for i := range v.PeerChallenge {
		v.PeerChallenge[i] = byte(i)
	}
	for i := range v.NTResponse {
		v.NTResponse[i] = byte(100 + i)
	}
	b, _ := v.AppendBinary(nil)
	if len(b) != ResponseSize || !bytes.Equal(b[16:24], make([]byte, 8)) {
		t.Fatalf("encoded %x", b)
	}
	var w ResponseValue
	if err := w.UnmarshalBinary(b); err != nil || w != v {
		t.Fatalf("round trip %+v, %v", w, err)
	}
	if err := w.UnmarshalBinary(b[:48]); !errors.Is(err, ErrMalformed) {
		t.Fatalf("48 octets: %v", err)
	}
}

func TestSuccessMessage(t *testing.T) {
	auth := [20]byte{0x40, 0x7a, 0x55}
	s := FormatSuccess(auth, "hello there")
	if s != "S=407A550000000000000000000000000000000000 M=hello there" {
		t.Fatalf("FormatSuccess = %q", s)
	}
	tests := []struct {
		in   string
		msg  string
		fail bool
	}{
		{in: s, msg: "hello there"},
		{in: "S=407a550000000000000000000000000000000000", msg: ""},
		{in: "S=407A550000000000000000000000000000000000 M=", msg: ""},
		{in: "S=407A55000000000000000000000000000000000", fail: true},
		{in: "S=407A55000000000000000000000000000000000G", fail: true},
		{in: "s=407A550000000000000000000000000000000000", fail: true},
		{in: "S=407A550000000000000000000000000000000000M=x", fail: true},
		{in: "", fail: true},
	}
	for _, tt := range tests {
		got, msg, err := ParseSuccess(tt.in)
		if tt.fail {
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("ParseSuccess(%q) = %v", tt.in, err)
			}
			continue
		}
		if err != nil || got != auth || msg != tt.msg {
			t.Errorf("ParseSuccess(%q) = %x %q %v", tt.in, got, msg, err)
		}
	}
}

func TestFailureMessage(t *testing.T) {
	f := Failure{Code: 691, Challenge: bytes.Repeat([]byte{0x5b}, 16), Version: 3, Message: "Authentication failed"}
	s := f.String()
	if s != "E=691 R=0 C=5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B V=3 M=Authentication failed" {
		t.Fatalf("String = %q", s)
	}
	tests := []struct {
		in   string
		want *Failure
	}{
		{s, &f},
		{"E=648 R=1 V=3", &Failure{Code: 648, Retry: true, Version: 3}},
		{"E=691", &Failure{Code: 691}},
		{"E=691 M=a b  c", &Failure{Code: 691, Message: "a b  c"}},
		{"", nil},
		{"R=0 E=691", nil},
		{"E=691 R=0 R=1", nil},
		{"E=69x", nil},
		{"E=1234567890", nil},
		{"E=691 C=5B", nil},
		{"E=691 X=1", nil},
		{"E=", nil},
		{"garbage", nil},
	}
	for _, tt := range tests {
		got, err := ParseFailure(tt.in)
		if tt.want == nil {
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("ParseFailure(%q) = %+v, %v", tt.in, got, err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, *tt.want) {
			t.Errorf("ParseFailure(%q) = %+v, %v; want %+v", tt.in, got, err, *tt.want)
		}
	}
}

func concat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
