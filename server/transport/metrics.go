package transport

import (
	"fmt"
	"io"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are etcd's peer network metrics, labelled by the peer's member ID
// in hex as etcd's.
type metrics struct {
	sentBytes     *prometheus.CounterVec   // etcd_network_peer_sent_bytes_total{To}
	receivedBytes *prometheus.CounterVec   // etcd_network_peer_received_bytes_total{From}
	sentFailures  *prometheus.CounterVec   // etcd_network_peer_sent_failures_total{To}
	rtt           *prometheus.HistogramVec // etcd_network_peer_round_trip_time_seconds{To}
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		sentBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "etcd", Subsystem: "network", Name: "peer_sent_bytes_total",
			Help: "The total number of bytes sent to peers."}, []string{"To"}),
		receivedBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "etcd", Subsystem: "network", Name: "peer_received_bytes_total",
			Help: "The total number of bytes received from peers."}, []string{"From"}),
		sentFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "etcd", Subsystem: "network", Name: "peer_sent_failures_total",
			Help: "The total number of send failures from peers."}, []string{"To"}),
		rtt: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "etcd", Subsystem: "network", Name: "peer_round_trip_time_seconds",
			Help:    "Round-Trip-Time histogram between peers",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}, []string{"To"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.sentBytes, m.receivedBytes, m.sentFailures, m.rtt} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("transport: register metrics: %w", err)
		}
	}
	return m, nil
}

// countingReader counts the bytes read through it into a counter.
type countingReader struct {
	r io.Reader
	c prometheus.Counter
}

func (cr countingReader) Read(p []byte) (int, error) {
	n, err := cr.r.Read(p)
	cr.c.Add(float64(n))
	return n, err
}
