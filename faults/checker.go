package faults

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/gigaledger/gigaledger/client"
)

// FinalState is what the runner reads from the healed cluster after the workload stopped: the
// project's whole transaction history, every wallet's entries and balance, each node's view of
// the balances, and each replica's state digest.
type FinalState struct {
	ProjectID      string                              `json:"projectId"`
	Wallets        []string                            `json:"wallets"`
	InitialBalance uint64                              `json:"initialBalance"`
	IssuedTotal    uint64                              `json:"issuedTotal"`
	EndTimeNs      int64                               `json:"endTimeNs"`
	Transactions   []client.Transaction                `json:"transactions"`
	Entries        map[string][]client.Entry           `json:"entries"`
	Balances       map[string]client.Amount            `json:"balances"`
	NodeBalances   map[string]map[string]client.Amount `json:"nodeBalances"`
	// Digests per node ID, and where they came from: "GET /debug/digest", "offline" (the
	// stopped node's store opened with fsm.Open), or "" when none could be had.
	Digests map[string]client.StateDigest `json:"digests"`
	// TransactionEvents counts the LEDGER_TX_* outbox events of each transaction of the
	// project (GET /events); EventsLost is how many events retention dropped before the read.
	TransactionEvents map[string]int `json:"transactionEvents,omitempty"`
	EventsLost        uint64         `json:"eventsLost,omitempty"`
	// ShardDigests: per shard (its data folder, "shard-2"), per node, the replica's digest and
	// applied index, hashed from the stopped nodes' stores.
	ShardDigests map[string]map[string]client.StateDigest `json:"shardDigests,omitempty"`
	// ShardReplicas: per shard, the nodes of its raft configuration at the end, as its
	// leader reported it (moves change it); absent when unknown (every node then counts).
	ShardReplicas map[string][]string `json:"shardReplicas,omitempty"`
	// Held is each wallet's held amount at the end (read through the first node); Supply the
	// asset's supply summed over the shards; WalletShards the shard of each wallet.
	Held         map[string]client.Amount `json:"held,omitempty"`
	Supply       client.Amount            `json:"supply,omitempty"`
	WalletShards map[string]int           `json:"walletShards,omitempty"`
	// Delivery is what the run's webhook received: the events of failed transactions.
	Delivery     *Delivery `json:"delivery,omitempty"`
	DigestSource string    `json:"digestSource"`
	DigestNote   string    `json:"digestNote,omitempty"`
}

// Anomaly kinds the checker reports.
const (
	AnomalyLostAcknowledged   = "lost-acknowledged"    // acknowledged, not completed in the final history
	AnomalyFailedApplied      = "failed-but-applied"   // the client saw a recorded failure; it completed
	AnomalyFailureNotRecorded = "failure-not-recorded" // 422, but no failed transaction holds the reference
	AnomalyRejectedApplied    = "rejected-but-applied" // certainly-not-applied answer, yet in the history
	AnomalyDuplicateReference = "duplicate-reference"  // one referenceId, several transactions
	AnomalyPhantom            = "phantom-transaction"  // a transaction nobody asked for
	AnomalyWrongOperations    = "wrong-operations"     // stored operations differ from the request
	AnomalyInconsistentAnswer = "inconsistent-answers" // applied in one answer, failed in another
	AnomalyFreshDuplicate     = "fresh-reference-used" // first attempt answered 409
	AnomalyUnexpectedStatus   = "unexpected-status"    // 400/401/404/409-mismatch to a valid transfer
	AnomalyEntries            = "entries"              // entry history does not replay or match the transactions
	AnomalyNegative           = "negative-balance"     // a balance below zero or unparsable
	AnomalyConservation       = "conservation"         // balances do not sum to the issued total
	AnomalyReplicaDivergence  = "replica-divergence"   // digests or per-node balances differ
	AnomalyStaleReplica       = "stale-replica"        // a node keeps a replica its shard's configuration dropped
	AnomalyNonLinearizable    = "non-linearizable"     // a wallet's history has no linearization
	AnomalyStall              = "stall"                // the cluster did not recover after a fault
	AnomalyCrash              = "crash"                // a node exited without being told to
	AnomalyEvents             = "events"               // a transaction without exactly one outbox event, or an event of none
	AnomalyDelivery           = "delivery"             // a failed transaction's event never reached the webhook, or arrived altered
	AnomalyPartial            = "partial-transaction"  // after its answer, a read saw part of a transaction (or any of a failed one)
	AnomalyStrandedHold       = "stranded-hold"        // at a quiescent point a wallet still holds funds (a prepare's hold outlived its transaction)
)

// anomalyDetailsMax bounds the details kept per anomaly kind (all are counted).
const anomalyDetailsMax = 20

// Report is the checker's verdict.
type Report struct {
	Anomalies map[string]int      `json:"anomalies"`
	Details   map[string][]string `json:"details"`
	// Resolved counts transfers whose outcome the client never learned, by what the final
	// history says: completed, failed or absent.
	Resolved map[string]int `json:"resolved"`
	// Linearizability: wallets checked, and how many the checker could not decide in time.
	WalletsChecked      int      `json:"walletsChecked"`
	WalletsUndecided    int      `json:"walletsUndecided"`
	Visualizations      []string `json:"visualizations,omitempty"`
	SnapshotsChecked    int      `json:"snapshotsChecked"`
	TransactionsInFinal int      `json:"transactionsInFinal"`
	// ShardReplicasEqual counts replica pairs (per shard, each against the first) found equal
	// at the same applied index; VerifyReadsChecked the verify reads compared.
	ShardReplicasEqual int      `json:"shardReplicasEqual"`
	VerifyReadsChecked int      `json:"verifyReadsChecked"`
	Notes              []string `json:"notes,omitempty"`
}

// AnomalyCount is the total number of anomalies.
func (r *Report) AnomalyCount() int {
	n := 0
	for _, c := range r.Anomalies {
		n += c
	}
	return n
}

func (r *Report) add(kind, format string, args ...any) {
	r.Anomalies[kind]++
	if len(r.Details[kind]) < anomalyDetailsMax {
		r.Details[kind] = append(r.Details[kind], fmt.Sprintf(format, args...))
	}
}

// transferRecord is one logical transfer reassembled from the history.
type transferRecord struct {
	ref         string
	process     int
	legs        []Leg
	cross       bool
	callNs      int64   // first invoke
	returnNs    int64   // the definitive answer, or math.MaxInt64
	final       Outcome // the client's last word: applied, failed, rejected or unknown
	sawApplied  bool
	sawFailed   bool
	sawUnknown  bool
	unexpected  []string
	freshAnswer string // the first attempt's code when it was a 409
}

// CheckOptions tunes the checker.
type CheckOptions struct {
	// LinearizabilityTimeout bounds porcupine per wallet; 0 skips the check.
	LinearizabilityTimeout time.Duration
	// VisualizationDir receives porcupine's HTML for a non-linearizable wallet.
	VisualizationDir string
	// Stalls are liveness failures the nemesis saw.
	Stalls []string
	// Crashes are node processes that exited without being told to.
	Crashes []string
}

// Check verifies a recorded history against the final state.
func Check(events []Event, final *FinalState, opts CheckOptions) *Report {
	r := &Report{Anomalies: map[string]int{}, Details: map[string][]string{}, Resolved: map[string]int{}}
	for _, s := range opts.Stalls {
		r.add(AnomalyStall, "%s", s)
	}
	for _, s := range opts.Crashes {
		r.add(AnomalyCrash, "%s", s)
	}
	transfers, order := assembleTransfers(events)
	byRef := map[string][]client.Transaction{}
	for _, tx := range final.Transactions {
		byRef[tx.ReferenceID] = append(byRef[tx.ReferenceID], tx)
	}
	r.TransactionsInFinal = len(final.Transactions)
	txByID := map[string]client.Transaction{}
	for ref, txs := range byRef {
		if len(txs) > 1 {
			r.add(AnomalyDuplicateReference, "reference %s has %d transactions", ref, len(txs))
		}
		for _, tx := range txs {
			txByID[tx.ID] = tx
		}
		if _, ours := transfers[ref]; !ours && !strings.HasPrefix(ref, "setup-issue-") {
			r.add(AnomalyPhantom, "transaction %s with reference %s was never requested", txs[0].ID, ref)
		}
	}

	// Each transfer against the final history.
	for _, ref := range order {
		t := transfers[ref]
		for _, u := range t.unexpected {
			r.add(AnomalyUnexpectedStatus, "%s: %s", ref, u)
		}
		if t.freshAnswer != "" {
			r.add(AnomalyFreshDuplicate, "%s: first attempt answered 409 %s", ref, t.freshAnswer)
		}
		if t.sawApplied && t.sawFailed {
			r.add(AnomalyInconsistentAnswer, "%s: answered both applied and failed", ref)
		}
		txs := byRef[ref]
		var tx *client.Transaction
		if len(txs) > 0 {
			tx = &txs[0]
			if !sameTransfer(tx, t) {
				r.add(AnomalyWrongOperations, "%s: stored operations %+v differ from %+v", ref, tx.Operations, t.legs)
			}
		}
		switch t.final {
		case OutcomeApplied:
			if tx == nil || tx.Status != "completed" {
				r.add(AnomalyLostAcknowledged, "%s acknowledged at %v but final history has %s", ref, time.Duration(t.returnNs), describe(tx))
			}
		case OutcomeFailed:
			switch {
			case tx == nil:
				r.add(AnomalyFailureNotRecorded, "%s failed (422) but no transaction holds it", ref)
			case tx.Status == "completed":
				r.add(AnomalyFailedApplied, "%s failed (422) but completed as %s", ref, tx.ID)
			}
		case OutcomeRejected:
			if tx != nil {
				r.add(AnomalyRejectedApplied, "%s answered certainly-not-applied, yet %s is %s", ref, tx.ID, tx.Status)
			}
		default:
			switch {
			case tx == nil:
				r.Resolved["absent"]++
			default:
				r.Resolved[string(tx.Status)]++
			}
		}
	}

	checkEntries(r, final, txByID)
	checkBalances(r, final)
	checkSnapshots(r, events, final)
	checkVerifies(r, events, transfers, byRef)
	checkReplicas(r, final)
	checkEvents(r, final)
	checkDelivery(r, final)
	slack := newHoldSlack(transfers, byRef)
	checkHolds(r, events, slack)
	if opts.LinearizabilityTimeout > 0 {
		checkLinearizable(r, events, transfers, byRef, final, slack, opts)
	}
	return r
}

func describe(tx *client.Transaction) string {
	if tx == nil {
		return "no transaction"
	}
	return tx.ID + " " + string(tx.Status)
}

func sameTransfer(tx *client.Transaction, t *transferRecord) bool {
	if len(tx.Operations) != len(t.legs) {
		return false
	}
	for i, op := range tx.Operations {
		amount, err := op.Amount.Uint64()
		l := t.legs[i]
		if err != nil || op.Type != "transfer" || op.From != l.From || op.To != l.To || amount != l.Amount {
			return false
		}
	}
	return true
}

// assembleTransfers groups invoke/complete events by referenceId, in first-invoke order.
func assembleTransfers(events []Event) (map[string]*transferRecord, []string) {
	transfers := map[string]*transferRecord{}
	var order []string
	for _, e := range events {
		if e.Op != OpTransfer {
			continue
		}
		t := transfers[e.ReferenceID]
		if t == nil {
			if e.Type != EventInvoke {
				continue
			}
			legs := e.Legs
			if len(legs) == 0 {
				legs = []Leg{{From: e.From, To: e.To, Amount: e.Amount}}
			}
			t = &transferRecord{ref: e.ReferenceID, process: e.Process, legs: legs, cross: e.Cross,
				callNs: e.TimeNs, returnNs: math.MaxInt64, final: OutcomeUnknown}
			transfers[e.ReferenceID] = t
			order = append(order, e.ReferenceID)
		}
		if e.Type != EventComplete {
			continue
		}
		if e.Attempt == 1 && e.HTTPStatus == 409 {
			t.freshAnswer = e.Code
		}
		switch e.Outcome {
		case OutcomeApplied:
			t.sawApplied = true
			t.final, t.returnNs = OutcomeApplied, e.TimeNs
		case OutcomeFailed:
			t.sawFailed = true
			t.final, t.returnNs = OutcomeFailed, e.TimeNs
		case OutcomeUnknown:
			t.sawUnknown = true
		case OutcomeRejected:
			if e.HTTPStatus != 503 {
				t.unexpected = append(t.unexpected, fmt.Sprintf("attempt %d answered %d %s", e.Attempt, e.HTTPStatus, e.Code))
			}
			if !t.sawUnknown && !t.sawApplied && !t.sawFailed {
				t.final, t.returnNs = OutcomeRejected, e.TimeNs
			}
		}
	}
	return transfers, order
}

// checkEntries replays every wallet's entries: each balanceAfter follows from the one before,
// none goes below zero, the last is the wallet's balance, and every completed transaction has
// exactly its own postings (failed ones none).
func checkEntries(r *Report, final *FinalState, txByID map[string]client.Transaction) {
	type posting struct {
		tx    string
		index int
		kind  string
	}
	postings := map[posting]int{}
	for _, walletID := range final.Wallets {
		var balance uint64
		for i, e := range final.Entries[walletID] {
			amount, err1 := e.Amount.Uint64()
			after, err2 := e.BalanceAfter.Uint64()
			if err1 != nil || err2 != nil {
				r.add(AnomalyNegative, "wallet %s entry %d: amount %q balanceAfter %q", walletID, i, e.Amount, e.BalanceAfter)
				continue
			}
			switch e.Type {
			case "issue", "credit":
				balance += amount
			case "redeem", "debit":
				if amount > balance {
					r.add(AnomalyNegative, "wallet %s entry %d (%s %d) takes the balance below zero from %d", walletID, i, e.Type, amount, balance)
				}
				balance -= amount
			default:
				r.add(AnomalyEntries, "wallet %s entry %d has type %q", walletID, i, e.Type)
			}
			if after != balance {
				r.add(AnomalyEntries, "wallet %s entry %d: balanceAfter %d, replay gives %d", walletID, i, after, balance)
				balance = after
			}
			tx, ok := txByID[e.TransactionID]
			if !ok {
				r.add(AnomalyEntries, "wallet %s entry %d names unknown transaction %s", walletID, i, e.TransactionID)
				continue
			}
			if tx.Status != "completed" {
				r.add(AnomalyEntries, "wallet %s entry %d belongs to %s transaction %s", walletID, i, tx.Status, tx.ID)
			}
			postings[posting{e.TransactionID + "/" + walletID, e.OperationIndex, string(e.Type)}]++
		}
		finalBalance, err := final.Balances[walletID].Uint64()
		if err != nil {
			r.add(AnomalyNegative, "wallet %s final balance %q", walletID, final.Balances[walletID])
		} else if finalBalance != balance {
			r.add(AnomalyEntries, "wallet %s: balance %d, entries replay to %d", walletID, finalBalance, balance)
		}
	}
	tracked := map[string]bool{}
	for _, w := range final.Wallets {
		tracked[w] = true
	}
	for _, tx := range txByID {
		if tx.Status != "completed" {
			continue
		}
		for i, op := range tx.Operations {
			var want []posting
			switch op.Type {
			case "transfer":
				want = []posting{{tx.ID + "/" + op.From, i, "debit"}, {tx.ID + "/" + op.To, i, "credit"}}
			case "issue":
				want = []posting{{tx.ID + "/" + op.To, i, "issue"}}
			case "redeem":
				want = []posting{{tx.ID + "/" + op.From, i, "redeem"}}
			}
			for _, p := range want {
				wallet := p.tx[strings.IndexByte(p.tx, '/')+1:]
				if tracked[wallet] && postings[p] != 1 {
					r.add(AnomalyEntries, "transaction %s (%s) operation %d: %d %s entries in %s, want 1", tx.ID, tx.ReferenceID, i, postings[p], p.kind, wallet)
				}
			}
		}
	}
}

// checkBalances: the final balances sum to the issued total.
// checkEvents: every transaction of the final history produced exactly one event in the outbox
// (delivery may repeat an event; the outbox never holds two), and every event names one. With
// events lost to retention, a missing event is not an anomaly (it may have been dropped), but a
// duplicate still is.
func checkEvents(r *Report, final *FinalState) {
	if final.TransactionEvents == nil {
		r.Notes = append(r.Notes, "events: not read")
		return
	}
	known := map[string]bool{}
	for _, tx := range final.Transactions {
		known[tx.ID] = true
		switch n := final.TransactionEvents[tx.ID]; {
		case n > 1:
			r.add(AnomalyEvents, "transaction %s has %d events", tx.ID, n)
		case n == 0 && final.EventsLost == 0:
			r.add(AnomalyEvents, "transaction %s has no event", tx.ID)
		}
	}
	for id := range final.TransactionEvents {
		if !known[id] {
			r.add(AnomalyEvents, "an event names transaction %s, which is not in the history", id)
		}
	}
	if final.EventsLost > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("events: %d dropped by retention before the check read them", final.EventsLost))
	}
}

// checkDelivery: the webhook got every failed transaction's event at least once, each repeat
// identical to the first, every request signed, and nothing else.
func checkDelivery(r *Report, final *FinalState) {
	d := final.Delivery
	if d == nil {
		r.Notes = append(r.Notes, "delivery: no webhook in this run")
		return
	}
	failed := map[string]bool{}
	for _, tx := range final.Transactions {
		if tx.Status == "failed" {
			failed[tx.ID] = true
			if d.Received[tx.ID] == 0 {
				r.add(AnomalyDelivery, "failed transaction %s: its event never reached the webhook", tx.ID)
			}
		}
	}
	for id := range d.Received {
		if !failed[id] {
			r.add(AnomalyDelivery, "the webhook got an event of transaction %s, which the history has not as failed", id)
		}
	}
	if d.BadSignatures > 0 {
		r.add(AnomalyDelivery, "%d requests without a valid signature", d.BadSignatures)
	}
	if d.Mismatched > 0 {
		r.add(AnomalyDelivery, "%d repeats of an event differ from its first delivery", d.Mismatched)
	}
	if d.Foreign > 0 {
		r.add(AnomalyDelivery, "%d events the subscription does not select", d.Foreign)
	}
	duplicates := 0
	for _, n := range d.Received {
		duplicates += n - 1
	}
	r.Notes = append(r.Notes, fmt.Sprintf("delivery: %d events of failed transactions in %d requests (%d repeats)", len(d.Received), d.Requests, duplicates))
}

func checkBalances(r *Report, final *FinalState) {
	var total uint64
	for _, id := range final.Wallets {
		v, err := final.Balances[id].Uint64()
		if err != nil {
			continue // reported by checkEntries
		}
		total += v
	}
	if total != final.IssuedTotal {
		r.add(AnomalyConservation, "final balances sum to %d, issued %d", total, final.IssuedTotal)
	}
	if final.Supply != "" {
		if supply, err := final.Supply.Uint64(); err != nil || supply != final.IssuedTotal {
			r.add(AnomalyConservation, "final asset supply (summed over the shards) %s, issued %d", final.Supply, final.IssuedTotal)
		}
	}
	for _, id := range final.Wallets {
		if held, ok := final.Held[id]; ok {
			if v, err := held.Uint64(); err != nil || v != 0 {
				r.add(AnomalyStrandedHold, "wallet %s holds %s at the end", id, held)
			}
		}
	}
}

// checkSnapshots: every quiescent snapshot sums to the issued total, and every read balance
// parsed as a whole non-negative number.
func checkSnapshots(r *Report, events []Event, final *FinalState) {
	for _, e := range events {
		switch {
		case e.Type == EventSnapshot:
			r.SnapshotsChecked++
			if e.Total != final.IssuedTotal || len(e.Balances) != len(final.Wallets) {
				r.add(AnomalyConservation, "snapshot at %v (%s) sums %d wallets to %d, issued %d", time.Duration(e.TimeNs), e.Detail, len(e.Balances), e.Total, final.IssuedTotal)
			}
			if e.Supply != "" && e.Supply != strconv.FormatUint(final.IssuedTotal, 10) {
				r.add(AnomalyConservation, "snapshot at %v (%s): asset supply (summed over the shards) %s, issued %d", time.Duration(e.TimeNs), e.Detail, e.Supply, final.IssuedTotal)
			}
			if e.Held != 0 {
				r.add(AnomalyStrandedHold, "snapshot at %v (%s): the wallets hold %d in all, with no transfer in flight", time.Duration(e.TimeNs), e.Detail, e.Held)
			}
		case e.Type == EventComplete && e.Op == OpRead && e.Code == codeBadBalance:
			r.add(AnomalyNegative, "read of %s at %v: %s", e.Wallet, time.Duration(e.TimeNs), e.Error)
		}
	}
}

// checkHolds: the workload places no hold, so what a read sees held on a wallet is the
// prepares' of cross-shard transactions running during the read (a hold lives from a
// participant's prepare to its finish, both within the transaction's interval), and at most
// their debits of the wallet.
func checkHolds(r *Report, events []Event, slack *holdSlack) {
	forEachCompletedCall(events, OpRead, func(call, e Event) {
		if e.Outcome != OutcomeRead || e.Held == 0 || call.Wallet != e.Wallet {
			return
		}
		if bound := slack.of(e.Wallet, "", call.TimeNs, e.TimeNs); e.Held > bound {
			r.add(AnomalyStrandedHold, "a read of %s at %v saw %d held; the cross-shard transactions running then debit it by %d in all",
				e.Wallet, time.Duration(call.TimeNs), e.Held, bound)
		}
	})
}

// forEachCompletedCall calls f with each call of op and its completion, in history order (a
// process has one call in flight at a time).
func forEachCompletedCall(events []Event, op string, f func(call, completion Event)) {
	calls := map[int]Event{}
	for _, e := range events {
		if e.Op != op {
			continue
		}
		if e.Type == EventInvoke {
			calls[e.Process] = e
			continue
		}
		call, ok := calls[e.Process]
		delete(calls, e.Process)
		if ok {
			f(call, e)
		}
	}
}

// checkVerifies: a verify read began after its cross-shard transaction was answered, so it
// must find every posting of a completed transaction on the wallet (one per operation naming
// the wallet) and none of a failed one.
func checkVerifies(r *Report, events []Event, transfers map[string]*transferRecord, byRef map[string][]client.Transaction) {
	forEachCompletedCall(events, OpVerify, func(call, e Event) {
		if e.Outcome != OutcomeRead || call.Wallet != e.Wallet || call.ReferenceID != e.ReferenceID {
			return
		}
		t := transfers[e.ReferenceID]
		txs := byRef[e.ReferenceID]
		if t == nil || len(txs) == 0 {
			return // reported as lost or phantom elsewhere
		}
		tx := txs[0]
		if tx.ID != e.TxID {
			r.add(AnomalyPartial, "%s: answered as transaction %s, the history has %s", e.ReferenceID, e.TxID, tx.ID)
			return
		}
		if call.TimeNs < t.returnNs {
			return // not after the answer (cannot happen: the reader is fed answers)
		}
		want := 0
		if tx.Status == "completed" {
			for _, l := range t.legs {
				if l.From == e.Wallet {
					want++
				}
				if l.To == e.Wallet {
					want++
				}
			}
		}
		r.VerifyReadsChecked++
		if e.Postings != want {
			r.add(AnomalyPartial, "%s (%s %s, answered at %v): a read of %s from %s at %v found %d of its entries, want %d",
				e.ReferenceID, tx.ID, tx.Status, time.Duration(t.returnNs), e.Wallet, e.Node, time.Duration(call.TimeNs), e.Postings, want)
		}
	})
}

// checkReplicas: equal digests at equal applied indexes, and equal per-node balances.
func checkReplicas(r *Report, final *FinalState) {
	if final.DigestNote != "" {
		r.Notes = append(r.Notes, "digests: "+final.DigestNote)
	}
	var ids []string
	for id := range final.Digests {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	if len(final.ShardDigests) > 0 {
		ids = nil // compared shard by shard below: nodes may host different shards
	}
	for _, id := range ids[min(1, len(ids)):] {
		a, b := final.Digests[ids[0]], final.Digests[id]
		switch {
		case a.AppliedIndex != b.AppliedIndex && final.DigestSource != "offline":
			r.Notes = append(r.Notes, fmt.Sprintf("digest of %s at index %d and %s at %d: not comparable", ids[0], a.AppliedIndex, id, b.AppliedIndex))
		case a.Digest != b.Digest:
			r.add(AnomalyReplicaDivergence, "digest of %s (index %d) %s ≠ %s (index %d) %s", ids[0], a.AppliedIndex, a.Digest, id, b.AppliedIndex, b.Digest)
		}
	}
	var shards []string
	for shard := range final.ShardDigests {
		shards = append(shards, shard)
	}
	sort.Strings(shards)
	for _, shard := range shards {
		replicas := final.ShardDigests[shard]
		members, known := final.ShardReplicas[shard]
		var nodes []string
		for node := range replicas {
			if known && !slices.Contains(members, node) {
				r.add(AnomalyStaleReplica, "%s: %s holds a replica (index %d) but the configuration is %v", shard, node, replicas[node].AppliedIndex, members)
				continue
			}
			nodes = append(nodes, node)
		}
		sort.Strings(nodes)
		want := len(final.NodeBalances)
		if known {
			want = len(members)
		}
		if len(nodes) < want {
			r.Notes = append(r.Notes, fmt.Sprintf("%s: digests of %d replicas only (%v)", shard, len(nodes), nodes))
		}
		for _, node := range nodes[min(1, len(nodes)):] {
			a, b := replicas[nodes[0]], replicas[node]
			switch {
			case a.AppliedIndex != b.AppliedIndex:
				r.Notes = append(r.Notes, fmt.Sprintf("%s: %s at index %d and %s at %d: not comparable", shard, nodes[0], a.AppliedIndex, node, b.AppliedIndex))
			case a.Digest != b.Digest:
				r.add(AnomalyReplicaDivergence, "%s: digest of %s %s ≠ %s %s at index %d", shard, nodes[0], a.Digest, node, b.Digest, a.AppliedIndex)
			default:
				r.ShardReplicasEqual++
			}
		}
	}
	for node, balances := range final.NodeBalances {
		for _, w := range final.Wallets {
			if balances[w] != final.Balances[w] {
				r.add(AnomalyReplicaDivergence, "node %s reads wallet %s as %s, reference read %s", node, w, balances[w], final.Balances[w])
			}
		}
	}
}

// walletInput is one operation on one wallet's balance for porcupine.
type walletInput struct {
	kind string // "tx" (a completed transaction's moves of the wallet), "insufficient" (a failure for funds), "read"
	// tx: the transaction's moves of this wallet in operation order (debits negative); the
	// balance must stay ≥ 0 after each.
	deltas []int64
	// insufficient: the failing operation's amount, the transaction's own moves of the wallet
	// before it, and slack: what holds of cross-shard transactions in flight at the same time
	// may have taken from the available balance. read: the balance seen.
	amount uint64
	before int64
	slack  uint64
	ref    string
}

// walletModel is a wallet's balance as a register moved by transactions: a debit needs the
// balance to cover it, a failure for insufficient funds needs it not to (the available
// balance, which a prepared cross-shard transaction's hold lowers: slack), a read sees it.
var walletModel = porcupine.Model{
	Init: func() any { return uint64(0) }, // replaced per wallet
	Step: func(state, input, _ any) (bool, any) {
		balance, in := state.(uint64), input.(walletInput)
		switch in.kind {
		case "tx":
			running := int64(balance)
			for _, d := range in.deltas {
				running += d
				if running < 0 {
					return false, balance
				}
			}
			return true, uint64(running)
		case "insufficient":
			return int64(balance)+in.before < int64(in.amount+in.slack), balance
		case "read":
			return balance == in.amount, balance
		}
		return false, balance
	},
	DescribeOperation: func(input, _ any) string {
		in := input.(walletInput)
		switch in.kind {
		case "tx":
			return fmt.Sprintf("tx %v %s", in.deltas, in.ref)
		case "insufficient":
			return fmt.Sprintf("insufficient %d (before %d, slack %d) %s", in.amount, in.before, in.slack, in.ref)
		}
		return fmt.Sprintf("%s %d %s", in.kind, in.amount, in.ref)
	},
	DescribeState: func(state any) string { return fmt.Sprint(state.(uint64)) },
}

// crossDebit is a cross-shard transaction's debits of one wallet over its interval: while it
// runs, its prepare may hold up to amount of the wallet.
type crossDebit struct {
	callNs, returnNs int64
	amount           uint64
	ref              string
}

// holdSlack tells, for a failure for funds on a wallet over [call, ret], how much the holds of
// other cross-shard transactions running at the same time may have taken from its available
// balance (the sum of their debits of it).
type holdSlack struct {
	byWallet   map[string][]crossDebit // answered ones, sorted by callNs
	longest    map[string]int64        // their longest interval per wallet
	unanswered map[string][]crossDebit // never answered (open-ended)
}

func newHoldSlack(transfers map[string]*transferRecord, byRef map[string][]client.Transaction) *holdSlack {
	h := &holdSlack{byWallet: map[string][]crossDebit{}, longest: map[string]int64{}, unanswered: map[string][]crossDebit{}}
	for ref, t := range transfers {
		if !t.cross || len(byRef[ref]) == 0 {
			continue // never begun: no prepare, no hold
		}
		debits := map[string]uint64{}
		for _, l := range t.legs {
			debits[l.From] += l.Amount
		}
		for wallet, amount := range debits {
			d := crossDebit{t.callNs, t.returnNs, amount, ref}
			if t.returnNs == math.MaxInt64 {
				h.unanswered[wallet] = append(h.unanswered[wallet], d)
				continue
			}
			h.byWallet[wallet] = append(h.byWallet[wallet], d)
			h.longest[wallet] = max(h.longest[wallet], t.returnNs-t.callNs)
		}
	}
	for wallet, list := range h.byWallet {
		sort.Slice(list, func(i, j int) bool { return list[i].callNs < list[j].callNs })
		h.byWallet[wallet] = list
	}
	return h
}

func (h *holdSlack) of(wallet, self string, call, ret int64) uint64 {
	var slack uint64
	for _, d := range h.unanswered[wallet] {
		if d.callNs <= ret && d.ref != self {
			slack += d.amount
		}
	}
	list := h.byWallet[wallet]
	// Every debit that began by ret and had not ended by call; those that began before
	// call − longest ended before call.
	end := sort.Search(len(list), func(i int) bool { return list[i].callNs > ret })
	for i := end - 1; i >= 0 && list[i].callNs >= call-h.longest[wallet]; i-- {
		if d := list[i]; d.returnNs >= call && d.ref != self {
			slack += d.amount
		}
	}
	return slack
}

// checkLinearizable checks each wallet's history with porcupine. A transaction counts by what
// the final history says it did (completed: its moves of the wallet; failed for funds: a check
// on the failing operation's source; absent: nothing), over the interval from its first
// attempt to its definitive answer. A cross-shard transaction is one operation on each of its
// wallets: each participant applies its part within that interval.
func checkLinearizable(r *Report, events []Event, transfers map[string]*transferRecord, byRef map[string][]client.Transaction, final *FinalState, slack *holdSlack, opts CheckOptions) {
	perWallet := map[string][]porcupine.Operation{}
	add := func(wallet string, op porcupine.Operation) {
		perWallet[wallet] = append(perWallet[wallet], op)
	}
	for ref, t := range transfers {
		txs := byRef[ref]
		if len(txs) == 0 {
			continue
		}
		tx := txs[0]
		client := t.process
		if client < 0 {
			client = 0
		}
		switch {
		case tx.Status == "completed":
			deltas := map[string][]int64{}
			var order []string
			move := func(wallet string, d int64) {
				if _, ok := deltas[wallet]; !ok {
					order = append(order, wallet)
				}
				deltas[wallet] = append(deltas[wallet], d)
			}
			for _, l := range t.legs {
				move(l.From, -int64(l.Amount))
				move(l.To, int64(l.Amount))
			}
			for _, wallet := range order {
				add(wallet, porcupine.Operation{ClientId: client, Input: walletInput{kind: "tx", deltas: deltas[wallet], ref: ref}, Call: t.callNs, Return: t.returnNs})
			}
		case tx.Status == "failed" && tx.FailureReason == "InsufficientFunds":
			index := 0
			if tx.FailedOperationIndex != nil {
				index = *tx.FailedOperationIndex
			}
			if index < 0 || index >= len(t.legs) {
				continue
			}
			source := t.legs[index].From
			var before int64
			for _, l := range t.legs[:index] {
				if l.To == source {
					before += int64(l.Amount)
				}
				if l.From == source {
					before -= int64(l.Amount)
				}
			}
			add(source, porcupine.Operation{ClientId: client, Input: walletInput{kind: "insufficient", amount: t.legs[index].Amount,
				before: before, slack: slack.of(source, ref, t.callNs, t.returnNs), ref: ref}, Call: t.callNs, Return: t.returnNs})
		}
	}
	readCalls := map[int]Event{}
	for _, e := range events {
		if e.Op != OpRead {
			continue
		}
		key := e.Process
		if e.Type == EventInvoke {
			readCalls[key] = e
			continue
		}
		call, ok := readCalls[key]
		delete(readCalls, key)
		if !ok || e.Outcome != OutcomeRead || call.Wallet != e.Wallet {
			continue
		}
		client := e.Process
		if client < 0 {
			client = 0
		}
		add(e.Wallet, porcupine.Operation{ClientId: client, Input: walletInput{kind: "read", amount: e.Balance}, Call: call.TimeNs, Return: e.TimeNs})
	}
	for _, wallet := range final.Wallets {
		model := walletModel
		initial := final.InitialBalance
		model.Init = func() any { return initial }
		ops := perWallet[wallet]
		result, info := porcupine.CheckOperationsVerbose(model, ops, opts.LinearizabilityTimeout)
		r.WalletsChecked++
		switch result {
		case porcupine.Unknown:
			r.WalletsUndecided++
		case porcupine.Illegal:
			detail := fmt.Sprintf("wallet %s: %d operations, no linearization", wallet, len(ops))
			if opts.VisualizationDir != "" {
				path := filepath.Join(opts.VisualizationDir, "linearizability-"+wallet+".html")
				if err := porcupine.VisualizePath(model, info, path); err == nil {
					r.Visualizations = append(r.Visualizations, path)
					detail += " (see " + path + ")"
				}
			}
			r.add(AnomalyNonLinearizable, "%s", detail)
		}
	}
}
