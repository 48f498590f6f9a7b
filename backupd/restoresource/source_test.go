package restoresource_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"filippo.io/age"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/lifeboat-dev/lifeboat/backupd"
	"github.com/lifeboat-dev/lifeboat/backupd/codec"
	"github.com/lifeboat-dev/lifeboat/backupd/internal/backoff"
	"github.com/lifeboat-dev/lifeboat/backupd/internal/clustertest"
	"github.com/lifeboat-dev/lifeboat/backupd/manifest"
	"github.com/lifeboat-dev/lifeboat/backupd/restoresource"
	"github.com/lifeboat-dev/lifeboat/backupd/store"
	"github.com/lifeboat-dev/lifeboat/restore"
	"github.com/lifeboat-dev/lifeboat/restore/cli"
	"github.com/lifeboat-dev/lifeboat/snapkit"
	"github.com/lifeboat-dev/lifeboat/snapkit/datadir"
)

const prefix = "prod/etcd"

// bucket is a file:// bucket holding one encrypted backup of a 1-member
// lifeboat, and the identity file that opens it.
type bucket struct {
	url, identity string
	m             *manifest.Manifest
}

func newBucket(t *testing.T, ctx context.Context) bucket {
	t.Helper()
	c := clustertest.NewLifeboat(t, 1)
	if err := clustertest.Put(clientv3.Config{Endpoints: c.Endpoints}, "k", 200); err != nil {
		t.Fatal(err)
	}
	url := "file://" + t.TempDir()
	s, err := store.Open(ctx, url, prefix, clustertest.Logger())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	idFile := filepath.Join(t.TempDir(), "key.txt")
	if err := os.WriteFile(idFile, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := backupd.Backup(ctx, &backupd.Config{
		Client:   clientv3.Config{Endpoints: c.Endpoints, DialTimeout: 5 * time.Second},
		Store:    s,
		Codec:    codec.Options{Codec: codec.Zstd, Recipients: []age.Recipient{id.Recipient()}, RecipientNames: []string{id.Recipient().String()}},
		SpoolDir: t.TempDir(),
		Retry:    backoff.Policy{Attempts: 3, Initial: 50 * time.Millisecond, Max: 200 * time.Millisecond},
		Logger:   clustertest.Logger(),
	}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return bucket{url: url, identity: idFile, m: m}
}

func runJSON(t *testing.T, ctx context.Context, v any, argv ...string) {
	t.Helper()
	var out, errb bytes.Buffer
	if code := cli.Run(ctx, append(argv, "-w", "json"), &out, &errb, cli.Options{OpenBucket: restoresource.Open}); code != 0 {
		t.Fatalf("restore %v: exit %d\n%s%s", argv, code, errb.String(), out.String())
	}
	if err := json.Unmarshal(out.Bytes(), v); err != nil {
		t.Fatalf("restore %v: %v\n%s", argv, err, out.String())
	}
}

// A bucket with one encrypted backup lists it as its manifest says; restore
// snapshot --bucket restores it into a data dir with the manifest's revision
// and hashkv; plan --from the bucket alone (scenario C) ranks and chooses it,
// and apply restores from the fetched file.
func TestBucketSnapshotAndPlan(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	b := newBucket(t, ctx)
	opts := restore.BucketOptions{Prefix: prefix, IdentityFiles: []string{b.identity}}

	src, err := restoresource.Open(ctx, nil, b.url, opts)
	if err != nil {
		t.Fatal(err)
	}
	list, err := src.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != b.m.ID || list[0].Revision != b.m.Revision || list[0].ClusterID != b.m.ClusterID ||
		!list[0].Time.Equal(b.m.End) || list[0].SHA256 != b.m.DBSHA256 {
		t.Fatalf("list %+v, manifest %+v", list, b.m)
	}
	if err := src.(interface{ Close() error }).Close(); err != nil {
		t.Fatal(err)
	}

	checkDataDir := func(t *testing.T, dir string, rev int64) {
		t.Helper()
		hk, err := snapkit.HashKVFile(ctx, datadir.New(dir, "").DBPath(), b.m.Revision, nil)
		if err != nil {
			t.Fatal(err)
		}
		if hk.Hash != b.m.HashKV || hk.HashRevision != b.m.HashKVRevision {
			t.Errorf("%s: hashkv %d at %d, manifest %d at %d", dir, hk.Hash, hk.HashRevision, b.m.HashKV, b.m.HashKVRevision)
		}
		if rev != b.m.Revision {
			t.Errorf("%s: revision %d, manifest %d", dir, rev, b.m.Revision)
		}
	}
	bucketArgs := []string{"--prefix", prefix, "--identity", b.identity}

	t.Run("snapshot", func(t *testing.T) {
		for _, ref := range []string{"latest", b.m.ID} {
			dd := filepath.Join(t.TempDir(), "m1.etcd")
			var res restore.SnapshotResult
			runJSON(t, ctx, &res, append([]string{"snapshot", "--bucket", b.url, ref, "--name", "m1", "--data-dir", dd}, bucketArgs...)...)
			if !res.HashChecked || res.SHA256 != b.m.DBSHA256 {
				t.Errorf("%s: hash checked %v, SHA-256 %s; manifest %s", ref, res.HashChecked, res.SHA256, b.m.DBSHA256)
			}
			checkDataDir(t, dd, res.Revision)
			if _, err := os.Stat(res.Source.Path); !os.IsNotExist(err) {
				t.Errorf("%s: the fetched file %s is left behind: %v", ref, res.Source.Path, err)
			}
		}
	})

	t.Run("refusals", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			argv []string
		}{
			{"unknown backup", append([]string{"snapshot", "--bucket", b.url, "nope-r1"}, bucketArgs...)},
			{"no identity", []string{"snapshot", "--bucket", b.url, "--prefix", prefix, "latest"}},
			{"prefix without bucket", []string{"snapshot", "--prefix", prefix, "latest"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var out bytes.Buffer
				argv := append(tc.argv, "--data-dir", filepath.Join(t.TempDir(), "m1.etcd"))
				if code := cli.Run(ctx, argv, &out, &out, cli.Options{OpenBucket: restoresource.Open}); code != 2 {
					t.Errorf("exit %d, want 2\n%s", code, out.String())
				}
			})
		}
	})

	t.Run("plan", func(t *testing.T) {
		dir := t.TempDir()
		dd, planFile := filepath.Join(dir, "n1.etcd"), filepath.Join(dir, "plan.json")
		var p restore.Plan
		runJSON(t, ctx, &p, append([]string{"plan", "--from", b.url, "--fetch-dir", filepath.Join(dir, "fetched"),
			"--initial-cluster", "n1=http://127.0.0.1:2380", "--member-dir", "n1=" + dd, "-o", planFile}, bucketArgs...)...)
		if p.Strategy != restore.StrategyNewCluster || p.Chosen != 0 || len(p.Sources) != 1 || p.Sources[0].Source != b.url ||
			p.Sources[0].Revision != b.m.Revision || p.Sources[0].Index != b.m.RaftIndex || !p.Sources[0].Usable {
			t.Fatalf("plan %s, chosen %d, sources %+v; want new-cluster from %s at revision %d\n%s", p.Strategy, p.Chosen, p.Sources, b.url, b.m.Revision, p.Reason)
		}
		if len(p.OldClusterIDs) == 0 || !slices.Contains(p.OldClusterIDs, b.m.ClusterID) || p.ClusterID == b.m.ClusterID {
			t.Errorf("old cluster IDs %v, new %s; the backup's is %s", p.OldClusterIDs, p.ClusterID, b.m.ClusterID)
		}
		var res restore.ApplyResult
		runJSON(t, ctx, &res, "apply", planFile)
		hk, err := snapkit.HashKVFile(ctx, datadir.New(dd, "").DBPath(), 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		if hk.Hash != p.HashKV || hk.HashRevision != p.Revision {
			t.Errorf("applied: hashkv %d at %d, plan %d at %d", hk.Hash, hk.HashRevision, p.HashKV, p.Revision)
		}
	})
}
