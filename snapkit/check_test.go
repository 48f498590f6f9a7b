package snapkit

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/lifeboat-dev/lifeboat/internal/fixture"
	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
)

// lastRevKey returns the key bucket's last revision key.
func lastRevKey(tx *bolt.Tx) []byte {
	k, _ := tx.Bucket(schema.KeyBucket).Cursor().Last()
	return append([]byte(nil), k...)
}

// Each damage made on purpose is found by the check that owns it, naming
// the bucket and key; an intact db has no findings.
func TestSchemaChecks(t *testing.T) {
	cases := []struct {
		name   string
		spec   func(*genSpec)
		check  string
		bucket string
		key    func(tx *bolt.Tx) string // the key the finding must name; nil: any
		msg    string
	}{
		{name: "intact"},
		{
			name: "lease missing",
			spec: func(s *genSpec) {
				s.Leases = 3
				s.Mutate = func(tx *bolt.Tx) error { return schema.DeleteLease(tx, 2) }
			},
			check: CheckLease, bucket: bucketKey, msg: "lease 2, which is not in the lease bucket",
		},
		{
			name: "KeyValue does not decode",
			spec: func(s *genSpec) {
				s.Mutate = func(tx *bolt.Tx) error { return tx.Bucket(schema.KeyBucket).Put(lastRevKey(tx), []byte{0xff, 0xff}) }
			},
			check: CheckKey, bucket: bucketKey, key: func(tx *bolt.Tx) string { return hex.EncodeToString(lastRevKey(tx)) }, msg: "KeyValue",
		},
		{
			name: "revision key of the wrong length",
			spec: func(s *genSpec) {
				s.Mutate = func(tx *bolt.Tx) error {
					return tx.Bucket(schema.KeyBucket).Put([]byte("\xff-not-a-revision"), []byte{})
				}
			},
			check: CheckKey, bucket: bucketKey, key: func(*bolt.Tx) string { return hex.EncodeToString([]byte("\xff-not-a-revision")) }, msg: "bad revision key",
		},
		{
			name: "mod_revision disagrees with the revision",
			spec: func(s *genSpec) {
				s.Mutate = func(tx *bolt.Tx) error {
					rk := lastRevKey(tx)
					kv, err := schema.UnmarshalKeyValue(rk, tx.Bucket(schema.KeyBucket).Get(rk))
					if err != nil {
						return err
					}
					kv.ModRevision--
					v, err := schema.MarshalKeyValue(kv)
					if err != nil {
						return err
					}
					return tx.Bucket(schema.KeyBucket).Put(rk, v)
				}
			},
			check: CheckKey, bucket: bucketKey, key: func(tx *bolt.Tx) string { return hex.EncodeToString(lastRevKey(tx)) }, msg: "mod_revision",
		},
		{
			name: "sub revision gap above the compaction",
			spec: func(s *genSpec) {
				s.Mutate = func(tx *bolt.Tx) error {
					last := lastRevKey(tx)
					r, _, err := schema.ParseRevision(last)
					if err != nil {
						return err
					}
					return schema.PutTombstone(tx, schema.Revision{Main: r.Main + 1, Sub: 1}, []byte("/gap"))
				}
			},
			check: CheckKey, bucket: bucketKey, msg: "sub revision should be 0",
		},
		{
			name: "term missing",
			spec: func(s *genSpec) {
				s.Mutate = func(tx *bolt.Tx) error { return tx.Bucket(schema.MetaBucket).Delete(schema.TermKey) }
			},
			check: CheckMeta, bucket: bucketMeta, key: func(*bolt.Tx) string { return string(schema.TermKey) }, msg: "missing or 0",
		},
		{
			name: "consistent index missing",
			spec: func(s *genSpec) {
				s.Mutate = func(tx *bolt.Tx) error { return tx.Bucket(schema.MetaBucket).Delete(schema.ConsistentIndexKey) }
			},
			check: CheckMeta, bucket: bucketMeta, key: func(*bolt.Tx) string { return string(schema.ConsistentIndexKey) }, msg: "missing or 0",
		},
		{
			name: "compaction above the head",
			spec: func(s *genSpec) {
				s.Mutate = func(tx *bolt.Tx) error { return schema.SetScheduledCompactRev(tx, 1<<40) }
			},
			check: CheckMeta, bucket: bucketMeta, key: func(*bolt.Tx) string { return string(schema.ScheduledCompactRevKey) }, msg: "above the latest revision",
		},
		{
			name: "member JSON broken",
			spec: func(s *genSpec) {
				s.Mutate = func(tx *bolt.Tx) error {
					return tx.Bucket(schema.MembersBucket).Put([]byte("8e9e05c52164694d"), []byte("{"))
				}
			},
			check: CheckMembers, bucket: string(schema.MembersBucket), msg: "member JSON",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := genSmall(t, tc.spec)
			r, err := Inspect(context.Background(), path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if tc.check == "" {
				if !r.OK() {
					t.Fatalf("findings in an intact db: %v", r.Findings)
				}
				return
			}
			var wantKey string
			if tc.key != nil {
				db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true})
				if err != nil {
					t.Fatal(err)
				}
				_ = db.View(func(tx *bolt.Tx) error { wantKey = tc.key(tx); return nil })
				db.Close()
			}
			for _, f := range r.Findings {
				if f.Check == tc.check && f.Bucket == tc.bucket && strings.Contains(f.Message, tc.msg) && (wantKey == "" || f.Key == wantKey) {
					return
				}
			}
			t.Errorf("no %s finding in bucket %s, key %q, with %q; got %v", tc.check, tc.bucket, wantKey, tc.msg, r.Findings)
		})
	}
}

// Status reports what the live cluster reported when the fixtures were
// made: members (members.json), consistent index (endpoint-status.json's
// raftAppliedIndex) and compaction (endpoint-hashkv.json).
func TestStatusMatchesCluster(t *testing.T) {
	readJSON := func(t *testing.T, set, name string, v any) {
		t.Helper()
		b, err := os.ReadFile(fixture.Path(set, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s/%s: %v", set, name, err)
		}
	}
	for _, set := range fixture.Sets {
		t.Run(set, func(t *testing.T) {
			var members struct {
				Members []struct {
					ID       uint64
					Name     string
					PeerURLs []string
				}
			}
			readJSON(t, set, "members.json", &members)
			var status []struct {
				Status struct{ RaftAppliedIndex uint64 }
			}
			readJSON(t, set, "endpoint-status.json", &status)
			var hashkv []endpointHashKV
			readJSON(t, set, "endpoint-hashkv.json", &hashkv)

			r, err := Inspect(context.Background(), fixture.Path(set, "snapshot.db"), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if !r.OK() {
				t.Errorf("findings: %v", r.Findings)
			}
			if len(r.Members) != len(members.Members) {
				t.Fatalf("members %+v, cluster said %+v", r.Members, members.Members)
			}
			byID := map[string]MemberStatus{}
			for _, m := range r.Members {
				byID[m.ID] = m
			}
			for _, m := range members.Members {
				got := byID[schema.FormatID(m.ID)]
				if got.Name != m.Name || strings.Join(got.PeerURLs, ",") != strings.Join(m.PeerURLs, ",") {
					t.Errorf("member %x: %+v, cluster said %+v", m.ID, got, m)
				}
			}
			if r.Meta.ConsistentIndex != status[0].Status.RaftAppliedIndex {
				t.Errorf("consistent index %d, members applied %d", r.Meta.ConsistentIndex, status[0].Status.RaftAppliedIndex)
			}
			if r.Meta.CompactRevision != hashkv[0].HashKV.CompactRevision {
				t.Errorf("compact revision %d, members said %d", r.Meta.CompactRevision, hashkv[0].HashKV.CompactRevision)
			}
			if r.Meta.Term == 0 {
				t.Error("term 0")
			}
		})
	}
}
