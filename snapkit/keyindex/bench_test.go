package keyindex

import (
	"fmt"
	"testing"
)

// benchIndex holds n keys /registry/pods/nsX/pod-Y, each written twice.
func benchIndex(b *testing.B, n int) *Index {
	b.Helper()
	ix := New()
	main := int64(2)
	for round := range 2 {
		for i := range n {
			if err := ix.Put([]byte(fmt.Sprintf("/registry/pods/ns%d/pod-%06d", i%10, i)), rev(main)); err != nil {
				b.Fatal(round, err)
			}
			main++
		}
	}
	return ix
}

// BenchmarkRangeNamespace100kKeys lists one namespace (10k keys) of 100k,
// as `kubectl get pods -n ns3` makes the API server do.
func BenchmarkRangeNamespace100kKeys(b *testing.B) {
	ix := benchIndex(b, 100_000)
	b.ResetTimer()
	for b.Loop() {
		if _, _, total := ix.Range([]byte("/registry/pods/ns3/"), []byte("/registry/pods/ns30"), 1<<62, 500); total != 10_000 {
			b.Fatalf("total %d", total)
		}
	}
}

// BenchmarkGet100kKeys reads one key of 100k at the head.
func BenchmarkGet100kKeys(b *testing.B) {
	ix := benchIndex(b, 100_000)
	key := []byte("/registry/pods/ns7/pod-050007")
	b.ResetTimer()
	for b.Loop() {
		if _, _, _, err := ix.Get(key, 1<<62); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPut writes a new revision of one of 10k keys.
func BenchmarkPut(b *testing.B) {
	ix := benchIndex(b, 10_000)
	main := int64(1 << 20)
	i := 0
	b.ResetTimer()
	for b.Loop() {
		main++
		i++
		if err := ix.Put([]byte(fmt.Sprintf("/registry/pods/ns%d/pod-%06d", i%10, i%10_000)), rev(main)); err != nil {
			b.Fatal(err)
		}
	}
}
