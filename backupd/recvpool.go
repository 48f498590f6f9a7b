package backupd

import (
	"math/bits"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/mem"
)

// recvPool is the buffer pool of the snapshot stream's connection: gRPC's
// default pool's tiers, but its buffers are not cleared when taken. gRPC
// fills each buffer it takes before it reads it (the frames of the
// stream, then the messages), so clearing only costs: about 0.8 cpu-s of
// the stream's 820 MB in the benchmark (BENCHMARKS.md, backupd).
type recvPool struct {
	tiers [recvPoolMaxShift - recvPoolMinShift + 1]sync.Pool
}

// The tiers: 256 B to 1 MiB, by powers of two, as gRPC's default pool.
const (
	recvPoolMinShift = 8
	recvPoolMaxShift = 20
)

var snapshotRecvPool mem.BufferPool = &recvPool{}

// snapshotDialOption is what the snapshot stream's client dials with.
var snapshotDialOption grpc.DialOption = experimental.WithBufferPool(snapshotRecvPool)

// Get returns a buffer of length n, not cleared.
func (p *recvPool) Get(n int) *[]byte {
	shift := max(bits.Len(uint(max(n, 1)-1)), recvPoolMinShift)
	if shift > recvPoolMaxShift {
		b := make([]byte, n)
		return &b
	}
	if b, ok := p.tiers[shift-recvPoolMinShift].Get().(*[]byte); ok {
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n, 1<<shift)
	return &b
}

// Put keeps a buffer whose capacity is one of the tiers.
func (p *recvPool) Put(b *[]byte) {
	c := cap(*b)
	shift := bits.Len(uint(c)) - 1
	if c == 0 || c != 1<<shift || shift < recvPoolMinShift || shift > recvPoolMaxShift {
		return
	}
	p.tiers[shift-recvPoolMinShift].Put(b)
}
