// Package httpapitest provides httpapi.Backend implementations for tests: LedgerBackend applies
// commands straight to a real state machine with the accounting core (no Raft), FakeBackend answers with whatever a test
// sets. It must never be imported outside tests.
package httpapitest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/gigaledger/gigaledger/backend"
	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/gigawallet"
	"github.com/gigaledger/gigaledger/fsm/gigpay"
	"github.com/gigaledger/gigaledger/fsm/ledger"
	"github.com/gigaledger/gigaledger/httpapi"
)

// ClockStartMs is the time LedgerBackend stamps on its first batch: 2024-01-01T00:00:00Z.
const ClockStartMs int64 = 1704067200000

// LedgerBackend is an httpapi.Backend over a real machine in a test's temporary directory.
// Each Propose is one batch of one command, applied under a mutex with the next log index and
// the backend's clock, which only moves when the test calls Advance. Reads see every applied
// batch, so they are trivially linearizable.
type LedgerBackend struct {
	// Machine is the state machine, Ledger its accounting core and GigaWallet its GigaWallet
	// family; tests may query them directly.
	Machine    *fsm.Machine
	Ledger     *ledger.Ledger
	GigaWallet *gigawallet.Reader
	GigPay     *gigpay.Reader

	mu        sync.Mutex
	index     uint64
	clockMs   int64
	proposals int
}

// NewLedgerBackend opens a fresh ledger in t.TempDir() and closes it when the test ends.
func NewLedgerBackend(t testing.TB) *LedgerBackend {
	t.Helper()
	reg := fsm.NewRegistry()
	core := ledger.Register(reg)
	family := gigawallet.Register(reg, core)
	pay := gigpay.Register(reg, core)
	machine, err := fsm.Open(t.TempDir(), nil, reg)
	if err != nil {
		t.Fatalf("open ledger: %v", err)
	}
	t.Cleanup(func() {
		if err := machine.Close(); err != nil {
			t.Errorf("close ledger: %v", err)
		}
	})
	b := &LedgerBackend{Machine: machine, Ledger: core.Of(machine), GigaWallet: family.Of(machine), GigPay: pay.Of(machine),
		clockMs: ClockStartMs}
	// As a new shard's leader does first (cmd/gigaledger duties): this binary's rules hold.
	b.index++
	machine.ApplyBatch(b.index, b.clockMs, [][]byte{fsm.EncodeCommand(&fsm.RaiseRules{Version: fsm.RulesVersion})})
	return b
}

// Propose applies the command as the next log entry and returns its result.
func (b *LedgerBackend) Propose(ctx context.Context, env fsm.Envelope) (*fsm.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("propose: %w", httpapi.ErrUnavailable)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.index++
	b.proposals++
	results := b.Machine.ApplyBatch(b.index, b.clockMs, [][]byte{fsm.EncodeEnvelope(env)})
	if len(results) != 1 {
		return nil, fmt.Errorf("apply batch %d: %d results for one command", b.index, len(results))
	}
	result, ok := results[0].(*fsm.Result)
	if !ok {
		return nil, fmt.Errorf("apply batch %d: result is %T", b.index, results[0])
	}
	return result, nil
}

// ProposeTransactions applies the transactions as one TransactBatch, the next log entry (a
// one-shard ledger: every transaction is in the one group).
func (b *LedgerBackend) ProposeTransactions(ctx context.Context, projectID string, transactions []ledger.Transact) []backend.Outcome {
	outcomes := make([]backend.Outcome, len(transactions))
	result, err := b.Propose(ctx, fsm.Envelope{Command: &ledger.TransactBatch{ProjectID: projectID, Items: transactions}})
	var value *ledger.TransactBatchResult
	if err == nil && result.Err == nil {
		var ok bool
		if value, ok = result.Value.(*ledger.TransactBatchResult); !ok || len(value.Items) != len(transactions) {
			err = fmt.Errorf("batch of %d answered %T", len(transactions), result.Value)
		}
	}
	for i := range outcomes {
		switch {
		case err != nil:
			outcomes[i].Err = err
		case result.Err != nil:
			outcomes[i].Result = &fsm.Result{Op: ledger.OpTransact, Err: result.Err}
		default:
			outcomes[i].Result = value.ItemResult(i)
		}
	}
	return outcomes
}

// Read returns the machine's readers.
func (b *LedgerBackend) Read(ctx context.Context) (httpapi.Reader, error) {
	return machineReader{b.Ledger, b.GigaWallet, b.GigPay, b.Machine}, nil
}

// WaitForEvents returns once the machine's outbox holds an event above after[0], or ctx ends.
func (b *LedgerBackend) WaitForEvents(ctx context.Context, after []uint64) error {
	if len(after) != 1 {
		return fmt.Errorf("wait for events of %d shards; the backend has one", len(after))
	}
	changed := b.Machine.EventsChanged()
	if _, last, err := b.Machine.OutboxRange(); err != nil || last > after[0] {
		return err
	}
	select {
	case <-changed:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// machineReader is one machine's readers: the accounting core's and the GigaWallet family's,
// and the outbox of a one-shard cluster.
type machineReader struct {
	*ledger.Ledger
	*gigawallet.Reader
	gigpay  *gigpay.Reader
	machine *fsm.Machine
}

// GetPayFrom implements httpapi.Reader: one shard holds every account.
func (r machineReader) GetPayFrom(projectID, _, invoiceID string) (*gigawallet.Payment, error) {
	return r.Reader.GetPayFrom(projectID, invoiceID)
}

// GetToken implements httpapi.Reader.
func (r machineReader) GetToken(projectID, tokenID string) (*gigpay.Token, error) {
	return r.gigpay.GetToken(projectID, tokenID)
}

// GetTokenByString implements httpapi.Reader.
func (r machineReader) GetTokenByString(projectID, token string) (*gigpay.Token, error) {
	return r.gigpay.GetTokenByString(projectID, token)
}

// GetGigPayPayment implements httpapi.Reader.
func (r machineReader) GetGigPayPayment(projectID, paymentID string) (*gigpay.Payment, error) {
	return r.gigpay.GetPayment(projectID, paymentID)
}

// ListGigPayPayments implements httpapi.Reader: the one shard's page, merged as a cluster's.
func (r machineReader) ListGigPayPayments(projectID string, q gigpay.PaymentQuery) ([]gigpay.Payment, []byte, bool, error) {
	page, err := r.gigpay.ListPayments(projectID, &q)
	if err != nil {
		return nil, nil, false, err
	}
	items, next, hasMore := gigpay.MergePages(&q, []*gigpay.PaymentPage{page})
	return items, next, hasMore, nil
}

// ShardCount is 1: the backend is one machine.
func (r machineReader) ShardCount() int { return 1 }

// ListSubscriptions implements httpapi.Reader.
func (r machineReader) ListSubscriptions() ([]fsm.Subscription, error) {
	return r.machine.Subscriptions()
}

// ListDeadLetters implements httpapi.Reader.
func (r machineReader) ListDeadLetters(shardID int, subscriber string, after uint64, limit int) ([]fsm.DeadLetter, error) {
	if shardID != 0 {
		return nil, fmt.Errorf("httpapitest: no shard %d", shardID)
	}
	return r.machine.DeadLetters(subscriber, after, limit)
}

// ListEvents reads the machine's outbox with each event's subject resolved as
// cluster/routing resolves it on the shard.
func (r machineReader) ListEvents(shardID int, after uint64, limit int) (*backend.ShardEvents, error) {
	if shardID != 0 || limit < 0 || limit > backend.EventsMaxCount {
		return nil, fmt.Errorf("list events of shard %d, limit %d", shardID, limit)
	}
	first, last, err := r.machine.OutboxRange()
	if err != nil {
		return nil, err
	}
	part := &backend.ShardEvents{First: first, Last: last}
	if limit == 0 {
		return part, nil
	}
	events, err := r.machine.Events(after, limit)
	if err != nil {
		return nil, err
	}
	for _, ev := range events {
		e := backend.Event{Sequence: ev.Sequence, TimeMs: ev.Time, Type: ev.Type}
		var ok bool
		if e.Subject, ok, err = r.Ledger.EventSubject(ev); !ok {
			if e.Subject, ok, err = gigawallet.EventSubject(ev); !ok {
				e.Subject, _, err = gigpay.EventSubject(ev)
			}
		}
		if err != nil {
			return nil, err
		}
		if invoice, isInvoice := e.Subject.(*gigawallet.Invoice); isInvoice {
			e.Account, _ = r.Reader.GetAccount(invoice.ProjectID, invoice.ForeignID)
		}
		part.Events = append(part.Events, e)
	}
	return part, nil
}

// Advance moves the clock stamped on later batches by ms milliseconds.
func (b *LedgerBackend) Advance(ms int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.clockMs += ms
}

// NowMs returns the time the next batch will carry.
func (b *LedgerBackend) NowMs() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.clockMs
}

// Proposals returns how many commands were proposed so far: a test that sends bad input checks
// that it did not move.
func (b *LedgerBackend) Proposals() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.proposals
}

// FakeBackend answers with its fields: ProposeErr or ProposeResult for proposals, ReadErr or
// Reader for reads. It counts calls.
type FakeBackend struct {
	ProposeResult *fsm.Result
	ProposeErr    error
	Reader        httpapi.Reader
	ReadErr       error

	mu               sync.Mutex
	proposals, reads int
}

// ErrNoReader is what FakeBackend.Read returns when neither Reader nor ReadErr is set.
var ErrNoReader = errors.New("httpapitest: FakeBackend has no Reader")

// Propose returns ProposeResult, ProposeErr.
func (f *FakeBackend) Propose(ctx context.Context, env fsm.Envelope) (*fsm.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.proposals++
	return f.ProposeResult, f.ProposeErr
}

// ProposeTransactions answers every transaction with ProposeResult, ProposeErr; it counts as
// one proposal.
func (f *FakeBackend) ProposeTransactions(ctx context.Context, projectID string, transactions []ledger.Transact) []backend.Outcome {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.proposals++
	outcomes := make([]backend.Outcome, len(transactions))
	for i := range outcomes {
		outcomes[i] = backend.Outcome{Result: f.ProposeResult, Err: f.ProposeErr}
	}
	return outcomes
}

// Read returns Reader, ReadErr.
func (f *FakeBackend) Read(ctx context.Context) (httpapi.Reader, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	if f.ReadErr == nil && f.Reader == nil {
		return nil, ErrNoReader
	}
	return f.Reader, f.ReadErr
}

// WaitForEvents waits for ctx to end: the fake never has new events.
func (f *FakeBackend) WaitForEvents(ctx context.Context, after []uint64) error {
	<-ctx.Done()
	return ctx.Err()
}

// Calls returns how many proposals and reads the fake answered.
func (f *FakeBackend) Calls() (proposals, reads int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.proposals, f.reads
}

// Compile-time checks: the real ledger is a Reader, both backends are Backends.
var (
	_ httpapi.Reader  = machineReader{}
	_ httpapi.Backend = (*LedgerBackend)(nil)
	_ httpapi.Backend = (*FakeBackend)(nil)
)
