package lab

import (
	"strings"
	"testing"
)

// FuzzParseRoleSets: whatever `nft list table` prints, the parser returns
// only lower-case MACs of the role sets that occur in the input.
func FuzzParseRoleSets(f *testing.F) {
	f.Add("table bridge trustnac {\n\tset admit {\n\t\ttype ether_addr\n\t\telements = { 02:77:00:00:00:11 }\n\t}\n}\n")
	f.Add("\tset isolate {\n\t\telements = { 02:77:00:00:00:1A,\n\t\t\t02:77:00:00:00:1b }\n\t}\n")
	f.Add("set ports {\n elements = { 02:77:00:00:00:11 }\n}")
	f.Fuzz(func(t *testing.T, in string) {
		for mac, role := range parseRoleSets(in) {
			if mac != strings.ToLower(mac) || !macRE.MatchString(mac) {
				t.Fatalf("MAC %q", mac)
			}
			if !strings.Contains(strings.ToLower(in), mac) {
				t.Fatalf("MAC %q not in the input", mac)
			}
			switch role {
			case "admit", "remediate", "assess", "isolate":
			default:
				t.Fatalf("role %q", role)
			}
		}
	})
}

// FuzzParsePCRRead: a result has only sha256 digests, 64 lower-case hex
// digits, for PCR indexes that occur in the input.
func FuzzParsePCRRead(f *testing.F) {
	f.Add("  sha256:\n    0 : 0x" + strings.Repeat("AB", 32) + "\n    7 : 0x" + strings.Repeat("0", 64) + "\n")
	f.Add("  sha1:\n    0 : 0x" + strings.Repeat("00", 20) + "\n  sha256:\n    10: 0x" + strings.Repeat("11", 32) + "\n")
	f.Add("  sha256:\n    0 : 0xabcd\n")
	f.Fuzz(func(t *testing.T, in string) {
		m, err := parsePCRRead(in)
		if err != nil {
			return
		}
		if len(m) == 0 {
			t.Fatal("no error and no PCRs")
		}
		for _, v := range m {
			if len(v) != 64 || strings.Trim(v, "0123456789abcdef") != "" {
				t.Fatalf("digest %q", v)
			}
		}
	})
}
