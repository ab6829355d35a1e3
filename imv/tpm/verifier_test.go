package tpmimv

import (
	"bytes"
	"context"
	"encoding/hex"
	"slices"
	"strings"
	"testing"
	"time"

	"trustnac/imv"
	"trustnac/imv/tpm/eventlog"
	"trustnac/transport/patnc"
)

var testEP = imv.Endpoint{ID: "ep-1", Channel: "pt-tls"}

// lab is a verifier with a store and an endpoint with a TPM.
type lab struct {
	store *MemAKStore
	v     *Verifier
	ak    *testAK
	tpm   *testTPM
	ek    *testEK
}

func newLab(t testing.TB, alg string, cfg Config) *lab {
	t.Helper()
	l := &lab{store: NewMemAKStore(), ak: newTestAK(t, alg, 0)}
	l.tpm = newTestTPM(t, l.ak)
	if cfg.AKs == nil {
		cfg.AKs = l.store
	}
	l.v = New(cfg, nil)
	return l
}

func (l *lab) session(t testing.TB) *session {
	t.Helper()
	s, err := l.v.NewSession(context.Background(), testEP)
	if err != nil {
		t.Fatal(err)
	}
	return s.(*session)
}

// begin sends the AK (and EK, when the lab has one) and returns the
// session's answer.
func (l *lab) begin(t testing.TB, s *session) []patnc.Value {
	t.Helper()
	vals := []patnc.Value{patnc.NewTPMAK(l.ak.public)}
	if l.ek != nil {
		vals = append(vals, patnc.NewTPMEK(l.ek.public, l.ek.cert))
	}
	return exchange(t, s, vals...)
}

// run plays an honest endpoint through a whole assessment: it answers
// every quote request and credential challenge (with the session's own
// secret, standing in for TPM2_ActivateCredential) until the session asks
// no more.
func (l *lab) run(t testing.TB, s *session) imv.Result {
	t.Helper()
	return l.runFrom(t, s, l.begin(t, s))
}

// runFrom goes on from the session's answer out.
func (l *lab) runFrom(t testing.TB, s *session, out []patnc.Value) imv.Result {
	t.Helper()
	for round := 0; len(out) > 0; round++ {
		if round > 10 {
			t.Fatal("the session keeps asking")
		}
		var answer []patnc.Value
		if find[*patnc.TPMCredentialChallenge](out) != nil {
			answer = append(answer, &patnc.TPMCredentialResponse{Secret: slices.Clone(s.secret)})
		}
		if req := find[*patnc.TPMQuoteRequest](out); req != nil {
			answer = append(answer, l.tpm.quote(t, req))
			answer = append(answer, emptyLogs()...)
		}
		out = exchange(t, s, answer...)
	}
	return s.Result()
}

func wantRec(t testing.TB, r imv.Result, rec imv.Recommendation, reason string) {
	t.Helper()
	if r.Recommendation != rec {
		t.Fatalf("recommendation %v, want %v (reasons %q)", r.Recommendation, rec, r.Reasons)
	}
	if reason != "" && !slices.ContainsFunc(r.Reasons, func(s string) bool { return strings.Contains(s, reason) }) {
		t.Fatalf("reasons %q lack %q", r.Reasons, reason)
	}
}

func TestSessionAllow(t *testing.T) {
	for _, alg := range []string{AKAlgECDSAP256, AKAlgSM2} {
		t.Run(alg, func(t *testing.T) {
			l := newLab(t, alg, Config{})
			approve(t, l.store, l.ak, MethodEKCert)
			l.tpm.extend(7, []byte("secure boot on"))
			s := l.session(t)
			out := l.begin(t, s)
			req := find[*patnc.TPMQuoteRequest](out)
			if req == nil || len(out) != 1 {
				t.Fatalf("begin answered %v, want one quote request", out)
			}
			if len(req.Nonce) != 32 {
				t.Errorf("nonce of %d bytes", len(req.Nonce))
			}
			if len(req.Selections) != 2 || req.Selections[0].Hash != algSHA256 || req.Selections[1].Hash != algSHA1 ||
				!slices.Equal(req.Selections[0].PCRs, []uint8{0, 1, 2, 3, 4, 5, 6, 7, 10}) {
				t.Errorf("selections %+v", req.Selections)
			}
			if !slices.Equal(req.Logs, []patnc.LogRequest{{Kind: patnc.LogBoot}, {Kind: patnc.LogIMA}}) {
				t.Errorf("log requests %+v", req.Logs)
			}
			out = exchange(t, s, append([]patnc.Value{l.tpm.quote(t, req)}, emptyLogs()...)...)
			if len(out) != 0 {
				t.Fatalf("session asks for more: %v", out)
			}
			r := s.Result()
			wantRec(t, r, imv.Allow, "")
			f, imaf := SplitFacts(r.Facts)
			if f["quote_verified"] != true || f["ak"] != l.ak.key.id || f["ak_alg"] != alg ||
				f["enrolled"] != true || f["enrollment"] != MethodEKCert {
				t.Errorf("facts %v", f)
			}
			if !strings.HasPrefix(f["ak"].(string), "sha256:") || len(f["ak"].(string)) != 7+64 {
				t.Errorf("ak fact %q", f["ak"])
			}
			if got := f["banks"].([]any); len(got) != 2 || got[0] != "sha1" || got[1] != "sha256" {
				t.Errorf("banks %v", got)
			}
			pcr7 := f["pcrs"].(map[string]any)["sha256"].(map[string]any)["7"]
			if pcr7 != hex.EncodeToString(l.tpm.pcrs[algSHA256][7]) {
				t.Errorf("pcrs sha256 7 = %v", pcr7)
			}
			if len(f["pcrs"].(map[string]any)["sha1"].(map[string]any)) != 9 {
				t.Errorf("sha1 pcrs %v", f["pcrs"])
			}
			if f["reset_count"] != int64(3) || f["restart_count"] != int64(1) || f["clock"] != int64(l.tpm.clock) {
				t.Errorf("counters %v %v %v", f["reset_count"], f["restart_count"], f["clock"])
			}
			if f["pcrs_match"] != false || f["reference"] != "" || imaf["replayed"] != false {
				t.Errorf("facts without references or logs: %v %v", f, imaf)
			}
			if _, ok := f[FactsIMA]; ok {
				t.Error("SplitFacts left the ima member in the tpm facts")
			}
			// The counters were recorded.
			rec, err := l.store.GetAK(l.ak.key.id)
			if err != nil || rec.Clock != l.tpm.clock || rec.ResetCount != 3 || rec.RestartCount != 1 || rec.LastSeen.IsZero() {
				t.Errorf("record %+v, %v", rec, err)
			}
		})
	}
}

// TestSessionRefusals covers every reason to refuse a quote. Each case
// tampers with an honest endpoint's answer to the first quote request.
func TestSessionRefusals(t *testing.T) {
	type answerFunc func(t *testing.T, l *lab, s *session, req *patnc.TPMQuoteRequest) []patnc.Value
	honest := func(t *testing.T, l *lab, s *session, req *patnc.TPMQuoteRequest) []patnc.Value {
		return append([]patnc.Value{l.tpm.quote(t, req)}, emptyLogs()...)
	}
	tests := []struct {
		name   string
		setup  func(t *testing.T, l *lab)
		answer answerFunc
		reason string
	}{
		{
			name: "replayed quote in one batch",
			answer: func(t *testing.T, l *lab, s *session, req *patnc.TPMQuoteRequest) []patnc.Value {
				q := l.tpm.quote(t, req)
				return []patnc.Value{q, q}
			},
			reason: "replay",
		},
		{
			name: "quote over another nonce",
			answer: func(t *testing.T, l *lab, s *session, req *patnc.TPMQuoteRequest) []patnc.Value {
				return []patnc.Value{l.tpm.quote(t, &patnc.TPMQuoteRequest{Nonce: bytes.Repeat([]byte{7}, 32), Selections: req.Selections})}
			},
			reason: "does not carry the PDP's nonce",
		},
		{
			name: "modified TPMS_ATTEST",
			answer: func(t *testing.T, l *lab, s *session, req *patnc.TPMQuoteRequest) []patnc.Value {
				q := l.tpm.quote(t, req)
				q.Attest[len(q.Attest)-1] ^= 1 // last octet of pcrDigest
				return []patnc.Value{q}
			},
			reason: "signature does not verify",
		},
		{
			name: "signed by another key",
			answer: func(t *testing.T, l *lab, s *session, req *patnc.TPMQuoteRequest) []patnc.Value {
				other := newTestTPM(t, newTestAK(t, l.ak.alg, 0))
				return []patnc.Value{other.quote(t, req)}
			},
			reason: "signature does not verify",
		},
		{
			name: "PCR value that does not match the digest",
			answer: func(t *testing.T, l *lab, s *session, req *patnc.TPMQuoteRequest) []patnc.Value {
				q := l.tpm.quote(t, req)
				q.PCRs[3].Digest[0] ^= 0xff
				return []patnc.Value{q}
			},
			reason: "do not match the quoted PCR digest",
		},
		{
			name: "PCR value missing",
			answer: func(t *testing.T, l *lab, s *session, req *patnc.TPMQuoteRequest) []patnc.Value {
				q := l.tpm.quote(t, req)
				q.PCRs = q.PCRs[1:]
				return []patnc.Value{q}
			},
			reason: "do not match the quoted PCR digest",
		},
		{
			name: "selection without PCR 7",
			answer: func(t *testing.T, l *lab, s *session, req *patnc.TPMQuoteRequest) []patnc.Value {
				return []patnc.Value{l.tpm.quoteSelection(t, req.Nonce, []pcrSelection{sel(algSHA256, 0, 1, 2, 3, 4, 5, 6, 10)})}
			},
			reason: "does not cover the PCRs",
		},
		{
			name: "selection of a bank not asked for",
			answer: func(t *testing.T, l *lab, s *session, req *patnc.TPMQuoteRequest) []patnc.Value {
				l.tpm.pcrs[algSHA384] = map[int][]byte{0: make([]byte, 48)}
				return []patnc.Value{l.tpm.quoteSelection(t, req.Nonce, []pcrSelection{sel(algSHA384, 0)})}
			},
			reason: "does not cover the PCRs",
		},
		{
			name:   "reset count went back",
			setup:  func(t *testing.T, l *lab) { l.setCounters(t, 1, 4, 0, 0) },
			answer: honest,
			reason: "reset counter went back",
		},
		{
			name:   "restart count went back",
			setup:  func(t *testing.T, l *lab) { l.setCounters(t, 1, 3, 2, 0) },
			answer: honest,
			reason: "restart counter went back",
		},
		{
			name:   "clock went back",
			setup:  func(t *testing.T, l *lab) { l.setCounters(t, 1<<40, 3, 1, 0) },
			answer: honest,
			reason: "clock went back",
		},
		{
			name: "measurement log larger than the cap",
			answer: func(t *testing.T, l *lab, s *session, req *patnc.TPMQuoteRequest) []patnc.Value {
				return []patnc.Value{l.tpm.quote(t, req), &patnc.MeasurementLog{Kind: patnc.LogIMA, Total: eventlog.MaxLogSize + 1, Data: []byte{1}}}
			},
			reason: "larger than the PDP accepts",
		},
		{
			name: "credential response without a challenge",
			answer: func(t *testing.T, l *lab, s *session, req *patnc.TPMQuoteRequest) []patnc.Value {
				return []patnc.Value{l.tpm.quote(t, req), &patnc.TPMCredentialResponse{Secret: []byte("guess")}}
			},
			reason: "did not ask for",
		},
		{
			name: "attestation key changed",
			answer: func(t *testing.T, l *lab, s *session, req *patnc.TPMQuoteRequest) []patnc.Value {
				return []patnc.Value{patnc.NewTPMAK(newTestAK(t, l.ak.alg, 0).public), l.tpm.quote(t, req)}
			},
			reason: "changed its attestation key",
		},
	}
	for _, alg := range []string{AKAlgECDSAP256, AKAlgSM2} {
		for _, tc := range tests {
			t.Run(alg+"/"+tc.name, func(t *testing.T) {
				l := newLab(t, alg, Config{})
				approve(t, l.store, l.ak, MethodEKCert)
				if tc.setup != nil {
					tc.setup(t, l)
				}
				s := l.session(t)
				req := find[*patnc.TPMQuoteRequest](l.begin(t, s))
				if req == nil {
					t.Fatal("no quote request")
				}
				if out := exchange(t, s, tc.answer(t, l, s, req)...); len(out) != 0 {
					t.Fatalf("a refused session asks for more: %v", out)
				}
				r := s.Result()
				wantRec(t, r, imv.NoAccess, tc.reason)
				if r.Facts["quote_verified"] != false {
					t.Error("quote_verified is true for a refused quote")
				}
			})
		}
	}
}

// setCounters puts TPM counters in the AK's record as if an earlier quote
// had shown them.
func (l *lab) setCounters(t testing.TB, clock uint64, reset, restart uint32, _ int) {
	t.Helper()
	rec, err := l.store.GetAK(l.ak.key.id)
	if err != nil {
		t.Fatal(err)
	}
	rec.Clock, rec.ResetCount, rec.RestartCount = clock, reset, restart
	if err := l.store.PutAK(rec); err != nil {
		t.Fatal(err)
	}
}

func TestSessionCountersAdvance(t *testing.T) {
	l := newLab(t, AKAlgECDSAP256, Config{})
	approve(t, l.store, l.ak, MethodEKCert)
	wantRec(t, l.run(t, l.session(t)), imv.Allow, "")
	// A reboot: reset count up, clock may be anywhere; restart back to 0.
	l.tpm.reset, l.tpm.restart, l.tpm.clock = 4, 0, 10
	wantRec(t, l.run(t, l.session(t)), imv.Allow, "")
	// The same boot again: the clock moved on.
	wantRec(t, l.run(t, l.session(t)), imv.Allow, "")
	// A quote from before the reboot, replayed by a cloned TPM state.
	l.tpm.reset = 3
	wantRec(t, l.run(t, l.session(t)), imv.NoAccess, "reset counter went back")
}

// TestSessionReplayAcrossSessions replays a quote of one session in the
// next.
func TestSessionReplayAcrossSessions(t *testing.T) {
	l := newLab(t, AKAlgSM2, Config{})
	approve(t, l.store, l.ak, MethodEKCert)
	s1 := l.session(t)
	req := find[*patnc.TPMQuoteRequest](l.begin(t, s1))
	q := l.tpm.quote(t, req)
	exchange(t, s1, append([]patnc.Value{q}, emptyLogs()...)...)
	wantRec(t, s1.Result(), imv.Allow, "")

	s2 := l.session(t)
	l.begin(t, s2)
	exchange(t, s2, append([]patnc.Value{q}, emptyLogs()...)...)
	wantRec(t, s2.Result(), imv.NoAccess, "does not carry the PDP's nonce")
}

// TestSessionEarlierNonce answers the second round's request with the
// first round's nonce.
func TestSessionEarlierNonce(t *testing.T) {
	l := newLab(t, AKAlgECDSAP256, Config{})
	approve(t, l.store, l.ak, MethodEKCert)
	s := l.session(t)
	req1 := find[*patnc.TPMQuoteRequest](l.begin(t, s))
	// A boot log bigger than one piece makes the verifier ask again.
	out := exchange(t, s, l.tpm.quote(t, req1), &patnc.MeasurementLog{Kind: patnc.LogBoot, Total: 10, Data: []byte("01234")},
		&patnc.MeasurementLog{Kind: patnc.LogIMA})
	req2 := find[*patnc.TPMQuoteRequest](out)
	if req2 == nil || bytes.Equal(req1.Nonce, req2.Nonce) {
		t.Fatalf("second request %+v", req2)
	}
	if req2.Logs[0] != (patnc.LogRequest{Kind: patnc.LogBoot, Offset: 5}) || req2.Logs[1].Offset != patnc.NoLog {
		t.Errorf("second request logs %+v", req2.Logs)
	}
	exchange(t, s, l.tpm.quote(t, req1))
	wantRec(t, s.Result(), imv.NoAccess, "earlier nonce")
}

func TestSessionUnenrolled(t *testing.T) {
	for _, alg := range []string{AKAlgECDSAP256, AKAlgSM2} {
		t.Run(alg, func(t *testing.T) {
			l := newLab(t, alg, Config{Enrollment: func(imv.Endpoint) string { return EnrollNone }})
			s := l.session(t)
			r := l.run(t, s)
			wantRec(t, r, imv.NoAccess, "not enrolled; an admin must approve it")
			if r.Facts["enrolled"] != false || r.Facts["quote_verified"] != true {
				t.Errorf("facts %v", r.Facts)
			}
			// The AK was recorded as pending, so an admin can approve it.
			rec, err := l.store.GetAK(l.ak.key.id)
			if err != nil || rec.Status != StatusPending || !bytes.Equal(rec.Public, l.ak.public) || rec.EndpointID != testEP.ID {
				t.Fatalf("record %+v, %v", rec, err)
			}
			rec.Status, rec.Method = StatusApproved, MethodManual
			l.store.PutAK(rec)
			r = l.run(t, l.session(t))
			wantRec(t, r, imv.Allow, "")
			if r.Facts["enrollment"] != MethodManual {
				t.Errorf("enrollment %v", r.Facts["enrollment"])
			}
		})
	}
}

func TestSessionRevoked(t *testing.T) {
	l := newLab(t, AKAlgECDSAP256, Config{})
	l.store.PutAK(&AKRecord{Name: l.ak.key.id, Public: l.ak.public, Status: StatusRevoked})
	s := l.session(t)
	if out := l.begin(t, s); len(out) != 0 {
		t.Fatalf("asks a revoked AK for %v", out)
	}
	wantRec(t, s.Result(), imv.NoAccess, "revoked")
}

func TestSessionUnusableAK(t *testing.T) {
	l := newLab(t, AKAlgECDSAP256, Config{})
	l.ak = l.ak.withAttributes(t, akAttrs&^attrRestricted)
	approve(t, l.store, l.ak, MethodManual)
	s := l.session(t)
	l.begin(t, s)
	wantRec(t, s.Result(), imv.NoAccess, "not a restricted signing key")

	s = l.session(t)
	exchange(t, s, patnc.NewTPMAK([]byte{0, 1, 0, 0xb, 0, 0, 0, 0}))
	wantRec(t, s.Result(), imv.NoAccess, "not one the PDP can verify")
}

func TestSessionMissingEvidence(t *testing.T) {
	l := newLab(t, AKAlgECDSAP256, Config{})
	approve(t, l.store, l.ak, MethodEKCert)

	// Nothing at all: no recommendation.
	s := l.session(t)
	exchange(t, s)
	if r := s.Result(); r.Recommendation != imv.NoRecommendation {
		t.Errorf("nothing received: %v", r.Recommendation)
	}

	// A message without the AK: the verifier asks for it once.
	s = l.session(t)
	out := exchange(t, s, &patnc.MeasurementLog{Kind: patnc.LogBoot})
	req := find[*patnc.AttributeRequest](out)
	if req == nil || len(*req) != 2 || (*req)[0] != (patnc.AttrID{Vendor: patnc.VendorTrustnac, Type: patnc.AttrTPMAK}) {
		t.Fatalf("asked %v", out)
	}
	if out := exchange(t, s); len(out) != 0 {
		t.Fatalf("asks again: %v", out)
	}
	wantRec(t, s.Result(), imv.Isolate, "did not report its TPM attestation key")

	// An unanswered quote request.
	s = l.session(t)
	l.begin(t, s)
	if out := exchange(t, s, emptyLogs()...); len(out) != 0 {
		t.Fatalf("asks again: %v", out)
	}
	wantRec(t, s.Result(), imv.Isolate, "did not send a TPM quote")
}

func TestSessionMalformedEvidence(t *testing.T) {
	l := newLab(t, AKAlgECDSAP256, Config{})
	approve(t, l.store, l.ak, MethodEKCert)
	s := l.session(t)
	l.begin(t, s)
	// A quote attribute whose attest exceeds the codec's cap.
	big := make([]byte, 4+patnc.MaxAttestLen+1)
	m := &patnc.Message{ID: 2, Attributes: []patnc.Attribute{{Vendor: patnc.VendorTrustnac, Type: patnc.AttrTPMQuote, Value: big}}}
	ans, err := s.Receive(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	if pe := find[*patnc.PAError](decodeAll(t, ans)); pe == nil {
		t.Errorf("answer %v, want a PA-TNC error", ans)
	}
	s.BatchEnding(context.Background())
	wantRec(t, s.Result(), imv.NoAccess, "malformed TPM evidence")
}

func TestSessionReferences(t *testing.T) {
	l := newLab(t, AKAlgECDSAP256, Config{})
	approve(t, l.store, l.ak, MethodEKCert)
	l.tpm.extend(0, []byte("firmware"))
	l.tpm.extend(7, []byte("secure boot"))
	golden := ReferenceSet{Name: "golden", PCRs: map[uint16]map[int][][]byte{
		algSHA256: {0: {slices.Clone(l.tpm.pcrs[algSHA256][0])}, 7: {make([]byte, 32), slices.Clone(l.tpm.pcrs[algSHA256][7])}},
		algSHA1:   {0: {slices.Clone(l.tpm.pcrs[algSHA1][0])}},
	}}
	other := ReferenceSet{Name: "other", PCRs: map[uint16]map[int][][]byte{algSHA256: {0: {make([]byte, 32)}}}}
	var sets []ReferenceSet
	l.v.cfg.References = func(ep imv.Endpoint) []ReferenceSet {
		if ep.ID != testEP.ID {
			t.Errorf("references for %q", ep.ID)
		}
		return sets
	}

	sets = []ReferenceSet{other, golden}
	r := l.run(t, l.session(t))
	wantRec(t, r, imv.Allow, "")
	if r.Facts["reference"] != "golden" || r.Facts["pcrs_match"] != true || len(r.Facts["pcr_mismatches"].([]any)) != 0 {
		t.Errorf("facts %v", r.Facts)
	}

	// Secure Boot turned off: PCR 7 differs.
	l.tpm.extend(7, []byte("secure boot off"))
	sets = []ReferenceSet{golden}
	r = l.run(t, l.session(t))
	wantRec(t, r, imv.Isolate, "PCR 7 (Secure Boot policy, sha256 bank) differs from the reference values")
	if r.Facts["reference"] != "" || r.Facts["pcrs_match"] != false || r.Facts["quote_verified"] != true {
		t.Errorf("facts %v", r.Facts)
	}
	if mm := r.Facts["pcr_mismatches"].([]any); len(mm) != 1 || mm[0] != "sha256:7" {
		t.Errorf("mismatches %v", mm)
	}

	// A reference bank the TPM does not have never matches.
	sets = []ReferenceSet{{Name: "sm3", PCRs: map[uint16]map[int][][]byte{algSM3256: {0: {make([]byte, 32)}}}}}
	r = l.run(t, l.session(t))
	wantRec(t, r, imv.Isolate, "PCR 0 (firmware code, sm3_256 bank)")
}

// TestSessionSM3Bank quotes an SM3 bank: the PCR digest is the scheme hash
// over SM3 PCR values, with SM2/SM3 and ECDSA/SHA-256 AKs.
func TestSessionSM3Bank(t *testing.T) {
	for _, alg := range []string{AKAlgSM2, AKAlgECDSAP256} {
		t.Run(alg, func(t *testing.T) {
			l := newLab(t, alg, Config{Banks: []uint16{algSM3256, algSHA256}})
			l.tpm = newTestTPM(t, l.ak, algSM3256)
			l.tpm.extend(7, []byte("sm3 measured"))
			approve(t, l.store, l.ak, MethodEKCert)
			l.v.cfg.References = func(imv.Endpoint) []ReferenceSet {
				return []ReferenceSet{{Name: "sm3-golden", PCRs: map[uint16]map[int][][]byte{algSM3256: {7: {l.tpm.pcrs[algSM3256][7]}}}}}
			}
			r := l.run(t, l.session(t))
			wantRec(t, r, imv.Allow, "")
			if b := r.Facts["banks"].([]any); len(b) != 1 || b[0] != "sm3_256" || r.Facts["reference"] != "sm3-golden" {
				t.Errorf("facts %v", r.Facts)
			}
		})
	}
	// The digest really is over the SM3 values: a changed value fails.
	l := newLab(t, AKAlgSM2, Config{Banks: []uint16{algSM3256}})
	l.tpm = newTestTPM(t, l.ak, algSM3256)
	approve(t, l.store, l.ak, MethodEKCert)
	s := l.session(t)
	req := find[*patnc.TPMQuoteRequest](l.begin(t, s))
	q := l.tpm.quote(t, req)
	q.PCRs[len(q.PCRs)-1].Digest[31] ^= 1
	exchange(t, s, q)
	wantRec(t, s.Result(), imv.NoAccess, "do not match the quoted PCR digest")
}

func TestSessionSM2WithSHA256(t *testing.T) {
	// swtpm has no SM3: its SM2 keys sign SHA-256 digests.
	l := newLab(t, AKAlgSM2, Config{})
	l.ak = newTestAK(t, AKAlgSM2, algSHA256)
	l.tpm = newTestTPM(t, l.ak)
	approve(t, l.store, l.ak, MethodEKCert)
	wantRec(t, l.run(t, l.session(t)), imv.Allow, "")
}

func TestEnrollment(t *testing.T) {
	tests := []struct {
		name       string
		mode       string
		noCert     bool
		otherRoots bool
		want       imv.Recommendation
		status     string
		method     string
		reason     string
	}{
		{name: "EK certificate", mode: EnrollCredential, want: imv.Allow, status: StatusApproved, method: MethodEKCert},
		{name: "EK certificate under tofu", mode: EnrollTOFU, want: imv.Allow, status: StatusApproved, method: MethodEKCert},
		{name: "no EK certificate", mode: EnrollCredential, noCert: true, want: imv.NoAccess, status: StatusPending, method: MethodCredential, reason: "awaits approval by an admin: the TPM has no endorsement key certificate"},
		{name: "untrusted EK CA", mode: EnrollCredential, otherRoots: true, want: imv.NoAccess, status: StatusPending, method: MethodCredential, reason: "not issued by a trusted TPM manufacturer"},
		{name: "tofu without certificate", mode: EnrollTOFU, noCert: true, want: imv.Allow, status: StatusApproved, method: MethodTOFU},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := newLab(t, AKAlgSM2, Config{Enrollment: func(imv.Endpoint) string { return tc.mode }})
			l.ek = newTestEK(t)
			l.v.cfg.EKRoots = l.ek.roots
			if tc.otherRoots {
				l.v.cfg.EKRoots = newTestEK(t).roots
			}
			if tc.noCert {
				l.ek.cert = nil
			}
			s := l.session(t)
			out := l.begin(t, s)
			ch := find[*patnc.TPMCredentialChallenge](out)
			if ch == nil || find[*patnc.TPMQuoteRequest](out) == nil {
				t.Fatalf("begin answered %v, want a challenge and a quote request", out)
			}
			if len(ch.IDObject) == 0 || len(ch.EncSecret) == 0 {
				t.Fatalf("challenge %+v", ch)
			}
			r := l.runFrom(t, s, out)
			wantRec(t, r, tc.want, tc.reason)
			rec, err := l.store.GetAK(l.ak.key.id)
			if err != nil || rec.Status != tc.status || rec.Method != tc.method || !bytes.Equal(rec.EKPublic, l.ek.public) {
				t.Fatalf("record %+v, %v", rec, err)
			}
			if tc.want == imv.Allow && (r.Facts["enrolled"] != true || r.Facts["enrollment"] != tc.method) {
				t.Errorf("facts %v", r.Facts)
			}
			// Enrolled once, the next assessment needs no challenge.
			if tc.status == StatusApproved {
				s := l.session(t)
				if out := l.begin(t, s); find[*patnc.TPMCredentialChallenge](out) != nil {
					t.Error("challenged an enrolled AK again")
				}
			}
		})
	}
}

func TestEnrollmentRefused(t *testing.T) {
	newEnrollLab := func(t *testing.T) *lab {
		l := newLab(t, AKAlgECDSAP256, Config{})
		l.ek = newTestEK(t)
		l.v.cfg.EKRoots = l.ek.roots
		return l
	}
	t.Run("wrong secret", func(t *testing.T) {
		l := newEnrollLab(t)
		s := l.session(t)
		req := find[*patnc.TPMQuoteRequest](l.begin(t, s))
		wrong := slices.Clone(s.secret)
		wrong[0] ^= 1
		exchange(t, s, &patnc.TPMCredentialResponse{Secret: wrong}, l.tpm.quote(t, req))
		wantRec(t, s.Result(), imv.NoAccess, "failed TPM credential activation")
		if _, err := l.store.GetAK(l.ak.key.id); err != ErrUnknownAK {
			t.Errorf("a failed activation left a record: %v", err)
		}
	})
	t.Run("activation replayed from another session", func(t *testing.T) {
		l := newEnrollLab(t)
		s1 := l.session(t)
		l.begin(t, s1)
		s2 := l.session(t)
		req := find[*patnc.TPMQuoteRequest](l.begin(t, s2))
		if bytes.Equal(s1.secret, s2.secret) {
			t.Fatal("two sessions share a credential secret")
		}
		exchange(t, s2, &patnc.TPMCredentialResponse{Secret: slices.Clone(s1.secret)}, l.tpm.quote(t, req))
		wantRec(t, s2.Result(), imv.NoAccess, "failed TPM credential activation")
	})
	t.Run("response answered twice", func(t *testing.T) {
		l := newEnrollLab(t)
		s := l.session(t)
		req := find[*patnc.TPMQuoteRequest](l.begin(t, s))
		resp := &patnc.TPMCredentialResponse{Secret: slices.Clone(s.secret)}
		exchange(t, s, resp, resp, l.tpm.quote(t, req))
		wantRec(t, s.Result(), imv.NoAccess, "did not ask for")
	})
	t.Run("no response", func(t *testing.T) {
		l := newEnrollLab(t)
		s := l.session(t)
		req := find[*patnc.TPMQuoteRequest](l.begin(t, s))
		exchange(t, s, append([]patnc.Value{l.tpm.quote(t, req)}, emptyLogs()...)...)
		wantRec(t, s.Result(), imv.NoAccess, "did not answer the credential challenge")
	})
	t.Run("no EK", func(t *testing.T) {
		l := newEnrollLab(t)
		l.ek = nil
		r := l.run(t, l.session(t))
		wantRec(t, r, imv.NoAccess, "did not report its endorsement key")
	})
	t.Run("EK certificate for another key", func(t *testing.T) {
		l := newEnrollLab(t)
		l.ek.cert = newTestEKWithRoots(t, l).cert
		wantRec(t, l.run(t, l.session(t)), imv.NoAccess, "for another key")
	})
	t.Run("EK certificate for another purpose", func(t *testing.T) {
		l := newEnrollLab(t)
		caKey, ca := newTestCA(t, "ca")
		l.v.cfg.EKRoots.AddCert(ca)
		l.ek.cert = issueEKCert(t, caKey, ca, &l.ek.priv.PublicKey, []asn1OID{{1, 3, 6, 1, 5, 5, 7, 3, 1}})
		wantRec(t, l.run(t, l.session(t)), imv.NoAccess, "not marked for endorsement keys")
	})
}

// newTestEKWithRoots makes another EK whose certificate chains to the
// lab's roots.
func newTestEKWithRoots(t *testing.T, l *lab) *testEK {
	other := newTestEK(t)
	caKey, ca := newTestCA(t, "shared")
	l.v.cfg.EKRoots.AddCert(ca)
	other.cert = issueEKCert(t, caKey, ca, &other.priv.PublicKey, nil)
	return other
}

func TestEnrollmentTimeOfCertificate(t *testing.T) {
	l := newLab(t, AKAlgECDSAP256, Config{})
	l.ek = newTestEK(t)
	l.v.cfg.EKRoots = l.ek.roots
	l.v.cfg.Now = func() time.Time { return time.Now().Add(48 * time.Hour) } // certificate expired
	wantRec(t, l.run(t, l.session(t)), imv.NoAccess, "awaits approval")
}

// TestSessionNoTPMCollector: an endpoint whose first batch carries nothing of
// the TPM subtype has no TPM collector, so the verifier asks for nothing (a
// round trip saved) and reports no evidence; one that speaks the subtype but
// leaves out its keys is asked for them once.
func TestSessionNoTPMCollector(t *testing.T) {
	l := newLab(t, AKAlgECDSAP256, Config{})
	s := l.session(t)
	if ans := exchange(t, s); len(ans) != 0 {
		t.Fatalf("asked an endpoint without a TPM collector: %v", ans)
	}
	if got := s.Result().Recommendation; got == imv.Allow {
		t.Fatalf("no evidence recommended %v", got)
	}
	if ans := exchange(t, s); len(ans) != 0 {
		t.Fatalf("asked later: %v", ans)
	}

	s = l.session(t)
	ans := exchange(t, s, &patnc.PSKRequest{Kind: patnc.PSKKindTPM})
	if req := find[*patnc.AttributeRequest](ans); req == nil {
		t.Fatalf("a TPM collector without its keys was not asked for them: %v", ans)
	}
	if ans := exchange(t, s); len(ans) != 0 {
		t.Fatalf("asked twice: %v", ans)
	}
}
