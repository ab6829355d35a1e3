package tpmimc

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-tpm/tpm2"

	"trustnac/transport/patnc"
)

// decodeAll decodes every attribute of an answer, failing on any error.
func decodeAll(t *testing.T, attrs []patnc.Attribute) []patnc.Value {
	t.Helper()
	var out []patnc.Value
	for _, a := range attrs {
		v, err := patnc.DecodeAttribute(a)
		if err != nil {
			t.Fatalf("answer attribute %v: %v", a.ID(), err)
		}
		out = append(out, v)
	}
	return out
}

func message(t *testing.T, noSkip bool, vs ...patnc.Value) *patnc.Message {
	t.Helper()
	m := &patnc.Message{ID: 42}
	for _, v := range vs {
		if err := m.Add(v, noSkip); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

func TestSession(t *testing.T) {
	tp := sim(t)
	dir := t.TempDir()
	boot := filepath.Join(dir, "boot.log")
	bootData := logData(700)
	if err := os.WriteFile(boot, bootData, 0o600); err != nil {
		t.Fatal(err)
	}
	c := newCollector(t, tp, Config{EventLog: boot, IMALog: filepath.Join(dir, "no-ima"), MaxLogChunk: 512})
	ctx := context.Background()
	s, err := c.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// Begin: AK then EK.
	attrs, err := s.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	vs := decodeAll(t, attrs)
	if len(vs) != 2 {
		t.Fatalf("Begin sent %d attributes, want 2", len(vs))
	}
	akv, ok1 := vs[0].(*patnc.TPMKey)
	ekv, ok2 := vs[1].(*patnc.TPMKey)
	if !ok1 || !ok2 || akv.IsEK() || !ekv.IsEK() {
		t.Fatalf("Begin sent %T %T", vs[0], vs[1])
	}
	ak, err := c.AK(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(akv.Public, ak.PublicBytes) {
		t.Error("AK attribute is not the AK")
	}
	if ekv.Cert != nil {
		t.Error("the simulator has no EK certificate")
	}

	// Credential challenge, quote request and log requests in one message.
	ekPub, err := tpm2.Unmarshal[tpm2.TPMTPublic](ekv.Public)
	if err != nil {
		t.Fatal(err)
	}
	key, err := tpm2.ImportEncapsulationKey(ekPub)
	if err != nil {
		t.Fatal(err)
	}
	secret := make([]byte, 32)
	rand.Read(secret)
	id, enc, err := tpm2.CreateCredential(rand.Reader, key, ak.Name.Buffer, secret)
	if err != nil {
		t.Fatal(err)
	}
	n := nonce(0x42)
	msg := message(t, false,
		&patnc.TPMCredentialChallenge{IDObject: id, EncSecret: enc},
		&patnc.TPMQuoteRequest{
			Nonce:      n,
			Selections: twoBanks(),
			Logs:       []patnc.LogRequest{{Kind: patnc.LogBoot, Offset: 100}, {Kind: patnc.LogIMA, Offset: 0}},
		})
	attrs, err = s.Receive(ctx, msg)
	if err != nil {
		t.Fatal(err)
	}
	vs = decodeAll(t, attrs)
	if len(vs) != 3 {
		t.Fatalf("answer has %d attributes, want response, quote, boot log", len(vs))
	}
	resp, ok := vs[0].(*patnc.TPMCredentialResponse)
	if !ok || !bytes.Equal(resp.Secret, secret) {
		t.Fatalf("credential response %#v", vs[0])
	}
	q, ok := vs[1].(*patnc.TPMQuote)
	if !ok {
		t.Fatalf("second attribute %T", vs[1])
	}
	if err := verifyQuote(ak, q, n); err != nil {
		t.Fatal(err)
	}
	piece, ok := vs[2].(*patnc.MeasurementLog)
	if !ok || piece.Kind != patnc.LogBoot || piece.Offset != 100 || piece.Total != 700 ||
		!bytes.Equal(piece.Data, bootData[100:612]) {
		t.Fatalf("log piece %+v", vs[2])
	}

	// More log only: no PCRs selected, no quote.
	attrs, err = s.Receive(ctx, message(t, false, &patnc.TPMQuoteRequest{
		Nonce: n, Logs: []patnc.LogRequest{{Kind: patnc.LogBoot, Offset: 612}, {Kind: patnc.LogIMA, Offset: patnc.NoLog}},
	}))
	if err != nil {
		t.Fatal(err)
	}
	vs = decodeAll(t, attrs)
	if len(vs) != 1 {
		t.Fatalf("more-log answer has %d attributes", len(vs))
	}
	if piece := vs[0].(*patnc.MeasurementLog); piece.Offset != 612 || !bytes.Equal(piece.Data, bootData[612:]) {
		t.Errorf("second piece offset %d, %d bytes", piece.Offset, len(piece.Data))
	}

	// An Attribute Request for the AK.
	attrs, err = s.Receive(ctx, message(t, false, &patnc.AttributeRequest{{Vendor: patnc.VendorTrustnac, Type: patnc.AttrTPMAK}}))
	if err != nil {
		t.Fatal(err)
	}
	if vs = decodeAll(t, attrs); len(vs) != 1 || vs[0].(*patnc.TPMKey).IsEK() {
		t.Errorf("AK request answered with %v", vs)
	}

	// A challenge for another AK: no response, but the quote still comes.
	other, enc2, _ := tpm2.CreateCredential(rand.Reader, key, append([]byte{0, 0x0b}, make([]byte, 32)...), secret)
	attrs, err = s.Receive(ctx, message(t, false,
		&patnc.TPMCredentialChallenge{IDObject: other, EncSecret: enc2},
		&patnc.TPMQuoteRequest{Nonce: n, Selections: twoBanks()}))
	if err != nil {
		t.Fatal(err)
	}
	if vs = decodeAll(t, attrs); len(vs) != 1 {
		t.Fatalf("answer to a bad challenge has %d attributes", len(vs))
	}
	if _, ok := vs[0].(*patnc.TPMQuote); !ok {
		t.Errorf("answer %T", vs[0])
	}
}

func TestSessionRejects(t *testing.T) {
	tp := sim(t)
	c := newCollector(t, tp, Config{EventLog: "-", IMALog: "-"})
	ctx := context.Background()
	s, _ := c.NewSession(ctx)
	quote := &patnc.TPMQuoteRequest{Nonce: nonce(1), Selections: twoBanks()}
	unknown := patnc.Attribute{Vendor: patnc.VendorTrustnac, Type: 99, Value: []byte{1}}
	tests := []struct {
		name    string
		msg     *patnc.Message
		paError bool
		n       int
	}{
		{"unknown skippable attribute ignored", func() *patnc.Message {
			m := message(t, false, quote)
			m.Attributes = append(m.Attributes, unknown)
			return m
		}(), false, 1},
		{"unknown NOSKIP attribute", func() *patnc.Message {
			m := message(t, false, quote)
			u := unknown
			u.NoSkip = true
			m.Attributes = append(m.Attributes, u)
			return m
		}(), true, 1},
		{"malformed quote request", &patnc.Message{ID: 1, Attributes: []patnc.Attribute{
			{Vendor: patnc.VendorTrustnac, Type: patnc.AttrTPMQuoteRequest, Value: []byte{1, 2}},
		}}, true, 1},
		{"nothing to answer", message(t, false, &patnc.AttributeRequest{{Vendor: 0, Type: 2}}), false, 0},
		{"logs off", message(t, false, &patnc.TPMQuoteRequest{Nonce: nonce(1), Logs: []patnc.LogRequest{{Kind: patnc.LogBoot}}}), false, 0},
		{"no active bank", message(t, false, &patnc.TPMQuoteRequest{Nonce: nonce(1),
			Selections: []patnc.PCRSelection{{Hash: uint16(tpm2.TPMAlgSM3256), PCRs: []uint8{0}}}}), false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			attrs, err := s.Receive(ctx, tt.msg)
			if err != nil {
				t.Fatal(err)
			}
			vs := decodeAll(t, attrs)
			if len(vs) != tt.n {
				t.Fatalf("%d attributes, want %d", len(vs), tt.n)
			}
			for _, v := range vs {
				_, isErr := v.(*patnc.PAError)
				if isErr != tt.paError {
					t.Errorf("answer %T, PA-TNC error wanted %v", v, tt.paError)
				}
			}
		})
	}
}

// A TPM that fails every command: the session answers with nothing.
func TestSessionTPMFailure(t *testing.T) {
	f := &fakeTPM{}
	c := newCollector(t, f, Config{EventLog: "-", IMALog: "-"})
	ctx := context.Background()
	s, _ := c.NewSession(ctx)
	attrs, err := s.Begin(ctx)
	if err != nil || len(attrs) != 0 {
		t.Errorf("Begin: %d attributes, %v", len(attrs), err)
	}
	attrs, err = s.Receive(ctx, message(t, false, &patnc.TPMQuoteRequest{Nonce: nonce(1), Selections: twoBanks()},
		&patnc.TPMCredentialChallenge{IDObject: []byte{1}, EncSecret: []byte{2}}))
	if err != nil || len(attrs) != 0 {
		t.Errorf("Receive: %d attributes, %v", len(attrs), err)
	}
	if f.sent == 0 {
		t.Error("the TPM was not asked")
	}
}
