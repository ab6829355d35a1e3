package ima

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/emmansun/gmsm/sm3"
)

// The test builders below write the kernel's format by hand, independently of the package.

func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// field is one template field with its 32-bit length.
func field(b []byte) []byte { return cat(le32(uint32(len(b))), b) }

// dng is a d-ng field's data: "<alg>:\0<digest>".
func dng(alg string, d []byte) []byte { return cat([]byte(alg+":\x00"), d) }

// nng is an n-ng field's data: the name with its NUL.
func nng(name string) []byte { return []byte(name + "\x00") }

// testEntry is an entry to build: its template data, template name and what it should
// parse to.
type testEntry struct {
	pcr       uint32
	template  string
	data      []byte // template data as logged (after the data length, or the raw "ima" data)
	hashInput []byte // what the template digest covers
	violation bool
	alg       string
	digest    []byte
	path      string
}

func ngEntry(alg string, d []byte, path string) testEntry {
	data := cat(field(dng(alg, d)), field(nng(path)))
	return testEntry{pcr: 10, template: "ima-ng", data: data, hashInput: data, alg: alg, digest: d, path: path}
}

func sigEntry(alg string, d []byte, path string, sig []byte) testEntry {
	data := cat(field(dng(alg, d)), field(nng(path)), field(sig))
	return testEntry{pcr: 10, template: "ima-sig", data: data, hashInput: data, alg: alg, digest: d, path: path}
}

func imaEntry(d []byte, path string) testEntry {
	padded := make([]byte, 256)
	copy(padded, path)
	return testEntry{pcr: 10, template: "ima", data: cat(d, le32(uint32(len(path))), []byte(path)),
		hashInput: cat(d, padded), alg: "sha1", digest: d, path: path}
}

func (e testEntry) sha1Hash() []byte {
	if e.violation {
		return make([]byte, 20)
	}
	s := sha1.Sum(e.hashInput)
	return s[:]
}

func (e testEntry) encode() []byte {
	b := cat(le32(e.pcr), e.sha1Hash(), le32(uint32(len(e.template))), []byte(e.template))
	if e.template != "ima" {
		b = append(b, le32(uint32(len(e.data)))...)
	}
	return append(b, e.data...)
}

func encodeAll(es []testEntry) []byte {
	var b []byte
	for _, e := range es {
		b = append(b, e.encode()...)
	}
	return b
}

func sha256Of(s string) []byte { d := sha256.Sum256([]byte(s)); return d[:] }

// sampleLog is boot_aggregate, three ima-ng entries with sha256 file digests, an ima-sig
// entry, a violation and an old "ima" template entry.
func sampleLog() []testEntry {
	agg := ngEntry("sha256", sha256Of("pcrs 0-9"), "boot_aggregate")
	viol := ngEntry("sha256", make([]byte, 32), "/var/log/syslog")
	viol.violation = true
	sha1d := sha1.Sum([]byte("old"))
	return []testEntry{
		agg,
		ngEntry("sha256", sha256Of("bash"), "/usr/bin/bash"),
		ngEntry("sha256", sha256Of("libc"), "/usr/lib/x86_64-linux-gnu/libc.so.6"),
		ngEntry("sha256", sha256Of("init"), "/usr/lib/systemd/systemd"),
		sigEntry("sha256", sha256Of("sshd"), "/usr/sbin/sshd", []byte{0x03, 0x02, 0xaa, 0xbb}),
		viol,
		imaEntry(sha1d[:], "/usr/bin/old"),
	}
}

func TestParseBinary(t *testing.T) {
	want := sampleLog()
	got, err := ParseBinary(encodeAll(want), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.PCR != int(w.pcr) || g.Template != w.template || g.Path != w.path || g.FileDigestAlg != w.alg ||
			!bytes.Equal(g.FileDigest, w.digest) || !bytes.Equal(g.TemplateData, w.data) ||
			!bytes.Equal(g.TemplateHash, w.sha1Hash()) || g.IsViolation() != w.violation {
			t.Errorf("entry %d = %+v, want %+v", i, g, w)
		}
	}
}

func TestParseBinaryOtherTemplates(t *testing.T) {
	buf := testEntry{pcr: 10, template: "ima-buf", data: cat(field(dng("sha256", sha256Of("x"))), field(nng("kexec-cmdline")), field([]byte("x")))}
	buf.hashInput = buf.data
	v2 := testEntry{pcr: 10, template: "ima-ngv2", data: cat(field([]byte("ima:sha256:\x00"+string(sha256Of("v2")))), field(nng("/bin/v2")))}
	v2.hashInput = v2.data
	sm := testEntry{pcr: 10, template: "ima-ng", data: cat(field([]byte("sm3:\x00"+string(make([]byte, 32)))), field(nng("/bin/sm")))}
	sm.hashInput = sm.data
	got, err := ParseBinary(encodeAll([]testEntry{buf, v2, sm}), 0)
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Path != "" || got[0].FileDigest != nil || got[0].Template != "ima-buf" {
		t.Errorf("ima-buf = %+v", got[0])
	}
	if got[1].Path != "/bin/v2" || got[1].FileDigestAlg != "sha256" || !bytes.Equal(got[1].FileDigest, sha256Of("v2")) {
		t.Errorf("ima-ngv2 = %+v", got[1])
	}
	if got[2].FileDigestAlg != "sm3" {
		t.Errorf("sm3 alg = %q", got[2].FileDigestAlg)
	}
}

// handReplay extends PCR 10 by hand: sha1 with the logged template hashes, sha256 with
// sha256 over the hashed template input; violations with all 0xFF.
func handReplay(es []testEntry) (sha1PCR, sha256PCR []byte) {
	p1 := make([]byte, 20)
	p256 := make([]byte, 32)
	for _, e := range es {
		d1, d256 := e.sha1Hash(), sha256.Sum256(e.hashInput)
		d256s := d256[:]
		if e.violation {
			d1 = bytes.Repeat([]byte{0xff}, 20)
			d256s = bytes.Repeat([]byte{0xff}, 32)
		}
		s1 := sha1.Sum(cat(p1, d1))
		p1 = s1[:]
		s256 := sha256.Sum256(cat(p256, d256s))
		p256 = s256[:]
	}
	return p1, p256
}

func TestReplay(t *testing.T) {
	es := sampleLog()
	entries, err := ParseBinary(encodeAll(es), 0)
	if err != nil {
		t.Fatal(err)
	}
	want1, want256 := handReplay(es)
	for _, tc := range []struct {
		name string
		alg  uint16
		want []byte
	}{
		{"sha1", AlgSHA1, want1},
		{"sha256", AlgSHA256, want256},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Replay(entries, tc.alg)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Errorf("PCR 10 = %x, want %x", got, tc.want)
			}
		})
	}
	// SM3: the first entry by hand.
	one, _ := ParseBinary(es[0].encode(), 0)
	got, err := Replay(one, AlgSM3256)
	if err != nil {
		t.Fatal(err)
	}
	td := sm3.Sum(es[0].hashInput)
	want := sm3.Sum(cat(make([]byte, 32), td[:]))
	if !bytes.Equal(got, want[:]) {
		t.Errorf("sm3 PCR 10 = %x, want %x", got, want)
	}
	// Pre-5.11 kernels: SHA-1 template digests zero-padded.
	got, err = ReplayPaddedSHA1(one, AlgSHA256)
	if err != nil {
		t.Fatal(err)
	}
	w256 := sha256.Sum256(cat(make([]byte, 32), es[0].sha1Hash(), make([]byte, 12)))
	wantPad := w256[:]
	if !bytes.Equal(got, wantPad) {
		t.Errorf("padded PCR 10 = %x, want %x", got, wantPad)
	}
	if _, err := Replay(entries, 0x0099); err == nil {
		t.Error("Replay with an unknown bank succeeded")
	}
}

func TestReplayOtherPCRsIgnored(t *testing.T) {
	es := sampleLog()[:2]
	other := ngEntry("sha256", sha256Of("x"), "/x")
	other.pcr = 11
	entries, err := ParseBinary(encodeAll(append(es, other)), 0)
	if err != nil {
		t.Fatal(err)
	}
	want1, _ := handReplay(es)
	if got, _ := Replay(entries, AlgSHA1); !bytes.Equal(got, want1) {
		t.Errorf("PCR 10 with a PCR 11 entry = %x, want %x", got, want1)
	}
	got11, err := ReplayPCR(entries, AlgSHA1, 11)
	if err != nil {
		t.Fatal(err)
	}
	w11, _ := handReplay([]testEntry{other})
	if !bytes.Equal(got11, w11) {
		t.Errorf("PCR 11 = %x, want %x", got11, w11)
	}
}

// TestReplayDetectsTamperedData: a path or digest changed after logging no longer matches
// the SHA-1 template hash.
func TestReplayDetectsTamperedData(t *testing.T) {
	entries, err := ParseBinary(encodeAll(sampleLog()), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{1, 6} { // an ima-ng and an ima entry
		tampered := append([]Entry(nil), entries...)
		tampered[i].TemplateData = bytes.Clone(entries[i].TemplateData)
		tampered[i].TemplateData[len(tampered[i].TemplateData)-2] ^= 1
		if _, err := Replay(tampered, AlgSHA1); err == nil || !strings.Contains(err.Error(), "does not match") {
			t.Errorf("entry %d: Replay sha1 = %v, want a template hash error", i, err)
		}
		good, _ := Replay(entries, AlgSHA256)
		bad, err := Replay(tampered, AlgSHA256)
		if err != nil || bytes.Equal(good, bad) {
			t.Errorf("entry %d: sha256 replay unchanged by tampering (%v)", i, err)
		}
	}
}

func TestParseBinaryMalformed(t *testing.T) {
	good := encodeAll(sampleLog())
	e := sampleLog()[1]
	withName := func(n uint32) []byte {
		return cat(le32(10), make([]byte, 20), le32(n), []byte("ima-ng"), le32(0))
	}
	for _, tc := range []struct {
		name string
		log  []byte
	}{
		{"truncated header", good[:10]},
		{"truncated last entry", good[:len(good)-1]},
		{"template name length 0", withName(0)},
		{"template name length huge", withName(0xffffffff)},
		{"template name beyond", withName(100)},
		{"data length beyond", cat(le32(10), make([]byte, 20), le32(6), []byte("ima-ng"), le32(1000))},
		{"data length over cap", cat(le32(10), make([]byte, 20), le32(6), []byte("ima-ng"), le32(MaxTemplateDataLen+1))},
		{"PCR 24", cat(le32(24), e.encode()[4:])},
		{"field length beyond data", cat(le32(10), make([]byte, 20), le32(6), []byte("ima-ng"), le32(8), le32(100), le32(0))},
		{"ima-ng with one field", cat(le32(10), make([]byte, 20), le32(6), []byte("ima-ng"), le32(8), field([]byte("abcd")))},
		{"n-ng without NUL", cat(le32(10), make([]byte, 20), le32(6), []byte("ima-ng"), func() []byte {
			d := cat(field(dng("sha256", make([]byte, 32))), field([]byte("/x")))
			return cat(le32(uint32(len(d))), d)
		}())},
		{"d-ng digest size wrong", cat(le32(10), make([]byte, 20), le32(6), []byte("ima-ng"), func() []byte {
			d := cat(field(dng("sha256", make([]byte, 20))), field(nng("/x")))
			return cat(le32(uint32(len(d))), d)
		}())},
		{"ima name too long", cat(le32(10), make([]byte, 20), le32(3), []byte("ima"), make([]byte, 20), le32(300), make([]byte, 300))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseBinary(tc.log, 0); !errors.Is(err, ErrMalformed) {
				t.Errorf("ParseBinary = %v, want ErrMalformed", err)
			}
		})
	}
	if _, err := ParseBinary(good, 3); !errors.Is(err, ErrTooManyEntries) {
		t.Errorf("ParseBinary with cap 3 = %v, want ErrTooManyEntries", err)
	}
	if es, err := ParseBinary(nil, 0); err != nil || len(es) != 0 {
		t.Errorf("ParseBinary(empty) = %v, %v", es, err)
	}
}

func TestAppendBinaryRoundTrip(t *testing.T) {
	log := encodeAll(sampleLog())
	entries, err := ParseBinary(log, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	for i := range entries {
		if out, err = entries[i].AppendBinary(out); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(out, log) {
		t.Error("AppendBinary(ParseBinary(log)) != log")
	}
	again, err := ParseBinary(out, 0)
	if err != nil || !reflect.DeepEqual(again, entries) {
		t.Errorf("round trip: %v", err)
	}
}

func TestParseBinaryDigestSize(t *testing.T) {
	e := sampleLog()[1]
	d := sha256.Sum256(e.hashInput)
	log := cat(le32(10), d[:], le32(6), []byte("ima-ng"), le32(uint32(len(e.data))), e.data)
	entries, err := ParseBinaryDigestSize(log, 32, 0)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Replay(entries, AlgSHA256)
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(cat(make([]byte, 32), d[:]))
	if !bytes.Equal(got, want[:]) {
		t.Errorf("PCR 10 = %x, want %x", got, want)
	}
}

func TestReplayPrefixes(t *testing.T) {
	entries, err := ParseBinary(encodeAll(sampleLog()), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, from := range []int{0, 3, len(entries)} {
		got, err := ReplayPrefixes(entries, AlgSHA256, from)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(entries)-from+1 {
			t.Fatalf("from %d: %d values", from, len(got))
		}
		for i, v := range got {
			want, err := Replay(entries[:from+i], AlgSHA256)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(v, want) {
				t.Errorf("prefix %d = %x, want %x", from+i, v, want)
			}
		}
	}
	if _, err := ReplayPrefixes(entries, AlgSHA256, len(entries)+1); err == nil {
		t.Error("from beyond the entries accepted")
	}
}
