package faults

import (
	"fmt"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/client"
)

// historyBuilder writes a small synthetic history and the matching final state, so that each
// test can break one thing and expect exactly that anomaly.
type historyBuilder struct {
	events []Event
	final  FinalState
	now    int64
	txs    int
}

func newHistory() *historyBuilder {
	h := &historyBuilder{final: FinalState{ProjectID: "p", Wallets: []string{"A", "B"}, InitialBalance: 100,
		IssuedTotal: 200, Entries: map[string][]client.Entry{}, Balances: map[string]client.Amount{}, Digests: map[string]client.StateDigest{}}}
	h.addTx("setup-issue-0", "completed", client.Operation{Type: "issue", To: "A", Amount: "100"}, client.Operation{Type: "issue", To: "B", Amount: "100"})
	h.settle()
	return h
}

func (h *historyBuilder) tick() int64 { h.now += 10; return h.now }

// addTx appends a transaction to the final history with its entries.
func (h *historyBuilder) addTx(ref, status string, ops ...client.Operation) string {
	h.txs++
	id := fmt.Sprintf("tx%d", h.txs)
	h.final.Transactions = append(h.final.Transactions, client.Transaction{ID: id, ReferenceID: ref, Status: client.TransactionStatus(status), Operations: ops,
		FailureReason: map[string]string{"failed": "InsufficientFunds"}[status]})
	if status != "completed" {
		return id
	}
	for i, op := range ops {
		amount, _ := op.Amount.Uint64()
		post := func(wallet, kind string, sign int) {
			entries := h.final.Entries[wallet]
			var balance uint64
			if len(entries) > 0 {
				balance, _ = entries[len(entries)-1].BalanceAfter.Uint64()
			}
			if sign > 0 {
				balance += amount
			} else {
				balance -= amount
			}
			h.final.Entries[wallet] = append(entries, client.Entry{WalletID: wallet, TransactionID: id, OperationIndex: i,
				Type: client.EntryType(kind), Amount: op.Amount, BalanceAfter: client.AmountFromUint64(balance)})
		}
		switch op.Type {
		case "issue":
			post(op.To, "issue", 1)
		case "transfer":
			post(op.From, "debit", -1)
			post(op.To, "credit", 1)
		}
	}
	h.settle()
	return id
}

// settle sets the final balances from the entries.
func (h *historyBuilder) settle() {
	for _, w := range h.final.Wallets {
		entries := h.final.Entries[w]
		h.final.Balances[w] = "0"
		if len(entries) > 0 {
			h.final.Balances[w] = entries[len(entries)-1].BalanceAfter
		}
	}
}

// transfer records one attempt of a transfer with the given answers.
func (h *historyBuilder) transfer(process int, ref, from, to string, amount uint64, answers ...Event) {
	for i, answer := range answers {
		h.events = append(h.events, Event{TimeNs: h.tick(), Type: EventInvoke, Process: process, Op: OpTransfer,
			ReferenceID: ref, From: from, To: to, Amount: amount, Attempt: i + 1})
		answer.TimeNs, answer.Type, answer.Process, answer.Op, answer.ReferenceID, answer.Attempt = h.tick(), EventComplete, process, OpTransfer, ref, i+1
		h.events = append(h.events, answer)
	}
}

func (h *historyBuilder) read(process int, wallet string, balance uint64) {
	h.events = append(h.events, Event{TimeNs: h.tick(), Type: EventInvoke, Process: process, Op: OpRead, Wallet: wallet})
	h.events = append(h.events, Event{TimeNs: h.tick(), Type: EventComplete, Process: process, Op: OpRead, Wallet: wallet,
		Outcome: OutcomeRead, Balance: balance, HTTPStatus: 200})
}

var (
	applied  = Event{Outcome: OutcomeApplied, HTTPStatus: 201, TxStatus: "completed"}
	dup      = Event{Outcome: OutcomeApplied, HTTPStatus: 409, Code: "DuplicateReferenceId", TxStatus: "completed"}
	failed   = Event{Outcome: OutcomeFailed, HTTPStatus: 422, Code: "InsufficientFunds"}
	unknown  = Event{Outcome: OutcomeUnknown, Error: "timeout"}
	rejected = Event{Outcome: OutcomeRejected, HTTPStatus: 503, Code: "Unavailable"}
)

func transfer(from, to string, amount uint64) client.Operation {
	return client.Operation{Type: "transfer", From: from, To: to, Amount: client.AmountFromUint64(amount)}
}

// goodHistory is a clean run: an acknowledged transfer, one retried after an unknown
// outcome, a recorded failure, a certainly-not-applied one, and reads that fit.
func goodHistory() *historyBuilder {
	h := newHistory()
	h.read(9, "A", 100)
	h.transfer(0, "r1", "A", "B", 30, applied)
	h.addTx("r1", "completed", transfer("A", "B", 30))
	h.read(9, "A", 70)
	h.transfer(1, "r2", "B", "A", 10, unknown, dup)
	h.addTx("r2", "completed", transfer("B", "A", 10))
	h.transfer(0, "r3", "A", "B", 500, failed)
	h.addTx("r3", "failed", transfer("A", "B", 500))
	h.transfer(1, "r4", "A", "B", 5, rejected)
	h.read(9, "B", 120)
	h.final.NodeBalances = map[string]map[string]client.Amount{"n1": h.final.Balances, "n2": h.final.Balances}
	h.final.Digests = map[string]client.StateDigest{"n1": {Digest: "ab", AppliedIndex: 9}, "n2": {Digest: "ab", AppliedIndex: 9}}
	return h
}

func check(h *historyBuilder) *Report {
	return Check(h.events, &h.final, CheckOptions{LinearizabilityTimeout: 10 * time.Second})
}

func TestCheckerAcceptsCleanHistory(t *testing.T) {
	r := check(goodHistory())
	if r.AnomalyCount() != 0 {
		t.Fatalf("anomalies in a clean history: %v %v", r.Anomalies, r.Details)
	}
	if r.WalletsChecked != 2 {
		t.Fatalf("checked %d wallets", r.WalletsChecked)
	}
}

func TestCheckerFindsAnomalies(t *testing.T) {
	tests := []struct {
		name    string
		want    string
		breakIt func(h *historyBuilder)
	}{
		{"lost acknowledged transfer", AnomalyLostAcknowledged, func(h *historyBuilder) {
			h.transfer(2, "r5", "A", "B", 1, applied) // acknowledged, never stored
		}},
		{"failure that applied", AnomalyFailedApplied, func(h *historyBuilder) {
			h.final.Transactions[3].Status = "completed" // r3
		}},
		{"rejected that applied", AnomalyRejectedApplied, func(h *historyBuilder) {
			h.addTx("r4", "completed", transfer("A", "B", 5))
		}},
		{"retry applied twice", AnomalyDuplicateReference, func(h *historyBuilder) {
			h.addTx("r2", "completed", transfer("B", "A", 10))
		}},
		{"phantom", AnomalyPhantom, func(h *historyBuilder) {
			h.addTx("nobody", "completed", transfer("A", "B", 1))
		}},
		{"conservation", AnomalyConservation, func(h *historyBuilder) {
			h.events = append(h.events, Event{TimeNs: h.tick(), Type: EventSnapshot, Balances: map[string]uint64{"A": 1, "B": 1}, Total: 2})
		}},
		{"entries do not replay", AnomalyEntries, func(h *historyBuilder) {
			h.final.Entries["A"][1].BalanceAfter = "71"
		}},
		{"replica divergence", AnomalyReplicaDivergence, func(h *historyBuilder) {
			h.final.Digests["n2"] = client.StateDigest{Digest: "cd", AppliedIndex: 9}
		}},
		{"stale read", AnomalyNonLinearizable, func(h *historyBuilder) {
			h.read(8, "A", 100) // after r1 (-30) completed: a stale read
		}},
		{"negative balance read", AnomalyNegative, func(h *historyBuilder) {
			h.events = append(h.events, Event{TimeNs: h.tick(), Type: EventComplete, Op: OpRead, Wallet: "A", Code: codeBadBalance, Error: "amount \"-1\""})
		}},
		{"fresh reference already used", AnomalyFreshDuplicate, func(h *historyBuilder) {
			h.transfer(3, "r6", "A", "B", 2, dup)
			h.addTx("r6", "completed", transfer("A", "B", 2))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := goodHistory()
			tt.breakIt(h)
			r := check(h)
			if r.Anomalies[tt.want] == 0 {
				t.Fatalf("want %s, got %v %v", tt.want, r.Anomalies, r.Details)
			}
		})
	}
}

func TestHistoryRoundTrip(t *testing.T) {
	path := t.TempDir() + "/history.jsonl"
	rec, err := NewRecorder(path)
	if err != nil {
		t.Fatal(err)
	}
	h := goodHistory()
	for _, e := range h.events {
		rec.Record(e)
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	events, err := ReadHistory(path)
	if err != nil || len(events) != len(h.events) {
		t.Fatalf("read %d events (%v), wrote %d", len(events), err, len(h.events))
	}
	if r := Check(events, &h.final, CheckOptions{LinearizabilityTimeout: time.Second}); r.AnomalyCount() != 0 {
		t.Fatalf("anomalies after a round trip: %v", r.Details)
	}
}

func TestFindClusterView(t *testing.T) {
	for _, body := range []any{
		map[string]any{"nodeId": "n1", "leaderId": "n2", "state": "Follower"},
		map[string]any{"nodeId": "n1", "shards": []any{map[string]any{"shardId": "0", "leaderId": "n2", "state": "Follower"}}},
		[]any{map[string]any{"leader": "n2", "raftState": "Follower"}},
	} {
		view, ok := findClusterView(body, 0)
		if !ok || view.LeaderID != "n2" || view.State != "Follower" {
			t.Errorf("%v: got %+v %v", body, view, ok)
		}
	}
}

// checkEvents: one outbox event per transaction; a duplicate, a missing one (unless retention
// dropped events) and an event of no transaction are anomalies.
func TestCheckEvents(t *testing.T) {
	final := &FinalState{Transactions: []client.Transaction{{ID: "t1"}, {ID: "t2"}, {ID: "t3"}}}
	r := &Report{Anomalies: map[string]int{}, Details: map[string][]string{}}
	checkEvents(r, final)
	if r.Anomalies[AnomalyEvents] != 0 || len(r.Notes) != 1 {
		t.Fatalf("not read: %+v", r)
	}
	final.TransactionEvents = map[string]int{"t1": 1, "t2": 2, "t9": 1}
	r = &Report{Anomalies: map[string]int{}, Details: map[string][]string{}}
	checkEvents(r, final)
	if r.Anomalies[AnomalyEvents] != 3 { // t2 twice, t3 none, t9 unknown
		t.Fatalf("anomalies %+v", r.Details)
	}
	final.EventsLost = 5
	r = &Report{Anomalies: map[string]int{}, Details: map[string][]string{}}
	checkEvents(r, final)
	if r.Anomalies[AnomalyEvents] != 2 { // t3's may have been dropped
		t.Fatalf("with retention loss: %+v", r.Details)
	}
}

// checkDelivery: every failed transaction's event reached the webhook; a missing one, one of
// another transaction, an unsigned or altered repeat are anomalies.
func TestCheckDelivery(t *testing.T) {
	final := &FinalState{Transactions: []client.Transaction{{ID: "t1", Status: "failed"}, {ID: "t2", Status: "completed"}, {ID: "t3", Status: "failed"}}}
	report := func() *Report {
		r := &Report{Anomalies: map[string]int{}, Details: map[string][]string{}}
		checkDelivery(r, final)
		return r
	}
	if r := report(); r.Anomalies[AnomalyDelivery] != 0 || len(r.Notes) != 1 {
		t.Fatalf("no webhook: %+v", r)
	}
	final.Delivery = &Delivery{Received: map[string]int{"t1": 2, "t3": 1}, Requests: 3}
	if r := report(); r.Anomalies[AnomalyDelivery] != 0 {
		t.Fatalf("all delivered, one twice: %+v", r.Details)
	}
	final.Delivery = &Delivery{Received: map[string]int{"t1": 1, "t2": 1}, Requests: 3, BadSignatures: 1, Mismatched: 1}
	if r := report(); r.Anomalies[AnomalyDelivery] != 4 { // t3 missing, t2 not failed, a bad signature, an altered repeat
		t.Fatalf("anomalies %+v", r.Details)
	}
}

// legs records one attempt per answer of a transaction of the given legs (cross: its wallets
// live on several shards); the answers carry txID.
func (h *historyBuilder) legs(process int, ref, txID string, cross bool, legs []Leg, answers ...Event) {
	var all []Leg
	if len(legs) > 1 {
		all = legs
	}
	for i, answer := range answers {
		h.events = append(h.events, Event{TimeNs: h.tick(), Type: EventInvoke, Process: process, Op: OpTransfer, ReferenceID: ref,
			From: legs[0].From, To: legs[0].To, Amount: legs[0].Amount, Legs: all, Cross: cross, Attempt: i + 1})
		answer.TimeNs, answer.Type, answer.Process, answer.Op, answer.ReferenceID, answer.Attempt, answer.TxID = h.tick(), EventComplete, process, OpTransfer, ref, i+1, txID
		h.events = append(h.events, answer)
	}
}

// verify records a verify read of wallet for ref that found postings entries.
func (h *historyBuilder) verify(process int, ref, txID, wallet string, postings int) {
	h.events = append(h.events, Event{TimeNs: h.tick(), Type: EventInvoke, Process: process, Op: OpVerify, ReferenceID: ref, TxID: txID, Wallet: wallet})
	h.events = append(h.events, Event{TimeNs: h.tick(), Type: EventComplete, Process: process, Op: OpVerify, ReferenceID: ref, TxID: txID,
		Wallet: wallet, Outcome: OutcomeRead, HTTPStatus: 200, Postings: postings})
}

// crossHistory: a cross-shard transfer, a two-transfer transaction whose second fails for
// funds, their verify reads, a quiescent snapshot, and digests per shard.
func crossHistory() *historyBuilder {
	h := goodHistory() // A 80, B 120 after it
	x1 := h.addTx("x1", "completed", transfer("A", "B", 5))
	h.legs(2, "x1", x1, true, []Leg{{"A", "B", 5}}, unknown, applied)
	m1 := h.addTx("m1", "failed", transfer("A", "B", 10), transfer("B", "A", 500))
	index := 1
	h.final.Transactions[len(h.final.Transactions)-1].FailedOperationIndex = &index
	h.legs(3, "m1", m1, true, []Leg{{"A", "B", 10}, {"B", "A", 500}}, failed)
	h.verify(20, "x1", x1, "A", 1)
	h.verify(20, "x1", x1, "B", 1)
	h.verify(20, "m1", m1, "A", 0)
	h.verify(20, "m1", m1, "B", 0)
	h.read(9, "A", 75)
	h.events = append(h.events, Event{TimeNs: h.tick(), Type: EventSnapshot, Balances: map[string]uint64{"A": 75, "B": 125}, Total: 200, Supply: "200"})
	h.final.Supply = "200"
	h.final.Held = map[string]client.Amount{"A": "0", "B": "0"}
	h.final.ShardDigests = map[string]map[string]client.StateDigest{
		"shard-0": {"n1": {Digest: "aa", AppliedIndex: 5}, "n2": {Digest: "aa", AppliedIndex: 5}},
		"shard-1": {"n1": {Digest: "bb", AppliedIndex: 7}, "n2": {Digest: "bb", AppliedIndex: 7}}}
	return h
}

func TestCheckerCrossShard(t *testing.T) {
	r := check(crossHistory())
	if r.AnomalyCount() != 0 {
		t.Fatalf("anomalies in a clean history: %v %v", r.Anomalies, r.Details)
	}
	if r.VerifyReadsChecked != 4 || r.ShardReplicasEqual != 2 {
		t.Fatalf("verify reads checked %d, shard replica pairs equal %d", r.VerifyReadsChecked, r.ShardReplicasEqual)
	}
	tests := []struct {
		name    string
		want    string
		breakIt func(h *historyBuilder)
	}{
		{"credit missing after the answer", AnomalyPartial, func(h *historyBuilder) { h.verify(21, "x1", "tx5", "B", 0) }},
		{"failed transaction visible", AnomalyPartial, func(h *historyBuilder) { h.verify(21, "m1", "tx6", "A", 1) }},
		{"hold left at a quiescent point", AnomalyStrandedHold, func(h *historyBuilder) {
			h.events = append(h.events, Event{TimeNs: h.tick(), Type: EventSnapshot, Balances: map[string]uint64{"A": 75, "B": 125}, Total: 200, Held: 5})
		}},
		{"hold seen with no cross-shard transaction running", AnomalyStrandedHold, func(h *historyBuilder) {
			h.events = append(h.events, Event{TimeNs: h.tick(), Type: EventInvoke, Process: 9, Op: OpRead, Wallet: "A"},
				Event{TimeNs: h.tick(), Type: EventComplete, Process: 9, Op: OpRead, Wallet: "A", Outcome: OutcomeRead, Balance: 75, Held: 5, HTTPStatus: 200})
		}},
		{"hold left at the end", AnomalyStrandedHold, func(h *historyBuilder) { h.final.Held["B"] = "1" }},
		{"supply over the shards", AnomalyConservation, func(h *historyBuilder) { h.final.Supply = "195" }},
		{"one shard's replicas differ", AnomalyReplicaDivergence, func(h *historyBuilder) {
			h.final.ShardDigests["shard-1"]["n2"] = client.StateDigest{Digest: "cc", AppliedIndex: 7}
		}},
		{"a replica kept outside its shard's configuration", AnomalyStaleReplica, func(h *historyBuilder) {
			h.final.ShardReplicas = map[string][]string{"shard-0": {"n1", "n2"}, "shard-1": {"n1", "n2"}}
			h.final.ShardDigests["shard-1"]["n3"] = client.StateDigest{Digest: "b0", AppliedIndex: 4}
		}},
		{"part of a failed transaction seen", AnomalyNonLinearizable, func(h *historyBuilder) { h.read(9, "B", 135) }},
		{"failure for funds the balance covered", AnomalyNonLinearizable, func(h *historyBuilder) {
			id := h.addTx("f1", "failed", transfer("A", "B", 60))
			h.legs(4, "f1", id, false, []Leg{{"A", "B", 60}}, failed)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := crossHistory()
			tt.breakIt(h)
			r := check(h)
			if r.Anomalies[tt.want] == 0 {
				t.Fatalf("want %s, got %v %v", tt.want, r.Anomalies, r.Details)
			}
		})
	}
	// Moves: nodes host different shards, so their whole-node digests differ; each shard is
	// compared over the nodes of its configuration only.
	h := crossHistory()
	h.final.ShardDigests["shard-1"] = map[string]client.StateDigest{"n2": {Digest: "bb", AppliedIndex: 7}, "n3": {Digest: "bb", AppliedIndex: 7}}
	h.final.ShardReplicas = map[string][]string{"shard-0": {"n1", "n2"}, "shard-1": {"n2", "n3"}}
	h.final.Digests = map[string]client.StateDigest{"n1": {Digest: "01", AppliedIndex: 12}, "n2": {Digest: "02", AppliedIndex: 12}, "n3": {Digest: "03", AppliedIndex: 12}}
	if r := check(h); r.AnomalyCount() != 0 || r.ShardReplicasEqual != 2 {
		t.Fatalf("after moves (nodes hosting different shards): %v %v, %d pairs equal", r.Anomalies, r.Details, r.ShardReplicasEqual)
	}
	// A failure for funds while a cross-shard transaction debiting the wallet runs (and then
	// fails): its prepare's hold may have lowered the available balance, so it is no anomaly;
	// nor is a read seeing that hold.
	h = crossHistory()
	x2 := h.addTx("x2", "failed", transfer("A", "B", 20))
	h.final.Transactions[len(h.final.Transactions)-1].FailureReason = "ParticipantUnavailable"
	f2 := h.addTx("f2", "failed", transfer("A", "B", 60))
	call := h.tick()
	h.events = append(h.events,
		Event{TimeNs: call, Type: EventInvoke, Process: 5, Op: OpTransfer, ReferenceID: "x2", From: "A", To: "B", Amount: 20, Cross: true, Attempt: 1},
		Event{TimeNs: h.tick(), Type: EventInvoke, Process: 6, Op: OpTransfer, ReferenceID: "f2", From: "A", To: "B", Amount: 60, Attempt: 1},
		Event{TimeNs: h.tick(), Type: EventInvoke, Process: 9, Op: OpRead, Wallet: "A"},
		Event{TimeNs: h.tick(), Type: EventComplete, Process: 9, Op: OpRead, Wallet: "A", Outcome: OutcomeRead, Balance: 75, Held: 20, HTTPStatus: 200},
		Event{TimeNs: h.tick(), Type: EventComplete, Process: 6, Op: OpTransfer, ReferenceID: "f2", Attempt: 1, TxID: f2, Outcome: OutcomeFailed, HTTPStatus: 422},
		Event{TimeNs: h.tick(), Type: EventComplete, Process: 5, Op: OpTransfer, ReferenceID: "x2", Attempt: 1, TxID: x2, Outcome: OutcomeFailed, HTTPStatus: 503})
	if r := check(h); r.AnomalyCount() != 0 {
		t.Fatalf("a failure under a concurrent cross-shard hold: %v %v", r.Anomalies, r.Details)
	}
}
