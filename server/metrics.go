package server

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
)

// metrics are the member's Prometheus metrics, named as etcd's.
type metrics struct {
	hasLeader        prometheus.Gauge
	isLeader         prometheus.Gauge
	leaderChanges    prometheus.Counter
	proposalsPending prometheus.Gauge
	proposalsFailed  prometheus.Counter
	walFsync         prometheus.Histogram
	snapshotSave     prometheus.Histogram
	grpcStarted      *prometheus.CounterVec
	grpcHandled      *prometheus.CounterVec
	grpcHandling     *prometheus.HistogramVec // nil unless --metrics extensive
	clientRecvBytes  prometheus.Counter
	clientSentBytes  prometheus.Counter
}

// newMetrics registers the metrics that need no server state; the index
// gauges are added by registerIndexGauges. Extensive adds the gRPC latency
// histograms (--metrics extensive), as etcd's.
func newMetrics(reg *prometheus.Registry, extensive bool) (*metrics, error) {
	m := &metrics{
		hasLeader: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: "server", Name: "has_leader",
			Help: "Whether or not a leader exists. 1 is existence, 0 is not."}),
		isLeader: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: "server", Name: "is_leader",
			Help: "Whether or not this member is a leader. 1 if is, 0 otherwise."}),
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "etcd", Subsystem: "server", Name: "leader_changes_seen_total",
			Help: "The number of leader changes seen."}),
		proposalsPending: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: "server", Name: "proposals_pending",
			Help: "The current number of pending proposals to commit."}),
		proposalsFailed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "etcd", Subsystem: "server", Name: "proposals_failed_total",
			Help: "The total number of failed proposals seen."}),
		walFsync: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "etcd", Subsystem: "disk", Name: "wal_fsync_duration_seconds",
			Help:    "The latency distributions of fsync called by WAL.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		snapshotSave: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "etcd_debugging", Subsystem: "snap", Name: "save_total_duration_seconds",
			Help:    "The total latency distributions of save called by snapshot.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		grpcStarted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "grpc_server_started_total",
			Help: "Total number of RPCs started on the server."}, []string{"grpc_type", "grpc_service", "grpc_method"}),
		grpcHandled: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "grpc_server_handled_total",
			Help: "Total number of RPCs completed on the server, regardless of success or failure."},
			[]string{"grpc_type", "grpc_service", "grpc_method", "grpc_code"}),
		clientRecvBytes: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "etcd", Subsystem: "network", Name: "client_grpc_received_bytes_total",
			Help: "The total number of bytes received from grpc clients."}),
		clientSentBytes: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "etcd", Subsystem: "network", Name: "client_grpc_sent_bytes_total",
			Help: "The total number of bytes sent to grpc clients."}),
	}
	cs := []prometheus.Collector{
		m.hasLeader, m.isLeader, m.leaderChanges, m.proposalsPending, m.proposalsFailed, m.walFsync, m.snapshotSave,
		m.grpcStarted, m.grpcHandled, m.clientRecvBytes, m.clientSentBytes,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	}
	if extensive {
		m.grpcHandling = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "grpc_server_handling_seconds",
			Help:    "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}, []string{"grpc_type", "grpc_service", "grpc_method"})
		cs = append(cs, m.grpcHandling)
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("server: register metrics: %w", err)
		}
	}
	return m, nil
}

// registerIndexGauges adds the gauges read from the server's raft state.
func (s *Server) registerIndexGauges() error {
	gauges := []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: "server", Name: "proposals_committed_total",
			Help: "The total number of consensus proposals committed."}, func() float64 { return float64(s.committed.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: "server", Name: "proposals_applied_total",
			Help: "The total number of consensus proposals applied."}, func() float64 { return float64(s.applied.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: "server", Name: "quota_backend_bytes",
			Help: "Current backend storage quota size in bytes."}, func() float64 { return float64(s.cfg.QuotaBackendBytes) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: "server", Name: "version",
			Help: "Which version is running. 1 for 'server_version' label with current version.", ConstLabels: prometheus.Labels{"server_version": Version}},
			func() float64 { return 1 }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: "cluster", Name: "version",
			Help: "Which version is running. 1 for 'cluster_version' label with current cluster version", ConstLabels: prometheus.Labels{"cluster_version": clusterMinor()}},
			func() float64 { return 1 }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: "server", Name: "id",
			Help: "Which member this is (the value is 1; the member ID is a label).", ConstLabels: prometheus.Labels{"server_id": fmt.Sprintf("%x", s.id)}},
			func() float64 { return 1 }),
	}
	for _, g := range gauges {
		if err := s.reg.Register(g); err != nil {
			return fmt.Errorf("server: register metrics: %w", err)
		}
	}
	return nil
}

// clusterMinor is the cluster version as etcd's metric labels it: "3.6".
func clusterMinor() string {
	parts := strings.SplitN(ClusterVersion, ".", 3)
	if len(parts) < 2 {
		return ClusterVersion
	}
	return parts[0] + "." + parts[1]
}

// replacingRegisterer registers a collector in place of one with the same
// descriptors: a backend or lessor reopened after a snapshot registers its
// metrics again.
type replacingRegisterer struct{ reg *prometheus.Registry }

func (r replacingRegisterer) Register(c prometheus.Collector) error {
	r.reg.Unregister(c)
	return r.reg.Register(c)
}

func (r replacingRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err) // prometheus' MustRegister contract
		}
	}
}

func (r replacingRegisterer) Unregister(c prometheus.Collector) bool { return r.reg.Unregister(c) }

// splitMethod splits "/etcdserverpb.KV/Range" into service and method.
func splitMethod(full string) (string, string) {
	full = strings.TrimPrefix(full, "/")
	svc, method, ok := strings.Cut(full, "/")
	if !ok {
		return "unknown", full
	}
	return svc, method
}

func (m *metrics) unaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	svc, method := splitMethod(info.FullMethod)
	m.grpcStarted.WithLabelValues("unary", svc, method).Inc()
	start := time.Now()
	resp, err := handler(ctx, req)
	m.grpcHandled.WithLabelValues("unary", svc, method, status.Code(err).String()).Inc()
	if m.grpcHandling != nil {
		m.grpcHandling.WithLabelValues("unary", svc, method).Observe(time.Since(start).Seconds())
	}
	return resp, err
}

func (m *metrics) streamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	svc, method := splitMethod(info.FullMethod)
	typ := "bidi_stream"
	switch {
	case info.IsClientStream && !info.IsServerStream:
		typ = "client_stream"
	case !info.IsClientStream && info.IsServerStream:
		typ = "server_stream"
	}
	m.grpcStarted.WithLabelValues(typ, svc, method).Inc()
	start := time.Now()
	err := handler(srv, ss)
	m.grpcHandled.WithLabelValues(typ, svc, method, status.Code(err).String()).Inc()
	if m.grpcHandling != nil {
		m.grpcHandling.WithLabelValues(typ, svc, method).Observe(time.Since(start).Seconds())
	}
	return err
}

// grpcBytes counts the bytes of gRPC messages (a stats.Handler):
// etcd_network_client_grpc_received_bytes_total and _sent_bytes_total.
type grpcBytes struct{ m *metrics }

func (g grpcBytes) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context   { return ctx }
func (g grpcBytes) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (g grpcBytes) HandleConn(context.Context, stats.ConnStats)                       {}

func (g grpcBytes) HandleRPC(_ context.Context, s stats.RPCStats) {
	switch p := s.(type) {
	case *stats.InPayload:
		g.m.clientRecvBytes.Add(float64(p.WireLength))
	case *stats.OutPayload:
		g.m.clientSentBytes.Add(float64(p.WireLength))
	}
}
