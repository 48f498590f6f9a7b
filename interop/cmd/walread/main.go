package main

import (
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.uber.org/zap"

	"github.com/lifeboat-dev/lifeboat/interop/internal/waljson"
)

// Output is what walread prints.
type Output struct {
	Metadata  string             `json:"metadata"`
	HardState waljson.HardState  `json:"hardState"`
	Entries   []waljson.Entry    `json:"entries"`
	Snapshots []waljson.Snapshot `json:"snapshots"`
}

// BenchOutput is what walread --bench prints.
type BenchOutput struct {
	Entries   int   `json:"entries"`
	ElapsedNs int64 `json:"elapsedNs"`
}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "walread:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fl := flag.NewFlagSet("walread", flag.ContinueOnError)
	index := fl.Uint64("snap-index", 0, "index of the snapshot to open the WAL at")
	term := fl.Uint64("snap-term", 0, "term of that snapshot")
	bench := fl.Bool("bench", false, "only read; print the entry count and the elapsed time")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() != 1 {
		return fmt.Errorf("want one WAL directory, got %d arguments", fl.NArg())
	}
	dir := fl.Arg(0)
	lg := zap.NewNop()
	start := time.Now()
	w, err := wal.OpenForRead(lg, dir, walpb.Snapshot{Index: *index, Term: *term})
	if err != nil {
		return fmt.Errorf("%s: open at snapshot %d/%d: %w", dir, *index, *term, err)
	}
	defer w.Close()
	metadata, hs, ents, err := w.ReadAll()
	if err != nil {
		return fmt.Errorf("%s: ReadAll at snapshot %d/%d: %w", dir, *index, *term, err)
	}
	enc := json.NewEncoder(stdout)
	if *bench {
		return enc.Encode(BenchOutput{Entries: len(ents), ElapsedNs: time.Since(start).Nanoseconds()})
	}
	snaps, err := wal.ValidSnapshotEntries(lg, dir)
	if err != nil {
		return fmt.Errorf("%s: ValidSnapshotEntries: %w", dir, err)
	}
	return enc.Encode(Output{
		Metadata:  base64.StdEncoding.EncodeToString(metadata),
		HardState: waljson.FromHardState(hs),
		Entries:   waljson.FromEntries(ents),
		Snapshots: waljson.FromSnapshots(snaps),
	})
}
