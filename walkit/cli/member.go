package cli

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/lifeboat-dev/lifeboat/snapkit/datadir"
	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
	"github.com/lifeboat-dev/lifeboat/snapkit/snap"
	"github.com/lifeboat-dev/lifeboat/walkit"
)

// dbLockWait bounds the wait for the db's lock: a running member holds it.
const dbLockWait = time.Second

// memberState is what a member's other files say about how far its WAL
// must reach: the db has applied entries up to its consistent index, and
// a .snap file stands for the entries up to its index. A WAL that ends
// below either makes a member that skips new writes as already applied.
type memberState struct {
	DataDir string `json:"dataDir"`
	// ID (from the WAL's metadata), Name and PeerURLs (from the db's
	// members) are for the advice to rebuild the member.
	ID       string   `json:"id,omitempty"`
	Name     string   `json:"name,omitempty"`
	PeerURLs []string `json:"peerURLs,omitempty"`
	// DB is the db read for ConsistentIndex; empty if there is none or it
	// could not be read (Problems says why).
	DB              string `json:"db,omitempty"`
	ConsistentIndex uint64 `json:"consistentIndex"`
	// Snapshot is the .snap file with the highest index, if any.
	Snapshot      string   `json:"snapshot,omitempty"`
	SnapshotIndex uint64   `json:"snapshotIndex,omitempty"`
	Problems      []string `json:"problems,omitempty"`
}

// readMember reads the db's consistent index and the newest .snap file of
// the member whose WAL is walDir, read-only. What cannot be read is noted,
// not fatal: the WAL is what repair works on.
func readMember(l datadir.Layout, walDir string) *memberState {
	m := &memberState{DataDir: l.DataDir}
	var self uint64
	if md, ok := walMetadata(walDir); ok {
		self, m.ID = md.NodeID, schema.FormatID(md.NodeID)
	}
	err := m.readDB(l.DBPath(), self)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		m.Problems = append(m.Problems, fmt.Sprintf("no db at %s", l.DBPath()))
	case errors.Is(err, bolterrors.ErrTimeout):
		m.Problems = append(m.Problems, fmt.Sprintf("db %s is locked (is the member running?)", l.DBPath()))
	case err != nil:
		m.Problems = append(m.Problems, fmt.Sprintf("db %s: %v", l.DBPath(), err))
	default:
		m.DB = l.DBPath()
	}
	names, err := snap.New(nil, l.SnapDir()).Names()
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		m.Problems = append(m.Problems, err.Error())
	}
	for _, name := range names {
		if _, index, err := snap.ParseName(name); err == nil && (m.Snapshot == "" || index > m.SnapshotIndex) {
			m.Snapshot, m.SnapshotIndex = name, index
		}
	}
	return m
}

// readDB reads meta/consistent_index of the db at path, and the name and
// peer URLs of member self.
func (m *memberState) readDB(path string, self uint64) error {
	if _, err := os.Stat(path); err != nil {
		return err
	}
	db, err := schema.Open(path, schema.Options{ReadOnly: true, Timeout: dbLockWait})
	if err != nil {
		return err
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		ci, err := schema.ConsistentIndex(tx)
		if err != nil {
			return err
		}
		m.ConsistentIndex = ci
		members, err := schema.Members(tx)
		if err != nil {
			return err
		}
		for _, mb := range members {
			if mb.ID == self {
				m.Name, m.PeerURLs = mb.Name, mb.PeerURLs
			}
		}
		return nil
	})
}

// above lists what of the member is ahead of a WAL that ends at end, e.g.
// "the db's consistent index 125 and the snapshot 0000000000000002-0000000000000066.snap
// at index 102"; empty when nothing is.
func (m *memberState) above(end uint64) string {
	var what []string
	if m.DB != "" && m.ConsistentIndex > end {
		what = append(what, fmt.Sprintf("the db's consistent index %d", m.ConsistentIndex))
	}
	if m.SnapshotIndex > end {
		what = append(what, fmt.Sprintf("the snapshot %s at index %d", m.Snapshot, m.SnapshotIndex))
	}
	return strings.Join(what, " and ")
}

// rebuildAdvice says what a member whose WAL ends below its db or .snap
// files needs: its data cannot be used, it must be made again.
func (m *memberState) rebuildAdvice() string {
	id, name, urls := cmp.Or(m.ID, "<member-id>"), cmp.Or(m.Name, "<name>"), cmp.Or(strings.Join(m.PeerURLs, ","), "<peer-urls>")
	return fmt.Sprintf("rebuild the member: remove it and add it again (etcdctl member remove %s; etcdctl member add %s --peer-urls=%s; "+
		"then start it on an empty data dir with --initial-cluster-state existing), or restore its data dir from a snapshot (restore)", id, name, urls)
}

// render writes the member's lines of a plan.
func (m *memberState) render(w io.Writer) {
	if m.DB != "" {
		fmt.Fprintf(w, "DB:      consistent index %d (%s)\n", m.ConsistentIndex, m.DB)
	}
	if m.Snapshot != "" {
		fmt.Fprintf(w, "Snap:    newest %s, index %d\n", m.Snapshot, m.SnapshotIndex)
	} else {
		fmt.Fprintf(w, "Snap:    no .snap file in %s\n", datadir.New(m.DataDir, "").SnapDir())
	}
	for _, p := range m.Problems {
		fmt.Fprintf(w, "Note:    %s; the cut is not checked against it\n", p)
	}
}

// walMetadata reads the metadata record at the head of the WAL.
func walMetadata(dir string) (walkit.Metadata, bool) {
	r, err := walkit.NewReader(dir)
	if err != nil {
		return walkit.Metadata{}, false
	}
	defer r.Close()
	for range 2 { // a crc record, then the metadata
		rec, _, err := r.Next()
		if err != nil {
			return walkit.Metadata{}, false
		}
		if rec.Type == walkit.MetadataType {
			md, err := walkit.ParseMetadata(rec.Data)
			return md, err == nil
		}
	}
	return walkit.Metadata{}, false
}
