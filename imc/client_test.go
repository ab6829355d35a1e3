package imc

import (
	"context"
	"testing"

	"trustnac/transport/patnc"
	"trustnac/transport/pbtnc"
)

// echoCollector sends one attribute at Begin and answers every message with
// the number of attributes it had.
type echoCollector struct {
	name    string
	subtype pbtnc.PASubtype
	got     []*patnc.Message
}

func (e *echoCollector) Name() string                                { return e.name }
func (e *echoCollector) Subtype() pbtnc.PASubtype                    { return e.subtype }
func (e *echoCollector) NewSession(context.Context) (Session, error) { return e, nil }
func (e *echoCollector) Begin(context.Context) ([]patnc.Attribute, error) {
	a, err := patnc.EncodeAttribute(&patnc.StringVersion{Version: e.name}, false)
	return []patnc.Attribute{a}, err
}
func (e *echoCollector) Receive(_ context.Context, m *patnc.Message) ([]patnc.Attribute, error) {
	e.got = append(e.got, m)
	v := patnc.AssessmentResult(len(m.Attributes))
	a, err := patnc.EncodeAttribute(&v, false)
	return []patnc.Attribute{a}, err
}

func paMessage(t *testing.T, values ...patnc.Value) []byte {
	t.Helper()
	var m patnc.Message
	for _, v := range values {
		if err := m.Add(v, false); err != nil {
			t.Fatal(err)
		}
	}
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestHandshakeRouting(t *testing.T) {
	osCol := &echoCollector{name: "os", subtype: pbtnc.SubtypeOS}
	fwA := &echoCollector{name: "fw-a", subtype: pbtnc.SubtypeFirewall}
	fwB := &echoCollector{name: "fw-b", subtype: pbtnc.SubtypeFirewall}
	h := NewClient([]Collector{osCol, fwA, fwB}, nil).Handshake()
	ctx := context.Background()

	first, err := h.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 3 {
		t.Fatalf("Begin sent %d messages, want one per collector", len(first))
	}
	for i, pa := range first {
		if pa.CollectorID != uint16(i) || pa.ValidatorID != pbtnc.AnyID || pa.Exclusive {
			t.Errorf("message %d: collector %d validator %#x exclusive %v", i, pa.CollectorID, pa.ValidatorID, pa.Exclusive)
		}
	}

	rf := patnc.ForwardingEnabled(0)
	out, err := h.Receive(ctx, []pbtnc.PA{
		// To every firewall collector.
		{Subtype: pbtnc.SubtypeFirewall, CollectorID: pbtnc.AnyID, ValidatorID: 7, Body: paMessage(t, &rf)},
		// Exclusively to fw-b (collector ID 2).
		{Exclusive: true, Subtype: pbtnc.SubtypeFirewall, CollectorID: 2, ValidatorID: 7, Body: paMessage(t, &rf, &rf)},
		// A subtype nobody collects.
		{Subtype: pbtnc.SubtypeVPN, CollectorID: pbtnc.AnyID, ValidatorID: 9, Body: paMessage(t, &rf)},
		// A malformed PA-TNC message to the OS collector.
		{Subtype: pbtnc.SubtypeOS, CollectorID: 0, ValidatorID: 3, Body: []byte{2, 0, 0, 0, 0, 0, 0, 1}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(osCol.got) != 0 || len(fwA.got) != 1 || len(fwB.got) != 2 {
		t.Errorf("delivered os %d, fw-a %d, fw-b %d; want 0, 1, 2", len(osCol.got), len(fwA.got), len(fwB.got))
	}
	if len(out) != 4 {
		t.Fatalf("answers: %d, want 4", len(out))
	}
	for _, pa := range out[:3] {
		if pa.ValidatorID != 7 || !pa.Exclusive {
			t.Errorf("answer not addressed to its verifier: %+v", pa)
		}
	}
	// The malformed message is answered with a PA-TNC Error.
	m, err := patnc.ParseMessage(out[3].Body, 0)
	if err != nil {
		t.Fatal(err)
	}
	if out[3].CollectorID != 0 || len(m.Attributes) != 1 || m.Attributes[0].Type != patnc.AttrPATNCError {
		t.Errorf("answer to a malformed message: %+v", m)
	}
	v, err := patnc.DecodeAttribute(m.Attributes[0])
	if err != nil {
		t.Fatal(err)
	}
	if pe := v.(*patnc.PAError); pe.Code != patnc.ErrVersionNotSupported {
		t.Errorf("error code %d, want Version Not Supported", pe.Code)
	}
}

func TestOutcomeRemediationFromPA(t *testing.T) {
	ar := pbtnc.AssessmentResult(patnc.AssessmentMinor)
	uri := &patnc.RemediationInstructions{Type: patnc.RemediationURI, URI: "https://fix.test/"}
	txt := &patnc.RemediationInstructions{Type: patnc.RemediationString, Text: "remove telnetd", Lang: "en"}
	o := OutcomeOf(pbtnc.Result{
		Recommendation: pbtnc.RecommendationQuarantined,
		Assessment:     &ar,
		Remediation:    []pbtnc.RemediationParameters{{Type: pbtnc.RemediationURI, URI: "https://fix.test/"}},
		Reasons:        []pbtnc.ReasonString{{Reason: "telnet", Lang: "en"}},
		PA:             []pbtnc.PA{{Subtype: pbtnc.SubtypeOS, Body: paMessage(t, uri, txt)}},
	})
	if o.Role != "remediate" || len(o.Reasons) != 1 {
		t.Errorf("outcome %+v", o)
	}
	if len(o.Remediation) != 2 {
		t.Errorf("remediation %+v: want the URI once and the text", o.Remediation)
	}
}
