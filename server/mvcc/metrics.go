package mvcc

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the store's Prometheus metrics, named as etcd names them.
type metrics struct {
	ranges, puts, deletes, txns prometheus.Counter
	events, slowWatchers        prometheus.Counter
	compactedKeys               prometheus.Counter
	watchers                    prometheus.Gauge
	compaction, indexCompaction prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer, s *Store) (*metrics, error) {
	counter := func(ns, name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: "mvcc", Name: name, Help: help})
	}
	m := &metrics{
		ranges:        counter("etcd", "range_total", "Total number of ranges seen by this member."),
		puts:          counter("etcd", "put_total", "Total number of puts seen by this member."),
		deletes:       counter("etcd", "delete_total", "Total number of deletes seen by this member."),
		txns:          counter("etcd", "txn_total", "Total number of txns seen by this member."),
		events:        counter("etcd_debugging", "events_total", "Total number of events sent by this member."),
		slowWatchers:  counter("etcd_debugging", "slow_watcher_moves_total", "Total number of times a watcher fell behind and went unsynced."),
		compactedKeys: counter("etcd_debugging", "db_compaction_keys_total", "Total number of db keys compacted."),
		watchers: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "etcd_debugging", Subsystem: "mvcc",
			Name: "watcher_total", Help: "Total number of watchers."}),
		compaction: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "etcd_debugging", Subsystem: "mvcc",
			Name: "db_compaction_total_duration_milliseconds", Help: "Bucketed histogram of db compaction total duration.",
			Buckets: prometheus.ExponentialBuckets(100, 2, 14)}),
		indexCompaction: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "etcd_debugging", Subsystem: "mvcc",
			Name: "index_compaction_pause_duration_milliseconds", Help: "Bucketed histogram of index compaction pause duration.",
			Buckets: prometheus.ExponentialBuckets(0.5, 2, 12)}),
	}
	if reg == nil {
		return m, nil
	}
	cs := []prometheus.Collector{
		m.ranges, m.puts, m.deletes, m.txns, m.events, m.slowWatchers, m.compactedKeys,
		m.watchers, m.compaction, m.indexCompaction,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "etcd_debugging", Subsystem: "mvcc",
			Name: "current_revision", Help: "The current revision of store."},
			func() float64 { return float64(s.currentRev.Load()) }),
		// Read from the store, as etcd's: the revision of the last
		// compaction scheduled (reads below it fail), -1 before any.
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "etcd_debugging", Subsystem: "mvcc",
			Name: "compact_revision", Help: "The revision of the last compaction in store."},
			func() float64 { return float64(s.compactRev.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "etcd_debugging", Subsystem: "mvcc",
			Name: "keys_total", Help: "Total number of keys."},
			func() float64 { return float64(s.liveKeys.Load()) }),
	}
	var errs []error
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("mvcc: register metrics: %w", err)
	}
	return m, nil
}
