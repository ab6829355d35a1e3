package policies

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestREADME keeps README.md honest: its CEL examples compile, its facts example loads, and its
// explain example is what Explain prints for the lab policy (up to the digest).
func TestREADME(t *testing.T) {
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := map[string][]string{}
	for _, m := range regexp.MustCompile("(?s)```(\\w*)\\n(.*?)```").FindAllStringSubmatch(string(data), -1) {
		blocks[m[1]] = append(blocks[m[1]], m[2])
	}
	env, _, err := environments()
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks["cel"]) != 1 {
		t.Fatalf("want one cel block, got %d", len(blocks["cel"]))
	}
	for _, expr := range strings.Split(strings.TrimSpace(blocks["cel"][0]), "\n") {
		if _, errs := compileBool(env, expr); errs != nil {
			t.Errorf("README example %q: %v", expr, errs)
		}
	}
	if len(blocks["json"]) != 1 {
		t.Fatalf("want one json block, got %d", len(blocks["json"]))
	}
	ep, facts, err := ParseFacts([]byte(blocks["json"][0]))
	if err != nil {
		t.Fatal(err)
	}
	lab, err := LoadFile("examples/lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if d := lab.Decide(ep, facts); d.Role != RoleAdmit {
		t.Errorf("README facts example: %s", d.Role)
	}
	var explainBlock string
	for _, b := range blocks[""] {
		if strings.HasPrefix(b, "decision:") {
			explainBlock = b
		}
	}
	ep, facts, err = LoadFacts("examples/facts/debian11.json")
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	lab.Decide(ep, facts).Explain(&out)
	digest := regexp.MustCompile(`sha256:[0-9a-f]{64}`)
	if got, want := digest.ReplaceAllString(out.String(), "sha256:…"), digest.ReplaceAllString(explainBlock, "sha256:…"); got != want {
		t.Errorf("README explain example is stale:\n got:\n%s\nwant:\n%s", got, want)
	}
}
