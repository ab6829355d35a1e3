package pdp

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func openTestStore(t *testing.T) *BoltStore {
	t.Helper()
	s, err := OpenBoltStore(filepath.Join(t.TempDir(), "state.db"), false, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Concurrent Puts all land, and the counters of a record written by many
// writers at once add up.
func TestGroupCommitConcurrentPuts(t *testing.T) {
	s := openTestStore(t)
	defer s.Close()
	const writers, each = 32, 20
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				now := time.Now().UTC()
				if err := s.Put(&Record{ID: fmt.Sprintf("mac:w%d-%d", w, i), Role: "admit", DecidedAt: now}); err != nil {
					t.Error(err)
				}
				if err := s.Put(&Record{ID: "mac:shared", Role: "admit", DecidedAt: now}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	recs, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != writers*each+1 {
		t.Fatalf("%d records, want %d", len(recs), writers*each+1)
	}
	shared, err := s.Get("mac:shared")
	if err != nil {
		t.Fatal(err)
	}
	if shared.Assessments != writers*each {
		t.Errorf("shared record counts %d assessments, want %d", shared.Assessments, writers*each)
	}
}

// A write that fails or panics gets its own error; the writes that shared
// its transaction are committed all the same.
func TestGroupCommitFailureIsolated(t *testing.T) {
	s := openTestStore(t)
	defer s.Close()
	boom := errors.New("boom")
	var wg sync.WaitGroup
	errs := make([]error, 30)
	for i := range errs {
		wg.Go(func() {
			switch i % 3 {
			case 0:
				errs[i] = s.writes.do(func(*bolt.Tx) error { return boom })
			case 1:
				errs[i] = s.writes.do(func(*bolt.Tx) error { panic("bad write") })
			default:
				errs[i] = s.Put(&Record{ID: fmt.Sprintf("id:%d", i), Role: "isolate", DecidedAt: time.Now()})
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		switch i % 3 {
		case 0:
			if !errors.Is(err, boom) {
				t.Errorf("write %d: %v, want boom", i, err)
			}
		case 1:
			if err == nil {
				t.Errorf("write %d: a panicking write reported no error", i)
			}
		default:
			if err != nil {
				t.Errorf("write %d: %v", i, err)
			} else if _, err := s.Get(fmt.Sprintf("id:%d", i)); err != nil {
				t.Errorf("record %d lost: %v", i, err)
			}
		}
	}
}

// Close commits what was queued; a Put after Close fails instead of
// blocking, and a read-only store refuses Puts.
func TestGroupCommitClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := OpenBoltStore(path, false, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(&Record{ID: "mac:a", Role: "admit", DecidedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(&Record{ID: "mac:b", Role: "admit"}); !errors.Is(err, errStoreClosed) {
		t.Errorf("Put after Close: %v, want %v", err, errStoreClosed)
	}
	ro, err := OpenBoltStore(path, true, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, err := ro.Get("mac:a"); err != nil {
		t.Errorf("record written before Close: %v", err)
	}
	if err := ro.Put(&Record{ID: "mac:c", Role: "admit"}); err == nil {
		t.Error("a read-only store accepted a Put")
	}
}
