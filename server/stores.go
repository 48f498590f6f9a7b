package server

import (
	"errors"
	"fmt"
	"math"
	"os"

	bolt "go.etcd.io/bbolt"

	"github.com/lifeboat-dev/lifeboat/server/backend"
	"github.com/lifeboat-dev/lifeboat/server/lease"
	"github.com/lifeboat-dev/lifeboat/server/mvcc"
	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
)

// stores are the backend and what lives in it. A snapshot from the leader
// replaces them together.
type stores struct {
	be     *backend.Backend
	kv     *mvcc.Store
	lessor *lease.Lessor
}

// close stops the lessor and the store, then closes the backend.
func (st *stores) close() error {
	st.lessor.Stop()
	err := st.kv.Close()
	return errors.Join(err, st.be.Close())
}

// closeForSnapshot stops the lessor and the store's background work and
// closes the backend, but leaves the store's watch streams open for the
// stores that replace st to adopt (mvcc.Store.AdoptWatchers).
func (st *stores) closeForSnapshot() error {
	st.lessor.Stop()
	st.kv.Stop()
	return st.be.Close()
}

// loadCluster reads the membership from the backend.
func (st *stores) loadCluster(id uint64) (*cluster, error) {
	var cl *cluster
	err := st.be.View(func(tx *bolt.Tx) error {
		var err error
		cl, err = loadCluster(tx, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("server: load membership from %s: %w", st.be.Path(), err)
	}
	return cl, nil
}

// minLeaseTTL is etcd's: 3/2 of the election timeout, in whole seconds,
// rounded up.
func (s *Server) minLeaseTTL() int64 {
	return int64(math.Ceil(1.5 * float64(s.cfg.ElectionMs) / 1000))
}

// openStores opens the backend, the lessor and the mvcc store. If the
// snapshot at snapIndex came with a db (received from the leader) that the
// backend has not caught up with, that db becomes the backend first: a
// crash can fall between receiving it and applying it.
func (s *Server) openStores(snapIndex uint64) error {
	if snapIndex > 0 {
		if err := s.recoverReceivedDB(snapIndex); err != nil {
			return err
		}
	}
	st, err := s.newStores()
	if err != nil {
		return err
	}
	s.st.Store(st)
	return nil
}

func (s *Server) newStores() (*stores, error) {
	reg := replacingRegisterer{s.reg}
	be, err := backend.Open(backend.Config{Path: s.cfg.Layout().DBPath(), NoSync: s.cfg.UnsafeNoFsync, Logger: s.lg, Registerer: reg})
	if err != nil {
		return nil, err
	}
	lessor, err := lease.New(be, lease.Config{
		MinTTL: s.minLeaseTTL(), CheckpointInterval: s.cfg.LeaseCheckpointInterval, Logger: s.lg, Registerer: reg,
	})
	if err != nil {
		be.Close()
		return nil, err
	}
	kv, err := mvcc.New(be, mvcc.Config{Lessor: lessor, Logger: s.lg, Registerer: reg})
	if err != nil {
		lessor.Stop()
		be.Close()
		return nil, err
	}
	lessor.SetRangeDeleter(kv.NewRangeDeleter)
	lessor.SetCheckpointer(s.checkpointLeases)
	st := &stores{be: be, kv: kv, lessor: lessor}
	if err := s.withTx(st, func(tx *bolt.Tx) error { return schema.SetStorageVersion(tx, StorageVersion) }); err != nil {
		st.close()
		return nil, fmt.Errorf("server: write storage version: %w", err)
	}
	return st, nil
}

// recoverReceivedDB puts a received snapshot db in place of the backend if
// the backend is older than the snapshot.
func (s *Server) recoverReceivedDB(snapIndex uint64) error {
	recv := s.cfg.Layout().ReceivedDBPath(snapIndex)
	if _, err := os.Stat(recv); err != nil {
		return nil
	}
	ci, err := s.dbConsistentIndex(s.cfg.Layout().DBPath())
	if err != nil {
		return err
	}
	if ci >= snapIndex {
		return nil
	}
	s.lg.Warn("backend is older than the snapshot; using the db received with it",
		"backend-consistent-index", ci, "snapshot-index", snapIndex, "db", recv)
	if err := os.Rename(recv, s.cfg.Layout().DBPath()); err != nil {
		return fmt.Errorf("server: put received db in place: %w", err)
	}
	return nil
}

// dbConsistentIndex reads meta/consistent_index of the db file at path (0
// if the file does not exist).
func (s *Server) dbConsistentIndex(path string) (uint64, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	db, err := schema.Open(path, schema.Options{ReadOnly: true})
	if err != nil {
		return 0, fmt.Errorf("server: open %s: %w", path, err)
	}
	defer db.Close()
	var ci uint64
	err = db.View(func(tx *bolt.Tx) error {
		ci, err = schema.ConsistentIndex(tx)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("server: %s: %w", path, err)
	}
	return ci, nil
}

// closeStores closes the current stores, if any.
func (s *Server) closeStores() error {
	st := s.st.Swap(nil)
	if st == nil {
		return nil
	}
	return st.close()
}
