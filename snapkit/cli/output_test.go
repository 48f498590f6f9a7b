package cli

import (
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
)

// writeDB writes a never-compacted db holding kvs, each key put once, in
// order, from revision 2 on.
func writeDB(t *testing.T, kvs [][2]string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "db")
	db, err := schema.Open(path, schema.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if err := schema.CreateBuckets(tx); err != nil {
			return err
		}
		for i, kv := range kvs {
			rev := int64(i + 2)
			if err := schema.PutKeyValue(tx, schema.Revision{Main: rev}, &mvccpb.KeyValue{Key: []byte(kv[0]), Value: []byte(kv[1]),
				CreateRevision: rev, ModRevision: rev, Version: 1}); err != nil {
				return err
			}
		}
		return schema.SetConsistentIndex(tx, uint64(len(kvs)))
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// decodeBytes undoes walkit dump's encoding of keys and values.
func decodeBytes(t *testing.T, s string) string {
	t.Helper()
	if b, ok := strings.CutPrefix(s, "base64:"); ok {
		raw, err := base64.StdEncoding.DecodeString(b)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		return string(raw)
	}
	return s
}

// get -w json tells a binary value from text that spells it, and a key or
// value that looks like the base64 marker from the real thing: each decodes
// back to its bytes.
func TestGetJSONBytes(t *testing.T) {
	kvs := [][2]string{
		{"bin", "\x00\x01\xff"},
		{"text", `\x00\x01\xff`},
		{"quoted", `"\x00\x01\xff"`},
		{"marker", "base64:AAH/"},
		{"\xffkey", "plain"},
	}
	db := writeDB(t, kvs)
	code, out, stderr := run(t, "get", "-w", "json", "--prefix", db)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var got struct {
		KVs []struct{ Key, Value string } `json:"kvs"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, kv := range kvs {
		want[kv[0]] = kv[1]
	}
	seen := map[string]string{} // printed value -> key
	for _, kv := range got.KVs {
		k, v := decodeBytes(t, kv.Key), decodeBytes(t, kv.Value)
		if w, ok := want[k]; !ok || v != w {
			t.Errorf("key %q (printed %q): value %q (printed %q), want %q", k, kv.Key, v, kv.Value, w)
		}
		if other, dup := seen[kv.Value]; dup {
			t.Errorf("keys %q and %q print the same value %q", other, k, kv.Value)
		}
		seen[kv.Value] = k
	}
	if len(got.KVs) != len(kvs) {
		t.Errorf("%d keys, want %d:\n%s", len(got.KVs), len(kvs), out)
	}
}

// A db never compacted reports compact revision -1, as etcd does, in every
// command that reports one.
func TestUncompactedIsMinusOne(t *testing.T) {
	db := writeDB(t, [][2]string{{"a", "1"}, {"b", "2"}})
	tests := []struct {
		argv []string
		path []string // to the compact revision in the JSON
	}{
		{[]string{"status", "-w", "json", db}, []string{"meta", "compactRevision"}},
		{[]string{"status", "-w", "json", db}, []string{"meta", "scheduledCompactRevision"}},
		{[]string{"get", "-w", "json", db, "a"}, []string{"compactRevision"}},
		{[]string{"hashkv", "-w", "json", db}, []string{"compactRevision"}},
		{[]string{"diff", "-w", "json", db, db}, []string{"a", "compactRevision"}},
	}
	for _, tt := range tests {
		_, out, stderr := run(t, tt.argv...)
		var v any
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatalf("%v: %v: %s", tt.argv, err, stderr)
		}
		for _, k := range tt.path {
			v = v.(map[string]any)[k]
		}
		if v != -1.0 {
			t.Errorf("%v: %v = %v, want -1", tt.argv, tt.path, v)
		}
	}
}

// JSON field names follow one convention: etcdutl's camelCase, except
// where an object mirrors an etcd proto message (KeyValue's create_revision,
// mod_revision, ...; raftpb.ConfState's), which keeps the proto's names.
func TestJSONFieldNames(t *testing.T) {
	db := writeDB(t, [][2]string{{"a", "1"}, {"b", "2"}})
	proto := map[string]bool{"create_revision": true, "mod_revision": true, "value_size": true,
		"auto_leave": true, "voters_outgoing": true, "learners_next": true}
	var walk func(argv []string, v any)
	walk = func(argv []string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if strings.Contains(k, "_") && !proto[k] {
					t.Errorf("%v: field %q", argv, k)
				}
				walk(argv, x)
			}
		case []any:
			for _, x := range v {
				walk(argv, x)
			}
		}
	}
	for _, argv := range [][]string{
		{"status", db}, {"verify", db}, {"get", "--prefix", db}, {"ls", db}, {"hashkv", db},
		{"diff", db, db}, {"prefixes", db},
	} {
		argv = append([]string{argv[0], "-w", "json"}, argv[1:]...)
		_, out, stderr := run(t, argv...)
		var v any
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatalf("%v: %v: %s", argv, err, stderr)
		}
		walk(argv, v)
	}
}
