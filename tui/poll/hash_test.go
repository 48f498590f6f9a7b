package poll

import (
	"errors"
	"slices"
	"testing"
)

func TestJudge(t *testing.T) {
	h := func(id uint64, hash uint32) MemberHash { return MemberHash{ID: id, Hash: hash} }
	failed := MemberHash{ID: 9, Err: errors.New("timeout")}
	for _, tc := range []struct {
		name    string
		hashes  []MemberHash
		differ  []uint64
		problem string
	}{
		{"all agree", []MemberHash{h(1, 7), h(2, 7), h(3, 7)}, nil, ""},
		{"one of three differs", []MemberHash{h(1, 7), h(2, 8), h(3, 7)}, []uint64{2}, ""},
		{"two of five differ", []MemberHash{h(1, 7), h(2, 8), h(3, 7), h(4, 9), h(5, 7)}, []uint64{2, 4}, ""},
		{"two members disagree: no majority", []MemberHash{h(1, 7), h(2, 8)}, []uint64{1, 2}, ""},
		{"two against two", []MemberHash{h(1, 7), h(2, 8), h(3, 8), h(4, 7)}, []uint64{1, 2, 3, 4}, ""},
		{"a failed answer is left out", []MemberHash{h(1, 7), failed, h(3, 7)}, nil, ""},
		{"one answer is no comparison", []MemberHash{h(1, 7), failed}, nil, "fewer than two members answer HashKV"},
		{"compact revisions differ", []MemberHash{h(1, 7), {ID: 2, Hash: 8, CompactRevision: 5}}, nil, "compaction in progress"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hc := &HashCheck{Hashes: tc.hashes}
			judge(hc)
			if !slices.Equal(hc.Differ, tc.differ) || hc.Problem != tc.problem {
				t.Errorf("differ %v problem %q, want %v %q", hc.Differ, hc.Problem, tc.differ, tc.problem)
			}
			if want := tc.problem == "" && len(tc.differ) == 0; hc.Agree() != want {
				t.Errorf("Agree() = %v", hc.Agree())
			}
		})
	}
}
