package radius

import (
	"encoding/binary"
	"hash/maphash"
	"net/netip"
	"sync"
	"time"
)

// The reply cache of RFC 5080 §2.2.2: a request is identified by its source
// address and port, Identifier and Request Authenticator. While it is being
// handled a retransmission is dropped; once answered a retransmission gets
// the same reply bytes again. The cache is sharded so that the read loop
// and the handlers do not share one lock.
//
// Under load nearly every look-up misses and the cache is full, so each
// request also evicts the oldest entry of its shard. Both are kept cheap:
// a shard holds its entries by value in a ring in insertion order (no
// allocation per request, and eviction walks memory in order), and its
// index is a map from a seeded 64-bit hash of the key, which is smaller
// and misses the CPU caches less than one keyed by the 36-octet key. Two
// requests whose hashes collide (the seed is random, so a client cannot
// aim for it) are told apart by the key kept in the entry; the older one
// then leaves the cache early, as if evicted.

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

// cacheEntry is one slot of a shard's ring.
type cacheEntry struct {
	key     cacheKey
	hash    uint64 // the index's key
	seq     uint64 // which insertion this is; 0: a free slot
	reply   []byte // nil while in progress
	done    bool
	expires int64 // unix nanoseconds; only for done entries
}

// cacheRef names an entry for finish and abort. It stays valid when the
// ring is laid out anew; it no longer matches once the entry has left.
type cacheRef struct {
	shard *cacheShard
	hash  uint64
	seq   uint64
}

type cacheShard struct {
	mu   sync.Mutex
	m    map[uint64]int32 // hash of the key → slot in q
	q    []cacheEntry     // ring in insertion order, from head; may hold free slots
	head int              // oldest slot
	n    int              // slots in use from head, free ones among them included
	live int              // entries (len(m))
	seq  uint64
	_    [24]byte // keep shards on separate cache lines
}

type replyCache struct {
	seed     maphash.Seed
	ttl      int64
	perShard int // live entries a shard holds at most
	maxSlots int // ring size at most: perShard and as many free slots, plus a margin
	shards   [cacheShards]cacheShard

	hashHook func(cacheKey) uint64 // test hook; nil: maphash with seed
}

func newReplyCache(ttl time.Duration, size int) *replyCache {
	per := max(1, size/cacheShards)
	return &replyCache{seed: maphash.MakeSeed(), ttl: int64(ttl), perShard: per, maxSlots: 2*per + 64}
}

func (c *replyCache) shard(k *cacheKey) *cacheShard {
	h := binary.LittleEndian.Uint32(k.auth[:4]) ^ uint32(k.port) ^ uint32(k.id)<<16
	return &c.shards[h%cacheShards]
}

func (c *replyCache) hash(k cacheKey) uint64 {
	if c.hashHook != nil {
		return c.hashHook(k)
	}
	return maphash.Comparable(c.seed, k)
}

// cacheState is the outcome of begin.
type cacheState int

const (
	cacheNew        cacheState = iota // caller handles the request
	cacheInProgress                   // a retransmission of a request being handled
	cacheAnswered                     // a retransmission of an answered request
)

// begin looks k up at time now. For a new request it records an
// in-progress entry and returns a reference to it; for an answered one it
// returns the cached reply.
func (c *replyCache) begin(k cacheKey, now int64) (cacheRef, []byte, cacheState) {
	s := c.shard(&k)
	h := c.hash(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[uint64]int32)
	}
	s.expire(now)
	if i, ok := s.m[h]; ok {
		e := &s.q[i]
		switch {
		case e.key != k:
			// Another request with the same 64-bit hash: the older
			// leaves the cache early.
			s.free(e)
		case !e.done:
			return cacheRef{}, nil, cacheInProgress
		case e.expires > now:
			return cacheRef{}, e.reply, cacheAnswered
		default:
			s.free(e)
		}
	}
	for s.live >= c.perShard && s.n > 0 {
		s.pop()
	}
	if s.n == len(s.q) {
		switch {
		case len(s.q) < c.maxSlots:
			s.relayout(min(max(2*len(s.q), 8), c.maxSlots))
		case s.live < s.n:
			s.relayout(len(s.q)) // drop the free slots
		default:
			s.pop()
		}
	}
	i := (s.head + s.n) % len(s.q)
	s.n++
	s.seq++
	s.q[i] = cacheEntry{key: k, hash: h, seq: s.seq}
	s.m[h] = int32(i)
	s.live++
	return cacheRef{shard: s, hash: h, seq: s.seq}, nil, cacheNew
}

// lookup returns the entry r names, nil when it has left the cache. The
// shard's lock must be held.
func (s *cacheShard) lookup(r cacheRef) *cacheEntry {
	if i, ok := s.m[r.hash]; ok && s.q[i].seq == r.seq {
		return &s.q[i]
	}
	return nil
}

// finish stores the reply of the entry r names, kept until now+ttl.
func (c *replyCache) finish(r cacheRef, reply []byte, now int64) {
	s := r.shard
	s.mu.Lock()
	if e := s.lookup(r); e != nil {
		e.reply = reply
		e.done = true
		e.expires = now + c.ttl
	}
	s.mu.Unlock()
}

// abort forgets the entry r names so that a retransmission is handled
// afresh.
func (c *replyCache) abort(r cacheRef) {
	s := r.shard
	s.mu.Lock()
	if e := s.lookup(r); e != nil {
		s.free(e)
	}
	s.mu.Unlock()
}

// len returns the number of entries (for tests).
func (c *replyCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += s.live
		s.mu.Unlock()
	}
	return n
}

// free removes the live entry e from the index and leaves its slot free.
func (s *cacheShard) free(e *cacheEntry) {
	delete(s.m, e.hash)
	*e = cacheEntry{}
	s.live--
}

// expire drops answered entries past their time, and free slots, from the
// head of the ring. It stops at the first entry still valid or in
// progress.
func (s *cacheShard) expire(now int64) {
	for s.n > 0 {
		e := &s.q[s.head]
		if e.seq != 0 && (!e.done || e.expires > now) {
			return
		}
		s.pop()
	}
}

// pop removes the oldest slot, and its entry if it holds one.
func (s *cacheShard) pop() {
	e := &s.q[s.head]
	if e.seq != 0 {
		s.free(e)
	}
	s.head++
	if s.head == len(s.q) {
		s.head = 0
	}
	s.n--
}

// relayout moves the live entries, in order, into a ring of size slots
// starting at slot 0, leaving the free slots behind.
func (s *cacheShard) relayout(size int) {
	q := make([]cacheEntry, size)
	k := 0
	for j := 0; j < s.n; j++ {
		e := &s.q[(s.head+j)%len(s.q)]
		if e.seq == 0 {
			continue
		}
		q[k] = *e
		s.m[e.hash] = int32(k)
		k++
	}
	s.q, s.head, s.n = q, 0, k
}
