package tpmimc

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-tpm/tpm2"

	"trustnac/transport/patnc"
)

// FuzzSession feeds arbitrary PA-TNC messages to a session on the
// simulator. Whatever it answers must decode and re-encode to the same
// bytes, a quote must verify over the request's nonce, and a log piece
// must be a slice of the log file.
func FuzzSession(f *testing.F) {
	addSeeds(f, "FuzzSession")
	tp := sim(f)
	dir := f.TempDir()
	boot := filepath.Join(dir, "boot.log")
	bootData := logData(3000)
	if err := os.WriteFile(boot, bootData, 0o600); err != nil {
		f.Fatal(err)
	}
	c, err := New(tp, Config{StateDir: dir, EventLog: boot, IMALog: "-", MaxLogChunk: 1024}, nil)
	if err != nil {
		f.Fatal(err)
	}
	ctx := context.Background()
	ak, err := c.AK(ctx)
	if err != nil {
		f.Fatal(err)
	}
	s, _ := c.NewSession(ctx)
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := patnc.ParseMessage(data, 0)
		if err != nil {
			return
		}
		var req *patnc.TPMQuoteRequest
		for _, a := range msg.Attributes {
			if v, err := patnc.DecodeAttribute(a); err == nil {
				if r, ok := v.(*patnc.TPMQuoteRequest); ok && req == nil {
					req = r
				}
			}
		}
		attrs, err := s.Receive(ctx, msg)
		if err != nil {
			t.Fatalf("Receive: %v", err)
		}
		for _, a := range attrs {
			v, err := patnc.DecodeAttribute(a)
			if err != nil {
				t.Fatalf("answer %v does not decode: %v", a.ID(), err)
			}
			again, err := patnc.EncodeAttribute(v, a.NoSkip)
			if err != nil || !bytes.Equal(again.Value, a.Value) {
				t.Fatalf("answer %v does not round-trip: %v", a.ID(), err)
			}
			switch v := v.(type) {
			case *patnc.TPMQuote:
				if req == nil {
					t.Fatal("quote without a request")
				}
				if err := verifyQuote(ak, v, req.Nonce); err != nil {
					t.Fatalf("quote does not verify: %v", err)
				}
			case *patnc.MeasurementLog:
				if v.Kind != patnc.LogBoot || v.Total != uint64(len(bootData)) ||
					!bytes.Equal(v.Data, bootData[v.Offset:v.Offset+uint64(len(v.Data))]) {
					t.Fatalf("bad log piece kind %d offset %d total %d", v.Kind, v.Offset, v.Total)
				}
			}
		}
	})
}

// FuzzECCPublic: an accepted TPMT_PUBLIC re-encodes to the same bytes.
func FuzzECCPublic(f *testing.F) {
	addSeeds(f, "FuzzECCPublic")
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseECCPublic(data)
		if err != nil {
			return
		}
		out, err := p.AppendBinary(nil)
		if err != nil || !bytes.Equal(out, data) {
			t.Fatalf("round trip: %x (%v), want %x", out, err, data)
		}
		p.PublicKey() // must not panic
	})
}

// FuzzQuoteResponse: an accepted TPM2_Quote response gives the same attest
// and signature when rebuilt around them.
func FuzzQuoteResponse(f *testing.F) {
	addSeeds(f, "FuzzQuoteResponse")
	f.Fuzz(func(t *testing.T, data []byte) {
		attest, sig, err := parseQuoteResponse(data)
		if err != nil {
			return
		}
		a2, s2, err := parseQuoteResponse(quoteResponse(attest, sig))
		if err != nil || !bytes.Equal(a2, attest) || !bytes.Equal(s2, sig) {
			t.Fatalf("rebuilt response differs: %v", err)
		}
		checkQuote(attest, sig, []byte("12345678"), tpm2.TPMAlgECDSA, tpm2.TPMAlgSHA256) // must not panic
	})
}

// FuzzECCSignature: an accepted TPMT_SIGNATURE re-encodes to the same
// bytes.
func FuzzECCSignature(f *testing.F) {
	addSeeds(f, "FuzzECCSignature")
	f.Fuzz(func(t *testing.T, data []byte) {
		scheme, hash, r, s, err := ParseECCSignature(data)
		if err != nil {
			return
		}
		out := binary.BigEndian.AppendUint16(nil, uint16(scheme))
		out = binary.BigEndian.AppendUint16(out, uint16(hash))
		out = append2B(append2B(out, r), s)
		if !bytes.Equal(out, data) {
			t.Fatalf("round trip %x, want %x", out, data)
		}
	})
}

// addSeeds adds the seeds built here; with TPMIMC_WRITE_SEEDS=1 it also
// writes them to testdata/fuzz/<name>/ (the checked-in corpus).
func addSeeds(f *testing.F, name string) {
	seeds := fuzzSeeds(f)[name]
	for _, s := range seeds {
		f.Add(s)
	}
	if os.Getenv("TPMIMC_WRITE_SEEDS") != "1" {
		return
	}
	dir := filepath.Join("testdata", "fuzz", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		f.Fatal(err)
	}
	for i, s := range seeds {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed%02d", i)), []byte(body), 0o644); err != nil {
			f.Fatal(err)
		}
	}
}

func fuzzSeeds(f *testing.F) map[string][][]byte {
	enc := func(noSkip bool, vs ...patnc.Value) []byte {
		m := &patnc.Message{ID: 7}
		for _, v := range vs {
			if err := m.Add(v, noSkip); err != nil {
				f.Fatal(err)
			}
		}
		b, err := m.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	raw := func(as ...patnc.Attribute) []byte {
		b, err := (&patnc.Message{ID: 8, Attributes: as}).MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	n := []byte("0123456789abcdef0123456789abcdef")
	req := &patnc.TPMQuoteRequest{Nonce: n, Selections: twoBanks(),
		Logs: []patnc.LogRequest{{Kind: patnc.LogBoot, Offset: 0}, {Kind: patnc.LogIMA, Offset: patnc.NoLog}}}
	golden := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata/tpm2tools", name))
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	attest, sig, akPub := golden("quote.msg"), golden("quote.sig"), golden("ak.pub")[2:]
	return map[string][][]byte{
		"FuzzSession": {
			enc(false, req),
			enc(false, &patnc.TPMQuoteRequest{Nonce: n[:8], Logs: []patnc.LogRequest{{Kind: patnc.LogBoot, Offset: 2000}}}),
			enc(false, &patnc.TPMQuoteRequest{Nonce: n, Selections: []patnc.PCRSelection{{Hash: 0x0b, PCRs: []uint8{0, 23}}}}),
			enc(false, &patnc.TPMCredentialChallenge{IDObject: bytes.Repeat([]byte{1}, 68), EncSecret: bytes.Repeat([]byte{2}, 256)}, req),
			enc(false, &patnc.AttributeRequest{{Vendor: patnc.VendorTrustnac, Type: patnc.AttrTPMAK}, {Vendor: patnc.VendorTrustnac, Type: patnc.AttrTPMEK}}),
			enc(true, req),
			raw(patnc.Attribute{NoSkip: true, Vendor: patnc.VendorTrustnac, Type: 99, Value: []byte{1}}),
			raw(patnc.Attribute{Vendor: patnc.VendorTrustnac, Type: patnc.AttrTPMQuoteRequest, Value: []byte{1, 8, 0, 0}}),
			{1, 0, 0, 0, 0, 0, 0, 1},
			{2, 0, 0, 0},
		},
		"FuzzECCPublic": {
			akPub,
			akTemplate(tpm2.TPMECCSM2P256, tpm2.TPMAlgSM2, tpm2.TPMAlgSM3256),
			tpm2.Marshal(tpm2.ECCSRKTemplate),
			tpm2.Marshal(tpm2.ECCEKTemplate),
			akPub[:len(akPub)-3],
			{0, 0x23, 0, 0x0b},
		},
		"FuzzQuoteResponse": {
			quoteResponse(attest, sig),
			quoteResponse(attest, nil),
			{0x80, 0x01, 0, 0, 0, 10, 0, 0, 0x01, 0x8b},
			quoteResponse(attest, sig)[:20],
		},
		"FuzzECCSignature": {
			sig,
			{0, 0x1b, 0, 0x12, 0, 1, 7, 0, 1, 8},
			{0, 0x14, 0, 0x0b, 0, 1, 1},
			sig[:len(sig)-1],
		},
	}
}
