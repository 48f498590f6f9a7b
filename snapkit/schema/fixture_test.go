package schema

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/lifeboat-dev/lifeboat/internal/fixture"
)

// sha256Size is the length of the trailer of `etcdctl snapshot save`.
const sha256Size = 32

// fixtureDB is one real etcd db of the fixtures.
type fixtureDB struct {
	set, name string // name: "snapshot.db" or a member
	path      string // a private copy, trailer cut
}

// snapshotDB copies the db part of <set>/snapshot.db into a temp dir.
func snapshotDB(t testing.TB, set string) string {
	t.Helper()
	src, err := os.Open(fixture.Path(set, "snapshot.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "snapshot.db")
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(out, src, st.Size()-sha256Size); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}

// fixtureDBs returns every db of every fixture set: the snapshot file's and
// each member's member/snap/db.
func fixtureDBs(t testing.TB) []fixtureDB {
	t.Helper()
	var dbs []fixtureDB
	for _, set := range fixture.Sets {
		dbs = append(dbs, fixtureDB{set, "snapshot.db", snapshotDB(t, set)})
		for _, m := range fixture.Members {
			dbs = append(dbs, fixtureDB{set, m, filepath.Join(fixture.DataDir(t, set, m), "member", "snap", "db")})
		}
	}
	return dbs
}

// view opens path read-only and runs fn in a read transaction.
func view(t testing.TB, path string, fn func(tx *bolt.Tx)) {
	t.Helper()
	db, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.View(func(tx *bolt.Tx) error { fn(tx); return nil }); err != nil {
		t.Fatal(err)
	}
}

// readJSON decodes a JSON file of a fixture set.
func readJSON(t testing.TB, set, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(fixture.Path(set, name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s/%s: %v", set, name, err)
	}
}

// membersJSON is what `etcdctl member list -w json` printed.
type membersJSON struct {
	Header struct {
		ClusterID uint64 `json:"cluster_id"`
	} `json:"header"`
	Members []struct {
		ID         uint64   `json:"ID"`
		Name       string   `json:"name"`
		PeerURLs   []string `json:"peerURLs"`
		ClientURLs []string `json:"clientURLs"`
		IsLearner  bool     `json:"isLearner"`
	} `json:"members"`
}

// endpointStatus is one row of `etcdctl endpoint status -w json`.
type endpointStatus struct {
	Status struct {
		Header struct {
			MemberID uint64 `json:"member_id"`
			Revision int64  `json:"revision"`
			RaftTerm uint64 `json:"raft_term"`
		} `json:"header"`
		Version          string `json:"version"`
		RaftIndex        uint64 `json:"raftIndex"`
		RaftAppliedIndex uint64 `json:"raftAppliedIndex"`
		StorageVersion   string `json:"storageVersion"`
	} `json:"Status"`
}

// snapshotStatus is `etcdutl snapshot status -w json`.
type snapshotStatus struct {
	Hash      uint32 `json:"hash"`
	Revision  int64  `json:"revision"`
	TotalKey  int    `json:"totalKey"`
	TotalSize int64  `json:"totalSize"`
	Version   string `json:"version"`
}
