package robustness

import (
	"errors"
	"fmt"
	"slices"
	"strconv"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/lifeboat-dev/lifeboat/snapkit/datadir"
	"github.com/lifeboat-dev/lifeboat/walkit"
)

// RaftLog is what the cluster committed, merged from its members' WALs
// after a run: for each request the history can name, the raft indexes of
// the committed entries that carry it. It tells which requests of unknown
// outcome took effect, and bounds when.
type RaftLog struct {
	// Tokens maps a request's token (see tokens) to the indexes of the
	// committed entries that carry it, in order.
	Tokens map[string][]uint64
	// Entries is the number of committed entries read.
	Entries int
}

// ReadRaftLog reads the committed entries (up to each WAL's commit index)
// of the members' data dirs. Members must have stopped. Where two members
// committed different entries at one index, that is an anomaly.
func ReadRaftLog(dataDirs []string) (*RaftLog, []Anomaly, error) {
	type committed struct {
		data   []byte
		member string
	}
	byIndex := map[uint64]committed{}
	var anomalies []Anomaly
	var last uint64
	for _, dir := range dataDirs {
		st, ents, err := readWAL(datadir.New(dir, "").WALDir())
		if err != nil {
			return nil, nil, fmt.Errorf("robustness: WAL of %s: %w", dir, err)
		}
		for _, e := range ents {
			if e.Index > st.Commit {
				break
			}
			last = max(last, e.Index)
			data := e.Data
			if e.Type != raftpb.EntryNormal {
				data = nil // a conf change: present, but names no request
			}
			if old, ok := byIndex[e.Index]; ok {
				if !slices.Equal(old.data, data) {
					anomalies = append(anomalies, Anomaly{Check: "raft-log", Message: fmt.Sprintf(
						"committed entry %d differs between the WALs of %s and %s", e.Index, old.member, dir)})
				}
				continue
			}
			byIndex[e.Index] = committed{data, dir}
		}
	}
	// A request missing from the log is taken as never committed, so the
	// log must be whole.
	for i := uint64(1); i <= last; i++ {
		if _, ok := byIndex[i]; !ok {
			return nil, anomalies, fmt.Errorf("robustness: no WAL holds committed entry %d (of %d)", i, last)
		}
	}
	l := &RaftLog{Tokens: map[string][]uint64{}, Entries: len(byIndex)}
	indexes := make([]uint64, 0, len(byIndex))
	for i := range byIndex {
		indexes = append(indexes, i)
	}
	slices.Sort(indexes)
	for _, i := range indexes {
		var rr pb.InternalRaftRequest
		if len(byIndex[i].data) == 0 {
			continue
		}
		if err := rr.Unmarshal(byIndex[i].data); err != nil {
			continue // not a v3 request (a v2 one, such as the cluster version)
		}
		for _, tok := range requestTokens(&rr) {
			l.Tokens[tok] = append(l.Tokens[tok], i)
		}
	}
	return l, anomalies, nil
}

// readWAL reads a stopped member's WAL from its beginning, or, for a
// member that joined from a snapshot, from its oldest snapshot record.
func readWAL(dir string) (raftpb.HardState, []raftpb.Entry, error) {
	snaps, err := walkit.ValidSnapshotEntries(nil, dir)
	if err != nil {
		return raftpb.HardState{}, nil, err
	}
	starts := append([]walkit.Snapshot{{}}, snaps...)
	var errs []error
	for _, snap := range starts {
		w, err := walkit.OpenForRead(nil, dir, snap)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		_, st, ents, err := w.ReadAll()
		w.Close()
		if err == nil {
			return st, ents, nil
		}
		errs = append(errs, err)
	}
	return raftpb.HardState{}, nil, errors.Join(errs...)
}

// requestTokens names what a committed request did, as tokens does for a
// Request.
func requestTokens(rr *pb.InternalRaftRequest) []string {
	switch {
	case rr.Put != nil:
		return []string{putToken(string(rr.Put.Value))}
	case rr.DeleteRange != nil && len(rr.DeleteRange.RangeEnd) == 0:
		return []string{deleteToken(string(rr.DeleteRange.Key))}
	case rr.Txn != nil:
		var toks []string
		for _, ops := range [][]*pb.RequestOp{rr.Txn.Success, rr.Txn.Failure} {
			for _, op := range ops {
				if p := op.GetRequestPut(); p != nil {
					toks = append(toks, putToken(string(p.Value)))
				}
			}
		}
		return toks
	case rr.LeaseGrant != nil:
		return []string{grantToken(rr.LeaseGrant.ID)}
	case rr.LeaseRevoke != nil:
		return []string{revokeToken(rr.LeaseRevoke.ID)}
	}
	return nil
}

func putToken(value string) string  { return "put:" + value }
func deleteToken(key string) string { return "delete:" + key }
func grantToken(id int64) string    { return "grant:" + strconv.FormatInt(id, 16) }
func revokeToken(id int64) string   { return "revoke:" + strconv.FormatInt(id, 16) }

// identity is the token that names req alone in a log (a unique put value
// or lease ID), or "" if it has none.
func identity(req Request) string {
	switch req.Kind {
	case LeaseGrant:
		return grantToken(req.Lease)
	case Txn:
		if vs := putValues(req); len(vs) > 0 {
			return putToken(vs[0])
		}
	}
	return ""
}

// singleDelete returns the key of a request that deletes one key and does
// nothing else, as a DeleteRange.
func singleDelete(req Request) (string, bool) {
	t := req.Txn
	if req.Kind != Txn || len(t.If) > 0 || len(t.Else) > 0 || len(t.Then) != 1 || t.Then[0].Kind != Delete || t.Then[0].End != "" {
		return "", false
	}
	return t.Then[0].Key, true
}
