package ima

import (
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func hexOf(b []byte) string { return hex.EncodeToString(b) }

func TestAllowlistCheck(t *testing.T) {
	entries, err := ParseBinary(encodeAll(sampleLog()), 0)
	if err != nil {
		t.Fatal(err)
	}
	list := "# distro files\n" +
		hexOf(sha256Of("bash")) + "  /usr/bin/bash\n" +
		hexOf(sha256Of("bash-old")) + "  /usr/bin/bash\n" + // several digests per path
		"sha256:" + hexOf(sha256Of("libc-other")) + "  /usr/lib/x86_64-linux-gnu/libc.so.6\n" +
		hexOf(sha256Of("sshd")) + " */usr/sbin/sshd\r\n" +
		"\n" +
		"exclude /var/log/**\n"
	a, err := ParseAllowlist([]byte(list))
	if err != nil {
		t.Fatal(err)
	}
	got := a.Check(entries)
	want := []Violation{
		{"/usr/lib/x86_64-linux-gnu/libc.so.6", "sha256:" + hexOf(sha256Of("libc")), ReasonDigestDiffers},
		{"/usr/lib/systemd/systemd", "sha256:" + hexOf(sha256Of("init")), ReasonNotInAllowlist},
		{"/usr/bin/old", "sha1:" + hexOf(entries[6].FileDigest), ReasonNotInAllowlist},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Check =\n%v\nwant\n%v", got, want)
	}

	// Without the exclude, the violation is reported.
	a2, err := ParseAllowlist([]byte(list[:len(list)-len("exclude /var/log/**\n")]))
	if err != nil {
		t.Fatal(err)
	}
	got = a2.Check(entries)
	if len(got) != 4 || got[2].Path != "/var/log/syslog" || got[2].Reason != ReasonMeasurementViolated {
		t.Errorf("Check without exclude = %v", got)
	}

	// An ima-buf entry is skipped; an unknown template is reported.
	buf := testEntry{pcr: 10, template: "ima-buf", data: cat(field(dng("sha256", sha256Of("x"))), field(nng("kexec-cmdline")), field([]byte("x")))}
	buf.hashInput = buf.data
	odd := testEntry{pcr: 10, template: "d|n-ng", data: field([]byte("x"))}
	odd.hashInput = odd.data
	more, err := ParseBinary(encodeAll([]testEntry{buf, odd}), 0)
	if err != nil {
		t.Fatal(err)
	}
	got = a.Check(more)
	if len(got) != 1 || got[0].Reason != ReasonUnsupportedTemplate {
		t.Errorf("Check(ima-buf, custom) = %v", got)
	}

	// A nil allowlist allows nothing but still skips boot_aggregate.
	if got := (*Allowlist)(nil).Check(entries[:2]); len(got) != 1 || got[0].Reason != ReasonNotInAllowlist {
		t.Errorf("nil allowlist: %v", got)
	}
}

func TestAllowlistAlgorithms(t *testing.T) {
	sm3d := make([]byte, 32)
	sm3d[0] = 1
	entries := []Entry{
		{PCR: 10, Template: "ima-ng", TemplateHash: []byte{1}, FileDigest: sm3d, FileDigestAlg: "sm3", Path: "/sm"},
		{PCR: 10, Template: "ima-ng", TemplateHash: []byte{1}, FileDigest: sm3d, FileDigestAlg: "sha256", Path: "/sha"},
	}
	// The same 64 hex digits: unprefixed is SHA-256, "sm3:" is SM3.
	a, err := ParseAllowlist([]byte("sm3:" + hexOf(sm3d) + "  /sm\n" + hexOf(sm3d) + "  /sha\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := a.Check(entries); len(got) != 0 {
		t.Errorf("Check = %v", got)
	}
	a, err = ParseAllowlist([]byte(hexOf(sm3d) + "  /sm\nsm3:" + hexOf(sm3d) + "  /sha\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := a.Check(entries); len(got) != 2 || got[0].Reason != ReasonDigestDiffers || got[1].Reason != ReasonDigestDiffers {
		t.Errorf("Check with swapped algorithms = %v", got)
	}
}

func TestAllowlistExcludes(t *testing.T) {
	a, err := ParseAllowlist([]byte("exclude /tmp/*\nexclude /var/lib/**\nexclude /opt/*/cache/**\nexclude\t/etc/*.conf\n"))
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{
		"/tmp/x":               true,
		"/tmp/x/y":             false, // * does not cross '/'
		"/var/lib":             true,
		"/var/lib/dpkg/status": true,
		"/var/library":         false,
		"/opt/app/cache":       true,
		"/opt/app/cache/a/b":   true,
		"/opt/app/data/a":      false,
		"/etc/ssh.conf":        true,
		"/etc/ssh/ssh.conf":    false,
		"/usr/bin/bash":        false,
	} {
		if got := a.Excluded(p); got != want {
			t.Errorf("Excluded(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestParseAllowlistErrors(t *testing.T) {
	for _, line := range []string{
		"abcd  /x",                                  // wrong length
		hexOf(make([]byte, 32)),                     // no path
		hexOf(make([]byte, 32)) + "   ",             // no path
		"zz" + hexOf(make([]byte, 31)) + "  /x",     // not hex
		"sha256:" + hexOf(make([]byte, 20)) + " /x", // wrong size for the algorithm
		"crc32:00000000  /x",                        // unknown algorithm
		"exclude [",                                 // bad pattern
		"exclude",                                   // no pattern
	} {
		if _, err := ParseAllowlist([]byte(line + "\n")); !errors.Is(err, ErrAllowlist) {
			t.Errorf("ParseAllowlist(%q) = %v, want ErrAllowlist", line, err)
		}
	}
}

func TestLoadAllowlist(t *testing.T) {
	p := filepath.Join(t.TempDir(), "allow")
	if err := os.WriteFile(p, []byte(hexOf(sha256Of("bash"))+"  /usr/bin/bash\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := LoadAllowlist(p)
	if err != nil || a.Len() != 1 {
		t.Fatalf("LoadAllowlist = %v, %v", a, err)
	}
	if _, err := LoadAllowlist(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("LoadAllowlist of a missing file succeeded")
	}
}
