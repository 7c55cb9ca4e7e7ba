package faults

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/ledger"
)

// The model-based test: random command sequences go both to a real ledger.Ledger (applied as
// Raft would, in batches of one or more commands) and to refModel, a deliberately plain
// reimplementation of the Cloud Wallet rules written from docs/cloudwallet-api.md and the
// DESIGN's ledger model. Every result (error code, transaction status, failed operation,
// duplicate answers) and, after every batch, every wallet's balance and status must agree.

// Model-test sizes.
const (
	modelSequences      = 40  // random sequences per run (each its own ledger)
	modelBatchesMax     = 150 // batches per sequence
	modelBatchCommands  = 4   // commands per batch, at most
	modelCustomers      = 4
	modelWalletsMax     = 12
	modelAmountMax      = 60
	modelOperationsMax  = 4
	modelReferencesPool = 40 // references drawn from a small pool so that duplicates happen
)

// refWallet is the model's wallet.
type refWallet struct {
	id, customer, asset string
	status              ledger.WalletStatus
	balance             uint64
}

// refTx is the model's stored transaction.
type refTx struct {
	id        string
	ops       []ledger.Operation
	completed bool
}

// refModel is the plain reference: maps and loops, no cleverness.
type refModel struct {
	wallets    map[string]*refWallet
	order      []string        // wallet IDs in creation order
	customers  map[string]bool // suspended?
	references map[string]*refTx
}

// refResult is what the model expects of one command.
type refResult struct {
	code        fsm.ErrorCode // "" = success
	txStatus    ledger.TransactionStatus
	failedIndex int
	priorTxID   string // duplicates and mismatches name the stored transaction
	recordedRef string // a recorded transaction: the model adopts the ID the ledger gave it
}

func newRefModel() *refModel {
	return &refModel{wallets: map[string]*refWallet{}, customers: map[string]bool{},
		references: map[string]*refTx{}}
}

func (m *refModel) createWallet(id, customer, asset string) refResult {
	if suspended, ok := m.customers[customer]; !ok {
		return refResult{code: ledger.CodeCustomerNotFound}
	} else if suspended {
		return refResult{code: ledger.CodeCustomerSuspended}
	}
	m.wallets[id] = &refWallet{id: id, customer: customer, asset: asset, status: ledger.WalletOpen}
	m.order = append(m.order, id)
	return refResult{}
}

func (m *refModel) setStatus(id string, status ledger.WalletStatus) refResult {
	w := m.wallets[id]
	switch {
	case w == nil:
		return refResult{code: ledger.CodeWalletNotFound}
	case w.status == status:
		return refResult{}
	case w.status == ledger.WalletClosed:
		return refResult{code: ledger.CodeInvalidStatusTransition}
	case status == ledger.WalletClosed && w.balance != 0:
		return refResult{code: ledger.CodeWalletNotEmpty}
	case status == ledger.WalletOpen && m.customers[w.customer]:
		return refResult{code: ledger.CodeCustomerSuspended}
	}
	w.status = status
	return refResult{}
}

func (m *refModel) suspend(customer string) refResult {
	if _, ok := m.customers[customer]; !ok {
		return refResult{code: ledger.CodeCustomerNotFound}
	}
	m.customers[customer] = true
	for _, id := range m.order {
		if w := m.wallets[id]; w.customer == customer && w.status == ledger.WalletOpen {
			w.status = ledger.WalletSuspendedStatus
		}
	}
	return refResult{}
}

func (m *refModel) resume(customer string, walletIDs []string) refResult {
	if _, ok := m.customers[customer]; !ok {
		return refResult{code: ledger.CodeCustomerNotFound}
	}
	for _, id := range walletIDs {
		w := m.wallets[id]
		if w == nil || w.customer != customer {
			return refResult{code: ledger.CodeWalletNotFound}
		}
		if w.status == ledger.WalletClosed {
			return refResult{code: ledger.CodeInvalidStatusTransition}
		}
	}
	m.customers[customer] = false
	for _, id := range walletIDs {
		m.wallets[id].status = ledger.WalletOpen
	}
	return refResult{}
}

// transact follows the contract: validation, then the reference, then structure (wallets
// exist, one asset per transfer) without recording; then operations in order on working
// balances, failing (and recording the failure) at the first unusable wallet or short balance.
//
// The FSM assigns transaction IDs (prefix + shard sequence), so the model learns a recorded
// transaction's ID from the ledger's answer (adopt) and from then on checks that duplicates
// name it.
func (m *refModel) transact(ref string, ops []ledger.Operation) refResult {
	for _, op := range ops {
		if op.Amount.IsZero() {
			return refResult{code: fsm.CodeInvalidArgument}
		}
		if op.Type == ledger.OperationTransfer && (op.From == "" || op.To == "" || op.From == op.To) {
			return refResult{code: fsm.CodeInvalidArgument}
		}
	}
	if prior := m.references[ref]; prior != nil {
		if slices.Equal(prior.ops, ops) {
			return refResult{code: ledger.CodeDuplicateReferenceID, priorTxID: prior.id}
		}
		return refResult{code: ledger.CodeReferenceIDMismatch, priorTxID: prior.id}
	}
	for _, op := range ops {
		var from, to *refWallet
		if op.From != "" {
			if from = m.wallets[op.From]; from == nil {
				return refResult{code: ledger.CodeWalletNotFound}
			}
		}
		if op.To != "" {
			if to = m.wallets[op.To]; to == nil {
				return refResult{code: ledger.CodeWalletNotFound}
			}
		}
		if from != nil && to != nil && from.asset != to.asset {
			return refResult{code: ledger.CodeAssetMismatch}
		}
	}
	working := map[string]uint64{}
	balance := func(id string) uint64 {
		if v, ok := working[id]; ok {
			return v
		}
		return m.wallets[id].balance
	}
	failed := func(i int, code fsm.ErrorCode) refResult {
		m.references[ref] = &refTx{ops: ops}
		return refResult{code: code, txStatus: ledger.TransactionFailed, failedIndex: i, recordedRef: ref}
	}
	for i, op := range ops {
		for _, id := range []string{op.From, op.To} {
			if id == "" {
				continue
			}
			switch m.wallets[id].status {
			case ledger.WalletSuspendedStatus:
				return failed(i, ledger.CodeWalletSuspended)
			case ledger.WalletClosed:
				return failed(i, ledger.CodeWalletClosed)
			}
		}
		amount := op.Amount.Lo
		if op.From != "" {
			if balance(op.From) < amount {
				return failed(i, ledger.CodeInsufficientFunds)
			}
			working[op.From] = balance(op.From) - amount
		}
		if op.To != "" {
			working[op.To] = balance(op.To) + amount
		}
	}
	for id, v := range working {
		m.wallets[id].balance = v
	}
	m.references[ref] = &refTx{ops: ops, completed: true}
	return refResult{txStatus: ledger.TransactionCompleted, failedIndex: -1, recordedRef: ref}
}

// modelGen draws commands for one sequence and applies them to the model as it goes.
type modelGen struct {
	rng    *rand.Rand
	model  *refModel
	nextTx int
	nextW  int
}

func (g *modelGen) walletID() string {
	// Now and then a wallet that does not exist.
	if len(g.model.order) == 0 || g.rng.IntN(20) == 0 {
		return fmt.Sprintf("ghost%d", g.rng.IntN(3))
	}
	return g.model.order[g.rng.IntN(len(g.model.order))]
}

func (g *modelGen) amount() fsm.Amount {
	if g.rng.IntN(40) == 0 {
		return fsm.Amount{} // zero: invalid
	}
	return fsm.AmountFromUint64(1 + g.rng.Uint64N(modelAmountMax))
}

// next returns one command and what the model expects of it.
func (g *modelGen) next(project string) (fsm.Command, refResult) {
	m := g.model
	customer := fmt.Sprintf("c%d", g.rng.IntN(modelCustomers))
	switch roll := g.rng.IntN(100); {
	case roll < 8 && len(m.order) < modelWalletsMax:
		g.nextW++
		id := fmt.Sprintf("w%d", g.nextW)
		asset := []string{"usd", "eur"}[g.rng.IntN(2)]
		return &ledger.CreateWallet{ProjectID: project, WalletID: id, AssetID: asset, CustomerID: customer},
			m.createWallet(id, customer, asset)
	case roll < 13:
		status := ledger.WalletStatus(1 + g.rng.IntN(3))
		if status == ledger.WalletClosed && g.rng.IntN(3) != 0 {
			status = ledger.WalletOpen // closing is final: keep it rare
		}
		id := g.walletID()
		return &ledger.SetWalletStatus{ProjectID: project, WalletID: id, Status: status}, m.setStatus(id, status)
	case roll < 16:
		return &ledger.SuspendCustomer{ProjectID: project, CustomerID: customer}, m.suspend(customer)
	case roll < 20:
		var ids []string
		for _, id := range m.order {
			if m.wallets[id].customer == customer && g.rng.IntN(2) == 0 {
				ids = append(ids, id)
			}
		}
		return &ledger.ResumeCustomer{ProjectID: project, CustomerID: customer, WalletIDs: ids}, m.resume(customer, ids)
	}
	g.nextTx++
	ref := fmt.Sprintf("ref%d", g.rng.IntN(modelReferencesPool)+g.nextTx/4)
	var ops []ledger.Operation
	if prior := m.references[ref]; prior != nil && g.rng.IntN(2) == 0 {
		ops = append(ops, prior.ops...) // a retry with the same body
	} else {
		for i := 0; i <= g.rng.IntN(modelOperationsMax); i++ {
			switch g.rng.IntN(5) {
			case 0:
				ops = append(ops, ledger.Operation{Type: ledger.OperationIssue, To: g.walletID(), Amount: g.amount()})
			case 1:
				ops = append(ops, ledger.Operation{Type: ledger.OperationRedeem, From: g.walletID(), Amount: g.amount()})
			default:
				ops = append(ops, ledger.Operation{Type: ledger.OperationTransfer, From: g.walletID(), To: g.walletID(), Amount: g.amount()})
			}
		}
	}
	return &ledger.Transact{ProjectID: project, IDPrefix: "t", ReferenceID: ref, Operations: ops},
		m.transact(ref, ops)
}

func TestLedgerMatchesReferenceModel(t *testing.T) {
	seen := map[fsm.ErrorCode]int{}
	for seq := 0; seq < modelSequences; seq++ {
		t.Run(fmt.Sprintf("seed%d", seq), func(t *testing.T) { runModelSequence(t, uint64(seq), seen) })
	}
	// The generator must reach every rule it is meant to test; "" is a success.
	for _, code := range []fsm.ErrorCode{"", ledger.CodeInsufficientFunds, ledger.CodeWalletSuspended, ledger.CodeWalletClosed,
		ledger.CodeDuplicateReferenceID, ledger.CodeReferenceIDMismatch, ledger.CodeWalletNotFound, ledger.CodeAssetMismatch,
		fsm.CodeInvalidArgument, ledger.CodeCustomerSuspended, ledger.CodeWalletNotEmpty, ledger.CodeInvalidStatusTransition} {
		if seen[code] == 0 {
			t.Errorf("no command answered %q: the generator misses a rule", code)
		}
	}
	t.Logf("answers: %v", seen)
}

// runModelSequence runs one random sequence; seen counts the answers by code.
func runModelSequence(t *testing.T, seed uint64, seen map[fsm.ErrorCode]int) {
	machine, store, err := ledger.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer machine.Close()
	const project = "p"
	index, nowMs := uint64(0), int64(1_700_000_000_000)
	type batchRecord struct {
		index uint64
		nowMs int64
		raw   [][]byte
	}
	var batches []batchRecord
	apply := func(cmds []fsm.Command) []*fsm.Result {
		raw := make([][]byte, len(cmds))
		for i, c := range cmds {
			raw[i] = fsm.EncodeCommand(c)
		}
		index++
		nowMs += 7
		batches = append(batches, batchRecord{index, nowMs, raw})
		out := machine.ApplyBatch(index, nowMs, raw)
		results := make([]*fsm.Result, len(out))
		for i, r := range out {
			results[i] = r.(*fsm.Result)
		}
		return results
	}
	setup := []fsm.Command{
		&ledger.CreateProject{ProjectID: project, Name: "model"},
		&ledger.CreateAsset{ProjectID: project, AssetID: "usd", Name: "US dollar", Code: "USD", Fractions: 100},
		&ledger.CreateAsset{ProjectID: project, AssetID: "eur", Name: "Euro", Code: "EUR", Fractions: 100},
	}
	g := &modelGen{rng: rand.New(rand.NewPCG(seed, 0x30de1)), model: newRefModel()}
	for c := 0; c < modelCustomers; c++ {
		id := fmt.Sprintf("c%d", c)
		setup = append(setup, &ledger.UpsertCustomer{ProjectID: project, CustomerID: id, Name: id, SetName: true})
		g.model.customers[id] = false
	}
	for i, r := range apply(setup) {
		if r.Err != nil {
			t.Fatalf("setup %d: %v", i, r.Err)
		}
	}
	for batch := 0; batch < modelBatchesMax; batch++ {
		n := 1 + g.rng.IntN(modelBatchCommands)
		cmds := make([]fsm.Command, n)
		want := make([]refResult, n)
		for i := range cmds {
			cmds[i], want[i] = g.next(project)
		}
		for i, got := range apply(cmds) {
			if t, ok := got.Value.(*ledger.Transaction); want[i].recordedRef != "" && ok {
				g.model.references[want[i].recordedRef].id = t.ID
			}
			if got.Err != nil {
				seen[got.Err.Code]++
			} else {
				seen[""]++
			}
			compareResult(t, fmt.Sprintf("batch %d command %d (%T %+v)", batch, i, cmds[i], cmds[i]), got, want[i])
		}
		compareState(t, fmt.Sprintf("after batch %d", batch), store, project, g.model)
		if t.Failed() {
			t.Fatalf("seed %d: stopping at the first disagreement", seed)
		}
	}
	if err := store.CheckInvariants(); err != nil {
		t.Fatalf("invariants: %v", err)
	}
	// Determinism: the same log applied to a fresh ledger gives the same digest.
	replica, _, err := ledger.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer replica.Close()
	for _, b := range batches {
		replica.ApplyBatch(b.index, b.nowMs, b.raw)
	}
	d1, err1 := machine.Digest()
	d2, err2 := replica.Digest()
	if err1 != nil || err2 != nil || d1 != d2 {
		t.Fatalf("replaying the log gives digest %x (%v), original %x (%v)", d2, err2, d1, err1)
	}
}

func compareResult(t *testing.T, what string, got *fsm.Result, want refResult) {
	t.Helper()
	gotCode := fsm.ErrorCode("")
	if got.Err != nil {
		gotCode = got.Err.Code
	}
	if gotCode != want.code {
		t.Errorf("%s: code %q, model says %q (%v)", what, gotCode, want.code, got.Err)
		return
	}
	tx, _ := got.Value.(*ledger.Transaction)
	switch {
	case want.priorTxID != "":
		if tx == nil || tx.ID != want.priorTxID {
			t.Errorf("%s: duplicate names %+v, model says %s", what, tx, want.priorTxID)
		}
	case want.txStatus != 0:
		if tx == nil || tx.Status != want.txStatus || tx.FailedOperationIndex != want.failedIndex {
			t.Errorf("%s: transaction %+v, model says status %v failed at %d", what, tx, want.txStatus, want.failedIndex)
		}
	}
}

func compareState(t *testing.T, what string, store *ledger.Ledger, project string, m *refModel) {
	t.Helper()
	supply := map[string]uint64{}
	for _, id := range m.order {
		w, err := store.GetWallet(project, id)
		if err != nil {
			t.Errorf("%s: wallet %s: %v", what, id, err)
			continue
		}
		want := m.wallets[id]
		if w.Balance != fsm.AmountFromUint64(want.balance) || w.Status != want.status {
			t.Errorf("%s: wallet %s balance %s status %v, model %d %v", what, id, w.Balance, w.Status, want.balance, want.status)
		}
		supply[want.asset] += want.balance
	}
	for _, asset := range []string{"usd", "eur"} {
		a, err := store.GetAsset(project, asset)
		if err != nil {
			t.Errorf("%s: asset %s: %v", what, asset, err)
			continue
		}
		if a.Supply != fsm.AmountFromUint64(supply[asset]) {
			t.Errorf("%s: asset %s supply %s, model's balances sum to %d", what, asset, a.Supply, supply[asset])
		}
	}
}
