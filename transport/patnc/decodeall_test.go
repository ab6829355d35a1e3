package patnc

import "testing"

func TestDecodeAll(t *testing.T) {
	var m Message
	fwd := ForwardingEnabled(ForwardingDisabled)
	if err := m.Add(&fwd, false); err != nil {
		t.Fatal(err)
	}
	m.Attributes = append(m.Attributes,
		Attribute{Vendor: 99, Type: 1, Value: []byte{1}},                             // unknown, skippable
		Attribute{NoSkip: true, Vendor: 99, Type: 2, Value: []byte{1}},               // unknown, NOSKIP
		Attribute{Vendor: VendorIETF, Type: AttrForwardingEnabled, Value: []byte{1}}, // malformed
	)
	values, rejected := m.DecodeAll()
	if len(values) != 1 || len(rejected) != 2 {
		t.Fatalf("values %d, rejected %d; want 1 and 2", len(values), len(rejected))
	}
	if !rejected[0].Unsupported || rejected[0].Answer.Code != ErrAttributeTypeNotSupported {
		t.Errorf("NOSKIP unknown: %+v", rejected[0])
	}
	if rejected[1].Unsupported || rejected[1].Answer.Code != ErrInvalidParameter {
		t.Errorf("malformed: %+v", rejected[1])
	}
	answers, err := Answers(rejected)
	if err != nil || len(answers) != 2 || answers[0].Type != AttrPATNCError {
		t.Errorf("Answers = %+v, %v", answers, err)
	}
}
