package radius

import (
	"net/netip"
	"testing"
	"time"
)

func key(port uint16, id byte, auth string) cacheKey {
	pkt := make([]byte, 20)
	pkt[1] = id
	copy(pkt[4:], auth)
	return makeCacheKey(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port), pkt)
}

func TestReplyCache(t *testing.T) {
	c := newReplyCache(10*time.Second, 1<<16)
	now := time.Unix(1000, 0).UnixNano()
	k := key(1000, 1, "a")
	e, _, st := c.begin(k, now)
	if st != cacheNew {
		t.Fatalf("first begin: %v", st)
	}
	if _, _, st := c.begin(k, now); st != cacheInProgress {
		t.Fatalf("second begin while in progress: %v", st)
	}
	c.finish(e, []byte("reply"), now)
	if _, r, st := c.begin(k, now+int64(9*time.Second)); st != cacheAnswered || string(r) != "reply" {
		t.Fatalf("begin after finish: %v %q", st, r)
	}
	// Other port, other ID, other authenticator: new requests.
	for _, other := range []cacheKey{key(1001, 1, "a"), key(1000, 2, "a"), key(1000, 1, "b")} {
		if _, _, st := c.begin(other, now); st != cacheNew {
			t.Errorf("begin(%v) = %v, want new", other, st)
		}
	}
	// Expired.
	if _, _, st := c.begin(k, now+int64(11*time.Second)); st != cacheNew {
		t.Fatalf("begin after TTL: %v", st)
	}
	// Abort forgets.
	k2 := key(2000, 9, "z")
	e2, _, _ := c.begin(k2, now)
	c.abort(e2)
	if _, _, st := c.begin(k2, now); st != cacheNew {
		t.Fatalf("begin after abort: %v", st)
	}
}

func TestReplyCacheBounded(t *testing.T) {
	const size = cacheShards * 4
	c := newReplyCache(time.Hour, size)
	now := time.Unix(1000, 0).UnixNano()
	for i := 0; i < 50*size; i++ {
		k := key(uint16(i), byte(i), string(rune(i))+"-auth-"+string(rune(i/7)))
		e, _, st := c.begin(k, now)
		if st != cacheNew {
			t.Fatalf("entry %d: %v", i, st)
		}
		if i%3 == 0 {
			c.abort(e) // stale queue entries
		} else {
			c.finish(e, []byte{1}, now)
		}
	}
	if n := c.len(); n > size {
		t.Errorf("cache holds %d entries, bound %d", n, size)
	}
	for i := range c.shards {
		s := &c.shards[i]
		if q := len(s.q) - s.head; q > 2*c.perShard+65 {
			t.Errorf("shard %d queue %d entries", i, q)
		}
	}
}

func TestReplyCacheExpiresFromQueue(t *testing.T) {
	c := newReplyCache(time.Second, 1<<16)
	now := time.Unix(1000, 0).UnixNano()
	for i := 0; i < 1000; i++ {
		e, _, _ := c.begin(key(uint16(i), 0, "x"), now)
		c.finish(e, []byte{1}, now)
	}
	later := now + int64(2*time.Second)
	for i := range c.shards { // every shard sees a request later on
		for j := 0; ; j++ {
			k := key(uint16(5000+j), byte(j), "later")
			if c.shard(&k) == &c.shards[i] {
				c.begin(k, later)
				break
			}
		}
	}
	if n := c.len(); n != cacheShards {
		t.Errorf("after expiry %d entries remain, want %d", n, cacheShards)
	}
}
