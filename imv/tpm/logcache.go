package tpmimv

import (
	"container/list"
	"sync"
)

// logCache keeps the measurement logs the verifier has replayed, per AK, so
// that the next assessment asks only for what was appended since. A cached
// log is only a guess at a prefix of the endpoint's: the overlap asked for
// again must agree with it, and the whole log must replay to the new
// quote, else the log is fetched whole. It is
// bounded in bytes and evicts the least recently used AK first. Cached
// logs are immutable: sessions share them and append into new arrays.
type logCache struct {
	mu    sync.Mutex
	max   int // bytes
	size  int
	order *list.List               // of *cachedLogs, most recent first
	byAK  map[string]*list.Element // AK name → element
}

// cachedLogs are one AK's logs as last replayed.
type cachedLogs struct {
	ak string
	// logs by kind (patnc.LogBoot, patnc.LogIMA)
	logs [3][]byte
}

func newLogCache(maxBytes int) *logCache {
	return &logCache{max: maxBytes, order: list.New(), byAK: map[string]*list.Element{}}
}

// get returns the cached log of an AK and kind, nil if none. The caller
// must not modify it.
func (c *logCache) get(ak string, kind uint8) []byte {
	if c == nil || int(kind) >= 3 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.byAK[ak]
	if e == nil {
		return nil
	}
	c.order.MoveToFront(e)
	return e.Value.(*cachedLogs).logs[kind]
}

// put records a replayed log, taking ownership of data, and evicts least
// recently used AKs until the cache fits its bound. A log larger than the
// whole bound is not kept.
func (c *logCache) put(ak string, kind uint8, data []byte) {
	if c == nil || int(kind) >= 3 || len(data) > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.byAK[ak]
	if e == nil {
		e = c.order.PushFront(&cachedLogs{ak: ak})
		c.byAK[ak] = e
	} else {
		c.order.MoveToFront(e)
	}
	cl := e.Value.(*cachedLogs)
	c.size += len(data) - len(cl.logs[kind])
	cl.logs[kind] = data[:len(data):len(data)]
	for c.size > c.max {
		last := c.order.Back()
		old := last.Value.(*cachedLogs)
		for _, l := range old.logs {
			c.size -= len(l)
		}
		c.order.Remove(last)
		delete(c.byAK, old.ak)
	}
}

// drop forgets an AK's log of one kind.
func (c *logCache) drop(ak string, kind uint8) {
	if c == nil || int(kind) >= 3 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.byAK[ak]; e != nil {
		cl := e.Value.(*cachedLogs)
		c.size -= len(cl.logs[kind])
		cl.logs[kind] = nil
	}
}
