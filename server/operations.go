package server

import "time"

// startOperations starts the operational background work that flags ask
// for: auto compaction and the leader's periodic corruption check; it
// fast-forwards the first election and says when the member is ready, as
// etcd.
func (s *Server) startOperations() {
	if !s.fastForwardLoneVoter() && s.cfg.InitialElectionTickAdvance {
		s.goBackground(s.fastForwardWithPeers)
	}
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
// fast-forwarding election ticks"): no peer can be waited for. It reports
// whether the member is that voter.
func (s *Server) fastForwardLoneVoter() bool {
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
		return false
	}
	s.tick(s.cfg.electionTicks()-1, "started as single-node; fast-forwarding election ticks")
	return true
}

// peerWaitForTickAdvance is how long fastForwardWithPeers waits for its
// peers' streams: etcd's, the read timeout of its peer connections.
const peerWaitForTickAdvance = 5 * time.Second

// fastForwardWithPeers is etcd's initial election tick advance
// (--initial-election-tick-advance): once the streams to more than one
// peer are up, within peerWaitForTickAdvance of the start, the member is
// ticked to two ticks short of its election timeout ("initialized peer
// connections; fast-forwarding election ticks"). Members started together
// then elect a leader within a few ticks instead of a whole timeout, and
// a leader's heartbeat still reaches a restarted member in time to keep it
// a follower. Without such peers it does nothing, as etcd: the ticks would
// change nothing.
func (s *Server) fastForwardWithPeers() {
	poll := time.NewTicker(50 * time.Millisecond)
	defer poll.Stop()
	deadline := time.Now().Add(peerWaitForTickAdvance)
	for time.Now().Before(deadline) {
		select {
		case <-s.stopping:
			return
		case <-poll.C:
		}
		active := 0
		for _, m := range s.cluster.Members() {
			if m.ID != s.id && s.tr != nil && s.tr.PeerActive(m.ID) {
				active++
			}
		}
		if active > 1 {
			s.tick(s.cfg.electionTicks()-2, "initialized peer connections; fast-forwarding election ticks", "active-remote-members", active)
			return
		}
	}
}

// tick advances the raft clock by n ticks and logs msg with them.
func (s *Server) tick(n int, msg string, attrs ...any) {
	for range n {
		s.node.Tick()
	}
	s.lg.Info(msg, append([]any{"forward-ticks", n, "election-ticks", s.cfg.electionTicks()}, attrs...)...)
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
