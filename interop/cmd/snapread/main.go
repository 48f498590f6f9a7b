package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"go.etcd.io/etcd/server/v3/etcdserver/api/snap"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/lifeboat-dev/lifeboat/interop/internal/waljson"
)

// Output is what snapread prints.
type Output struct {
	File     string   `json:"file"`
	Metadata Metadata `json:"metadata"`
	Data     string   `json:"data"`
}

// Metadata is raftpb.SnapshotMetadata.
type Metadata struct {
	Index     uint64             `json:"index"`
	Term      uint64             `json:"term"`
	ConfState *waljson.ConfState `json:"confState"`
}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "snapread:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		return fmt.Errorf("usage: snapread <snap-dir> | <file.snap>")
	}
	path := args[0]
	lg := zap.NewNop()
	var (
		s   *raftpb.Snapshot
		err error
	)
	if strings.HasSuffix(path, ".snap") {
		s, err = snap.Read(lg, path)
	} else {
		s, err = snap.New(lg, path).Load()
	}
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	cs := s.Metadata.ConfState
	return json.NewEncoder(stdout).Encode(Output{
		File: fmt.Sprintf("%016x-%016x.snap", s.Metadata.Term, s.Metadata.Index),
		Metadata: Metadata{
			Index:     s.Metadata.Index,
			Term:      s.Metadata.Term,
			ConfState: waljson.FromConfState(&cs),
		},
		Data: base64.StdEncoding.EncodeToString(s.Data),
	})
}
