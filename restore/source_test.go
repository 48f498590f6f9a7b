package restore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lifeboat-dev/lifeboat/internal/fixture"
)

func TestSnapshotFilesSource(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for i, set := range fixture.Sets {
		p := filepath.Join(dir, set+".db")
		b, err := os.ReadFile(fixture.Path(set, "snapshot.db"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		// v3.5's is the older one.
		when := time.Date(2026, 1, 2-i, 0, 0, 0, 0, time.UTC)
		if err := os.Chtimes(p, when, when); err != nil {
			t.Fatal(err)
		}
	}
	bad := writeVariant(t, "bad.db", func(b []byte) []byte { b[len(b)-1] ^= 1; return b })
	if err := os.Rename(bad, filepath.Join(dir, "bad.db")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a snapshot"), 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := OpenSource(context.Background(), nil, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	list, err := src.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, b := range list {
		ids = append(ids, b.ID)
	}
	if len(ids) != 3 || ids[0] != "v3.5.db" || ids[1] != "v3.6.db" {
		t.Fatalf("listed %v, want v3.5.db, v3.6.db (by time) and bad.db, no notes.txt", ids)
	}
	for _, id := range ids {
		b, err := src.Describe(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if id == "bad.db" {
			if b.Usable() || b.HashOK {
				t.Errorf("bad.db: %+v, want unusable", b)
			}
			continue
		}
		if !b.Usable() || b.Revision != 657 || b.CompactRevision != 407 || b.ConsistentIndex == 0 || len(b.Members) != 3 || b.SHA256 == "" {
			t.Errorf("%s: %+v", id, b)
		}
		path, release, err := src.Open(ctx, id)
		if err != nil || path != filepath.Join(dir, id) {
			t.Errorf("open %s: %s %v", id, path, err)
		}
		release()
	}
	if _, err := src.Describe(ctx, "../etc/passwd"); err == nil {
		t.Error("an ID with a path was accepted")
	}
}

func TestDataDirSource(t *testing.T) {
	ctx := context.Background()
	src, err := OpenSource(context.Background(), nil, fixture.DataDir(t, "v3.6", "m2"), nil)
	if err != nil {
		t.Fatal(err)
	}
	dds, ok := src.(*DataDirSource)
	if !ok {
		t.Fatalf("source %T, want *DataDirSource", src)
	}
	list, err := dds.List(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("list %v %v", list, err)
	}
	b, err := dds.Describe(ctx, list[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if !b.Usable() || b.ClusterID != "1d048c2eadc12ecc" || b.Revision != 657 || b.ConsistentIndex != 667 {
		t.Errorf("%+v", b)
	}
}

func TestOpenSourceRefusals(t *testing.T) {
	if _, err := OpenSource(context.Background(), nil, "s3://bucket/prefix", nil); !errors.Is(err, ErrNotYet) {
		t.Errorf("bucket: %v, want ErrNotYet", err)
	}
	if _, err := OpenSource(context.Background(), nil, filepath.Join(t.TempDir(), "nope"), nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
}
