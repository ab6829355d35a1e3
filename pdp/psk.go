package pdp

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	smkeyimv "trustnac/imv/smkey"
	tpmimv "trustnac/imv/tpm"
	"trustnac/transport/smdtls"
)

// PSKs of the SM channel (DESIGN.md, "The SM channel"): one per endpoint,
// issued at enrollment and delivered wrapped to the endpoint's TPM
// (credential activation) or to an SM2 public key the admin registered.
// They live in the store file, bucket "psk", keyed by identity.

// PSK kinds (PSK.Kind).
const (
	PSKKindTPM = "tpm" // delivered by TPM credential activation
	PSKKindSM2 = "sm2" // delivered SM2-encrypted to a registered key
)

// Bounds and defaults of the PSK store.
const (
	// PSKKeyLen is the size of every PSK: 32 random bytes.
	PSKKeyLen = 32
	// PSKIdentityPrefix starts every PSK identity; 16 random hex digits
	// follow.
	PSKIdentityPrefix = "trustnac-psk-"
	// DefaultPSKLifetime is the lifetime Issue gives for 0.
	DefaultPSKLifetime = 30 * 24 * time.Hour
	// MinPSKLifetime is the shortest lifetime Issue accepts.
	MinPSKLifetime = time.Minute
	// MaxPSKsPerEndpoint caps the unrevoked, unexpired PSKs of one
	// endpoint: issuing one more revokes the oldest.
	MaxPSKsPerEndpoint = 4
)

// Errors of the PSK store callers test.
var (
	// ErrPSKNotFound: no PSK has this identity.
	ErrPSKNotFound = errors.New("pdp: PSK not found")
	// ErrPSKRequest: Issue was called with an empty endpoint or AK name,
	// an unknown kind or a lifetime below MinPSKLifetime.
	ErrPSKRequest = errors.New("pdp: bad PSK request")
)

// Buckets: PSK records by identity, and an index of identities by
// endpoint (endpoint NUL identity → empty), so that Issue and
// RevokeEndpoint read only the endpoint's records.
var (
	bucketPSK         = []byte("psk")
	bucketPSKEndpoint = []byte("psk_endpoint")
)

// PSK is what the store knows of one pre-shared key of the SM channel. The
// key itself is stored beside it but is not part of it, so no PSK value,
// JSON or log line carries the key.
type PSK struct {
	// Identity is the PSK identity sent in the DTLS handshake (RFC 4279
	// §2): PSKIdentityPrefix and 16 random hex digits.
	Identity string `json:"identity"`
	// Endpoint is the endpoint ID the PDP keys records by.
	Endpoint string `json:"endpoint"`
	// Kind is PSKKindTPM or PSKKindSM2.
	Kind string `json:"kind"`
	// AKName is the attestation key the PSK was wrapped for, as the AK
	// store names it ("sha256:<hex>", kind tpm), or the SM2 key's
	// fingerprint ("sm3:<hex>", kind sm2).
	AKName  string    `json:"ak_name"`
	Issued  time.Time `json:"issued"`
	Expires time.Time `json:"expires"`
	Revoked bool      `json:"revoked,omitempty"`
}

// valid reports whether the PSK may be used at now.
func (p *PSK) valid(now time.Time) bool { return !p.Revoked && now.Before(p.Expires) }

// pskRecord is the stored form: the PSK and its key.
type pskRecord struct {
	PSK
	Key []byte `json:"key"`
}

// PSKStore keeps the PSKs of the SM channel in the BoltStore's file. It
// implements smdtls.PSKStore. Safe for concurrent use.
type PSKStore struct {
	db *bolt.DB
	// Now is the clock; time.Now when nil. Set it before use.
	Now func() time.Time
}

var _ smdtls.PSKStore = (*PSKStore)(nil)

// NewPSKStore returns the PSK store in s's file.
func NewPSKStore(s *BoltStore) *PSKStore { return &PSKStore{db: s.db} }

// PSKs returns the PSK store in s's file (NewPSKStore).
func (s *BoltStore) PSKs() *PSKStore { return NewPSKStore(s) }

func (s *PSKStore) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Issue gives endpoint a PSK of kind for akName (the AK name of kind tpm,
// the key fingerprint of kind sm2), valid for lifetime (0 means
// DefaultPSKLifetime), and its key.
//
// Rotation: when the endpoint already holds a valid PSK of the same kind
// for the same AK or key that is younger than half its lifetime, Issue
// returns that PSK and its key again (re-wrapping it to the same TPM or
// key is harmless, and an agent that lost its key file gets it back);
// otherwise it issues a new one, and the older ones stay valid until they
// expire or are revoked. A PSK for another AK or key is never reused. At
// most MaxPSKsPerEndpoint stay valid: the oldest beyond that are revoked.
// Records that expired more than a lifetime ago are deleted.
func (s *PSKStore) Issue(endpoint, kind, akName string, lifetime time.Duration) (*PSK, []byte, error) {
	if lifetime == 0 {
		lifetime = DefaultPSKLifetime
	}
	switch {
	case endpoint == "" || akName == "":
		return nil, nil, fmt.Errorf("%w: endpoint and AK name are required", ErrPSKRequest)
	case strings.IndexByte(endpoint, 0) >= 0:
		return nil, nil, fmt.Errorf("%w: endpoint with a NUL byte", ErrPSKRequest)
	case kind != PSKKindTPM && kind != PSKKindSM2:
		return nil, nil, fmt.Errorf("%w: kind %q", ErrPSKRequest, kind)
	case lifetime < MinPSKLifetime:
		return nil, nil, fmt.Errorf("%w: lifetime %v below %v", ErrPSKRequest, lifetime, MinPSKLifetime)
	}
	now := s.now().UTC().Truncate(time.Second)
	var out *pskRecord // found and written in one read-write transaction, which bbolt serialises
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketPSK)
		if err != nil {
			return err
		}
		if _, err := tx.CreateBucketIfNotExists(bucketPSKEndpoint); err != nil {
			return err
		}
		all, err := endpointPSKs(tx, endpoint)
		if err != nil {
			return err
		}
		var mine []*pskRecord // this endpoint's valid PSKs
		for _, rec := range all {
			switch {
			case !rec.Expires.After(now.Add(-lifetime)):
				if err := deletePSK(tx, rec); err != nil {
					return err
				}
			case rec.valid(now):
				mine = append(mine, rec)
			}
		}
		sort.Slice(mine, func(i, j int) bool { return mine[i].Issued.After(mine[j].Issued) })
		for _, rec := range mine {
			if rec.Kind == kind && rec.AKName == akName && now.Sub(rec.Issued) < rec.Expires.Sub(rec.Issued)/2 {
				out = rec
				return nil
			}
		}
		rec, err := newPSKRecord(endpoint, kind, akName, now, lifetime)
		if err != nil {
			return err
		}
		for b.Get([]byte(rec.Identity)) != nil { // 64 random bits: never in practice
			if rec, err = newPSKRecord(endpoint, kind, akName, now, lifetime); err != nil {
				return err
			}
		}
		if err := putPSK(tx, rec); err != nil {
			return err
		}
		for _, old := range mine[min(len(mine), MaxPSKsPerEndpoint-1):] {
			old.Revoked = true
			if err := putPSK(tx, old); err != nil {
				return err
			}
		}
		out = rec
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("pdp: issue PSK: %w", err)
	}
	psk := out.PSK
	return &psk, out.Key, nil
}

// newPSKRecord makes a PSK with a random identity and key.
func newPSKRecord(endpoint, kind, akName string, now time.Time, lifetime time.Duration) (*pskRecord, error) {
	var id [8]byte
	key := make([]byte, PSKKeyLen)
	if _, err := rand.Read(id[:]); err != nil {
		return nil, err
	}
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	return &pskRecord{
		PSK: PSK{Identity: PSKIdentityPrefix + hex.EncodeToString(id[:]), Endpoint: endpoint, Kind: kind,
			AKName: akName, Issued: now, Expires: now.Add(lifetime)},
		Key: key,
	}, nil
}

// pskIndexKey is the key of a PSK in the endpoint index.
func pskIndexKey(endpoint, identity string) []byte {
	return []byte(endpoint + "\x00" + identity)
}

// putPSK writes a record and its index entry; the buckets must exist.
func putPSK(tx *bolt.Tx, rec *pskRecord) error {
	v, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if err := tx.Bucket(bucketPSK).Put([]byte(rec.Identity), v); err != nil {
		return err
	}
	return tx.Bucket(bucketPSKEndpoint).Put(pskIndexKey(rec.Endpoint, rec.Identity), nil)
}

// deletePSK deletes a record and its index entry.
func deletePSK(tx *bolt.Tx, rec *pskRecord) error {
	if err := tx.Bucket(bucketPSK).Delete([]byte(rec.Identity)); err != nil {
		return err
	}
	return tx.Bucket(bucketPSKEndpoint).Delete(pskIndexKey(rec.Endpoint, rec.Identity))
}

// endpointPSKs reads the records of endpoint through the index.
func endpointPSKs(tx *bolt.Tx, endpoint string) ([]*pskRecord, error) {
	idx := tx.Bucket(bucketPSKEndpoint)
	if idx == nil {
		return nil, nil
	}
	prefix := pskIndexKey(endpoint, "")
	var out []*pskRecord
	c := idx.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		rec, err := getPSK(tx, string(k[len(prefix):]))
		if errors.Is(err, ErrPSKNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, nil
}

// getPSK reads the record of identity in tx; ErrPSKNotFound when absent.
func getPSK(tx *bolt.Tx, identity string) (*pskRecord, error) {
	b := tx.Bucket(bucketPSK)
	if b == nil {
		return nil, ErrPSKNotFound
	}
	v := b.Get([]byte(identity))
	if v == nil {
		return nil, ErrPSKNotFound
	}
	rec := new(pskRecord)
	if err := json.Unmarshal(v, rec); err != nil {
		return nil, fmt.Errorf("pdp: decode PSK %q: %w", identity, err)
	}
	return rec, nil
}

// PSK implements smdtls.PSKStore: the key of a valid identity. An unknown,
// revoked or expired identity, and one whose AK the AK store has revoked
// since, is an error wrapping smdtls.ErrUnknownIdentity; the error never
// carries the key.
func (s *PSKStore) PSK(identity []byte) ([]byte, error) {
	if !strings.HasPrefix(string(identity), PSKIdentityPrefix) || len(identity) > 128 {
		return nil, fmt.Errorf("%w: not a trustnac PSK identity", smdtls.ErrUnknownIdentity)
	}
	now := s.now()
	var key []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		rec, err := getPSK(tx, string(identity))
		switch {
		case errors.Is(err, ErrPSKNotFound):
			return fmt.Errorf("%w: %s", smdtls.ErrUnknownIdentity, identity)
		case err != nil:
			return err
		case rec.Revoked:
			return fmt.Errorf("%w: %s is revoked", smdtls.ErrUnknownIdentity, identity)
		case !now.Before(rec.Expires):
			return fmt.Errorf("%w: %s expired at %s", smdtls.ErrUnknownIdentity, identity, rec.Expires.Format(time.RFC3339))
		}
		if rec.Kind == PSKKindTPM && akRevoked(tx, rec.AKName) {
			return fmt.Errorf("%w: %s: its attestation key is revoked", smdtls.ErrUnknownIdentity, identity)
		}
		key = rec.Key
		return nil
	})
	if err != nil {
		return nil, err
	}
	return key, nil
}

// akRevoked reports whether the AK store in tx holds name as revoked.
func akRevoked(tx *bolt.Tx, name string) bool {
	b := tx.Bucket(bucketAKs)
	if b == nil {
		return false
	}
	v := b.Get([]byte(name))
	if v == nil {
		return false
	}
	var rec tpmimv.AKRecord
	if err := json.Unmarshal(v, &rec); err != nil {
		return true // fail closed
	}
	return rec.Status == tpmimv.StatusRevoked
}

// Lookup returns the PSK of identity, revoked and expired ones included,
// or ErrPSKNotFound.
func (s *PSKStore) Lookup(identity string) (*PSK, error) {
	var out *PSK
	err := s.db.View(func(tx *bolt.Tx) error {
		rec, err := getPSK(tx, identity)
		if err != nil {
			return err
		}
		out = &rec.PSK
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RevokeEndpoint revokes every PSK of endpoint and returns how many were
// not revoked before.
func (s *PSKStore) RevokeEndpoint(endpoint string) (int, error) {
	return s.revoke(func(tx *bolt.Tx) ([]*pskRecord, error) { return endpointPSKs(tx, endpoint) })
}

// RevokeAK revokes every PSK wrapped for the AK (or SM2 key fingerprint)
// akName and returns how many were not revoked before. PSK also refuses
// the PSKs of an AK the AK store marks revoked, so an AK revoked without
// RevokeAK cannot use its PSKs either.
func (s *PSKStore) RevokeAK(akName string) (int, error) {
	return s.revoke(func(tx *bolt.Tx) ([]*pskRecord, error) {
		var out []*pskRecord
		err := tx.Bucket(bucketPSK).ForEach(func(k, v []byte) error {
			rec := new(pskRecord)
			if err := json.Unmarshal(v, rec); err != nil {
				return fmt.Errorf("pdp: decode PSK %q: %w", k, err)
			}
			if rec.AKName == akName {
				out = append(out, rec)
			}
			return nil
		})
		return out, err
	})
}

// revoke revokes the unrevoked records that find returns.
func (s *PSKStore) revoke(find func(tx *bolt.Tx) ([]*pskRecord, error)) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketPSK) == nil || tx.Bucket(bucketPSKEndpoint) == nil {
			return nil
		}
		recs, err := find(tx)
		if err != nil {
			return err
		}
		for _, rec := range recs {
			if rec.Revoked {
				continue
			}
			rec.Revoked = true
			if err := putPSK(tx, rec); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("pdp: revoke PSKs: %w", err)
	}
	return n, nil
}

// List returns every PSK, without keys, ordered by endpoint and then by
// issue time.
func (s *PSKStore) List() ([]*PSK, error) {
	var out []*PSK
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPSK)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			rec := new(pskRecord)
			if err := json.Unmarshal(v, rec); err != nil {
				return fmt.Errorf("pdp: decode PSK %q: %w", k, err)
			}
			p := rec.PSK
			out = append(out, &p)
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool {
		if out[i].Endpoint != out[j].Endpoint {
			return out[i].Endpoint < out[j].Endpoint
		}
		if !out[i].Issued.Equal(out[j].Issued) {
			return out[i].Issued.Before(out[j].Issued)
		}
		return out[i].Identity < out[j].Identity
	})
	return out, err
}

// PSKIssuer adapts the store to the issuer interfaces of the verifiers
// (tpmimv.Config.PSKIssuer with Kind PSKKindTPM, smkeyimv.Config.Issuer
// with Kind PSKKindSM2, AK name being the key fingerprint): IssuePSK issues a PSK of Kind with Lifetime.
type PSKIssuer struct {
	Store    *PSKStore
	Kind     string
	Lifetime time.Duration // 0 means DefaultPSKLifetime
}

var (
	_ tpmimv.PSKIssuer   = PSKIssuer{}
	_ smkeyimv.PSKIssuer = PSKIssuer{}
)

// IssuePSK issues (or re-delivers, see PSKStore.Issue) endpoint's PSK for
// akName.
func (i PSKIssuer) IssuePSK(endpoint, akName string) (identity string, key []byte, expires time.Time, err error) {
	p, key, err := i.Store.Issue(endpoint, i.Kind, akName, i.Lifetime)
	if err != nil {
		return "", nil, time.Time{}, err
	}
	return p.Identity, key, p.Expires, nil
}
