package snapkit

import (
	"crypto/sha256"
	"fmt"
	"io"

	bolt "go.etcd.io/bbolt"
)

// WriteSnapshot writes what `etcdctl snapshot save` stores: the db of tx,
// byte for byte (bbolt's Tx.WriteTo), then its SHA-256. It returns the
// bytes written, trailer included.
func WriteSnapshot(tx *bolt.Tx, w io.Writer) (int64, error) {
	h := sha256.New()
	n, err := tx.WriteTo(io.MultiWriter(w, h))
	if err != nil {
		return n, fmt.Errorf("snapkit: write snapshot: %w", err)
	}
	m, err := w.Write(h.Sum(nil))
	if err != nil {
		return n + int64(m), fmt.Errorf("snapkit: write snapshot trailer: %w", err)
	}
	return n + int64(m), nil
}
