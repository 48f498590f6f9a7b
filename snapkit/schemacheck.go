package snapkit

import (
	"cmp"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/coreos/go-semver/semver"
	bolt "go.etcd.io/bbolt"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
	"github.com/lifeboat-dev/lifeboat/snapkit/snap"
)

// Bucket names of etcd's schema used by the walk.
const (
	bucketKey  = "key"
	bucketMeta = "meta"
)

// MetaStatus is the meta and cluster buckets.
type MetaStatus struct {
	ConsistentIndex uint64 `json:"consistentIndex"`
	Term            uint64 `json:"term"`
	// CompactRevision is meta/finishedCompactRev, the compaction done;
	// ScheduledCompactRevision the last one asked for. They differ when a
	// member stopped in the middle of a compaction. Each is -1 when the db
	// holds none, as etcd reports a store never compacted.
	CompactRevision          int64             `json:"compactRevision"`
	ScheduledCompactRevision int64             `json:"scheduledCompactRevision"`
	StorageVersion           string            `json:"storageVersion,omitempty"`
	ClusterVersion           string            `json:"clusterVersion,omitempty"`
	ConfState                *raftpb.ConfState `json:"confState,omitempty"`
}

// MemberStatus is one member of the members bucket.
type MemberStatus struct {
	ID         string   `json:"id"` // hex, as etcd prints it
	Name       string   `json:"name"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs,omitempty"`
	IsLearner  bool     `json:"isLearner,omitempty"`
}

func memberStatus(m schema.Member) MemberStatus {
	return MemberStatus{ID: schema.FormatID(m.ID), Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs, IsLearner: m.IsLearner}
}

// lockTimeout bounds the wait for bbolt's shared lock.
const lockTimeout = time.Second

// openBolt opens a db that passed the structural walk with bbolt,
// read-only. bbolt never reads past the high-water mark, so the trailer,
// which the walk proved lies beyond it, is never seen.
func openBolt(src Source) (*bolt.DB, error) {
	db, err := schema.Open(src.DBPath, schema.Options{ReadOnly: true, Timeout: lockTimeout})
	if err != nil {
		return nil, fmt.Errorf("snapkit: %w", err)
	}
	return db, nil
}

// structural reports whether fs holds damage that makes bbolt unsafe to
// use. An invalid meta page beside a valid one does not: bbolt reads the
// valid one.
func (fs *findings) structural() bool {
	return fs.suppressed > 0 || slices.ContainsFunc(fs.list, func(f Finding) bool { return f.Check == CheckBolt && !f.metaFallback })
}

// checkSchema reads meta, cluster, members, leases and auth through schema and
// checks them against what the walk saw. It does nothing when the
// structure is damaged: bbolt must not read such a file.
func checkSchema(src Source, st *Status, kb *keyBucket, fs *findings) error {
	if fs.structural() {
		fs.add(Finding{Check: CheckSchema, Message: "schema checks skipped: the bbolt structure is damaged"})
		return nil
	}
	present := map[string]bool{}
	for _, b := range st.Buckets {
		present[b.Name] = true
	}
	for _, name := range []string{bucketKey, bucketMeta} {
		if !present[name] {
			fs.add(Finding{Check: CheckSchema, Bucket: name, Message: "bucket missing"})
		}
	}
	db, err := openBolt(src)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		checkMeta(tx, st, fs)
		if src.Kind == KindDataDir {
			checkSnapIndex(filepath.Dir(src.DBPath), st, fs)
		}
		kb.checkSubRevisions(max(st.Meta.CompactRevision, st.Meta.ScheduledCompactRevision))
		checkMembers(tx, st, fs)
		checkLeases(tx, st, kb, fs)
		checkAuth(tx, st, fs)
		return nil
	})
}

func metaFinding(fs *findings, key []byte, format string, args ...any) {
	fs.add(Finding{Check: CheckMeta, Bucket: bucketMeta, Key: string(key), Message: fmt.Sprintf(format, args...)})
}

func checkMeta(tx *bolt.Tx, st *Status, fs *findings) {
	m := &st.Meta
	var err error
	if m.ConsistentIndex, err = schema.ConsistentIndex(tx); err != nil {
		metaFinding(fs, schema.ConsistentIndexKey, "%v", err)
	} else if m.ConsistentIndex == 0 {
		metaFinding(fs, schema.ConsistentIndexKey, "missing or 0: no raft entry was ever applied to this db")
	}
	if m.Term, err = schema.Term(tx); err != nil {
		metaFinding(fs, schema.TermKey, "%v", err)
	} else if m.Term == 0 {
		metaFinding(fs, schema.TermKey, "missing or 0 (a db last written before etcd 3.5?)")
	}
	if m.ConfState, err = schema.ConfState(tx); err != nil {
		metaFinding(fs, schema.ConfStateKey, "%v", err)
	}
	finished, hasFinished, err := schema.FinishedCompactRev(tx)
	if err != nil {
		metaFinding(fs, schema.FinishedCompactRevKey, "%v", err)
	}
	scheduled, hasScheduled, err := schema.ScheduledCompactRev(tx)
	if err != nil {
		metaFinding(fs, schema.ScheduledCompactRevKey, "%v", err)
	}
	// Never compacted is -1, as etcd reports it (and get, diff and hashkv).
	if !hasFinished {
		finished = -1
	}
	if !hasScheduled {
		scheduled = -1
	}
	m.CompactRevision, m.ScheduledCompactRevision = finished, scheduled
	switch {
	case hasScheduled && finished > scheduled:
		metaFinding(fs, schema.FinishedCompactRevKey, "finished compaction %d is above the scheduled one %d", finished, scheduled)
	case scheduled > st.Revision:
		metaFinding(fs, schema.ScheduledCompactRevKey, "compaction %d is above the latest revision %d", scheduled, st.Revision)
	}
	m.StorageVersion, _ = schema.StorageVersion(tx)
	// etcdutl prints the storage version as semver, and nothing when it
	// does not parse (every 3.5 db).
	if m.StorageVersion != "" {
		if v, err := semver.NewVersion(m.StorageVersion); err != nil {
			metaFinding(fs, schema.StorageVersionKey, "%q is not a version: %v", m.StorageVersion, err)
		} else {
			st.Version = v.String()
		}
	}
	if m.ClusterVersion, err = schema.ClusterVersion(tx); err != nil {
		fs.add(Finding{Check: CheckSchema, Bucket: "cluster", Message: err.Error()})
	}
}

// checkSnapIndex compares the consistent index with the newest .snap file
// beside the db: etcd refuses to start when the snapshot is ahead of the db.
func checkSnapIndex(dir string, st *Status, fs *findings) {
	names, err := snap.New(nil, dir).Names()
	if err != nil {
		fs.add(Finding{Check: CheckMeta, Message: err.Error()})
		return
	}
	for _, name := range names {
		_, index, err := snap.ParseName(name)
		if err == nil && index > st.Meta.ConsistentIndex {
			metaFinding(fs, schema.ConsistentIndexKey, "%d is below the index %d of %s: etcd will not start on this data dir",
				st.Meta.ConsistentIndex, index, filepath.Join(dir, name))
		}
	}
}

func checkMembers(tx *bolt.Tx, st *Status, fs *findings) {
	members, err := schema.Members(tx)
	if err != nil {
		fs.add(Finding{Check: CheckMembers, Bucket: string(schema.MembersBucket), Message: err.Error()})
	}
	for _, m := range members {
		st.Members = append(st.Members, memberStatus(m))
		if len(m.PeerURLs) == 0 {
			fs.add(Finding{Check: CheckMembers, Bucket: string(schema.MembersBucket), Key: schema.FormatID(m.ID), Message: "member has no peer URLs"})
		}
	}
	removed, err := schema.RemovedMembers(tx)
	if err != nil {
		fs.add(Finding{Check: CheckMembers, Bucket: string(schema.MembersRemovedBucket), Message: err.Error()})
	}
	for _, id := range removed {
		st.Removed = append(st.Removed, schema.FormatID(id))
		if _, found := slices.BinarySearchFunc(members, id, func(m schema.Member, id uint64) int { return cmp.Compare(m.ID, id) }); found {
			fs.add(Finding{Check: CheckMembers, Bucket: string(schema.MembersBucket), Key: schema.FormatID(id), Message: "member is also in members_removed"})
		}
	}
}

// checkAuth reads the auth buckets into st.Auth, and reports a value that
// does not decode (etcd would not start on it).
func checkAuth(tx *bolt.Tx, st *Status, fs *findings) {
	a := &st.Auth
	var err error
	if a.Enabled, err = schema.AuthEnabled(tx); err != nil {
		fs.add(Finding{Check: CheckSchema, Bucket: string(schema.AuthBucket), Key: string(schema.AuthEnabledKey), Message: err.Error()})
	}
	if a.Revision, err = schema.AuthRevision(tx); err != nil {
		fs.add(Finding{Check: CheckSchema, Bucket: string(schema.AuthBucket), Key: string(schema.AuthRevisionKey), Message: err.Error()})
	}
	users, err := schema.Users(tx)
	if err != nil {
		fs.add(Finding{Check: CheckSchema, Bucket: string(schema.AuthUsersBucket), Message: err.Error()})
	}
	roles, err := schema.Roles(tx)
	if err != nil {
		fs.add(Finding{Check: CheckSchema, Bucket: string(schema.AuthRolesBucket), Message: err.Error()})
	}
	a.Users, a.Roles = len(users), len(roles)
}

// checkLeases reports live keys whose lease is not in the lease bucket,
// naming each key as its last put, read again from tx, holds it.
func checkLeases(tx *bolt.Tx, st *Status, kb *keyBucket, fs *findings) {
	leases, err := schema.Leases(tx)
	if err != nil {
		fs.add(Finding{Check: CheckLease, Bucket: string(schema.LeaseBucket), Message: err.Error()})
		return
	}
	st.Leases = len(leases)
	known := make(map[int64]bool, len(leases))
	for _, l := range leases {
		known[l.ID] = true
	}
	orphans := map[keyID]bool{}
	for _, lk := range kb.liveLeased {
		if !known[lk.lease] {
			orphans[lk.id] = true
		}
	}
	if len(orphans) == 0 {
		return
	}
	type orphan struct {
		key   string
		lease int64
	}
	var list []orphan
	revs := kb.lastLeasedPuts(orphans)
	keys := tx.Bucket(schema.KeyBucket)
	for _, lk := range kb.liveLeased {
		if !orphans[lk.id] {
			continue
		}
		// The walk decoded this pair; should the file have changed since,
		// the revision names the key instead.
		name := "at revision " + revs[lk.id].String()
		revKey := schema.RevisionBytes(revs[lk.id])
		if keys != nil {
			if kv, err := schema.ViewKeyValue(revKey, keys.Get(revKey)); err == nil && len(kv.Key) > 0 {
				name = Printable(kv.Key)
			}
		}
		list = append(list, orphan{name, lk.lease})
	}
	slices.SortFunc(list, func(a, b orphan) int { return cmp.Compare(a.key, b.key) })
	for _, o := range list {
		fs.add(Finding{Check: CheckLease, Bucket: bucketKey, Key: o.key,
			Message: fmt.Sprintf("live key holds lease %x, which is not in the lease bucket", o.lease)})
	}
}
