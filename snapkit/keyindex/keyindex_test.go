package keyindex

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

// op is one change of a key, as the store applies it.
type op struct {
	key  string
	rev  Revision
	tomb bool
}

func rev(main int64) Revision { return Revision{Main: main} }

// apply replays ops into a new index, failing the test on an error.
func apply(t testing.TB, ops []op) *Index {
	t.Helper()
	ix := New()
	for _, o := range ops {
		var err error
		if o.tomb {
			err = ix.Tombstone([]byte(o.key), o.rev)
		} else {
			err = ix.Put([]byte(o.key), o.rev)
		}
		if err != nil {
			t.Fatalf("%+v: %v", o, err)
		}
	}
	return ix
}

// history is put(2) put(4) del(6) put(8) put(10) del(12) put(14) put(16)
// of key "a": three generations {2 4 6} {8 10 12} {14 16}.
var history = []op{
	{"a", rev(2), false}, {"a", rev(4), false}, {"a", rev(6), true},
	{"a", rev(8), false}, {"a", rev(10), false}, {"a", rev(12), true},
	{"a", rev(14), false}, {"a", rev(16), false},
}

func TestGet(t *testing.T) {
	ix := apply(t, history)
	tests := []struct {
		atRev        int64
		mod, created int64 // 0: not found
		ver          int64
	}{
		{1, 0, 0, 0}, {2, 2, 2, 1}, {3, 2, 2, 1}, {4, 4, 2, 2}, {5, 4, 2, 2},
		{6, 0, 0, 0}, {7, 0, 0, 0}, // deleted at 6
		{8, 8, 8, 1}, {11, 10, 8, 2},
		{12, 0, 0, 0}, {13, 0, 0, 0},
		{14, 14, 14, 1}, {16, 16, 14, 2}, {100, 16, 14, 2},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.atRev), func(t *testing.T) {
			mod, created, ver, err := ix.Get([]byte("a"), tt.atRev)
			if tt.mod == 0 {
				if !errors.Is(err, ErrRevisionNotFound) {
					t.Fatalf("Get at %d = %s %s %d %v, want ErrRevisionNotFound", tt.atRev, mod, created, ver, err)
				}
				return
			}
			if err != nil || mod != rev(tt.mod) || created != rev(tt.created) || ver != tt.ver {
				t.Fatalf("Get at %d = %s %s %d %v, want %d %d %d", tt.atRev, mod, created, ver, err, tt.mod, tt.created, tt.ver)
			}
		})
	}
	if _, _, _, err := ix.Get([]byte("b"), 100); !errors.Is(err, ErrRevisionNotFound) {
		t.Errorf("Get of an unknown key: %v", err)
	}
}

func TestPutTombstoneErrors(t *testing.T) {
	tests := []struct {
		name string
		ops  []op
		last op
		want error
	}{
		{"put not newer", history, op{"a", rev(16), false}, ErrRevisionOrder},
		{"put older", history, op{"a", rev(3), false}, ErrRevisionOrder},
		{"tombstone not newer", history, op{"a", rev(15), true}, ErrRevisionOrder},
		{"tombstone of unknown key", history, op{"b", rev(20), true}, ErrRevisionNotFound},
		{"tombstone of deleted key", history[:3], op{"a", rev(7), true}, ErrRevisionNotFound},
		{"sub revision order", []op{{"a", Revision{Main: 5, Sub: 1}, false}}, op{"a", Revision{Main: 5}, false}, ErrRevisionOrder},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := apply(t, tt.ops).apply(tt.last)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

// apply applies one op.
func (ix *Index) apply(o op) error {
	if o.tomb {
		return ix.Tombstone([]byte(o.key), o.rev)
	}
	return ix.Put([]byte(o.key), o.rev)
}

func TestRange(t *testing.T) {
	ix := apply(t, []op{
		{"a", rev(2), false}, {"b", rev(3), false}, {"c", rev(4), false},
		{"b", rev(5), true}, {"d", rev(6), false}, {"e", rev(7), false}, {"\x00", rev(8), false},
	})
	tests := []struct {
		key, end string
		nilEnd   bool
		atRev    int64
		limit    int
		keys     string // keys returned, concatenated
		total    int
	}{
		{key: "a", nilEnd: true, atRev: 8, keys: "a", total: 1},
		{key: "b", nilEnd: true, atRev: 8, keys: "", total: 0},
		{key: "b", nilEnd: true, atRev: 4, keys: "b", total: 1},
		{key: "a", end: "d", atRev: 8, keys: "ac", total: 2},
		{key: "a", end: "d", atRev: 4, keys: "abc", total: 3},
		{key: "a", end: "z", atRev: 8, limit: 2, keys: "ac", total: 4},
		{key: "c", end: "", atRev: 8, keys: "cde", total: 3},
		{key: "c", end: "\x00", atRev: 8, keys: "cde", total: 3},
		{key: "", end: "", atRev: 8, keys: "\x00acde", total: 5},
		{key: "d", end: "a", atRev: 8, keys: "", total: 0},
		{key: "a", end: "z", atRev: 1, keys: "", total: 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q-%q@%d/%d", tt.key, tt.end, tt.atRev, tt.limit), func(t *testing.T) {
			var end []byte
			if !tt.nilEnd {
				end = []byte(tt.end)
			}
			keys, revs, total := ix.Range([]byte(tt.key), end, tt.atRev, tt.limit)
			if got := string(bytes.Join(keys, nil)); got != tt.keys || total != tt.total || len(revs) != len(keys) {
				t.Fatalf("Range = %q (%d revs), total %d; want %q, %d", got, len(revs), total, tt.keys, tt.total)
			}
			for i, k := range keys {
				mod, _, _, err := ix.Get(k, tt.atRev)
				if err != nil || mod != revs[i] {
					t.Errorf("key %q: Range says %s, Get says %s %v", k, revs[i], mod, err)
				}
			}
			if n := ix.CountRevisions([]byte(tt.key), end, tt.atRev); n != tt.total {
				t.Errorf("CountRevisions = %d, want %d", n, tt.total)
			}
		})
	}
}

// TestCompact follows key "a" of history through compactions at each
// revision: what the compaction keeps, what reads still see, and when the
// key leaves the index.
func TestCompact(t *testing.T) {
	tests := []struct {
		at      int64
		keep    []int64 // Compact's keep set
		hashKV  []int64 // Keep's
		gone    bool    // key left the index
		gensLen int
	}{
		{1, nil, nil, false, 3},
		{2, []int64{2}, []int64{2}, false, 3},
		{5, []int64{4}, []int64{4}, false, 3},
		{6, []int64{6}, nil, false, 3}, // the tombstone is kept in the bucket, not hashed
		{7, nil, nil, false, 2},
		{9, []int64{8}, []int64{8}, false, 2},
		{12, []int64{12}, nil, false, 2},
		{13, nil, nil, false, 1},
		{16, []int64{16}, []int64{16}, false, 1},
		{17, []int64{16}, []int64{16}, false, 1},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.at), func(t *testing.T) {
			ix := apply(t, history)
			ref := apply(t, history)
			hash := ix.Keep(tt.at)
			keep := ix.Compact(tt.at)
			if got := sortedMains(keep); !slices.Equal(got, tt.keep) {
				t.Errorf("Compact(%d) keeps %v, want %v", tt.at, got, tt.keep)
			}
			if got := sortedMains(hash); !slices.Equal(got, tt.hashKV) {
				t.Errorf("Keep(%d) = %v, want %v", tt.at, got, tt.hashKV)
			}
			if (ix.Len() == 0) != tt.gone {
				t.Errorf("index holds %d keys", ix.Len())
			}
			ki, _ := ix.tree.Get(&keyIndex{key: []byte("a")})
			if ki != nil && len(ki.generations) != tt.gensLen {
				t.Errorf("%d generations left, want %d", len(ki.generations), tt.gensLen)
			}
			// Reads at and after the compaction are unchanged.
			for at := tt.at; at <= 18; at++ {
				m1, c1, v1, e1 := ix.Get([]byte("a"), at)
				m2, c2, v2, e2 := ref.Get([]byte("a"), at)
				if m1 != m2 || c1 != c2 || v1 != v2 || (e1 == nil) != (e2 == nil) {
					t.Errorf("Get at %d after Compact(%d): %s %s %d %v; before: %s %s %d %v", at, tt.at, m1, c1, v1, e1, m2, c2, v2, e2)
				}
			}
		})
	}
	// A key deleted before the compaction leaves the index.
	ix := apply(t, history[:3])
	if keep := ix.Compact(7); len(keep) != 0 || ix.Len() != 0 {
		t.Errorf("Compact past the tombstone: keep %v, %d keys left", keep, ix.Len())
	}
}

func sortedMains(m map[Revision]struct{}) []int64 {
	var out []int64
	for r := range m {
		out = append(out, r.Main)
	}
	slices.Sort(out)
	return out
}

// model is the naive reference: every op of every key, replayed from the
// start for each question.
type model map[string][]op

// get answers Get from the full history of key.
func (m model) get(key string, atRev int64) (mod, created Revision, ver int64, ok bool) {
	for _, o := range m[key] {
		if o.rev.Main > atRev {
			break
		}
		if o.tomb {
			ver, ok = 0, false
			continue
		}
		if !ok {
			created = o.rev
		}
		mod, ver, ok = o.rev, ver+1, true
	}
	return mod, created, ver, ok
}

// randomOps makes n ops over nkeys keys, several per main revision.
func randomOps(r *rand.Rand, n, nkeys int) []op {
	live := map[string]bool{}
	var ops []op
	main := int64(2)
	for len(ops) < n {
		used := map[string]bool{}
		for sub := int64(0); sub < int64(1+r.IntN(3)); sub++ {
			key := fmt.Sprintf("k%03d", r.IntN(nkeys))
			if used[key] {
				continue
			}
			used[key] = true
			o := op{key: key, rev: Revision{Main: main, Sub: sub}, tomb: live[key] && r.IntN(4) == 0}
			live[key] = !o.tomb
			ops = append(ops, o)
		}
		main++
	}
	return ops
}

// TestAgainstModel replays random histories, compacting on the way, and
// checks every read at or after the last compaction against the naive
// model, and the keep sets against the rules: Keep(c) holds the revision
// of every key live at c; Compact(c) adds tombstones at c.
func TestAgainstModel(t *testing.T) {
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 1))
		ops := randomOps(r, 400, 30)
		m := model{} // the ops applied so far
		ix := New()
		compacted := int64(0)
		for i, o := range ops {
			if err := ix.apply(o); err != nil {
				t.Fatalf("seed %d: %+v: %v", seed, o, err)
			}
			m[o.key] = append(m[o.key], o)
			if i%97 != 96 {
				continue
			}
			at := compacted + 1 + r.Int64N(o.rev.Main-compacted)
			wantHash, want := map[Revision]struct{}{}, map[Revision]struct{}{}
			for key, kops := range m {
				if mod, _, _, ok := m.get(key, at); ok {
					wantHash[mod], want[mod] = struct{}{}, struct{}{}
				}
				for _, ko := range kops {
					if ko.tomb && ko.rev.Main == at {
						want[ko.rev] = struct{}{}
					}
				}
			}
			if hash := ix.Keep(at); !maps.Equal(hash, wantHash) {
				t.Fatalf("seed %d: Keep(%d) = %v, want %v", seed, at, sortedMains(hash), sortedMains(wantHash))
			}
			if keep := ix.Compact(at); !maps.Equal(keep, want) {
				t.Fatalf("seed %d: Compact(%d) = %v, want %v", seed, at, sortedMains(keep), sortedMains(want))
			}
			compacted = at
		}
		last := ops[len(ops)-1].rev.Main
		for key := range m {
			for at := compacted; at <= last+1; at++ {
				mod, created, ver, err := ix.Get([]byte(key), at)
				wm, wc, wv, ok := m.get(key, at)
				if ok != (err == nil) || (ok && (mod != wm || ver != wv || created != wc)) {
					t.Fatalf("seed %d: Get(%s, %d) = %s %s %d %v; model %s %s %d %v", seed, key, at, mod, created, ver, err, wm, wc, wv, ok)
				}
			}
		}
		keys, _ := ix.LiveKeys(last)
		var want []string
		for key := range m {
			if _, _, _, ok := m.get(key, last); ok {
				want = append(want, key)
			}
		}
		slices.Sort(want)
		if got := fmt.Sprintf("%s", keys); got != fmt.Sprint(want) {
			t.Fatalf("seed %d: LiveKeys %s, want %v", seed, got, want)
		}
	}
}

func TestSince(t *testing.T) {
	ix := apply(t, history)
	tests := []struct {
		rev  int64
		want []int64
	}{
		{0, []int64{2, 4, 6, 8, 10, 12, 14, 16}},
		{5, []int64{6, 8, 10, 12, 14, 16}},
		{9, []int64{10, 12, 14, 16}},
		{16, []int64{16}},
		{17, nil},
	}
	for _, tt := range tests {
		var got []int64
		for _, r := range ix.Since([]byte("a"), tt.rev) {
			got = append(got, r.Main)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("Since(%d) = %v, want %v", tt.rev, got, tt.want)
		}
	}
}

// TestConcurrent runs writers, readers and compactions at once; run it
// with -race.
func TestConcurrent(t *testing.T) {
	ix := New()
	const writers, perWriter = 4, 300
	var wg sync.WaitGroup
	var mu sync.Mutex
	next := int64(1)
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				mu.Lock()
				next++
				r := rev(next)
				err := ix.Put([]byte(fmt.Sprintf("w%d/%03d", w, i%50)), r)
				mu.Unlock()
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for range 2 {
		wg.Go(func() {
			for range perWriter {
				ix.Range([]byte("w"), []byte{}, 1<<62, 10)
				ix.CountRevisions([]byte("w1"), []byte("w2"), 1<<62)
			}
		})
	}
	wg.Go(func() {
		for i := range 20 {
			ix.Compact(int64(i * 50))
			ix.Keep(int64(i * 50))
		}
	})
	wg.Wait()
	if n := ix.CountRevisions([]byte(""), []byte{}, 1<<62); n != writers*50 {
		t.Errorf("%d live keys, want %d", n, writers*50)
	}
}

func TestKeyIsCopied(t *testing.T) {
	ix := New()
	buf := []byte("key")
	if err := ix.Put(buf, rev(2)); err != nil {
		t.Fatal(err)
	}
	copy(buf, "zzz")
	if _, _, _, err := ix.Get([]byte("key"), 2); err != nil {
		t.Fatalf("the index shares the caller's buffer: %v", err)
	}
}
