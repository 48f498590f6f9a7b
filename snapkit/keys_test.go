package snapkit

import (
	"bytes"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// prefixEnd is etcdctl's --prefix range end (snapkit does not link the
// client for it).
func TestPrefixEnd(t *testing.T) {
	for _, p := range []string{"a", "/registry/", "a\xff", "\xff\xff", "\x00", "ab\xffc"} {
		if got, want := prefixEnd([]byte(p)), []byte(clientv3.GetPrefixRangeEnd(p)); !bytes.Equal(got, want) {
			t.Errorf("prefixEnd(%q) = %q, want %q", p, got, want)
		}
	}
}
