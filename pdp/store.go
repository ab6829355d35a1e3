package pdp

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
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
//
// A decision that differs from the stored one is on disk when Put returns.
// One that repeats it (decisionDigest), which is what the periodic
// re-authentication of an unchanged endpoint produces, changes only the
// facts it was made on and the counters (DecidedAt, Assessments). Put
// keeps such a record in memory, where Get and List see it at once, and
// writes it within flushDelay, together with the other repeats of that
// time in one transaction. A crash loses at most those facts and
// counters, never a decision.
type BoltStore struct {
	db     *bolt.DB
	writes *groupCommit // nil when read-only

	mu     sync.Mutex
	closed bool
	// known is what this process wrote of each endpoint, for the decision
	// digest and the counters; bounded by maxKnown.
	known map[string]*knownRecord
	// later holds repeats not yet written; flushing those being written.
	later, flushing map[string]*Record
	flushArmed      bool
}

// knownRecord is what BoltStore remembers of an endpoint it wrote.
type knownRecord struct {
	// digest is the decision (decisionDigest) of the last write committed;
	// committed says the counters below are those of the disk plus later.
	digest    [sha256.Size]byte
	committed bool
	// inflight counts writes of this endpoint queued or committing; while
	// there are any, the disk is about to change and no repeat is kept.
	inflight    int
	firstSeen   time.Time
	assessments uint64
}

const (
	// flushDelay is how long a repeated decision's counters may wait in
	// memory.
	flushDelay = time.Second
	// maxLater flushes at once when that many repeats wait.
	maxLater = 4096
	// maxKnown bounds the endpoints remembered; the others are read back
	// from disk on their next decision, as on the first.
	maxKnown = 1 << 17
)

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
		s.known = make(map[string]*knownRecord)
		s.later = make(map[string]*Record)
		s.flushing = make(map[string]*Record)
	}
	return s, nil
}

// Put implements Store. A new or changed decision is on disk when Put
// returns; concurrent ones share one transaction and one fsync
// (groupCommit), which keeps a burst of decisions from queueing behind the
// disk. A repeated decision returns at once and is written within
// flushDelay. Put keeps rec: the caller must not change it afterwards.
func (s *BoltStore) Put(rec *Record) error {
	if s.writes == nil {
		return bolt.ErrDatabaseReadOnly
	}
	digest := decisionDigest(rec)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errStoreClosed
	}
	k := s.known[rec.ID]
	counted := false
	if k != nil && k.committed && k.inflight == 0 {
		k.assessments++
		rec.Assessments = k.assessments
		if !k.firstSeen.IsZero() {
			rec.FirstSeen = k.firstSeen
		}
		if rec.FirstSeen.IsZero() {
			rec.FirstSeen = rec.DecidedAt
		}
		if k.digest == digest {
			s.later[rec.ID] = rec
			s.armFlush()
			s.mu.Unlock()
			return nil
		}
		counted = true
	}
	if k == nil {
		k = new(knownRecord)
		s.remember(rec.ID, k)
	}
	// This write supersedes the repeats of rec.ID not yet committed; it is
	// queued after them, so it also lands after them.
	delete(s.later, rec.ID)
	delete(s.flushing, rec.ID)
	k.inflight++
	firstSeen := rec.FirstSeen
	write := func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEndpoints)
		if !counted {
			// The counters carry over from the stored record. A shared
			// transaction may run this twice, so they are taken from it
			// each time.
			rec.Assessments, rec.FirstSeen = 1, firstSeen
			if old := b.Get([]byte(rec.ID)); old != nil {
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
			}
			if rec.FirstSeen.IsZero() {
				rec.FirstSeen = rec.DecidedAt
			}
		}
		v, err := json.Marshal(rec)
		if err != nil {
			return fmt.Errorf("pdp: encode record %s: %w", rec.ID, err)
		}
		return b.Put([]byte(rec.ID), v)
	}
	done := func(err error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		k.inflight--
		if err != nil {
			k.committed = false
			return
		}
		k.committed, k.digest = true, digest
		k.firstSeen, k.assessments = rec.FirstSeen, rec.Assessments
	}
	result := s.writes.enqueue(write, done)
	s.mu.Unlock()
	return <-result
}

// remember adds k for id, first forgetting an idle endpoint when there are
// maxKnown already. Called with s.mu held.
func (s *BoltStore) remember(id string, k *knownRecord) {
	if len(s.known) >= maxKnown {
		for old, ok := range s.known {
			if ok.inflight == 0 && s.later[old] == nil && s.flushing[old] == nil {
				delete(s.known, old)
				break
			}
		}
	}
	s.known[id] = k
}

// armFlush makes sure the repeats in later get written. Called with s.mu
// held.
func (s *BoltStore) armFlush() {
	if len(s.later) >= maxLater {
		s.flushArmed = true
		go s.flush()
		return
	}
	if !s.flushArmed {
		s.flushArmed = true
		time.AfterFunc(flushDelay, s.flush)
	}
}

// flush writes the repeats waiting in later, in one transaction. When that
// fails their counters are lost and the endpoints' next decisions are
// written through.
func (s *BoltStore) flush() {
	s.mu.Lock()
	s.flushArmed = false
	batch := s.later
	if len(batch) == 0 {
		s.mu.Unlock()
		return
	}
	s.later = make(map[string]*Record, len(batch))
	for id, rec := range batch {
		s.flushing[id] = rec
	}
	write := func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEndpoints)
		for id, rec := range batch {
			v, err := json.Marshal(rec)
			if err != nil {
				return fmt.Errorf("pdp: encode record %s: %w", id, err)
			}
			if err := b.Put([]byte(id), v); err != nil {
				return err
			}
		}
		return nil
	}
	done := func(err error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		for id, rec := range batch {
			if s.flushing[id] == rec {
				delete(s.flushing, id)
			}
			if k := s.known[id]; err != nil && k != nil {
				k.committed = false
			}
		}
	}
	result := s.writes.enqueue(write, done)
	s.mu.Unlock()
	<-result
}

// pending returns the record of id that is newer than the disk's, if any.
func (s *BoltStore) pending(id string) *Record {
	if s.writes == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.later[id]
	if rec == nil {
		rec = s.flushing[id]
	}
	if rec == nil {
		return nil
	}
	cp := *rec
	return &cp
}

// Get implements Store.
func (s *BoltStore) Get(id string) (*Record, error) {
	if rec := s.pending(id); rec != nil {
		return rec, nil
	}
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
	for i, rec := range recs {
		if p := s.pending(rec.ID); p != nil {
			recs[i] = p
		}
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].ID < recs[j].ID })
	return recs, err
}

// Close implements Store. Repeats waiting in memory and Puts still queued
// are committed first.
func (s *BoltStore) Close() error {
	if s.writes != nil {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.flush()
		s.writes.stop()
	}
	return s.db.Close()
}
