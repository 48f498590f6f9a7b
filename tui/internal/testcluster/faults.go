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

// FillUntilNoSpace writes 64 KiB values through member i until the cluster
// refuses a write with "database space exceeded", and fails the test if that
// takes more than 4096 writes or a minute.
func (c *Cluster) FillUntilNoSpace(i int) {
	c.t.Helper()
	cli := c.Client(i)
	value := strings.Repeat("x", 64<<10)
	deadline := time.Now().Add(time.Minute)
	for n := range 4096 {
		if time.Now().After(deadline) {
			break
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := cli.Put(ctx, fmt.Sprintf("fill/%06d", n), value)
		cancel()
		if errors.Is(err, rpctypes.ErrNoSpace) {
			return
		}
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
