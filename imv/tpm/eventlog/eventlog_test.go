package eventlog

import (
	"bytes"
	"crypto"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/google/go-attestation/attest"
)

func TestRealLogsReplayAgainstComputed(t *testing.T) {
	for _, name := range realLogs {
		t.Run(name, func(t *testing.T) {
			log := readLog(t, name)
			computed, err := Compute(log)
			if err != nil {
				t.Fatalf("Compute: %v", err)
			}
			if len(computed) == 0 {
				t.Fatal("Compute returned no banks")
			}
			res, err := Replay(log, computed)
			if err != nil {
				t.Fatalf("Replay: %v", err)
			}
			if !res.Replayed || len(res.Mismatches) != 0 {
				t.Fatalf("Replayed = %v, Mismatches = %v", res.Replayed, res.Mismatches)
			}
			if res.Events == 0 {
				t.Error("Events = 0")
			}
			t.Logf("%d events, banks %v, secure boot %v, boot loaders %d, kernels %v, cmdline %q",
				res.Events, bankNames(computed), ptr(res.SecureBoot), len(res.BootLoaders), res.Kernels, res.KernelCmdline)
		})
	}
}

func ptr(b *bool) any {
	if b == nil {
		return nil
	}
	return *b
}

func bankNames(m map[uint16]map[int][]byte) []string {
	var s []string
	for _, k := range sortedKeys(m) {
		s = append(s, BankName(k))
	}
	return s
}

// TestRealLogsAgreeWithGoAttestation checks our replay against go-attestation's: every value
// we compute for sha1 and sha256 must verify with (*attest.EventLog).Verify, and a flipped
// value must fail with both.
func TestRealLogsAgreeWithGoAttestation(t *testing.T) {
	for _, name := range realLogs {
		t.Run(name, func(t *testing.T) {
			log := readLog(t, name)
			computed, err := Compute(log)
			if err != nil {
				t.Fatal(err)
			}
			el, err := attest.ParseEventLog(log)
			if err != nil {
				t.Fatalf("attest.ParseEventLog: %v", err)
			}
			compared := 0
			for alg, h := range map[uint16]crypto.Hash{AlgSHA1: crypto.SHA1, AlgSHA256: crypto.SHA256} {
				for idx, v := range computed[alg] {
					pcr := []attest.PCR{{Index: idx, Digest: v, DigestAlg: h}}
					if _, err := el.Verify(pcr); err != nil {
						t.Errorf("%s:%d: go-attestation disagrees: %v", BankName(alg), idx, err)
					}
					bad := append([]byte(nil), v...)
					bad[0] ^= 1
					if _, err := el.Verify([]attest.PCR{{Index: idx, Digest: bad, DigestAlg: h}}); err == nil {
						t.Errorf("%s:%d: go-attestation accepted a flipped value", BankName(alg), idx)
					}
					compared++
				}
			}
			if compared == 0 {
				t.Fatal("no sha1/sha256 PCR compared")
			}
		})
	}
}

func TestFlippedPCRIsNamed(t *testing.T) {
	log := readLog(t, "ubuntu_2104_shielded_vm_no_secure_boot_eventlog")
	for _, tc := range []struct {
		alg  uint16
		idx  int
		want string
	}{
		{AlgSHA256, 7, "sha256:7"},
		{AlgSHA1, 0, "sha1:0"},
		{AlgSHA384, 4, "sha384:4"},
		{AlgSHA256, 9, "sha256:9"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			pcrs, err := Compute(log)
			if err != nil {
				t.Fatal(err)
			}
			pcrs[tc.alg][tc.idx][5] ^= 0x80
			res, err := Replay(log, pcrs)
			if err != nil {
				t.Fatal(err)
			}
			if res.Replayed {
				t.Error("Replayed = true with a flipped PCR")
			}
			if len(res.Mismatches) != 1 || res.Mismatches[0] != tc.want {
				t.Errorf("Mismatches = %v, want [%s]", res.Mismatches, tc.want)
			}
		})
	}
}

func TestTruncatedLog(t *testing.T) {
	log := readLog(t, "crypto_agile_eventlog")
	for _, cut := range []int{1, 10, 31, 33, 60, len(log) / 2, len(log) - 1, len(log) - 4} {
		if _, err := Compute(log[:cut]); err == nil {
			// A cut on an event boundary is a shorter valid log; these cuts are not.
			t.Errorf("Compute(log[:%d]) succeeded", cut)
		} else if !errors.Is(err, ErrMalformed) {
			t.Errorf("Compute(log[:%d]) = %v, want ErrMalformed", cut, err)
		}
		if _, err := Replay(log[:cut], nil); err == nil {
			t.Errorf("Replay(log[:%d]) succeeded", cut)
		}
	}
}

func TestSM3BankWithStartupLocality(t *testing.T) {
	crtm := []byte("S-CRTM version")
	sep := []byte{0, 0, 0, 0}
	events := []testEvent{
		{pcr: 0, typ: evNoAction, data: startupLocality(3), digests: map[uint16][]byte{AlgSHA256: make([]byte, 32), AlgSM3256: make([]byte, 32)}},
		{pcr: 0, typ: 0x8, data: crtm},
		{pcr: 7, typ: evSeparator, data: sep},
		{pcr: 0, typ: evSeparator, data: sep},
	}
	algs := []uint16{AlgSHA256, AlgSM3256}
	log := buildAgile(algs, events)

	got, err := Compute(log)
	if err != nil {
		t.Fatal(err)
	}
	loc3 := make([]byte, 32)
	loc3[31] = 3
	for _, alg := range algs {
		want0 := extend(alg, loc3, events[1].digest(alg), events[3].digest(alg))
		if !bytes.Equal(got[alg][0], want0) {
			t.Errorf("%s PCR 0 = %x, want %x", BankName(alg), got[alg][0], want0)
		}
		want7 := extend(alg, make([]byte, 32), events[2].digest(alg))
		if !bytes.Equal(got[alg][7], want7) {
			t.Errorf("%s PCR 7 = %x, want %x", BankName(alg), got[alg][7], want7)
		}
	}
	// The SM3 value from zeros (ignoring the locality) must not be accepted.
	wrong := extend(AlgSM3256, make([]byte, 32), events[1].digest(AlgSM3256), events[3].digest(AlgSM3256))
	res, err := Replay(log, map[uint16]map[int][]byte{AlgSM3256: {0: wrong, 7: got[AlgSM3256][7]}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Replayed || len(res.Mismatches) != 1 || res.Mismatches[0] != "sm3_256:0" {
		t.Errorf("Replayed = %v, Mismatches = %v, want [sm3_256:0]", res.Replayed, res.Mismatches)
	}
	res, err = Replay(log, map[uint16]map[int][]byte{AlgSM3256: {0: got[AlgSM3256][0], 7: got[AlgSM3256][7]}})
	if err != nil || !res.Replayed {
		t.Errorf("Replay with the SM3 values: %v, %+v", err, res)
	}
	// go-attestation cannot parse a log with an SM3 bank: that is why the replay is ours.
	if _, err := attest.ParseEventLog(log); err == nil {
		t.Log("go-attestation parsed the SM3 log (it did not in v0.6.4)")
	}
}

func TestStartupLocality4SHA1Format(t *testing.T) {
	events := []testEvent{
		{pcr: 0, typ: evNoAction, data: startupLocality(4), digests: map[uint16][]byte{AlgSHA1: make([]byte, 20)}},
		{pcr: 0, typ: 0x7, data: []byte("H-CRTM")},
	}
	got, err := Compute(buildSHA1(events))
	if err != nil {
		t.Fatal(err)
	}
	loc4 := make([]byte, 20)
	loc4[19] = 4
	if want := extend(AlgSHA1, loc4, events[1].digest(AlgSHA1)); !bytes.Equal(got[AlgSHA1][0], want) {
		t.Errorf("PCR 0 = %x, want %x", got[AlgSHA1][0], want)
	}
}

func TestResetValueChecks(t *testing.T) {
	sep := []byte{0, 0, 0, 0}
	log := buildAgile([]uint16{AlgSHA256}, []testEvent{{pcr: 7, typ: evSeparator, data: sep}})
	v7 := extend(AlgSHA256, make([]byte, 32), testEvent{data: sep}.digest(AlgSHA256))
	zero := make([]byte, 32)
	nonzero := bytes.Repeat([]byte{1}, 32)
	for _, tc := range []struct {
		name      string
		pcrs      map[int][]byte
		replayed  bool
		mismatchs []string
	}{
		{"only PCR 7", map[int][]byte{7: v7}, true, nil},
		{"PCR 4 without events at reset value", map[int][]byte{7: v7, 4: zero}, true, nil},
		{"PCR 4 without events not at reset value", map[int][]byte{7: v7, 4: nonzero}, false, []string{"sha256:4"}},
		{"PCR 10 without events is not checked", map[int][]byte{7: v7, 10: nonzero}, true, nil},
		{"nothing checked", map[int][]byte{10: nonzero}, false, nil},
		{"index out of range ignored", map[int][]byte{7: v7, 99: nonzero, -1: zero}, true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Replay(log, map[uint16]map[int][]byte{AlgSHA256: tc.pcrs})
			if err != nil {
				t.Fatal(err)
			}
			if res.Replayed != tc.replayed || !equalStrings(res.Mismatches, tc.mismatchs) {
				t.Errorf("Replayed = %v, Mismatches = %v; want %v, %v", res.Replayed, res.Mismatches, tc.replayed, tc.mismatchs)
			}
		})
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestBanksAbsentFromLogAreSkipped(t *testing.T) {
	log := buildSHA1([]testEvent{{pcr: 0, typ: evSeparator, data: []byte{0, 0, 0, 0}}})
	c, err := Compute(log)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Replay(log, map[uint16]map[int][]byte{AlgSHA1: c[AlgSHA1], AlgSHA256: {0: make([]byte, 32)}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Replayed || !equalStrings(res.SkippedBanks, []string{"sha256"}) {
		t.Errorf("Replayed = %v, SkippedBanks = %v", res.Replayed, res.SkippedBanks)
	}
}

func TestEventMissingBankDigest(t *testing.T) {
	sep := []byte{0, 0, 0, 0}
	log := buildAgile([]uint16{AlgSHA1, AlgSHA256}, []testEvent{
		{pcr: 4, typ: evSeparator, data: sep, skip: map[uint16]bool{AlgSHA256: true}},
		{pcr: 5, typ: evSeparator, data: sep},
	})
	c, err := Compute(log)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c[AlgSHA256][4]; ok {
		t.Error("sha256 PCR 4 computed although an event lacks its digest")
	}
	if _, ok := c[AlgSHA1][4]; !ok {
		t.Error("sha1 PCR 4 missing")
	}
	res, err := Replay(log, map[uint16]map[int][]byte{AlgSHA256: {4: make([]byte, 32), 5: c[AlgSHA256][5]}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Replayed || !equalStrings(res.Mismatches, []string{"sha256:4"}) {
		t.Errorf("Replayed = %v, Mismatches = %v", res.Replayed, res.Mismatches)
	}
}

func TestMalformedLogs(t *testing.T) {
	sep := []byte{0, 0, 0, 0}
	good := buildAgile([]uint16{AlgSHA256}, []testEvent{{pcr: 0, typ: evSeparator, data: sep}})
	badSpec := func(mod func([]byte) []byte) []byte {
		spec := mod(specIDEvent([]uint16{AlgSHA256}))
		return sha1Event(nil, 0, evNoAction, nil, spec)
	}
	withEvent := func(raw []byte) []byte { return append(append([]byte(nil), good...), raw...) }
	ev2 := func(pcr, typ uint32, count uint32, digests []byte, size uint32, data []byte) []byte {
		b := le32(le32(le32(nil, pcr), typ), count)
		b = append(b, digests...)
		return append(le32(b, size), data...)
	}
	d256 := le16(nil, AlgSHA256)
	d256 = append(d256, make([]byte, 32)...)
	for _, tc := range []struct {
		name string
		log  []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"short header", []byte{0, 0, 0}, ErrMalformed},
		{"oversize", make([]byte, MaxLogSize+1), ErrTooLarge},
		{"spec version 1", badSpec(func(b []byte) []byte { b[21] = 1; return b }), ErrMalformed},
		{"spec no algorithms", badSpec(func(b []byte) []byte { b[24] = 0; return b[:28:28] }), ErrMalformed},
		{"spec too many algorithms", badSpec(func(b []byte) []byte { b[24] = 200; return b }), ErrTooLarge},
		{"spec digest size lies", badSpec(func(b []byte) []byte { b[30] = 20; return b }), ErrMalformed},
		{"spec vendor size lies", badSpec(func(b []byte) []byte { b[len(b)-1] = 9; return b }), ErrMalformed},
		{"event size beyond log", withEvent(ev2(0, 1, 1, d256, 100, nil)), ErrMalformed},
		{"event size over cap", withEvent(ev2(0, 1, 1, d256, MaxEventSize+1, nil)), ErrTooLarge},
		{"undeclared algorithm", withEvent(ev2(0, 1, 1, append(le16(nil, AlgSHA1), make([]byte, 20)...), 0, nil)), ErrMalformed},
		{"two digests of one bank", withEvent(ev2(0, 1, 1, append(d256, d256...), 0, nil)), ErrMalformed},
		{"digest count over declared", withEvent(ev2(0, 1, 2, append(d256, d256...), 0, nil)), ErrMalformed},
		{"digest count over cap", withEvent(ev2(0, 1, 1000, nil, 0, nil)), ErrTooLarge},
		{"PCR 24", withEvent(ev2(24, 1, 1, d256, 0, nil)), ErrMalformed},
		{"startup locality 2", withEvent(ev2(0, evNoAction, 1, d256, 17, startupLocality(2))), ErrMalformed},
		{"startup locality after PCR 0 extension", withEvent(ev2(0, evNoAction, 1, d256, 17, startupLocality(3))), ErrMalformed},
		{"sha1 format truncated data", sha1Event(nil, 0, 1, nil, []byte("abc"))[:34], ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compute(tc.log)
			if !errors.Is(err, tc.want) {
				t.Errorf("Compute = %v, want %v", err, tc.want)
			}
			if _, err := Replay(tc.log, nil); !errors.Is(err, tc.want) {
				t.Errorf("Replay = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestEventCountCap(t *testing.T) {
	e := sha1Event(nil, 1, 1, nil, nil)
	log := bytes.Repeat(e, MaxEvents+1)
	if _, err := Compute(log); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Compute = %v, want ErrTooLarge", err)
	}
	if _, err := Compute(log[:len(e)*MaxEvents]); err != nil {
		t.Errorf("Compute of %d events = %v", MaxEvents, err)
	}
}

func hexOf(alg uint16, data []byte) string {
	return hex.EncodeToString(testEvent{data: data}.digest(alg))
}
