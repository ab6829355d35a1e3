package pdp

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Record is what the PDP knows of one endpoint: its latest decision, the
// facts it was made on and why.
type Record struct {
	ID       string `json:"id"`
	MAC      string `json:"mac,omitempty"`
	Identity string `json:"identity,omitempty"`
	Channel  string `json:"channel,omitempty"`
	Remote   string `json:"remote,omitempty"`

	Role           string   `json:"role"`
	Rule           string   `json:"rule,omitempty"`
	Groups         []string `json:"groups,omitempty"`
	Recommendation string   `json:"recommendation"`
	Reasons        []string `json:"reasons,omitempty"`
	Remediation    []string `json:"remediation,omitempty"`
	// Facts are those the decision was made on, by namespace.
	Facts map[string]map[string]any `json:"facts,omitempty"`
	// Policy is the digest of the policy file that decided.
	Policy string `json:"policy,omitempty"`

	FirstSeen   time.Time `json:"first_seen"`
	DecidedAt   time.Time `json:"decided_at"`
	Assessments uint64    `json:"assessments"`
}

// Store keeps endpoint records. The embedded implementation is BoltStore;
// a cluster of PDPs shares one through etcd.
type Store interface {
	// Put saves rec, keeping FirstSeen and counting Assessments across
	// saves of the same ID.
	Put(rec *Record) error
	// Get returns the record of id, or ErrNotFound.
	Get(id string) (*Record, error)
	// List returns all records ordered by ID.
	List() ([]*Record, error)
	Close() error
}

// ErrNotFound is returned by Store.Get for an unknown endpoint.
var ErrNotFound = errors.New("pdp: endpoint not found")

var bucketEndpoints = []byte("endpoints")

// BoltStore is the embedded Store, one bbolt file.
type BoltStore struct {
	db     *bolt.DB
	writes *groupCommit // nil when read-only
}

// OpenBoltStore opens or creates the store file at path. It fails after
// timeout when another process holds the file.
func OpenBoltStore(path string, readOnly bool, timeout time.Duration) (*BoltStore, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout, ReadOnly: readOnly})
	if err != nil {
		return nil, fmt.Errorf("pdp: open store %s: %w", path, err)
	}
	if !readOnly {
		err = db.Update(func(tx *bolt.Tx) error {
			_, err := tx.CreateBucketIfNotExists(bucketEndpoints)
			return err
		})
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("pdp: init store %s: %w", path, err)
		}
	}
	s := &BoltStore{db: db}
	if !readOnly {
		s.writes = newGroupCommit(db)
	}
	return s, nil
}

// Put implements Store. The record is on disk when Put returns. Concurrent
// Puts share one transaction and one fsync (groupCommit), which keeps a burst
// of decisions from queueing behind the disk, and a lone Put waits for no
// timer.
func (s *BoltStore) Put(rec *Record) error {
	if s.writes == nil {
		return bolt.ErrDatabaseReadOnly
	}
	return s.writes.do(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEndpoints)
		if old := b.Get([]byte(rec.ID)); old != nil {
			// Only the counters carry over; a shared transaction may
			// run this twice, so they are taken from the stored record
			// each time.
			var prev struct {
				FirstSeen   time.Time `json:"first_seen"`
				Assessments uint64    `json:"assessments"`
			}
			if err := json.Unmarshal(old, &prev); err == nil {
				if !prev.FirstSeen.IsZero() {
					rec.FirstSeen = prev.FirstSeen
				}
				rec.Assessments = prev.Assessments + 1
			}
		} else {
			rec.Assessments = 1
		}
		if rec.FirstSeen.IsZero() {
			rec.FirstSeen = rec.DecidedAt
		}
		v, err := json.Marshal(rec)
		if err != nil {
			return fmt.Errorf("pdp: encode record %s: %w", rec.ID, err)
		}
		return b.Put([]byte(rec.ID), v)
	})
}

// Get implements Store.
func (s *BoltStore) Get(id string) (*Record, error) {
	var rec *Record
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEndpoints)
		if b == nil {
			return ErrNotFound
		}
		v := b.Get([]byte(id))
		if v == nil {
			return ErrNotFound
		}
		rec = new(Record)
		return json.Unmarshal(v, rec)
	})
	if err != nil {
		return nil, err
	}
	return rec, nil
}

// List implements Store.
func (s *BoltStore) List() ([]*Record, error) {
	var recs []*Record
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEndpoints)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			rec := new(Record)
			if err := json.Unmarshal(v, rec); err != nil {
				return fmt.Errorf("pdp: decode record %q: %w", k, err)
			}
			recs = append(recs, rec)
			return nil
		})
	})
	sort.Slice(recs, func(i, j int) bool { return recs[i].ID < recs[j].ID })
	return recs, err
}

// Close implements Store. Puts still queued are committed first.
func (s *BoltStore) Close() error {
	if s.writes != nil {
		s.writes.stop()
	}
	return s.db.Close()
}
