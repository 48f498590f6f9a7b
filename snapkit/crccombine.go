package snapkit

// CRC-32C of a concatenation from the CRCs of its parts (zlib's
// crc32_combine, for the Castagnoli polynomial): HashKV of a key bucket
// from the CRC of each pair, once the first walk knows which pairs count.

// castagnoliReversed is the Castagnoli polynomial, bit-reversed (as
// hash/crc32 computes it).
const castagnoliReversed = 0x82f63b78

// crcMulMod returns a(x)*b(x) modulo the polynomial, in the reversed
// representation (x^0 is the top bit).
func crcMulMod(a, b uint32) uint32 {
	var p uint32
	for m := uint32(1) << 31; m != 0; m >>= 1 {
		if a&m != 0 {
			p ^= b
		}
		if b&1 != 0 {
			b = b>>1 ^ castagnoliReversed
		} else {
			b >>= 1
		}
	}
	return p
}

// crcX2n[k] is x^(2^k) modulo the polynomial.
var crcX2n = func() (t [64]uint32) {
	p := uint32(1) << 30 // x^1
	for k := range t {
		t[k] = p
		p = crcMulMod(p, p)
	}
	return t
}()

// crcShift returns x^(8n) modulo the polynomial: what appending n bytes
// multiplies a CRC by.
func crcShift(n uint64) uint32 {
	p := uint32(1) << 31 // x^0
	for k := 3; n != 0; n, k = n>>1, k+1 {
		if n&1 != 0 {
			p = crcMulMod(crcX2n[k%64], p)
		}
	}
	return p
}

// crcCombiner appends the CRCs of parts to a CRC-32C, caching the shift of
// each short length (a key bucket's pairs are mostly of few lengths).
type crcCombiner struct {
	shifts map[uint32]uint32
}

// add returns the CRC-32C of A followed by B, where crc is A's and
// partCRC is that of B, n bytes long.
func (c *crcCombiner) add(crc, partCRC, n uint32) uint32 {
	s, ok := c.shifts[n]
	if !ok {
		if c.shifts == nil {
			c.shifts = map[uint32]uint32{}
		}
		s = crcShift(uint64(n))
		c.shifts[n] = s
	}
	return crcMulMod(s, crc) ^ partCRC
}
