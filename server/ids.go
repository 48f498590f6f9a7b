package server

import (
	"sync/atomic"
	"time"
)

// idGenerator makes request IDs unique across members and restarts: the
// top 16 bits are the low 16 bits of the member ID, the rest a counter
// that starts at the current time in milliseconds shifted left by 8.
type idGenerator struct {
	prefix uint64
	suffix atomic.Uint64
}

const (
	idSuffixBits = 48
	idSuffixMask = 1<<idSuffixBits - 1
)

func newIDGenerator(memberID uint64, now time.Time) *idGenerator {
	g := &idGenerator{prefix: memberID << idSuffixBits}
	g.suffix.Store((uint64(now.UnixMilli()) << 8) & idSuffixMask)
	return g
}

// next returns a fresh ID.
func (g *idGenerator) next() uint64 {
	return g.prefix | (g.suffix.Add(1) & idSuffixMask)
}
