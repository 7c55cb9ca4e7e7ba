package faults

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gigaledger/gigaledger/client"
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
)

// Workload is the bank: W customer wallets of one asset, a known total issued at the start, C
// clients moving random amounts between random wallets, and R readers reading balances. Every
// request and answer goes to the history.
type Workload struct {
	ProjectID      string
	Wallets        []string
	InitialBalance uint64
	Seed           uint64

	cluster *Cluster
	client  *Client
	rec     *Recorder
	// gate: each request holds it shared; a quiescent snapshot holds it exclusively, so that
	// no request of ours is in flight while it collects.
	gate sync.RWMutex

	Stats WorkloadStats

	mu      sync.Mutex
	pending []pendingTransfer // transfers whose outcome was still unknown when clients stopped
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
}

type pendingTransfer struct {
	process     int
	referenceID string
	from, to    string
	amount      uint64
	attempts    int
}

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
		_, err := api.CreateAsset(ctx, w.ProjectID, client.CreateAssetRequest{ID: "coin", Name: "Coin", Code: "COIN", Fractions: 100})
		return err
	}, exists)
	if err != nil {
		return 0, err
	}
	// One customer owns every wallet: the routing key is (project, customer), so all wallets
	// live in one shard — one Raft group under test — and no transfer is cross-shard (which the
	// API refuses with 422 CrossShardTransaction).
	const customer = "bank"
	err = setup("customer", func(ctx context.Context, api *client.Client) error {
		_, err := api.UpsertCustomer(ctx, w.ProjectID, customer, client.CustomerFields{Name: client.String(customer)})
		return err
	}, never)
	if err != nil {
		return 0, err
	}
	for i := 0; i < walletCount; i++ {
		// Wallet creation is not idempotent: a retry after an unknown outcome may leave an
		// extra empty wallet, which the checks ignore (they follow the wallets listed here).
		err = setup("wallet", func(ctx context.Context, api *client.Client) error {
			wallet, err := api.CreateWallet(ctx, w.ProjectID, client.CreateWalletRequest{CustomerID: customer, AssetID: "coin"})
			if err == nil {
				w.Wallets = append(w.Wallets, wallet.ID)
			}
			return err
		}, never)
		if err != nil {
			return 0, err
		}
		if w.Wallets[len(w.Wallets)-1] == "" {
			return 0, fmt.Errorf("setup: wallet answer has no id")
		}
	}
	var total uint64
	for chunk := 0; chunk*operationsPerSetupTransaction < len(w.Wallets); chunk++ {
		var ops []client.Operation
		for _, id := range w.Wallets[chunk*operationsPerSetupTransaction : min(len(w.Wallets), (chunk+1)*operationsPerSetupTransaction)] {
			ops = append(ops, client.Operation{Type: "issue", To: id, Amount: client.AmountFromUint64(w.InitialBalance)})
			total += w.InitialBalance
		}
		ref := fmt.Sprintf("setup-issue-%d", chunk)
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

// RunClient moves money until stop ends, one transfer at a time, each with a fresh
// referenceId and retried with the same one while its outcome is unknown.
func (w *Workload) RunClient(stop context.Context, process int) {
	rng := rand.New(rand.NewPCG(w.Seed, uint64(process)+1))
	for op := 0; op < opsPerClientMax && stop.Err() == nil; op++ {
		from := rng.IntN(len(w.Wallets))
		to := rng.IntN(len(w.Wallets) - 1)
		if to >= from {
			to++
		}
		t := pendingTransfer{process: process, referenceID: fmt.Sprintf("s%d-c%d-%d", w.Seed, process, op),
			from: w.Wallets[from], to: w.Wallets[to], amount: 1 + rng.Uint64N(transferAmountMax)}
		w.Stats.Attempted.Add(1)
		outcome, sawUnknown := w.drive(stop, rng, &t, attemptsMax)
		if sawUnknown {
			w.Stats.OutcomeUnknown.Add(1)
		}
		w.count(outcome)
		if outcome == OutcomeUnknown {
			w.Stats.Unresolved.Add(1)
			w.mu.Lock()
			w.pending = append(w.pending, t)
			w.mu.Unlock()
		}
	}
}

func (w *Workload) count(outcome Outcome) {
	switch outcome {
	case OutcomeApplied:
		w.Stats.Acknowledged.Add(1)
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
	ops := []client.Operation{{Type: "transfer", From: t.from, To: t.to, Amount: client.AmountFromUint64(t.amount)}}
	sawUnknown := t.attempts > 0 // a pending transfer comes back with unknown attempts
	backoff := retryBackoffMin
	for i := 0; i < maxAttempts; i++ {
		t.attempts++
		node := w.node(rng)
		w.gate.RLock()
		w.rec.Record(Event{TimeNs: w.rec.Now(), Type: EventInvoke, Process: t.process, Op: OpTransfer,
			ReferenceID: t.referenceID, From: t.from, To: t.to, Amount: t.amount, Attempt: t.attempts, Node: node.ID})
		// The request's own timeout, not stop: stopping the workload must not turn an
		// answer into an unknown.
		request, cancel := context.WithTimeout(context.Background(), requestTimeout)
		r := w.client.Transact(request, node.AdminURL, w.ProjectID, t.referenceID, ops)
		cancel()
		w.rec.Record(Event{TimeNs: w.rec.Now(), Type: EventComplete, Process: t.process, Op: OpTransfer,
			ReferenceID: t.referenceID, Attempt: t.attempts, Node: node.ID, Outcome: r.Outcome,
			HTTPStatus: r.Status, Code: r.Code, TxStatus: r.TxStatus, Error: r.Err})
		w.gate.RUnlock()
		w.Stats.Attempts.Add(1)
		switch r.Outcome {
		case OutcomeApplied, OutcomeFailed:
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
func (w *Workload) Snapshot(rng *rand.Rand, reason string) bool {
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
			var total uint64
			for id, wallet := range current {
				balances[id], _ = wallet.Balance.Uint64()
				total += balances[id]
			}
			w.rec.Record(Event{TimeNs: w.rec.Now(), Type: EventSnapshot, Process: runnerProcess, Node: node.ID,
				Balances: balances, Total: total, Detail: reason})
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
		w.count(outcome)
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
