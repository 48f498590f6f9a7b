package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"go.etcd.io/etcd/server/v3/lease"
	"go.etcd.io/etcd/server/v3/storage/backend"
	"go.etcd.io/etcd/server/v3/storage/mvcc"
	"go.uber.org/zap"
)

// Output is etcdutl's HashKV JSON.
type Output struct {
	Hash            uint32 `json:"hash"`
	HashRevision    int64  `json:"hashRevision"`
	CompactRevision int64  `json:"compactRevision"`
}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "hashkv:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fl := flag.NewFlagSet("hashkv", flag.ContinueOnError)
	rev := fl.Int64("rev", 0, "maximum revision to hash (0: the latest)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() != 1 {
		return fmt.Errorf("usage: hashkv [--rev N] <db>")
	}
	db := fl.Arg(0)
	tmp, err := os.MkdirTemp("", "hashkv-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	work := filepath.Join(tmp, "db")
	if err := copyFile(db, work); err != nil {
		return fmt.Errorf("%s: %w", db, err)
	}
	out, err := hash(work, *rev)
	if err != nil {
		return fmt.Errorf("%s: rev %d: %w", db, *rev, err)
	}
	return json.NewEncoder(stdout).Encode(out)
}

func hash(path string, rev int64) (Output, error) {
	// etcd's backend panics on a file bbolt cannot open; find that first.
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return Output{}, fmt.Errorf("not a bbolt db: %w", err)
	}
	if err := db.Close(); err != nil {
		return Output{}, err
	}
	lg := zap.NewNop()
	cfg := backend.DefaultBackendConfig(lg)
	cfg.Path = path
	b := backend.New(cfg)
	defer b.Close()
	le := lease.NewLessor(lg, b, nil, lease.LessorConfig{})
	defer le.Stop()
	st := mvcc.NewStore(lg, b, le, mvcc.StoreConfig{})
	defer st.Close()
	h, _, err := mvcc.NewHashStorage(lg, st).HashByRev(rev)
	if err != nil {
		return Output{}, err
	}
	return Output{Hash: h.Hash, HashRevision: h.Revision, CompactRevision: h.CompactRevision}, nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
