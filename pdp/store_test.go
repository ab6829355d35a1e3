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

	// Repeats waiting, then a change: the change lands with all the
	// counters, and a later flush does not bring the old role back.
	if err := s.Put(postureRecord("admit", t0.Add(10*time.Minute))); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(postureRecord("isolate", t0.Add(11*time.Minute))); err != nil {
		t.Fatal(err)
	}
	if d := onDisk(t, s, id); d.Role != "isolate" || d.Assessments != 6 || !d.FirstSeen.Equal(t0) {
		t.Errorf("changed decision on disk = %s, %d assessments, first seen %v; want isolate, 6, %v", d.Role, d.Assessments, d.FirstSeen, t0)
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

// Every field of a Record but the counters takes part in the decision
// digest, so a new field cannot be forgotten; the counters do not.
func TestDecisionDigestFields(t *testing.T) {
	base := postureRecord("admit", time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC))
	want, ok := decisionDigest(base)
	if !ok {
		t.Fatal("no digest for a plain record")
	}
	counters := map[string]bool{"FirstSeen": true, "DecidedAt": true, "Assessments": true}
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
			v.Set(reflect.ValueOf(map[string]map[string]any{"os": {"name": "debian", "version": []any{"12", float64(6)}}}))
		case reflect.Uint64:
			v.SetUint(v.Uint() + 1)
		case reflect.Struct: // time.Time
			v.Set(reflect.ValueOf(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)))
		default:
			t.Fatalf("field %s: kind %s not covered by this test", f.Name, f.Type.Kind())
		}
		got, ok := decisionDigest(&rec)
		if !ok {
			t.Fatalf("field %s: no digest", f.Name)
		}
		if changed := got != want; changed == counters[f.Name] {
			t.Errorf("changing %s changes the digest: %v, want %v", f.Name, changed, !counters[f.Name])
		}
	}
	stale := *base
	stale.DecidedAt = time.Time{}
	if got, _ := decisionDigest(&stale); got == want {
		t.Error("a stale record (DecidedAt zero) has the digest of a fresh one")
	}
	// Values whose encodings could run together stay apart.
	pairs := [][2]map[string]any{
		{{"a": "bc"}, {"ab": "c"}},
		{{"n": float64(1)}, {"n": "1"}},
		{{"l": []any{"a", "b"}}, {"l": []any{"ab"}}},
		{{"l": []string{"a"}}, {"l": []any{"a"}}},
		{{"m": map[string]any{"a": true}}, {"m": map[string]any{"a": false}}},
		{{"x": nil}, {"x": ""}},
	}
	for _, p := range pairs {
		a, b := *base, *base
		a.Facts = map[string]map[string]any{"ns": p[0]}
		b.Facts = map[string]map[string]any{"ns": p[1]}
		da, _ := decisionDigest(&a)
		db, _ := decisionDigest(&b)
		if da == db {
			t.Errorf("facts %v and %v share a digest", p[0], p[1])
		}
	}
	// Map order does not matter.
	a, b := *base, *base
	a.Facts = map[string]map[string]any{"x": {"1": 1, "2": 2, "3": 3}, "y": {}}
	b.Facts = map[string]map[string]any{"y": {}, "x": {"3": 3, "2": 2, "1": 1}}
	if da, _ := decisionDigest(&a); da != func() [32]byte { d, _ := decisionDigest(&b); return d }() {
		t.Error("the same facts in another map order give another digest")
	}
	// A value that cannot be encoded is never a repeat.
	bad := *base
	bad.Facts = map[string]map[string]any{"ns": {"c": make(chan int)}}
	if _, ok := decisionDigest(&bad); ok {
		t.Error("a fact that has no encoding got a digest")
	}
}
