package eventlog

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"strconv"
	"testing"
)

// encodeParsed writes a parsed log back in its format (test-only), for the round-trip check.
func encodeParsed(l *parsedLog) []byte {
	var b []byte
	events := l.events
	if l.agile {
		spec := append([]byte(nil), specIDSignature03...)
		spec = le32(spec, 0)
		spec = append(spec, 0, 2, 0, 2)
		spec = le32(spec, uint32(len(l.algs)))
		for _, a := range l.algs {
			spec = le16(spec, a.id)
			spec = le16(spec, uint16(a.size))
		}
		spec = append(spec, 0)
		b = sha1Event(b, 0, evNoAction, nil, spec)
	}
	for i, e := range events {
		if !l.agile {
			b = sha1Event(b, e.pcr, e.typ, l.digest(i, 0), e.data)
			continue
		}
		b = le32(b, e.pcr)
		b = le32(b, e.typ)
		n := 0
		for bi := range l.algs {
			if l.digest(i, bi) != nil {
				n++
			}
		}
		b = le32(b, uint32(n))
		for bi, a := range l.algs {
			if d := l.digest(i, bi); d != nil {
				b = le16(b, a.id)
				b = append(b, d...)
			}
		}
		b = binary.LittleEndian.AppendUint32(b, uint32(len(e.data)))
		b = append(b, e.data...)
	}
	return b
}

func fuzzSeeds() [][]byte {
	sep := []byte{0, 0, 0, 0}
	return [][]byte{
		buildSHA1([]testEvent{{pcr: 0, typ: 8, data: []byte("crtm")}, {pcr: 7, typ: evSeparator, data: sep}}),
		buildAgile([]uint16{AlgSHA1, AlgSHA256, AlgSM3256}, []testEvent{
			{pcr: 0, typ: evNoAction, data: startupLocality(3)},
			{pcr: 0, typ: 8, data: []byte("crtm")},
			{pcr: 7, typ: evEFIVariableDriverConfig, data: append(append([]byte(nil), efiGlobalVariable...), 10, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 'S', 0, 'e', 0, 'c', 0, 'u', 0, 'r', 0, 'e', 0, 'B', 0, 'o', 0, 'o', 0, 't', 0, 1)},
			{pcr: 4, typ: evEFIBootServicesApplication, data: []byte("app")},
			{pcr: 8, typ: evIPL, data: []byte("kernel_cmdline: /vmlinuz ro\x00")},
		}),
	}
}

// FuzzReplay checks that Compute and Replay agree on what is parsable, that a log always
// replays against its own computed values (go-attestation's replay of sha1/sha256 included),
// that a flipped value is named, and that a parsed log re-encodes to a log that parses the
// same.
func FuzzReplay(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, log []byte) {
		computed, err := Compute(log)
		res, rerr := Replay(log, computed)
		if (err == nil) != (rerr == nil) {
			t.Fatalf("Compute error %v, Replay error %v", err, rerr)
		}
		if err != nil {
			return
		}
		if len(res.Mismatches) != 0 {
			t.Fatalf("log does not replay to its own values: %v", res.Mismatches)
		}
		any := false
		for _, m := range computed {
			any = any || len(m) > 0
		}
		if res.Replayed != any {
			t.Fatalf("Replayed = %v with computed values present = %v", res.Replayed, any)
		}
		if !reflect.DeepEqual(res.Computed, computed) {
			t.Fatal("Replay.Computed differs from Compute")
		}
		// Flip one value: exactly that PCR is named.
		for _, alg := range sortedKeys(computed) {
			for _, idx := range sortedKeys(computed[alg]) {
				v := computed[alg][idx]
				v[0] ^= 1
				res, err := Replay(log, computed)
				v[0] ^= 1
				if err != nil {
					t.Fatal(err)
				}
				want := BankName(alg) + ":" + strconv.Itoa(idx)
				if res.Replayed || len(res.Mismatches) != 1 || res.Mismatches[0] != want {
					t.Fatalf("flipped %s: Mismatches = %v", want, res.Mismatches)
				}
				break
			}
			break
		}
		// Round trip through the test encoder.
		l, err := parse(log)
		if err != nil {
			t.Fatal(err)
		}
		again, err := parse(encodeParsed(l))
		if err != nil {
			t.Fatalf("re-encoded log does not parse: %v", err)
		}
		if !sameParsed(l, again) {
			t.Fatal("re-encoded log parses differently")
		}
	})
}

func sameParsed(a, b *parsedLog) bool {
	if a.agile != b.agile || !reflect.DeepEqual(a.algs, b.algs) || len(a.events) != len(b.events) ||
		a.locality != b.locality || a.hasLocality != b.hasLocality {
		return false
	}
	for i := range a.events {
		x, y := a.events[i], b.events[i]
		if x.pcr != y.pcr || x.typ != y.typ || !bytes.Equal(x.data, y.data) {
			return false
		}
	}
	for i := range a.digests {
		if !bytes.Equal(a.digests[i], b.digests[i]) || (a.digests[i] == nil) != (b.digests[i] == nil) {
			return false
		}
	}
	return true
}
