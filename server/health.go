package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// healthMetrics are etcd's health check counters.
type healthMetrics struct {
	success, failed prometheus.Counter
	gauge           *prometheus.GaugeVec
	total           *prometheus.CounterVec
}

func newHealthMetrics(reg prometheus.Registerer) (*healthMetrics, error) {
	m := &healthMetrics{
		success: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "etcd", Subsystem: "server", Name: "health_success",
			Help: "The total number of successful health checks"}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "etcd", Subsystem: "server", Name: "health_failures",
			Help: "The total number of failed health checks"}),
		gauge: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: "server", Name: "healthcheck",
			Help: "The result of each kind of healthcheck."}, []string{"type", "name"}),
		total: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "etcd", Subsystem: "server", Name: "healthchecks_total",
			Help: "The total number of each kind of healthcheck."}, []string{"type", "name", "status"}),
	}
	for _, c := range []prometheus.Collector{m.success, m.failed, m.gauge, m.total} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("server: register health metrics: %w", err)
		}
	}
	return m, nil
}

// healthCheck is one named check of /livez or /readyz.
type healthCheck struct {
	name  string
	check func(context.Context) error
}

// installHealth serves /health, and /livez and /readyz with one sub path
// per check, as etcd 3.6.
func (s *Server) installHealth(mux *http.ServeMux) {
	hm, err := newHealthMetrics(s.reg)
	if err != nil {
		s.lg.Warn("health metrics", "error", err)
		hm = nil
	}
	mux.HandleFunc("/health", s.serveHealth(hm))
	read := func(serializable bool) func(context.Context) error {
		return func(ctx context.Context) error { return s.healthRange(ctx, serializable) }
	}
	s.installChecks(mux, hm, "livez", []healthCheck{{"serializable_read", read(true)}})
	s.installChecks(mux, hm, "readyz", []healthCheck{
		{"data_corruption", func(context.Context) error {
			if s.alarms.active(pb.AlarmType_CORRUPT) {
				return fmt.Errorf("alarm activated: %s", pb.AlarmType_CORRUPT)
			}
			return nil
		}},
		{"linearizable_read", read(false)},
		{"non_learner", func(context.Context) error {
			if m, ok := s.cluster.Member(s.id); ok && m.IsLearner {
				return fmt.Errorf("not supported for learner")
			}
			return nil
		}},
		{"serializable_read", read(true)},
	})
}

// healthRange is etcd's health read: one key, keys only, as root.
func (s *Server) healthRange(ctx context.Context, serializable bool) error {
	ctx, cancel := context.WithTimeout(ctx, s.requestTimeout())
	defer cancel()
	_, err := (&kvServer{s: s}).Range(ctx, &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, KeysOnly: true, Limit: 1, Serializable: serializable})
	if err != nil {
		// etcd's checks read the server directly: its error, not the gRPC
		// status the client API makes of it.
		return errors.New(rpctypes.ErrorDesc(err))
	}
	return nil
}

// serveHealth answers {"health":"true","reason":""} unless an alarm not
// named by ?exclude= is raised, there is no leader (unless
// ?serializable=true) or the read fails, as etcd's /health.
func (s *Server) serveHealth(hm *healthMetrics) http.HandlerFunc {
	type health struct {
		Health string `json:"health"`
		Reason string `json:"reason"`
	}
	check := func(r *http.Request) health {
		excluded := r.URL.Query()["exclude"]
		for _, a := range s.alarms.list() {
			if slices.Contains(excluded, a.Alarm.String()) {
				continue
			}
			switch a.Alarm {
			case pb.AlarmType_NOSPACE, pb.AlarmType_CORRUPT:
				return health{"false", "ALARM " + a.Alarm.String()}
			default:
				return health{"false", "ALARM UNKNOWN"}
			}
		}
		serializable := r.URL.Query().Get("serializable") == "true"
		if !serializable && s.lead.Load() == 0 {
			return health{"false", "RAFT NO LEADER"}
		}
		if err := s.healthRange(r.Context(), serializable); err != nil {
			return health{"false", fmt.Sprintf("RANGE ERROR:%s", err)}
		}
		return health{"true", ""}
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
			return
		}
		h := check(r)
		d, _ := json.Marshal(h)
		if hm != nil {
			if h.Health == "true" {
				hm.success.Inc()
			} else {
				hm.failed.Inc()
			}
		}
		if h.Health != "true" {
			s.lg.Warn("/health error", "output", string(d), "status-code", http.StatusServiceUnavailable)
			http.Error(w, string(d), http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(d)
	}
}

// installChecks serves /<kind> running every check not named by ?exclude=,
// and /<kind>/<check> running one, answering "ok" (with each check's
// result first given ?verbose) or 503 with the results, as etcd's.
func (s *Server) installChecks(mux *http.ServeMux, hm *healthMetrics, kind string, checks []healthCheck) {
	run := func(ctx context.Context, cs []healthCheck) (string, bool) {
		var out bytes.Buffer
		ok := true
		for _, c := range cs {
			status := "success"
			if err := c.check(ctx); err != nil {
				fmt.Fprintf(&out, "[-]%s failed: %v\n", c.name, err)
				ok, status = false, "error"
			} else {
				fmt.Fprintf(&out, "[+]%s ok\n", c.name)
			}
			if hm != nil {
				hm.gauge.WithLabelValues(kind, c.name).Set(map[string]float64{"success": 1, "error": 0}[status])
				hm.total.WithLabelValues(kind, c.name, status).Inc()
			}
		}
		return out.String(), ok
	}
	handler := func(pick func(*http.Request) []healthCheck) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet {
				w.Header().Set("Allow", http.MethodGet)
				http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
				return
			}
			reason, ok := run(r.Context(), pick(r))
			if !ok {
				s.lg.Error("Health check error", "path", r.URL.Path, "reason", reason, "status-code", http.StatusServiceUnavailable)
				http.Error(w, reason, http.StatusServiceUnavailable)
				return
			}
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("X-Content-Type-Options", "nosniff")
			if _, verbose := r.URL.Query()["verbose"]; verbose {
				fmt.Fprint(w, reason)
			}
			fmt.Fprint(w, "ok\n")
		}
	}
	root := "/" + kind
	mux.HandleFunc(root, handler(func(r *http.Request) []healthCheck {
		excluded := r.URL.Query()["exclude"]
		var cs []healthCheck
		for _, c := range checks {
			if !slices.Contains(excluded, c.name) {
				cs = append(cs, c)
			}
		}
		return cs
	}))
	for _, c := range checks {
		mux.HandleFunc(path.Join(root, c.name), handler(func(*http.Request) []healthCheck { return []healthCheck{c} }))
	}
}
