package osimv_test

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"trustnac/imv"
	osimv "trustnac/imv/os"
	"trustnac/transport/patnc"
)

func ietf(t uint32) patnc.AttrID { return patnc.AttrID{Vendor: patnc.VendorIETF, Type: t} }

// wire encodes attrs into a PA-TNC message and parses it back, as the PDP
// hands messages to verifiers.
func wire(t testing.TB, id uint32, attrs ...patnc.Attribute) *patnc.Message {
	t.Helper()
	b, err := (&patnc.Message{ID: id, Attributes: attrs}).MarshalBinary()
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	m, err := patnc.ParseMessage(b, 0)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return m
}

// enc encodes typed values as attributes without NOSKIP.
func enc(t testing.TB, vals ...patnc.Value) []patnc.Attribute {
	t.Helper()
	out := make([]patnc.Attribute, 0, len(vals))
	for _, v := range vals {
		a, err := patnc.EncodeAttribute(v, false)
		if err != nil {
			t.Fatalf("encode %T: %v", v, err)
		}
		out = append(out, a)
	}
	return out
}

func newSession(t testing.TB, cfg osimv.Config) imv.Session {
	t.Helper()
	s, err := osimv.New(cfg, nil).NewSession(context.Background(), imv.Endpoint{ID: "ep1"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func receive(t testing.TB, s imv.Session, m *patnc.Message) []patnc.Attribute {
	t.Helper()
	out, err := s.Receive(context.Background(), m)
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	return out
}

func fwd(v uint32) *patnc.ForwardingEnabled {
	f := patnc.ForwardingEnabled(v)
	return &f
}

func dpw(v uint32) *patnc.FactoryDefaultPasswordEnabled {
	f := patnc.FactoryDefaultPasswordEnabled(v)
	return &f
}

func TestVerifierIdentity(t *testing.T) {
	v := osimv.New(osimv.Config{}, nil)
	if v.Name() != "os" {
		t.Errorf("Name = %q", v.Name())
	}
	if v.Subtype().Vendor != 0 || v.Subtype().Subtype != 1 {
		t.Errorf("Subtype = %+v, want IETF 1", v.Subtype())
	}
}

func TestFacts(t *testing.T) {
	boot := time.Date(2024, 3, 1, 12, 30, 5, 0, time.UTC)
	tests := []struct {
		name string
		vals []patnc.Value
		want map[string]any
	}{
		{
			name: "product information",
			vals: []patnc.Value{&patnc.ProductInformation{Name: "debian"}},
			want: map[string]any{"name": "debian", "product": "debian"},
		},
		{
			name: "product with string version",
			vals: []patnc.Value{
				&patnc.ProductInformation{Name: "ubuntu"},
				&patnc.StringVersion{Version: "22.04", Build: "6.5.0-1-generic", Config: "aarch64"},
			},
			want: map[string]any{
				"name": "ubuntu", "product": "ubuntu 22.04",
				"version": "22.04", "build": "6.5.0-1-generic", "config": "aarch64",
			},
		},
		{
			name: "numeric version",
			vals: []patnc.Value{&patnc.NumericVersion{Major: 22, Minor: 4, Build: 9}},
			want: map[string]any{"version_major": int64(22), "version_minor": int64(4)},
		},
		{
			name: "operational status with last use",
			vals: []patnc.Value{&patnc.OperationalStatus{Status: patnc.StatusOperational, Result: patnc.ResultSuccess, LastUse: boot}},
			want: map[string]any{"status": "operational", "last_use": "2024-03-01T12:30:05Z"},
		},
		{
			name: "operational status unknown, no last use",
			vals: []patnc.Value{&patnc.OperationalStatus{Status: patnc.StatusNotOperational}},
			want: map[string]any{"status": "not operational", "last_use": ""},
		},
		{
			name: "installed packages",
			vals: []patnc.Value{&patnc.InstalledPackages{{Name: "openssh-server", Version: "1:9.2p1-2+deb12u2"}, {Name: "bash", Version: "5.2.15-2+b2"}}},
			want: map[string]any{
				"packages":      map[string]any{"openssh-server": "1:9.2p1-2+deb12u2", "bash": "5.2.15-2+b2"},
				"package_count": int64(2),
			},
		},
		{
			name: "packages merge across attributes, first version stays",
			vals: []patnc.Value{
				&patnc.InstalledPackages{{Name: "a", Version: "1"}, {Name: "b", Version: "2"}},
				&patnc.InstalledPackages{{Name: "b", Version: "9"}, {Name: "c", Version: "3"}},
			},
			want: map[string]any{
				"packages":      map[string]any{"a": "1", "b": "2", "c": "3"},
				"package_count": int64(3),
			},
		},
		{
			name: "empty package list",
			vals: []patnc.Value{&patnc.InstalledPackages{}},
			want: map[string]any{"packages": map[string]any{}, "package_count": int64(0)},
		},
		{name: "forwarding disabled", vals: []patnc.Value{fwd(patnc.ForwardingDisabled)}, want: map[string]any{"forwarding": "disabled"}},
		{name: "forwarding enabled", vals: []patnc.Value{fwd(patnc.ForwardingIsEnabled)}, want: map[string]any{"forwarding": "enabled"}},
		{name: "forwarding unknown", vals: []patnc.Value{fwd(patnc.ForwardingUnknown)}, want: map[string]any{"forwarding": "unknown"}},
		{name: "default password yes", vals: []patnc.Value{dpw(1)}, want: map[string]any{"default_password": true}},
		{name: "default password no", vals: []patnc.Value{dpw(0)}, want: map[string]any{"default_password": false}},
		{
			name: "port filter",
			vals: []patnc.Value{&patnc.PortFilter{
				{Protocol: 6, Port: 22},
				{Protocol: 17, Port: 53},
				{Protocol: 6, Port: 23, Blocked: true},
				{Protocol: 132, Port: 9},
			}},
			want: map[string]any{
				"ports": []any{
					map[string]any{"protocol": "tcp", "port": int64(22), "blocked": false},
					map[string]any{"protocol": "udp", "port": int64(53), "blocked": false},
					map[string]any{"protocol": "tcp", "port": int64(23), "blocked": true},
					map[string]any{"protocol": "132", "port": int64(9), "blocked": false},
				},
				"listening": []any{
					map[string]any{"protocol": "tcp", "port": int64(22)},
					map[string]any{"protocol": "udp", "port": int64(53)},
					map[string]any{"protocol": "132", "port": int64(9)},
				},
			},
		},
		{
			name: "port filter, all blocked",
			vals: []patnc.Value{&patnc.PortFilter{{Protocol: 6, Port: 23, Blocked: true}}},
			want: map[string]any{
				"ports":     []any{map[string]any{"protocol": "tcp", "port": int64(23), "blocked": true}},
				"listening": []any{},
			},
		},
		{
			name: "later singular attribute replaces earlier",
			vals: []patnc.Value{fwd(patnc.ForwardingIsEnabled), fwd(patnc.ForwardingDisabled)},
			want: map[string]any{"forwarding": "disabled"},
		},
		{
			name: "attributes a collector does not send are ignored",
			vals: []patnc.Value{&patnc.AttributeRequest{ietf(2)}, ptr(patnc.AssessmentResult(patnc.AssessmentMajor))},
			want: map[string]any{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newSession(t, osimv.Config{Required: []patnc.AttrID{}})
			if out := receive(t, s, wire(t, 1, enc(t, tc.vals...)...)); out != nil {
				t.Fatalf("answer = %v, want none", out)
			}
			got := s.Result().Facts
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("facts\n got %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// fullMessage is what a healthy collector sends in its first batch.
func fullMessage(t testing.TB) *patnc.Message {
	return wire(t, 7, enc(t,
		&patnc.ProductInformation{Name: "debian"},
		&patnc.StringVersion{Version: "12", Build: "6.1.0-18-amd64", Config: "x86_64"},
		&patnc.NumericVersion{Major: 12},
		&patnc.OperationalStatus{Status: patnc.StatusOperational, Result: patnc.ResultSuccess},
		&patnc.InstalledPackages{{Name: "bash", Version: "5.2.15-2+b2"}},
		fwd(patnc.ForwardingDisabled),
		&patnc.PortFilter{{Protocol: 6, Port: 22}},
	)...)
}

func TestAllRequiredAllows(t *testing.T) {
	s := newSession(t, osimv.Config{})
	receive(t, s, fullMessage(t))
	ask, err := s.BatchEnding(context.Background())
	if err != nil || ask != nil {
		t.Fatalf("BatchEnding = %v, %v; want nothing to ask", ask, err)
	}
	r := s.Result()
	if r.Recommendation != imv.Allow || r.Assessment != patnc.AssessmentCompliant {
		t.Errorf("result = %v/%d, want allow/compliant", r.Recommendation, r.Assessment)
	}
	if len(r.Reasons) != 0 {
		t.Errorf("reasons = %q, want none", r.Reasons)
	}
	if r.Facts["name"] != "debian" || r.Facts["version"] != "12" || r.Facts["package_count"] != int64(1) {
		t.Errorf("facts = %v", r.Facts)
	}
}

func TestNothingArrived(t *testing.T) {
	s := newSession(t, osimv.Config{})
	r := s.Result()
	if r.Recommendation != imv.NoRecommendation || r.Assessment != patnc.AssessmentDontKnow {
		t.Errorf("result = %v/%d, want none/don't know", r.Recommendation, r.Assessment)
	}
	if len(r.Facts) != 0 {
		t.Errorf("facts = %v, want empty", r.Facts)
	}
	if r.Facts == nil {
		t.Error("facts is nil, want an empty map")
	}
}

// requestOf decodes the single Attribute Request in attrs.
func requestOf(t *testing.T, attrs []patnc.Attribute) patnc.AttributeRequest {
	t.Helper()
	if len(attrs) != 1 {
		t.Fatalf("got %d attributes, want one Attribute Request", len(attrs))
	}
	v, err := patnc.DecodeAttribute(attrs[0])
	if err != nil {
		t.Fatal(err)
	}
	req, ok := v.(*patnc.AttributeRequest)
	if !ok {
		t.Fatalf("got %T, want *patnc.AttributeRequest", v)
	}
	return *req
}

func TestAttributeRequestRound(t *testing.T) {
	ctx := context.Background()
	s := newSession(t, osimv.Config{})
	// The first batch lacks Installed Packages and Port Filter.
	receive(t, s, wire(t, 1, enc(t,
		&patnc.ProductInformation{Name: "debian"},
		&patnc.StringVersion{Version: "12"},
		fwd(patnc.ForwardingDisabled),
	)...))
	ask, err := s.BatchEnding(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := patnc.AttributeRequest{ietf(patnc.AttrInstalledPackages), ietf(patnc.AttrPortFilter)}
	if got := requestOf(t, ask); !slices.Equal(got, want) {
		t.Fatalf("request = %v, want %v", got, want)
	}
	// The endpoint answers only the packages.
	receive(t, s, wire(t, 2, enc(t, &patnc.InstalledPackages{{Name: "bash", Version: "5"}})...))
	// Port Filter was asked for once already: no second request.
	ask, err = s.BatchEnding(ctx)
	if err != nil || ask != nil {
		t.Fatalf("second BatchEnding = %v, %v; want nothing", ask, err)
	}
	r := s.Result()
	if r.Recommendation != imv.Isolate || r.Assessment != patnc.AssessmentError {
		t.Errorf("result = %v/%d, want isolate/error", r.Recommendation, r.Assessment)
	}
	if len(r.Reasons) != 1 || !strings.Contains(r.Reasons[0], "port filter") || strings.Contains(r.Reasons[0], "packages") {
		t.Errorf("reasons = %q, want one naming only port filter", r.Reasons)
	}
	if _, ok := r.Facts["packages"]; !ok {
		t.Error("packages fact missing after the answer")
	}
}

func TestBatchEndingBeforeAnyMessage(t *testing.T) {
	s := newSession(t, osimv.Config{})
	ask, err := s.BatchEnding(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := requestOf(t, ask); !slices.Equal(got, patnc.AttributeRequest(osimv.DefaultRequired)) {
		t.Errorf("request = %v, want %v", got, osimv.DefaultRequired)
	}
	// Asking is not receiving: still no recommendation.
	if r := s.Result(); r.Recommendation != imv.NoRecommendation {
		t.Errorf("recommendation = %v, want none", r.Recommendation)
	}
}

func TestCustomRequired(t *testing.T) {
	req := []patnc.AttrID{ietf(patnc.AttrFactoryDefaultPasswordEnabled), ietf(patnc.AttrFactoryDefaultPasswordEnabled)}
	s := newSession(t, osimv.Config{Required: req})
	receive(t, s, fullMessage(t))
	ask, err := s.BatchEnding(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := requestOf(t, ask); !slices.Equal(got, patnc.AttributeRequest{ietf(patnc.AttrFactoryDefaultPasswordEnabled)}) {
		t.Errorf("request = %v, want only factory default password, once", got)
	}
	if r := s.Result(); r.Recommendation != imv.Isolate || !strings.Contains(r.Reasons[0], "factory default password") {
		t.Errorf("result = %v %q", r.Recommendation, r.Reasons)
	}
	receive(t, s, wire(t, 3, enc(t, dpw(0))...))
	if r := s.Result(); r.Recommendation != imv.Allow {
		t.Errorf("after answer: %v %q, want allow", r.Recommendation, r.Reasons)
	}
}

// paErrors decodes attrs as PA-TNC Errors.
func paErrors(t *testing.T, attrs []patnc.Attribute) []*patnc.PAError {
	t.Helper()
	var out []*patnc.PAError
	for _, a := range attrs {
		v, err := patnc.DecodeAttribute(a)
		if err != nil {
			t.Fatal(err)
		}
		e, ok := v.(*patnc.PAError)
		if !ok {
			t.Fatalf("answer %T, want PA-TNC Error", v)
		}
		out = append(out, e)
	}
	return out
}

func TestUnknownAttributes(t *testing.T) {
	vendorAttr := patnc.Attribute{Vendor: 0x9999, Type: 5, Value: []byte{1, 2, 3}}
	swima := patnc.Attribute{Vendor: patnc.VendorIETF, Type: 14, Value: []byte{0}}
	tests := []struct {
		name        string
		unknown     patnc.Attribute
		noSkip      bool
		wantApplied bool
	}{
		{"vendor attribute skipped", vendorAttr, false, true},
		{"IETF SWIMA attribute skipped", swima, false, true},
		{"vendor attribute NOSKIP", vendorAttr, true, false},
		{"IETF SWIMA attribute NOSKIP", swima, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newSession(t, osimv.Config{})
			u := tc.unknown
			u.NoSkip = tc.noSkip
			attrs := append(enc(t, &patnc.ProductInformation{Name: "debian"}), u)
			m := wire(t, 42, attrs...)
			out := receive(t, s, m)
			_, applied := s.Result().Facts["name"]
			if applied != tc.wantApplied {
				t.Errorf("product applied = %v, want %v", applied, tc.wantApplied)
			}
			if tc.wantApplied {
				if out != nil {
					t.Errorf("answer = %v, want none", out)
				}
				return
			}
			errs := paErrors(t, out)
			if len(errs) != 1 || errs[0].Code != patnc.ErrAttributeTypeNotSupported {
				t.Fatalf("answer = %+v, want one Attribute Type Not Supported", errs)
			}
			ua, ok := errs[0].UnsupportedAttribute()
			if !ok || ua.Vendor != u.Vendor || ua.Type != u.Type || !ua.NoSkip {
				t.Errorf("error names %+v, want %d/%d NOSKIP", ua, u.Vendor, u.Type)
			}
			if hdr, _ := errs[0].MessageHeader(); !slices.Equal(hdr, m.Header()) {
				t.Errorf("error header %x, want %x", hdr, m.Header())
			}
			r := s.Result()
			if r.Recommendation != imv.Isolate || len(r.Reasons) < 2 {
				t.Errorf("result %v %q: want isolate with the unsupported attribute noted", r.Recommendation, r.Reasons)
			}
		})
	}
}

func TestMalformedAttribute(t *testing.T) {
	good := enc(t, &patnc.ProductInformation{Name: "debian"})[0]
	tests := []struct {
		name    string
		bad     patnc.Attribute
		wantOff uint32 // offset within the bad attribute's value
	}{
		// Count 5 with room for none.
		{"package count too large", patnc.Attribute{Type: patnc.AttrInstalledPackages, Value: []byte{0, 0, 0, 5}}, 2},
		{"forwarding out of range", patnc.Attribute{Type: patnc.AttrForwardingEnabled, Value: []byte{0, 0, 0, 7}}, 0},
		{"string version truncated", patnc.Attribute{Type: patnc.AttrStringVersion, Value: []byte{9, 'a'}}, 0},
		{"port filter odd length", patnc.Attribute{Type: patnc.AttrPortFilter, Value: []byte{0, 6, 0}}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newSession(t, osimv.Config{})
			m := wire(t, 9, good, tc.bad)
			out := receive(t, s, m)
			errs := paErrors(t, out)
			if len(errs) != 1 || errs[0].Code != patnc.ErrInvalidParameter {
				t.Fatalf("answer = %+v, want one Invalid Parameter", errs)
			}
			base, _ := m.ValueOffset(1)
			if off, ok := errs[0].Offset(); !ok || off != base+tc.wantOff {
				t.Errorf("offset = %d, want %d", off, base+tc.wantOff)
			}
			r := s.Result()
			if len(r.Facts) != 0 {
				t.Errorf("facts = %v: nothing of a rejected message may apply", r.Facts)
			}
			if !slices.ContainsFunc(r.Reasons, func(s string) bool { return strings.Contains(s, "malformed") }) {
				t.Errorf("reasons = %q, want the malformed attribute noted", r.Reasons)
			}
		})
	}
}

func TestCollectorPAError(t *testing.T) {
	s := newSession(t, osimv.Config{Required: []patnc.AttrID{}})
	e := patnc.NewAttributeTypeNotSupportedError([]byte{1, 0, 0, 0, 0, 0, 0, 1}, patnc.Attribute{NoSkip: true, Vendor: 0, Type: 12})
	if out := receive(t, s, wire(t, 1, enc(t, e)...)); out != nil {
		t.Fatalf("answer = %v, want none", out)
	}
	r := s.Result()
	if len(r.Reasons) != 1 || !strings.Contains(r.Reasons[0], "attribute type not supported (factory default password enabled)") {
		t.Errorf("reasons = %q", r.Reasons)
	}
}

func TestMaxPackages(t *testing.T) {
	s := newSession(t, osimv.Config{MaxPackages: 3})
	pk := func(names ...string) *patnc.InstalledPackages {
		var p patnc.InstalledPackages
		for _, n := range names {
			p = append(p, patnc.Package{Name: n, Version: "1"})
		}
		return &p
	}
	receive(t, s, wire(t, 1, enc(t, pk("a", "b", "c"))...))
	if got := s.Result().Facts["package_count"]; got != int64(3) {
		t.Fatalf("package_count = %v, want 3", got)
	}
	// Repeating known packages stays within the cap.
	receive(t, s, wire(t, 2, enc(t, pk("a", "c"))...))
	if got := s.Result().Facts["package_count"]; got != int64(3) {
		t.Fatalf("package_count = %v, want 3", got)
	}
	receive(t, s, wire(t, 3, enc(t, pk("d"))...))
	r := s.Result()
	if _, ok := r.Facts["packages"]; ok {
		t.Error("packages fact present past the cap")
	}
	if !slices.ContainsFunc(r.Reasons, func(s string) bool { return strings.Contains(s, "more than 3 installed packages") }) {
		t.Errorf("reasons = %q", r.Reasons)
	}
	if !strings.Contains(r.Reasons[0], "installed packages") {
		t.Errorf("first reason %q should name installed packages as missing", r.Reasons[0])
	}
}

func TestResultFactsAreCopies(t *testing.T) {
	s := newSession(t, osimv.Config{})
	receive(t, s, fullMessage(t))
	r := s.Result()
	r.Facts["name"] = "evil"
	r.Facts["packages"].(map[string]any)["bash"] = "99"
	r.Facts["ports"].([]any)[0].(map[string]any)["port"] = int64(1)
	r2 := s.Result()
	if r2.Facts["name"] != "debian" || r2.Facts["packages"].(map[string]any)["bash"] != "5.2.15-2+b2" ||
		r2.Facts["ports"].([]any)[0].(map[string]any)["port"] != int64(22) {
		t.Errorf("facts changed through an earlier Result: %v", r2.Facts)
	}
}

// TestFactTypes checks that facts hold only the CEL-friendly types of the
// contract.
func TestFactTypes(t *testing.T) {
	s := newSession(t, osimv.Config{})
	receive(t, s, fullMessage(t))
	receive(t, s, wire(t, 2, enc(t, dpw(1))...))
	checkFactTypes(t, "os", s.Result().Facts)
}
