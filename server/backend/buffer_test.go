package backend

import (
	"fmt"
	"testing"
)

func TestKeyBuffer(t *testing.T) {
	p := func(k, v string) pair { return pair{key: []byte(k), value: []byte(v)} }
	render := func(b keyBuffer) string {
		s := ""
		for _, e := range b {
			s += fmt.Sprintf("%s=%s ", e.key, e.value)
		}
		return s
	}
	tests := []struct {
		name  string
		start keyBuffer
		add   []pair
		want  string
	}{
		{"append in order", keyBuffer{p("a", "1")}, []pair{p("b", "2"), p("c", "3")}, "a=1 b=2 c=3 "},
		{"insert before the end", keyBuffer{p("a", "1"), p("c", "3")}, []pair{p("b", "2")}, "a=1 b=2 c=3 "},
		{"replace", keyBuffer{p("a", "1"), p("b", "2")}, []pair{p("a", "9")}, "a=9 b=2 "},
		{"unsorted scope, last write wins", nil, sortPairs([]pair{p("b", "1"), p("a", "2"), p("b", "3")}), "a=2 b=3 "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := render(tt.start)
			got := tt.start.add(tt.add)
			if render(got) != tt.want {
				t.Errorf("got %q, want %q", render(got), tt.want)
			}
			// Readers may hold the old buffer: it must not change.
			if render(tt.start) != before {
				t.Errorf("old buffer changed from %q to %q", before, render(tt.start))
			}
			if v, ok := got.get([]byte("b")); !ok || len(v) == 0 {
				t.Errorf("get b: %q %v", v, ok)
			}
		})
	}
}
