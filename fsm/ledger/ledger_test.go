package ledger

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/gigaledger/gigaledger/fsm"
)

// testLedger applies commands one log entry at a time, like a shard would, and checks the
// invariants from history after the test.
type testLedger struct {
	t      *testing.T
	ledger *machineLedger
	dir    string
	index  uint64
	nowMs  int64
}

func newTestLedger(t *testing.T) *testLedger {
	t.Helper()
	dir := t.TempDir()
	l, err := openTest(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	tl := &testLedger{t: t, ledger: l, dir: dir, nowMs: 1_700_000_000_000}
	t.Cleanup(func() {
		if tl.ledger != nil {
			if err := tl.ledger.CheckInvariants(); err != nil {
				t.Errorf("invariants: %v", err)
			}
			if err := liveWalletsMatchStore(tl.ledger.Ledger); err != nil {
				t.Errorf("live wallets: %v", err)
			}
			tl.ledger.Close()
		}
	})
	return tl
}

// batch applies commands as one log entry and returns their results.
func (tl *testLedger) batch(cmds ...*Command) []*Result {
	tl.t.Helper()
	raw := make([][]byte, len(cmds))
	for i, c := range cmds {
		raw[i] = c.Encode(nil)
	}
	tl.index++
	tl.nowMs += 1000
	out := tl.ledger.ApplyBatch(tl.index, tl.nowMs, raw)
	results := make([]*Result, len(out))
	for i, r := range out {
		results[i] = flatten(r.(*fsm.Result))
	}
	return results
}

func (tl *testLedger) apply(c *Command) *Result { return tl.batch(c)[0] }

// ok applies c and fails the test on a rejection.
func (tl *testLedger) ok(c *Command) *Result {
	tl.t.Helper()
	r := tl.apply(c)
	if r.Err != nil {
		tl.t.Fatalf("%v: unexpected %v", c.Op, r.Err)
	}
	return r
}

// rejects applies c and expects the given code.
func (tl *testLedger) rejects(c *Command, code ErrorCode) *Result {
	tl.t.Helper()
	r := tl.apply(c)
	if r.Err == nil || r.Err.Code != code {
		tl.t.Fatalf("%v: got %v, want %s", c.Op, r.Err, code)
	}
	return r
}

func (tl *testLedger) wallet(project, id string) *Wallet {
	tl.t.Helper()
	w, err := tl.ledger.GetWallet(project, id)
	if err != nil {
		tl.t.Fatal(err)
	}
	return w
}

func (tl *testLedger) balance(project, id string) string {
	return tl.wallet(project, id).Balance.String()
}

func (tl *testLedger) digest() [32]byte {
	tl.t.Helper()
	d, err := tl.ledger.Digest()
	if err != nil {
		tl.t.Fatal(err)
	}
	return d
}

// setup creates project p1 with assets usd and eur, customer c1 and wallets W1 (usd), W2
// (usd), E1 (eur), and system wallet S1 (usd).
func (tl *testLedger) setup() {
	tl.ok(&Command{Op: OpCreateProject, ProjectID: "p1", Name: "shop"})
	tl.ok(&Command{Op: OpCreateAsset, ProjectID: "p1", AssetID: "usd", Name: "US dollar", Code: "USD", Fractions: 100})
	tl.ok(&Command{Op: OpCreateAsset, ProjectID: "p1", AssetID: "eur", Name: "Euro", Code: "EUR", Fractions: 100})
	tl.ok(&Command{Op: OpUpsertCustomer, ProjectID: "p1", CustomerID: "c1", Name: "Alice", SetName: true})
	for _, w := range []struct{ id, asset, customer string }{{"W1", "usd", "c1"}, {"W2", "usd", "c1"}, {"E1", "eur", "c1"}, {"S1", "usd", ""}} {
		tl.ok(&Command{Op: OpCreateWallet, ProjectID: "p1", WalletID: w.id, AssetID: w.asset, CustomerID: w.customer})
	}
}

var txCounter int

func tx(ref string, ops ...Operation) *Command {
	txCounter++
	return &Command{Op: OpTransact, ProjectID: "p1", IDPrefix: "t", ReferenceID: ref, Operations: ops}
}

func amt(v uint64) Amount { return AmountFromUint64(v) }

func issue(to string, v uint64) Operation {
	return Operation{Type: OperationIssue, To: to, Amount: amt(v)}
}
func redeem(from string, v uint64) Operation {
	return Operation{Type: OperationRedeem, From: from, Amount: amt(v)}
}
func transfer(from, to string, v uint64) Operation {
	return Operation{Type: OperationTransfer, From: from, To: to, Amount: amt(v)}
}

// The seed's example: W1 = 5, W2 = 7; "transfer 11 W1→W2, then issue 6 to W1" fails at the
// transfer and changes nothing; "issue 6 to W1, then transfer 11" succeeds.
func TestSeedExampleOrderMatters(t *testing.T) {
	tl := newTestLedger(t)
	tl.setup()
	tl.ok(tx("fund", issue("W1", 5), issue("W2", 7)))
	before := tl.digest()

	r := tl.rejects(tx("wrong-order", transfer("W1", "W2", 11), issue("W1", 6)), CodeInsufficientFunds)
	if r.Transaction == nil || r.Transaction.Status != TransactionFailed || r.Transaction.FailedOperationIndex != 0 {
		t.Fatalf("failed transaction not recorded right: %+v", r.Transaction)
	}
	if tl.balance("p1", "W1") != "5" || tl.balance("p1", "W2") != "7" {
		t.Fatalf("failed transaction changed balances: W1=%s W2=%s", tl.balance("p1", "W1"), tl.balance("p1", "W2"))
	}
	if before == tl.digest() {
		t.Fatal("failed transaction should be recorded in history")
	}

	r = tl.ok(tx("right-order", issue("W1", 6), transfer("W1", "W2", 11)))
	if r.Transaction.Status != TransactionCompleted || r.Transaction.FailedOperationIndex != -1 {
		t.Fatalf("got %+v", r.Transaction)
	}
	if tl.balance("p1", "W1") != "0" || tl.balance("p1", "W2") != "18" {
		t.Fatalf("W1=%s W2=%s, want 0 and 18", tl.balance("p1", "W1"), tl.balance("p1", "W2"))
	}
	entries, _, err := tl.ledger.ListEntries("p1", "W1", TimeRange{0, 1 << 62}, PageRequest{1, 100})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, fmt.Sprintf("%v %s→%s", e.Type, e.Amount, e.BalanceAfter))
	}
	want := []string{"issue 5→5", "issue 6→11", "debit 11→0"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("W1 entries %v, want %v", got, want)
	}
}

func TestTransactionRules(t *testing.T) {
	tl := newTestLedger(t)
	tl.setup()
	tl.ok(&Command{Op: OpCreateProject, ProjectID: "p2", Name: "other"})
	tl.ok(&Command{Op: OpCreateAsset, ProjectID: "p2", AssetID: "usd", Name: "US dollar", Code: "USD", Fractions: 100})
	tl.ok(&Command{Op: OpCreateWallet, ProjectID: "p2", WalletID: "X1", AssetID: "usd"})
	tl.ok(tx("fund", issue("W1", 100), issue("E1", 100)))

	// Structural rejections record nothing and leave the reference unused.
	before := tl.digest()
	tl.rejects(tx("r1", transfer("W1", "nope", 1)), CodeWalletNotFound)
	tl.rejects(tx("r1", transfer("W1", "X1", 1)), CodeWalletNotFound) // another project's wallet
	tl.rejects(tx("r1", transfer("W1", "E1", 1)), CodeAssetMismatch)
	tl.rejects(tx("r1", transfer("W1", "W1", 1)), CodeInvalidArgument)
	tl.rejects(tx("r1", Operation{Type: OperationIssue, To: "W1"}), CodeInvalidArgument) // zero
	tl.rejects(tx("r1", Operation{Type: OperationIssue, From: "W1", To: "W2", Amount: amt(1)}), CodeInvalidArgument)
	tl.rejects(tx("r1", Operation{Type: 9, To: "W1", Amount: amt(1)}), CodeInvalidArgument)
	tl.rejects(tx(""), CodeInvalidArgument)
	tl.rejects(&Command{Op: OpTransact, ProjectID: "nope", IDPrefix: "t", ReferenceID: "r", Operations: []Operation{issue("W1", 1)}}, CodeProjectNotFound)
	if before != tl.digest() {
		t.Fatal("a rejected transaction changed the state")
	}

	// Idempotency: the same reference and body answers the stored transaction; a different
	// body is a mismatch; neither applies again.
	first := tl.ok(tx("pay-1", transfer("W1", "W2", 10)))
	dup := tl.rejects(tx("pay-1", transfer("W1", "W2", 10)), CodeDuplicateReferenceID)
	if dup.Transaction.ID != first.Transaction.ID {
		t.Fatalf("duplicate answered %s, want %s", dup.Transaction.ID, first.Transaction.ID)
	}
	tl.rejects(tx("pay-1", transfer("W1", "W2", 11)), CodeReferenceIDMismatch)
	if tl.balance("p1", "W2") != "10" {
		t.Fatalf("retry applied twice: W2=%s", tl.balance("p1", "W2"))
	}
	// The same reference twice within one log entry: the second is the duplicate.
	rs := tl.batch(tx("pay-2", transfer("W1", "W2", 1)), tx("pay-2", transfer("W1", "W2", 1)))
	if rs[0].Err != nil || rs[1].Err == nil || rs[1].Err.Code != CodeDuplicateReferenceID {
		t.Fatalf("same batch duplicate: %v, %v", rs[0].Err, rs[1].Err)
	}
	// References are per project.
	tl.ok(&Command{Op: OpTransact, ProjectID: "p2", IDPrefix: "p2t", ReferenceID: "pay-1", Operations: []Operation{issue("X1", 1)}})

	// A failed transaction keeps its reference: a retry answers the same failure.
	failed := tl.rejects(tx("big", redeem("W2", 1000)), CodeInsufficientFunds)
	again := tl.rejects(tx("big", redeem("W2", 1000)), CodeDuplicateReferenceID)
	if again.Transaction.ID != failed.Transaction.ID || again.Transaction.Status != TransactionFailed {
		t.Fatalf("retry of failed transaction: %+v", again.Transaction)
	}

	// Suspended and closed wallets cannot take part.
	tl.ok(&Command{Op: OpSetWalletStatus, ProjectID: "p1", WalletID: "W2", Status: WalletSuspendedStatus})
	r := tl.rejects(tx("to-suspended", transfer("W1", "W2", 1)), CodeWalletSuspended)
	if r.Transaction.FailedOperationIndex != 0 {
		t.Fatalf("failed at %d", r.Transaction.FailedOperationIndex)
	}
	tl.ok(&Command{Op: OpSetWalletStatus, ProjectID: "p1", WalletID: "W2", Status: WalletOpen})
	tl.ok(&Command{Op: OpCreateWallet, ProjectID: "p1", WalletID: "W3", AssetID: "usd", CustomerID: "c1"})
	tl.ok(&Command{Op: OpSetWalletStatus, ProjectID: "p1", WalletID: "W3", Status: WalletClosed})
	r = tl.rejects(tx("to-closed", issue("W1", 1), transfer("W1", "W3", 1)), CodeWalletClosed)
	if r.Transaction.FailedOperationIndex != 1 {
		t.Fatalf("failed at %d", r.Transaction.FailedOperationIndex)
	}

	// Redeem, system wallets, and supply.
	tl.ok(tx("fee", transfer("W1", "S1", 5), redeem("S1", 2)))
	if tl.balance("p1", "S1") != "3" {
		t.Fatalf("S1=%s", tl.balance("p1", "S1"))
	}
	a, _ := tl.ledger.GetAsset("p1", "usd")
	if a.Supply.String() != "98" {
		t.Fatalf("usd supply %s, want 98", a.Supply)
	}
}

func TestAmountsNeverWrap(t *testing.T) {
	tl := newTestLedger(t)
	tl.setup()
	maxAmount := Amount{Hi: ^uint64(0), Lo: ^uint64(0)}
	tl.ok(tx("max", Operation{Type: OperationIssue, To: "W1", Amount: maxAmount}))
	if got := tl.balance("p1", "W1"); got != "340282366920938463463374607431768211455" {
		t.Fatalf("W1=%s", got)
	}
	tl.rejects(tx("more", issue("W2", 1)), CodeBalanceOverflow)
	tl.ok(tx("move", transfer("W1", "W2", 1)))
	tl.rejects(tx("back", issue("W2", 1), transfer("W2", "W1", 2)), CodeBalanceOverflow)
}

func TestProjectsAndAssets(t *testing.T) {
	tl := newTestLedger(t)
	tl.ok(&Command{Op: OpCreateProject, ProjectID: "p1", Name: "shop"})
	tl.rejects(&Command{Op: OpCreateProject, ProjectID: "p1", Name: "again"}, CodeProjectExists)
	tl.rejects(&Command{Op: OpCreateProject, ProjectID: "bad/id"}, CodeInvalidArgument)
	tl.rejects(&Command{Op: OpCreateProject, ProjectID: "0123456789012345678901234567890"}, CodeInvalidArgument)
	tl.ok(&Command{Op: OpRenameProject, ProjectID: "p1", Name: "store"})
	tl.rejects(&Command{Op: OpRenameProject, ProjectID: "p9", Name: "x"}, CodeProjectNotFound)

	tl.ok(&Command{Op: OpCreateAsset, ProjectID: "p1", AssetID: "hours", Name: "Day in hours", Code: "DAY", Fractions: 24})
	tl.rejects(&Command{Op: OpCreateAsset, ProjectID: "p1", AssetID: "hours", Name: "x", Code: "X", Fractions: 1}, CodeAssetExists)
	tl.rejects(&Command{Op: OpCreateAsset, ProjectID: "p1", AssetID: "a", Name: "x", Code: "X"}, CodeInvalidArgument)
	tl.rejects(&Command{Op: OpCreateAsset, ProjectID: "p1", AssetID: "a", Name: "x", Code: "ABCDEFGHIJKLMNOPQ", Fractions: 1}, CodeInvalidArgument)
	tl.ok(&Command{Op: OpCreateAsset, ProjectID: "p1", AssetID: "tmp", Name: "Temp", Code: "TMP", Fractions: 1})
	tl.ok(&Command{Op: OpDeleteAsset, ProjectID: "p1", AssetID: "tmp"})
	tl.rejects(&Command{Op: OpDeleteAsset, ProjectID: "p1", AssetID: "tmp"}, CodeAssetNotFound)
	tl.ok(&Command{Op: OpRenameAsset, ProjectID: "p1", AssetID: "hours", Name: "Hours"})

	tl.ok(&Command{Op: OpCreateWallet, ProjectID: "p1", WalletID: "S1", AssetID: "hours"})
	tl.rejects(&Command{Op: OpDeleteAsset, ProjectID: "p1", AssetID: "hours"}, CodeAssetInUse)

	p, err := tl.ledger.GetProject("p1")
	if err != nil || p.Name != "store" || len(p.Assets) != 1 || p.Assets[0].Name != "Hours" || !p.Assets[0].Used {
		t.Fatalf("project %+v, %v", p, err)
	}
	projects, _ := tl.ledger.ListProjects()
	if len(projects) != 1 {
		t.Fatalf("projects %+v", projects)
	}
}

func TestCustomersAndWalletLifecycle(t *testing.T) {
	tl := newTestLedger(t)
	tl.setup()
	// Upsert updates only the fields given.
	tl.ok(&Command{Op: OpUpsertCustomer, ProjectID: "p1", CustomerID: "c1", Description: "vip", SetDescription: true})
	c, _ := tl.ledger.GetCustomer("p1", "c1")
	if c.Name != "Alice" || c.Description != "vip" || c.Status != CustomerActive {
		t.Fatalf("customer %+v", c)
	}
	tl.rejects(&Command{Op: OpUpsertCustomer, ProjectID: "p1", CustomerID: "a/b"}, CodeInvalidArgument)
	tl.rejects(&Command{Op: OpCreateWallet, ProjectID: "p1", WalletID: "Wx", AssetID: "usd", CustomerID: "ghost"}, CodeCustomerNotFound)
	tl.rejects(&Command{Op: OpCreateWallet, ProjectID: "p1", WalletID: "Wx", AssetID: "gold", CustomerID: "c1"}, CodeAssetNotFound)
	tl.rejects(&Command{Op: OpCreateWallet, ProjectID: "p1", WalletID: "W1", AssetID: "usd", CustomerID: "c1"}, CodeWalletExists)
	tl.ok(tx("fund", issue("W1", 5)))

	// Suspend: the customer and all their open wallets; resume: wallets stay suspended unless
	// listed.
	tl.ok(&Command{Op: OpSuspendCustomer, ProjectID: "p1", CustomerID: "c1"})
	for _, id := range []string{"W1", "W2", "E1"} {
		if s := tl.wallet("p1", id).Status; s != WalletSuspendedStatus {
			t.Fatalf("%s is %v after suspend", id, s)
		}
	}
	if tl.wallet("p1", "S1").Status != WalletOpen {
		t.Fatal("suspending a customer touched a system wallet")
	}
	tl.rejects(&Command{Op: OpSetWalletStatus, ProjectID: "p1", WalletID: "W1", Status: WalletOpen}, CodeCustomerSuspended)
	tl.rejects(&Command{Op: OpCreateWallet, ProjectID: "p1", WalletID: "W9", AssetID: "usd", CustomerID: "c1"}, CodeCustomerSuspended)
	tl.rejects(&Command{Op: OpResumeCustomer, ProjectID: "p1", CustomerID: "c1", WalletIDs: []string{"S1"}}, CodeWalletNotFound)
	tl.ok(&Command{Op: OpResumeCustomer, ProjectID: "p1", CustomerID: "c1", WalletIDs: []string{"W2"}})
	if tl.wallet("p1", "W1").Status != WalletSuspendedStatus || tl.wallet("p1", "W2").Status != WalletOpen {
		t.Fatal("resume reopened the wrong wallets")
	}
	tl.ok(&Command{Op: OpSetWalletStatus, ProjectID: "p1", WalletID: "W1", Status: WalletOpen})

	// Close: only empty wallets; closed is final.
	tl.rejects(&Command{Op: OpSetWalletStatus, ProjectID: "p1", WalletID: "W1", Status: WalletClosed}, CodeWalletNotEmpty)
	tl.rejects(&Command{Op: OpSetWalletStatus, ProjectID: "p1", WalletID: "W1", Status: 7}, CodeInvalidArgument)
	tl.ok(&Command{Op: OpSetWalletStatus, ProjectID: "p1", WalletID: "W2", Status: WalletClosed})
	tl.rejects(&Command{Op: OpSetWalletStatus, ProjectID: "p1", WalletID: "W2", Status: WalletOpen}, CodeInvalidStatusTransition)
	tl.ok(&Command{Op: OpSetWalletStatus, ProjectID: "p1", WalletID: "W2", Status: WalletClosed}) // no-op

	// Delete: only once every wallet is closed; closed wallets are kept.
	tl.rejects(&Command{Op: OpDeleteCustomer, ProjectID: "p1", CustomerID: "c1"}, CodeCustomerHasOpenWallets)
	tl.ok(tx("drain", redeem("W1", 5)))
	for _, id := range []string{"W1", "E1"} {
		tl.ok(&Command{Op: OpSetWalletStatus, ProjectID: "p1", WalletID: id, Status: WalletClosed})
	}
	tl.ok(&Command{Op: OpDeleteCustomer, ProjectID: "p1", CustomerID: "c1"})
	if _, err := tl.ledger.GetCustomer("p1", "c1"); err == nil {
		t.Fatal("deleted customer still found")
	}
	if w := tl.wallet("p1", "W1"); w.Status != WalletClosed || w.CustomerID != "c1" {
		t.Fatalf("closed wallet after delete: %+v", w)
	}

	// Wallet metadata and lists.
	tl.ok(&Command{Op: OpRenameWallet, ProjectID: "p1", WalletID: "S1", Name: "fees"})
	tl.ok(&Command{Op: OpDescribeWallet, ProjectID: "p1", WalletID: "S1", Description: "commission"})
	sys, _ := tl.ledger.ListSystemWallets("p1")
	if len(sys) != 1 || sys[0].Name != "fees" || sys[0].Description != "commission" {
		t.Fatalf("system wallets %+v", sys)
	}
}

func TestListsPageAndTimeRange(t *testing.T) {
	tl := newTestLedger(t)
	tl.setup()
	for i := 0; i < 7; i++ {
		tl.ok(&Command{Op: OpUpsertCustomer, ProjectID: "p1", CustomerID: fmt.Sprintf("k%d", i)})
	}
	page, more, err := tl.ledger.ListCustomers("p1", PageRequest{Page: 2, PageSize: 3})
	if err != nil || len(page) != 3 || !more || page[0].ID != "k2" {
		t.Fatalf("page 2: %+v more=%v err=%v", page, more, err)
	}
	page, more, _ = tl.ledger.ListCustomers("p1", PageRequest{Page: 3, PageSize: 3})
	if len(page) != 2 || more {
		t.Fatalf("page 3: %d more=%v", len(page), more)
	}
	var times []int64
	for i := 0; i < 5; i++ {
		r := tl.ok(tx(fmt.Sprintf("t%d", i), issue("W1", uint64(i+1))))
		times = append(times, r.Transaction.CreatedAt)
	}
	txs, more, _ := tl.ledger.ListTransactions("p1", TimeRange{times[1], times[3]}, PageRequest{1, 10})
	if len(txs) != 3 || more || txs[0].ReferenceID != "t1" || txs[2].ReferenceID != "t3" {
		t.Fatalf("range: %d %v", len(txs), more)
	}
	entries, _, _ := tl.ledger.ListEntries("p1", "W1", TimeRange{times[4], times[4]}, PageRequest{1, 10})
	if len(entries) != 1 || entries[0].BalanceAfter.String() != "15" {
		t.Fatalf("entries %+v", entries)
	}
	if _, err := tl.ledger.GetTransaction("p1", txs[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := tl.ledger.GetTransaction("p1", "nope"); err == nil {
		t.Fatal("missing transaction found")
	}
}

// The batch clock never goes backwards, even when a new leader's clock is behind.
func TestClockIsMonotonic(t *testing.T) {
	tl := newTestLedger(t)
	tl.setup()
	tl.nowMs += 1_000_000
	a := tl.ok(tx("a", issue("W1", 1))).Transaction.CreatedAt
	tl.nowMs -= 500_000
	b := tl.ok(tx("b", issue("W1", 1))).Transaction.CreatedAt
	if b < a {
		t.Fatalf("time went back: %d then %d", a, b)
	}
}

// randomLog builds a reproducible log of commands mixing every rule, with failures.
func randomLog(seed uint64, entries int) [][]*Command {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	log := [][]*Command{{
		{Op: OpCreateProject, ProjectID: "p1", Name: "p"},
		{Op: OpCreateAsset, ProjectID: "p1", AssetID: "usd", Name: "USD", Code: "USD", Fractions: 100},
	}}
	wallets := []string{}
	n := 0
	for i := 0; i < entries; i++ {
		var batch []*Command
		for j := 0; j < 1+rng.IntN(8); j++ {
			n++
			switch k := rng.IntN(20); {
			case k == 0 || len(wallets) < 3:
				cust := fmt.Sprintf("c%d", rng.IntN(5))
				batch = append(batch, &Command{Op: OpUpsertCustomer, ProjectID: "p1", CustomerID: cust})
				id := fmt.Sprintf("w%d", n)
				wallets = append(wallets, id)
				batch = append(batch, &Command{Op: OpCreateWallet, ProjectID: "p1", WalletID: id, AssetID: "usd", CustomerID: cust})
			case k == 1:
				batch = append(batch, &Command{Op: OpSetWalletStatus, ProjectID: "p1", WalletID: wallets[rng.IntN(len(wallets))], Status: WalletStatus(1 + rng.IntN(3))})
			case k == 2:
				batch = append(batch, &Command{Op: OpSuspendCustomer, ProjectID: "p1", CustomerID: fmt.Sprintf("c%d", rng.IntN(5))})
			case k == 3:
				batch = append(batch, &Command{Op: OpResumeCustomer, ProjectID: "p1", CustomerID: fmt.Sprintf("c%d", rng.IntN(5))})
			default:
				var ops []Operation
				for o := 0; o < 1+rng.IntN(3); o++ {
					from, to := wallets[rng.IntN(len(wallets))], wallets[rng.IntN(len(wallets))]
					switch rng.IntN(4) {
					case 0:
						ops = append(ops, issue(to, uint64(1+rng.IntN(100))))
					case 1:
						ops = append(ops, redeem(from, uint64(1+rng.IntN(50))))
					default:
						if from != to {
							ops = append(ops, transfer(from, to, uint64(1+rng.IntN(60))))
						}
					}
				}
				if len(ops) == 0 {
					ops = append(ops, issue(wallets[0], 1))
				}
				ref := fmt.Sprintf("r%d", rng.IntN(n+1)) // sometimes a reused reference
				batch = append(batch, &Command{Op: OpTransact, ProjectID: "p1", IDPrefix: "t", ReferenceID: ref, Operations: ops})
			}
		}
		log = append(log, batch)
	}
	return log
}

func applyLog(t *testing.T, tl *testLedger, log [][]*Command) []string {
	var results []string
	for _, batch := range log {
		for _, r := range tl.batch(batch...) {
			if r.Err != nil {
				results = append(results, string(r.Err.Code))
			} else {
				results = append(results, "ok")
			}
		}
	}
	return results
}

// One log applied to two fresh ledgers gives the same results and the same state digest.
func TestDeterminism(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		log := randomLog(seed, 300)
		a, b := newTestLedger(t), newTestLedger(t)
		ra, rb := applyLog(t, a, log), applyLog(t, b, log)
		if fmt.Sprint(ra) != fmt.Sprint(rb) {
			t.Fatalf("seed %d: results differ", seed)
		}
		if a.digest() != b.digest() {
			t.Fatalf("seed %d: digests differ", seed)
		}
		if err := a.ledger.CheckInvariants(); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
	}
}

func TestSnapshotRestoreAndRestart(t *testing.T) {
	src := newTestLedger(t)
	log := randomLog(42, 200)
	applyLog(t, src, log[:150])

	snap, err := src.ledger.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	applyLog(t, src, log[150:]) // applies continue while the snapshot persists
	var buf bytes.Buffer
	if err := snap.Persist(&buf); err != nil {
		t.Fatal(err)
	}
	snap.Release()

	// Restore into a ledger with other state replaces it, then the rest of the log catches up.
	dst := newTestLedger(t)
	applyLog(t, dst, randomLog(7, 20))
	if err := dst.ledger.Restore(io.NopCloser(bytes.NewReader(buf.Bytes()))); err != nil {
		t.Fatal(err)
	}
	dst.index = 150
	if dst.ledger.AppliedIndex() != 150 {
		t.Fatalf("applied index after restore %d", dst.ledger.AppliedIndex())
	}
	dst.nowMs = src.nowMs - int64(len(log)-150)*1000
	applyLog(t, dst, log[150:])
	if src.digest() != dst.digest() {
		t.Fatal("restored ledger diverged")
	}

	// A corrupt stream is refused and leaves the ledger as it was.
	bad := append([]byte(nil), buf.Bytes()...)
	bad[len(bad)/2] ^= 0xff
	before := dst.digest()
	if err := dst.ledger.Restore(io.NopCloser(bytes.NewReader(bad))); err == nil {
		t.Fatal("corrupt snapshot accepted")
	}
	if dst.digest() != before {
		t.Fatal("failed restore changed the ledger")
	}

	// Restart: same state, and entries at or below the applied index are skipped.
	want := src.digest()
	applied := src.ledger.AppliedIndex()
	if err := src.ledger.Close(); err != nil {
		t.Fatal(err)
	}
	reopened, err := openTest(src.dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	src.ledger = reopened
	if reopened.AppliedIndex() != applied {
		t.Fatalf("applied %d after restart, want %d", reopened.AppliedIndex(), applied)
	}
	if got := src.digest(); got != want {
		t.Fatal("state changed across restart")
	}
	if out := reopened.ApplyBatch(applied, src.nowMs, [][]byte{tx("replay", issue("w1", 1)).Encode(nil)}); out != nil {
		t.Fatal("replayed entry was applied again")
	}
	// The in-memory model was rebuilt: applying more works and matches a fresh replay.
	more := randomLog(43, 50)[1:]
	applyLog(t, src, more)
	applyLog(t, dst, more)
	if src.digest() != dst.digest() {
		t.Fatal("restarted ledger diverged from restored one")
	}
}

// TestCommandCodec: every registered op's example survives the envelope, and no prefix of its
// encoding, or the encoding with a byte more, decodes.
func TestCommandCodec(t *testing.T) {
	reg := fsm.NewRegistry()
	Register(reg)
	for _, spec := range reg.Specs() {
		raw := fsm.EncodeCommand(spec.Example)
		got, err := reg.DecodeCommand(raw)
		if err != nil || !reflect.DeepEqual(got, spec.Example) {
			t.Fatalf("%s round trip: %+v %v", spec.Name, got, err)
		}
		for i := 0; i < len(raw); i++ {
			if _, err := reg.DecodeCommand(raw[:i]); err == nil {
				t.Fatalf("%s truncated at %d decoded", spec.Name, i)
			}
		}
		if _, err := reg.DecodeCommand(append(raw, 0)); err == nil {
			t.Fatalf("%s: trailing byte decoded", spec.Name)
		}
		if spec.Example.Route().IsZero() {
			t.Fatalf("%s has no routing key", spec.Name)
		}
	}
}

// TestLegacyCommandCodec: a command of the first release (envelope version 1) decodes into the
// typed command of its op.
func TestLegacyCommandCodec(t *testing.T) {
	reg := fsm.NewRegistry()
	Register(reg)
	c := &legacyCommand{Op: OpTransact, ProjectID: "p", IDPrefix: "t", ReferenceID: "r",
		Operations: []Operation{transfer("a", "b", 5), {Type: OperationIssue, To: "a", Amount: Amount{Hi: 7, Lo: 9}}}}
	raw := c.encode(nil)
	got, err := reg.DecodeCommand(raw)
	want := &Transact{ProjectID: "p", IDPrefix: "t", ReferenceID: "r", Operations: c.Operations}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("legacy decode: %+v %v", got, err)
	}
	for i := 0; i < len(raw); i++ {
		if _, err := reg.DecodeCommand(raw[:i]); err == nil {
			t.Fatalf("truncated at %d decoded", i)
		}
	}
}

func FuzzDecodeCommand(f *testing.F) {
	reg := fsm.NewRegistry()
	Register(reg)
	for _, spec := range reg.Specs() {
		f.Add(fsm.EncodeCommand(spec.Example))
	}
	f.Add((&legacyCommand{Op: OpResumeCustomer, ProjectID: "p", CustomerID: "c", WalletIDs: []string{"w"}}).encode(nil))
	f.Add([]byte{1, 14, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{2, 14, 1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := reg.DecodeEnvelope(data)
		if err != nil {
			return
		}
		// A first-release command re-encodes in the current envelope: compare the commands.
		again, err := reg.DecodeEnvelope(fsm.EncodeEnvelope(env))
		if err != nil || !reflect.DeepEqual(again.Command, env.Command) || !reflect.DeepEqual(again.Idempotency, env.Idempotency) {
			t.Fatalf("re-encode differs: %+v vs %+v (%v)", env, again, err)
		}
	})
}

// Time ranges are found by binary search over sequences; check them against brute force, with
// two projects interleaving their transactions in one sequence.
func TestTransactionTimeRangesMatchBruteForce(t *testing.T) {
	tl := newTestLedger(t)
	tl.setup()
	tl.ok(&Command{Op: OpCreateProject, ProjectID: "p2", Name: "other"})
	tl.ok(&Command{Op: OpCreateAsset, ProjectID: "p2", AssetID: "usd", Name: "USD", Code: "USD", Fractions: 1})
	tl.ok(&Command{Op: OpCreateWallet, ProjectID: "p2", WalletID: "X1", AssetID: "usd"})
	rng := rand.New(rand.NewPCG(3, 4))
	var all []Transaction
	for i := 0; i < 300; i++ {
		tl.nowMs += int64(rng.IntN(3)) * 1000 // several batches share a time; time never goes back
		var batch []*Command
		for j := 0; j < 1+rng.IntN(3); j++ {
			batch = append(batch, tx(fmt.Sprintf("r%d-%d", i, j), issue("W1", 1)))
			batch = append(batch, &Command{Op: OpTransact, ProjectID: "p2", IDPrefix: "x", ReferenceID: fmt.Sprintf("r%d-%d", i, j), Operations: []Operation{issue("X1", 1)}})
		}
		for k, r := range tl.batch(batch...) {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
			if k%2 == 0 {
				all = append(all, *r.Transaction)
			}
		}
	}
	first, last := all[0].CreatedAt, all[len(all)-1].CreatedAt
	for trial := 0; trial < 200; trial++ {
		from := first - 2000 + rng.Int64N(last-first+4000)
		to := from + rng.Int64N(20_000)
		var want []string
		for _, tr := range all {
			if tr.CreatedAt >= from && tr.CreatedAt <= to {
				want = append(want, tr.ID)
			}
		}
		var got []string
		for page := 1; ; page++ {
			items, more, err := tl.ledger.ListTransactions("p1", TimeRange{from, to}, PageRequest{page, 7})
			if err != nil {
				t.Fatal(err)
			}
			for _, tr := range items {
				got = append(got, tr.ID)
			}
			if !more {
				break
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("[%d, %d]: got %d transactions, want %d", from, to, len(got), len(want))
		}
	}
	if _, err := tl.ledger.GetTransaction("p1", all[5].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := tl.ledger.GetTransaction("p2", all[5].ID); err == nil {
		t.Fatal("a transaction is visible from another project")
	}
}

// A data shard learns projects and assets from its commands: the router has checked them in
// the metadata shard, which alone holds their definitions and the asset's used mark.
func TestDataShardLearnsProjectAndAsset(t *testing.T) {
	meta, data := newTestLedger(t), newTestLedger(t)
	meta.ok(&Command{Op: OpCreateProject, ProjectID: "p1", Name: "shop"})
	asset := meta.ok(&Command{Op: OpCreateAsset, ProjectID: "p1", AssetID: "usd", Name: "USD", Code: "USD", Fractions: 100}).Asset
	def := &AssetDefinition{Name: asset.Name, Code: asset.Code, Fractions: asset.Fractions, CreatedAt: asset.CreatedAt}

	// Without the router's word, the data shard knows no such project.
	data.rejects(&Command{Op: OpUpsertCustomer, ProjectID: "p1", CustomerID: "c1"}, CodeProjectNotFound)
	data.ok(&Command{Op: OpUpsertCustomer, ProjectID: "p1", CustomerID: "c1", EnsureProject: true})
	data.rejects(&Command{Op: OpCreateWallet, ProjectID: "p1", WalletID: "W1", AssetID: "usd", CustomerID: "c1", EnsureProject: true}, CodeAssetNotFound)
	meta.ok(&Command{Op: OpMarkAssetUsed, ProjectID: "p1", AssetID: "usd"})
	data.ok(&Command{Op: OpCreateWallet, ProjectID: "p1", WalletID: "W1", AssetID: "usd", CustomerID: "c1", EnsureProject: true, Asset: def})
	data.ok(&Command{Op: OpCreateWallet, ProjectID: "p1", WalletID: "W2", AssetID: "usd", CustomerID: "c1", EnsureProject: true, Asset: def})
	bad := *def
	bad.Fractions = 7
	data.rejects(&Command{Op: OpCreateWallet, ProjectID: "p1", WalletID: "W3", AssetID: "usd", CustomerID: "c1", EnsureProject: true, Asset: &bad}, CodeInvalidArgument)
	data.ok(&Command{Op: OpTransact, ProjectID: "p1", IDPrefix: "t", ReferenceID: "r", Operations: []Operation{issue("W1", 9), transfer("W1", "W2", 4)}})
	if data.balance("p1", "W2") != "4" {
		t.Fatalf("W2=%s", data.balance("p1", "W2"))
	}
	// The used mark lives in the metadata shard: the asset can no longer be deleted there.
	meta.rejects(&Command{Op: OpDeleteAsset, ProjectID: "p1", AssetID: "usd"}, CodeAssetInUse)
	meta.rejects(&Command{Op: OpMarkAssetUsed, ProjectID: "p1", AssetID: "gold"}, CodeAssetNotFound)
}

// TestCheckProjectChangesNothing: the retired op still replays from old logs, and changes nothing.
func TestCheckProjectChangesNothing(t *testing.T) {
	tl := newTestLedger(t)
	tl.setup()
	before := tl.digest()
	if r := tl.ok(&Command{Op: opCheckProject, ProjectID: "p1"}); r.Project.Name != "shop" {
		t.Fatalf("check project: %+v", r.Project)
	}
	tl.rejects(&Command{Op: opCheckProject, ProjectID: "nope"}, CodeProjectNotFound)
	if tl.digest() != before {
		t.Fatal("CheckProject changed the ledger")
	}
}
