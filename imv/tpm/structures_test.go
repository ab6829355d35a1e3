package tpmimv

import (
	"bytes"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"math/big"
	"slices"
	"testing"
)

func TestParseGoldenStructures(t *testing.T) {
	for _, tc := range []struct {
		dir   string
		curve uint16
		sig   uint16
	}{{"ecdsa", curveNISTP256, algECDSA}, {"sm2", curveSM2P256, algSM2}} {
		t.Run(tc.dir, func(t *testing.T) {
			ev := readGolden(t, tc.dir, "quote")
			a, err := parseAttest(ev.Attest)
			if err != nil {
				t.Fatal(err)
			}
			if a.Magic != tpmGeneratedValue || a.Type != tpmSTAttestQuote || !bytes.Equal(a.ExtraData, ev.Nonce) ||
				len(a.PCRSelect) != 2 || a.PCRSelect[0].Hash != algSHA256 || a.PCRSelect[1].Hash != algSHA1 ||
				!slices.Equal(a.PCRSelect[0].indexes(), []int{0, 1, 2, 7}) || !slices.Equal(a.PCRSelect[1].indexes(), []int{0, 7}) ||
				len(a.PCRDigest) != 32 || len(a.QualifiedSigner) != 34 {
				t.Errorf("attest %+v", a)
			}
			if got := a.appendBinary(nil); !bytes.Equal(got, ev.Attest) {
				t.Errorf("attest re-encodes to\n%x, want\n%x", got, ev.Attest)
			}
			p, err := parsePublic(unwrapPublic(ev.AKPublic))
			if err != nil {
				t.Fatal(err)
			}
			if p.Type != algECC || p.CurveID != tc.curve || p.Scheme != tc.sig || p.SchemeHash != algSHA256 || p.SymAlg != algNull ||
				p.Attributes != 0x50072 || len(p.X) != 32 {
				t.Errorf("public %+v", p)
			}
			if got := p.appendBinary(nil); !bytes.Equal(got, ev.AKPublic[2:]) {
				t.Error("public area does not re-encode")
			}
			s, err := parseSignature(ev.Signature)
			if err != nil {
				t.Fatal(err)
			}
			if s.Alg != tc.sig || s.Hash != algSHA256 || len(s.R) != 32 || len(s.S) != 32 {
				t.Errorf("signature %+v", s)
			}
			if got := s.appendBinary(nil); !bytes.Equal(got, ev.Signature) {
				t.Error("signature does not re-encode")
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	ev := readGolden(t, "ecdsa", "quote")
	a, _ := parseAttest(ev.Attest)
	edit := func(f func(a *attest)) []byte {
		c := *a
		c.PCRSelect = slices.Clone(a.PCRSelect)
		f(&c)
		return c.appendBinary(nil)
	}
	attests := map[string][]byte{
		"empty":             nil,
		"truncated":         ev.Attest[:len(ev.Attest)-1],
		"trailing":          append(slices.Clone(ev.Attest), 0),
		"bad safe":          edit(func(a *attest) { a.Safe = 2 }),
		"unknown bank":      edit(func(a *attest) { a.PCRSelect[0].Hash = 0x0099 }),
		"duplicate bank":    edit(func(a *attest) { a.PCRSelect[1].Hash = a.PCRSelect[0].Hash }),
		"PCR 24":            edit(func(a *attest) { a.PCRSelect[0].Select = []byte{0, 0, 0, 1} }),
		"sizeofSelect 5":    edit(func(a *attest) { a.PCRSelect[0].Select = make([]byte, 5) }),
		"nine banks":        edit(func(a *attest) { a.PCRSelect = slices.Repeat(a.PCRSelect[:1], 9) }),
		"long extraData":    edit(func(a *attest) { a.ExtraData = make([]byte, 65) }),
		"not a quote":       edit(func(a *attest) { a.Type = 0x8017 }),
		"not TPM generated": edit(func(a *attest) { a.Magic = 0 }),
	}
	for name, b := range attests {
		if _, err := parseAttest(b); err == nil {
			t.Errorf("attest %s: accepted", name)
		}
	}
	if _, err := parseAttest(edit(func(a *attest) { a.Type = 0x8017 })); !errors.Is(err, errNotQuote) {
		t.Errorf("not a quote: %v", err)
	}

	sigs := map[string][]byte{
		"empty":     nil,
		"null":      {0, 0x10},
		"RSASSA":    {0, 0x14, 0, 0xb, 0, 1, 0},
		"truncated": ev.Signature[:len(ev.Signature)-1],
		"trailing":  append(slices.Clone(ev.Signature), 0),
		"long R":    (&signature{Alg: algECDSA, Hash: algSHA256, R: make([]byte, 67), S: []byte{1}}).appendBinary(nil),
	}
	for name, b := range sigs {
		if _, err := parseSignature(b); err == nil {
			t.Errorf("signature %s: accepted", name)
		}
	}

	pub := unwrapPublic(ev.AKPublic)
	p, _ := parsePublic(pub)
	editPub := func(f func(p *publicArea)) []byte {
		c := *p
		f(&c)
		return c.appendBinary(nil)
	}
	publics := map[string][]byte{
		"RSA":             {0, 1, 0, 0xb, 0, 0, 0, 0, 0, 0},
		"truncated":       pub[:len(pub)-1],
		"trailing":        append(slices.Clone(pub), 0),
		"P-384":           editPub(func(p *publicArea) { p.CurveID = 0x0004 }),
		"ECDH scheme":     editPub(func(p *publicArea) { p.Scheme = 0x0019 }),
		"off the curve":   editPub(func(p *publicArea) { p.Y = bytes.Repeat([]byte{1}, 32) }),
		"SHA-512 name":    editPub(func(p *publicArea) { p.NameAlg = algSHA512 }),
		"unknown name":    editPub(func(p *publicArea) { p.NameAlg = 0x0099 }),
		"33-byte x":       editPub(func(p *publicArea) { p.X = append([]byte{0}, p.X...) }),
		"long authPolicy": editPub(func(p *publicArea) { p.AuthPolicy = make([]byte, 65) }),
	}
	for name, b := range publics {
		if _, err := parseAK(b); err == nil {
			t.Errorf("public %s: accepted", name)
		}
	}
	// A key with an ECDAA scheme parses (its count field included) but is
	// not an AK this verifier uses.
	ecdaa := editPub(func(p *publicArea) { p.Scheme, p.SchemeCount = algECDAA, 7 })
	if q, err := parsePublic(ecdaa); err != nil || q.SchemeCount != 7 || !bytes.Equal(q.appendBinary(nil), ecdaa) {
		t.Errorf("ECDAA public: %+v %v", q, err)
	}
}

func TestAppendDERSignature(t *testing.T) {
	for _, tc := range [][2][]byte{
		{{1}, {2}},
		{{0x80}, {0x7f}},
		{{0, 0, 0x80, 1}, {0, 0xff}},
		{bytes.Repeat([]byte{0xff}, 32), bytes.Repeat([]byte{0x01}, 32)},
		{bytes.Repeat([]byte{0xff}, 66), bytes.Repeat([]byte{0xff}, 66)}, // long-form length
	} {
		got, ok := appendDERSignature(nil, tc[0], tc[1])
		want, _ := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(tc[0]), new(big.Int).SetBytes(tc[1])})
		if !ok || !bytes.Equal(got, want) {
			t.Errorf("%x %x: got %x, want %x", tc[0], tc[1], got, want)
		}
	}
	if _, ok := appendDERSignature(nil, []byte{0}, []byte{1}); ok {
		t.Error("zero r accepted")
	}
	if _, ok := appendDERSignature(nil, []byte{1}, bytes.Repeat([]byte{1}, 67)); ok {
		t.Error("67-byte s accepted")
	}
}

func TestUnwrapPublic(t *testing.T) {
	k := newTestAK(t, AKAlgECDSAP256, 0)
	wrapped := binary.BigEndian.AppendUint16(nil, uint16(len(k.public)))
	wrapped = append(wrapped, k.public...)
	if !bytes.Equal(unwrapPublic(wrapped), k.public) || !bytes.Equal(unwrapPublic(k.public), k.public) {
		t.Error("unwrapPublic")
	}
}

func TestCovers(t *testing.T) {
	a := &attest{PCRSelect: []pcrSelection{sel(algSHA256, 0, 1, 7, 10), sel(algSHA384, 0)}}
	missing, any := covers(a, []uint16{algSHA256, algSHA1}, []int{0, 7, 10})
	if len(missing) != 0 || !any {
		t.Errorf("%v %v", missing, any)
	}
	missing, _ = covers(a, []uint16{algSHA256}, []int{0, 2, 7})
	if !slices.Equal(missing, []string{"sha256:2"}) {
		t.Errorf("missing %v", missing)
	}
	if _, any := covers(a, []uint16{algSHA1}, []int{0}); any {
		t.Error("sha1 covered")
	}
}
