package pdp

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
	"layeh.com/radius/rfc3576"

	"trustnac/policies"
)

// recordingCoA records the Dynamic Authorization requests it is asked to send.
type recordingCoA struct {
	mu  sync.Mutex
	got []*radius.Packet
	ch  chan struct{}
}

func (c *recordingCoA) DynamicAuth(_ context.Context, _ string, _ netip.Addr, p *radius.Packet) error {
	c.mu.Lock()
	c.got = append(c.got, p)
	c.mu.Unlock()
	c.ch <- struct{}{}
	return nil
}

const reassessPolicy = `
version: 1
default: {role: isolate}
groups:
  - name: attested
    match: 'true'
rules:
  - name: attested
    when: 'tpm.quote_verified && tpm.pcrs_match'
    role: admit
reference_values:
  - name: golden
    groups: [attested]
    pcrs:
      sha256:
        7: "%s"
`

// TestRedecideReassessesOnReferenceChange checks that a change of the
// reference values sends an endpoint attested over EAP a CoA with
// Service-Type Authorize-Only, and makes the MAB posture of a MAC assessed
// over PT-TLS stale, while a policy reload that keeps them sends nothing.
func TestRedecideReassessesOnReferenceChange(t *testing.T) {
	parse := func(pcr7 string) *policies.Policy {
		t.Helper()
		p, err := policies.Parse("p.yaml", []byte(fmt.Sprintf(reassessPolicy, pcr7)))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	st, err := OpenBoltStore(filepath.Join(t.TempDir(), "pdp.db"), false, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sessions, _ := NewSessionTable(nil)
	coa := &recordingCoA{ch: make(chan struct{}, 8)}
	r := NewRADIUS(RADIUSConfig{Store: st, Sessions: sessions, CoA: coa})
	defer r.Close()

	tpmFacts := map[string]map[string]any{"tpm": {"quote_verified": true, "pcrs_match": true}}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(st.Put(&Record{ID: "eap-term", MAC: "02:00:00:00:00:0a", Channel: "eap", Role: "admit", Rule: "attested", Facts: tpmFacts}))
	must(st.Put(&Record{ID: "pt-dev", Channel: "pt-tls", Remote: "10.0.0.9:40000", Role: "admit", Rule: "attested", Facts: tpmFacts}))
	must(st.Put(&Record{ID: postureID("02:00:00:00:00:0b"), MAC: "02:00:00:00:00:0b", Channel: "pt-tls", Role: "admit", DecidedAt: time.Now()}))
	must(sessions.Put(&Session{NAS: "hv1", ID: "s-a", MAC: "02:00:00:00:00:0a", Role: "admit"}))
	must(sessions.Put(&Session{NAS: "hv1", ID: "s-b", MAC: "02:00:00:00:00:0b", IP: netip.MustParseAddr("10.0.0.9"), Role: "admit"}))

	zero, one := "00000000000000000000000000000000000000000000000000000000000000aa", "00000000000000000000000000000000000000000000000000000000000000bb"
	r.Redecide(parse(zero)) // the first policy seen: nothing to compare with
	r.Redecide(parse(zero)) // the same reference values
	select {
	case <-coa.ch:
		t.Fatalf("CoA without a change of the reference values: %v", coa.got)
	case <-time.After(200 * time.Millisecond):
	}

	r.Redecide(parse(one))
	for range 2 {
		select {
		case <-coa.ch:
		case <-time.After(5 * time.Second):
			t.Fatalf("re-assessment requests: %d, want 2", len(coa.got))
		}
	}
	coa.mu.Lock()
	defer coa.mu.Unlock()
	seen := map[string]bool{}
	for _, p := range coa.got {
		if p.Code != radius.CodeCoARequest || rfc2865.ServiceType_Get(p) != rfc2865.ServiceType(rfc3576.ServiceType_Value_AuthorizeOnly) || len(rfc2865.State_Get(p)) == 0 {
			t.Errorf("request %v Service-Type %v State %x", p.Code, rfc2865.ServiceType_Get(p), rfc2865.State_Get(p))
		}
		if rfc2865.FilterID_GetString(p) != "" {
			t.Errorf("Authorize-Only with a Filter-Id %q", rfc2865.FilterID_GetString(p))
		}
		seen[rfc2866.AcctSessionID_GetString(p)] = true
	}
	if !seen["s-a"] || !seen["s-b"] {
		t.Errorf("sessions asked: %v, want s-a and s-b", seen)
	}
	if r.freshPosture("02:00:00:00:00:0b") != nil {
		t.Error("the PT-TLS posture of the MAB device still carries its MAB requests")
	}
	if got := r.Stats()["reassess"]; got != 2 {
		t.Errorf("reassess counter %d", got)
	}
}
