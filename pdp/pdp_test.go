package pdp

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"trustnac/imc"
	"trustnac/imv"
	"trustnac/policies"
	"trustnac/transport/patnc"
	"trustnac/transport/pbtnc"
)

// The PDP encodes its role in PB-TNC's recommendation and assessment; the
// agent must read back the same role for every one of them.
func TestRoleResultRoundTrip(t *testing.T) {
	for _, role := range []string{"admit", "remediate", "assess", "isolate", "deny"} {
		for _, assessment := range []uint32{patnc.AssessmentCompliant, patnc.AssessmentError} {
			rec, as := roleResult(role, imv.Combined{Assessment: assessment})
			ar := pbtnc.AssessmentResult(as)
			got := imc.OutcomeOf(pbtnc.Result{Recommendation: rec, Assessment: &ar}).Role
			if got != role {
				t.Errorf("role %s (verifiers %d) came back as %s", role, assessment, got)
			}
		}
	}
	if got := imc.OutcomeOf(pbtnc.Result{}).Role; got != "deny" {
		t.Errorf("a RESULT without a recommendation reads as %s, want deny", got)
	}
}

func TestBoltStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pdp.db")
	s, err := OpenBoltStore(path, false, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := s.Put(&Record{ID: "b", Role: "admit", DecidedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(&Record{ID: "a", Role: "isolate", DecidedAt: t0, Facts: map[string]map[string]any{"os": {"name": "debian"}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(&Record{ID: "b", Role: "deny", DecidedAt: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(unknown) = %v, want ErrNotFound", err)
	}
	// A second opener waits for the lock and gives up.
	if _, err := OpenBoltStore(path, true, 50*time.Millisecond); err == nil {
		t.Error("a second process could open the store while it is held")
	}
	s.Close()

	s, err = OpenBoltStore(path, true, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	recs, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].ID != "a" || recs[1].ID != "b" {
		t.Fatalf("List = %+v", recs)
	}
	b := recs[1]
	if b.Role != "deny" || b.Assessments != 2 || !b.FirstSeen.Equal(t0) || !b.DecidedAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("record b after two decisions = %+v", b)
	}
	if recs[0].Facts["os"]["name"] != "debian" {
		t.Errorf("facts did not survive: %+v", recs[0].Facts)
	}
}

func TestUsers(t *testing.T) {
	dir := t.TempDir()
	h, err := HashPassword("s3cret", 1000)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "users.yaml")
	os.WriteFile(path, []byte("users:\n  alice: \""+h+"\"\n"), 0o600)
	u, err := LoadUsers(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		user, pw string
		ok       bool
	}{{"alice", "s3cret", true}, {"alice", "s3cret ", false}, {"alice", "", false}, {"bob", "s3cret", false}} {
		if got := u.Verify(c.user, c.pw); got != c.ok {
			t.Errorf("Verify(%q, %q) = %v", c.user, c.pw, got)
		}
	}
	bad := map[string]string{
		"unknown field": "users: {}\nadmins: {}\n",
		"plain text":    "users:\n  alice: s3cret\n",
		"few rounds":    "users:\n  alice: \"pbkdf2-sha256$10$c2FsdHNhbHQ$" + strings.Repeat("A", 43) + "\"\n",
		"bad base64":    "users:\n  alice: \"pbkdf2-sha256$1000$!!$!!\"\n",
	}
	for name, data := range bad {
		os.WriteFile(path, []byte(data), 0o600)
		if _, err := LoadUsers(path); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
}

func TestLoadOrCreateCert(t *testing.T) {
	dir := t.TempDir()
	cf, kf := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	c1, created, err := LoadOrCreateCert(cf, kf, []string{"localhost", "127.0.0.1"})
	if err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	if st, _ := os.Stat(kf); st.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v", st.Mode().Perm())
	}
	c2, created, err := LoadOrCreateCert(cf, kf, nil)
	if err != nil || created {
		t.Fatalf("load: %v %v", created, err)
	}
	if Fingerprint(c1.Certificate[0]) != Fingerprint(c2.Certificate[0]) {
		t.Error("the certificate changed on reload")
	}
	os.Remove(kf)
	if _, _, err := LoadOrCreateCert(cf, kf, nil); err == nil {
		t.Error("a certificate without its key was replaced silently")
	}
}

// fakeVerifier is a verifier that concludes res without any evidence.
type fakeVerifier struct {
	name string
	res  imv.Result
}

func (f *fakeVerifier) Name() string             { return f.name }
func (f *fakeVerifier) Subtype() pbtnc.PASubtype { return pbtnc.SubtypeTesting }
func (f *fakeVerifier) NewSession(context.Context, imv.Endpoint) (imv.Session, error) {
	return f, nil
}
func (f *fakeVerifier) Receive(context.Context, *patnc.Message) ([]patnc.Attribute, error) {
	return nil, nil
}
func (f *fakeVerifier) BatchEnding(context.Context) ([]patnc.Attribute, error) { return nil, nil }
func (f *fakeVerifier) Result() imv.Result                                     { return f.res }

const testPolicy = `version: 1
roles:
  admit: {vlan: 10}
  isolate: {vlan: 99, remediation: {text: "call the helpdesk"}}
rules:
  - name: ok
    when: 'has(os.ok) && os.ok'
    role: admit
    reason: fine
default: {role: isolate, reason: nothing matched}
`

func TestTNCSDecide(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.yaml")
	os.WriteFile(path, []byte(testPolicy), 0o600)
	ps, err := LoadPolicySource(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	okFacts := map[string]any{"ok": true}
	tests := []struct {
		name    string
		results []imv.Result
		role    string
		reason  string
	}{
		{"policy admits", []imv.Result{{Facts: okFacts, Recommendation: imv.Allow}}, "admit", "fine"},
		{"verifier says no access", []imv.Result{{Facts: okFacts, Recommendation: imv.Allow}, {Recommendation: imv.NoAccess, Reasons: []string{"bad quote"}}}, "deny", "bad quote"},
		{"verifier isolates", []imv.Result{{Facts: okFacts, Recommendation: imv.Isolate, Reasons: []string{"missing attributes"}}}, "isolate", "missing attributes"},
		{"nobody judged", []imv.Result{{Facts: okFacts}}, "isolate", "no posture evidence was received"},
		{"policy isolates", []imv.Result{{Facts: map[string]any{"ok": false}, Recommendation: imv.Allow}}, "isolate", "nothing matched"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var vs []imv.Verifier
			var sessions []imv.Session
			for i, r := range tt.results {
				name := "os"
				if i > 0 {
					name = "tpm"
				}
				f := &fakeVerifier{name: name, res: r}
				vs = append(vs, f)
				sessions = append(sessions, f)
			}
			tn := NewTNCS(TNCSConfig{Verifiers: vs, Policy: ps})
			d, err := tn.decide(imv.Endpoint{ID: "x"}, sessions)
			if err != nil {
				t.Fatal(err)
			}
			if d.Role != tt.role {
				t.Errorf("role = %s, want %s", d.Role, tt.role)
			}
			found := false
			for _, r := range d.Reasons {
				found = found || r == tt.reason
			}
			if !found {
				t.Errorf("reasons = %q, want %q among them", d.Reasons, tt.reason)
			}
			if d.Role == "isolate" && (d.Remediation == nil || d.Remediation.Text != "call the helpdesk") {
				t.Errorf("isolate without the role's remediation: %+v", d.Remediation)
			}
		})
	}
}

func TestPolicySourceKeepsLastGood(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.yaml")
	os.WriteFile(path, []byte(testPolicy), 0o600)
	ps, err := LoadPolicySource(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	var changes int
	ps.OnChange(func(*policies.Policy) { changes++ })
	good := ps.Policy()
	os.WriteFile(path, []byte(strings.Replace(testPolicy, "role: admit", "role: admitt", 1)), 0o600)
	err = ps.Reload()
	var le policies.LoadErrors
	if err == nil || !errors.As(err, &le) {
		t.Fatalf("reload of an invalid file: %v", err)
	}
	if ps.Policy() != good || changes != 0 {
		t.Error("an invalid file replaced the policy in force")
	}
	if _, err := LoadPolicySource(path, nil); err == nil {
		t.Error("the PDP would start on an invalid policy")
	}
	os.WriteFile(path, []byte(testPolicy), 0o600)
	if err := ps.Reload(); err != nil || ps.Policy() == good || changes != 1 {
		t.Errorf("reload of a good file: %v, changes %d", err, changes)
	}
}
