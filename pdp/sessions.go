package pdp

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Session is one network session a NAS reported in RADIUS accounting (RFC 2866): which NAS and
// port holds an endpoint, so that a later change of its role can reach it by CoA (RFC 5176).
type Session struct {
	NAS      string     `json:"nas"`      // name of the RADIUS client in the configuration
	NASAddr  netip.Addr `json:"nas_addr"` // where CoA goes: NAS-IP-Address, else the source address
	NASID    string     `json:"nas_identifier,omitempty"`
	ID       string     `json:"acct_session_id"` // Acct-Session-Id
	MAC      string     `json:"mac,omitempty"`   // Calling-Station-Id, normalised
	IP       netip.Addr `json:"ip,omitzero"`     // Framed-IP-Address
	User     string     `json:"user,omitempty"`
	Port     string     `json:"port,omitempty"` // NAS-Port-Id, else NAS-Port
	Endpoint string     `json:"endpoint"`       // endpoint ID the PDP decided on
	Role     string     `json:"role,omitempty"` // role the NAS was last told
	Started  time.Time  `json:"started"`
	Updated  time.Time  `json:"updated"`
	Interims uint64     `json:"interims,omitempty"`
}

func (s *Session) key() string { return s.NAS + "\x00" + s.ID }

var bucketSessions = []byte("sessions")

// SessionStore persists sessions. BoltStore implements it.
type SessionStore interface {
	PutSession(s *Session) error
	DeleteSession(nas, id string) error
	ListSessions() ([]*Session, error)
}

// PutSession implements SessionStore.
func (s *BoltStore) PutSession(sess *Session) error {
	v, err := json.Marshal(sess)
	if err != nil {
		return fmt.Errorf("pdp: encode session: %w", err)
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketSessions)
		if err != nil {
			return err
		}
		return b.Put([]byte(sess.key()), v)
	})
}

// DeleteSession implements SessionStore.
func (s *BoltStore) DeleteSession(nas, id string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketSessions); b != nil {
			return b.Delete([]byte(nas + "\x00" + id))
		}
		return nil
	})
}

// ListSessions implements SessionStore.
func (s *BoltStore) ListSessions() ([]*Session, error) {
	var out []*Session
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSessions)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			sess := new(Session)
			if err := json.Unmarshal(v, sess); err != nil {
				return fmt.Errorf("pdp: decode session %q: %w", k, err)
			}
			out = append(out, sess)
			return nil
		})
	})
	return out, err
}

// SessionTable is the PDP's view of the sessions NASes hold, indexed by MAC and IP, backed by a
// SessionStore so it survives restarts. Safe for concurrent use.
type SessionTable struct {
	store SessionStore // nil: memory only
	mu    sync.Mutex
	byKey map[string]*Session
}

// NewSessionTable loads the sessions of store (which may be nil).
func NewSessionTable(store SessionStore) (*SessionTable, error) {
	t := &SessionTable{store: store, byKey: map[string]*Session{}}
	if store == nil {
		return t, nil
	}
	all, err := store.ListSessions()
	if err != nil {
		return nil, err
	}
	for _, s := range all {
		t.byKey[s.key()] = s
	}
	return t, nil
}

// Put records or updates a session.
func (t *SessionTable) Put(s *Session) error {
	t.mu.Lock()
	if old, ok := t.byKey[s.key()]; ok {
		s.Started = old.Started
		s.Interims += old.Interims // the caller sets 1 for an Interim-Update
		if s.Role == "" {
			s.Role = old.Role
		}
	}
	cp, saved := *s, *s // the table's own, and one to save outside the lock
	t.byKey[s.key()] = &cp
	t.mu.Unlock()
	if t.store != nil {
		return t.store.PutSession(&saved)
	}
	return nil
}

// Delete removes a session; unknown sessions are not an error.
func (t *SessionTable) Delete(nas, id string) error {
	t.mu.Lock()
	delete(t.byKey, nas+"\x00"+id)
	t.mu.Unlock()
	if t.store != nil {
		return t.store.DeleteSession(nas, id)
	}
	return nil
}

// DeleteNAS removes every session of a NAS (Accounting-On/Off: it rebooted).
func (t *SessionTable) DeleteNAS(nas string) error {
	t.mu.Lock()
	var gone []string
	for k, s := range t.byKey {
		if s.NAS == nas {
			gone = append(gone, s.ID)
			delete(t.byKey, k)
		}
	}
	t.mu.Unlock()
	if t.store == nil {
		return nil
	}
	for _, id := range gone {
		if err := t.store.DeleteSession(nas, id); err != nil {
			return err
		}
	}
	return nil
}

// Find returns copies of the sessions of an endpoint, matched by MAC (when mac is not "") or by
// IP address (when ip is valid).
func (t *SessionTable) Find(mac string, ip netip.Addr) []Session {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Session
	for _, s := range t.byKey {
		if (mac != "" && s.MAC == mac) || (ip.IsValid() && s.IP == ip) {
			out = append(out, *s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key() < out[j].key() })
	return out
}

// SetRole records the role a session's NAS was told.
func (t *SessionTable) SetRole(nas, id, role string) {
	t.mu.Lock()
	s, ok := t.byKey[nas+"\x00"+id]
	if ok {
		s.Role = role
	}
	var cp Session
	if ok {
		cp = *s
	}
	t.mu.Unlock()
	if ok && t.store != nil {
		t.store.PutSession(&cp)
	}
}

// All returns copies of all sessions ordered by NAS and session ID.
func (t *SessionTable) All() []Session {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Session, 0, len(t.byKey))
	for _, s := range t.byKey {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key() < out[j].key() })
	return out
}
