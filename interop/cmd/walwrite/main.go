package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/lifeboat-dev/lifeboat/interop/internal/waljson"
)

// Script is walwrite's input.
type Script struct {
	Metadata string `json:"metadata"`
	Ops      []Op   `json:"ops"`
}

// Op is one step: exactly one of Save and Snapshot is set.
type Op struct {
	Save     *Save             `json:"save,omitempty"`
	Snapshot *waljson.Snapshot `json:"snapshot,omitempty"`
}

// Save is the argument of WAL.Save; a missing hard state is the empty one.
type Save struct {
	HardState *waljson.HardState `json:"hardState,omitempty"`
	Entries   []waljson.Entry    `json:"entries"`
}

func main() {
	if err := run(os.Args[1:], os.Stdin); err != nil {
		fmt.Fprintln(os.Stderr, "walwrite:", err)
		os.Exit(1)
	}
}

func run(args []string, stdin io.Reader) error {
	fl := flag.NewFlagSet("walwrite", flag.ContinueOnError)
	out := fl.String("out", "", "WAL directory to create (must hold no .wal file)")
	segment := fl.Int64("segment-size", wal.SegmentSizeBytes, "segment size in bytes (wal.SegmentSizeBytes)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *out == "" || fl.NArg() != 0 {
		return errors.New("usage: walwrite --out <dir> [--segment-size N] < script.json")
	}
	if *segment <= 0 {
		return fmt.Errorf("--segment-size %d: must be positive", *segment)
	}
	var s Script
	dec := json.NewDecoder(stdin)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return fmt.Errorf("script: %w", err)
	}
	metadata, err := base64.StdEncoding.DecodeString(s.Metadata)
	if err != nil {
		return fmt.Errorf("script: metadata: %w", err)
	}
	wal.SegmentSizeBytes = *segment
	w, err := wal.Create(zap.NewNop(), *out, metadata)
	if err != nil {
		return fmt.Errorf("%s: create: %w", *out, err)
	}
	if err := apply(w, s.Ops); err != nil {
		w.Close()
		return fmt.Errorf("%s: %w", *out, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("%s: close: %w", *out, err)
	}
	return nil
}

func apply(w *wal.WAL, ops []Op) error {
	for i, op := range ops {
		switch {
		case op.Save != nil && op.Snapshot == nil:
			ents, err := waljson.RaftEntries(op.Save.Entries)
			if err != nil {
				return fmt.Errorf("op %d: %w", i, err)
			}
			var hs raftpb.HardState
			if op.Save.HardState != nil {
				hs = op.Save.HardState.Raft()
			}
			if err := w.Save(hs, ents); err != nil {
				return fmt.Errorf("op %d: save: %w", i, err)
			}
		case op.Snapshot != nil && op.Save == nil:
			if err := w.SaveSnapshot(op.Snapshot.WAL()); err != nil {
				return fmt.Errorf("op %d: snapshot %d/%d: %w", i, op.Snapshot.Index, op.Snapshot.Term, err)
			}
		default:
			return fmt.Errorf("op %d: want exactly one of \"save\" and \"snapshot\"", i)
		}
	}
	return nil
}
