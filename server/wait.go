package server

import (
	"sync"
	"sync/atomic"
)

// result is what the apply loop hands to a waiting proposer.
type result struct {
	resp any
	err  error
}

// waitShards spreads the registry over several locks: every proposal
// registers and every applied entry triggers.
const waitShards = 64

// waitRegistry lets a proposer wait for its entry to apply, by request ID.
type waitRegistry struct {
	shards [waitShards]struct {
		mu sync.Mutex
		m  map[uint64]chan result
	}
}

func newWaitRegistry() *waitRegistry {
	w := &waitRegistry{}
	for i := range w.shards {
		w.shards[i].m = make(map[uint64]chan result)
	}
	return w
}

// register returns the channel that receives id's result.
func (w *waitRegistry) register(id uint64) <-chan result {
	s := &w.shards[id%waitShards]
	ch := make(chan result, 1)
	s.mu.Lock()
	s.m[id] = ch
	s.mu.Unlock()
	return ch
}

// trigger delivers r to id's waiter, if any.
func (w *waitRegistry) trigger(id uint64, r result) {
	s := &w.shards[id%waitShards]
	s.mu.Lock()
	ch, ok := s.m[id]
	delete(s.m, id)
	s.mu.Unlock()
	if ok {
		ch <- r
	}
}

// cancel forgets id's waiter.
func (w *waitRegistry) cancel(id uint64) {
	s := &w.shards[id%waitShards]
	s.mu.Lock()
	delete(s.m, id)
	s.mu.Unlock()
}

// indexWaiter wakes waiters once the applied index reaches theirs.
type indexWaiter struct {
	// done is the applied index, read without mu by wait's fast path (every
	// request with a simple token and every linearizable read waits).
	done    atomic.Uint64
	mu      sync.Mutex
	applied uint64
	waiters map[uint64][]chan struct{}
}

// closedCh is what wait returns for an index already applied.
var closedCh = func() chan struct{} { ch := make(chan struct{}); close(ch); return ch }()

func newIndexWaiter(applied uint64) *indexWaiter {
	w := &indexWaiter{applied: applied, waiters: make(map[uint64][]chan struct{})}
	w.done.Store(applied)
	return w
}

// wait returns a channel closed once index is applied.
func (w *indexWaiter) wait(index uint64) <-chan struct{} {
	if index <= w.done.Load() {
		return closedCh
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if index <= w.applied {
		return closedCh
	}
	ch := make(chan struct{})
	w.waiters[index] = append(w.waiters[index], ch)
	return ch
}

// applied records index as applied and wakes the waiters at or below it.
func (w *indexWaiter) setApplied(index uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if index <= w.applied {
		return
	}
	w.applied = index
	w.done.Store(index)
	for i, chs := range w.waiters {
		if i <= index {
			for _, ch := range chs {
				close(ch)
			}
			delete(w.waiters, i)
		}
	}
}
