package backend

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"
)

// metrics are the backend's Prometheus metrics, named as etcd names them.
type metrics struct {
	commit   prometheus.Histogram
	defrag   prometheus.Histogram
	snapshot prometheus.Histogram

	size, sizeInUse atomic.Int64
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "etcd", Subsystem: "disk", Name: "backend_commit_duration_seconds",
			Help:    "The latency distributions of commit called by backend.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		defrag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "etcd", Subsystem: "disk", Name: "backend_defrag_duration_seconds",
			Help:    "The latency distribution of backend defragmentation.",
			Buckets: prometheus.ExponentialBuckets(.1, 2, 13),
		}),
		snapshot: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "etcd", Subsystem: "disk", Name: "backend_snapshot_duration_seconds",
			Help:    "The latency distribution of backend snapshots.",
			Buckets: prometheus.ExponentialBuckets(.01, 2, 17),
		}),
	}
	if reg == nil {
		return m, nil
	}
	cs := []prometheus.Collector{
		m.commit, m.defrag, m.snapshot,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "etcd", Subsystem: "mvcc", Name: "db_total_size_in_bytes",
			Help: "Total size of the underlying database physically allocated in bytes.",
		}, func() float64 { return float64(m.size.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "etcd", Subsystem: "mvcc", Name: "db_total_size_in_use_in_bytes",
			Help: "Total size of the underlying database logically in use in bytes.",
		}, func() float64 { return float64(m.sizeInUse.Load()) }),
	}
	var errs []error
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("backend: register metrics: %w", err)
	}
	return m, nil
}

// observeSize records the sizes after a commit; tx is the new batch.
func (m *metrics) observeSize(tx *bolt.Tx, db *bolt.DB) {
	size := tx.Size()
	st := db.Stats()
	free := int64(st.FreePageN+st.PendingPageN) * int64(db.Info().PageSize)
	m.size.Store(size)
	m.sizeInUse.Store(size - free)
}
