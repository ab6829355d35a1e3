package pdp

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// onDisk reads id as committed, bypassing what the store keeps in memory.
func onDisk(t *testing.T, s *BoltStore, id string) *Record {
	t.Helper()
	var rec *Record
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketEndpoints).Get([]byte(id))
		if v == nil {
			return nil
		}
		rec = new(Record)
		return json.Unmarshal(v, rec)
	})
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func postureRecord(role string, at time.Time) *Record {
	return &Record{
		ID: "mac:02:00:00:00:00:01", MAC: "02:00:00:00:00:01", Channel: "radius",
		Role: role, Rule: "healthy", Recommendation: "allow", Groups: []string{"staff"},
		Facts:     map[string]map[string]any{"os": {"name": "debian", "version": []any{"12", float64(5)}}},
		DecidedAt: at,
	}
}

// A changed decision is on disk when Put returns; a repeat is seen by Get
// at once and reaches the disk with the next flush, with its counters; a
// change after repeats is not overwritten by them.
func TestBoltStoreRepeatsWriteBehind(t *testing.T) {
	s := openTestStore(t)
	defer s.Close()
	t0 := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	id := postureRecord("admit", t0).ID

	if err := s.Put(postureRecord("admit", t0)); err != nil {
		t.Fatal(err)
	}
	if d := onDisk(t, s, id); d == nil || d.Role != "admit" || d.Assessments != 1 {
		t.Fatalf("first decision not on disk when Put returned: %+v", d)
	}

	for i := 1; i <= 3; i++ {
		if err := s.Put(postureRecord("admit", t0.Add(time.Duration(i)*time.Minute))); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	if got.Assessments != 4 || !got.DecidedAt.Equal(t0.Add(3*time.Minute)) || !got.FirstSeen.Equal(t0) {
		t.Errorf("Get after three repeats = %d assessments, decided %v, first seen %v; want 4, %v, %v",
			got.Assessments, got.DecidedAt, got.FirstSeen, t0.Add(3*time.Minute), t0)
	}
	if d := onDisk(t, s, id); d.Assessments != 1 {
		t.Errorf("repeats were written through: %d assessments on disk, want 1 until the flush", d.Assessments)
	}
	recs, err := s.List()
	if err != nil || len(recs) != 1 || recs[0].Assessments != 4 {
		t.Errorf("List after repeats = %+v, %v; want the record with 4 assessments", recs, err)
	}

	s.flush()
	if d := onDisk(t, s, id); d.Assessments != 4 || !d.DecidedAt.Equal(t0.Add(3*time.Minute)) {
		t.Errorf("after the flush the disk has %d assessments decided %v, want 4 at %v", d.Assessments, d.DecidedAt, t0.Add(3*time.Minute))
	}

	// New facts under the same decision are written behind too.
	newer := postureRecord("admit", t0.Add(5*time.Minute))
	newer.Facts["tpm"] = map[string]any{"clock": int64(42)}
	if err := s.Put(newer); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(id); got == nil || got.Facts["tpm"]["clock"] != int64(42) {
		t.Errorf("Get does not see the repeat's facts: %+v", got)
	}
	if d := onDisk(t, s, id); d.Facts["tpm"] != nil {
		t.Errorf("a repeat's facts were written through: %v", d.Facts)
	}
	s.flush()
	if d := onDisk(t, s, id); d.Facts["tpm"]["clock"] != float64(42) || d.Assessments != 5 {
		t.Errorf("after the flush the disk has facts %v and %d assessments, want clock 42 and 5", d.Facts, d.Assessments)
	}

	// Repeats waiting, then a change: the change lands with all the
	// counters, and a later flush does not bring the old role back.
	if err := s.Put(postureRecord("admit", t0.Add(10*time.Minute))); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(postureRecord("isolate", t0.Add(11*time.Minute))); err != nil {
		t.Fatal(err)
	}
	if d := onDisk(t, s, id); d.Role != "isolate" || d.Assessments != 7 || !d.FirstSeen.Equal(t0) {
		t.Errorf("changed decision on disk = %s, %d assessments, first seen %v; want isolate, 7, %v", d.Role, d.Assessments, d.FirstSeen, t0)
	}
	s.flush()
	if d := onDisk(t, s, id); d.Role != "isolate" {
		t.Errorf("a flush after the change wrote back %s", d.Role)
	}

	// A posture record marked stale (DecidedAt zero) is a change, even if
	// nothing else differs.
	if err := s.Put(postureRecord("isolate", time.Time{})); err != nil {
		t.Fatal(err)
	}
	if d := onDisk(t, s, id); !d.DecidedAt.IsZero() {
		t.Errorf("a stale mark waited for the flush: decided %v on disk", d.DecidedAt)
	}
}

// Repeats still in memory are written by Close.
func TestBoltStoreCloseFlushes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := OpenBoltStore(path, false, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	for i := range 5 {
		if err := s.Put(postureRecord("admit", t0.Add(time.Duration(i)*time.Second))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ro, err := OpenBoltStore(path, true, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	got, err := ro.Get(postureRecord("", t0).ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Assessments != 5 || !got.DecidedAt.Equal(t0.Add(4*time.Second)) {
		t.Errorf("after Close: %d assessments decided %v, want 5 at %v", got.Assessments, got.DecidedAt, t0.Add(4*time.Second))
	}
}

// Every field of a Record but the facts and the counters takes part in
// the decision digest, so a new field cannot be forgotten.
func TestDecisionDigestFields(t *testing.T) {
	base := postureRecord("admit", time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC))
	want := decisionDigest(base)
	behind := map[string]bool{"Facts": true, "FirstSeen": true, "DecidedAt": true, "Assessments": true}
	typ := reflect.TypeFor[Record]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		rec := *base
		v := reflect.ValueOf(&rec).Elem().Field(i)
		switch f.Type.Kind() {
		case reflect.String:
			v.SetString(v.String() + "x")
		case reflect.Slice:
			v.Set(reflect.Append(v, reflect.ValueOf("x")))
		case reflect.Map:
			v.Set(reflect.ValueOf(map[string]map[string]any{"tpm": {"clock": int64(5)}}))
		case reflect.Uint64:
			v.SetUint(v.Uint() + 1)
		case reflect.Struct: // time.Time
			v.Set(reflect.ValueOf(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)))
		default:
			t.Fatalf("field %s: kind %s not covered by this test", f.Name, f.Type.Kind())
		}
		if changed := decisionDigest(&rec) != want; changed == behind[f.Name] {
			t.Errorf("changing %s changes the digest: %v, want %v", f.Name, changed, !behind[f.Name])
		}
	}
	stale := *base
	stale.DecidedAt = time.Time{}
	if decisionDigest(&stale) == want {
		t.Error("a stale record (DecidedAt zero) has the digest of a fresh one")
	}
	// Strings and lists whose bytes could run together stay apart.
	a, b := *base, *base
	a.Role, a.Rule = "admit", "x"
	b.Role, b.Rule = "admi", "tx"
	if decisionDigest(&a) == decisionDigest(&b) {
		t.Error("role/rule admit/x and admi/tx share a digest")
	}
	a, b = *base, *base
	a.Groups, a.Reasons = []string{"a", "b"}, nil
	b.Groups, b.Reasons = []string{"a"}, []string{"b"}
	if decisionDigest(&a) == decisionDigest(&b) {
		t.Error("groups [a b] and groups [a] reasons [b] share a digest")
	}
}
