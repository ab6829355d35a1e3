package pdp

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// groupCommit runs write functions in shared bbolt transactions: one
// goroutine commits everything queued so far in one transaction, so writers
// that arrive while a commit (and its fsync) is in progress go together in
// the next one. Unlike bbolt's Batch, a lone write is committed at once
// instead of after a delay, and a burst costs one fsync per commit rather
// than per write.
//
// A function may run more than once: when one fails, the transaction is
// rolled back, its writer gets the error, and the others run again without
// it.
type groupCommit struct {
	db   *bolt.DB
	kick chan struct{} // wakes the committer; capacity 1
	done chan struct{} // closed when the committer has ended

	mu      sync.Mutex
	queue   []*pendingWrite
	stopped bool
}

type pendingWrite struct {
	fn func(*bolt.Tx) error
	// done, when set, is called by the committer with the write's outcome
	// before the writer hears of it: in the order the writes were queued,
	// except that a write whose function fails hears so before the rest of
	// its transaction is tried again.
	done   func(error)
	result chan error // capacity 1
}

// errStoreClosed is returned by writes after the store was closed.
var errStoreClosed = errors.New("pdp: store closed")

func newGroupCommit(db *bolt.DB) *groupCommit {
	g := &groupCommit{db: db, kick: make(chan struct{}, 1), done: make(chan struct{})}
	go g.run()
	return g
}

// do runs fn in a write transaction and returns once that transaction is
// committed, with fn's error or the commit's.
func (g *groupCommit) do(fn func(*bolt.Tx) error) error {
	return <-g.enqueue(fn, nil)
}

// enqueue queues fn and returns at once; the channel gets fn's outcome, as
// do returns it. Writes queued one after the other commit in that order,
// so a caller that serialises its enqueues also orders its writes. done,
// when not nil, sees the outcome first, on the committer's goroutine.
func (g *groupCommit) enqueue(fn func(*bolt.Tx) error, done func(error)) <-chan error {
	w := &pendingWrite{fn: fn, done: done, result: make(chan error, 1)}
	g.mu.Lock()
	if g.stopped {
		g.mu.Unlock()
		w.finish(errStoreClosed)
		return w.result
	}
	g.queue = append(g.queue, w)
	select {
	case g.kick <- struct{}{}:
	default: // the committer is already due to look at the queue
	}
	g.mu.Unlock()
	return w.result
}

// finish reports err to the write's done function and to its writer.
func (w *pendingWrite) finish(err error) {
	if w.done != nil {
		w.done(err)
	}
	w.result <- err
}

// stop commits what is queued and ends the committer.
func (g *groupCommit) stop() {
	g.mu.Lock()
	if g.stopped {
		g.mu.Unlock()
		<-g.done
		return
	}
	g.stopped = true
	close(g.kick)
	g.mu.Unlock()
	<-g.done
}

func (g *groupCommit) run() {
	defer close(g.done)
	for range g.kick {
		for {
			g.mu.Lock()
			batch := g.queue
			g.queue = nil
			g.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			g.commit(batch)
		}
	}
	// Closed: whatever was queued before stop still gets committed.
	g.mu.Lock()
	batch := g.queue
	g.queue = nil
	g.mu.Unlock()
	if len(batch) > 0 {
		g.commit(batch)
	}
}

// commit runs batch in one transaction. A function that fails is answered
// with its error and the rest run again without it.
func (g *groupCommit) commit(batch []*pendingWrite) {
	for len(batch) > 0 {
		failed := -1
		var fnErr error
		err := g.db.Update(func(tx *bolt.Tx) error {
			for i, w := range batch {
				if err := safeCall(w.fn, tx); err != nil {
					failed, fnErr = i, err
					return err
				}
			}
			return nil
		})
		if failed < 0 {
			for _, w := range batch {
				w.finish(err) // nil, or the commit's own failure
			}
			return
		}
		batch[failed].finish(fnErr)
		batch = slices.Delete(batch, failed, failed+1)
	}
}

// safeCall runs fn, turning a panic into an error so that one bad write
// cannot end the committer.
func safeCall(fn func(*bolt.Tx) error, tx *bolt.Tx) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("pdp: store write panicked: %v", v)
		}
	}()
	return fn(tx)
}
