package eventlog

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

// attestTestdata returns go-attestation's testdata directory in the module cache, or skips.
func attestTestdata(t testing.TB) string {
	t.Helper()
	version := "v0.6.4"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/google/go-attestation" {
				version = d.Version
			}
		}
	}
	cache := os.Getenv("GOMODCACHE")
	if cache == "" {
		out, err := exec.Command("go", "env", "GOMODCACHE").Output()
		if err != nil {
			t.Skipf("go env GOMODCACHE: %v", err)
		}
		cache = strings.TrimSpace(string(out))
	}
	dir := filepath.Join(cache, "github.com/google/go-attestation@"+version, "attest", "testdata")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("go-attestation test logs not in the module cache: %v", err)
	}
	return dir
}

// realLogs are go-attestation's real firmware logs (short_no_action_eventlog is a fragment).
var realLogs = []string{
	"coreos_36_shielded_vm_no_secure_boot_eventlog",
	"crypto_agile_eventlog",
	"ebs_event_missing_eventlog",
	"option_rom_eventlog",
	"sb_cert_eventlog",
	"ubuntu_2104_shielded_vm_no_secure_boot_eventlog",
}

func readLog(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(attestTestdata(t), name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testEvent is an event for the log builders. A nil digest for a bank is computed from data;
// skip leaves the bank out of the event.
type testEvent struct {
	pcr, typ uint32
	data     []byte
	digests  map[uint16][]byte
	skip     map[uint16]bool
}

func (e testEvent) digest(alg uint16) []byte {
	if d, ok := e.digests[alg]; ok {
		return d
	}
	h := hashFor(alg)()
	h.Write(e.data)
	return h.Sum(nil)
}

func le32(b []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(b, v) }
func le16(b []byte, v uint16) []byte { return binary.LittleEndian.AppendUint16(b, v) }

// specIDEvent builds TCG_EfiSpecIDEvent (PFP 10.4.5.1).
func specIDEvent(algs []uint16) []byte {
	b := append([]byte(nil), specIDSignature03...)
	b = le32(b, 0)            // platformClass
	b = append(b, 0, 2, 0, 2) // minor, major, errata, uintnSize
	b = le32(b, uint32(len(algs)))
	for _, a := range algs {
		b = le16(b, a)
		b = le16(b, uint16(digestSize(a)))
	}
	return append(b, 0) // vendorInfoSize
}

// sha1Event appends a TCG_PCR_EVENT.
func sha1Event(b []byte, pcr, typ uint32, digest []byte, data []byte) []byte {
	b = le32(b, pcr)
	b = le32(b, typ)
	var d [20]byte
	copy(d[:], digest)
	b = append(b, d[:]...)
	b = le32(b, uint32(len(data)))
	return append(b, data...)
}

// buildAgile builds a crypto-agile log with the given banks.
func buildAgile(algs []uint16, events []testEvent) []byte {
	b := sha1Event(nil, 0, evNoAction, nil, specIDEvent(algs))
	for _, e := range events {
		b = le32(b, e.pcr)
		b = le32(b, e.typ)
		n := 0
		for _, a := range algs {
			if !e.skip[a] {
				n++
			}
		}
		b = le32(b, uint32(n))
		for _, a := range algs {
			if e.skip[a] {
				continue
			}
			b = le16(b, a)
			b = append(b, e.digest(a)...)
		}
		b = le32(b, uint32(len(e.data)))
		b = append(b, e.data...)
	}
	return b
}

// buildSHA1 builds a SHA-1 format log.
func buildSHA1(events []testEvent) []byte {
	var b []byte
	for _, e := range events {
		b = sha1Event(b, e.pcr, e.typ, e.digest(AlgSHA1), e.data)
	}
	return b
}

// extend computes H(pcr || d) for each digest in turn from start.
func extend(alg uint16, start []byte, ds ...[]byte) []byte {
	v := append([]byte(nil), start...)
	for _, d := range ds {
		h := hashFor(alg)()
		h.Write(v)
		h.Write(d)
		v = h.Sum(nil)
	}
	return v
}

func startupLocality(loc byte) []byte {
	return append(append([]byte(nil), startupLocalitySignature...), loc)
}
