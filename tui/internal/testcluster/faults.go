package testcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
)

// Put writes key=value through member i.
func (c *Cluster) Put(i int, key, value string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Client(i).Put(ctx, key, value); err != nil {
		c.t.Fatalf("testcluster: put %q through %s: %v", key, c.names[i], err)
	}
}

// FillUntilNoSpace writes 64 KiB values through member i until member i
// refuses one with "database space exceeded" and the only alarm raised is
// member i's NOSPACE. (An etcd follower raises its own NOSPACE when a write
// that member i accepted does not fit its db when applied, which depends on
// timing; those alarms are disarmed and the writes go on, until member i's
// own quota check refuses one.) It fails the test after 4096 writes or a
// minute.
func (c *Cluster) FillUntilNoSpace(i int) {
	c.t.Helper()
	cli := c.Client(i)
	id := c.ID(i)
	value := strings.Repeat("x", 64<<10)
	deadline := time.Now().Add(time.Minute)
	for n := 0; n < 4096 && time.Now().Before(deadline); n++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := cli.Put(ctx, fmt.Sprintf("fill/%06d", n), value)
		if errors.Is(err, rpctypes.ErrNoSpace) {
			var resp *clientv3.AlarmResponse
			resp, err = cli.AlarmList(ctx)
			if err == nil && len(resp.Alarms) == 1 && resp.Alarms[0].MemberID == id {
				cancel()
				return
			}
			for i := 0; err == nil && i < len(resp.Alarms); i++ {
				_, err = cli.AlarmDisarm(ctx, (*clientv3.AlarmMember)(resp.Alarms[i]))
			}
		}
		cancel()
		if err != nil {
			c.t.Fatalf("testcluster: fill through %s: %v", c.names[i], err)
		}
	}
	c.t.Fatalf("testcluster: %s never ran out of space", c.names[i])
}

// CorruptValue stops member i, changes the newest value of key in its db
// in place (same revision, other bytes, as a bit flip that bbolt cannot
// see would), and starts it again, so that its HashKV differs from the
// other members' at every revision from that write on.
func (c *Cluster) CorruptValue(i int, key string) {
	c.t.Helper()
	// The member must have applied the write it is to corrupt.
	cli := c.Client(i)
	c.waitFor(fmt.Sprintf("%s to apply %q", c.names[i], key), func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		resp, err := cli.Get(ctx, key, clientv3.WithSerializable())
		if err == nil && resp.Count == 0 {
			err = errors.New("not there yet")
		}
		return err
	})
	c.Stop(i)
	db, err := schema.Open(c.DBPath(i), schema.Options{Timeout: 10 * time.Second})
	if err != nil {
		c.t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		var last *schema.KeyEntry
		if err := schema.ForEachKey(tx, schema.Revision{}, func(e schema.KeyEntry) error {
			if !e.Tombstone && bytes.Equal(e.KV.Key, []byte(key)) {
				last = &e
			}
			return nil
		}); err != nil {
			return err
		}
		if last == nil {
			return fmt.Errorf("key %q not in %s", key, c.DBPath(i))
		}
		kv := *last.KV
		kv.Value = append([]byte("corrupt:"), kv.Value...)
		return schema.PutKeyValue(tx, last.Rev, &kv)
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		c.t.Fatalf("testcluster: corrupt %s: %v", c.names[i], err)
	}
	c.Start(i)
	c.WaitReady()
}
