package ledger

import (
	"encoding/binary"
	"fmt"

	"github.com/gigaledger/gigaledger/fsm"
)

// Trimming a participant's protocol state (cluster/DESIGN.md, "Cross-shard transactions",
// step 5). A finished participation (committed, released, or a tombstone) only answers
// duplicate finishes and refuses late prepares; the driver stops sending both once the
// coordinator's record is done. So each is deleted participationRetentionMs after its finish,
// at the start of a batch (batch time, never a wall clock: every replica trims the same keys
// in the same batch), oldest first, at most participationTrimsPerBatch per batch, through an
// index by finish time (l 0x02 {finishedAt} {project} 0 {transactionID}).
//
// What keeps a very late duplicate safe once its participation is gone:
//   - a prepare carries its begin time (CrossPrepare.BeginAt, the coordinator's batch time of
//     the begin). A participant with no record of the ID refuses it, recording nothing and
//     holding nothing, when its batch time is past BeginAt + crossPrepareWindowMs. The
//     participation was finished after the begin, and trimmed participationRetentionMs after
//     that, so any prepare that meets no record because of a trim is older than the window
//     as long as the shards' clocks agree within (retention − window)/2 = 2.5 minutes;
//   - a finish carries the begin time too (CrossFinish.BeginAt). For an unknown ID past the
//     window it is answered finished (committed or released) and records nothing: no legs are
//     applied, no tombstone is needed. This also acknowledges the driver's re-sent finishes
//     when the coordinator's done came later than the retention (a coordinator down for
//     minutes), which a refusal would retry forever. Within the window the finish goes on as
//     before: a completed one is refused as misrouted, a failed one records a tombstone.
//   - the older ops without a begin time (20, 22, 25) keep their answers: a very late one
//     could hold again. Only logs written before op 26 and 27, and drivers of an older
//     release during an upgrade, send them.
//
// The coordinator's transaction record and reference are the API's and stay; the `.x` holds
// stay as resolved holds, like every other hold.
const (
	// crossPrepareWindowMs is how long after its begin a prepare may still create a
	// participation on a shard that has no record of it. The driver decides without a vote
	// 30 s after the begin, so only a prepare stuck that long (a coordinator down for minutes)
	// is refused, and its transaction fails.
	crossPrepareWindowMs int64 = 5 * 60 * 1000
	// participationRetentionMs is how long a finished participation is kept after its finish.
	participationRetentionMs int64 = 10 * 60 * 1000
	// participationTrimsPerBatch bounds the participations one batch deletes; the rest wait
	// for the next batch.
	participationTrimsPerBatch = 1000
	// crossClockSkewMaxMs is the clock difference between nodes the two above tolerate (the
	// begin's batch time is one leader's clock, the finish's another's).
	crossClockSkewMaxMs int64 = (participationRetentionMs - crossPrepareWindowMs) / 2
)

func participationTrimKey(finishedAt int64, projectID, transactionID string) []byte {
	k := make([]byte, 0, 11+len(projectID)+len(transactionID))
	k = append(k, prefixCrossParticipant, 2)
	k = binary.BigEndian.AppendUint64(k, uint64(finishedAt))
	k = append(k, projectID...)
	k = append(k, 0)
	return append(k, transactionID...)
}

// parseParticipationTrimKey splits a trim index key; ok is false for a malformed one.
func parseParticipationTrimKey(k []byte) (finishedAt int64, projectID, transactionID string, ok bool) {
	if len(k) < 11 || k[0] != prefixCrossParticipant || k[1] != 2 {
		return 0, "", "", false
	}
	finishedAt = int64(binary.BigEndian.Uint64(k[2:10]))
	rest := k[10:]
	for i, c := range rest {
		if c == 0 {
			return finishedAt, string(rest[:i]), string(rest[i+1:]), true
		}
	}
	return 0, "", "", false
}

// finishParticipation records a participation's end now and indexes it for trimming.
func (l *Ledger) finishParticipation(p *Participation) {
	p.FinishedAt = l.b.Now
	l.putParticipation(p)
	l.set(participationTrimKey(p.FinishedAt, p.ProjectID, p.TransactionID), nil)
	if l.nextTrimFinishMs == 0 || p.FinishedAt < l.nextTrimFinishMs {
		l.nextTrimFinishMs = p.FinishedAt
	}
}

// prepareTooLate refuses a prepare for an ID this shard has no record of once its begin is
// older than the window: its participation may have been trimmed, and a new one would hold
// funds that no finish releases.
func (l *Ledger) prepareTooLate(c *CrossPrepare) *fsm.Result {
	if c.BeginAt == 0 || l.b.Now-c.BeginAt <= crossPrepareWindowMs {
		return nil
	}
	message := fmt.Sprintf("transaction %q began at %d, more than %d ms before this shard's time %d: too late to prepare",
		c.TransactionID, c.BeginAt, crossPrepareWindowMs, l.b.Now)
	out := &Participation{ProjectID: c.ProjectID, TransactionID: c.TransactionID, Status: ParticipationRefused,
		Wallets: c.Wallets, Legs: c.Legs, CreatedAt: l.b.Now,
		Vote: CrossVote{FailedOperationIndex: -1, FailureRank: rankFromUnusable, FailureReason: CodeCrossShardFinished, FailureMessage: message}}
	return &fsm.Result{Err: rejectf(CodeCrossShardFinished, "%s", message), Value: out}
}

// finishTrimmed answers a finish for an ID this shard has no record of once its begin is older
// than the window: its participation may have been trimmed (a done delayed past the retention,
// the driver's re-sent finish, a very late duplicate). A completed decision needed this shard's
// prepared vote, so its participation was committed; a failed one finds nothing to release and
// needs no tombstone (a prepare that late is refused anyway). Either is answered as finished,
// recording nothing. Within the window (or without a begin time) nil: the finish goes on as
// before (a completed one refused as misrouted, a failed one recording a tombstone).
func (l *Ledger) finishTrimmed(c *CrossFinish) *fsm.Result {
	if c.BeginAt == 0 || l.b.Now-c.BeginAt <= crossPrepareWindowMs {
		return nil
	}
	status := ParticipationReleased
	if c.Status == TransactionCompleted {
		status = ParticipationCommitted
	}
	return &fsm.Result{Value: &Participation{ProjectID: c.ProjectID, TransactionID: c.TransactionID, Status: status,
		Wallets: c.Wallets, Vote: CrossVote{FailedOperationIndex: -1}}}
}

// trimParticipations deletes, at the start of a batch, the participations finished more than
// participationRetentionMs ago, oldest first. The earliest finish is kept in memory, so a batch
// with nothing due reads nothing.
func (l *Ledger) trimParticipations() {
	if l.nextTrimFinishMs == 0 || l.nextTrimFinishMs > l.b.Now-participationRetentionMs {
		return
	}
	lower := []byte{prefixCrossParticipant, 2}
	it, err := l.store.NewIter(lower, []byte{prefixCrossParticipant, 3})
	if err != nil {
		panic(fmt.Sprintf("ledger: participation trims: %v", err)) // the store failed
	}
	type due struct {
		key                      []byte
		projectID, transactionID string
		finishedAt               int64
	}
	var trims []due
	l.nextTrimFinishMs = 0
	for valid := it.First(); valid; valid = it.Next() {
		finishedAt, projectID, transactionID, ok := parseParticipationTrimKey(it.Key())
		if !ok {
			panic(fmt.Sprintf("ledger: malformed participation trim key %q", it.Key())) // corruption
		}
		if finishedAt > l.b.Now-participationRetentionMs || len(trims) == participationTrimsPerBatch {
			l.nextTrimFinishMs = finishedAt // the earliest finish left
			break
		}
		trims = append(trims, due{append([]byte(nil), it.Key()...), projectID, transactionID, finishedAt})
	}
	if err := it.Error(); err != nil {
		panic(fmt.Sprintf("ledger: participation trims: %v", err))
	}
	it.Close()
	for _, t := range trims {
		p := l.findParticipation(t.projectID, t.transactionID)
		if p == nil || p.FinishedAt != t.finishedAt || !p.finished() {
			panic(fmt.Sprintf("ledger: trim index names participation %s/%s that did not finish at %d", t.projectID, t.transactionID, t.finishedAt)) // corruption
		}
		l.delete(participationKey(t.projectID, t.transactionID))
		l.delete(t.key)
	}
}

// earliestTrim reads the earliest finish in the trim index from the store (0: none).
func (l *Ledger) earliestTrim() (int64, error) {
	it, err := l.store.NewIter([]byte{prefixCrossParticipant, 2}, []byte{prefixCrossParticipant, 3})
	if err != nil {
		return 0, err
	}
	var earliest int64
	if it.First() {
		finishedAt, _, _, ok := parseParticipationTrimKey(it.Key())
		if !ok {
			it.Close()
			return 0, fmt.Errorf("malformed participation trim key %q", it.Key())
		}
		earliest = finishedAt
	}
	return earliest, it.Close()
}

// finished reports a participation past its finish: committed, released or a tombstone.
func (p *Participation) finished() bool {
	return p.Status == ParticipationCommitted || p.Status == ParticipationReleased || p.Status == ParticipationTombstone
}
