package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// generator runs one fixture set; files go to stage.
type generator struct {
	lg    *slog.Logger
	cfg   config
	work  string
	stage string
}

// version writes VERSION: the first line of `etcd --version`.
func (g *generator) version(ctx context.Context) error {
	out, err := g.tool(ctx, "etcd", "--version")
	if err != nil {
		return err
	}
	first, _, _ := strings.Cut(string(out), "\n")
	return os.WriteFile(filepath.Join(g.stage, "VERSION"), []byte(first+"\n"), 0o644)
}

// cluster makes m1..m3, snapshot.db and the JSON records.
func (g *generator) cluster(ctx context.Context) error {
	ms := newMembers(g.cfg, g.work, 1, 2, 3)
	if err := startAll(ctx, g.lg, ms, 100); err != nil {
		stopAll(g.lg, ms)
		return err
	}
	err := g.clusterWork(ctx, ms)
	if serr := stopAll(g.lg, ms); err == nil {
		err = serr
	}
	if err != nil {
		return err
	}
	status, err := g.tool(ctx, "etcdutl", "snapshot", "status", filepath.Join(g.stage, "snapshot.db"), "-w", "json")
	if err != nil {
		return err
	}
	if err := g.write("snapshot-status.json", status); err != nil {
		return err
	}
	return archiveMembers(g.stage, ms)
}

func (g *generator) clusterWork(ctx context.Context, ms []*member) error {
	cli, err := newClient(ms)
	if err != nil {
		return err
	}
	defer cli.Close()
	w := newWorkload(cli, g.cfg.seed)
	if err := w.cluster(ctx); err != nil {
		return fmt.Errorf("workload: %w", err)
	}
	rev, err := converge(ctx, cli, ms)
	if err != nil {
		return err
	}
	g.lg.Info("cluster workload done", "revision", rev)
	eps := strings.Join(endpoints(ms), ",")
	for _, rec := range []struct {
		file string
		args []string
	}{
		{"endpoint-status.json", []string{"endpoint", "status"}},
		{"endpoint-hashkv.json", []string{"endpoint", "hashkv"}},
		{"members.json", []string{"member", "list"}},
	} {
		out, err := g.tool(ctx, "etcdctl", append([]string{"--endpoints", eps, "-w", "json"}, rec.args...)...)
		if err != nil {
			return err
		}
		if err := g.write(rec.file, out); err != nil {
			return err
		}
	}
	if err := checkHashes(filepath.Join(g.stage, "endpoint-hashkv.json"), rev); err != nil {
		return err
	}
	_, err = g.tool(ctx, "etcdctl", "--endpoints", endpoints(ms)[0], "snapshot", "save", filepath.Join(g.stage, "snapshot.db"))
	return err
}

// solo makes the single member with a low --snapshot-count.
func (g *generator) solo(ctx context.Context) error {
	ms := newMembers(g.cfg, g.work, 4)
	if err := startAll(ctx, g.lg, ms, 50); err != nil {
		stopAll(g.lg, ms)
		return err
	}
	err := func() error {
		cli, err := newClient(ms)
		if err != nil {
			return err
		}
		defer cli.Close()
		return newWorkload(cli, g.cfg.seed).solo(ctx)
	}()
	if serr := stopAll(g.lg, ms); err == nil {
		err = serr
	}
	if err != nil {
		return err
	}
	return archiveMembers(g.stage, ms)
}

// tool runs one of the version's binaries and returns its stdout.
func (g *generator) tool(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(g.cfg.bin, name), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes(), nil
}

// write stages a JSON record, checking that it is JSON and ending it with
// a newline.
func (g *generator) write(name string, data []byte) error {
	data = bytes.TrimSpace(data)
	if !json.Valid(data) {
		return fmt.Errorf("%s: not JSON: %.200q", name, data)
	}
	return os.WriteFile(filepath.Join(g.stage, name), append(data, '\n'), 0o644)
}

func newClient(ms []*member) (*clientv3.Client, error) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints(ms), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return nil, fmt.Errorf("client for %v: %w", endpoints(ms), err)
	}
	return cli, nil
}

// converge waits until every member has applied the same raft index and
// revision, so that the records agree, and returns the revision.
func converge(ctx context.Context, cli *clientv3.Client, ms []*member) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		var applied []uint64
		var revs []int64
		for _, ep := range endpoints(ms) {
			st, err := cli.Status(ctx, ep)
			if err != nil {
				return 0, fmt.Errorf("status of %s: %w", ep, err)
			}
			applied = append(applied, st.RaftAppliedIndex)
			revs = append(revs, st.Header.Revision)
		}
		if same(applied) && same(revs) {
			return revs[0], nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("members did not converge: applied %v, revisions %v: %w", applied, revs, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func same[T comparable](v []T) bool {
	for _, x := range v {
		if x != v[0] {
			return false
		}
	}
	return true
}

// checkHashes fails unless every member reported the same KV hash at rev.
func checkHashes(path string, rev int64) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var recs []struct {
		Endpoint string
		HashKV   struct {
			Header struct{ Revision int64 }
			Hash   uint32
		}
	}
	if err := json.Unmarshal(raw, &recs); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, r := range recs {
		if r.HashKV.Hash != recs[0].HashKV.Hash || r.HashKV.Header.Revision != rev {
			return fmt.Errorf("%s: %s has hash %d at revision %d; %s has %d, want revision %d",
				path, r.Endpoint, r.HashKV.Hash, r.HashKV.Header.Revision, recs[0].Endpoint, recs[0].HashKV.Hash, rev)
		}
	}
	return nil
}
