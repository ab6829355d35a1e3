package radius

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"time"
)

// The reply cache of RFC 5080 §2.2.2: a request is identified by its source
// address and port, Identifier and Request Authenticator. While it is being
// handled a retransmission is dropped; once answered a retransmission gets
// the same reply bytes again. The cache is sharded so that the read loop
// and the handlers do not share one lock.

const cacheShards = 64

type cacheKey struct {
	addr [16]byte
	port uint16
	id   byte
	auth [16]byte
}

func makeCacheKey(from netip.AddrPort, pkt []byte) cacheKey {
	k := cacheKey{addr: from.Addr().As16(), port: from.Port(), id: pkt[1]}
	copy(k.auth[:], pkt[4:headerLen])
	return k
}

type cacheEntry struct {
	key     cacheKey
	reply   []byte // nil while in progress
	done    bool
	expires int64 // unix nanoseconds; only for done entries
}

type cacheShard struct {
	mu   sync.Mutex
	m    map[cacheKey]*cacheEntry
	q    []*cacheEntry // insertion order, may hold stale entries
	head int
	_    [40]byte // keep shards on separate cache lines
}

type replyCache struct {
	ttl      int64
	perShard int
	shards   [cacheShards]cacheShard
}

func newReplyCache(ttl time.Duration, size int) *replyCache {
	return &replyCache{ttl: int64(ttl), perShard: max(1, size/cacheShards)}
}

func (c *replyCache) shard(k *cacheKey) *cacheShard {
	h := binary.LittleEndian.Uint32(k.auth[:4]) ^ uint32(k.port) ^ uint32(k.id)<<16
	return &c.shards[h%cacheShards]
}

// cacheState is the outcome of begin.
type cacheState int

const (
	cacheNew        cacheState = iota // caller handles the request
	cacheInProgress                   // a retransmission of a request being handled
	cacheAnswered                     // a retransmission of an answered request
)

// begin looks k up at time now. For a new request it records an
// in-progress entry and returns it; for an answered one it returns the
// cached reply.
func (c *replyCache) begin(k cacheKey, now int64) (*cacheEntry, []byte, cacheState) {
	s := c.shard(&k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[cacheKey]*cacheEntry)
	}
	s.expire(now)
	if e, ok := s.m[k]; ok {
		if !e.done {
			return nil, nil, cacheInProgress
		}
		if e.expires > now {
			return nil, e.reply, cacheAnswered
		}
		delete(s.m, k)
	}
	for len(s.m) >= c.perShard && s.head < len(s.q) {
		s.pop()
	}
	e := &cacheEntry{key: k}
	s.m[k] = e
	s.q = append(s.q, e)
	if len(s.q)-s.head > 2*c.perShard+64 {
		s.compact()
	}
	return e, nil, cacheNew
}

// finish stores the reply of e, kept until now+ttl.
func (c *replyCache) finish(e *cacheEntry, reply []byte, now int64) {
	s := c.shard(&e.key)
	s.mu.Lock()
	if s.m[e.key] == e {
		e.reply = reply
		e.done = true
		e.expires = now + c.ttl
	}
	s.mu.Unlock()
}

// abort forgets e so that a retransmission is handled afresh.
func (c *replyCache) abort(e *cacheEntry) {
	s := c.shard(&e.key)
	s.mu.Lock()
	if s.m[e.key] == e {
		delete(s.m, e.key)
	}
	s.mu.Unlock()
}

// len returns the number of entries (for tests).
func (c *replyCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

// expire drops answered entries past their time from the front of the
// queue. It stops at the first live entry still valid or in progress.
func (s *cacheShard) expire(now int64) {
	for s.head < len(s.q) {
		e := s.q[s.head]
		if s.m[e.key] == e && (!e.done || e.expires > now) {
			return
		}
		s.pop()
	}
}

// pop removes the oldest queued entry.
func (s *cacheShard) pop() {
	e := s.q[s.head]
	s.q[s.head] = nil
	s.head++
	if s.m[e.key] == e {
		delete(s.m, e.key)
	}
	if s.head == len(s.q) {
		s.q, s.head = s.q[:0], 0
	} else if s.head >= 64 && s.head*2 >= len(s.q) {
		n := copy(s.q, s.q[s.head:])
		clear(s.q[n:])
		s.q, s.head = s.q[:n], 0
	}
}

// compact drops stale entries (aborted or replaced) from the queue so that
// it stays proportional to the live entries.
func (s *cacheShard) compact() {
	q := s.q[:0]
	for _, e := range s.q[s.head:] {
		if s.m[e.key] == e {
			q = append(q, e)
		}
	}
	clear(s.q[len(q):])
	s.q, s.head = q, 0
}
