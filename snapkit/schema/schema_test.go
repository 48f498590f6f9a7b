package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/authpb"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/lifeboat-dev/lifeboat/internal/interoptest"
)

func TestRevisionBytes(t *testing.T) {
	revs := []Revision{{0, 0}, {0, 1}, {1, 0}, {1, 1}, {1, 255}, {1, 256}, {255, 0}, {256, 0}, {1 << 40, 7}, {1<<63 - 1, 1<<63 - 1}}
	for i, r := range revs {
		for _, tomb := range []bool{false, true} {
			b := AppendRevision(nil, r, tomb)
			want := RevisionSize
			if tomb {
				want = TombstoneSize
			}
			if len(b) != want || IsTombstone(b) != tomb {
				t.Fatalf("%s tomb=%v: %d bytes, IsTombstone %v", r, tomb, len(b), IsTombstone(b))
			}
			got, gotTomb, err := ParseRevision(b)
			if err != nil || got != r || gotTomb != tomb {
				t.Fatalf("ParseRevision(%x) = %s, %v, %v; want %s, %v", b, got, gotTomb, err, r, tomb)
			}
		}
		// Byte order of the keys is revision order, the property that the
		// key bucket relies on.
		for _, o := range revs[i:] {
			if c := bytes.Compare(RevisionBytes(r), RevisionBytes(o)); c != r.Compare(o) {
				t.Fatalf("bytes.Compare(%s, %s) = %d, Compare = %d", r, o, c, r.Compare(o))
			}
		}
	}
	if !bytes.Equal(TombstoneBytes(Revision{3, 4})[:RevisionSize], RevisionBytes(Revision{3, 4})) {
		t.Fatal("a tombstone key is not its revision key plus a marker")
	}
}

func TestParseRevisionErrors(t *testing.T) {
	good := RevisionBytes(Revision{Main: 5, Sub: 1})
	tests := []struct {
		name string
		key  []byte
		want string
	}{
		{"empty", nil, "0 bytes"},
		{"short", good[:16], "16 bytes"},
		{"long", append(bytes.Clone(good), 't', 't'), "19 bytes"},
		{"separator", append(append(bytes.Clone(good[:8]), '-'), good[9:]...), "byte 8"},
		{"marker", append(bytes.Clone(good), 'x'), "byte 17"},
		{"negative", append([]byte{0x80}, good[1:]...), "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := ParseRevision(tt.key)
			if !errors.Is(err, ErrBadRevision) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseRevision(%x) = %v, want ErrBadRevision mentioning %q", tt.key, err, tt.want)
			}
		})
	}
}

func TestMemberAndClusterID(t *testing.T) {
	// The check values of FORMATS.md §9 (etcd's defaults).
	id, err := MemberID([]string{"http://localhost:2380"}, "etcd-cluster", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := FormatID(id); got != "8e9e05c52164694d" {
		t.Fatalf("member ID %s, want 8e9e05c52164694d", got)
	}
	if got := FormatID(ClusterID([]uint64{id})); got != "cdf818194e3a8c32" {
		t.Fatalf("cluster ID %s, want cdf818194e3a8c32", got)
	}
	// URL order does not matter, URLs are normalised, and a runtime add
	// (with a time) gives another ID.
	a, _ := MemberID([]string{"http://b:2380", "http://a:2380"}, "t", nil)
	b, _ := MemberID([]string{"http://a:2380", "http://b:2380"}, "t", nil)
	if a != b {
		t.Fatal("member ID depends on the order of the peer URLs")
	}
	if _, err := MemberID([]string{"http://[::1"}, "t", nil); err == nil {
		t.Fatal("a bad peer URL was accepted")
	}
	// Every fixture cluster's ID derives from its members' IDs.
	for _, set := range []string{"v3.6", "v3.5"} {
		var ml membersJSON
		readJSON(t, set, "members.json", &ml)
		var ids []uint64
		for _, m := range ml.Members {
			ids = append(ids, m.ID)
		}
		if got := ClusterID(ids); got != ml.Header.ClusterID {
			t.Errorf("%s: ClusterID = %d, etcd says %d", set, got, ml.Header.ClusterID)
		}
	}
}

// TestFixtureBuckets reads every bucket of every real etcd db and checks it
// against what etcd's own tools printed.
func TestFixtureBuckets(t *testing.T) {
	for _, f := range fixtureDBs(t) {
		t.Run(f.set+"/"+f.name, func(t *testing.T) {
			var ml membersJSON
			readJSON(t, f.set, "members.json", &ml)
			var eps []endpointStatus
			readJSON(t, f.set, "endpoint-status.json", &eps)
			ep := eps[0]
			view(t, f.path, func(tx *bolt.Tx) {
				var names [][]byte
				if err := tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
					names = append(names, bytes.Clone(name))
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				if !slices.EqualFunc(names, Buckets, bytes.Equal) {
					t.Errorf("buckets %q, want %q", names, Buckets)
				}
				if f.name == "solo" {
					// A one-member cluster of its own, which etcd's
					// JSON does not describe.
					checkSolo(t, tx)
					return
				}
				checkMeta(t, tx, ep)
				checkMembers(t, tx, ml)
				checkKeys(t, tx, ep.Status.Header.Revision)
				checkRest(t, tx, ep)
			})
		})
	}
}

// checkSolo checks the solo member's db against itself: a member whose ID
// its confState names, and a key bucket that decodes.
func checkSolo(t *testing.T, tx *bolt.Tx) {
	members, err := Members(tx)
	if err != nil || len(members) != 1 {
		t.Fatalf("members %v, %v", members, err)
	}
	cs, err := ConfState(tx)
	if err != nil || cs == nil || !slices.Equal(cs.Voters, []uint64{members[0].ID}) {
		t.Errorf("confState %v, %v; member %s", cs, err, FormatID(members[0].ID))
	}
	if ClusterID([]uint64{members[0].ID}) == 0 {
		t.Error("cluster ID 0")
	}
	latest, ok, err := LatestRevision(tx)
	if err != nil || !ok {
		t.Fatalf("latest revision: %v %v", ok, err)
	}
	checkKeys(t, tx, latest.Main)
}

func checkMeta(t *testing.T, tx *bolt.Tx, ep endpointStatus) {
	ci, err := ConsistentIndex(tx)
	if err != nil || ci == 0 || ci > ep.Status.RaftIndex {
		t.Errorf("consistent index %d, %v; want in (0, %d]", ci, err, ep.Status.RaftIndex)
	}
	term, err := Term(tx)
	if err != nil || term != ep.Status.Header.RaftTerm {
		t.Errorf("term %d, %v; want %d", term, err, ep.Status.Header.RaftTerm)
	}
	sv, err := StorageVersion(tx)
	if err != nil || sv != ep.Status.StorageVersion {
		t.Errorf("storage version %q, %v; want %q", sv, err, ep.Status.StorageVersion)
	}
	sched, ok1, err1 := ScheduledCompactRev(tx)
	fin, ok2, err2 := FinishedCompactRev(tx)
	if err1 != nil || err2 != nil || !ok1 || !ok2 || fin > sched || sched > ep.Status.Header.Revision {
		t.Errorf("compaction scheduled %d %v %v, finished %d %v %v", sched, ok1, err1, fin, ok2, err2)
	}
}

func checkMembers(t *testing.T, tx *bolt.Tx, ml membersJSON) {
	members, err := Members(tx)
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != len(ml.Members) {
		t.Fatalf("%d members, etcd lists %d", len(members), len(ml.Members))
	}
	var ids []uint64
	for _, want := range ml.Members {
		i := slices.IndexFunc(members, func(m Member) bool { return m.ID == want.ID })
		if i < 0 {
			t.Fatalf("member %s missing", FormatID(want.ID))
		}
		m := members[i]
		if m.Name != want.Name || !slices.Equal(m.PeerURLs, want.PeerURLs) || !slices.Equal(m.ClientURLs, want.ClientURLs) || m.IsLearner != want.IsLearner {
			t.Errorf("member %+v, etcd lists %+v", m, want)
		}
		ids = append(ids, m.ID)
	}
	cs, err := ConfState(tx)
	if err != nil || cs == nil {
		t.Fatalf("confState %v, %v", cs, err)
	}
	slices.Sort(ids)
	if voters := slices.Sorted(slices.Values(cs.Voters)); !slices.Equal(voters, ids) {
		t.Errorf("confState voters %v, members %v", voters, ids)
	}
	// The JSON we write for a member is the JSON etcd wrote.
	b := tx.Bucket(MembersBucket)
	for _, m := range members {
		raw := b.Get([]byte(FormatID(m.ID)))
		ours, err := json.Marshal(m)
		if err != nil || !bytes.Equal(ours, raw) {
			t.Errorf("member JSON\n ours %s\n etcd %s", ours, raw)
		}
	}
	removed, err := RemovedMembers(tx)
	if err != nil || len(removed) != 0 {
		t.Errorf("removed members %v, %v", removed, err)
	}
}

func checkKeys(t *testing.T, tx *bolt.Tx, headRev int64) {
	var last Revision
	n := 0
	err := ForEachKey(tx, Revision{}, func(e KeyEntry) error {
		n++
		if n > 1 && !e.Rev.GreaterThan(last) {
			return fmt.Errorf("revision %s after %s", e.Rev, last)
		}
		last = e.Rev
		switch {
		case e.Tombstone && (e.KV.ModRevision != 0 || e.KV.Value != nil):
			return fmt.Errorf("tombstone at %s holds more than a key: %v", e.Rev, e.KV)
		case !e.Tombstone && e.KV.ModRevision != e.Rev.Main:
			return fmt.Errorf("KeyValue at %s has mod revision %d", e.Rev, e.KV.ModRevision)
		case len(e.KV.Key) == 0:
			return fmt.Errorf("empty key at %s", e.Rev)
		}
		return nil
	})
	if err != nil || n == 0 {
		t.Fatalf("key bucket: %d pairs, %v", n, err)
	}
	latest, ok, err := LatestRevision(tx)
	if err != nil || !ok || latest != last || latest.Main != headRev {
		t.Errorf("LatestRevision %s %v %v; last pair %s; etcd's revision %d", latest, ok, err, last, headRev)
	}
}

func checkRest(t *testing.T, tx *bolt.Tx, ep endpointStatus) {
	leases, err := Leases(tx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range leases {
		if l.ID == 0 || l.TTL <= 0 {
			t.Errorf("lease %+v", l)
		}
	}
	// The cluster version is the servers' major.minor, patch 0.
	parts := strings.SplitN(ep.Status.Version, ".", 3)
	if cv, err := ClusterVersion(tx); err != nil || len(parts) != 3 || cv != parts[0]+"."+parts[1]+".0" {
		t.Errorf("cluster version %q, %v; servers run %s", cv, err, ep.Status.Version)
	}
	if _, ok, err := Downgrade(tx); err != nil || ok {
		t.Errorf("downgrade: %v %v", ok, err)
	}
	alarms, err := Alarms(tx)
	if err != nil || len(alarms) != 0 {
		t.Errorf("alarms %v, %v", alarms, err)
	}
	enabled, err := AuthEnabled(tx)
	if err != nil || enabled {
		t.Errorf("auth enabled %v, %v", enabled, err)
	}
	if rev, err := AuthRevision(tx); err != nil || rev == 0 {
		t.Errorf("auth revision %d, %v", rev, err)
	}
	users, err := Users(tx)
	if err != nil || len(users) != 0 {
		t.Errorf("users %v, %v", users, err)
	}
	roles, err := Roles(tx)
	if err != nil || len(roles) != 0 {
		t.Errorf("roles %v, %v", roles, err)
	}
}

// writeDB is a db written from scratch through the schema, with the model
// of what it holds.
type writeDB struct {
	path     string
	live     map[string]int64 // key -> mod revision
	head     int64            // the last revision written, put or tombstone
	members  []Member
	lease    Lease
	ci, term uint64
}

// newWriteDB writes keys, tombstones, meta, members, a lease, an alarm, auth
// and the cluster version 3.6.0 into a new db.
func newWriteDB(t *testing.T) *writeDB {
	t.Helper()
	w := &writeDB{path: filepath.Join(t.TempDir(), "db"), live: map[string]int64{}, ci: 1234, term: 7}
	db, err := Open(w.path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, urls := range [][]string{{"http://10.0.0.1:2380"}, {"http://10.0.0.2:2380"}, {"http://10.0.0.3:2380"}} {
		id, err := MemberID(urls, "lifeboat-test", nil)
		if err != nil {
			t.Fatal(err)
		}
		w.members = append(w.members, Member{ID: id, Name: "n" + FormatID(id)[:4], PeerURLs: urls, ClientURLs: []string{strings.Replace(urls[0], "2380", "2379", 1)}})
	}
	w.members[2].IsLearner = true
	SortMembers(w.members)
	w.lease = Lease{ID: 0x694d7a1b2c3d4e5f, TTL: 60, RemainingTTL: 42}
	created := map[string]int64{}
	version := map[string]int64{}
	err = db.Update(func(tx *bolt.Tx) error {
		if err := CreateBuckets(tx); err != nil {
			return err
		}
		// Revision 1 is the empty store; writes start at 2. Every third
		// revision deletes a live key, the others put one of 40 keys.
		for rev := int64(2); rev <= 300; rev++ {
			key := fmt.Sprintf("/k/%02d", (rev*7)%40)
			if _, ok := w.live[key]; ok && rev%3 == 0 {
				if err := PutTombstone(tx, Revision{Main: rev}, []byte(key)); err != nil {
					return err
				}
				delete(w.live, key)
				delete(version, key)
				w.head = rev
				continue
			}
			if _, ok := w.live[key]; !ok {
				created[key] = rev
			}
			version[key]++
			kv := &mvccpb.KeyValue{Key: []byte(key), CreateRevision: created[key], ModRevision: rev, Version: version[key], Value: []byte(fmt.Sprint("v", rev))}
			if rev%5 == 0 {
				kv.Lease = w.lease.ID
			}
			if err := PutKeyValue(tx, Revision{Main: rev}, kv); err != nil {
				return err
			}
			w.live[key] = rev
			w.head = rev
		}
		for _, m := range w.members {
			if err := PutMember(tx, m); err != nil {
				return err
			}
		}
		var voters, learners []uint64
		for _, m := range w.members {
			if m.IsLearner {
				learners = append(learners, m.ID)
			} else {
				voters = append(voters, m.ID)
			}
		}
		return errors.Join(
			SetConsistentIndex(tx, w.ci), SetTerm(tx, w.term),
			SetConfState(tx, raftpb.ConfState{Voters: voters, Learners: learners}),
			SetScheduledCompactRev(tx, 100), SetFinishedCompactRev(tx, 90),
			SetStorageVersion(tx, "3.6.0"), SetClusterVersion(tx, "3.6.0"),
			SetDowngrade(tx, DowngradeInfo{TargetVersion: "3.5.0", Enabled: true}),
			PutLease(tx, w.lease), PutLease(tx, Lease{ID: 9, TTL: 5}), DeleteLease(tx, 9),
			PutAlarm(tx, &etcdserverpb.AlarmMember{MemberID: w.members[0].ID, Alarm: etcdserverpb.AlarmType_NOSPACE}),
			SetAuthEnabled(tx, true), SetAuthRevision(tx, 3),
			PutUser(tx, &authpb.User{Name: []byte("root"), Roles: []string{"root"}}),
			PutRole(tx, &authpb.Role{Name: []byte("root")}),
			PutRole(tx, &authpb.Role{Name: []byte("gone")}), DeleteRole(tx, "gone"),
			RemoveMember(tx, 0xdead),
		)
	})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestWriteReadBack(t *testing.T) {
	w := newWriteDB(t)
	view(t, w.path, func(tx *bolt.Tx) {
		ci, err1 := ConsistentIndex(tx)
		term, err2 := Term(tx)
		cs, err3 := ConfState(tx)
		sched, _, err4 := ScheduledCompactRev(tx)
		fin, _, err5 := FinishedCompactRev(tx)
		if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
			t.Fatal(err)
		}
		if ci != w.ci || term != w.term || len(cs.Voters) != 2 || len(cs.Learners) != 1 || sched != 100 || fin != 90 {
			t.Errorf("meta: ci %d term %d confState %v compaction %d/%d", ci, term, cs, sched, fin)
		}
		members, err := Members(tx)
		if err != nil || !slices.EqualFunc(members, w.members, func(a, b Member) bool {
			return a.ID == b.ID && a.Name == b.Name && a.IsLearner == b.IsLearner && slices.Equal(a.PeerURLs, b.PeerURLs) && slices.Equal(a.ClientURLs, b.ClientURLs)
		}) {
			t.Errorf("members %+v, %v; wrote %+v", members, err, w.members)
		}
		if removed, err := RemovedMembers(tx); err != nil || !slices.Equal(removed, []uint64{0xdead}) {
			t.Errorf("removed %v, %v", removed, err)
		}
		if leases, err := Leases(tx); err != nil || !slices.Equal(leases, []Lease{w.lease}) {
			t.Errorf("leases %v, %v; wrote %v", leases, err, w.lease)
		}
		d, ok, err := Downgrade(tx)
		if err != nil || !ok || !d.Enabled || d.TargetVersion != "3.5.0" {
			t.Errorf("downgrade %+v %v %v", d, ok, err)
		}
		alarms, err := Alarms(tx)
		if err != nil || len(alarms) != 1 || alarms[0].MemberID != w.members[0].ID || alarms[0].Alarm != etcdserverpb.AlarmType_NOSPACE {
			t.Errorf("alarms %v, %v", alarms, err)
		}
		en, err1 := AuthEnabled(tx)
		ar, err2 := AuthRevision(tx)
		root, err3 := User(tx, "root")
		nobody, err4 := User(tx, "nobody")
		roles, err5 := Roles(tx)
		if err := errors.Join(err1, err2, err3, err4, err5); err != nil || !en || ar != 3 || root == nil || nobody != nil || len(roles) != 1 {
			t.Errorf("auth: %v %d %v %v %v %v", en, ar, root, nobody, roles, err)
		}
		live := map[string]int64{}
		if err := ForEachKey(tx, Revision{}, func(e KeyEntry) error {
			if e.Tombstone {
				delete(live, string(e.KV.Key))
			} else {
				live[string(e.KV.Key)] = e.Rev.Main
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(live) != fmt.Sprint(w.live) {
			t.Errorf("live keys replayed %v, wrote %v", live, w.live)
		}
	})
}

// TestEtcdutlReadsOurDB has real etcdutl read a db written from scratch.
func TestEtcdutlReadsOurDB(t *testing.T) {
	etcdutl := interoptest.Binary(t, "etcdutl")
	w := newWriteDB(t)
	out, err := exec.Command(etcdutl, "snapshot", "status", "-w", "json", w.path).Output()
	if err != nil {
		t.Fatalf("etcdutl snapshot status: %v\n%s", err, out)
	}
	var st snapshotStatus
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if st.Revision != w.head || st.TotalKey != len(w.live) || st.Version != "3.6.0" {
		t.Errorf("etcdutl: %+v; wrote revision %d, %d live keys, version 3.6.0", st, w.head, len(w.live))
	}
}

func TestBadValues(t *testing.T) {
	tests := []struct {
		name   string
		bucket []byte
		key    []byte
		value  []byte
		read   func(tx *bolt.Tx) error
	}{
		{"consistent index", MetaBucket, ConsistentIndexKey, []byte{1, 2, 3}, func(tx *bolt.Tx) error { _, err := ConsistentIndex(tx); return err }},
		{"term", MetaBucket, TermKey, []byte{}, func(tx *bolt.Tx) error { _, err := Term(tx); return err }},
		{"confState", MetaBucket, ConfStateKey, []byte("{"), func(tx *bolt.Tx) error { _, err := ConfState(tx); return err }},
		{"compact", MetaBucket, FinishedCompactRevKey, []byte("short"), func(tx *bolt.Tx) error { _, _, err := FinishedCompactRev(tx); return err }},
		{"compact tombstone", MetaBucket, ScheduledCompactRevKey, TombstoneBytes(Revision{Main: 3}), func(tx *bolt.Tx) error { _, _, err := ScheduledCompactRev(tx); return err }},
		{"lease", LeaseBucket, LeaseKey(5), []byte{0x08}, func(tx *bolt.Tx) error { _, err := Leases(tx); return err }},
		{"lease key", LeaseBucket, LeaseKey(5), MarshalLease(Lease{ID: 6, TTL: 1}), func(tx *bolt.Tx) error { _, err := Leases(tx); return err }},
		{"member JSON", MembersBucket, []byte("1"), []byte(`{"id":"x"}`), func(tx *bolt.Tx) error { _, err := Members(tx); return err }},
		{"member key", MembersBucket, []byte("2"), []byte(`{"id":1,"peerURLs":[]}`), func(tx *bolt.Tx) error { _, err := Members(tx); return err }},
		{"removed", MembersRemovedBucket, []byte("zz"), []byte("removed"), func(tx *bolt.Tx) error { _, err := RemovedMembers(tx); return err }},
		{"storage version", MetaBucket, StorageVersionKey, []byte("3.6"), func(tx *bolt.Tx) error { _, err := StorageVersion(tx); return err }},
		{"cluster version", ClusterBucket, ClusterVersionKey, []byte("v3.6.0"), func(tx *bolt.Tx) error { _, err := ClusterVersion(tx); return err }},
		{"downgrade", ClusterBucket, DowngradeKey, []byte("[]"), func(tx *bolt.Tx) error { _, _, err := Downgrade(tx); return err }},
		{"alarm", AlarmBucket, []byte{0xff}, nil, func(tx *bolt.Tx) error { _, err := Alarms(tx); return err }},
		{"auth enabled", AuthBucket, AuthEnabledKey, []byte{2}, func(tx *bolt.Tx) error { _, err := AuthEnabled(tx); return err }},
		{"user", AuthUsersBucket, []byte("u"), []byte{0x0a, 0x05}, func(tx *bolt.Tx) error { _, err := Users(tx); return err }},
		{"key value", KeyBucket, RevisionBytes(Revision{Main: 2}), []byte{0x0a, 0x05, 'a'}, func(tx *bolt.Tx) error {
			return ForEachKey(tx, Revision{}, func(KeyEntry) error { return nil })
		}},
		{"key unknown field", KeyBucket, RevisionBytes(Revision{Main: 2}), []byte{0x0a, 0x01, 'a', 0x78, 0x01}, func(tx *bolt.Tx) error {
			return ForEachKey(tx, Revision{}, func(KeyEntry) error { return nil })
		}},
		{"key revision", KeyBucket, []byte("not a revision"), nil, func(tx *bolt.Tx) error {
			return ForEachKey(tx, Revision{}, func(KeyEntry) error { return nil })
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := Open(filepath.Join(t.TempDir(), "db"), Options{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			err = db.Update(func(tx *bolt.Tx) error {
				if err := CreateBuckets(tx); err != nil {
					return err
				}
				return tx.Bucket(tt.bucket).Put(tt.key, tt.value)
			})
			if err != nil {
				t.Fatal(err)
			}
			err = db.View(tt.read)
			if !errors.Is(err, ErrBadValue) && !errors.Is(err, ErrBadRevision) {
				t.Fatalf("read gave %v, want ErrBadValue or ErrBadRevision", err)
			}
			if !strings.Contains(err.Error(), string(tt.bucket)) && !strings.Contains(err.Error(), fmt.Sprintf("%x", tt.key)) {
				t.Errorf("error %q names neither the bucket nor the key", err)
			}
		})
	}
}

func TestMissingBuckets(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "db"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		// Reads of a db without buckets give zero values ...
		if ci, err := ConsistentIndex(tx); err != nil || ci != 0 {
			t.Errorf("consistent index %d, %v", ci, err)
		}
		if ms, err := Members(tx); err != nil || ms != nil {
			t.Errorf("members %v, %v", ms, err)
		}
		if _, ok, err := LatestRevision(tx); err != nil || ok {
			t.Errorf("latest revision %v, %v", ok, err)
		}
		// ... writes and strict reads fail with ErrBucketMissing.
		for _, err := range []error{
			SetTerm(tx, 1), PutMember(tx, Member{ID: 1}), PutTombstone(tx, Revision{Main: 2}, []byte("k")),
			ClearMembers(tx), ForEachKey(tx, Revision{}, func(KeyEntry) error { return nil }),
		} {
			if !errors.Is(err, ErrBucketMissing) {
				t.Errorf("got %v, want ErrBucketMissing", err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestClearMembers(t *testing.T) {
	w := newWriteDB(t)
	db, err := Open(w.path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(ClearMembers); err != nil {
		t.Fatal(err)
	}
	if err := db.View(func(tx *bolt.Tx) error {
		ms, err1 := Members(tx)
		rm, err2 := RemovedMembers(tx)
		cv, err3 := ClusterVersion(tx)
		if len(ms) != 0 || len(rm) != 0 || cv != "3.6.0" {
			t.Errorf("after ClearMembers: %v %v %q", ms, rm, cv)
		}
		return errors.Join(err1, err2, err3)
	}); err != nil {
		t.Fatal(err)
	}
}

func TestLeaseEncoding(t *testing.T) {
	tests := []Lease{{}, {ID: 1}, {ID: -1, TTL: 1 << 40}, {ID: 0x694d7a1b2c3d4e5f, TTL: 60, RemainingTTL: 42}}
	for _, l := range tests {
		got, err := UnmarshalLease(MarshalLease(l))
		if err != nil || got != l {
			t.Errorf("round trip of %+v: %+v, %v", l, got, err)
		}
	}
	// Fields come in ascending order, and zero fields are omitted (proto3).
	if b := MarshalLease(Lease{TTL: 1}); !bytes.Equal(b, []byte{0x10, 0x01}) {
		t.Errorf("MarshalLease({TTL:1}) = %x", b)
	}
	// An unknown field is skipped; a bad wire type for a known one is not.
	if l, err := UnmarshalLease([]byte{0x20, 0x05, 0x08, 0x03}); err != nil || l.ID != 3 {
		t.Errorf("unknown field: %+v, %v", l, err)
	}
	if _, err := UnmarshalLease([]byte{0x0a, 0x00}); err == nil {
		t.Error("ID as bytes was accepted")
	}
}
