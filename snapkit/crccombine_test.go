package snapkit

import (
	"hash/crc32"
	"math/rand/v2"
	"testing"
)

// TestCRCCombine checks that combining the CRC-32C of parts gives that of
// their concatenation, for empty parts, one-byte parts, parts of many
// lengths and one part longer than a page.
func TestCRCCombine(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	tests := []struct {
		name string
		lens []int
	}{
		{"none", nil},
		{"empty parts", []int{0, 0, 5, 0}},
		{"bytes", []int{1, 1, 1, 1, 1}},
		{"pairs", []int{17, 300, 17, 999, 18, 20, 17, 1000}},
		{"long", []int{3, 70000, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var whole []byte
			var c crcCombiner
			got := crc32.Update(0, castagnoli, []byte("key"))
			whole = append(whole, "key"...)
			for _, n := range tt.lens {
				part := make([]byte, n)
				for i := range part {
					part[i] = byte(rng.Uint32())
				}
				whole = append(whole, part...)
				got = c.add(got, crc32.Checksum(part, castagnoli), uint32(n))
			}
			if want := crc32.Checksum(whole, castagnoli); got != want {
				t.Errorf("combined %08x, want %08x", got, want)
			}
		})
	}
}
