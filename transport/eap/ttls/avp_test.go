package ttls

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func TestAVPEncoding(t *testing.T) {
	cases := []struct {
		name string
		avps []AVP
		wire []byte
	}{
		{
			name: "PAP",
			avps: []AVP{
				{Code: AVPUserName, Mandatory: true, Data: []byte("alice")},
				{Code: AVPUserPassword, Mandatory: true, Data: append([]byte("s3cret"), make([]byte, 10)...)},
			},
			wire: []byte{
				0, 0, 0, 1, 0x40, 0, 0, 13, 'a', 'l', 'i', 'c', 'e', 0, 0, 0,
				0, 0, 0, 2, 0x40, 0, 0, 24, 's', '3', 'c', 'r', 'e', 't', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
			},
		},
		{
			name: "vendor, not mandatory, aligned",
			avps: []AVP{{Code: 26, Vendor: 311, Data: []byte{1, 2, 3, 4}}},
			wire: []byte{0, 0, 0, 26, 0x80, 0, 0, 16, 0, 0, 1, 0x37, 1, 2, 3, 4},
		},
		{
			name: "empty data",
			avps: []AVP{{Code: AVPReplyMessage}},
			wire: []byte{0, 0, 0, 18, 0, 0, 0, 8},
		},
		{
			name: "EAP-Message",
			avps: []AVP{{Code: AVPEAPMessage, Mandatory: true, Data: []byte{2, 0, 0, 9, 1, 'b', 'o', 'b', '!'}}},
			wire: []byte{0, 0, 0, 79, 0x40, 0, 0, 17, 2, 0, 0, 9, 1, 'b', 'o', 'b', '!', 0, 0, 0},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := AppendAVPs([]byte{0xee}, c.avps...)
			if !bytes.Equal(got[1:], c.wire) || got[0] != 0xee {
				t.Fatalf("encoded\n% x\nwant\n% x", got[1:], c.wire)
			}
			back, err := ParseAVPs(c.wire)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, c.avps) {
				t.Fatalf("decoded %+v, want %+v", back, c.avps)
			}
			// Data is a copy.
			for i := range c.wire {
				c.wire[i] ^= 0xff
			}
			if !reflect.DeepEqual(back, c.avps) {
				t.Fatal("decoded Data aliases the input")
			}
		})
	}
}

func TestParseAVPsErrors(t *testing.T) {
	cases := []struct {
		name string
		wire []byte
		want []AVP // nil: an error is expected
	}{
		{"short header", []byte{0, 0, 0, 1, 0x40, 0, 0}, nil},
		{"length below header", []byte{0, 0, 0, 1, 0x40, 0, 0, 7}, nil},
		{"length beyond buffer", []byte{0, 0, 0, 1, 0x40, 0, 0, 13, 'a'}, nil},
		{"vendor header cut", []byte{0, 0, 0, 1, 0x80, 0, 0, 12, 0, 0}, nil},
		{"vendor length below 12", []byte{0, 0, 0, 1, 0x80, 0, 0, 10, 0, 0, 0, 9}, nil},
		{"garbage after AVP", []byte{0, 0, 0, 18, 0, 0, 0, 8, 1, 2, 3}, nil},
		{"huge length", []byte{0, 0, 0, 1, 0, 0xff, 0xff, 0xff, 0, 0, 0, 0}, nil},
		{"final padding missing", []byte{0, 0, 0, 1, 0, 0, 0, 9, 'x'},
			[]AVP{{Code: 1, Data: []byte("x")}}},
		{"final padding partial", []byte{0, 0, 0, 1, 0, 0, 0, 9, 'x', 0},
			[]AVP{{Code: 1, Data: []byte("x")}}},
		{"reserved flags ignored", []byte{0, 0, 0, 1, 0x3f, 0, 0, 8},
			[]AVP{{Code: 1, Data: []byte{}}}},
		{"empty", nil, []AVP{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseAVPs(c.wire)
			if c.want == nil {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("got %+v, %v; want ErrMalformed", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(c.want) {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
			for i := range got {
				if got[i].Code != c.want[i].Code || !bytes.Equal(got[i].Data, c.want[i].Data) {
					t.Fatalf("got %+v, want %+v", got, c.want)
				}
			}
		})
	}
}

func TestParseAVPsCount(t *testing.T) {
	one := AppendAVPs(nil, AVP{Code: AVPReplyMessage})
	if _, err := ParseAVPs(bytes.Repeat(one, MaxAVPs)); err != nil {
		t.Fatalf("%d AVPs: %v", MaxAVPs, err)
	}
	if _, err := ParseAVPs(bytes.Repeat(one, MaxAVPs+1)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("%d AVPs: %v, want ErrMalformed", MaxAVPs+1, err)
	}
}

func TestAVPTooLong(t *testing.T) {
	a := AVP{Code: 1, Vendor: 9, Data: make([]byte, MaxAVPData+1)}
	if _, err := a.AppendBinary(nil); err == nil {
		t.Fatal("AppendBinary accepted an AVP beyond the 24-bit length")
	}
	ok := AVP{Code: 2, Data: []byte("x")}
	if got, want := AppendAVPs(nil, a, ok), AppendAVPs(nil, ok); !bytes.Equal(got, want) {
		t.Fatal("AppendAVPs did not leave the oversized AVP out")
	}
}

func TestCheckMandatory(t *testing.T) {
	known := func(code, vendor uint32) bool { return vendor == 0 && code == AVPUserName }
	cases := []struct {
		avps []AVP
		bad  *UnsupportedAVPError
	}{
		{[]AVP{{Code: AVPUserName, Mandatory: true}}, nil},
		{[]AVP{{Code: 99}}, nil},
		{[]AVP{{Code: AVPUserName}, {Code: 99, Mandatory: true}}, &UnsupportedAVPError{Code: 99}},
		{[]AVP{{Code: AVPUserName, Vendor: 311, Mandatory: true}}, &UnsupportedAVPError{Code: AVPUserName, Vendor: 311}},
	}
	for _, c := range cases {
		err := CheckMandatory(c.avps, known)
		if c.bad == nil {
			if err != nil {
				t.Errorf("%+v: %v", c.avps, err)
			}
			continue
		}
		var ue *UnsupportedAVPError
		if !errors.Is(err, ErrUnsupportedAVP) || !errors.As(err, &ue) || *ue != *c.bad {
			t.Errorf("%+v: %v, want %v", c.avps, err, c.bad)
		}
	}
}
