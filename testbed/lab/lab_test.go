package lab

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"trustnac/policies"
)

func refs(fill string) map[int]string {
	m := map[int]string{}
	for _, p := range PCRs {
		m[p] = strings.Repeat(fill, 32)
	}
	return m
}

func labPolicy(t *testing.T) []byte {
	t.Helper()
	base, err := os.ReadFile(filepath.Join("..", "..", "policies", "examples", "lab.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := PolicyFile(base, Endpoints(), refs("11"), refs("22"))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func loadPolicy(t *testing.T, b []byte) *policies.Policy {
	t.Helper()
	path := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := policies.LoadFile(path)
	if err != nil {
		t.Fatalf("generated policy refused: %v\n%s", err, b)
	}
	return p
}

// The generated policy loads, keeps the example's rules and decides the
// endpoints' MAB and reference sets as the scenario expects.
func TestPolicyFile(t *testing.T) {
	p := loadPolicy(t, labPolicy(t))
	if len(p.Rules) == 0 {
		t.Fatal("the example's rules were lost")
	}
	tests := []struct {
		name, mac, role string
	}{
		{"denied", "02:77:00:00:00:15", "deny"},
		{"mab", "02:77:00:00:00:14", "assess"},
		{"example demo terminal", "02:00:00:00:00:01", "admit"},
	}
	for _, tt := range tests {
		d := p.DecideMAB(policies.Endpoint{ID: "mac:" + tt.mac, MAC: tt.mac})
		if d.Role != tt.role {
			t.Errorf("%s: MAB role %q, want %q", tt.name, d.Role, tt.role)
		}
	}
	for _, tt := range []struct {
		groups []string
		want   string
	}{
		{[]string{"attested", groupHealthy}, RefHealthy},
		{[]string{"attested", groupFleet}, RefFleet},
	} {
		sets := p.ReferenceSets(tt.groups)
		if len(sets) != 1 || sets[0].Name != tt.want {
			t.Errorf("reference sets of %v: %+v, want only %s", tt.groups, sets, tt.want)
			continue
		}
		if got := len(sets[0].PCRs["sha256"]); got != len(PCRs) {
			t.Errorf("%s: %d PCRs, want %d", tt.want, got, len(PCRs))
		}
	}
	if !bytes.Contains(labPolicy(t), []byte("http://"+AddrRemedy+"/")) {
		t.Error("remediation URIs not pointed at the lab's server")
	}
}

// Changing the healthy image's reference value changes that set only and
// keeps the policy loadable.
func TestReplaceReference(t *testing.T) {
	orig := labPolicy(t)
	want := strings.Repeat("ab", 32)
	out, err := replaceReference(orig, RefHealthy, 7, want)
	if err != nil {
		t.Fatal(err)
	}
	p := loadPolicy(t, out)
	for _, rs := range p.References {
		got := rs.PCRs["sha256"][7]
		switch rs.Name {
		case RefHealthy:
			if len(got) != 1 || got[0] != want {
				t.Errorf("%s PCR 7 = %v, want %s", rs.Name, got, want)
			}
		case RefFleet:
			if len(got) != 1 || got[0] != strings.Repeat("22", 32) {
				t.Errorf("%s PCR 7 changed: %v", rs.Name, got)
			}
		}
	}
	for _, bad := range []struct {
		name string
		pcr  int
	}{{"no-such-set", 7}, {RefHealthy, 23}} {
		if _, err := replaceReference(orig, bad.name, bad.pcr, want); err == nil {
			t.Errorf("replaceReference(%s, %d): no error", bad.name, bad.pcr)
		}
	}
	if _, err := replaceReference([]byte("version: 1\n"), RefHealthy, 7, want); err == nil {
		t.Error("a policy without reference_values: no error")
	}
}

func TestParsePCRRead(t *testing.T) {
	good := "  sha256:\n    0 : 0x" + strings.Repeat("AB", 32) + "\n    7 : 0x" + strings.Repeat("0", 64) + "\n"
	tests := []struct {
		name string
		in   string
		want map[int]string
		err  bool
	}{
		{"two PCRs", good, map[int]string{0: strings.Repeat("ab", 32), 7: strings.Repeat("0", 64)}, false},
		{"other bank only", "  sha1:\n    0 : 0x" + strings.Repeat("00", 20) + "\n", nil, true},
		{"short digest", "  sha256:\n    0 : 0xabcd\n", nil, true},
		{"empty", "", nil, true},
	}
	for _, tt := range tests {
		got, err := parsePCRRead(tt.in)
		if (err != nil) != tt.err {
			t.Errorf("%s: err %v", tt.name, err)
			continue
		}
		if len(got) != len(tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
		for k, v := range tt.want {
			if got[k] != v {
				t.Errorf("%s: PCR %d = %q, want %q", tt.name, k, got[k], v)
			}
		}
	}
}

// The generated configurations carry what the daemons need and nothing
// the other endpoints' need.
func TestConfigs(t *testing.T) {
	eps := Endpoints()
	users := string(UsersFile(eps))
	for _, e := range eps {
		if e.Identity != "" && !strings.Contains(users, e.Identity+": \"nthash$") {
			t.Errorf("users file lacks %s:\n%s", e.Identity, users)
		}
		if strings.Contains(users, Password(e.Identity)) && e.Identity != "" {
			t.Errorf("users file holds %s's password in clear", e.Identity)
		}
	}
	pdp := string(PDPConfig("/x", []string{"/x/ca1.pem", "/x/ca2.pem"}))
	for _, want := range []string{"network: " + AddrBridge + "/32", "listen: " + AddrPDP + ":271", "- /x/ca2.pem", "unix:/x/pdp/api.sock"} {
		if !strings.Contains(pdp, want) {
			t.Errorf("PDP config lacks %q:\n%s", want, pdp)
		}
	}
	pep := string(PEPConfig("/x"))
	for _, want := range []string{"exclude: [up-pdp, up-rem, up-srv]", "auth: " + AddrPDP + ":1812", "restricted: [" + AddrPDP + "/32, " + AddrRemedy + "/32]"} {
		if !strings.Contains(pep, want) {
			t.Errorf("PEP config lacks %q:\n%s", want, pep)
		}
	}
	for _, e := range eps {
		if !e.Agent {
			continue
		}
		a := string(AgentConfig("/x", e, "sha256:"+strings.Repeat("0", 64), "/root", "/x/tpm.sock"))
		if got := strings.Contains(a, "dot1x:"); got != (e.Method == Dot1X) {
			t.Errorf("%s: dot1x section %v, method %s", e.Name, got, e.Method)
		}
		if !strings.Contains(a, "identity: "+e.Identity) || !strings.Contains(a, "unix:/x/tpm.sock") {
			t.Errorf("%s: agent config:\n%s", e.Name, a)
		}
	}
}

// Names are unique and carry the lab's prefix, so Down finds them.
func TestEndpointNames(t *testing.T) {
	seen := map[string]bool{}
	for _, e := range Endpoints() {
		for _, n := range []string{e.NS(), e.Port(), e.MAC, e.Addr} {
			if seen[n] {
				t.Errorf("duplicate %s", n)
			}
			seen[n] = true
		}
		if !strings.HasPrefix(e.NS(), Prefix) || len(e.Port()) > 15 {
			t.Errorf("%s: namespace %s, port %s", e.Name, e.NS(), e.Port())
		}
		if ReachOf(e.Expect) == (Reach{}) && e.Expect != "deny" {
			t.Errorf("%s: expected role %s reaches nothing", e.Name, e.Expect)
		}
	}
}

func TestReportTable(t *testing.T) {
	r := &Report{Checks: []*Check{
		{Endpoint: "vm", Phase: "hot-plugged", Expect: "admit", Role: "admit", Reach: ReachOf("admit"), Want: ReachOf("admit"), Took: 1234 * time.Millisecond, Pass: true},
		{Endpoint: "healthy", Phase: "join", Expect: "admit", Role: "isolate", Reach: ReachOf("isolate"), Want: ReachOf("admit"), Note: "see pep.log"},
	}}
	if r.Passed() {
		t.Fatal("Passed with a failing check")
	}
	var b bytes.Buffer
	r.Table(&b)
	out := b.String()
	if strings.Index(out, "healthy") > strings.Index(out, "vm ") {
		t.Errorf("join rows not first:\n%s", out)
	}
	for _, want := range []string{"PRS/PRS", "1.23s", "FAIL healthy (join): see pep.log", "PR-/PRS"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if (&Report{}).Passed() {
		t.Error("an empty report passed")
	}
}

func TestParseRoleSets(t *testing.T) {
	in := "table bridge trustnac {\n\tset ports {\n\t\ttype ifname\n\t\telements = { \"p-x\" }\n\t}\n" +
		"\tset admit {\n\t\ttype ether_addr\n\t\telements = { 02:77:00:00:00:11,\n\t\t\t     02:77:00:00:00:16 }\n\t}\n" +
		"\tset assess {\n\t\ttype ether_addr\n\t}\n" +
		"\tset isolate {\n\t\ttype ether_addr\n\t\telements = { 02:77:00:00:00:1A }\n\t}\n" +
		"\tchain forward {\n\t\tether saddr @admit accept\n\t}\n}\n"
	got := parseRoleSets(in)
	want := map[string]string{"02:77:00:00:00:11": "admit", "02:77:00:00:00:16": "admit", "02:77:00:00:00:1a": "isolate"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}
}
