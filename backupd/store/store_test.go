package store

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lifeboat-dev/lifeboat/backupd/internal/objstoretest"
	"github.com/lifeboat-dev/lifeboat/backupd/manifest"
)

// On file:// the commit links the staged file under its final name rather
// than copying its bytes: the committed object is the staged file itself,
// with fileblob's attributes (its MD5), and the staging names are gone.
func TestFileCommitLinks(t *testing.T) {
	b, _ := objstoretest.Get(t, "file")
	s := open(t, b, "p")
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	staging := manifest.StagingKey(s.Prefix(), 0xc1, at, manifest.ObjectName("none", false))
	data := randBytes(1<<20 + 7)
	up := upload(t, s, staging, data)
	staged, err := os.Stat(filepath.Join(s.lockDir, filepath.FromSlash(staging)))
	if err != nil {
		t.Fatal(err)
	}
	id := manifest.NewID(0xc1, at, 42)
	m := &manifest.Manifest{
		Format: manifest.Format, ID: id.String(), ClusterID: "c1", Revision: 42, DBSHA256: "00", Start: at, End: at,
		Object: manifest.Object{Key: id.Key(s.Prefix(), manifest.ObjectName("none", false)), Size: up.Size, Codec: "none"},
	}
	up.MD5 = nil // as the pipeline uploads to file:// (MD5InProcess)
	if err := s.Commit(ctx(t), staging, up, m); err != nil {
		t.Fatal(err)
	}
	final, err := os.Stat(filepath.Join(s.lockDir, filepath.FromSlash(m.Object.Key)))
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(staged, final) {
		t.Error("the committed object is a copy of the staged file, not the file")
	}
	a, err := s.Attributes(ctx(t), m.Object.Key)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.MD5) == 0 || m.Object.MD5 == "" || m.Object.StoreMD5 {
		t.Errorf("attributes MD5 %x; manifest MD5 %q, compared %v", a.MD5, m.Object.MD5, m.Object.StoreMD5)
	}
	for _, p := range []string{staging, staging + fileblobAttrs} {
		if _, err := os.Stat(filepath.Join(s.lockDir, filepath.FromSlash(p))); !os.IsNotExist(err) {
			t.Errorf("%s after the commit: %v", p, err)
		}
	}
}
