package snap

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/lifeboat-dev/lifeboat/internal/fixture"
)

// FuzzDecodeSnap feeds Decode (and DecodeMembership with what it yields)
// arbitrary files, seeded with every .snap of the fixtures' m1.
func FuzzDecodeSnap(f *testing.F) {
	for _, set := range fixture.Sets {
		dir := filepath.Join(fixture.DataDir(f, set, "m1"), "member", "snap")
		names, err := New(nil, dir).Names()
		if err != nil {
			f.Fatal(err)
		}
		for _, name := range names {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Decode(b)
		if err != nil {
			return
		}
		again, err := Encode(s)
		if err != nil {
			t.Fatalf("decoded snapshot does not encode: %v", err)
		}
		s2, err := Decode(again)
		if err != nil || s2.String() != s.String() {
			t.Fatalf("re-encoded snapshot decodes as %v, %v", s2, err)
		}
		if m, err := DecodeMembership(s.Data); err == nil {
			if _, err := EncodeMembership(*m); err != nil {
				t.Fatalf("decoded membership does not encode: %v", err)
			}
		}
	})
}
