package eapol

import (
	"bytes"
	"errors"
	"net"
	"testing"

	"trustnac/transport/eap"
)

func TestFrameUnmarshal(t *testing.T) {
	eapID := []byte{1, 7, 0, 5, 1} // EAP-Request/Identity id 7
	tests := []struct {
		name    string
		in      []byte
		want    *Frame
		wantErr error
	}{
		{"start v1", []byte{1, 1, 0, 0}, &Frame{Version: 1, Type: TypeStart}, nil},
		{"logoff v2", []byte{2, 2, 0, 0}, &Frame{Version: 2, Type: TypeLogoff}, nil},
		{"start padded", append([]byte{3, 1, 0, 0}, make([]byte, 42)...), &Frame{Version: 3, Type: TypeStart}, nil},
		{"eap", append([]byte{2, 0, 0, 5}, eapID...), &Frame{Version: 2, Type: TypeEAPPacket, Body: eapID}, nil},
		{"eap padded inside body", []byte{2, 0, 0, 8, 3, 9, 0, 4, 0, 0, 0, 0}, &Frame{Version: 2, Type: TypeEAPPacket, Body: []byte{3, 9, 0, 4, 0, 0, 0, 0}}, nil},
		{"key", []byte{2, 3, 0, 2, 0xaa, 0xbb}, &Frame{Version: 2, Type: TypeKey, Body: []byte{0xaa, 0xbb}}, nil},
		{"future version kept", []byte{9, 1, 0, 0}, &Frame{Version: 9, Type: TypeStart}, nil},
		{"short", []byte{2, 1, 0}, nil, ErrMalformed},
		{"empty", nil, nil, ErrMalformed},
		{"version 0", []byte{0, 1, 0, 0}, nil, ErrMalformed},
		{"body length beyond frame", []byte{2, 3, 0, 3, 1, 2}, nil, ErrMalformed},
		{"body length max", []byte{2, 3, 0xff, 0xff}, nil, ErrMalformed},
		{"eap body too short", []byte{2, 0, 0, 3, 1, 1, 0}, nil, ErrMalformed},
		{"eap length beyond body", []byte{2, 0, 0, 4, 1, 1, 0, 5, 1}, nil, ErrMalformed},
		{"eap length below header", []byte{2, 0, 0, 4, 3, 1, 0, 3}, nil, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f Frame
			err := f.UnmarshalBinary(tt.in)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.Version != tt.want.Version || f.Type != tt.want.Type || !bytes.Equal(f.Body, tt.want.Body) {
				t.Fatalf("got %+v, want %+v", f, *tt.want)
			}
			if len(f.Body) > 0 && &f.Body[0] == &tt.in[HeaderLen] {
				t.Fatal("body aliases the input")
			}
		})
	}
}

func TestFrameMarshal(t *testing.T) {
	tests := []struct {
		name    string
		f       Frame
		want    []byte
		wantErr bool
	}{
		{"start", Frame{Version: 2, Type: TypeStart}, []byte{2, 1, 0, 0}, false},
		{"body", Frame{Version: 3, Type: TypeMKA, Body: []byte{1, 2, 3}}, []byte{3, 5, 0, 3, 1, 2, 3}, false},
		{"version 0", Frame{Type: TypeStart}, nil, true},
		{"body too long", Frame{Version: 2, Type: TypeKey, Body: make([]byte, MaxBody+1)}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.f.MarshalBinary()
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr && !bytes.Equal(got, tt.want) {
				t.Fatalf("got % x, want % x", got, tt.want)
			}
		})
	}
}

func TestEthernet(t *testing.T) {
	dst := PAEGroupAddr
	src := net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	f, err := NewEAPFrame(2, &eap.Packet{Code: eap.CodeResponse, ID: 4, Type: eap.TypeIdentity, Data: []byte("alice")})
	if err != nil {
		t.Fatal(err)
	}
	b, err := AppendEthernet(nil, dst, src, f)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != MinEthernetFrame {
		t.Fatalf("frame of %d bytes, want padding to %d", len(b), MinEthernetFrame)
	}
	if b[12] != 0x88 || b[13] != 0x8e {
		t.Fatalf("EtherType % x", b[12:14])
	}
	gd, gs, gf, err := ParseEthernet(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(gd, dst) || !bytes.Equal(gs, src) || !bytes.Equal(gf.Body, f.Body) || gf.Type != TypeEAPPacket {
		t.Fatalf("got %v %v %v", gd, gs, gf)
	}
	p, err := gf.EAP()
	if err != nil || string(p.Data) != "alice" || p.ID != 4 {
		t.Fatalf("EAP() = %v, %v", p, err)
	}
	// A long frame is not padded.
	big := &Frame{Version: 2, Type: TypeKey, Body: make([]byte, 100)}
	if b, _ := AppendEthernet(nil, dst, src, big); len(b) != EthernetHeaderLen+HeaderLen+100 {
		t.Fatalf("long frame of %d bytes", len(b))
	}

	bad := []struct {
		name string
		b    []byte
		is   error
	}{
		{"short", b[:13], ErrMalformed},
		{"ipv4", append(append([]byte{}, b[:12]...), 0x08, 0x00, 2, 1, 0, 0), ErrNotEAPOL},
		{"bad pdu", append(append([]byte{}, b[:14]...), 2, 0, 0, 9, 1), ErrMalformed},
	}
	for _, tt := range bad {
		if _, _, _, err := ParseEthernet(tt.b); !errors.Is(err, tt.is) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.is)
		}
	}
	if _, err := AppendEthernet(nil, dst[:5], src, f); err == nil {
		t.Error("5-byte MAC accepted")
	}
	if _, err := (&Frame{Version: 2, Type: TypeStart}).EAP(); !errors.Is(err, ErrMalformed) {
		t.Errorf("EAP() of a Start: %v", err)
	}
}
