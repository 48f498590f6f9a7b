package restore

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/lifeboat-dev/lifeboat/snapkit"
	"github.com/lifeboat-dev/lifeboat/snapkit/datadir"
	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
)

// Errors of a restore. Test them with errors.Is.
var (
	// ErrNoHash means the input has no SHA-256 trailer and SkipHashCheck
	// was not given.
	ErrNoHash = errors.New("restore: the input has no SHA-256 trailer (not a snapshot file?); pass --skip-hash-check to restore it anyway")
	// ErrSameClusterID means the new cluster would have the ID of the
	// cluster the input came from: its old members could then talk to the
	// new ones.
	ErrSameClusterID = errors.New("restore: the new cluster ID is the old one")
)

// SnapshotOptions are the flags of `restore snapshot`, which are those of
// `etcdutl snapshot restore` plus learners.
type SnapshotOptions struct {
	// Path is the snapshot file (`etcdctl snapshot save`). A db without the
	// SHA-256 trailer (a copied member/snap/db, or a data dir, whose member
	// must not be running) needs SkipHashCheck.
	Path string
	// Name is this member's name (--name); "" means DefaultName.
	Name string
	// Cluster is the new cluster (--initial-cluster, --initial-learners);
	// nil means Name alone with PeerURLs.
	Cluster []MemberSpec
	// PeerURLs are this member's peer URLs (--initial-advertise-peer-urls);
	// nil means its URLs in Cluster (or DefaultPeerURL). Given, they must
	// be the member's URLs in Cluster.
	PeerURLs []string
	// Token is --initial-cluster-token. "" derives a fresh one from the
	// db's SHA-256 (FreshToken): every member restored from the same file
	// gets the same one.
	Token string
	// DataDir (--data-dir, "" means <name>.etcd) must be absent or empty;
	// WALDir (--wal-dir, "" means <data-dir>/member/wal) absent.
	DataDir, WALDir string
	// SkipHashCheck does not verify the SHA-256 trailer (--skip-hash-check).
	SkipHashCheck bool
	// BumpRevision raises the revision (--bump-revision); it requires
	// MarkCompacted, which marks the new revision compacted so that
	// watchers from before the restore are told they are compacted instead
	// of being served events again.
	BumpRevision  int64
	MarkCompacted bool
	// Compact (--compact, with a bump) writes only what the compaction at
	// the bumped revision keeps, the last put of each live key
	// (snapkit.WriteCompacted), and records that compaction finished: the
	// db is smaller and a member starts on it without compacting, which
	// is what a whole cluster restored at once wants (restore apply), but
	// writing it costs more than the plain copy, which is what
	// 'etcdutl snapshot restore' writes and the member then compacts.
	Compact bool
	// keep, with Compact, is the source's keep set as a plan found it
	// (snapkit.WriteCompactedKeeping): the source must be the db it was
	// found in, which its SHA-256 then shows.
	keep *snapkit.KeepSet
	// AllowSameClusterID restores even when the new cluster ID is the one
	// that the input's own members make (the old token and peer URLs).
	AllowSameClusterID bool
	// Progress sees the bytes copied.
	Progress Progress
}

// SnapshotResult says what was restored.
type SnapshotResult struct {
	Source  snapkit.Source `json:"source"`
	DataDir string         `json:"dataDir"`
	WALDir  string         `json:"walDir"`
	Name    string         `json:"name"`
	// MemberID and ClusterID are hex, as etcd prints them.
	MemberID   string          `json:"memberID"`
	ClusterID  string          `json:"clusterID"`
	Token      string          `json:"token"`
	FreshToken bool            `json:"freshToken"` // derived, not given
	Members    []schema.Member `json:"members"`
	// OldMembers are those the input's members bucket held.
	OldMembers []schema.Member `json:"oldMembers"`
	// SHA256 is the db's, hex; HashChecked says whether it was compared
	// with the trailer.
	SHA256      string `json:"sha256,omitempty"`
	HashChecked bool   `json:"hashChecked"`
	// Revision is the input's; RestoredRevision the new member's
	// (Revision + bump); CompactRevision the compaction it starts with.
	Revision         int64 `json:"revision"`
	RestoredRevision int64 `json:"restoredRevision"`
	CompactRevision  int64 `json:"compactRevision"`
	// ConsistentIndex and Term are the new db's (the bootstrap entries).
	ConsistentIndex uint64        `json:"consistentIndex"`
	Term            uint64        `json:"term"`
	DBSize          int64         `json:"dbSize"`
	Took            time.Duration `json:"tookNanos"`
}

// normalize fills the defaults of o and checks it.
func (o *SnapshotOptions) normalize() error {
	if o.Path == "" {
		return usageErr("no snapshot file given")
	}
	if o.Name == "" {
		o.Name = DefaultName
	}
	if o.Cluster == nil {
		urls := o.PeerURLs
		if urls == nil {
			urls = []string{DefaultPeerURL}
		}
		o.Cluster = []MemberSpec{{Name: o.Name, PeerURLs: urls}}
	}
	var self *MemberSpec
	for i := range o.Cluster {
		if o.Cluster[i].Name == o.Name {
			self = &o.Cluster[i]
		}
	}
	if self == nil {
		return usageErr("--initial-cluster has no member named %q (--name)", o.Name)
	}
	if o.PeerURLs != nil && !sameURLs(o.PeerURLs, self.PeerURLs) {
		return usageErr("--initial-cluster has %s=%v but --initial-advertise-peer-urls is %v", o.Name, self.PeerURLs, o.PeerURLs)
	}
	if o.DataDir == "" {
		o.DataDir = o.Name + ".etcd"
	}
	if o.BumpRevision < 0 {
		return usageErr("--bump-revision %d is negative", o.BumpRevision)
	}
	if (o.BumpRevision > 0) != o.MarkCompacted {
		return usageErr("--mark-compacted is required with --bump-revision > 0, and only then")
	}
	if o.Compact && o.BumpRevision == 0 {
		return usageErr("--compact needs --bump-revision and --mark-compacted (it writes what the compaction at the bumped revision keeps)")
	}
	return nil
}

// Snapshot restores a snapshot file into a new data dir, as `etcdutl
// snapshot restore` does, but copies the db once (hashing it on the way),
// opens it once, and syncs each file once. The data dir is built in a
// temporary dir inside it and renamed into place: an interrupted restore
// leaves no member dir, and the next one clears its leftovers.
func Snapshot(ctx context.Context, lg *slog.Logger, o SnapshotOptions) (*SnapshotResult, error) {
	return snapshot(ctx, lg, o, "")
}

// snapshot is Snapshot; with sibling, the db file that Snapshot wrote for
// another member of the same new cluster (options that differ only in
// Name, PeerURLs, DataDir, WALDir), it copies that db instead of
// restoring the snapshot file again: every member's db is the same, the
// member's identity is in its WAL and .snap only.
func snapshot(ctx context.Context, lg *slog.Logger, o SnapshotOptions, sibling string) (*SnapshotResult, error) {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	start := time.Now()
	if err := o.normalize(); err != nil {
		return nil, err
	}
	// The IDs cannot be checked before the token is known, but the URLs can.
	if _, err := NewCluster(o.Cluster, "check"); err != nil {
		return nil, err
	}
	src, err := snapkit.Resolve(o.Path)
	if err != nil {
		return nil, err
	}
	if !src.HasTrailer && !o.SkipHashCheck {
		return nil, fmt.Errorf("%w: %s", ErrNoHash, o.Path)
	}
	st, err := newStage(datadir.New(o.DataDir, o.WALDir))
	if err != nil {
		return nil, err
	}
	var res *SnapshotResult
	if sibling != "" {
		res, err = copySibling(ctx, lg, o, src, st, sibling)
	} else {
		res, err = restoreSnapshot(ctx, lg, o, src, st)
	}
	if err != nil {
		st.abort()
		return nil, err
	}
	res.Took = time.Since(start)
	lg.Info("restored snapshot", "path", o.Path, "data-dir", res.DataDir, "member-id", res.MemberID,
		"cluster-id", res.ClusterID, "revision", res.RestoredRevision, "took", res.Took)
	return res, nil
}

func restoreSnapshot(ctx context.Context, lg *slog.Logger, o SnapshotOptions, src snapkit.Source, st *stage) (*SnapshotResult, error) {
	res := &SnapshotResult{Source: src, DataDir: o.DataDir, WALDir: st.final.WALDir(), Name: o.Name, DBSize: src.DBSize}
	check := src.HasTrailer && !o.SkipHashCheck
	dbPath := st.tmp.DBPath()
	// Hash what is copied also when the token needs a seed and there is
	// no trailer to take it from.
	hash := o.Token == "" && !src.HasTrailer
	var (
		sum, trailer []byte
		compacted    *snapkit.CompactedResult
		err          error
	)
	if o.Compact {
		sum, trailer, compacted, err = compactCheckedDB(ctx, lg, src, dbPath, check, hash, o.keep, o.Progress)
	} else {
		sum, trailer, err = copyWithFreePages(ctx, lg, src, dbPath, check, hash, o.Progress)
	}
	if err != nil {
		return nil, err
	}
	res.HashChecked = check
	if sum != nil {
		res.SHA256 = hex.EncodeToString(sum)
	} else {
		res.SHA256 = hex.EncodeToString(trailer)
	}
	res.Token = o.Token
	if res.Token == "" {
		seed := sum
		if seed == nil {
			seed = trailer
		}
		res.Token, res.FreshToken = FreshToken(seed), true
	}
	phase := time.Now()
	cl, err := NewCluster(o.Cluster, res.Token)
	if err != nil {
		return nil, err
	}
	self, _ := cl.Member(o.Name)
	nm := &newMember{cluster: cl, self: self, bump: o.BumpRevision}
	if compacted != nil {
		nm.compacted, nm.lastRevision, nm.oldMarker = true, compacted.LastRevision, compacted.Marker
	}
	facts, err := nm.rewriteDB(dbPath, func(old []schema.Member) error {
		if o.AllowSameClusterID || len(old) == 0 {
			return nil
		}
		ids := make([]uint64, len(old))
		for i, m := range old {
			ids[i] = m.ID
		}
		if schema.ClusterID(ids) == cl.ID {
			return fmt.Errorf("%w: %s, the ID that the snapshot's own members make: the token %q and the peer URLs are the old cluster's; give another --initial-cluster-token, or leave it out for a fresh one (or pass --allow-same-cluster-id)",
				ErrSameClusterID, cl.ClusterIDHex(), cl.Token)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	lg.Info("rewrote membership and meta", "db", dbPath, "took", time.Since(phase))
	phase = time.Now()
	if err := syncFile(dbPath); err != nil {
		return nil, err
	}
	lg.Info("synced db", "took", time.Since(phase))
	phase = time.Now()
	if err := nm.writeRaft(lg, st.tmp); err != nil {
		return nil, err
	}
	if err := st.commit(); err != nil {
		return nil, err
	}
	lg.Info("wrote WAL and .snap, renamed into place", "took", time.Since(phase))
	res.MemberID, res.ClusterID = schema.FormatID(self.ID), cl.ClusterIDHex()
	res.Members, res.OldMembers = cl.Members, facts.OldMembers
	res.Revision, res.RestoredRevision, res.CompactRevision = facts.Revision, facts.Restored, facts.CompactRevision
	res.ConsistentIndex, res.Term = nm.index(), 1
	return res, nil
}

// copySibling makes the member's dir in st from sibling, the db that
// Snapshot restored from src for another member of the same cluster: a
// plain copy of it, the member's WAL and .snap. The old members and the
// SHA-256 are not known (the sibling's restore had them); the token must
// be given, as the sibling's was.
func copySibling(ctx context.Context, lg *slog.Logger, o SnapshotOptions, src snapkit.Source, st *stage, sibling string) (*SnapshotResult, error) {
	if o.Token == "" {
		return nil, usageErr("copying another member's db needs the cluster token")
	}
	res := &SnapshotResult{Source: src, DataDir: o.DataDir, WALDir: st.final.WALDir(), Name: o.Name, DBSize: src.DBSize, Token: o.Token}
	cl, err := NewCluster(o.Cluster, o.Token)
	if err != nil {
		return nil, err
	}
	self, _ := cl.Member(o.Name)
	nm := &newMember{cluster: cl, self: self}
	from, err := snapkit.Resolve(sibling)
	if err != nil {
		return nil, err
	}
	phase := time.Now()
	dbPath := st.tmp.DBPath()
	if _, err := copyDB(ctx, from, dbPath, false, nil, o.Progress); err != nil {
		return nil, err
	}
	if err := syncFile(dbPath); err != nil {
		return nil, err
	}
	lg.Info("copied another member's restored db", "from", from.DBPath, "bytes", from.DBSize, "took", time.Since(phase))
	db, err := schema.Open(dbPath, schema.Options{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	err = db.View(func(tx *bolt.Tx) error {
		res.RestoredRevision, res.CompactRevision, err = storeRevision(tx)
		return err
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("restore: %s: %w", dbPath, err)
	}
	if err := nm.writeRaft(lg, st.tmp); err != nil {
		return nil, err
	}
	if err := st.commit(); err != nil {
		return nil, err
	}
	res.MemberID, res.ClusterID = schema.FormatID(self.ID), cl.ClusterIDHex()
	res.Members = cl.Members
	res.Revision = res.RestoredRevision - o.BumpRevision
	res.ConsistentIndex, res.Term = nm.index(), 1
	return res, nil
}

// copyWithFreePages is copyCheckedDB, and writes the free pages of the
// copy, found from the bytes on their way (snapkit.FreePageScan), into it:
// bbolt's read-write open would otherwise walk every page to find them,
// mapping the whole db into this process.
func copyWithFreePages(ctx context.Context, lg *slog.Logger, src snapkit.Source, dst string, check, hash bool, progress Progress) (sum, trailer []byte, err error) {
	scan := snapkit.NewFreePageScan(src.DBSize)
	if sum, trailer, err = copyCheckedDB(ctx, lg, src, dst, check, hash, scan, progress); err != nil {
		return nil, nil, err
	}
	phase := time.Now()
	fp, err := scan.Finish(ctx, dst)
	if err != nil {
		return nil, nil, fmt.Errorf("restore: %s: %w", src.Path, err)
	}
	if fp != nil {
		if err := fp.Write(dst); err != nil {
			return nil, nil, fmt.Errorf("restore: %w", err)
		}
		lg.Info("wrote the free page list", "db", dst, "pages", fp.Len(), "took", time.Since(phase))
	}
	return sum, trailer, nil
}

// compactCheckedDB writes to dst the db of src compacted at or above its
// current revision (snapkit.WriteCompacted: the key bucket holds the last
// put of each live key), which is what a member restored with
// --bump-revision and --mark-compacted holds once it has finished the
// compaction it starts with. With check it hashes the source beside it and
// compares the sum with the trailer (snapkit.ErrSnapshotHash); hash asks
// for the sum without the check. It returns the sum (nil when not hashed),
// the trailer (nil if none) and what WriteCompacted found. With keep (the
// source's keep set, from a plan) it walks the source once
// (snapkit.WriteCompactedKeeping), hashes it whatever check and hash say,
// and refuses a source whose SHA-256 is not the one keep was found in.
func compactCheckedDB(ctx context.Context, lg *slog.Logger, src snapkit.Source, dst string, check, hash bool, keep *snapkit.KeepSet, progress Progress) (sum, trailer []byte, res *snapkit.CompactedResult, err error) {
	if trailer, err = snapkit.ReadTrailer(src); err != nil {
		return nil, nil, nil, err
	}
	type summed struct {
		sum []byte
		err error
	}
	sums := make(chan summed, 1)
	hctx, cancel := context.WithCancel(ctx)
	defer cancel()
	hashing := check || hash || keep != nil
	if hashing {
		go func() {
			s, err := snapkit.SumDB(hctx, src, progress)
			sums <- summed{s, err}
		}()
	}
	phase := time.Now()
	var werr error
	if keep != nil {
		res, werr = snapkit.WriteCompactedKeeping(ctx, src.Path, dst, keep)
	} else {
		res, werr = snapkit.WriteCompacted(ctx, src.Path, dst)
	}
	if werr == nil {
		lg.Info("wrote the compacted db", "from", src.DBPath, "to", dst, "revisions", res.Revisions, "kept", res.Kept,
			"keep-set", keep != nil, "took", time.Since(phase))
	}
	if hashing {
		if werr != nil {
			cancel()
		}
		s := <-sums
		// A sum that does not match explains any damage the walk found.
		if s.err == nil && check && !bytes.Equal(s.sum, trailer) {
			return nil, nil, nil, hashMismatch(src, trailer, s.sum)
		}
		if s.err == nil && keep != nil && hex.EncodeToString(s.sum) != keep.DBSHA256() {
			return nil, nil, nil, fmt.Errorf("%w: %s has SHA-256 %x, not %s, the db that the plan's keep set was found in: it changed since the plan was made",
				ErrBadPlan, src.Path, s.sum, keep.DBSHA256())
		}
		if werr == nil && s.err != nil {
			return nil, nil, nil, s.err
		}
		sum = s.sum
	}
	if werr != nil {
		return nil, nil, nil, fmt.Errorf("restore: %w", werr)
	}
	return sum, trailer, res, nil
}

// copyCheckedDB copies the db part of src to a new file at dst, giving
// scan (if not nil) the bytes on the way. With
// check it hashes the bytes on the way and compares them with src's
// SHA-256 trailer (snapkit.ErrSnapshotHash); without, nothing vouches for
// the bytes, so it walks the copy's structure before bbolt may open it.
// hash asks for the SHA-256 of the copy even when it is not checked. It
// returns the SHA-256 (nil when not hashed) and the trailer (nil if none).
func copyCheckedDB(ctx context.Context, lg *slog.Logger, src snapkit.Source, dst string, check, hash bool, scan *snapkit.FreePageScan, progress Progress) (sum, trailer []byte, err error) {
	if trailer, err = snapkit.ReadTrailer(src); err != nil {
		return nil, nil, err
	}
	hashing := check || hash
	phase := time.Now()
	if sum, err = copyDB(ctx, src, dst, hashing, scan, progress); err != nil {
		return nil, nil, err
	}
	lg.Info("copied db", "from", src.DBPath, "bytes", src.DBSize, "hashed", hashing, "took", time.Since(phase))
	if check {
		if !bytes.Equal(sum, trailer) {
			return nil, nil, hashMismatch(src, trailer, sum)
		}
	} else if err := checkStructure(ctx, lg, dst); err != nil {
		return nil, nil, fmt.Errorf("restore: %s: %w", src.Path, err)
	}
	return sum, trailer, nil
}

// hashMismatch is the error of a db whose SHA-256 is not its trailer's.
func hashMismatch(src snapkit.Source, trailer, sum []byte) error {
	return fmt.Errorf("%w: %s: trailer %x, computed %x (pass --skip-hash-check to restore it anyway)", snapkit.ErrSnapshotHash, src.Path, trailer, sum)
}

// checkStructure walks a db that no hash vouches for and refuses it if
// bbolt could not safely open it.
func checkStructure(ctx context.Context, lg *slog.Logger, path string) error {
	rep, err := snapkit.Inspect(ctx, path, snapkit.Options{Logger: lg, SkipTrailer: true})
	if err != nil {
		return err
	}
	for _, f := range rep.Findings {
		if f.Check == snapkit.CheckBolt {
			return fmt.Errorf("%w: %s (run snapkit verify)", snapkit.ErrDamaged, f.String())
		}
	}
	return nil
}
