package backupd

import (
	"math/bits"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/mem"
)

// recvPool is the buffer pool of the snapshot stream's connection and of
// its codec: gRPC's default pool's tiers, but its buffers are not cleared
// when taken. gRPC fills each buffer it takes before it reads it (the
// frames of the stream; the messages, gathered from the frames), so
// clearing only costs: about 0.8 cpu-s each for the frames and the
// messages of the benchmark's 820 MB (BENCHMARKS.md, backupd).
type recvPool struct {
	tiers [recvPoolMaxShift - recvPoolMinShift + 1]sync.Pool
}

// The tiers: 256 B to 1 MiB, by powers of two, as gRPC's default pool.
const (
	recvPoolMinShift = 8
	recvPoolMaxShift = 20
)

var snapshotRecvPool mem.BufferPool = &recvPool{}

// snapshotDialOption is what the snapshot stream's client dials with, and
// snapshotCallOption what its call is made with.
var (
	snapshotDialOption grpc.DialOption = experimental.WithBufferPool(snapshotRecvPool)
	snapshotCallOption grpc.CallOption = grpc.ForceCodecV2(snapshotCodec{encoding.GetCodecV2(proto.Name)})
)

// snapshotCodec is gRPC's proto codec, but it gathers a message received
// in several buffers into one of recvPool's: gRPC's codec takes it from
// gRPC's default pool, whatever the connection's, and clears it.
type snapshotCodec struct{ encoding.CodecV2 }

func (c snapshotCodec) Unmarshal(data mem.BufferSlice, v any) error {
	buf := data.MaterializeToBuffer(snapshotRecvPool)
	defer buf.Free()
	return c.CodecV2.Unmarshal(mem.BufferSlice{buf}, v)
}

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
