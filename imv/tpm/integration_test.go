package tpmimv

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"trustnac/imv"
	"trustnac/imv/tpm/eventlog"
	"trustnac/imv/tpm/ima"
)

// These tests run the session with the real log packages: a real firmware
// event log from go-attestation's test data, and an IMA log built here in
// the kernel's binary format.

// firmwareLog reads a real crypto-agile event log that go-attestation
// ships as test data.
func firmwareLog(t *testing.T) []byte {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/google/go-attestation").Output()
	if err != nil || len(out) == 0 {
		t.Skipf("go-attestation's module directory is not available: %v", err)
	}
	log, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "attest", "testdata", "ubuntu_2104_shielded_vm_no_secure_boot_eventlog"))
	if err != nil {
		t.Skipf("go-attestation's test log: %v", err)
	}
	return log
}

// imaEntry encodes one ima-ng entry of binary_runtime_measurements:
// PCR, SHA-1 template hash, template name, template data (d-ng and n-ng,
// each with its 32-bit length).
func imaEntry(path string, content []byte) []byte {
	d := sha256.Sum256(content)
	dng := append([]byte("sha256:\x00"), d[:]...)
	nng := append([]byte(path), 0)
	var data []byte
	data = binary.LittleEndian.AppendUint32(data, uint32(len(dng)))
	data = append(data, dng...)
	data = binary.LittleEndian.AppendUint32(data, uint32(len(nng)))
	data = append(data, nng...)
	th := sha1.Sum(data)
	var e []byte
	e = binary.LittleEndian.AppendUint32(e, 10)
	e = append(e, th[:]...)
	e = binary.LittleEndian.AppendUint32(e, uint32(len("ima-ng")))
	e = append(e, "ima-ng"...)
	e = binary.LittleEndian.AppendUint32(e, uint32(len(data)))
	return append(e, data...)
}

func TestIntegrationRealLogs(t *testing.T) {
	boot := firmwareLog(t)
	computed, err := eventlog.Compute(boot)
	if err != nil {
		t.Fatal(err)
	}
	files := []struct {
		path    string
		content string
	}{{"boot_aggregate", "aggregate"}, {"/usr/bin/bash", "bash"}, {"/usr/lib/libc.so.6", "libc"}}
	var imaLog []byte
	for _, f := range files {
		imaLog = append(imaLog, imaEntry(f.path, []byte(f.content))...)
	}
	entries, err := ima.ParseBinary(imaLog, 0)
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	allow := filepath.Join(dir, "allowlist")
	var list strings.Builder
	for _, f := range files[1:] {
		d := sha256.Sum256([]byte(f.content))
		list.WriteString(hex.EncodeToString(d[:]) + "  " + f.path + "\n")
	}
	if err := os.WriteFile(allow, []byte(list.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	al, err := ima.LoadAllowlist(allow)
	if err != nil {
		t.Fatal(err)
	}

	e := &logEndpoint{piece: 16 << 10}
	e.lab = newLab(t, AKAlgSM2, Config{IMAAllowlist: al})
	approve(t, e.store, e.ak, MethodEKCert)
	for bank, vals := range computed {
		if e.tpm.pcrs[bank] == nil {
			continue
		}
		for i, v := range vals {
			e.tpm.pcrs[bank][i] = slices.Clone(v)
		}
	}
	for _, bank := range []uint16{algSHA1, algSHA256} {
		v, err := ima.Replay(entries, bank)
		if err != nil {
			t.Fatal(err)
		}
		e.tpm.pcrs[bank][10] = v
	}
	e.boot, e.ima = boot, imaLog

	r := e.run(t)
	wantRec(t, r, imv.Allow, "")
	f, imaf := SplitFacts(r.Facts)
	if f["eventlog_replayed"] != true || f["eventlog_events"].(int64) < 10 {
		t.Errorf("tpm facts %v", f)
	}
	if imaf["replayed"] != true || imaf["entries"] != int64(3) || imaf["allowlist_ok"] != true || imaf["template"] != "ima-ng" {
		t.Errorf("ima facts %v", imaf)
	}

	// A file the allowlist does not know.
	extra := imaEntry("/tmp/dropper", []byte("evil"))
	e.ima = append(e.ima, extra...)
	entries, _ = ima.ParseBinary(e.ima, 0)
	for _, bank := range []uint16{algSHA1, algSHA256} {
		e.tpm.pcrs[bank][10], _ = ima.Replay(entries, bank)
	}
	r = e.run(t)
	wantRec(t, r, imv.Isolate, "IMA measured 1 file(s) the allowlist does not accept, e.g. /tmp/dropper (not in allowlist)")
	_, imaf = SplitFacts(r.Facts)
	vs := imaf["violations"].([]any)
	if imaf["allowlist_ok"] != false || len(vs) != 1 || vs[0].(map[string]any)["path"] != "/tmp/dropper" {
		t.Errorf("ima facts %v", imaf)
	}

	// Firmware that measured something the log hides.
	e.tpm.extend(4, []byte("hidden boot application"))
	r = e.run(t)
	wantRec(t, r, imv.Isolate, "does not replay to the quoted PCRs (sha1:4, sha256:4)")
	if r.Facts["eventlog_replayed"] != false {
		t.Error("eventlog_replayed true")
	}
}
