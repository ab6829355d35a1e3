package tpmimv

import (
	"errors"
	"sync"
	"time"
)

// AK statuses (AKRecord.Status).
const (
	StatusApproved = "approved" // trusted: its quotes count
	StatusPending  = "pending"  // seen, not trusted until an admin approves it
	StatusRevoked  = "revoked"  // never trusted again
)

// Enrollment methods (AKRecord.Method, the tpm.enrollment fact).
const (
	// MethodEKCert: credential activation with an EK whose certificate
	// chains to Config.EKRoots.
	MethodEKCert = "ek-cert"
	// MethodCredential: credential activation with an EK without a
	// certificate the verifier accepts; the AK stays pending.
	MethodCredential = "credential"
	// MethodTOFU: credential activation without an EK certificate check,
	// where the policy allows trust on first use.
	MethodTOFU = "tofu"
	// MethodManual: approved by an admin.
	MethodManual = "manual"
)

// AKRecord is what the PDP keeps about one attestation key.
type AKRecord struct {
	Name       string // "sha256:<hex>": nameAlg and the digest part of the AK's name
	Public     []byte // TPMT_PUBLIC
	EKPublic   []byte // TPMT_PUBLIC of the EK the AK was activated with, if any
	EKCert     []byte // that EK's certificate (DER), if it had one
	EndpointID string
	Status     string // StatusApproved, StatusPending, StatusRevoked
	Method     string // MethodEKCert, MethodCredential, MethodTOFU, MethodManual, "" for none
	// The last quote's TPMS_CLOCK_INFO, for monotonicity.
	Clock                    uint64
	ResetCount, RestartCount uint32
	EnrolledAt, LastSeen     time.Time
}

// AKStore keeps AK records. The PDP's store implements it; NewMemAKStore
// is one in memory.
type AKStore interface {
	// GetAK returns the record of an AK name; ErrUnknownAK when absent.
	GetAK(name string) (*AKRecord, error)
	// PutAK creates or replaces the record of rec.Name.
	PutAK(rec *AKRecord) error
}

// ErrUnknownAK is returned by AKStore.GetAK for an AK it has no record of.
var ErrUnknownAK = errors.New("tpmimv: unknown attestation key")

// MemAKStore is an AKStore in memory, for tests and single-run tools.
type MemAKStore struct {
	mu   sync.Mutex
	recs map[string]AKRecord
}

// NewMemAKStore returns an empty MemAKStore.
func NewMemAKStore() *MemAKStore { return &MemAKStore{recs: map[string]AKRecord{}} }

// GetAK implements AKStore; it returns a copy.
func (m *MemAKStore) GetAK(name string) (*AKRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, ok := m.recs[name]
	if !ok {
		return nil, ErrUnknownAK
	}
	return &rec, nil
}

// PutAK implements AKStore; it keeps a copy.
func (m *MemAKStore) PutAK(rec *AKRecord) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recs[rec.Name] = *rec
	return nil
}
