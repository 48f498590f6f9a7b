package restore

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/lifeboat-dev/lifeboat/snapkit"
	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
	"github.com/lifeboat-dev/lifeboat/walkit"
	"github.com/lifeboat-dev/lifeboat/walkit/inspect"
)

// Strategies a plan chooses between.
const (
	// StrategyForceNewCluster keeps the most advanced survivor, its cluster
	// ID and everything it committed, as a one-member cluster that the
	// other members then join.
	StrategyForceNewCluster = "force-new-cluster"
	// StrategyNewCluster restores a snapshot (or a survivor's db) into a new
	// logical cluster: new token, IDs and cluster ID, the revision bumped
	// and marked compacted.
	StrategyNewCluster = "new-cluster"
	// StrategyRollForward restores a snapshot or db and replays over it the
	// committed entries of a surviving WAL of the same cluster past its
	// applied index, through the server's apply code (RollForward): the
	// WAL's member is then kept as force-new-cluster keeps a survivor.
	StrategyRollForward = "roll-forward"
)

// PlanVersion is the version of the plan file's format.
const PlanVersion = 1

// DefaultRevisionMargin is added to the revision bump beyond the highest
// revision seen, for the writes no surviving file recorded.
const DefaultRevisionMargin = 10000

// Errors of planning.
var (
	// ErrNoUsableSource means no source can be restored from.
	ErrNoUsableSource = errors.New("restore: no usable source")
	// ErrLoss means the plan loses data and the loss was not accepted.
	ErrLoss = errors.New("restore: the plan loses data (pass --accept-loss to accept it)")
)

// PlanOptions are the inputs of Plan.
type PlanOptions struct {
	// From are the sources: data dirs, snapshot files, dirs of them, and
	// bucket URLs (opened by Buckets).
	From []string
	// Buckets opens the bucket URLs of From; nil refuses them (ErrNotYet).
	// Planning fetches their backups, and the plan restores from the
	// fetched files: give the opener a BucketOptions.Dir that outlives it.
	Buckets BucketOpener
	// Cluster is the target topology (--initial-cluster, --initial-learners);
	// nil means the members the chosen source names.
	Cluster []MemberSpec
	// MemberDirs maps a member's name to its new data dir (--member-dir);
	// a member not in it gets <name>.etcd.
	MemberDirs map[string]string
	// Token is the new cluster's token; "" means a fresh random one.
	Token string
	// RevisionMargin is added to the bump (0 means DefaultRevisionMargin).
	RevisionMargin int64
	// AcceptLoss lets a plan that loses data be written.
	AcceptLoss bool
	// Now stamps the plan (zero means time.Now).
	Now time.Time
}

// Plan is a recovery: what was found, what was chosen and why, what it
// loses, and the steps on each node. It is written as JSON (plan.json)
// and carried out by Apply.
type Plan struct {
	Version  int       `json:"version"`
	ID       string    `json:"id"` // the first 16 hex digits of the SHA-256 of the plan without it
	Created  time.Time `json:"created"`
	Strategy string    `json:"strategy"`
	// Reason says in one paragraph why the strategy and source were chosen.
	Reason string `json:"reason"`
	// Sources are every candidate, best first.
	Sources []RankedSource `json:"sources"`
	// Chosen is the index in Sources of the source restored from.
	Chosen int `json:"chosen"`
	// RollForward says what the roll-forward replays (roll-forward), or
	// why a surviving WAL past the chosen source cannot roll it forward.
	RollForward *RollForwardReport `json:"rollForward,omitempty"`
	Loss        Loss               `json:"loss"`

	// Old cluster IDs seen in the sources (WAL metadata, and the IDs the
	// sources' members make); the new cluster's must differ.
	OldClusterIDs []string `json:"oldClusterIDs"`
	// Token, ClusterID: the new cluster's (new-cluster), or the survivor's
	// kept cluster ID (force-new-cluster).
	Token     string `json:"token,omitempty"`
	ClusterID string `json:"clusterID"`
	// BumpRevision is added to the restored revision and marked compacted
	// (new-cluster); Revision is where the new members start (roll-forward:
	// the base's, which the replay raises by at most RollForward.Writes).
	BumpRevision  int64  `json:"bumpRevision"`
	Revision      int64  `json:"revision"`
	HashKV        uint32 `json:"hashKV"`        // expected at Revision (new-cluster)
	HashKVChecked bool   `json:"hashKVChecked"` // whether HashKV is to be checked
	// SourcePath is what every new member is restored from (new-cluster):
	// a snapshot file, or a survivor's data dir (then SkipHashCheck), as
	// it will be once moved aside. Copy it to each node at that path.
	SourcePath    string `json:"sourcePath,omitempty"`
	SkipHashCheck bool   `json:"skipHashCheck,omitempty"`
	// KeepSet describes the keep set of SourcePath that the plan's walk
	// found (new-cluster from a snapshot): WritePlan writes it beside the
	// plan (KeepSetPath), and apply's compacted write then walks the
	// source once instead of twice. Without the file apply walks twice.
	KeepSet  *PlanKeepSet `json:"keepSet,omitempty"`
	Members  []PlanMember `json:"members"`
	Warnings []string     `json:"warnings"`

	keep *snapkit.KeepSet // KeepSet's, once made or read
}

// PlanKeepSet is what the plan records of its keep set file.
type PlanKeepSet struct {
	// SHA256 is the file's (hex), DBSHA256 the source db's that the set
	// was found in; Pairs are the key bucket's, Kept those written.
	SHA256   string `json:"sha256"`
	DBSHA256 string `json:"dbSHA256"`
	Pairs    int    `json:"pairs"`
	Kept     int    `json:"kept"`
}

// KeepSetPath is where the keep set of the plan at planPath lives.
func KeepSetPath(planPath string) string { return planPath + ".keep" }

// RankedSource is one candidate source and what it holds.
type RankedSource struct {
	Source string `json:"source"` // as given in --from
	Kind   string `json:"kind"`   // "data-dir" or "snapshot"
	Backup Backup `json:"backup"`
	// Index is the raft index of the committed data it can bring back;
	// Term is that entry's term (or the db's); Revision the db's.
	Index    uint64 `json:"index"`
	Term     uint64 `json:"term"`
	Revision int64  `json:"revision"`
	// For a data dir: the member and its WAL's commit and last index.
	MemberID  string `json:"memberID,omitempty"`
	Name      string `json:"name,omitempty"`
	ClusterID string `json:"clusterID,omitempty"`
	Commit    uint64 `json:"commit,omitempty"`
	LastIndex uint64 `json:"lastIndex,omitempty"`
	// CanForce says force-new-cluster can start from it.
	CanForce bool `json:"canForce"`
	// Usable says it can be restored from at all; Why says why not.
	Usable bool     `json:"usable"`
	Why    []string `json:"why,omitempty"`
}

// RollForwardReport is what replaying a surviving WAL over a db or
// snapshot recovers, or why it cannot.
type RollForwardReport struct {
	Base      string `json:"base"`      // the snapshot file or data dir whose db is restored
	BaseIndex uint64 `json:"baseIndex"` // its consistent index
	WAL       string `json:"wal"`       // the data dir whose WAL holds the entries
	MemberID  string `json:"memberID"`  // the WAL's member, kept
	Name      string `json:"name,omitempty"`
	From      uint64 `json:"from"` // the raft indexes replayed
	To        uint64 `json:"to"`
	Entries   uint64 `json:"entries"`
	Writes    uint64 `json:"writes"` // entries that write keys (an upper bound of revisions)
	// Available says the WAL can roll the base forward; Note says how it
	// was read, or why it cannot.
	Available bool   `json:"available"`
	Note      string `json:"note"`
}

// Loss is what the plan cannot bring back, against the best evidence of
// the latest state.
type Loss struct {
	// Entries are committed raft entries beyond the restored index, and
	// Revisions an upper bound of the revisions they and newer dbs hold.
	Entries   uint64 `json:"entries"`
	Revisions int64  `json:"revisions"`
	// Evidence says where the latest state was seen.
	Evidence string `json:"evidence"`
	Accepted bool   `json:"accepted"`
	// PastCommit (force-new-cluster) are the entries of the survivor's
	// WAL past its last recorded commit. Some may have been acknowledged:
	// etcd writes the commit index to its WAL only with its next synced
	// write, so a member killed right after a write often records the one
	// before. etcd's --force-new-cluster drops them; the plan keeps them
	// (PlanMember.KeepPastCommit), so nothing is lost.
	PastCommit uint64 `json:"pastCommit,omitempty"`
}

// PlanMember is one member of the recovered cluster and its steps.
type PlanMember struct {
	Name     string   `json:"name"`
	ID       string   `json:"id"` // hex
	PeerURLs []string `json:"peerURLs"`
	Learner  bool     `json:"learner,omitempty"`
	DataDir  string   `json:"dataDir"`
	// OldClientURLs are where the old member of that name served clients;
	// apply refuses to go on while one answers.
	OldClientURLs []string `json:"oldClientURLs,omitempty"`
	// Survivor is set for the member kept by force-new-cluster, and
	// RepairWAL when its WAL must be cut at damage first.
	Survivor  bool `json:"survivor,omitempty"`
	RepairWAL bool `json:"repairWAL,omitempty"`
	// KeepPastCommit when its WAL holds entries past its recorded commit
	// (Loss.PastCommit): force-new-cluster keeps and commits them.
	KeepPastCommit bool   `json:"keepPastCommit,omitempty"`
	Steps          []Step `json:"steps"`
}

// Step is one idempotent step on a member's node. Apply carries out the
// steps it can (Auto); the others are commands for the operator.
type Step struct {
	Name   string `json:"name"` // fence, move-aside, write, check, join, start, promote
	Auto   bool   `json:"auto"`
	Detail string `json:"detail"`
	// Run is the command that does the step on that node.
	Run string `json:"run"`
}

// candidate is a source being ranked.
type candidate struct {
	RankedSource
	src    Source
	report *MemberReport
	writes map[uint64]bool         // data dir: WAL entry index -> writes keys
	confs  map[uint64]raftpb.Entry // data dir: the WAL's ConfChange entries by index
	// noForce says why force-new-cluster cannot start from a data dir.
	noForce string
}

// MakePlan gathers the sources, ranks them, chooses how to recover and
// writes the steps. It returns ErrNoUsableSource, or the plan with ErrLoss
// when it loses data that AcceptLoss did not accept.
func MakePlan(ctx context.Context, lg *slog.Logger, o PlanOptions) (*Plan, error) {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	if len(o.From) == 0 {
		return nil, usageErr("no source given (--from)")
	}
	if o.RevisionMargin == 0 {
		o.RevisionMargin = DefaultRevisionMargin
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	cands, err := gather(ctx, lg, o.From, o.Buckets)
	if err != nil {
		return nil, err
	}
	rank(cands)
	p := &Plan{Version: PlanVersion, Created: o.Now.UTC().Truncate(time.Second), Chosen: -1}
	for _, c := range cands {
		p.Sources = append(p.Sources, c.RankedSource)
	}
	if len(cands) == 0 || !cands[0].Usable {
		return p, fmt.Errorf("%w among %s", ErrNoUsableSource, strings.Join(o.From, ", "))
	}
	p.OldClusterIDs = oldClusterIDs(cands)
	best := cands[0]
	p.Chosen = 0
	evidence := latestEvidence(cands)
	rf, refused, err := bestRollForward(ctx, lg, cands)
	if err != nil {
		return nil, err
	}
	switch {
	case rf != nil && rf.report.To > best.Index:
		err = p.rollForward(o, cands, rf, evidence)
	case best.CanForce:
		err = p.forceNewCluster(o, cands, evidence)
	default:
		err = p.newCluster(ctx, lg, o, cands, evidence, refused)
	}
	if err != nil {
		return nil, err
	}
	p.warnAnswering(ctx, cands)
	loses := p.Loss.Entries > 0 || p.Loss.Revisions > 0
	p.Loss.Accepted = loses && o.AcceptLoss
	p.ID = p.digest()
	if loses && !o.AcceptLoss {
		return p, ErrLoss
	}
	return p, nil
}

// gather describes every source. The sources that hold something open (a
// bucket) are closed when gather returns: a backup's Location is local.
func gather(ctx context.Context, lg *slog.Logger, froms []string, buckets BucketOpener) ([]*candidate, error) {
	var out []*candidate
	for _, from := range froms {
		src, err := OpenSource(ctx, lg, from, buckets)
		if err != nil {
			return nil, err
		}
		if c, ok := src.(io.Closer); ok {
			defer func() {
				if err := c.Close(); err != nil {
					lg.Warn("closing a source", "source", src.String(), "error", err)
				}
			}()
		}
		if dds, ok := src.(*DataDirSource); ok {
			c, err := dataDirCandidate(ctx, lg, from, dds)
			if err != nil {
				return nil, err
			}
			out = append(out, c)
			continue
		}
		list, err := src.List(ctx)
		if err != nil {
			return nil, err
		}
		if len(list) == 0 {
			return nil, usageErr("%s holds no snapshot file", from)
		}
		for _, b := range list {
			d, err := src.Describe(ctx, b.ID)
			if err != nil {
				return nil, err
			}
			c := &candidate{src: src, RankedSource: RankedSource{Source: from, Kind: "snapshot", Backup: *d, ClusterID: d.ClusterID,
				Index: d.ConsistentIndex, Term: d.Term, Revision: d.Revision, Usable: d.Usable(), Why: d.Problems}}
			switch {
			case len(list) > 1 && IsBucketURL(from):
				c.Source = from + "#" + d.ID
			case len(list) > 1:
				c.Source = d.Location
			}
			out = append(out, c)
		}
	}
	return out, nil
}

func dataDirCandidate(ctx context.Context, lg *slog.Logger, from string, dds *DataDirSource) (*candidate, error) {
	r, err := dds.Report(ctx)
	if err != nil {
		return nil, err
	}
	c := &candidate{src: dds, report: r, RankedSource: RankedSource{Source: from, Kind: "data-dir"}}
	if r.InUse {
		c.Why = append(c.Why, "a running member holds it ("+r.InUseBy+" lock): stop it, or leave it out if its cluster is alive")
	}
	db := r.DB
	if db != nil {
		c.Revision, c.Index, c.Term = db.Revision, db.ConsistentIndex, db.Term
		if !r.InUse {
			b, err := dds.Describe(ctx, dbID)
			if err != nil {
				return nil, err
			}
			c.Backup = *b
			c.Why = append(c.Why, b.Problems...)
		}
	} else {
		c.Why = append(c.Why, "no readable db: "+strings.Join(r.Errors, "; "))
	}
	if w := r.WAL; w != nil {
		c.MemberID, c.ClusterID, c.Commit, c.LastIndex = w.NodeID, w.ClusterID, w.HardState.Commit, w.LastIndex
		if db != nil {
			for _, m := range db.Members {
				if schema.FormatID(m.ID) == w.NodeID {
					c.Name = m.Name
				}
			}
			// force-new-cluster keeps max(commit, applied), if the WAL
			// still holds the entries up to the commit.
			last := w.LastIndex
			if r.Snap != nil {
				last = max(last, r.Snap.Index)
			}
			keep := max(db.ConsistentIndex, min(w.HardState.Commit, last))
			if c.writes, c.confs, err = walWrites(r.WALDir); err != nil {
				return nil, err
			}
			learner, err := c.learnerAt(keep)
			if err != nil {
				return nil, err
			}
			c.CanForce = !r.InUse && db.ConsistentIndex <= last && w.RepairError == "" && !learner
			if c.CanForce && keep > c.Index {
				c.Index, c.Term = keep, w.LastTerm
			}
			switch {
			case db.ConsistentIndex > last:
				c.noForce = fmt.Sprintf("its db applied %d but its WAL ends at %d: force-new-cluster cannot continue from it", db.ConsistentIndex, last)
				c.Why = append(c.Why, c.noForce)
			case learner:
				c.noForce = fmt.Sprintf("its member %s is a learner: etcd cannot force a new cluster from a learner (removing the other members leaves no voter), so only its db can be restored", c.MemberID)
				c.Why = append(c.Why, c.noForce)
			case w.RepairError != "":
				c.noForce = "its WAL cannot be repaired: " + w.RepairError
			}
		} else if c.writes, c.confs, err = walWrites(r.WALDir); err != nil {
			return nil, err
		}
	}
	c.Usable = db != nil && !r.InUse && len(c.Backup.Problems) == 0
	if !c.Usable {
		c.CanForce = false
	}
	return c, nil
}

// walWrites reads a WAL up to its first damage and says, for each entry
// index (a later entry overriding an earlier one at the same index),
// whether it writes keys (put, delete, txn, lease revoke): an upper bound
// of the revisions it makes; and gives its ConfChange entries by index.
func walWrites(dir string) (map[uint64]bool, map[uint64]raftpb.Entry, error) {
	rd, err := walkit.NewReader(dir)
	if err != nil {
		return nil, nil, err
	}
	defer rd.Close()
	out, confs := map[uint64]bool{}, map[uint64]raftpb.Entry{}
	for {
		rec, _, err := rd.Next()
		var de *walkit.DamageError
		if errors.Is(err, io.EOF) || errors.As(err, &de) {
			return out, confs, nil
		}
		if err != nil {
			return nil, nil, err
		}
		if rec.Type != walkit.EntryType {
			continue
		}
		var e raftpb.Entry
		if err := e.Unmarshal(rec.Data); err != nil {
			return nil, nil, err
		}
		d := inspect.Decode(e, inspect.Options{})
		out[e.Index] = d.Put != nil || d.DeleteRange != nil || d.Txn != nil || d.LeaseRevoke != nil
		delete(confs, e.Index)
		if e.Type != raftpb.EntryNormal {
			confs[e.Index] = e
		}
	}
}

// learnerAt says whether the WAL's member is a learner once the entries up
// to index apply over its db: the db's membership, then the ConfChanges
// in (the db's consistent index, index].
func (c *candidate) learnerAt(index uint64) (bool, error) {
	db := c.report.DB
	var ents []raftpb.Entry
	for i, e := range c.confs {
		if i > db.ConsistentIndex && i <= index {
			ents = append(ents, e)
		}
	}
	slices.SortFunc(ents, func(a, b raftpb.Entry) int { return cmp.Compare(a.Index, b.Index) })
	ids, err := membersAt(confStateOf(db.Members), ents)
	if err != nil {
		return false, err
	}
	for id, learner := range ids {
		if schema.FormatID(id) == c.MemberID {
			return learner, nil
		}
	}
	return false, nil
}

// rank orders usable sources first, then by the committed data they hold:
// raft index, term, revision; a data dir before a snapshot at the same
// point (it keeps the cluster).
func rank(cs []*candidate) {
	slices.SortStableFunc(cs, func(a, b *candidate) int {
		return cmp.Or(
			boolOrder(a.Usable, b.Usable),
			cmp.Compare(b.Index, a.Index),
			cmp.Compare(b.Term, a.Term),
			cmp.Compare(b.Revision, a.Revision),
			boolOrder(a.CanForce, b.CanForce),
		)
	})
}

// boolOrder puts true first.
func boolOrder(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return -1
	}
	return 1
}

// evidence is the latest state any source shows.
type evidence struct {
	index    uint64 // highest committed raft index seen
	revision int64  // highest db revision seen
	where    string
	wal      *candidate // the data dir whose WAL commits index
}

func latestEvidence(cs []*candidate) evidence {
	var ev evidence
	for _, c := range cs {
		if c.Revision > ev.revision {
			ev.revision = c.Revision
		}
		idx := c.Index
		if c.Kind == "data-dir" && c.report != nil && c.report.WAL != nil {
			idx = max(idx, min(c.Commit, c.LastIndex))
		}
		if idx > ev.index {
			ev.index, ev.where = idx, c.Source
			ev.wal = nil
			if c.writes != nil {
				ev.wal = c
			}
		}
	}
	return ev
}

// writesBetween counts the entries in (from, to] that c's WAL holds, and
// those that write keys.
func (c *candidate) writesBetween(from, to uint64) (entries, writes uint64, complete bool) {
	complete = true
	for i := from + 1; i <= to; i++ {
		w, ok := c.writes[i]
		if !ok {
			complete = false
			continue
		}
		entries++
		if w {
			writes++
		}
	}
	return entries, writes, complete
}

func oldClusterIDs(cs []*candidate) []string {
	seen := map[string]bool{}
	for _, c := range cs {
		if c.ClusterID != "" {
			seen[c.ClusterID] = true
		}
		if len(c.Backup.Members) > 0 {
			ids := make([]uint64, len(c.Backup.Members))
			for i, m := range c.Backup.Members {
				ids[i] = m.ID
			}
			seen[schema.FormatID(schema.ClusterID(ids))] = true
		}
	}
	return slices.Sorted(func(yield func(string) bool) {
		for id := range seen {
			if !yield(id) {
				return
			}
		}
	})
}

// memberDir is the data dir of a member, absolute.
func memberDir(o PlanOptions, name string) (string, error) {
	d, ok := o.MemberDirs[name]
	if !ok {
		d = name + ".etcd"
	}
	return filepath.Abs(d)
}

// forceNewCluster plans (a): the best source is a survivor whose WAL can
// continue; it is kept with its cluster ID, and the other members join it.
func (p *Plan) forceNewCluster(o PlanOptions, cs []*candidate, ev evidence) error {
	s := cs[0]
	r := s.report
	p.Strategy, p.ClusterID = StrategyForceNewCluster, s.ClusterID
	p.Revision = s.Revision
	// What another source committed beyond the survivor is lost; its
	// writes bound the revisions (the survivor's db revision still grows
	// when it applies its own WAL on start).
	p.Loss = lossAfter(s.Index, ev)
	self, err := survivorMember(s, r.DB.Members)
	if err != nil {
		return err
	}
	p.Reason = fmt.Sprintf("%s (member %s %s of cluster %s) holds the most committed data of all sources: raft index %d (term %d), db revision %d. "+
		"Its WAL can continue from its db, so force-new-cluster keeps it as a one-member cluster with the same cluster ID and rewinds nothing; "+
		"no revision bump is needed and clients and watchers keep working. The other members are then added back with member add and start empty.",
		s.Source, self.Name, s.MemberID, s.ClusterID, s.Index, s.Term, s.Revision)
	if p.Loss.Entries > 0 {
		p.Reason += fmt.Sprintf(" Another source (%s) saw %d more committed entries, which are lost.", ev.where, p.Loss.Entries)
	}
	if s.LastIndex > s.Commit {
		p.Loss.PastCommit = s.LastIndex - s.Commit
		p.Warnings = append(p.Warnings, fmt.Sprintf("%s's WAL holds %d entries past its last recorded commit (%d-%d). Some may have been acknowledged to clients "+
			"(etcd records the commit index in its WAL only with its next synced write), so the plan keeps and commits them (--keep-past-commit), as raft would if this member led; "+
			"etcd's own --force-new-cluster would drop them. A write whose client saw it time out may appear.",
			s.Source, p.Loss.PastCommit, s.Commit+1, s.LastIndex))
	}
	repair := len(r.WAL.Damage) > 0 && r.WAL.Damage[0].Kind != walkit.TornTail
	return p.keepSurvivor(o, s, self, r.DB.Members, repair, func(mdir string) []Step {
		flag := ""
		if repair {
			flag = " --repair-wal"
		}
		if p.Loss.PastCommit > 0 {
			flag += " --keep-past-commit"
		}
		return []Step{
			{Name: "write", Auto: true, Detail: "force-new-cluster from the moved-aside dir into " + mdir,
				Run: fmt.Sprintf("restore force-new-cluster --data-dir %s --output-dir %s%s", aside(mdir, p), mdir, flag)},
			{Name: "check", Auto: true, Detail: fmt.Sprintf("member %s, cluster %s, commit covers the removals, db at revision %d", s.MemberID, s.ClusterID, s.Revision),
				Run: "restore inspect " + mdir},
		}
	})
}

// lossAfter is what is lost of the latest state seen when a plan keeps
// the committed entries up to index: the committed entries past it that a
// surviving WAL saw, whose writes bound the revisions.
func lossAfter(index uint64, ev evidence) Loss {
	var lost, writes uint64
	if ev.index > index && ev.wal != nil {
		lost, writes, _ = ev.wal.writesBetween(index, ev.index)
	}
	return Loss{Entries: lost, Revisions: int64(writes), Evidence: ev.where}
}

// survivorMember is the member whose WAL survives in s, in members.
func survivorMember(s *candidate, members []schema.Member) (schema.Member, error) {
	for _, m := range members {
		if schema.FormatID(m.ID) == s.MemberID && m.Name != "" {
			return m, nil
		}
	}
	return schema.Member{}, usageErr("survivor %s (member %s) has no name in its membership", s.Source, s.MemberID)
}

// keepSurvivor writes the steps of a plan that keeps one survivor, self
// (whose WAL is in s), as a one-member cluster of the old cluster: the
// survivor stays in its data dir with its peer URLs, its dir is written by
// the steps that write gives, and the other members of the target cluster
// (by default members) join it as learners, then are promoted.
func (p *Plan) keepSurvivor(o PlanOptions, s *candidate, self schema.Member, members []schema.Member, repairWAL bool, write func(mdir string) []Step) error {
	targets := o.Cluster
	if targets == nil {
		for _, m := range members {
			targets = append(targets, MemberSpec{Name: m.Name, PeerURLs: m.PeerURLs, Learner: m.IsLearner})
		}
	}
	var survivor *MemberSpec
	for i := range targets {
		if targets[i].Name == self.Name {
			survivor = &targets[i]
		}
	}
	if survivor == nil {
		return usageErr("the survivor %s is not in the target cluster", self.Name)
	}
	if !sameURLs(survivor.PeerURLs, self.PeerURLs) {
		return usageErr("the survivor %s keeps its peer URLs %v; the target cluster gives it %v", self.Name, self.PeerURLs, survivor.PeerURLs)
	}
	sdir, err := filepath.Abs(s.report.DataDir)
	if err != nil {
		return err
	}
	// The survivor stays where it is unless told otherwise.
	if _, ok := o.MemberDirs[self.Name]; !ok {
		o.MemberDirs = maps.Clone(o.MemberDirs)
		if o.MemberDirs == nil {
			o.MemberDirs = map[string]string{}
		}
		o.MemberDirs[self.Name] = sdir
	}
	if dir, err := memberDir(o, self.Name); err != nil {
		return err
	} else if dir != sdir {
		return usageErr("the survivor %s must stay in its data dir %s (--member-dir %s=%s)", self.Name, sdir, self.Name, sdir)
	}
	clientURL := "<" + self.Name + "'s client URL>"
	if len(self.ClientURLs) > 0 {
		clientURL = self.ClientURLs[0]
	}
	// A member joins a cluster of the survivor and those that joined
	// before it: its --initial-cluster is them and itself, in that order.
	initial := []MemberSpec{{Name: self.Name, PeerURLs: self.PeerURLs}}
	for _, t := range targets {
		mdir, err := memberDir(o, t.Name)
		if err != nil {
			return err
		}
		pm := PlanMember{Name: t.Name, PeerURLs: t.PeerURLs, Learner: t.Learner, DataDir: mdir, OldClientURLs: oldClientURLs(members, t.Name)}
		pm.Steps = append(pm.Steps, fenceStep(t.Name, mdir), moveAsideStep(mdir, p))
		if t.Name == self.Name {
			pm.ID, pm.Survivor, pm.RepairWAL, pm.KeepPastCommit = s.MemberID, true, repairWAL, p.Loss.PastCommit > 0
			pm.Steps = append(pm.Steps, write(mdir)...)
			pm.Steps = append(pm.Steps,
				Step{Name: "start", Detail: "start the member as usual; it comes up alone", Run: fmt.Sprintf("etcd --name %s --data-dir %s --initial-advertise-peer-urls %s --listen-peer-urls %s ...", t.Name, mdir, strings.Join(t.PeerURLs, ","), strings.Join(t.PeerURLs, ","))})
		} else {
			initial = append(initial, MemberSpec{Name: t.Name, PeerURLs: t.PeerURLs})
			pm.Steps = append(pm.Steps,
				Step{Name: "join", Detail: "once the survivor and the members listed before this one run, add this member to it as a learner (one member at a time, in this order)",
					Run: fmt.Sprintf("etcdctl --endpoints %s member add %s --learner --peer-urls=%s", clientURL, t.Name, strings.Join(t.PeerURLs, ","))},
				Step{Name: "start", Detail: "start it empty as a member of the existing cluster",
					Run: fmt.Sprintf("etcd --name %s --data-dir %s --initial-cluster %s --initial-cluster-state existing --initial-advertise-peer-urls %s", t.Name, mdir, FormatInitialCluster(initial), strings.Join(t.PeerURLs, ","))})
			if !t.Learner {
				pm.Steps = append(pm.Steps, Step{Name: "promote", Detail: "once it has caught up, make it a voter",
					Run: fmt.Sprintf("etcdctl --endpoints %s member promote <the ID member add printed>", clientURL)})
			}
		}
		p.Members = append(p.Members, pm)
	}
	return nil
}

// newCluster plans (b): restore the best source into a new logical cluster.
// refused, if not nil, is a surviving WAL that holds committed entries
// past s but cannot roll it forward.
func (p *Plan) newCluster(ctx context.Context, lg *slog.Logger, o PlanOptions, cs []*candidate, ev evidence, refused *RollForwardReport) error {
	s := cs[0]
	p.Strategy = StrategyNewCluster
	p.Token = o.Token
	if p.Token == "" {
		var seed [16]byte
		if _, err := rand.Read(seed[:]); err != nil {
			return err
		}
		p.Token = FreshToken(seed[:])
	}
	targets := o.Cluster
	if targets == nil {
		for _, m := range s.Backup.Members {
			if m.Name == "" {
				return usageErr("member %s in %s has no name (it never started): give --initial-cluster", schema.FormatID(m.ID), s.Source)
			}
			targets = append(targets, MemberSpec{Name: m.Name, PeerURLs: m.PeerURLs, Learner: m.IsLearner})
		}
	}
	cl, err := NewCluster(targets, p.Token)
	if err != nil {
		return err
	}
	p.ClusterID = cl.ClusterIDHex()
	if slices.Contains(p.OldClusterIDs, p.ClusterID) {
		return fmt.Errorf("%w: %s (token %q); give another --token or none", ErrSameClusterID, p.ClusterID, p.Token)
	}
	// Loss: committed entries past the source's index that some WAL saw,
	// and the revisions of newer dbs.
	entries, writes, complete := uint64(0), uint64(0), true
	if ev.index > s.Index && ev.wal != nil {
		entries, writes, complete = ev.wal.writesBetween(s.Index, ev.index)
		if !complete {
			entries = ev.index - s.Index
		}
	} else if ev.index > s.Index {
		entries = ev.index - s.Index
	}
	lostRevs := max(ev.revision-s.Revision, int64(writes))
	p.Loss = Loss{Entries: entries, Revisions: lostRevs, Evidence: ev.where}
	highest := max(ev.revision, s.Revision+int64(writes))
	p.BumpRevision = highest - s.Revision + o.RevisionMargin
	p.Revision = s.Revision + p.BumpRevision
	if p.HashKV, err = expectedHashKV(ctx, lg, s, p.BumpRevision); err != nil {
		return err
	}
	p.HashKVChecked = true
	why := fmt.Sprintf("%s holds the most committed data that can be restored: raft index %d, revision %d.", s.Source, s.Index, s.Revision)
	if s.Kind == "data-dir" {
		why += " Force-new-cluster is not possible from it: " + cmp.Or(s.noForce, "its WAL cannot continue from its db") + "."
	} else {
		why += " No surviving data dir is as advanced with a WAL that can continue, so force-new-cluster would lose more."
	}
	p.Reason = why + fmt.Sprintf(" It is restored into a new logical cluster: a fresh token gives new member IDs and cluster ID %s (the old cluster's was %s), "+
		"so no old member can rejoin it; the revision is raised by %d to %d and marked compacted, so watchers from before the restore are told to re-list instead of going back in time.",
		p.ClusterID, strings.Join(p.OldClusterIDs, ", "), p.BumpRevision, p.Revision)
	if refused != nil {
		p.RollForward = refused
		p.Reason += fmt.Sprintf(" The WAL of %s commits entries up to %d, but cannot roll %s forward: %s.", refused.WAL, refused.To, refused.Base, refused.Note)
	}
	srcPath, err := filepath.Abs(s.Backup.Location)
	if err != nil {
		return err
	}
	skip := ""
	if s.Kind == "data-dir" {
		skip = " --skip-hash-check"
		// A survivor's dir that a new member takes is read once moved aside.
		for _, m := range cl.Members {
			if mdir, err := memberDir(o, m.Name); err == nil && mdir == srcPath {
				srcPath = aside(mdir, p)
			}
		}
	}
	for _, m := range cl.Members {
		mdir, err := memberDir(o, m.Name)
		if err != nil {
			return err
		}
		pm := PlanMember{Name: m.Name, ID: schema.FormatID(m.ID), PeerURLs: m.PeerURLs, Learner: m.IsLearner, DataDir: mdir,
			OldClientURLs: oldClientURLs(s.Backup.Members, m.Name)}
		learners := ""
		if ls := learnerNames(cl); len(ls) > 0 {
			learners = " --initial-learners " + strings.Join(ls, ",")
		}
		pm.Steps = append(pm.Steps, fenceStep(m.Name, mdir), moveAsideStep(mdir, p),
			Step{Name: "write", Auto: true, Detail: fmt.Sprintf("restore %s into %s as member %s", srcPath, mdir, pm.ID),
				Run: fmt.Sprintf("restore snapshot %s --name %s --initial-cluster %s%s --initial-cluster-token %s --data-dir %s --bump-revision %d --mark-compacted --compact%s",
					srcPath, m.Name, FormatInitialCluster(targets), learners, p.Token, mdir, p.BumpRevision, skip)},
			Step{Name: "check", Auto: true, Detail: fmt.Sprintf("member %s, cluster %s, revision %d compacted, HashKV %d", pm.ID, p.ClusterID, p.Revision, p.HashKV),
				Run: "restore inspect " + mdir},
			Step{Name: "start", Detail: "start every member; they form the new cluster",
				Run: fmt.Sprintf("etcd --name %s --data-dir %s --initial-advertise-peer-urls %s --listen-peer-urls %s ...", m.Name, mdir, strings.Join(m.PeerURLs, ","), strings.Join(m.PeerURLs, ","))})
		p.Members = append(p.Members, pm)
	}
	p.SourcePath, p.SkipHashCheck = srcPath, s.Kind == "data-dir"
	if k := s.Backup.keep; k != nil && p.BumpRevision > 0 && !p.SkipHashCheck && k.DBSHA256() == s.Backup.SHA256 {
		b, err := k.MarshalBinary()
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		p.keep = k
		p.KeepSet = &PlanKeepSet{SHA256: hex.EncodeToString(sum[:]), DBSHA256: k.DBSHA256(), Pairs: k.Revisions(), Kept: k.Kept()}
	}
	if len(p.Members) > 1 {
		p.Warnings = append(p.Warnings, fmt.Sprintf("every member is restored from %s: copy it to each member's node at that path before applying there", srcPath))
	}
	return nil
}

// oldClientURLs are the client URLs of the old member called name.
func oldClientURLs(ms []schema.Member, name string) []string {
	for _, m := range ms {
		if m.Name == name {
			return m.ClientURLs
		}
	}
	return nil
}

func learnerNames(cl *Cluster) []string {
	var out []string
	for _, m := range cl.Members {
		if m.IsLearner {
			out = append(out, m.Name)
		}
	}
	return out
}

// rollForwardChoice is a base and a surviving WAL that rolls it forward.
type rollForwardChoice struct {
	report    RollForwardReport
	base, wal *candidate
	self      schema.Member
}

// bestRollForward tries every usable db or snapshot against every
// surviving WAL that commits entries past it, with the checks RollForward
// makes, and returns the pair that recovers the most (the least to
// replay among those), and the WAL reaching furthest among those that
// cannot roll any base forward, with the reason.
func bestRollForward(ctx context.Context, lg *slog.Logger, cs []*candidate) (best *rollForwardChoice, refused *RollForwardReport, err error) {
	scratch, err := os.MkdirTemp("", "lifeboat-plan-")
	if err != nil {
		return nil, nil, fmt.Errorf("restore: %w", err)
	}
	defer os.RemoveAll(scratch)
	for _, b := range cs {
		if !b.Usable {
			continue
		}
		var base *baseDB
		for _, c := range cs {
			if c == b || c.Kind != "data-dir" || c.report == nil || c.report.WAL == nil || c.report.InUse {
				continue
			}
			to := min(c.Commit, c.LastIndex)
			if to <= b.Backup.ConsistentIndex {
				continue
			}
			if base == nil {
				if base, err = describeBase(b); err != nil {
					return nil, nil, err
				}
			}
			rep := RollForwardReport{Base: b.Source, BaseIndex: base.index, WAL: c.Source, MemberID: c.MemberID, From: base.index + 1, To: to}
			cut := filepath.Join(scratch, "wal")
			rl, err := readReplay(lg, c.report.WALDir, cut, base)
			if rerr := os.RemoveAll(cut); rerr != nil {
				return nil, nil, fmt.Errorf("restore: %w", rerr)
			}
			var self schema.Member
			if err == nil {
				self, err = rl.member(base, "")
			}
			if err != nil {
				// Whatever keeps this WAL from rolling this base forward
				// is said, not fatal: other sources may do.
				rep.Note = err.Error()
				if refused == nil || to > refused.To {
					refused = &rep
				}
				continue
			}
			rep.To, rep.Name, rep.Available = rl.to, self.Name, true
			rep.Entries, rep.Writes, _ = c.writesBetween(base.index, rl.to)
			rep.Note = "read to the WAL's commit"
			if rl.repair != nil && rl.repair.Damage != nil {
				d := rl.repair.Damage
				rep.Note = fmt.Sprintf("read up to its damage (%s in %s at offset %d)", d.Kind, d.Segment, d.Offset)
			}
			if best == nil || rep.To > best.report.To || (rep.To == best.report.To && rep.BaseIndex > best.report.BaseIndex) {
				best = &rollForwardChoice{report: rep, base: b, wal: c, self: self}
			}
		}
	}
	return best, refused, nil
}

// describeBase reads what a roll-forward needs of a usable source's db:
// its meta and membership, through bbolt (the source's walk found its
// structure sound), without rebuilding its key index.
func describeBase(c *candidate) (*baseDB, error) {
	src, err := snapkit.Resolve(c.Backup.Location)
	if err != nil {
		return nil, err
	}
	b, err := readBase(src.DBPath)
	if err != nil {
		return nil, fmt.Errorf("restore: %s: %w", c.Source, err)
	}
	return b, nil
}

// rollForward plans (c): the best base restored, the survivor's WAL
// replayed over it (RollForward), and the survivor kept as (a) keeps it.
func (p *Plan) rollForward(o PlanOptions, cs []*candidate, rf *rollForwardChoice, ev evidence) error {
	b, c, r := rf.base, rf.wal, &rf.report
	p.Strategy, p.ClusterID, p.RollForward = StrategyRollForward, c.ClusterID, r
	p.Chosen = slices.Index(cs, b)
	p.Revision = b.Revision
	p.Loss = lossAfter(r.To, ev)
	what := "the snapshot " + b.Source
	if b.Kind == "data-dir" {
		what = "the db of " + b.Source
	}
	p.Reason = fmt.Sprintf("%s holds the cluster's data up to raft index %d (term %d, revision %d), and the WAL of %s (member %s %s of cluster %s) "+
		"holds the committed entries %d-%d after it (%d entries, %d of them writes; %s). No survivor has its db and its WAL at that point, "+
		"so roll-forward restores the db and replays those entries through lifeboat's own apply code, as member %s alone, with the same cluster ID: "+
		"nothing committed up to %d is lost, no revision bump is needed and clients and watchers keep working. The other members are then added back with member add and start empty.",
		what, b.Backup.ConsistentIndex, b.Backup.Term, b.Revision, c.Source, rf.self.Name, c.MemberID, c.ClusterID,
		r.From, r.To, r.Entries, r.Writes, r.Note, rf.self.Name, r.To)
	if p.Loss.Entries > 0 {
		p.Reason += fmt.Sprintf(" Another source (%s) saw %d more committed entries, which are lost.", ev.where, p.Loss.Entries)
	}
	basePath, err := filepath.Abs(b.Backup.Location)
	if b.Kind == "data-dir" {
		basePath, err = filepath.Abs(b.report.DataDir)
	}
	if err != nil {
		return err
	}
	r.Base = basePath
	p.Warnings = append(p.Warnings, fmt.Sprintf("%s is restored from %s: it must be at that path on %s's node before applying there", rf.self.Name, basePath, rf.self.Name))
	return p.keepSurvivor(o, c, rf.self, b.Backup.Members, false, func(mdir string) []Step {
		return []Step{
			{Name: "write", Auto: true, Detail: fmt.Sprintf("restore %s and replay entries %d-%d of the moved-aside dir's WAL into %s", basePath, r.From, r.To, mdir),
				Run: fmt.Sprintf("restore roll-forward --base %s --data-dir %s --output-dir %s", basePath, aside(mdir, p), mdir)},
			{Name: "check", Auto: true, Detail: fmt.Sprintf("member %s alone in cluster %s, applied and committed past %d, db revision %d to %d", c.MemberID, c.ClusterID, r.To, b.Revision, b.Revision+int64(r.Writes)),
				Run: "restore inspect " + mdir},
		}
	})
}

// expectedHashKV is the HashKV that a member restored from s with bump
// answers at its new revision: the source's key bucket hashed with the
// compaction at the new revision (the last put of each live key), then,
// with a bump, the marker pair that the restore writes last (its key the
// new revision, its value empty). The source's description holds the
// first (Backup.CompactedHashKV, from the walk that described it); else it
// is snapkit.Inspect's bounded walk, without bbolt or a key index; a
// source with findings has none.
func expectedHashKV(ctx context.Context, lg *slog.Logger, s *candidate, bump int64) (uint32, error) {
	var at int64
	if bump > 0 {
		at = s.Revision + bump
	}
	var hash uint32
	if h := s.Backup.CompactedHashKV; h != nil && bump > 0 {
		hash = *h
	} else {
		rep, err := snapkit.Inspect(ctx, s.Backup.Location, snapkit.Options{Logger: lg, SkipTrailer: true, HashKV: true, HashKVCompactAt: at})
		if err != nil {
			return 0, fmt.Errorf("restore: hashkv of %s: %w", s.Backup.Location, err)
		}
		if rep.HashKV == nil {
			return 0, fmt.Errorf("restore: hashkv of %s: %w: %v", s.Backup.Location, snapkit.ErrDamaged, rep.Findings)
		}
		hash = rep.HashKV.Hash
	}
	if bump == 0 {
		return hash, nil
	}
	marker := schema.RevisionBytes(schema.Revision{Main: at})
	return crc32.Update(hash, crc32.MakeTable(crc32.Castagnoli), marker), nil
}

func fenceStep(name, dir string) Step {
	return Step{Name: "fence", Auto: true,
		Detail: "stop " + name + "'s old member on this node and keep it from restarting; apply refuses a dir still in use",
		Run:    "systemctl stop etcd; systemctl disable etcd   # or however the member runs; then: restore inspect " + dir}
}

func moveAsideStep(dir string, p *Plan) Step {
	return Step{Name: "move-aside", Auto: true, Detail: "rename the old data dir, never delete it",
		Run: fmt.Sprintf("mv %s %s", dir, aside(dir, p))}
}

// aside is where a plan moves an old data dir.
func aside(dir string, p *Plan) string {
	return dir + ".before-restore-" + p.Created.Format("20060102T150405Z")
}

// warnAnswering warns about every old member that still answers on a
// client URL: its cluster may not be dead, or it may take writes that the
// restore will not have.
func (p *Plan) warnAnswering(ctx context.Context, cs []*candidate) {
	seen := map[string]bool{}
	for _, c := range cs {
		for _, m := range c.Backup.Members {
			for _, u := range m.ClientURLs {
				if seen[u] {
					continue
				}
				seen[u] = true
				if answers(ctx, u) {
					p.Warnings = append(p.Warnings, fmt.Sprintf("member %s (%s) still answers on its client URL %s: make sure its cluster is really lost, and fence it before applying", m.Name, schema.FormatID(m.ID), u))
				}
			}
		}
		if c.report != nil && c.report.InUse {
			p.Warnings = append(p.Warnings, fmt.Sprintf("%s is in use by a running member", c.Source))
		}
	}
}

// answers reports whether something accepts TCP connections at a client
// URL's host, within a second.
func answers(ctx context.Context, clientURL string) bool {
	u, err := url.Parse(clientURL)
	if err != nil || u.Host == "" {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// digest is the plan's ID: a hash of its JSON without the ID.
func (p *Plan) digest() string {
	q := *p
	q.ID = ""
	b, _ := json.Marshal(q)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}
