package snapkit

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
	"github.com/lifeboat-dev/lifeboat/walkit"
)

// A db that a running member holds (bbolt's exclusive lock) is refused at
// once with ErrLocked, which is walkit's file-lock error.
func TestLockedDBIsErrLocked(t *testing.T) {
	path := filepath.Join(filepath.Dir(genSmall(t, nil)), "db")
	db, err := schema.Open(path, schema.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, err = Inspect(context.Background(), path, Options{})
	if !errors.Is(err, ErrLocked) || !errors.Is(err, walkit.ErrLocked) {
		t.Fatalf("Inspect of a locked db: %v, want ErrLocked", err)
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "is etcd running on this data dir?") {
		t.Errorf("Inspect of a locked db: %q names neither the db nor the likely cause", err)
	}
}
