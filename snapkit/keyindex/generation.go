package keyindex

import (
	"bytes"
	"fmt"

	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
)

func (g *generation) isEmpty() bool { return len(g.revs) == 0 }

// walk visits g's revisions newest first and returns the index of the first
// one for which f is false, or -1.
func (g *generation) walk(f func(Revision) bool) int {
	for i := len(g.revs) - 1; i >= 0; i-- {
		if !f(g.revs[i]) {
			return i
		}
	}
	return -1
}

// isEmpty reports whether the key has no history at all.
func (ki *keyIndex) isEmpty() bool {
	return len(ki.generations) == 0 || (len(ki.generations) == 1 && ki.generations[0].isEmpty())
}

func (ki *keyIndex) put(rev Revision) error {
	if len(ki.generations) > 0 && !rev.GreaterThan(ki.modified) {
		return fmt.Errorf("%w: put of %q at %s, last change at %s", ErrRevisionOrder, ki.key, rev, ki.modified)
	}
	if len(ki.generations) == 0 {
		ki.generations = append(ki.generations, generation{})
	}
	g := &ki.generations[len(ki.generations)-1]
	if g.isEmpty() {
		g.created = rev
	}
	g.revs = append(g.revs, rev)
	g.ver++
	ki.modified = rev
	return nil
}

func (ki *keyIndex) tombstone(rev Revision) error {
	if ki.isEmpty() || ki.generations[len(ki.generations)-1].isEmpty() {
		return fmt.Errorf("%w: tombstone of %q at %s: key is not live", ErrRevisionNotFound, ki.key, rev)
	}
	if err := ki.put(rev); err != nil {
		return err
	}
	ki.generations = append(ki.generations, generation{})
	return nil
}

// restoredKey is a key met first in a restore (after a compaction may
// have dropped its older revisions), with room for its first generation
// and revision: one allocation instead of three.
type restoredKey struct {
	ki  keyIndex
	gen [1]generation
	rev [1]Revision
}

// newRestoredKey starts the history of key at e, its first pair: a put,
// or a tombstone that ends a generation whose older revisions are gone.
func newRestoredKey(key []byte, e *schema.KeyView) *keyIndex {
	rk := &restoredKey{ki: keyIndex{key: bytes.Clone(key), modified: e.Rev}, rev: [1]Revision{e.Rev}}
	rk.gen[0] = generation{created: Revision{Main: e.KV.CreateRevision}, ver: e.KV.Version, revs: rk.rev[:]}
	if e.Tombstone {
		rk.gen[0].created, rk.gen[0].ver = Revision{}, 1
	}
	rk.ki.generations = rk.gen[:]
	if e.Tombstone {
		rk.ki.generations = append(rk.ki.generations, generation{})
	}
	return &rk.ki
}

// findGeneration returns the generation live at main revision rev, or nil.
func (ki *keyIndex) findGeneration(rev int64) *generation {
	last := len(ki.generations) - 1
	for i := last; i >= 0; i-- {
		g := &ki.generations[i]
		if g.isEmpty() {
			continue
		}
		if i != last && g.revs[len(g.revs)-1].Main <= rev {
			return nil // the key was deleted at or before rev
		}
		if g.revs[0].Main <= rev {
			return g
		}
	}
	return nil
}

func (ki *keyIndex) get(atRev int64) (mod, created Revision, ver int64, err error) {
	g := ki.findGeneration(atRev)
	if g == nil {
		return Revision{}, Revision{}, 0, ErrRevisionNotFound
	}
	n := g.walk(func(r Revision) bool { return r.Main > atRev })
	if n == -1 {
		return Revision{}, Revision{}, 0, ErrRevisionNotFound
	}
	return g.revs[n], g.created, g.ver - int64(len(g.revs)-n-1), nil
}

func (ki *keyIndex) since(rev int64) []Revision {
	since := Revision{Main: rev}
	gi := len(ki.generations) - 1
	for ; gi > 0; gi-- {
		g := ki.generations[gi]
		if !g.isEmpty() && since.GreaterThan(g.created) {
			break
		}
	}
	var revs []Revision
	var last int64
	for ; gi < len(ki.generations); gi++ {
		for _, r := range ki.generations[gi].revs {
			if since.GreaterThan(r) {
				continue
			}
			if len(revs) > 0 && r.Main == last {
				revs[len(revs)-1] = r
				continue
			}
			revs = append(revs, r)
			last = r.Main
		}
	}
	return revs
}

// compactPoint finds the first generation that compaction at atRev keeps
// (the first one whose tombstone is not before atRev, or the live one) and,
// within it, the newest revision at or before atRev (-1 if none). It adds
// that revision to keep.
func (ki *keyIndex) compactPoint(atRev int64, keep map[Revision]struct{}) (genIdx, revIdx int) {
	for genIdx < len(ki.generations)-1 {
		g := ki.generations[genIdx]
		if g.revs[len(g.revs)-1].Main >= atRev {
			break
		}
		genIdx++
	}
	g := &ki.generations[genIdx]
	revIdx = g.walk(func(r Revision) bool { return r.Main > atRev })
	if revIdx != -1 {
		keep[g.revs[revIdx]] = struct{}{}
	}
	return genIdx, revIdx
}

func (ki *keyIndex) compact(atRev int64, keep map[Revision]struct{}) {
	if ki.isEmpty() {
		return
	}
	genIdx, revIdx := ki.compactPoint(atRev, keep)
	g := &ki.generations[genIdx]
	if revIdx > 0 {
		g.revs = g.revs[revIdx:]
	}
	ki.generations = ki.generations[genIdx:]
}

func (ki *keyIndex) keep(atRev int64, keep map[Revision]struct{}) {
	if ki.isEmpty() {
		return
	}
	genIdx, revIdx := ki.compactPoint(atRev, keep)
	g := ki.generations[genIdx]
	// A tombstone that would be the only survivor of its generation is not
	// kept.
	if !g.isEmpty() && revIdx == len(g.revs)-1 && genIdx != len(ki.generations)-1 {
		delete(keep, g.revs[revIdx])
	}
}
