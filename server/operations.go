package server

import "time"

// startOperations starts the operational background work that flags ask
// for: auto compaction and the leader's periodic corruption check; it
// fast-forwards the election of a lone voter and says when the member is
// ready, as etcd.
func (s *Server) startOperations() {
	s.fastForwardLoneVoter()
	s.goBackground(s.logReady)
	if p, err := s.cfg.compaction(); err == nil && p.enabled() {
		s.goBackground(func() { s.runCompactor(p) })
	}
	if d := s.cfg.CorruptCheckTime; d > 0 {
		s.goBackground(func() { s.every(d, s.periodicCorruptCheck) })
	}
}

// fastForwardLoneVoter ticks a member that is the cluster's only voter to
// the edge of its election timeout, as etcd does ("started as single-node;
// fast-forwarding election ticks"): no peer can be waited for.
func (s *Server) fastForwardLoneVoter() {
	voters := 0
	self := false
	for _, m := range s.cluster.Members() {
		if !m.IsLearner {
			voters++
			self = self || m.ID == s.id
		}
	}
	if voters == 0 && s.cfg.NewCluster && len(s.cfg.InitialCluster) == 1 {
		// A new cluster's members are applied from the log after this.
		voters, self = 1, true
	}
	if voters != 1 || !self {
		return
	}
	ticks := s.cfg.electionTicks() - 1
	for range ticks {
		s.node.Tick()
	}
	s.lg.Info("started as single-node; fast-forwarding election ticks", "forward-ticks", ticks)
}

// logReady logs etcd's "ready to serve client requests" once the member has
// a leader and its own attributes (name, client URLs) are applied: etcd logs
// it when its ReadyNotify fires, after that publish. Tools (etcd's e2e
// tests among them) wait for this line.
func (s *Server) logReady() {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if m, ok := s.cluster.Member(s.id); ok && s.lead.Load() != 0 && m.Name == s.cfg.Name && sameURLs(m.ClientURLs, s.cfg.AdvertiseClientURLs) {
			s.lg.Info("ready to serve client requests", "client-urls", s.cfg.ListenClientURLs)
			return
		}
		select {
		case <-s.stopping:
			return
		case <-t.C:
		}
	}
}
