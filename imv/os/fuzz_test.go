package osimv_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"trustnac/imv"
	osimv "trustnac/imv/os"
	"trustnac/transport/patnc"
)

// FuzzVerifierReceive feeds arbitrary PA-TNC messages to a fresh session.
// It checks that the verifier never panics, answers only with PA-TNC
// Errors, applies nothing of a message it rejects, keeps facts to the
// CEL-friendly types, and that re-encoding the decoded attributes gives a
// message that yields the same facts (decode → encode → decode).
func FuzzVerifierReceive(f *testing.F) {
	for _, seed := range seedMessages(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := patnc.ParseMessage(data, 64)
		if err != nil {
			return
		}
		ctx := context.Background()
		s := newSession(t, osimv.Config{MaxPackages: 100})
		answer, err := s.Receive(ctx, m)
		if err != nil {
			t.Fatalf("Receive: %v", err)
		}
		r := s.Result()
		if r.Recommendation == imv.NoRecommendation {
			t.Fatal("a received message must lead to a recommendation")
		}
		checkFactTypes(t, "os", r.Facts)
		if len(answer) > 0 {
			for _, a := range answer {
				v, err := patnc.DecodeAttribute(a)
				if err != nil {
					t.Fatalf("answer does not decode: %v", err)
				}
				if _, ok := v.(*patnc.PAError); !ok {
					t.Fatalf("answer holds %T", v)
				}
			}
			if len(r.Facts) != 0 {
				t.Fatalf("rejected message applied facts %v", r.Facts)
			}
			return
		}
		// Re-encode what decoded and feed it to a fresh session.
		var again patnc.Message
		for i := range m.Attributes {
			v, err := m.DecodeAt(i)
			if err != nil {
				again.Attributes = append(again.Attributes, m.Attributes[i])
				continue
			}
			if err := again.Add(v, m.Attributes[i].NoSkip); err != nil {
				t.Fatalf("re-encode %T: %v", v, err)
			}
		}
		s2 := newSession(t, osimv.Config{MaxPackages: 100})
		if out, err := s2.Receive(ctx, &again); err != nil || len(out) != 0 {
			t.Fatalf("re-encoded message answered %v, %v", out, err)
		}
		if r2 := s2.Result(); !reflect.DeepEqual(r2, r) {
			t.Fatalf("re-encoded message gives\n%+v\nwant\n%+v", r2, r)
		}
		// Asking is bounded: at most one request, then nothing.
		if _, err := s.BatchEnding(ctx); err != nil {
			t.Fatal(err)
		}
		if out, _ := s.BatchEnding(ctx); out != nil {
			t.Fatalf("second BatchEnding asked again: %v", out)
		}
	})
}

// checkFactTypes fails unless v holds only string, int64, bool, float64,
// []any and map[string]any.
func checkFactTypes(t *testing.T, path string, v any) {
	t.Helper()
	switch v := v.(type) {
	case string, int64, bool, float64:
	case []any:
		for i, e := range v {
			checkFactTypes(t, fmt.Sprintf("%s[%d]", path, i), e)
		}
	case map[string]any:
		for k, e := range v {
			checkFactTypes(t, path+"."+k, e)
		}
	default:
		t.Fatalf("%s has type %T", path, v)
	}
}

// seedMessages returns encoded messages of each kind the verifier meets.
func seedMessages(t testing.TB) [][]byte {
	m := func(attrs ...patnc.Attribute) []byte {
		b, err := (&patnc.Message{ID: 1, Attributes: attrs}).MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	full, err := fullMessage(t).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return [][]byte{
		full,
		m(enc(t, dpw(1), &patnc.PortFilter{{Protocol: 6, Port: 23, Blocked: true}, {Protocol: 99, Port: 1}})...),
		m(enc(t, patnc.NewInvalidParameterError([]byte{1, 0, 0, 0, 0, 0, 0, 1}, 20))...),
		m(append(enc(t, &patnc.ProductInformation{Name: "x"}), patnc.Attribute{NoSkip: true, Vendor: 0x5597, Type: 1})...),
		m(patnc.Attribute{Vendor: 0x5597, Type: 1, Value: []byte{1}}),
		m(patnc.Attribute{Type: patnc.AttrInstalledPackages, Value: []byte{0, 0, 0, 2, 1, 'a', 0}}),
		m(patnc.Attribute{Type: patnc.AttrOperationalStatus, Value: append([]byte{3, 1, 0, 0}, "2024-02-30T00:00:00Z"...)}),
		m(patnc.Attribute{Type: patnc.AttrStringVersion, Value: []byte{2, 0xff, 0xfe, 0, 0}}),
	}
}
