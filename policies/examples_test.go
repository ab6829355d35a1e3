package policies

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestExamples loads every policy under examples/, requires it to lint clean, and checks the
// decisions each gives for every facts file under examples/facts/ (a new facts file or example
// needs an expectation here).
func TestExamples(t *testing.T) {
	type want struct{ role, rule string }
	expect := map[string]map[string]want{
		"lab.yaml": {
			"healthy":                   {RoleAdmit, "debian-12-hardened"},
			"telnet":                    {RoleRemediate, "telnet-listening"},
			"debian11":                  {RoleIsolate, ""},
			"debian12-forwarding":       {RoleIsolate, ""},
			"debian12-old-openssh":      {RoleAdmit, "debian-12-hardened"},
			"debian12-default-password": {RoleAdmit, "debian-12-hardened"},
			"ubuntu2204-kiosk":          {RoleIsolate, ""},
			"no-os-facts":               {RoleIsolate, ""},
			"blocked-device":            {RoleAdmit, "debian-12-hardened"},
		},
		"campus.yaml": {
			"healthy":                   {RoleAdmit, "debian-staff"},
			"telnet":                    {RoleRemediate, "telnet-listening"},
			"debian11":                  {RoleRemediate, "unsupported-release"},
			"debian12-forwarding":       {RoleRemediate, "ip-forwarding"},
			"debian12-old-openssh":      {RoleRemediate, "openssh-outdated"},
			"debian12-default-password": {RoleIsolate, "factory-password"},
			"ubuntu2204-kiosk":          {RoleAdmit, "ubuntu-staff"},
			"no-os-facts":               {RoleIsolate, ""},
			"blocked-device":            {RoleDeny, "blocked-devices"},
		},
	}
	files, _ := filepath.Glob("examples/*.yaml")
	factFiles, _ := filepath.Glob("examples/facts/*.json")
	var policies []string
	for _, f := range files {
		if isPolicyFile(t, f) {
			policies = append(policies, f)
		} else {
			t.Logf("%s is not a policy file (no roles, rules or default): skipped", f)
		}
	}
	if len(policies) < 2 || len(factFiles) == 0 {
		t.Fatalf("examples missing: %v %v", policies, factFiles)
	}
	for _, pf := range policies {
		base := filepath.Base(pf)
		t.Run(base, func(t *testing.T) {
			p, err := LoadFile(pf)
			if err != nil {
				t.Fatal(err)
			}
			if w := Lint(p); len(w) > 0 {
				t.Errorf("lint warnings:\n%s", strings.Join(w, "\n"))
			}
			exp, ok := expect[base]
			if !ok {
				t.Fatalf("no expectations for %s", base)
			}
			for _, ff := range factFiles {
				name := strings.TrimSuffix(filepath.Base(ff), ".json")
				w, ok := exp[name]
				if !ok {
					t.Errorf("no expectation for %s with %s", base, name)
					continue
				}
				ep, facts, err := LoadFacts(ff)
				if err != nil {
					t.Fatal(err)
				}
				d := p.Decide(ep, facts)
				if d.Role != w.role || d.Rule != w.rule {
					var b strings.Builder
					d.Explain(&b)
					t.Errorf("%s: %s/%q, want %s/%q\n%s", name, d.Role, d.Rule, w.role, w.rule, b.String())
				}
				if (d.Role == RoleRemediate || d.Role == RoleIsolate) && (d.Remediation == nil || d.Remediation.Text == "" || d.Remediation.URI == "") {
					t.Errorf("%s: %s without remediation text and URI: %+v", name, d.Role, d.Remediation)
				}
			}
		})
	}
}

// isPolicyFile tells policy files from the component configuration files that share examples/
// (pdp.yaml, agent.yaml): a policy file has roles, rules or default at the top level.
func isPolicyFile(t *testing.T, path string) bool {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]any
	if err := yaml.Unmarshal(data, &top); err != nil {
		return true // let LoadFile report it
	}
	for _, k := range []string{"roles", "rules", "default"} {
		if _, ok := top[k]; ok {
			return true
		}
	}
	return false
}

// TestLabPolicyContract pins what the loopback demo relies on.
func TestLabPolicyContract(t *testing.T) {
	p, err := LoadFile("examples/lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	os := func(name, version, fwd string, ports ...int64) Facts {
		var l []any
		for _, port := range ports {
			l = append(l, map[string]any{"protocol": "tcp", "port": port})
		}
		return Facts{"os": {"name": name, "version": version, "forwarding": fwd, "listening": l}}
	}
	tests := []struct {
		name  string
		facts Facts
		role  string
	}{
		{"debian 12", os("debian", "12", "disabled", 22), RoleAdmit},
		{"debian 13", os("debian", "13", "disabled"), RoleAdmit},
		{"debian 12.4", os("debian", "12.4", "disabled", 22, 80), RoleAdmit},
		{"telnet", os("debian", "12", "disabled", 22, 23), RoleRemediate},
		{"telnet on old debian", os("debian", "10", "enabled", 23), RoleRemediate},
		{"debian 9", os("debian", "9", "disabled"), RoleIsolate},
		{"forwarding on", os("debian", "12", "enabled"), RoleIsolate},
		{"forwarding unknown", os("debian", "12", "unknown"), RoleIsolate},
		{"ubuntu", os("ubuntu", "24.04", "disabled"), RoleIsolate},
		{"nothing", Facts{}, RoleIsolate},
		{"no port list", Facts{"os": {"name": "debian", "version": "12", "forwarding": "disabled"}}, RoleIsolate},
	}
	for _, tt := range tests {
		d := p.Decide(Endpoint{ID: "x", Channel: "pt-tls"}, tt.facts)
		if d.Role != tt.role {
			t.Errorf("%s: %s, want %s", tt.name, d.Role, tt.role)
		}
		if d.Role == RoleRemediate && (d.Remediation == nil || d.Remediation.Text == "" || !strings.HasPrefix(d.Remediation.URI, "https://")) {
			t.Errorf("%s: remediation %+v", tt.name, d.Remediation)
		}
	}
	for mac, role := range map[string]string{
		"02:00:00:00:00:01": RoleAdmit,
		"02-00-00-00-00-01": RoleAdmit,
		"02:00:00:00:00:02": RoleAssess,
		"aa:bb:cc:dd:ee:ff": RoleAssess,
	} {
		if d := p.DecideMAB(Endpoint{MAC: mac}); d.Role != role {
			t.Errorf("MAB %s: %s, want %s", mac, d.Role, role)
		}
	}
}

// TestExampleFactsShape checks the sample facts follow the facts contract of the os namespace.
func TestExampleFactsShape(t *testing.T) {
	files, _ := filepath.Glob("examples/facts/*.json")
	for _, f := range files {
		ep, facts, err := LoadFacts(f)
		if err != nil {
			t.Fatal(err)
		}
		if ep.ID == "" || ep.Channel == "" {
			t.Errorf("%s: endpoint %+v", f, ep)
		}
		os := facts[NamespaceOS]
		if os == nil {
			continue
		}
		types := map[string]string{
			"name": "string", "product": "string", "version": "string", "build": "string", "config": "string",
			"version_major": "int64", "version_minor": "int64", "status": "string", "last_use": "string",
			"packages": "map", "package_count": "int64", "forwarding": "string", "default_password": "bool",
			"ports": "list", "listening": "list",
		}
		var keys []string
		for k := range os {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			want, ok := types[k]
			if !ok {
				t.Errorf("%s: os.%s is not in the facts contract", f, k)
				continue
			}
			got := ""
			switch os[k].(type) {
			case string:
				got = "string"
			case int64:
				got = "int64"
			case bool:
				got = "bool"
			case map[string]any:
				got = "map"
			case []any:
				got = "list"
			}
			if got != want {
				t.Errorf("%s: os.%s is %T, want %s", f, k, os[k], want)
			}
		}
		if pc, ok := os["package_count"].(int64); ok && int(pc) != len(os["packages"].(map[string]any)) {
			t.Errorf("%s: package_count %d != %d packages", f, pc, len(os["packages"].(map[string]any)))
		}
	}
}
