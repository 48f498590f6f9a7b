package server

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// compactionPolicy is a parsed --auto-compaction-mode and -retention.
type compactionPolicy struct {
	periodic  bool
	period    time.Duration // periodic: keep this much history
	revisions int64         // revision: keep this many revisions
}

func (p compactionPolicy) enabled() bool { return p.period > 0 || p.revisions > 0 }

// compaction parses the auto-compaction flags as etcd: periodic takes a
// duration or a number of hours, revision a number of revisions.
func (c *Config) compaction() (compactionPolicy, error) {
	ret := c.AutoCompactionRetention
	switch c.AutoCompactionMode {
	case "periodic", "":
		if ret == "" || ret == "0" {
			return compactionPolicy{periodic: true}, nil
		}
		if h, err := strconv.ParseInt(ret, 10, 64); err == nil {
			if h < 0 {
				return compactionPolicy{}, fmt.Errorf("config: --auto-compaction-retention %q is negative", ret)
			}
			return compactionPolicy{periodic: true, period: time.Duration(h) * time.Hour}, nil
		}
		d, err := time.ParseDuration(ret)
		if err != nil || d < 0 {
			return compactionPolicy{}, fmt.Errorf("config: --auto-compaction-retention %q: want a duration or a number of hours", ret)
		}
		return compactionPolicy{periodic: true, period: d}, nil
	case "revision":
		if ret == "" {
			return compactionPolicy{}, nil
		}
		n, err := strconv.ParseInt(ret, 10, 64)
		if err != nil || n < 0 {
			return compactionPolicy{}, fmt.Errorf("config: --auto-compaction-retention %q: want a number of revisions", ret)
		}
		return compactionPolicy{revisions: n}, nil
	default:
		return compactionPolicy{}, fmt.Errorf("config: --auto-compaction-mode %q: want periodic or revision", c.AutoCompactionMode)
	}
}

// revisionCompactInterval is how often the revision compactor looks, as
// etcd's.
var revisionCompactInterval = 5 * time.Minute

// runCompactor compacts on the leader as etcd's compactors do. Periodic: it
// samples the revision every tenth of min(period, 1h) and, once period has
// passed, compacts to the revision of period ago, then again every
// min(period, 1h). Revision: every 5 minutes it compacts to the current
// revision less the retention.
func (s *Server) runCompactor(p compactionPolicy) {
	if !p.enabled() {
		return
	}
	interval := revisionCompactInterval
	var samples []int64
	keep := 0
	if p.periodic {
		interval = min(p.period, time.Hour) / 10
		keep = int(p.period/interval) + 1
	}
	s.lg.Info("auto compaction", "mode", map[bool]string{true: "periodic", false: "revision"}[p.periodic],
		"retention", s.cfg.AutoCompactionRetention, "interval", interval)
	var last int64
	lastSuccess := time.Now()
	wait := p.period
	s.every(interval, func() {
		st := s.st.Load()
		if st == nil {
			return
		}
		rev := st.kv.Rev()
		if p.periodic {
			samples = append(samples, rev)
			if len(samples) > keep {
				samples = samples[1:]
			}
			if time.Since(lastSuccess) < wait {
				return
			}
			rev = samples[0]
		} else {
			rev -= p.revisions
		}
		if s.lead.Load() != s.id || rev <= 0 || rev == last {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.requestTimeout())
		defer cancel()
		_, err := (&kvServer{s: s}).Compact(ctx, &pb.CompactionRequest{Revision: rev})
		if err != nil && !errors.Is(err, rpctypes.ErrGRPCCompacted) {
			s.lg.Warn("auto compaction failed", "revision", rev, "error", err)
			return
		}
		s.lg.Info("auto compacted", "revision", rev)
		last, lastSuccess, wait = rev, time.Now(), min(p.period, time.Hour)
	})
}
