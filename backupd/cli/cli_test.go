package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/rogpeppe/go-internal/testscript"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/lifeboat-dev/lifeboat/backupd/internal/clustertest"
	"github.com/lifeboat-dev/lifeboat/backupd/internal/drilltest"
	"github.com/lifeboat-dev/lifeboat/backupd/internal/objstoretest"
	"github.com/lifeboat-dev/lifeboat/internal/interoptest"
	"github.com/lifeboat-dev/lifeboat/internal/scripttest"
)

// cleanupM stops the object-store servers after the tests.
type cleanupM struct{ m *testing.M }

func (c cleanupM) Run() int {
	defer objstoretest.Cleanup()
	return c.m.Run()
}

func TestMain(m *testing.M) {
	// The test binary's backupd drills with real etcdutl (the restore
	// package is not wired yet); BACKUPD_TEST_ETCDUTL names it.
	testscript.Main(cleanupM{m}, scripttest.Program("backupd", func() int {
		var opts Options
		if p := os.Getenv("BACKUPD_TEST_ETCDUTL"); p != "" {
			opts.Restorer = drilltest.Etcdutl(p)
		}
		return Execute(opts)
	}))
}

// TestScripts runs testdata/script/*.txtar, each against its own 3-member
// lifeboat cluster in this process. $ENDPOINTS are its client URLs, $BUCKET
// is file://$WORK/bucket, $RECIPIENT the age recipient of key.txt, and
// other.txt another identity.
func TestScripts(t *testing.T) {
	etcdutl := interoptest.Binary(t, "etcdutl")
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			c, err := clustertest.StartLifeboat(filepath.Join(env.WorkDir, ".cluster"), 3)
			if err != nil {
				return err
			}
			env.Defer(c.Stop)
			if err := clustertest.Put(clientv3.Config{Endpoints: c.Endpoints}, "script", 100); err != nil {
				return err
			}
			env.Setenv("ENDPOINTS", strings.Join(c.Endpoints, ","))
			env.Setenv("BUCKET", "file://"+filepath.ToSlash(filepath.Join(env.WorkDir, "bucket")))
			env.Setenv("BACKUPD_TEST_ETCDUTL", etcdutl)
			for _, name := range []string{"key.txt", "other.txt"} {
				id, err := age.GenerateX25519Identity()
				if err != nil {
					return err
				}
				if err := os.WriteFile(filepath.Join(env.WorkDir, name), []byte(id.String()+"\n"), 0o600); err != nil {
					return err
				}
				if name == "key.txt" {
					env.Setenv("RECIPIENT", id.Recipient().String())
				}
			}
			return nil
		},
		Cmds: map[string]scripttest.Cmd{
			// exits N args...: run backupd and expect exit code N.
			"exits": scripttest.Exits("backupd"),
			// flipobject DIR: flip one byte in the middle of every stored
			// snapshot object under DIR, as bit rot in the store would.
			"flipobject": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 1 {
					ts.Fatalf("usage: flipobject <dir>")
				}
				n := 0
				err := filepath.WalkDir(ts.MkAbs(args[0]), func(path string, d os.DirEntry, err error) error {
					if err != nil || d.IsDir() || !strings.HasPrefix(d.Name(), "snapshot.db") || strings.HasSuffix(d.Name(), ".attrs") {
						return err
					}
					b, err := os.ReadFile(path)
					if err != nil {
						return err
					}
					b[len(b)/2] ^= 0x01
					n++
					return os.WriteFile(path, b, 0o600)
				})
				if err != nil || n == 0 {
					ts.Fatalf("flipobject: %d objects, %v", n, err)
				}
			},
		},
	})
}
