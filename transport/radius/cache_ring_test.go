package radius

import (
	"testing"
	"time"
)

// TestReplyCacheHashCollision checks that two requests whose map hashes
// collide are still told apart: the second is new, the first leaves the
// cache as if evicted, and its late reply is not cached.
func TestReplyCacheHashCollision(t *testing.T) {
	c := newReplyCache(10*time.Second, 1<<16)
	c.hashHook = func(cacheKey) uint64 { return 42 }
	now := time.Unix(1000, 0).UnixNano()
	k1, k2 := key(1000, 1, "same-shard-1"), key(1000, 1, "same-shard-2")
	if c.shard(&k1) != c.shard(&k2) {
		t.Fatal("keys in different shards")
	}
	e1, _, st := c.begin(k1, now)
	if st != cacheNew {
		t.Fatalf("k1: %v", st)
	}
	e2, _, st := c.begin(k2, now)
	if st != cacheNew {
		t.Fatalf("k2 colliding with k1 in progress: %v, want new", st)
	}
	c.finish(e1, []byte("reply-1"), now) // evicted: not kept
	c.finish(e2, []byte("reply-2"), now)
	if _, r, st := c.begin(k2, now); st != cacheAnswered || string(r) != "reply-2" {
		t.Fatalf("k2 again: %v %q", st, r)
	}
	if _, r, st := c.begin(k1, now); st != cacheNew {
		t.Fatalf("k1 again: %v %q, want new (its entry left the cache)", st, r)
	}
}
