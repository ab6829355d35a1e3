package policies

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseFacts(t *testing.T) {
	src := `{
  "endpoint": {"id": "ep1", "mac": "02-00-00-00-00-0A", "identity": "alice", "ak": "sha256:00", "channel": "pt-tls", "groups": ["ignored"]},
  "os": {
    "name": "debian", "version_major": 12, "version_minor": 0.0, "ratio": 0.5, "big": 1e3,
    "huge": 1e300, "neg": -7, "forwarding": "disabled", "default_password": false, "last_use": null,
    "packages": {"bash": "5.2.15-2+b7"},
    "ports": [{"protocol": "tcp", "port": 23, "blocked": false}]
  },
  "tpm": null
}`
	ep, facts, err := ParseFacts([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if ep != (Endpoint{ID: "ep1", MAC: "02:00:00:00:00:0a", Identity: "alice", AK: "sha256:00", Channel: "pt-tls"}) {
		t.Errorf("endpoint %+v", ep)
	}
	o := facts["os"]
	want := map[string]any{
		"name": "debian", "version_major": int64(12), "version_minor": int64(0), "ratio": 0.5, "big": int64(1000),
		"huge": 1e300, "neg": int64(-7), "forwarding": "disabled", "default_password": false, "last_use": nil,
		"packages": map[string]any{"bash": "5.2.15-2+b7"},
		"ports":    []any{map[string]any{"protocol": "tcp", "port": int64(23), "blocked": false}},
	}
	if !reflect.DeepEqual(o, want) {
		t.Errorf("os facts:\n got %#v\nwant %#v", o, want)
	}
	if _, ok := facts["tpm"]; ok {
		t.Error("null namespace should be absent")
	}
	// Integral numbers are int64, so CEL's int comparison works.
	p := mustParse(t, "version: 1\nrules:\n  - {name: r, when: 'os.ports.exists(p, p.port == 23) && os.version_major >= 12', role: admit}\ndefault: {role: deny}\n")
	if d := p.Decide(ep, facts); d.Role != RoleAdmit {
		t.Errorf("decision %s %+v", d.Role, d.Trace)
	}
}

func TestParseFactsErrors(t *testing.T) {
	tests := []struct{ src, msg string }{
		{``, "EOF"},
		{`[]`, "cannot unmarshal array"},
		{`null`, "want a JSON object"},
		{`{"os": {}} {}`, "data after the JSON object"},
		{`{"oss": {}}`, `unknown namespace "oss"`},
		{`{"os": []}`, "os must be an object"},
		{`{"endpoint": {"mac": "nope"}}`, "endpoint.mac"},
		{`{"endpoint": {"id": 5}}`, "endpoint.id must be a string"},
		{`{"endpoint": {"colour": "red"}}`, `unknown endpoint field "colour"`},
		{`{"os": {"x": 1e999}}`, "out of range"},
		{`{"os": {"x": ` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}}`, "nested deeper"},
	}
	for _, tt := range tests {
		_, _, err := ParseFacts([]byte(tt.src))
		if err == nil || !errors.Is(err, ErrBadFacts) || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("ParseFacts(%q) = %v, want ErrBadFacts with %q", tt.src, err, tt.msg)
		}
	}
}

func TestLoadFacts(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.json")
	os.WriteFile(path, []byte(`{"endpoint": {"id": "a"}, "os": {"name": "debian"}}`), 0o600)
	ep, facts, err := LoadFacts(path)
	if err != nil || ep.ID != "a" || facts["os"]["name"] != "debian" {
		t.Fatalf("%+v %+v %v", ep, facts, err)
	}
	os.WriteFile(path, []byte(`{"x": {}}`), 0o600)
	if _, _, err := LoadFacts(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("error does not name the file: %v", err)
	}
	if _, _, err := LoadFacts(filepath.Join(dir, "missing.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}
