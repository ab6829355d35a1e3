package policies

import (
	"strings"
	"testing"
)

const refPolicy = `version: 1
groups:
  - name: lab
    identities: ["lab-*"]
    enrollment: tofu
  - name: servers
    identities: ["srv-*"]
    enrollment: none
reference_values:
  - name: debian-12-kvm
    groups: [lab]
    pcrs:
      sha256:
        0: "` + "AA" + `aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        7: ["bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "0xcccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"]
      sha1:
        0: "dddddddddddddddddddddddddddddddddddddddd"
  - name: any
    pcrs:
      sm3_256: {0: "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"}
default: {role: isolate}
`

func TestReferenceValues(t *testing.T) {
	p, err := Parse("ref.yaml", []byte(refPolicy))
	if err != nil {
		t.Fatal(err)
	}
	lab := p.ReferenceSets([]string{"lab"})
	if len(lab) != 2 || lab[0].Name != "debian-12-kvm" || lab[1].Name != "any" {
		t.Fatalf("sets for lab: %+v", lab)
	}
	if v := lab[0].PCRs["sha256"][7]; len(v) != 2 || !strings.HasPrefix(v[1], "cc") {
		t.Errorf("sha256 PCR 7 = %q", v)
	}
	if v := lab[0].PCRs["sha256"][0]; v[0] != strings.Repeat("a", 64) {
		t.Errorf("hex not lower-cased: %q", v)
	}
	if other := p.ReferenceSets([]string{"servers"}); len(other) != 1 || other[0].Name != "any" {
		t.Errorf("sets for servers: %+v", other)
	}
	for groups, want := range map[string]string{"lab": EnrollTOFU, "servers": EnrollNone, "": EnrollCredential} {
		if got := p.EnrollmentFor(strings.Fields(groups)); got != want {
			t.Errorf("EnrollmentFor(%q) = %s, want %s", groups, got, want)
		}
	}
}

func TestReferenceValuesErrors(t *testing.T) {
	tests := []struct{ name, edit, want string }{
		{"short digest", `7: ["bbbb`, "want 32 bytes of hex"},
		{"bad bank", "      sha1:\n", "unknown field \"sha512\""},
		{"pcr out of range", "        0: \"dddd", "PCR index \"24\""},
		{"unknown group", "groups: [lab]", "unknown group \"nolab\""},
		{"bad enrollment", "enrollment: none", "unknown enrollment \"maybe\""},
	}
	repl := map[string]string{
		"short digest":     `7: ["bbbb", "`,
		"bad bank":         "      sha512:\n",
		"pcr out of range": "        24: \"dddd",
		"unknown group":    "groups: [nolab]",
		"bad enrollment":   "enrollment: maybe",
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := strings.Replace(refPolicy, tt.edit, repl[tt.name], 1)
			if src == refPolicy {
				t.Fatal("edit did not apply")
			}
			_, err := Parse("ref.yaml", []byte(src))
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "ref.yaml:") {
				t.Errorf("err = %v, want %q with a position", err, tt.want)
			}
		})
	}
}
