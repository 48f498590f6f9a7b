package server

// startOperations starts the operational background work that flags ask
// for: auto compaction and the leader's periodic corruption check.
func (s *Server) startOperations() {
	if p, err := s.cfg.compaction(); err == nil && p.enabled() {
		s.goBackground(func() { s.runCompactor(p) })
	}
	if d := s.cfg.CorruptCheckTime; d > 0 {
		s.goBackground(func() { s.every(d, s.periodicCorruptCheck) })
	}
}
