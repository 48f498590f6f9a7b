package backupd

import "testing"

// The snapshot stream's pool hands out buffers of the length asked for,
// from the tier that holds it, and takes back only buffers of a tier's
// capacity, whatever their length (gRPC puts back prefixes).
func TestRecvPool(t *testing.T) {
	for _, tc := range []struct {
		n, wantCap int
	}{
		{0, 256}, {1, 256}, {256, 256}, {257, 512}, {32 << 10, 32 << 10}, {32<<10 + 5, 64 << 10},
		{1 << 20, 1 << 20}, {1<<20 + 1, 1<<20 + 1},
	} {
		p := &recvPool{}
		b := p.Get(tc.n)
		if len(*b) != tc.n || cap(*b) != tc.wantCap {
			t.Errorf("Get(%d): len %d cap %d, want cap %d", tc.n, len(*b), cap(*b), tc.wantCap)
			continue
		}
		(*b)[:cap(*b)][cap(*b)-1] = 7
		*b = (*b)[:0]
		p.Put(b)
		again := p.Get(tc.n)
		if len(*again) != tc.n || cap(*again) != tc.wantCap {
			t.Errorf("Get(%d) after Put: len %d cap %d, want cap %d", tc.n, len(*again), cap(*again), tc.wantCap)
		}
	}
	p := &recvPool{}
	odd := make([]byte, 300)
	p.Put(&odd) // not a tier's capacity: dropped
	if b := p.Get(300); cap(*b) != 512 {
		t.Errorf("Get(300) after Put of a 300-byte buffer: cap %d, want 512", cap(*b))
	}
}
