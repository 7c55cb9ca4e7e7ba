package shard

import (
	"github.com/hashicorp/raft"
)

// watchLeadership broadcasts leader changes and, each time this replica becomes leader, runs a
// barrier so that ReadIndex serves only once an entry of the new term has committed (before
// that, a fresh leader's commit index may lag the true one).
func (s *Shard) watchLeadership(observations <-chan raft.Observation) {
	defer close(s.watcherDone)
	leaderCh := s.raft.LeaderCh()
	for {
		select {
		case <-s.closing:
			return
		case <-observations:
			s.broadcast(&s.leaderChanged)
		case isLeader := <-leaderCh:
			s.broadcast(&s.leaderChanged)
			if isLeader {
				go s.establishLeadership(s.raft.CurrentTerm())
			}
		}
	}
}

func (s *Shard) establishLeadership(term uint64) {
	stillLeader := func() bool {
		select {
		case <-s.closing:
			return false
		default:
		}
		return s.raft.State() == raft.Leader && s.raft.CurrentTerm() == term
	}
	for {
		err := s.raft.Barrier(s.cfg.ApplyTimeout).Error()
		if !stillLeader() {
			return
		}
		if err == nil {
			break
		}
		// Still leading this term (e.g. the barrier timed out enqueuing): without a committed
		// entry of this term reads stay refused, so try again.
		s.logger.Warn("leader barrier failed; retrying", "term", term, "error", err)
	}
	s.readyTerm.Store(term)
	s.broadcast(&s.readyChanged)
	s.logger.Info("leader ready", "term", term, "commit_index", s.raft.CommitIndex())
}

// broadcast closes *ch and replaces it, waking everyone who took it.
func (s *Shard) broadcast(ch *chan struct{}) {
	s.notifyMu.Lock()
	defer s.notifyMu.Unlock()
	close(*ch)
	*ch = make(chan struct{})
}

func (s *Shard) current(ch *chan struct{}) <-chan struct{} {
	s.notifyMu.Lock()
	defer s.notifyMu.Unlock()
	return *ch
}

// LeaderChanged returns a channel that is closed at the next change of leader (including "no
// leader") or leadership of this replica. Take it before checking Leader to miss nothing.
func (s *Shard) LeaderChanged() <-chan struct{} {
	return s.current(&s.leaderChanged)
}
