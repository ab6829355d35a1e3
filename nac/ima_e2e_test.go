package nac

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-tpm/tpm2"

	"trustnac/imv/tpm/ima"
	"trustnac/testbed"
)

// imaFile is one measured file of the constructed IMA log.
type imaFile struct {
	path   string
	digest []byte
}

// field is an IMA template field: a little-endian length and the bytes.
func imaField(b []byte) []byte {
	return append(binary.LittleEndian.AppendUint32(nil, uint32(len(b))), b...)
}

// writeIMALog writes an ima-ng binary measurement list of files and extends
// PCR 10 of the swtpm as the kernel would, in the sha1 and sha256 banks.
func writeIMALog(t *testing.T, s *testbed.SWTPM, path string, files []imaFile) {
	t.Helper()
	tpm, err := s.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer tpm.Close()
	var log []byte
	for _, f := range files {
		data := append(imaField(append([]byte("sha256:\x00"), f.digest...)), imaField([]byte(f.path+"\x00"))...)
		h1 := sha1.Sum(data)
		h256 := sha256.Sum256(data)
		e := ima.Entry{PCR: 10, TemplateHash: h1[:], Template: "ima-ng", TemplateData: data}
		if log, err = e.AppendBinary(log); err != nil {
			t.Fatal(err)
		}
		_, err = tpm2.PCRExtend{
			PCRHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(10), Auth: tpm2.PasswordAuth(nil)},
			Digests: tpm2.TPMLDigestValues{Digests: []tpm2.TPMTHA{
				{HashAlg: tpm2.TPMAlgSHA1, Digest: h1[:]},
				{HashAlg: tpm2.TPMAlgSHA256, Digest: h256[:]},
			}},
		}.Execute(tpm)
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(path, log, 0o600); err != nil {
		t.Fatal(err)
	}
}

// The agent sends its IMA log; the PDP replays it to the quoted PCR 10 and
// checks every file against the allowlist.
func TestEndToEndIMA(t *testing.T) {
	digest := func(s string) []byte { d := sha256.Sum256([]byte(s)); return d[:] }
	files := []imaFile{
		{"/usr/bin/bash", digest("bash")},
		{"/usr/sbin/sshd", digest("sshd")},
		{"/tmp/dropper", digest("malware")},
	}
	logPath := filepath.Join(t.TempDir(), "ima.log")
	l, s := tpmLabPrepared(t, func(s *testbed.SWTPM) { writeIMALog(t, s, logPath, files) })

	run := func(allowed []imaFile) (string, []string, map[string]any) {
		t.Helper()
		var list strings.Builder
		for _, f := range allowed {
			fmt.Fprintf(&list, "%s  %s\n", hex.EncodeToString(f.digest), f.path)
		}
		allow := filepath.Join(t.TempDir(), "allowlist")
		writeFile(t, allow, list.String())
		l.stop()
		l.cfg.TPM.IMAAllowlist = allow
		l.start()
		agent := l.tpmAgent(s, "ecc-p256", filepath.Join(l.dir, "agent-state"))
		agent.Collectors.TPM.IMALog = logPath
		o, err := RunAgent(context.Background(), agent, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		rec, err := l.pdp.Store().Get("id:term-healthy")
		if err != nil {
			t.Fatal(err)
		}
		return o.Role, o.Reasons, rec.Facts["ima"]
	}

	role, reasons, facts := run(files)
	if role != "admit" || facts["replayed"] != true || facts["allowlist_ok"] != true || facts["entries"] != float64(3) && facts["entries"] != int64(3) {
		t.Errorf("all files allowed: role %s, reasons %q, ima facts %v", role, reasons, facts)
	}

	role, reasons, facts = run(files[:2])
	if role != "isolate" || facts["replayed"] != true || facts["allowlist_ok"] != false {
		t.Errorf("a file off the allowlist: role %s, reasons %q, ima facts %v", role, reasons, facts)
	}
	if !slices.ContainsFunc(reasons, func(r string) bool { return strings.Contains(r, "/tmp/dropper") }) {
		t.Errorf("the offending file is not named in the reasons: %q", reasons)
	}
}
