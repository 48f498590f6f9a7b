package snap

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/lifeboat-dev/lifeboat/internal/fixture"
	"github.com/lifeboat-dev/lifeboat/internal/interoptest"
	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
	"github.com/lifeboat-dev/lifeboat/walkit"
)

// oracleOutput is what interop/cmd/snapread prints.
type oracleOutput struct {
	File     string `json:"file"`
	Metadata struct {
		Index     uint64 `json:"index"`
		Term      uint64 `json:"term"`
		ConfState struct {
			Voters   []uint64 `json:"voters"`
			Learners []uint64 `json:"learners"`
		} `json:"confState"`
	} `json:"metadata"`
	Data string `json:"data"`
}

// snapread runs etcd's own snap package on path (a file or a directory).
func snapread(t *testing.T, oracle, path string) oracleOutput {
	t.Helper()
	out, err := exec.Command(oracle, path).Output()
	if err != nil {
		t.Fatalf("snapread %s: %v", path, err)
	}
	var o oracleOutput
	if err := json.Unmarshal(out, &o); err != nil {
		t.Fatalf("snapread %s: %v: %s", path, err, out)
	}
	return o
}

// sameAsOracle compares a snapshot we decoded with etcd's reading of it.
func sameAsOracle(t *testing.T, name string, s *raftpb.Snapshot, o oracleOutput) {
	t.Helper()
	m := s.Metadata
	if name != o.File || m.Index != o.Metadata.Index || m.Term != o.Metadata.Term ||
		!slices.Equal(m.ConfState.Voters, o.Metadata.ConfState.Voters) || len(m.ConfState.Learners) != len(o.Metadata.ConfState.Learners) ||
		base64.StdEncoding.EncodeToString(s.Data) != o.Data {
		t.Errorf("%s: ours %s (%d bytes of data); etcd's %s %+v", name, m.String(), len(s.Data), o.File, o.Metadata)
	}
}

// snapDir unpacks a fixture member and returns its member/snap.
func snapDir(t *testing.T, set, member string) string {
	return filepath.Join(fixture.DataDir(t, set, member), "member", "snap")
}

// TestFixtureSnaps reads every .snap of every fixture member and compares
// each with etcd's own reading of it, and Load with etcd's Load.
func TestFixtureSnaps(t *testing.T) {
	oracle := interoptest.Oracle(t, "snapread")
	for _, set := range fixture.Sets {
		for _, member := range fixture.Members {
			t.Run(set+"/"+member, func(t *testing.T) {
				dir := snapDir(t, set, member)
				names, err := New(nil, dir).Names()
				if err != nil || len(names) == 0 {
					t.Fatalf("names %v, %v", names, err)
				}
				for _, name := range names {
					s, err := Read(filepath.Join(dir, name))
					if err != nil {
						t.Fatal(err)
					}
					term, index, err := ParseName(name)
					if err != nil || term != s.Metadata.Term || index != s.Metadata.Index {
						t.Errorf("%s holds term %d index %d", name, s.Metadata.Term, s.Metadata.Index)
					}
					sameAsOracle(t, name, s, snapread(t, oracle, filepath.Join(dir, name)))
				}
				s, err := New(nil, dir).Load()
				if err != nil {
					t.Fatal(err)
				}
				sameAsOracle(t, names[0], s, snapread(t, oracle, dir))
			})
		}
	}
}

// TestFixtureMembership decodes the membership from the newest .snap of each
// member of the 3-member clusters and compares it with `etcdctl member list`.
func TestFixtureMembership(t *testing.T) {
	for _, set := range fixture.Sets {
		var ml struct {
			Members []schema.Member `json:"members"`
		}
		b, err := os.ReadFile(fixture.Path(set, "members.json"))
		if err != nil {
			t.Fatal(err)
		}
		// etcdctl prints "ID" where the db has "id"; encoding/json matches
		// field names case-insensitively.
		if err := json.Unmarshal(b, &ml); err != nil {
			t.Fatal(err)
		}
		schema.SortMembers(ml.Members)
		for _, member := range []string{"m1", "m2", "m3"} {
			t.Run(set+"/"+member, func(t *testing.T) {
				s, err := New(nil, snapDir(t, set, member)).Load()
				if err != nil {
					t.Fatal(err)
				}
				m, err := DecodeMembership(s.Data)
				if err != nil {
					t.Fatal(err)
				}
				if !equalMembers(m.Members, ml.Members) {
					t.Errorf("members\n .snap   %+v\n etcdctl %+v", m.Members, ml.Members)
				}
				if len(m.Removed) != 0 || !strings.HasPrefix(m.ClusterVersion, strings.TrimPrefix(set, "v")+".") {
					t.Errorf("removed %v, cluster version %q", m.Removed, m.ClusterVersion)
				}
				var ids []uint64
				for _, mem := range m.Members {
					ids = append(ids, mem.ID)
				}
				if voters := slices.Sorted(slices.Values(s.Metadata.ConfState.Voters)); !slices.Equal(voters, ids) {
					t.Errorf("voters %v, members %v", voters, ids)
				}
				// Our 3.6-style encoding of it holds the same nodes, with
				// the same values, as the store etcd wrote.
				enc, err := EncodeMembership(*m)
				if err != nil {
					t.Fatal(err)
				}
				ours, theirs := storeValues(t, enc), storeValues(t, s.Data)
				for p, v := range theirs {
					if strings.HasPrefix(p, "/0") && ours[p] != v {
						t.Errorf("node %s: ours %q, etcd's %q", p, ours[p], v)
					}
				}
				for p := range ours {
					if _, ok := theirs[p]; !ok {
						t.Errorf("we write node %s, etcd does not", p)
					}
				}
			})
		}
	}
}

func equalMembers(a, b []schema.Member) bool {
	return slices.EqualFunc(a, b, func(x, y schema.Member) bool {
		return x.ID == y.ID && x.Name == y.Name && x.IsLearner == y.IsLearner &&
			slices.Equal(x.PeerURLs, y.PeerURLs) && slices.Equal(x.ClientURLs, y.ClientURLs)
	})
}

// storeValues flattens a v2 store to path -> value ("<dir>" for directories).
func storeValues(t *testing.T, data []byte) map[string]string {
	t.Helper()
	var st store
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	var walk func(n *node)
	walk = func(n *node) {
		if n.Children == nil {
			out[n.Path] = n.Value
			return
		}
		out[n.Path] = "<dir>"
		for _, c := range n.Children {
			walk(c)
		}
	}
	walk(st.Root)
	return out
}

func TestMembershipRoundTrip(t *testing.T) {
	tests := []Membership{
		{},
		{ClusterVersion: "3.6.0"},
		{
			Members: []schema.Member{
				{ID: 0x8e9e05c52164694d, Name: "default", PeerURLs: []string{"http://localhost:2380"}, ClientURLs: []string{"http://localhost:2379"}},
				{ID: 2, PeerURLs: []string{"https://b:2380", "https://a:2380"}, IsLearner: true},
				{ID: 1, PeerURLs: []string{"http://c:2380"}, Name: "unstarted"},
			},
			Removed:        []uint64{9, 7},
			ClusterVersion: "3.6.0",
		},
	}
	for i, want := range tests {
		data, err := EncodeMembership(want)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeMembership(data)
		if err != nil {
			t.Fatal(err)
		}
		schema.SortMembers(want.Members)
		if !equalMembers(got.Members, want.Members) || !slices.Equal(got.Removed, slices.Sorted(slices.Values(want.Removed))) || got.ClusterVersion != want.ClusterVersion {
			t.Errorf("case %d: round trip gave %+v, want %+v", i, got, want)
		}
	}
}

func TestDecodeMembershipErrors(t *testing.T) {
	member := func(name, children string) string {
		return `{"Root":{"Path":"/","Children":{"0":{"Path":"/0","Children":{"members":{"Path":"/0/members","Children":{"` + name + `":` + children + `}}}}}}}`
	}
	tests := []struct {
		name, data, want string
	}{
		{"not JSON", "{", "unexpected end"},
		{"no root", "{}", "no Root"},
		{"bad id", member("xyz", `{"Path":"/0/members/xyz","Children":{}}`), "/0/members/xyz"},
		{"value, not dir", member("1", `{"Path":"/0/members/1","Value":"x"}`), "not a directory"},
		{"no raftAttributes", member("1", `{"Path":"/0/members/1","Children":{}}`), "no raftAttributes"},
		{"bad raftAttributes", member("1", `{"Children":{"raftAttributes":{"Value":"{"}}}`), "/0/members/1/raftAttributes"},
		{"bad attributes", member("1", `{"Children":{"raftAttributes":{"Value":"{}"},"attributes":{"Value":"[1]"}}}`), "/0/members/1/attributes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeMembership([]byte(tt.data))
			if !errors.Is(err, ErrBadMembership) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want ErrBadMembership mentioning %q", err, tt.want)
			}
		})
	}
}

// TestCorruptionDetected changes every byte of a real .snap file in turn;
// each change must be detected.
func TestCorruptionDetected(t *testing.T) {
	dir := snapDir(t, "v3.6", "m1")
	names, err := New(nil, dir).Names()
	if err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(filepath.Join(dir, names[0]))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decode(good); err != nil {
		t.Fatal(err)
	}
	b := bytes.Clone(good)
	for i := range b {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			b[i] ^= mask
			if _, err := Decode(b); err == nil {
				t.Fatalf("byte %d ^ %#02x not detected", i, mask)
			}
			b[i] = good[i]
		}
	}
	for _, n := range []int{0, 1, 2, len(good) / 2, len(good) - 1} {
		if _, err := Decode(good[:n]); err == nil {
			t.Errorf("file cut at %d not detected", n)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	good, err := Encode(&raftpb.Snapshot{Data: []byte("x"), Metadata: raftpb.SnapshotMetadata{Index: 5, Term: 2}})
	if err != nil {
		t.Fatal(err)
	}
	badCRC := bytes.Clone(good)
	badCRC[1]++
	tests := []struct {
		name string
		b    []byte
		want error
		msg  string
	}{
		{"empty file", nil, ErrEmptySnapshot, ""},
		{"zero crc", []byte{0x08, 0x00, 0x12, 0x01, 0x0a}, ErrEmptySnapshot, ""},
		{"no data", []byte{0x08, 0x05}, ErrEmptySnapshot, ""},
		{"crc mismatch", badCRC, ErrCRCMismatch, "want 0x"},
		{"truncated", good[:len(good)-1], ErrBadProto, "snappb data"},
		{"crc as bytes", []byte{0x0a, 0x00}, ErrBadProto, "wire type"},
		{"bad raftpb", []byte{0x08, 0xe1, 0xb4, 0xa2, 0xe3, 0x0b, 0x12, 0x01, 0xff}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(tt.b)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("Decode = %v, want %v mentioning %q", err, tt.want, tt.msg)
			}
		})
	}
	// Read names the file.
	path := filepath.Join(t.TempDir(), Name(2, 5))
	if err := os.WriteFile(path, badCRC, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(path); !errors.Is(err, ErrCRCMismatch) || !strings.Contains(err.Error(), Name(2, 5)) {
		t.Errorf("Read = %v", err)
	}
}

func TestParseName(t *testing.T) {
	for _, tc := range []struct{ term, index uint64 }{{0, 0}, {1, 0x25e}, {1<<64 - 1, 1<<64 - 1}} {
		term, index, err := ParseName(Name(tc.term, tc.index))
		if err != nil || term != tc.term || index != tc.index {
			t.Errorf("ParseName(Name(%d, %d)) = %d %d %v", tc.term, tc.index, term, index, err)
		}
	}
	for _, bad := range []string{"db", "0000000000000002-000000000000025e.snap.broken", "2-25e.snap", "000000000000000g-000000000000025e.snap", "0000000000000002_000000000000025e.snap"} {
		if _, _, err := ParseName(bad); !errors.Is(err, ErrBadName) {
			t.Errorf("ParseName(%q) = %v", bad, err)
		}
	}
}

// saveThree saves snapshots at indexes 100, 200 and 300 of term 2 into a
// new directory, then an empty one (which is not written).
func saveThree(t *testing.T) (*Snapshotter, []raftpb.Snapshot) {
	t.Helper()
	dir := t.TempDir()
	ss := New(nil, dir)
	data, err := EncodeMembership(Membership{Members: []schema.Member{{ID: 1, PeerURLs: []string{"http://a:2380"}}}, ClusterVersion: "3.6.0"})
	if err != nil {
		t.Fatal(err)
	}
	var saved []raftpb.Snapshot
	for i := uint64(1); i <= 3; i++ {
		s := raftpb.Snapshot{Data: data, Metadata: raftpb.SnapshotMetadata{Index: 100 * i, Term: 2, ConfState: raftpb.ConfState{Voters: []uint64{1}}}}
		if err := ss.SaveSnap(s); err != nil {
			t.Fatal(err)
		}
		saved = append(saved, s)
	}
	if err := ss.SaveSnap(raftpb.Snapshot{}); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 3 {
		t.Fatalf("%d files after 3 saves and an empty one", len(entries))
	}
	return ss, saved
}

// TestSavedSnapReadByEtcd has etcd's own snap package load what we saved.
func TestSavedSnapReadByEtcd(t *testing.T) {
	oracle := interoptest.Oracle(t, "snapread")
	ss, saved := saveThree(t)
	for _, s := range saved {
		name := Name(s.Metadata.Term, s.Metadata.Index)
		sameAsOracle(t, name, &s, snapread(t, oracle, filepath.Join(ss.Dir(), name)))
	}
	sameAsOracle(t, Name(2, 300), &saved[2], snapread(t, oracle, ss.Dir()))
}

// TestSaveLoad saves snapshots and loads them back, with a broken file on
// the way.
func TestSaveLoad(t *testing.T) {
	ss, saved := saveThree(t)
	dir := ss.Dir()
	got, err := ss.Load()
	if err != nil || got.String() != saved[2].String() {
		t.Fatalf("Load = %v, %v", got, err)
	}

	// The WAL knows only the first two snapshots.
	walSnaps := []walkit.Snapshot{{Index: 100, Term: 2}, {Index: 200, Term: 2}}
	got, err = ss.LoadNewestAvailable(walSnaps)
	if err != nil || got.Metadata.Index != 200 {
		t.Fatalf("LoadNewestAvailable = %v, %v", got, err)
	}
	// Break the second: it is renamed and the first one is used.
	second := filepath.Join(dir, Name(2, 200))
	b, _ := os.ReadFile(second)
	b[len(b)-1] ^= 1
	if err := os.WriteFile(second, b, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err = ss.LoadNewestAvailable(walSnaps)
	if err != nil || got.Metadata.Index != 100 {
		t.Fatalf("LoadNewestAvailable after breaking 200 = %v, %v", got, err)
	}
	if _, err := os.Stat(second + ".broken"); err != nil {
		t.Errorf("the broken file was not renamed: %v", err)
	}
	if _, err := ss.LoadNewestAvailable([]walkit.Snapshot{{Index: 100, Term: 3}}); !errors.Is(err, ErrNoSnapshot) {
		t.Errorf("no match: %v", err)
	}
}

// TestLoadNewestAvailableFixtures matches the fixture .snap files against
// the snapshot records of the fixture WALs.
func TestLoadNewestAvailableFixtures(t *testing.T) {
	for _, set := range fixture.Sets {
		t.Run(set, func(t *testing.T) {
			data := fixture.DataDir(t, set, "m1")
			walSnaps, err := walkit.ValidSnapshotEntries(nil, filepath.Join(data, "member", "wal"))
			if err != nil {
				t.Fatal(err)
			}
			ss := New(nil, filepath.Join(data, "member", "snap"))
			got, err := ss.LoadNewestAvailable(walSnaps)
			if err != nil {
				t.Fatal(err)
			}
			var newest walkit.Snapshot
			for _, w := range walSnaps {
				if w.Index > newest.Index {
					newest = w
				}
			}
			if got.Metadata.Index != newest.Index || got.Metadata.Term != newest.Term {
				t.Errorf("loaded %d/%d; newest WAL snapshot %d/%d", got.Metadata.Term, got.Metadata.Index, newest.Term, newest.Index)
			}
		})
	}
}

func TestNewestAvailableChangesNothing(t *testing.T) {
	dir := t.TempDir()
	ss := New(nil, dir)
	for _, i := range []uint64{5, 10} {
		if err := ss.SaveSnap(raftpb.Snapshot{Data: []byte("x"), Metadata: raftpb.SnapshotMetadata{Index: i, Term: 1}}); err != nil {
			t.Fatal(err)
		}
	}
	bad := filepath.Join(dir, Name(1, 20))
	if err := os.WriteFile(bad, []byte("not a snapshot"), 0o600); err != nil {
		t.Fatal(err)
	}
	walSnaps := []walkit.Snapshot{{Index: 5, Term: 1}, {Index: 20, Term: 1}}
	name, s, broken, err := ss.NewestAvailable(walSnaps)
	if err != nil || name != Name(1, 5) || s.Metadata.Index != 5 || len(broken) != 1 || broken[0] != Name(1, 20) {
		t.Fatalf("NewestAvailable = %s %v %v %v", name, s, broken, err)
	}
	if _, err := os.Stat(bad); err != nil {
		t.Fatalf("the broken file was moved: %v", err)
	}
	if _, _, _, err := ss.NewestAvailable(nil); !errors.Is(err, ErrNoSnapshot) {
		t.Fatalf("no match: %v", err)
	}
}
