package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/lifeboat-dev/lifeboat/internal/interoptest"
)

func TestMaintenance(t *testing.T) {
	c := newTestCluster(t, 3, func(cfg *Config) { cfg.QuotaBackendBytes = 256 << 10 })
	lead := c.waitLeader()
	cli := c.client(lead)
	ctx := ctxT(t)
	rev := putKeys(t, cli, "m", 10)

	st, err := cli.Status(ctx, c.endpoint(lead))
	if err != nil {
		t.Fatal(err)
	}
	if st.Version != Version || st.Leader != c.srvs[lead].ID() || st.RaftIndex == 0 || st.RaftAppliedIndex == 0 ||
		st.DbSize == 0 || st.DbSizeInUse == 0 || st.StorageVersion != StorageVersion || st.DbSizeQuota != 256<<10 || st.Header.Revision != rev {
		t.Fatalf("status %+v", st)
	}

	// Snapshot: the db followed by its SHA-256, as etcdctl saves it.
	rc, err := cli.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(data)%512 != sha256.Size {
		t.Fatalf("snapshot of %d bytes has no hash trailer", len(data))
	}
	db, sum := data[:len(data)-sha256.Size], data[len(data)-sha256.Size:]
	if h := sha256.Sum256(db); !bytes.Equal(h[:], sum) {
		t.Fatal("snapshot trailer does not match the db")
	}

	// Every member hashes the same keys the same way.
	var hashes []uint32
	for i := range 3 {
		c.waitApplied(i, c.srvs[lead].applied.Load())
		h, err := c.client(i).HashKV(ctx, c.endpoint(i), 0)
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, h.Hash)
	}
	if hashes[0] != hashes[1] || hashes[1] != hashes[2] {
		t.Fatalf("hashkv differs across members: %v", hashes)
	}
	if _, err := cli.Defragment(ctx, c.endpoint(lead)); err != nil {
		t.Fatal(err)
	}

	// Over quota: NOSPACE is raised and writes refused until disarmed.
	big := strings.Repeat("x", 100<<10)
	var putErr error
	for i := 0; i < 200 && putErr == nil; i++ {
		_, putErr = cli.Put(ctx, fmt.Sprintf("big%03d", i), big)
	}
	if !sameRPCError(putErr, rpctypes.ErrGRPCNoSpace) {
		t.Fatalf("put over quota: %v, want NOSPACE", putErr)
	}
	alarms, err := cli.AlarmList(ctx)
	if err != nil || len(alarms.Alarms) == 0 || alarms.Alarms[0].Alarm != pb.AlarmType_NOSPACE {
		t.Fatalf("alarm list: %v %+v", err, alarms)
	}
	if _, err := cli.Delete(ctx, "big", clientv3.WithPrefix()); err != nil {
		t.Fatal(err)
	}
	cur, err := cli.Get(ctx, "m000")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(ctx, cur.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := c.client(i).Defragment(ctx, c.endpoint(i)); err != nil {
			t.Fatal(err)
		}
	}
	// Each member may have raised its own NOSPACE (a slow one later than
	// the first): disarm every alarm the cluster now lists.
	raised, err := cli.AlarmList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range raised.Alarms {
		if _, err := cli.AlarmDisarm(ctx, &clientv3.AlarmMember{MemberID: a.MemberID, Alarm: a.Alarm}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cli.Put(ctx, "after", "disarm"); err != nil {
		t.Fatalf("put after disarm: %v", err)
	}

	// MoveLeader hands leadership to a follower.
	target := (lead + 1) % 3
	if _, err := cli.MoveLeader(ctx, c.srvs[target].ID()); err != nil {
		t.Fatal(err)
	}
	if got := c.waitLeader(); got != target {
		t.Fatalf("leader is member %d, want %d", got, target)
	}
}

func TestHTTPEndpoints(t *testing.T) {
	c := newTestCluster(t, 1, nil)
	c.waitLeader()
	if _, err := c.client().Put(ctxT(t), "k", "v"); err != nil {
		t.Fatal(err)
	}
	get := func(path string) (int, string) {
		t.Helper()
		client := &http.Client{Timeout: 5 * time.Second}
		resp, err := client.Get(c.endpoint(0) + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	tests := []struct {
		path string
		want []string
	}{
		{"/health", []string{`"health":"true"`, `"reason":""`}},
		{"/version", []string{`"etcdserver":"3.6.6"`, `"etcdcluster":"3.6.0"`}},
		{"/metrics", []string{"etcd_server_has_leader 1", "etcd_server_is_leader 1", "etcd_server_proposals_committed_total",
			"etcd_server_proposals_applied_total", "etcd_server_proposals_pending", "etcd_server_proposals_failed_total",
			"etcd_disk_wal_fsync_duration_seconds_bucket", "etcd_disk_backend_commit_duration_seconds_bucket", "grpc_server_started_total"}},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			code, body := get(tc.path)
			if code != http.StatusOK {
				t.Fatalf("%s: %d %s", tc.path, code, body)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Fatalf("%s lacks %q:\n%s", tc.path, w, body)
				}
			}
		})
	}
	var h struct{ Health, Reason string }
	if _, body := get("/health?serializable=true"); json.Unmarshal([]byte(body), &h) != nil || h.Health != "true" {
		t.Fatalf("serializable health: %s", body)
	}
}

// TestDowngradeMatchesEtcd sends the same Downgrade requests to real etcd
// and lifeboat, neither with a downgrade in progress: the same answers, but
// for a valid ENABLE, which etcd starts and lifeboat refuses.
func TestDowngradeMatchesEtcd(t *testing.T) {
	requests := []*pb.DowngradeRequest{
		{Action: pb.DowngradeRequest_VALIDATE, Version: "3.0"},
		{Action: pb.DowngradeRequest_VALIDATE, Version: "3.6"},
		{Action: pb.DowngradeRequest_VALIDATE, Version: "3.5"},
		{Action: pb.DowngradeRequest_VALIDATE, Version: "3.5.1"},
		{Action: pb.DowngradeRequest_VALIDATE, Version: "three"},
		{Action: pb.DowngradeRequest_ENABLE, Version: "3.4"},
		{Action: pb.DowngradeRequest_CANCEL},
		{Action: 9},
	}
	answers := func(endpoint string) []string {
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer cli.Close()
		mc := pb.NewMaintenanceClient(cli.ActiveConnection())
		var out []string
		for _, r := range requests {
			resp, err := mc.Downgrade(ctxT(t), r)
			if err != nil {
				out = append(out, fmt.Sprintf("%v %s: %v", r.Action, r.Version, err))
			} else {
				out = append(out, fmt.Sprintf("%v %s: version %s", r.Action, r.Version, resp.Version))
			}
		}
		return out
	}
	etcd := interoptest.StartEtcd(t, interoptest.Options{Members: 1})
	want := answers(etcd.ClientURLs[0])
	c := newTestCluster(t, 1, nil)
	c.waitLeader()
	got := answers(c.endpoint(0))
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Downgrade answers differ:\netcd:\n%s\nlifeboat:\n%s", strings.Join(want, "\n"), strings.Join(got, "\n"))
	}
	_, err := pb.NewMaintenanceClient(c.client().ActiveConnection()).Downgrade(ctxT(t), &pb.DowngradeRequest{Action: pb.DowngradeRequest_ENABLE, Version: "3.5"})
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("ENABLE 3.5: %v, want Unimplemented", err)
	}
}
