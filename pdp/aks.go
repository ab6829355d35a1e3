package pdp

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"

	tpmimv "trustnac/imv/tpm"
)

var bucketAKs = []byte("aks")

var _ tpmimv.AKStore = (*BoltStore)(nil)

// GetAK implements tpmimv.AKStore.
func (s *BoltStore) GetAK(name string) (*tpmimv.AKRecord, error) {
	var rec *tpmimv.AKRecord
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAKs)
		if b == nil {
			return tpmimv.ErrUnknownAK
		}
		v := b.Get([]byte(name))
		if v == nil {
			return tpmimv.ErrUnknownAK
		}
		rec = new(tpmimv.AKRecord)
		return json.Unmarshal(v, rec)
	})
	if err != nil {
		return nil, err
	}
	return rec, nil
}

// PutAK implements tpmimv.AKStore.
func (s *BoltStore) PutAK(rec *tpmimv.AKRecord) error {
	v, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("pdp: encode AK %s: %w", rec.Name, err)
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketAKs)
		if err != nil {
			return err
		}
		return b.Put([]byte(rec.Name), v)
	})
}

// ListAKs returns the enrolled attestation keys ordered by name.
func (s *BoltStore) ListAKs() ([]*tpmimv.AKRecord, error) {
	var recs []*tpmimv.AKRecord
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAKs)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			rec := new(tpmimv.AKRecord)
			if err := json.Unmarshal(v, rec); err != nil {
				return fmt.Errorf("pdp: decode AK %q: %w", k, err)
			}
			recs = append(recs, rec)
			return nil
		})
	})
	sort.Slice(recs, func(i, j int) bool { return recs[i].Name < recs[j].Name })
	return recs, err
}

// AK statuses an admin sets.
const (
	AKApproved = "approved"
	AKRevoked  = "revoked"
)

// ErrBadStatus is returned by SetAKStatus for a status an admin cannot set.
var ErrBadStatus = errors.New("pdp: status must be approved or revoked")

// SetAKStatus approves or revokes an attestation key. Only a key the PDP has
// seen can be approved: it must have been presented once, so the PDP knows
// its public area.
func (s *BoltStore) SetAKStatus(name, status string, now time.Time) (*tpmimv.AKRecord, error) {
	if status != AKApproved && status != AKRevoked {
		return nil, ErrBadStatus
	}
	var out *tpmimv.AKRecord
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAKs)
		if b == nil {
			return tpmimv.ErrUnknownAK
		}
		v := b.Get([]byte(name))
		if v == nil {
			return tpmimv.ErrUnknownAK
		}
		rec := new(tpmimv.AKRecord)
		if err := json.Unmarshal(v, rec); err != nil {
			return err
		}
		if status == AKApproved && rec.Status != AKApproved {
			rec.Method = "manual"
			rec.EnrolledAt = now
		}
		rec.Status = status
		nv, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		out = rec
		return b.Put([]byte(name), nv)
	})
	return out, err
}
