package tnc

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func TestTNCPacketCodec(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want TNCPacket
		out  []byte // re-encoding when it differs from in (reserved bits dropped)
		err  bool
	}{
		{name: "start", in: []byte{0x21}, want: TNCPacket{Start: true, Version: 1}},
		{name: "ack", in: []byte{0x01}, want: TNCPacket{Version: 1}},
		{name: "unfragmented", in: []byte{0x01, 2, 0, 0, 1}, want: TNCPacket{Version: 1, Data: []byte{2, 0, 0, 1}}},
		{name: "first fragment", in: []byte{0xc1, 0, 0, 0x01, 0x00, 0xaa, 0xbb}, want: TNCPacket{LengthIncluded: true, More: true, Version: 1, MessageLength: 256, Data: []byte{0xaa, 0xbb}}},
		{name: "middle fragment", in: []byte{0x41, 0xcc}, want: TNCPacket{More: true, Version: 1, Data: []byte{0xcc}}},
		{name: "L without data", in: []byte{0x81, 0, 0, 0, 0}, want: TNCPacket{LengthIncluded: true, Version: 1}},
		{name: "reserved bits ignored", in: []byte{0x19, 7}, want: TNCPacket{Version: 1, Data: []byte{7}}, out: []byte{0x01, 7}},
		{name: "version 7", in: []byte{0x07}, want: TNCPacket{Version: 7}},
		{name: "empty", in: nil, err: true},
		{name: "L with short length", in: []byte{0x81, 0, 0, 1}, err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p TNCPacket
			err := p.UnmarshalBinary(tt.in)
			if tt.err {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("UnmarshalBinary = %+v, %v; want ErrMalformed", p, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(p, tt.want) {
				t.Fatalf("got %+v, want %+v", p, tt.want)
			}
			b, err := p.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			want := tt.in
			if tt.out != nil {
				want = tt.out
			}
			if !bytes.Equal(b, want) || p.Len() != len(b) {
				t.Fatalf("encoded %x (Len %d), want %x", b, p.Len(), want)
			}
		})
	}
}

func TestPTEAPPacketCodec(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want PTEAPPacket
		out  []byte
		err  bool
	}{
		{name: "start", in: []byte{0x81}, want: PTEAPPacket{Start: true, Version: 1}},
		{name: "batch", in: []byte{0x01, 2, 0, 0, 1, 0, 0, 0, 8}, want: PTEAPPacket{Version: 1, Data: []byte{2, 0, 0, 1, 0, 0, 0, 8}}},
		{name: "ack", in: []byte{0x01}, want: PTEAPPacket{Version: 1}},
		{name: "reserved flags ignored", in: []byte{0x79, 5}, want: PTEAPPacket{Version: 1, Data: []byte{5}}, out: []byte{0x01, 5}},
		{name: "EAP-TNC S bit is reserved in PT-EAP", in: []byte{0x21}, want: PTEAPPacket{Version: 1}, out: []byte{0x01}},
		{name: "version 2", in: []byte{0x82}, want: PTEAPPacket{Start: true, Version: 2}},
		{name: "empty", in: []byte{}, err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p PTEAPPacket
			err := p.UnmarshalBinary(tt.in)
			if tt.err {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("UnmarshalBinary = %+v, %v; want ErrMalformed", p, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(p, tt.want) {
				t.Fatalf("got %+v, want %+v", p, tt.want)
			}
			b, err := p.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			want := tt.in
			if tt.out != nil {
				want = tt.out
			}
			if !bytes.Equal(b, want) || p.Len() != len(b) {
				t.Fatalf("encoded %x (Len %d), want %x", b, p.Len(), want)
			}
		})
	}
}

func TestDecodeCopies(t *testing.T) {
	in := []byte{0x01, 1, 2, 3}
	var a TNCPacket
	var b PTEAPPacket
	if a.UnmarshalBinary(in) != nil || b.UnmarshalBinary(in) != nil {
		t.Fatal("decode failed")
	}
	in[1] = 9
	if a.Data[0] != 1 || b.Data[0] != 1 {
		t.Fatal("decoded data aliases the input")
	}
}

func TestEncodeBadVersion(t *testing.T) {
	if _, err := (&TNCPacket{Version: 8}).MarshalBinary(); err == nil {
		t.Fatal("EAP-TNC version 8 encoded")
	}
	if _, err := (&PTEAPPacket{Version: 8}).MarshalBinary(); err == nil {
		t.Fatal("PT-EAP version 8 encoded")
	}
}
