package save

import (
	"bytes"
	"crypto/sha256"
	"math/rand/v2"
	"testing"
)

// trailerWriter finds the trailer however the stream is cut into writes.
func TestTrailerWriter(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	body := make([]byte, 3*4096)
	for i := range body {
		body[i] = byte(rng.UintN(256))
	}
	sum := sha256.Sum256(body)
	stream := append(bytes.Clone(body), sum[:]...)
	for _, chunk := range []int{1, 7, 31, 32, 33, 4096, len(stream)} {
		var out bytes.Buffer
		tw := &trailerWriter{w: &out, h: sha256.New()}
		for off := 0; off < len(stream); off += chunk {
			if _, err := tw.Write(stream[off:min(off+chunk, len(stream))]); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(out.Bytes(), stream) || !bytes.Equal(tw.tail, sum[:]) || !bytes.Equal(tw.h.Sum(nil), sum[:]) {
			t.Errorf("chunk %d: tail %x, hash %x, want %x", chunk, tw.tail, tw.h.Sum(nil), sum)
		}
	}
}
