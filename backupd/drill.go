package backupd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/lifeboat-dev/lifeboat/backupd/store"
	"github.com/lifeboat-dev/lifeboat/restore"
	"github.com/lifeboat-dev/lifeboat/server"
)

// ErrDrill means a restored backup did not boot or did not match its
// manifest.
var ErrDrill = errors.New("backupd: drill failed")

// RestoreRequest asks for a one-member data dir made from a snapshot file,
// as `etcdutl snapshot restore` makes it.
type RestoreRequest struct {
	Snapshot       string // the fetched snapshot file, with its trailer
	DataDir        string // to create
	Name           string // --name
	PeerURL        string // --initial-advertise-peer-urls
	InitialCluster string // --initial-cluster, "name=peerURL"
	Token          string // --initial-cluster-token
}

// Restorer makes the data dir of a RestoreRequest: RestoreSnapshot (the
// default), or etcdutl's in tests that compare the two.
type Restorer func(ctx context.Context, req RestoreRequest) error

// RestoreSnapshot is the drill's default Restorer: the restore package's
// `restore snapshot`, in process.
func RestoreSnapshot(ctx context.Context, req RestoreRequest) error {
	cluster, err := restore.ParseInitialCluster(req.InitialCluster, nil)
	if err != nil {
		return fmt.Errorf("backupd: drill: %w", err)
	}
	_, err = restore.Snapshot(ctx, nil, restore.SnapshotOptions{Path: req.Snapshot, Name: req.Name, Cluster: cluster,
		PeerURLs: []string{req.PeerURL}, Token: req.Token, DataDir: req.DataDir})
	if err != nil {
		return fmt.Errorf("backupd: drill: restore %s: %w", req.Snapshot, err)
	}
	return nil
}

// Drill fetches a backup, restores it into a temporary data dir, boots a
// lifeboat member on it in process, and checks its revision, key count and
// hashkv against the manifest.
type Drill struct {
	Store   *store.Store
	Read    ReadOptions
	Restore Restorer // nil means RestoreSnapshot
	// WorkDir holds the drill's temporary files; empty means os.TempDir().
	WorkDir string
	Logger  *slog.Logger
	// Progress hears of the download.
	Now func() time.Time
}

// DrillReport is the outcome of a drill.
type DrillReport struct {
	ID       string        `json:"id"`
	OK       bool          `json:"ok"`
	Start    time.Time     `json:"start"`
	End      time.Time     `json:"end"`
	Revision int64         `json:"revision"`
	Keys     int64         `json:"keys"`
	HashKV   uint32        `json:"hashKV"`
	Checks   []Check       `json:"checks"`
	Verify   *VerifyReport `json:"verify,omitempty"`
}

func (d *Drill) now() time.Time {
	if d.Now == nil {
		return time.Now()
	}
	return d.Now()
}

// Run drills the backup ref ("latest", or an ID). A backup that does not
// verify, restore, boot or match is an error wrapping ErrVerify or
// ErrDrill that names it; the report says how far it got.
func (d *Drill) Run(ctx context.Context, ref string) (*DrillReport, error) {
	lg := d.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	rep := &DrillReport{Start: d.now().UTC()}
	defer func() { rep.End = d.now().UTC() }()
	restoreDir := d.Restore
	if restoreDir == nil {
		restoreDir = RestoreSnapshot
	}
	l, err := d.Store.List(ctx)
	if err != nil {
		return rep, err
	}
	b, err := l.Find(ref)
	if err != nil {
		return rep, err
	}
	m := b.Manifest
	rep.ID = m.ID
	work, err := os.MkdirTemp(d.WorkDir, "backupd-drill-")
	if err != nil {
		return rep, fmt.Errorf("backupd: drill: %w", err)
	}
	defer os.RemoveAll(work)
	snap := filepath.Join(work, "snapshot.db")
	rep.Verify, err = Fetch(ctx, d.Store, b, d.Read, snap)
	if err != nil {
		return rep, err
	}
	peer, client, err := drillURLs()
	if err != nil {
		return rep, fmt.Errorf("backupd: drill: %w", err)
	}
	const name = "drill"
	req := RestoreRequest{Snapshot: snap, DataDir: filepath.Join(work, "data"), Name: name, PeerURL: peer,
		InitialCluster: name + "=" + peer, Token: "backupd-drill-" + m.ClusterID}
	if err := restoreDir(ctx, req); err != nil {
		return rep, fmt.Errorf("%w: %s: restore: %v", ErrDrill, m.ID, err)
	}
	cfg := server.NewConfig()
	cfg.Name, cfg.DataDir = name, req.DataDir
	cfg.ListenClientURLs, cfg.AdvertiseClientURLs = []string{client}, []string{client}
	cfg.ListenPeerURLs, cfg.AdvertisePeerURLs = []string{peer}, []string{peer}
	cfg.InitialCluster = map[string][]string{name: {peer}}
	cfg.InitialClusterToken = req.Token
	cfg.NewCluster = false
	cfg.Logger = lg.With("drill", m.ID)
	srv, err := server.New(cfg)
	if err != nil {
		return rep, fmt.Errorf("%w: %s: boot a member on the restored data dir: %v", ErrDrill, m.ID, err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = srv.Stop(sctx)
	}()
	if err := d.check(ctx, client, rep, b); err != nil {
		return rep, err
	}
	rep.OK = true
	lg.Info("drill passed", "id", m.ID, "revision", rep.Revision, "keys", rep.Keys, "hashkv", rep.HashKV)
	return rep, nil
}

// check compares the booted member with the manifest.
func (d *Drill) check(ctx context.Context, endpoint string, rep *DrillReport, b store.Backup) error {
	m := b.Manifest
	cli, err := newClient(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrDrill, m.ID, err)
	}
	defer cli.Close()
	// The member is ready once it answers a linearizable read.
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var resp *clientv3.GetResponse
	for {
		resp, err = cli.Get(rctx, "\x00", clientv3.WithFromKey(), clientv3.WithCountOnly())
		if err == nil {
			break
		}
		select {
		case <-rctx.Done():
			return fmt.Errorf("%w: %s: the restored member never answered: %v", ErrDrill, m.ID, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	rep.Revision, rep.Keys = resp.Header.Revision, resp.Count
	add := func(name string, ok bool, format string, args ...any) {
		rep.Checks = append(rep.Checks, Check{Name: name, OK: ok, Detail: fmt.Sprintf(format, args...)})
	}
	add("revision", rep.Revision == m.Revision, "member at %d; manifest %d", rep.Revision, m.Revision)
	add("keys", rep.Keys == int64(m.TotalKey), "member has %d keys; manifest %d", rep.Keys, m.TotalKey)
	hk, err := cli.HashKV(rctx, endpoint, m.HashKVRevision)
	if err != nil {
		add("hashkv", false, "at revision %d: %v", m.HashKVRevision, err)
	} else {
		rep.HashKV = hk.Hash
		add("hashkv", hk.Hash == m.HashKV, "member %d at revision %d; manifest %d", hk.Hash, m.HashKVRevision, m.HashKV)
	}
	for _, c := range rep.Checks {
		if !c.OK {
			return fmt.Errorf("%w: %s: %s: %s", ErrDrill, m.ID, c.Name, c.Detail)
		}
	}
	return nil
}

// drillURLs picks free 127.0.0.1 ports for the drill member.
func drillURLs() (peer, client string, err error) {
	var ports [2]int
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", "", err
		}
		defer l.Close()
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return "http://127.0.0.1:" + strconv.Itoa(ports[0]), "http://127.0.0.1:" + strconv.Itoa(ports[1]), nil
}
