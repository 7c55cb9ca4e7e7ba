package faults

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gigaledger/gigaledger/client"
	"github.com/gigaledger/gigaledger/cluster/keyspace"
)

// Workload limits.
const (
	// transferAmountMax is the largest amount one transfer moves; with InitialBalance well
	// above it most transfers succeed and some fail for insufficient funds.
	transferAmountMax = 100
	// attemptsMax bounds the attempts of one transfer during the workload; what is still
	// unknown then is resolved after the cluster heals.
	attemptsMax = 1000
	// retryBackoffMax caps the pause between attempts of one transfer (it starts at
	// retryBackoffMin and doubles).
	retryBackoffMin = 20 * time.Millisecond
	retryBackoffMax = 500 * time.Millisecond
	// readInterval paces each reader.
	readInterval = 10 * time.Millisecond
	// snapshotCollectsMax bounds the collects of one quiescent snapshot.
	snapshotCollectsMax = 5
	// opsPerClientMax bounds the transfers one client starts in a run.
	opsPerClientMax = 10_000_000
	// setupAttemptsMax bounds the attempts of each setup request.
	setupAttemptsMax = 200
	// customersPerShard: the wallets of one shard belong to this many customers.
	customersPerShard = 2
	// customerSearchMax bounds the names tried to find customers routing to every shard.
	customerSearchMax = 100_000
	// drainMax bounds how long a quiescent snapshot waits for the cross-shard transfers in
	// flight to get a definitive answer: above the protocol's 30 s vote deadline, so that a
	// transaction begun before a fault is decided by then.
	drainMax = 45 * time.Second
	// drainPoll is how often the snapshot looks whether they have.
	drainPoll = 10 * time.Millisecond
	// verifyQueue bounds the answered cross-shard transactions waiting for a verify read;
	// more are not verified (counted). It is small, and verifyFreshMax drops what waited
	// longer: the read should come right after the answer, when a participant that had not
	// applied its part yet would show.
	verifyQueue    = 4
	verifyFreshMax = 100 * time.Millisecond
	// verifyMarginMs: a verify read lists the entries from this long before the transaction's
	// creation (entries of a participant are made at its commit, after the begin).
	verifyMarginMs = 5_000
	// verifyPagesMax bounds the pages one verify read walks.
	verifyPagesMax = 5
	// verifyAttemptsMax bounds the nodes asked for one wallet of one transaction.
	verifyAttemptsMax = 3
)

// Workload is the bank: W customer wallets of one asset spread over the shards, a known total
// issued at the start, C clients moving random amounts between random wallets (within a shard
// or across shards, one or two transfers per transaction), R readers reading balances and V
// verify readers reading the entries of answered cross-shard transactions. Every
// request and answer goes to the history.
type Workload struct {
	ProjectID      string
	Wallets        []string
	InitialBalance uint64
	Seed           uint64
	// Shards is the cluster's shard count; the wallets are spread over all of them.
	Shards int
	// CrossShare is the share of single transfers whose two wallets live on different shards;
	// MultiShare the share of transactions of two transfers A→B, B→C (three random wallets,
	// so mostly across shards), whose second may fail for funds: all or nothing.
	CrossShare float64
	MultiShare float64
	// WalletShard is the shard of each wallet (same index as Wallets); byShard lists the
	// wallet indexes of each shard.
	WalletShard []int
	byShard     [][]int

	cluster *Cluster
	client  *Client
	rec     *Recorder
	// gate: each request holds it shared; a quiescent snapshot holds it exclusively, so that
	// no request of ours is in flight while it collects.
	gate sync.RWMutex

	Stats WorkloadStats

	mu      sync.Mutex
	pending []pendingTransfer // transfers whose outcome was still unknown when clients stopped

	// Admission: while draining, clients start no new transfer; openCross counts the
	// cross-shard transfers started and not yet answered definitively (pending ones included).
	admit     sync.Mutex
	draining  bool
	openCross int
	resume    *sync.Cond

	// verify carries answered cross-shard transactions to the verify readers.
	verify chan verifyItem
}

// verifyItem is an answered cross-shard transaction whose postings a verify reader looks up.
type verifyItem struct {
	answered  int64 // the history time of the answer
	ref       string
	txID      string
	createdAt int64
	wallets   []string
}

// WorkloadStats counts logical transfers (one per referenceId) and attempts.
type WorkloadStats struct {
	Attempted       atomic.Int64 // transfers started
	Acknowledged    atomic.Int64 // the client saw applied (201 or 409 completed)
	Failed          atomic.Int64 // the client saw a recorded failure (422)
	Rejected        atomic.Int64 // certainly not applied (503 Unavailable first, no unknown attempt)
	OutcomeUnknown  atomic.Int64 // transfers with at least one unknown attempt
	Unresolved      atomic.Int64 // still unknown when clients stopped
	Attempts        atomic.Int64
	Reads           atomic.Int64
	ReadErrors      atomic.Int64
	Snapshots       atomic.Int64
	SnapshotsFailed atomic.Int64
	// Cross-shard and two-operation transactions among Attempted, and the cross-shard ones
	// acknowledged.
	CrossAttempted    atomic.Int64
	CrossAcknowledged atomic.Int64
	MultiAttempted    atomic.Int64
	// Verify reads done, and answered cross-shard transactions not verified (queue full).
	Verified        atomic.Int64
	VerifySkipped   atomic.Int64
	VerifyReadFails atomic.Int64
}

type pendingTransfer struct {
	process     int
	referenceID string
	legs        []Leg
	cross       bool
	attempts    int
}

// wallets lists the distinct wallets of the legs, in order of first mention.
func (t *pendingTransfer) wallets() []string {
	var out []string
	seen := map[string]bool{}
	for _, l := range t.legs {
		for _, id := range []string{l.From, l.To} {
			if !seen[id] {
				seen[id] = true
				out = append(out, id)
			}
		}
	}
	return out
}

// assetID is the one asset of the workload.
const assetID = "coin"

// runnerProcess is the history's process number for the runner's own requests.
const runnerProcess = -1

// node picks a random node to send a request to; any node takes any request.
func (w *Workload) node(rng *rand.Rand) *Node {
	return w.cluster.Nodes[rng.IntN(len(w.cluster.Nodes))]
}

// Setup creates the project, the asset, one customer and its wallets, and issues
// InitialBalance to each, retrying every step on an unavailable cluster. It returns the total
// issued.
func (w *Workload) Setup(ctx context.Context, walletCount int) (uint64, error) {
	rng := rand.New(rand.NewPCG(w.Seed, 0x5e7))
	w.resume = sync.NewCond(&w.admit)
	w.verify = make(chan verifyItem, verifyQueue)
	if w.Shards < 1 || walletCount < 2*w.Shards {
		return 0, fmt.Errorf("setup: %d wallets for %d shards: want at least two per shard", walletCount, w.Shards)
	}
	// setup sends call to a random node until it succeeds or done says its error means the
	// step is done.
	setup := func(what string, call func(ctx context.Context, api *client.Client) error, done func(error) bool) error {
		var lastErr error
		for attempt := 1; attempt <= setupAttemptsMax; attempt++ {
			request, cancel := context.WithTimeout(ctx, requestTimeout)
			api, err := w.client.API(w.node(rng).AdminURL)
			if err == nil {
				err = call(request, api)
			}
			cancel()
			if err == nil || done(err) {
				return nil
			}
			lastErr = err
			if err := sleepCtx(ctx, retryBackoffMax); err != nil {
				return err
			}
		}
		return fmt.Errorf("setup %s: gave up after %d attempts: %w", what, setupAttemptsMax, lastErr)
	}
	never := func(error) bool { return false }
	// A retried create may answer "exists": the first attempt applied.
	exists := func(err error) bool { return client.StatusCode(err) == http.StatusConflict }
	err := setup("project", func(ctx context.Context, api *client.Client) error {
		_, err := api.CreateProject(ctx, client.CreateProjectRequest{ID: w.ProjectID, Name: "fault suite"})
		return err
	}, exists)
	if err != nil {
		return 0, err
	}
	err = setup("asset", func(ctx context.Context, api *client.Client) error {
		_, err := api.CreateAsset(ctx, w.ProjectID, client.CreateAssetRequest{ID: assetID, Name: "Coin", Code: "COIN", Fractions: 100})
		return err
	}, exists)
	if err != nil {
		return 0, err
	}
	// The routing key is (project, customer): customers are picked (by name, through
	// cluster/keyspace) so that each shard gets customersPerShard of them, and wallet i
	// belongs to shard i mod Shards.
	customers, err := customersByShard(w.ProjectID, w.Shards)
	if err != nil {
		return 0, err
	}
	for _, names := range customers {
		for _, customer := range names {
			err = setup("customer", func(ctx context.Context, api *client.Client) error {
				_, err := api.UpsertCustomer(ctx, w.ProjectID, customer, client.CustomerFields{Name: client.String(customer)})
				return err
			}, never)
			if err != nil {
				return 0, err
			}
		}
	}
	w.byShard = make([][]int, w.Shards)
	for i := 0; i < walletCount; i++ {
		shard := i % w.Shards
		customer := customers[shard][(i/w.Shards)%customersPerShard]
		// Wallet creation is not idempotent: a retry after an unknown outcome may leave an
		// extra empty wallet, which the checks ignore (they follow the wallets listed here).
		err = setup("wallet", func(ctx context.Context, api *client.Client) error {
			wallet, err := api.CreateWallet(ctx, w.ProjectID, client.CreateWalletRequest{CustomerID: customer, AssetID: assetID})
			if err == nil {
				w.Wallets = append(w.Wallets, wallet.ID)
			}
			return err
		}, never)
		if err != nil {
			return 0, err
		}
		id := w.Wallets[len(w.Wallets)-1]
		slot, ok := keyspace.SlotOfID(id)
		if !ok || int(keyspace.ShardOfSlot(slot, w.Shards)) != shard {
			return 0, fmt.Errorf("setup: wallet %q of customer %s is not on shard %d", id, customer, shard)
		}
		w.WalletShard = append(w.WalletShard, shard)
		w.byShard[shard] = append(w.byShard[shard], i)
	}
	// One issuing transaction per shard (and per 100 wallets): each is a single-shard one.
	var total uint64
	type issue struct {
		ref string
		ops []client.Operation
	}
	var issues []issue
	for shard, indexes := range w.byShard {
		for chunk := 0; chunk*operationsPerSetupTransaction < len(indexes); chunk++ {
			var ops []client.Operation
			for _, i := range indexes[chunk*operationsPerSetupTransaction : min(len(indexes), (chunk+1)*operationsPerSetupTransaction)] {
				ops = append(ops, client.Operation{Type: "issue", To: w.Wallets[i], Amount: client.AmountFromUint64(w.InitialBalance)})
				total += w.InitialBalance
			}
			issues = append(issues, issue{fmt.Sprintf("setup-issue-%d-%d", shard, chunk), ops})
		}
	}
	for _, is := range issues {
		ref, ops := is.ref, is.ops
		resolved := false
		for attempt := 1; attempt <= setupAttemptsMax && !resolved; attempt++ {
			request, cancel := context.WithTimeout(ctx, requestTimeout)
			node := w.node(rng)
			r := w.client.Transact(request, node.AdminURL, w.ProjectID, ref, ops)
			cancel()
			w.rec.Record(Event{TimeNs: w.rec.Now(), Type: EventComplete, Process: runnerProcess, Op: OpSetup,
				ReferenceID: ref, Attempt: attempt, Node: node.ID, Outcome: r.Outcome, HTTPStatus: r.Status, Code: r.Code, TxStatus: r.TxStatus, Error: r.Err})
			switch r.Outcome {
			case OutcomeApplied:
				resolved = true
			case OutcomeFailed:
				return 0, fmt.Errorf("setup issue %s failed: %s", ref, r.Code)
			default:
				if err := sleepCtx(ctx, retryBackoffMax); err != nil {
					return 0, err
				}
			}
		}
		if !resolved {
			return 0, fmt.Errorf("setup issue %s: no answer after %d attempts", ref, setupAttemptsMax)
		}
	}
	return total, nil
}

// operationsPerSetupTransaction stays within the API's 100 operations per transaction.
const operationsPerSetupTransaction = 100

// customersByShard finds customersPerShard customer names per shard of a project: the shard of
// a customer's wallets is SHA-256(project, customer)'s slot mod the shard count.
func customersByShard(projectID string, shards int) ([][]string, error) {
	out := make([][]string, shards)
	missing := shards * customersPerShard
	for n := 0; n < customerSearchMax && missing > 0; n++ {
		name := fmt.Sprintf("customer-%d", n)
		shard := int(keyspace.ShardOfSlot(keyspace.SlotOf(projectID, name), shards))
		if len(out[shard]) < customersPerShard {
			out[shard] = append(out[shard], name)
			missing--
		}
	}
	if missing > 0 {
		return nil, fmt.Errorf("setup: no %d customers for each of %d shards among %d names", customersPerShard, shards, customerSearchMax)
	}
	return out, nil
}

// pick draws the next transaction of a client: two transfers A→B, B→C (MultiShare), or one
// transfer across shards (CrossShare) or within one shard.
func (w *Workload) pick(rng *rand.Rand) ([]Leg, bool) {
	amount := func() uint64 { return 1 + rng.Uint64N(transferAmountMax) }
	n := len(w.Wallets)
	if n >= 3 && rng.Float64() < w.MultiShare {
		a := rng.IntN(n)
		b := rng.IntN(n - 1)
		if b >= a {
			b++
		}
		c := rng.IntN(n)
		for c == a || c == b {
			c = rng.IntN(n)
		}
		// The second moves up to the initial balance: it fails for funds now and then, and
		// then the first must not have happened either.
		legs := []Leg{{w.Wallets[a], w.Wallets[b], amount()}, {w.Wallets[b], w.Wallets[c], 1 + rng.Uint64N(max(w.InitialBalance, 1))}}
		return legs, w.WalletShard[a] != w.WalletShard[b] || w.WalletShard[b] != w.WalletShard[c]
	}
	from := rng.IntN(n)
	home := w.byShard[w.WalletShard[from]]
	var to int
	switch {
	case w.Shards > 1 && (rng.Float64() < w.CrossShare || len(home) < 2):
		to = rng.IntN(n - len(home))
		for s, shard := range w.byShard {
			if s == w.WalletShard[from] {
				continue
			}
			if to < len(shard) {
				to = shard[to]
				break
			}
			to -= len(shard)
		}
	default:
		to = home[rng.IntN(len(home))]
		for to == from {
			to = home[rng.IntN(len(home))]
		}
	}
	return []Leg{{w.Wallets[from], w.Wallets[to], amount()}}, w.WalletShard[from] != w.WalletShard[to]
}

// RunClient moves money until stop ends, one transfer at a time, each with a fresh
// referenceId and retried with the same one while its outcome is unknown.
func (w *Workload) RunClient(stop context.Context, process int) {
	rng := rand.New(rand.NewPCG(w.Seed, uint64(process)+1))
	for op := 0; op < opsPerClientMax && stop.Err() == nil; op++ {
		legs, cross := w.pick(rng)
		t := pendingTransfer{process: process, referenceID: fmt.Sprintf("s%d-c%d-%d", w.Seed, process, op),
			legs: legs, cross: cross}
		if !w.admitTransfer(stop, cross) {
			break
		}
		w.Stats.Attempted.Add(1)
		if cross {
			w.Stats.CrossAttempted.Add(1)
		}
		if len(legs) > 1 {
			w.Stats.MultiAttempted.Add(1)
		}
		outcome, sawUnknown := w.drive(stop, rng, &t, attemptsMax)
		if sawUnknown {
			w.Stats.OutcomeUnknown.Add(1)
		}
		w.count(outcome, &t)
		if outcome == OutcomeUnknown {
			w.Stats.Unresolved.Add(1)
			w.mu.Lock()
			w.pending = append(w.pending, t)
			w.mu.Unlock()
		}
	}
}

// admitTransfer waits while a snapshot drains, then counts a cross-shard transfer as open. It
// reports false when stop ended first.
func (w *Workload) admitTransfer(stop context.Context, cross bool) bool {
	w.admit.Lock()
	defer w.admit.Unlock()
	for w.draining && stop.Err() == nil {
		w.resume.Wait()
	}
	if stop.Err() != nil {
		return false
	}
	if cross {
		w.openCross++
	}
	return true
}

// closeTransfer ends an open cross-shard transfer (its answer is definitive).
func (w *Workload) closeTransfer(cross bool) {
	if !cross {
		return
	}
	w.admit.Lock()
	w.openCross--
	w.admit.Unlock()
}

func (w *Workload) count(outcome Outcome, t *pendingTransfer) {
	if outcome != OutcomeUnknown {
		w.closeTransfer(t.cross)
	}
	switch outcome {
	case OutcomeApplied:
		w.Stats.Acknowledged.Add(1)
		if t.cross {
			w.Stats.CrossAcknowledged.Add(1)
		}
	case OutcomeFailed:
		w.Stats.Failed.Add(1)
	case OutcomeRejected:
		w.Stats.Rejected.Add(1)
	}
}

// drive sends attempts of t until one is definitive, stop ends, or maxAttempts is spent. An
// attempt that certainly did not apply (503 Unavailable) ends the transfer only if no earlier
// attempt was unknown; otherwise an earlier attempt may still have applied and we must learn
// which.
func (w *Workload) drive(stop context.Context, rng *rand.Rand, t *pendingTransfer, maxAttempts int) (Outcome, bool) {
	ops := make([]client.Operation, len(t.legs))
	for i, l := range t.legs {
		ops[i] = client.Operation{Type: "transfer", From: l.From, To: l.To, Amount: client.AmountFromUint64(l.Amount)}
	}
	var legs []Leg
	if len(t.legs) > 1 {
		legs = t.legs
	}
	sawUnknown := t.attempts > 0 // a pending transfer comes back with unknown attempts
	backoff := retryBackoffMin
	for i := 0; i < maxAttempts; i++ {
		t.attempts++
		node := w.node(rng)
		w.gate.RLock()
		w.rec.Record(Event{TimeNs: w.rec.Now(), Type: EventInvoke, Process: t.process, Op: OpTransfer,
			ReferenceID: t.referenceID, From: t.legs[0].From, To: t.legs[0].To, Amount: t.legs[0].Amount, Legs: legs,
			Cross: t.cross, Attempt: t.attempts, Node: node.ID})
		// The request's own timeout, not stop: stopping the workload must not turn an
		// answer into an unknown.
		request, cancel := context.WithTimeout(context.Background(), requestTimeout)
		r := w.client.Transact(request, node.AdminURL, w.ProjectID, t.referenceID, ops)
		cancel()
		w.rec.Record(Event{TimeNs: w.rec.Now(), Type: EventComplete, Process: t.process, Op: OpTransfer,
			ReferenceID: t.referenceID, Attempt: t.attempts, Node: node.ID, Outcome: r.Outcome,
			HTTPStatus: r.Status, Code: r.Code, TxStatus: r.TxStatus, TxID: r.TxID, Error: r.Err})
		w.gate.RUnlock()
		w.Stats.Attempts.Add(1)
		switch r.Outcome {
		case OutcomeApplied, OutcomeFailed:
			if t.cross && r.TxID != "" && w.verify != nil {
				select {
				case w.verify <- verifyItem{answered: w.rec.Now(), ref: t.referenceID, txID: r.TxID, createdAt: r.TxCreatedAt, wallets: t.wallets()}:
				default:
					w.Stats.VerifySkipped.Add(1)
				}
			}
			return r.Outcome, sawUnknown
		case OutcomeRejected:
			if !sawUnknown {
				return OutcomeRejected, false
			}
		case OutcomeUnknown:
			sawUnknown = true
		}
		if stop.Err() != nil || sleepCtx(stop, backoff) != nil {
			break
		}
		backoff = min(2*backoff, retryBackoffMax)
	}
	return OutcomeUnknown, sawUnknown
}

// RunReader reads random wallets until stop ends.
func (w *Workload) RunReader(stop context.Context, process int) {
	rng := rand.New(rand.NewPCG(w.Seed, 0x4ead+uint64(process)))
	ticker := time.NewTicker(readInterval)
	defer ticker.Stop()
	for stop.Err() == nil {
		w.read(process, w.Wallets[rng.IntN(len(w.Wallets))], w.node(rng), true)
		select {
		case <-stop.Done():
		case <-ticker.C:
		}
	}
}

// RunVerifier takes answered cross-shard transactions and reads, from a random node, the
// recent entries of each of their wallets, recording how many postings of the transaction it
// found: once a transaction is answered, a read must see all of it (completed) or none of it
// (failed) on every wallet. It runs until stop ends.
func (w *Workload) RunVerifier(stop context.Context, process int) {
	rng := rand.New(rand.NewPCG(w.Seed, 0x7e41f+uint64(process)))
	for {
		select {
		case <-stop.Done():
			return
		case item := <-w.verify:
			if time.Duration(w.rec.Now()-item.answered) > verifyFreshMax {
				w.Stats.VerifySkipped.Add(1)
				continue
			}
			for _, wallet := range item.wallets {
				// A node that is down (a fault) does not end the check: another is asked.
				for attempt := 0; attempt < verifyAttemptsMax; attempt++ {
					if w.verifyWallet(process, item, wallet, w.node(rng)) {
						break
					}
				}
			}
		}
	}
}

// verifyWallet reads one wallet's entries for item and records what it found; it reports
// whether the read got an answer.
func (w *Workload) verifyWallet(process int, item verifyItem, walletID string, node *Node) bool {
	w.gate.RLock()
	defer w.gate.RUnlock()
	w.rec.Record(Event{TimeNs: w.rec.Now(), Type: EventInvoke, Process: process, Op: OpVerify, ReferenceID: item.ref,
		TxID: item.txID, Wallet: walletID, Node: node.ID})
	e := Event{Type: EventComplete, Process: process, Op: OpVerify, ReferenceID: item.ref, TxID: item.txID,
		Wallet: walletID, Node: node.ID, HTTPStatus: http.StatusOK, Outcome: OutcomeRead}
	request, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	complete := false
	for page := 1; page <= verifyPagesMax; page++ {
		got, err := w.client.EntriesPage(request, node.AdminURL, w.ProjectID, walletID, item.createdAt-verifyMarginMs, page)
		if err != nil {
			e.HTTPStatus, e.Code = statusAndCode(err)
			e.Outcome, e.Error = OutcomeUnknown, shortError(err)
			break
		}
		for _, entry := range got.Items {
			if entry.TransactionID == item.txID {
				e.Postings++
			}
		}
		if !got.HasMore {
			complete = true
			break
		}
	}
	if e.Outcome == OutcomeRead && !complete {
		e.Outcome, e.Error = OutcomeUnknown, fmt.Sprintf("more than %d pages of entries", verifyPagesMax)
	}
	if e.Outcome == OutcomeRead {
		w.Stats.Verified.Add(1)
	} else {
		w.Stats.VerifyReadFails.Add(1)
	}
	e.TimeNs = w.rec.Now()
	w.rec.Record(e)
	return e.Outcome == OutcomeRead
}

// read reads one wallet and records it; shared says whether to take the gate (a snapshot
// already holds it exclusively).
func (w *Workload) read(process int, walletID string, node *Node, shared bool) (*client.Wallet, bool) {
	if shared {
		w.gate.RLock()
		defer w.gate.RUnlock()
	}
	w.rec.Record(Event{TimeNs: w.rec.Now(), Type: EventInvoke, Process: process, Op: OpRead, Wallet: walletID, Node: node.ID})
	request, cancel := context.WithTimeout(context.Background(), requestTimeout)
	wallet, err := w.client.GetWallet(request, node.AdminURL, w.ProjectID, walletID)
	cancel()
	w.Stats.Reads.Add(1)
	e := Event{TimeNs: w.rec.Now(), Type: EventComplete, Process: process, Op: OpRead, Wallet: walletID, Node: node.ID,
		HTTPStatus: http.StatusOK}
	ok := false
	if err != nil {
		e.HTTPStatus, e.Code = statusAndCode(err)
		e.Outcome, e.Error = OutcomeUnknown, shortError(err)
	} else if balance, perr := wallet.Balance.Uint64(); perr != nil {
		// A balance that is not a whole non-negative number: the checker reports it.
		e.Outcome, e.Code, e.Error = OutcomeUnknown, codeBadBalance, perr.Error()
	} else {
		e.Outcome, e.Balance, ok = OutcomeRead, balance, true
		if held, err := wallet.Held.Uint64(); err == nil {
			e.Held = held // a cross-shard prepare's hold while it runs; the checker bounds it
		}
	}
	if !ok {
		w.Stats.ReadErrors.Add(1)
	}
	w.rec.Record(e)
	return wallet, ok
}

// codeBadBalance marks a read whose balance did not parse as a whole non-negative number.
const codeBadBalance = "BadBalance"

// Snapshot pauses the clients and readers (waiting for their requests in flight), then reads
// every balance twice from one node until two consecutive collects agree on every wallet's
// balance and update time: then no write landed between them, and the collect is a snapshot
// whose total the checker compares with the issued total. It returns whether it got one.
//
// Before that it drains: no client starts a new transfer, and the snapshot waits (drainMax)
// until every cross-shard transfer started has a definitive answer. A cross-shard transaction
// is answered only once every participant applied it, so then none is half-applied and the
// balances must sum to the issued total; a single-shard one is atomic, and the gate keeps
// its requests out of the collects.
func (w *Workload) Snapshot(rng *rand.Rand, reason string) bool {
	w.admit.Lock()
	w.draining = true
	w.admit.Unlock()
	defer func() {
		w.admit.Lock()
		w.draining = false
		w.resume.Broadcast()
		w.admit.Unlock()
	}()
	drainStart := w.rec.Now()
	deadline := time.Now().Add(drainMax)
	for {
		w.admit.Lock()
		open := w.openCross
		w.admit.Unlock()
		if open == 0 {
			break
		}
		if time.Now().After(deadline) {
			w.Stats.SnapshotsFailed.Add(1)
			w.rec.Record(Event{TimeNs: w.rec.Now(), Type: EventNote, Process: runnerProcess,
				Detail: fmt.Sprintf("snapshot: %d cross-shard transfers still without a definitive answer after %v (%s)", open, drainMax, reason)})
			return false
		}
		time.Sleep(drainPoll)
	}
	if waited := time.Duration(w.rec.Now() - drainStart); waited > time.Second {
		w.rec.Record(Event{TimeNs: w.rec.Now(), Type: EventNote, Process: runnerProcess,
			Detail: fmt.Sprintf("snapshot: waited %v for the cross-shard transfers in flight (%s)", waited.Round(time.Millisecond), reason)})
	}
	w.gate.Lock()
	defer w.gate.Unlock()
	node := w.node(rng)
	collect := func() (map[string]client.Wallet, bool) {
		out := make(map[string]client.Wallet, len(w.Wallets))
		for _, id := range w.Wallets {
			wallet, ok := w.read(runnerProcess, id, node, false)
			if !ok {
				return nil, false
			}
			out[id] = *wallet
		}
		return out, true
	}
	previous, ok := collect()
	for i := 1; ok && i < snapshotCollectsMax; i++ {
		current, ok2 := collect()
		if !ok2 {
			break
		}
		if sameCollect(previous, current) {
			balances := make(map[string]uint64, len(current))
			var total, held uint64
			for id, wallet := range current {
				balances[id], _ = wallet.Balance.Uint64()
				total += balances[id]
				h, err := wallet.Held.Uint64()
				if err != nil {
					h = math.MaxUint64 // unreadable: the checker reports it with the rest
				}
				held += h
			}
			supply := ""
			request, cancel := context.WithTimeout(context.Background(), requestTimeout)
			if asset, err := w.client.GetAsset(request, node.AdminURL, w.ProjectID, assetID); err == nil {
				supply = string(asset.Supply)
			}
			cancel()
			w.rec.Record(Event{TimeNs: w.rec.Now(), Type: EventSnapshot, Process: runnerProcess, Node: node.ID,
				Balances: balances, Total: total, Held: held, Supply: supply, Detail: reason})
			w.Stats.Snapshots.Add(1)
			return true
		}
		previous = current
	}
	w.Stats.SnapshotsFailed.Add(1)
	w.rec.Record(Event{TimeNs: w.rec.Now(), Type: EventNote, Process: runnerProcess, Node: node.ID,
		Detail: "snapshot: no two consecutive collects agreed (" + reason + ")"})
	return false
}

func sameCollect(a, b map[string]client.Wallet) bool {
	for id, x := range a {
		if y, ok := b[id]; !ok || x.Balance != y.Balance || x.UpdatedAt != y.UpdatedAt {
			return false
		}
	}
	return len(a) == len(b)
}

// ResolvePending retries, after the cluster healed, every transfer whose outcome was unknown
// when clients stopped, until each answer is definitive or ctx ends.
func (w *Workload) ResolvePending(ctx context.Context) int {
	w.mu.Lock()
	pending := w.pending
	w.pending = nil
	w.mu.Unlock()
	rng := rand.New(rand.NewPCG(w.Seed, 0x7e5))
	left := 0
	for i := range pending {
		outcome, _ := w.drive(ctx, rng, &pending[i], attemptsMax)
		if outcome == OutcomeUnknown {
			left++
			continue
		}
		w.Stats.Unresolved.Add(-1)
		w.count(outcome, &pending[i])
	}
	return left
}

// sleepCtx waits d or until ctx ends (then it returns ctx's error).
func sleepCtx(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}
