package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/lifeboat-dev/lifeboat/backupd/internal/clustertest"
	"github.com/lifeboat-dev/lifeboat/backupd/internal/drilltest"
	"github.com/lifeboat-dev/lifeboat/backupd/internal/objstoretest"
	"github.com/lifeboat-dev/lifeboat/backupd/manifest"
	"github.com/lifeboat-dev/lifeboat/backupd/store"
	"github.com/lifeboat-dev/lifeboat/internal/interoptest"
)

// e2eCluster is a cluster to back up and the connection flags for it.
type e2eCluster struct {
	endpoints []string
	flags     []string // --cacert ... for TLS
	client    clientv3.Config
}

// TestEndToEnd runs `backupd run` on a 2-second schedule, encrypted, into
// S3 (versitygw; file:// if it is not installed and not required), against
// a real etcd v3.6 cluster with client-certificate TLS and against a
// lifeboat cluster; then list, verify, fetch and drill through the CLI,
// and `etcdutl snapshot restore` of the fetched file gives the hashkv the
// manifest records.
func TestEndToEnd(t *testing.T) {
	etcdutl := interoptest.Binary(t, "etcdutl")
	hashkv := interoptest.Oracle(t, "hashkv")
	clusters := map[string]func(t *testing.T) e2eCluster{
		"etcd-tls": func(t *testing.T) e2eCluster {
			tf := interoptest.NewTLS(t)
			c := interoptest.StartEtcd(t, interoptest.Options{Members: 3, TLS: tf})
			tc, err := tf.ClientConfig()
			if err != nil {
				t.Fatal(err)
			}
			return e2eCluster{endpoints: c.Endpoints(), client: clientv3.Config{Endpoints: c.Endpoints(), TLS: tc},
				flags: []string{"--cacert", tf.CAFile, "--cert", tf.ClientCertFile, "--key", tf.ClientKeyFile}}
		},
		"lifeboat": func(t *testing.T) e2eCluster {
			c := clustertest.NewLifeboat(t, 3)
			return e2eCluster{endpoints: c.Endpoints, client: clientv3.Config{Endpoints: c.Endpoints}}
		},
	}
	for _, name := range []string{"etcd-tls", "lifeboat"} {
		t.Run(name, func(t *testing.T) {
			c := clusters[name](t)
			if err := clustertest.Put(c.client, "e2e", 500); err != nil {
				t.Fatal(err)
			}
			b, ok := objstoretest.Get(t, "s3")
			if !ok {
				b, _ = objstoretest.Get(t, "file")
			}
			b.Setenv(t)
			dir := t.TempDir()
			id, err := age.GenerateX25519Identity()
			if err != nil {
				t.Fatal(err)
			}
			idFile := filepath.Join(dir, "key.txt")
			if err := os.WriteFile(idFile, []byte(id.String()+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			store := []string{"--bucket", b.URL, "--prefix", "e2e/" + name}
			listen := freeAddr(t)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan int, 1)
			go func() {
				var out, errb bytes.Buffer
				argv := append([]string{"run", "--endpoints", strings.Join(c.endpoints, ","), "--schedule", "@every 2s",
					"--encrypt-to", id.Recipient().String(), "--listen", listen, "--keep-last", "3", "--retention", "1ns"}, c.flags...)
				code := Run(ctx, append(argv, store...), &out, &errb, os.Getenv, Options{})
				if code != 0 {
					t.Logf("run: %s", errb.String())
				}
				done <- code
			}()
			waitMetric(t, "http://"+listen+"/metrics", `backupd_attempts_total{result="ok"}`, 4, 2*time.Minute)
			resp, err := http.Get("http://" + listen + "/healthz")
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Errorf("healthz: %v %v", err, resp)
			}
			resp.Body.Close()
			cancel()
			if code := <-done; code != 0 {
				t.Fatalf("run exited %d", code)
			}

			var list listReport
			runJSON(t, &list, append([]string{"list", "-w", "json"}, store...)...)
			if len(list.Backups) != 3 {
				t.Errorf("%d backups listed, want the last 3", len(list.Backups))
			}
			for _, bk := range list.Backups {
				if !bk.Encrypted || !bk.Verified || bk.Role != "follower" {
					t.Errorf("backup %+v", bk)
				}
			}
			if d := list.Daemon; d == nil || d.Schedule.Spec != "@every 2s" || time.Duration(d.Schedule.Interval) != 2*time.Second || d.Drill != nil {
				t.Errorf("list's daemon record %+v; want run's schedule @every 2s and no drills", d)
			}
			if code, _, stderr := run(t, append([]string{"verify", "latest"}, store...)...); code != ExitUsage || !strings.Contains(stderr, "give --identity") {
				t.Errorf("verify without identity: exit %d: %s", code, stderr)
			}
			var vr struct{ OK bool }
			runJSON(t, &vr, append([]string{"verify", "latest", "--identity", idFile, "-w", "json"}, store...)...)
			if !vr.OK {
				t.Error("verify with the identity failed")
			}
			snap := filepath.Join(dir, "fetched.db")
			var fr struct {
				ID   string
				Path string
			}
			runJSON(t, &fr, append([]string{"fetch", "latest", "--identity", idFile, "-o", snap, "-w", "json"}, store...)...)
			m := readManifest(t, b.URL, "e2e/"+name, fr.ID)
			restored := filepath.Join(dir, "restored")
			if out, err := exec.Command(etcdutl, "snapshot", "restore", snap, "--data-dir", restored).CombinedOutput(); err != nil {
				t.Fatalf("etcdutl snapshot restore: %v: %s", err, out)
			}
			out, err := exec.Command(hashkv, filepath.Join(restored, "member", "snap", "db")).Output()
			if err != nil {
				t.Fatalf("hashkv oracle: %v", err)
			}
			var hk struct {
				Hash         uint32 `json:"hash"`
				HashRevision int64  `json:"hashRevision"`
			}
			if err := json.Unmarshal(out, &hk); err != nil {
				t.Fatal(err)
			}
			if hk.Hash != m.HashKV || hk.HashRevision != m.Revision {
				t.Errorf("etcdutl-restored db: hashkv %d at %d; manifest %d at %d", hk.Hash, hk.HashRevision, m.HashKV, m.Revision)
			}
			var dr struct {
				OK   bool
				Keys int64
			}
			code, stdout, stderr := runWith(t, Options{Restorer: drilltest.Etcdutl(etcdutl)}, append([]string{"drill", "latest", "--identity", idFile, "-w", "json"}, store...)...)
			if code != 0 || json.Unmarshal([]byte(stdout), &dr) != nil || !dr.OK || dr.Keys != 500 {
				t.Errorf("drill: exit %d %s %s", code, stdout, stderr)
			}
		})
	}
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitMetric polls a Prometheus endpoint until the named sample reaches want.
func waitMetric(t *testing.T, url, sample string, want float64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			var b bytes.Buffer
			_, _ = b.ReadFrom(resp.Body)
			resp.Body.Close()
			for _, l := range strings.Split(b.String(), "\n") {
				if rest, ok := strings.CutPrefix(l, sample+" "); ok {
					last = l
					var v float64
					if _, err := fmt.Sscan(rest, &v); err == nil && v >= want {
						return
					}
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s did not reach %v within %s (last: %q)", sample, want, timeout, last)
}

func run(t *testing.T, argv ...string) (int, string, string) {
	return runWith(t, Options{}, argv...)
}

func runWith(t *testing.T, opts Options, argv ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(context.Background(), argv, &out, &errb, os.Getenv, opts)
	return code, out.String(), errb.String()
}

func runJSON(t *testing.T, v any, argv ...string) {
	t.Helper()
	code, out, stderr := run(t, argv...)
	if code != 0 {
		t.Fatalf("backupd %s: exit %d: %s", strings.Join(argv, " "), code, stderr)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("backupd %s: %v: %s", strings.Join(argv, " "), err, out)
	}
}

// readManifest reads a backup's manifest straight from the store.
func readManifest(t *testing.T, url, prefix, id string) *manifest.Manifest {
	t.Helper()
	s, err := store.Open(context.Background(), url, prefix, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	l, err := s.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.Find(id)
	if err != nil {
		t.Fatal(err)
	}
	return b.Manifest
}
