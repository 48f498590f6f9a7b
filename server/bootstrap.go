package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/lifeboat-dev/lifeboat/server/transport"
	"github.com/lifeboat-dev/lifeboat/snapkit/datadir"
	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
	"github.com/lifeboat-dev/lifeboat/snapkit/snap"
	"github.com/lifeboat-dev/lifeboat/walkit"
)

// membersPath serves the membership to a member that joins an existing
// cluster (--initial-cluster-state existing).
const membersPath = "/lifeboat/members"

// membersInfo is the JSON of membersPath.
type membersInfo struct {
	ClusterID string          `json:"clusterID"`
	Members   []schema.Member `json:"members"`
}

// bootState is what a boot path hands to the raft node.
type bootState struct {
	id, clusterID uint64
	wal           *walkit.WAL
	// snapshot is the raft snapshot loaded at boot (may be empty).
	snapshot raftpb.Snapshot
	// peers, for a new cluster only, are the bootstrap ConfChanges.
	peers []raft.Peer
	// members known at boot (for the transport and the cluster view).
	members []schema.Member
	// restart means raft.RestartNode (existing WAL or join).
	restart bool
}

// prepareDirs refuses a boot that cannot start before it touches the disk,
// then creates the member dirs and removes leftovers of an interrupted
// snapshot receive, as etcd does on start. A refused --force-new-cluster
// must leave no member dir or db behind, which tools would take for a
// member.
func prepareDirs(c *Config) error {
	layout := c.Layout()
	if c.ForceNewCluster && !walkit.Exist(layout.WALDir()) {
		return fmt.Errorf("server: --force-new-cluster needs an existing data dir, and %s has no WAL", layout.WALDir())
	}
	for _, d := range layout.Dirs() {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("server: create %s: %w", d, err)
		}
	}
	ents, err := os.ReadDir(layout.SnapDir())
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	for _, e := range ents {
		if datadir.IsTemp(e.Name()) {
			p := filepath.Join(layout.SnapDir(), e.Name())
			if err := os.RemoveAll(p); err != nil {
				return fmt.Errorf("server: remove leftover %s: %w", p, err)
			}
		}
	}
	return nil
}

// initialMembers derives the members of --initial-cluster and the cluster ID,
// as etcd does.
func initialMembers(c *Config) ([]schema.Member, uint64, error) {
	var ms []schema.Member
	var ids []uint64
	for name, urls := range c.InitialCluster {
		id, err := schema.MemberID(urls, c.InitialClusterToken, nil)
		if err != nil {
			return nil, 0, fmt.Errorf("server: member %s: %w", name, err)
		}
		ms = append(ms, schema.Member{ID: id, Name: name, PeerURLs: slices.Clone(urls)})
		ids = append(ids, id)
	}
	schema.SortMembers(ms)
	for i := 1; i < len(ms); i++ {
		if ms[i].ID == ms[i-1].ID {
			return nil, 0, fmt.Errorf("server: --initial-cluster: members %s and %s have the same peer URLs", ms[i-1].Name, ms[i].Name)
		}
	}
	return ms, schema.ClusterID(ids), nil
}

// bootNew creates the WAL of a member of a new cluster.
func (s *Server) bootNew() (*bootState, error) {
	ms, cid, err := initialMembers(s.cfg)
	if err != nil {
		return nil, err
	}
	var self uint64
	for _, m := range ms {
		if m.Name == s.cfg.Name {
			self = m.ID
		}
	}
	bs := &bootState{id: self, clusterID: cid, members: ms}
	for _, m := range ms {
		ctx, err := json.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("server: encode member %s: %w", m.Name, err)
		}
		bs.peers = append(bs.peers, raft.Peer{ID: m.ID, Context: ctx})
	}
	md := walkit.Metadata{NodeID: self, ClusterID: cid}
	if bs.wal, err = walkit.Create(s.lg, s.cfg.Layout().WALDir(), md.Marshal()); err != nil {
		return nil, fmt.Errorf("server: create WAL: %w", err)
	}
	s.lg.Info("starting a new cluster", "member-id", schema.FormatID(self), "cluster-id", schema.FormatID(cid), "members", len(ms))
	return bs, nil
}

// bootJoin asks the members of --initial-cluster for the membership, finds
// this member in it (added before with MemberAdd) and creates the WAL.
func (s *Server) bootJoin(ctx context.Context) (*bootState, error) {
	var urls []string
	for name, us := range s.cfg.InitialCluster {
		if name != s.cfg.Name {
			urls = append(urls, us...)
		}
	}
	if len(urls) == 0 {
		return nil, errors.New("server: --initial-cluster-state existing needs the other members in --initial-cluster")
	}
	info, err := fetchMembers(ctx, s.peerHTTPClient(2*time.Second), urls)
	if err != nil {
		return nil, err
	}
	cid, err := schema.ParseID(info.ClusterID)
	if err != nil {
		return nil, fmt.Errorf("server: cluster ID from peers: %w", err)
	}
	var self uint64
	for _, m := range info.Members {
		if sameURLs(m.PeerURLs, s.cfg.AdvertisePeerURLs) {
			self = m.ID
		}
	}
	if self == 0 {
		return nil, fmt.Errorf("server: no member of cluster %s has peer URLs %s; add this member first (etcdctl member add %s --peer-urls=%s)",
			info.ClusterID, strings.Join(s.cfg.AdvertisePeerURLs, ","), s.cfg.Name, strings.Join(s.cfg.AdvertisePeerURLs, ","))
	}
	md := walkit.Metadata{NodeID: self, ClusterID: cid}
	w, err := walkit.Create(s.lg, s.cfg.Layout().WALDir(), md.Marshal())
	if err != nil {
		return nil, fmt.Errorf("server: create WAL: %w", err)
	}
	s.lg.Info("joining an existing cluster", "member-id", schema.FormatID(self), "cluster-id", info.ClusterID)
	return &bootState{id: self, clusterID: cid, wal: w, members: info.Members, restart: true}, nil
}

// fetchMembers gets membersInfo from the first peer URL that answers.
func fetchMembers(ctx context.Context, client *http.Client, urls []string) (*membersInfo, error) {
	info, err := getJSON[membersInfo](ctx, client, urls, membersPath, 4<<20)
	if err != nil {
		return nil, fmt.Errorf("server: cannot fetch the cluster membership from %s: %w", strings.Join(urls, ","), err)
	}
	return &info, nil
}

// bootRestart opens the WAL at the newest usable snapshot and reads it,
// repairing a torn tail once.
func (s *Server) bootRestart() (*bootState, error) {
	walDir := s.cfg.Layout().WALDir()
	walSnaps, err := walkit.ValidSnapshotEntries(s.lg, walDir)
	if err != nil {
		return nil, fmt.Errorf("server: list WAL snapshots in %s: %w", walDir, err)
	}
	bs := &bootState{restart: true}
	sn, err := s.snapshotter.LoadNewestAvailable(walSnaps)
	switch {
	case err == nil:
		bs.snapshot = *sn
	case errors.Is(err, snap.ErrNoSnapshot):
	default:
		return nil, fmt.Errorf("server: load snapshot: %w", err)
	}
	if err := s.openStores(bs.snapshot.Metadata.Index); err != nil {
		return nil, err
	}
	at := walkit.Snapshot{Index: bs.snapshot.Metadata.Index, Term: bs.snapshot.Metadata.Term}
	var (
		md   []byte
		st   raftpb.HardState
		ents []raftpb.Entry
	)
	for repaired := false; ; repaired = true {
		w, err := walkit.Open(s.lg, walDir, at)
		if err != nil {
			return nil, fmt.Errorf("server: open WAL %s: %w", walDir, err)
		}
		md, st, ents, err = w.ReadAll()
		if err == nil {
			bs.wal = w
			break
		}
		w.Close()
		if repaired || !errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("server: read WAL %s: %w", walDir, err)
		}
		s.lg.Warn("WAL ends with a torn record, repairing", "dir", walDir, "error", err)
		if rerr := walkit.Repair(s.lg, walDir); rerr != nil {
			return nil, fmt.Errorf("server: read WAL %s: %v; repair failed: %w", walDir, err, rerr)
		}
	}
	meta, err := walkit.ParseMetadata(md)
	if err != nil {
		bs.wal.Close()
		return nil, fmt.Errorf("server: WAL metadata: %w", err)
	}
	bs.id, bs.clusterID = meta.NodeID, meta.ClusterID
	if err := s.checkWALEnd(bs, ents); err != nil {
		bs.wal.Close()
		return nil, err
	}
	if !raft.IsEmptySnap(bs.snapshot) {
		if err := s.raftStorage.ApplySnapshot(bs.snapshot); err != nil {
			bs.wal.Close()
			return nil, fmt.Errorf("server: apply snapshot %d: %w", bs.snapshot.Metadata.Index, err)
		}
	}
	if s.cfg.ForceNewCluster {
		if st, ents, err = s.forceNewCluster(bs, st, ents); err != nil {
			bs.wal.Close()
			return nil, err
		}
	}
	if err := s.raftStorage.SetHardState(st); err != nil {
		bs.wal.Close()
		return nil, fmt.Errorf("server: set hard state: %w", err)
	}
	if err := s.raftStorage.Append(ents); err != nil {
		bs.wal.Close()
		return nil, fmt.Errorf("server: append WAL entries: %w", err)
	}
	s.lg.Info("restarting member", "member-id", schema.FormatID(bs.id), "cluster-id", schema.FormatID(bs.clusterID),
		"snapshot-index", bs.snapshot.Metadata.Index, "commit", st.Commit, "term", st.Term, "entries", len(ents))
	return bs, nil
}

// ErrWALBehind means a member's WAL ends below what the member has applied.
var ErrWALBehind = errors.New("server: the WAL ends below the member's applied data")

// checkWALEnd refuses a WAL that ends below the db's consistent index or
// below the newest .snap file, as a WAL cut by a repair does. Raft would
// start from the WAL's end and hand out the indexes above it again, and
// the apply loop would skip those new entries as already applied: every
// write would be acknowledged and dropped. A .snap above the WAL whose
// received db still waits beside it is a snapshot from the leader that a
// crash interrupted before its WAL record; the leader sends it again. A db
// ahead of the WAL that was installed from the WAL's newest snapshot (its
// marker says so) is the leader's backend, which may be past the
// snapshot's index: the entries up to the db's consistent index are
// committed, so the leader sends them again and the apply loop skips them
// as applied; a member that is the only voter has no leader, though, and
// is refused as before.
func (s *Server) checkWALEnd(bs *bootState, ents []raftpb.Entry) error {
	end := bs.snapshot.Metadata.Index
	if n := len(ents); n > 0 {
		end = ents[n-1].Index
	}
	layout := s.cfg.Layout()
	var above []string
	if ci, _ := s.st.Load().kv.ConsistentIndex(); ci > end {
		if s.installedAhead(bs) {
			s.lg.Info("the db, installed from the leader's snapshot, is ahead of the WAL; the entries up to its consistent index will be skipped as applied",
				"snapshot-index", bs.snapshot.Metadata.Index, "wal-end", end, "consistent-index", ci)
		} else {
			above = append(above, fmt.Sprintf("the db's consistent index %d (%s)", ci, layout.DBPath()))
		}
	}
	names, err := s.snapshotter.Names()
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	var newest uint64
	var newestName string
	for _, name := range names {
		_, index, err := snap.ParseName(name)
		if err != nil || index <= max(end, newest) {
			continue
		}
		if _, err := os.Stat(layout.ReceivedDBPath(index)); err == nil {
			continue
		}
		newest, newestName = index, name
	}
	if newestName != "" {
		above = append(above, fmt.Sprintf("the snapshot %s at index %d", filepath.Join(layout.SnapDir(), newestName), newest))
	}
	if len(above) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s ends at index %d, below %s: entries after %d were applied but are gone from the WAL "+
		"(was it cut by a repair?), and a member started on it would skip new writes as already applied. "+
		"This data dir cannot be used as it is: remove the member and add it again (etcdctl member remove %s; "+
		"etcdctl member add %s --peer-urls=%s; then start it on an empty data dir with --initial-cluster-state existing), "+
		"or restore the data dir from a snapshot (restore)",
		ErrWALBehind, layout.WALDir(), end, strings.Join(above, " and "), end,
		schema.FormatID(bs.id), s.cfg.Name, strings.Join(s.cfg.AdvertisePeerURLs, ","))
}

// installedAhead reports whether the db was put in place from the WAL's
// newest snapshot (applySnapshot's marker) in a cluster of more than one
// voter.
func (s *Server) installedAhead(bs *bootState) bool {
	idx := bs.snapshot.Metadata.Index
	if idx == 0 {
		return false
	}
	if _, err := os.Stat(s.cfg.Layout().InstalledPath(idx)); err != nil {
		return false
	}
	cl, err := s.st.Load().loadCluster(bs.clusterID)
	if err != nil {
		return false
	}
	voters := 0
	for _, m := range cl.Members() {
		if !m.IsLearner {
			voters++
		}
	}
	return voters > 1
}

// forceNewCluster rewrites membership as FORMATS.md §10: entries above the
// commit index are dropped, and ConfChanges that keep only this member are
// appended and committed.
func (s *Server) forceNewCluster(bs *bootState, st raftpb.HardState, ents []raftpb.Entry) (raftpb.HardState, []raftpb.Entry, error) {
	ci, _ := s.st.Load().kv.ConsistentIndex()
	commit := max(st.Commit, ci)
	for i, e := range ents {
		if e.Index > commit {
			ents = ents[:i]
			break
		}
	}
	ids := make(map[uint64]bool)
	if cs := bs.snapshot.Metadata.ConfState; !raft.IsEmptySnap(bs.snapshot) {
		for _, id := range append(slices.Clone(cs.Voters), cs.Learners...) {
			ids[id] = true
		}
	}
	for _, e := range ents {
		if e.Type != raftpb.EntryConfChange {
			continue
		}
		var cc raftpb.ConfChange
		if err := cc.Unmarshal(e.Data); err != nil {
			return st, nil, fmt.Errorf("server: force-new-cluster: decode ConfChange at %d: %w", e.Index, err)
		}
		switch cc.Type {
		case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode:
			ids[cc.NodeID] = true
		case raftpb.ConfChangeRemoveNode:
			delete(ids, cc.NodeID)
		}
	}
	var add []raftpb.Entry
	next := commit + 1
	appendCC := func(cc raftpb.ConfChange) error {
		data, err := cc.Marshal()
		if err != nil {
			return fmt.Errorf("server: force-new-cluster: encode ConfChange: %w", err)
		}
		add = append(add, raftpb.Entry{Type: raftpb.EntryConfChange, Term: st.Term, Index: next, Data: data})
		next++
		return nil
	}
	if !ids[bs.id] {
		m := schema.Member{ID: bs.id, Name: s.cfg.Name, PeerURLs: s.cfg.AdvertisePeerURLs}
		ctx, err := json.Marshal(m)
		if err != nil {
			return st, nil, fmt.Errorf("server: force-new-cluster: encode member: %w", err)
		}
		if err := appendCC(raftpb.ConfChange{Type: raftpb.ConfChangeAddNode, NodeID: bs.id, Context: ctx}); err != nil {
			return st, nil, err
		}
	}
	others := make([]uint64, 0, len(ids))
	for id := range ids {
		if id != bs.id {
			others = append(others, id)
		}
	}
	slices.Sort(others)
	for _, id := range others {
		if err := appendCC(raftpb.ConfChange{Type: raftpb.ConfChangeRemoveNode, NodeID: id}); err != nil {
			return st, nil, err
		}
	}
	ents = append(ents, add...)
	if err := bs.wal.Save(raftpb.HardState{}, add); err != nil {
		return st, nil, fmt.Errorf("server: force-new-cluster: save entries: %w", err)
	}
	if len(add) > 0 {
		st.Commit = add[len(add)-1].Index
	} else {
		st.Commit = commit
	}
	s.lg.Warn("forcing a new cluster", "member-id", schema.FormatID(bs.id), "removed", len(others), "commit", st.Commit)
	return st, ents, nil
}

// peerHandler serves the transport and the membership for joining members.
func (s *Server) peerHandler() http.Handler {
	mux := http.NewServeMux()
	th := s.tr.Handler()
	mux.Handle(transport.StreamPath, th)
	mux.Handle(transport.SnapshotPath, th)
	mux.HandleFunc(leaseRenewPath, s.serveLeaseRenew)
	mux.HandleFunc(leaseTTLPath, s.serveLeaseTTL)
	mux.HandleFunc(promotePath, s.servePromote)
	mux.HandleFunc(membersPath, func(w http.ResponseWriter, r *http.Request) {
		info := membersInfo{ClusterID: schema.FormatID(s.cluster.ID()), Members: s.cluster.Members()}
		w.Header().Set("Content-Type", "application/json")
		if err := json.NewEncoder(w).Encode(info); err != nil {
			s.lg.Debug("write members", "error", err)
		}
	})
	return mux
}
