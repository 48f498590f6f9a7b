package backend

import (
	"bytes"
	"sort"
)

// pair is one key bucket write: a revision key and its value.
type pair struct {
	key, value []byte
}

// keyBuffer holds key bucket writes not yet committed, sorted by key. It is
// append-only: elements below a length handed to a reader are never written
// again, so readers keep a slice of it without a lock. A write that does not
// sort last (never for the mvcc store, whose revisions only grow) copies the
// buffer instead of moving elements in place.
type keyBuffer []pair

// add returns the buffer with ps added; ps must be sorted.
func (b keyBuffer) add(ps []pair) keyBuffer {
	if len(ps) == 0 {
		return b
	}
	if len(b) == 0 || bytes.Compare(b[len(b)-1].key, ps[0].key) < 0 {
		return append(b, ps...)
	}
	merged := make(keyBuffer, 0, len(b)+len(ps))
	merged = append(merged, b...)
	for _, p := range ps {
		i, found := merged.search(p.key)
		if found {
			merged[i] = p
			continue
		}
		merged = append(merged, pair{})
		copy(merged[i+1:], merged[i:])
		merged[i] = p
	}
	return merged
}

// search returns the index of the first key >= key, and whether it equals key.
func (b keyBuffer) search(key []byte) (int, bool) {
	i := sort.Search(len(b), func(i int) bool { return bytes.Compare(b[i].key, key) >= 0 })
	return i, i < len(b) && bytes.Equal(b[i].key, key)
}

// get returns the value stored under key, if the buffer has it.
func (b keyBuffer) get(key []byte) ([]byte, bool) {
	i, found := b.search(key)
	if !found {
		return nil, false
	}
	return b[i].value, true
}

// sortPairs sorts ps by key, keeping the last write of a key that repeats.
func sortPairs(ps []pair) []pair {
	sorted := true
	for i := 1; i < len(ps); i++ {
		if bytes.Compare(ps[i-1].key, ps[i].key) >= 0 {
			sorted = false
			break
		}
	}
	if sorted {
		return ps
	}
	sort.SliceStable(ps, func(i, j int) bool { return bytes.Compare(ps[i].key, ps[j].key) < 0 })
	out := ps[:0]
	for _, p := range ps {
		if n := len(out); n > 0 && bytes.Equal(out[n-1].key, p.key) {
			out[n-1] = p
			continue
		}
		out = append(out, p)
	}
	return out
}
