package lease

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the lessor's counters, named as etcd names them.
type metrics struct {
	granted, revoked, renewed prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "etcd_debugging", Subsystem: "lease", Name: name, Help: help,
		})
	}
	m := &metrics{
		granted: counter("granted_total", "The total number of granted leases."),
		revoked: counter("revoked_total", "The total number of revoked leases."),
		renewed: counter("renewed_total", "The number of renewed leases seen by the leader."),
	}
	if reg == nil {
		return m, nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.granted, m.revoked, m.renewed} {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("lease: register metrics: %w", err)
	}
	return m, nil
}
