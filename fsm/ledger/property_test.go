package ledger

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gigaledger/gigaledger/fsm"
)

// extremeAmounts are the amounts at the edges of the 128-bit range and of its halves, with
// their neighbours: where a sum that is not checked, or checked in the wrong width, breaks.
var extremeAmounts = func() []Amount {
	var out []Amount
	for _, bitsShift := range []uint{1, 63, 64, 127} {
		v := new(big.Int).Lsh(big.NewInt(1), bitsShift)
		for _, d := range []int64{-1, 0, 1} {
			w := new(big.Int).Add(v, big.NewInt(d))
			if a, err := AmountFromBig(w); err == nil {
				out = append(out, a)
			}
		}
	}
	full := new(big.Int).Lsh(big.NewInt(1), 128)
	for _, d := range []int64{-2, -1} {
		a, _ := AmountFromBig(new(big.Int).Add(full, big.NewInt(d)))
		out = append(out, a)
	}
	return append(out, AmountFromUint64(1)) // 1, 2, 3, 2^63, 2^64, 2^127 and ±1 of each, 2^128−2, 2^128−1
}()

// propertyRun drives one seeded random sequence of commands through apply.
type propertyRun struct {
	t       *testing.T
	tl      *testLedger
	rng     *rand.Rand
	seed    uint64
	step    int
	wallets map[string][]string // project → wallet IDs, in creation order
	assetOf map[string]string   // wallet ID → asset ID
	refs    map[string][]Operation
	nextID  int
	stats   map[string]int
}

var propertyMax = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1))

// TestApplyNeverPanicsOnExtremeAmounts drives random sequences of valid (and some invalid)
// commands — wallets, customers, statuses, assets, multi-operation transactions — with amounts
// at the edges of the 128-bit range through apply, one log entry at a time. After every
// entry: no panic, CheckInvariants holds, and every lone transaction's outcome (completed, or
// which rejection at which operation) is what a big-integer model of the rules predicts.
// Seeds are fixed, so a failure names a seed and step that reproduce it.
//
// Each seed runs twice: as a store before wallet epochs, and with the history chain started and
// the rules raised to the newest (wallet epochs, epochs.go, made short, so that epochs end, and
// restarts fall, all through the run; compact entry records), so that every rule is checked.
func TestApplyNeverPanicsOnExtremeAmounts(t *testing.T) {
	const seedCount, stepCount = 10, 400
	for seed := uint64(1); seed <= seedCount; seed++ {
		for _, epochs := range []bool{false, true} {
			t.Run(fmt.Sprintf("seed=%d/epochs=%v", seed, epochs), func(t *testing.T) {
				runProperty(t, seed, stepCount, epochs)
			})
		}
	}
}

func runProperty(t *testing.T, seed uint64, stepCount int, epochs bool) {
	{
		{
			r := &propertyRun{t: t, tl: newTestLedger(t), seed: seed,
				rng:     rand.New(rand.NewPCG(seed, 0x8badf00d)),
				wallets: map[string][]string{}, assetOf: map[string]string{}, refs: map[string][]Operation{}, stats: map[string]int{}}
			if epochs {
				shortWalletEpochs(t, 13, 17)
				r.tl.applyTyped(&fsm.StartHistoryChain{})
				r.tl.applyTyped(&fsm.RaiseRules{Version: fsm.RulesVersion})
			}
			r.setup()
			for r.step = 0; r.step < stepCount; r.step++ {
				r.randomStep()
				if err := r.tl.ledger.CheckInvariants(); err != nil {
					t.Fatalf("seed %d step %d: %v", seed, r.step, err)
				}
				if err := liveWalletsMatchStore(r.tl.ledger.Ledger); err != nil {
					t.Fatalf("seed %d step %d: %v", seed, r.step, err)
				}
				for _, slot := range r.tl.ledger.deferred {
					if r.tl.ledger.wallets.rec(slot).flags&walletDeferred != 0 {
						r.stats["deferred"]++
					}
				}
			}
			// A seed that never reached the limits would prove little.
			if r.stats["tx:BalanceOverflow"] == 0 || r.stats["tx:ok≥2^127"] == 0 || r.stats["tx:InsufficientFunds"] == 0 {
				t.Fatalf("seed %d exercised too little: %v", seed, r.stats)
			}
			if epochs && r.stats["deferred"] == 0 {
				t.Fatalf("seed %d: no wallet write was deferred: %v", seed, r.stats)
			}
			t.Logf("seed %d: %v", seed, r.stats)
		}
	}
}

func (r *propertyRun) setup() {
	tl := r.tl
	for _, p := range []string{"p1", "p2"} {
		tl.ok(&Command{Op: OpCreateProject, ProjectID: p, Name: p})
		for _, as := range []string{"a", "b"} {
			tl.ok(&Command{Op: OpCreateAsset, ProjectID: p, AssetID: as, Name: as, Code: strings.ToUpper(as), Fractions: 1})
		}
		for c := 0; c < 3; c++ {
			tl.ok(&Command{Op: OpUpsertCustomer, ProjectID: p, CustomerID: fmt.Sprintf("c%d", c)})
		}
	}
}

// apply applies one log entry, turning a panic into a test failure that names the entry.
func (r *propertyRun) apply(cmds ...*Command) (results []*Result) {
	r.t.Helper()
	defer func() {
		if p := recover(); p != nil {
			var b strings.Builder
			for _, c := range cmds {
				fmt.Fprintf(&b, "\n  %v project=%s wallet=%s ops=%v", c.Op, c.ProjectID, c.WalletID, c.Operations)
			}
			r.t.Fatalf("seed %d step %d: apply panicked: %v%s", r.seed, r.step, p, b.String())
		}
	}()
	return r.tl.batch(cmds...)
}

func (r *propertyRun) project() string {
	if r.rng.IntN(5) == 0 {
		return "p2"
	}
	return "p1"
}

func (r *propertyRun) customer() string { return fmt.Sprintf("c%d", r.rng.IntN(4)) } // c3 never exists

// wallet picks a wallet of the project; now and then one of the other project, or none.
func (r *propertyRun) wallet(project string) string {
	switch k := r.rng.IntN(40); {
	case k == 0:
		return "missing"
	case k == 1 && len(r.wallets["p2"]) > 0:
		return r.wallets["p2"][r.rng.IntN(len(r.wallets["p2"]))]
	}
	ws := r.wallets[project]
	if len(ws) == 0 {
		return "missing"
	}
	return ws[r.rng.IntN(len(ws))]
}

// walletLike picks, most of the time, another wallet of the same asset (a transfer that can
// succeed), else any wallet.
func (r *propertyRun) walletLike(project, other string) string {
	if r.rng.IntN(6) > 0 {
		var same []string
		for _, id := range r.wallets[project] {
			if id != other && r.assetOf[id] == r.assetOf[other] {
				same = append(same, id)
			}
		}
		if len(same) > 0 {
			return same[r.rng.IntN(len(same))]
		}
	}
	return r.wallet(project)
}

// amount picks an extreme amount, or one at the edge of what a wallet or asset can take now;
// now and then zero, which is invalid.
func (r *propertyRun) amount(project, walletID string) Amount {
	if r.rng.IntN(60) == 0 {
		return Amount{}
	}
	if r.rng.IntN(2) > 0 {
		return extremeAmounts[r.rng.IntN(len(extremeAmounts))]
	}
	w, err := r.tl.ledger.GetWallet(project, walletID)
	if err != nil {
		return extremeAmounts[r.rng.IntN(len(extremeAmounts))]
	}
	as, _ := r.tl.ledger.GetAsset(project, w.AssetID)
	headroom, _ := maxAmountValue.Sub(as.Supply)
	var candidates []Amount
	for _, a := range []Amount{w.Balance, headroom} {
		if !a.IsZero() {
			candidates = append(candidates, a)
		}
	}
	if one, err := w.Balance.Add(AmountFromUint64(1)); err == nil {
		candidates = append(candidates, one)
	}
	if one, err := headroom.Add(AmountFromUint64(1)); err == nil {
		candidates = append(candidates, one)
	}
	if len(candidates) == 0 {
		return extremeAmounts[r.rng.IntN(len(extremeAmounts))]
	}
	return candidates[r.rng.IntN(len(candidates))]
}

func (r *propertyRun) operation(project string) Operation {
	switch r.rng.IntN(3) {
	case 0:
		to := r.wallet(project)
		return Operation{Type: OperationIssue, To: to, Amount: r.amount(project, to)}
	case 1:
		from := r.wallet(project)
		return Operation{Type: OperationRedeem, From: from, Amount: r.amount(project, from)}
	}
	from := r.wallet(project)
	to := r.walletLike(project, from)
	return Operation{Type: OperationTransfer, From: from, To: to, Amount: r.amount(project, from)}
}

func (r *propertyRun) transaction(project string) *Command {
	var ops []Operation
	if r.rng.IntN(4) == 0 {
		ops = r.churn(project)
	} else {
		for range 1 + r.rng.IntN(r.rng.IntN(6)+1) {
			ops = append(ops, r.operation(project))
		}
	}
	r.nextID++
	ref := fmt.Sprintf("r%d", r.nextID)
	if r.rng.IntN(15) == 0 && r.nextID > 1 {
		ref = fmt.Sprintf("r%d", 1+r.rng.IntN(r.nextID-1)) // a retry, or a reused reference
	}
	return &Command{Op: OpTransact, ProjectID: project, IDPrefix: "t", ReferenceID: ref, Operations: ops}
}

// churn is a transaction whose gross issues or redeems pass what its final state holds, at a
// wallet near the limit: take an amount out and put it (or one more) back, or issue the
// headroom, redeem it and issue it again. Issue 8's poison pill was one of these.
func (r *propertyRun) churn(project string) []Operation {
	id := r.wallet(project)
	w, err := r.tl.ledger.GetWallet(project, id)
	if err != nil {
		return []Operation{{Type: OperationIssue, To: id, Amount: AmountFromUint64(1)}}
	}
	as, _ := r.tl.ledger.GetAsset(project, w.AssetID)
	headroom, _ := maxAmountValue.Sub(as.Supply)
	x := []Amount{AmountFromUint64(1), w.Balance, headroom, extremeAmounts[r.rng.IntN(len(extremeAmounts))]}[r.rng.IntN(4)]
	if x.IsZero() {
		x = AmountFromUint64(1)
	}
	back := x
	if r.rng.IntN(4) == 0 {
		back, _ = x.Add(AmountFromUint64(1))
		if back.IsZero() {
			back = x
		}
	}
	if r.rng.IntN(2) == 0 {
		return []Operation{{Type: OperationRedeem, From: id, Amount: x}, {Type: OperationIssue, To: id, Amount: back}}
	}
	return []Operation{{Type: OperationIssue, To: id, Amount: x}, {Type: OperationRedeem, From: id, Amount: x},
		{Type: OperationIssue, To: id, Amount: back}}
}

func (r *propertyRun) newWallet(project string) *Command {
	r.nextID++
	c := &Command{Op: OpCreateWallet, ProjectID: project, WalletID: fmt.Sprintf("w%d", r.nextID),
		AssetID: []string{"a", "b"}[r.rng.IntN(2)]}
	if r.rng.IntN(3) > 0 {
		c.CustomerID = r.customer()
	}
	return c
}

// randomCommand returns one command of any kind the ledger takes.
func (r *propertyRun) randomCommand() *Command {
	p := r.project()
	switch k := r.rng.IntN(40); {
	case k < 5 || len(r.wallets[p]) < 3:
		return r.newWallet(p)
	case k < 7:
		return &Command{Op: OpSetWalletStatus, ProjectID: p, WalletID: r.wallet(p), Status: WalletStatus(1 + r.rng.IntN(3))}
	case k < 8:
		if r.rng.IntN(3) == 0 {
			return &Command{Op: OpSuspendCustomer, ProjectID: p, CustomerID: r.customer()}
		}
		return r.resume(p)
	case k < 11:
		return r.resume(p)
	case k < 12:
		return &Command{Op: OpDeleteCustomer, ProjectID: p, CustomerID: r.customer()}
	case k < 13:
		return &Command{Op: OpUpsertCustomer, ProjectID: p, CustomerID: r.customer(), Name: "n", SetName: true}
	case k < 14:
		return &Command{Op: OpRenameWallet, ProjectID: p, WalletID: r.wallet(p), Name: "renamed"}
	case k < 15:
		return &Command{Op: OpDescribeWallet, ProjectID: p, WalletID: r.wallet(p), Description: "d"}
	case k < 16:
		return &Command{Op: OpCreateAsset, ProjectID: p, AssetID: "tmp", Name: "tmp", Code: "TMP", Fractions: 1}
	case k < 17:
		return &Command{Op: OpDeleteAsset, ProjectID: p, AssetID: []string{"tmp", "a"}[r.rng.IntN(2)]}
	case k < 18:
		return &Command{Op: OpRenameAsset, ProjectID: p, AssetID: "a", Name: "A"}
	case k < 19:
		return &Command{Op: opCheckProject, ProjectID: []string{p, "p9"}[r.rng.IntN(2)]}
	case k < 20:
		// A data shard meeting a project and an asset for the first time.
		r.nextID++
		return &Command{Op: OpCreateWallet, ProjectID: "p3", EnsureProject: true, WalletID: fmt.Sprintf("w%d", r.nextID),
			AssetID: "a", Asset: &AssetDefinition{Name: "a", Code: "A", Fractions: 1}}
	}
	return r.transaction(p)
}

// resume resumes a customer with, mostly, every wallet it has; now and then with other
// project's or closed wallets, which refuse the whole resume.
func (r *propertyRun) resume(project string) *Command {
	c := &Command{Op: OpResumeCustomer, ProjectID: project, CustomerID: r.customer()}
	if r.rng.IntN(4) == 0 {
		c.WalletIDs = append(c.WalletIDs, r.wallet(project))
		return c
	}
	if ws, err := r.tl.ledger.ListCustomerWallets(project, c.CustomerID); err == nil {
		for _, w := range ws {
			if w.Status != WalletClosed {
				c.WalletIDs = append(c.WalletIDs, w.ID)
			}
		}
	}
	return c
}

func (r *propertyRun) randomStep() {
	if r.step > 0 && r.step%100 == 0 {
		r.restart()
	}
	var cmds []*Command
	if r.rng.IntN(4) == 0 {
		for range 2 + r.rng.IntN(3) {
			cmds = append(cmds, r.randomCommand())
		}
	} else {
		cmds = []*Command{r.randomCommand()}
	}
	// A lone transaction is checked against the model, on the state before it.
	var want string
	var wantBalances map[string]*big.Int
	if len(cmds) == 1 && cmds[0].Op == OpTransact {
		want, wantBalances = r.model(cmds[0])
	}
	results := r.apply(cmds...)
	for i, c := range cmds {
		res := results[i]
		outcome := "ok"
		if res.Err != nil {
			outcome = string(res.Err.Code)
		}
		if res.Err != nil && res.Err.Code == CodeInvalidArgument && c.Op != OpTransact {
			r.t.Fatalf("seed %d step %d: %v rejected as invalid: %v", r.seed, r.step, c.Op, res.Err)
		}
		switch c.Op {
		case OpCreateWallet:
			if res.Err == nil {
				r.wallets[c.ProjectID] = append(r.wallets[c.ProjectID], c.WalletID)
				r.assetOf[c.WalletID] = c.AssetID
			}
		case OpTransact:
			if res.Transaction != nil {
				if _, seen := r.refs[c.ProjectID+"/"+c.ReferenceID]; !seen {
					r.refs[c.ProjectID+"/"+c.ReferenceID] = c.Operations
				}
			}
			if res.Transaction != nil && res.Err != nil && res.Transaction.Status == TransactionFailed &&
				res.Err.Code != CodeDuplicateReferenceID && res.Err.Code != CodeReferenceIDMismatch {
				outcome = fmt.Sprintf("%s@%d", res.Err.Code, res.Transaction.FailedOperationIndex)
			}
			if len(cmds) == 1 {
				if outcome != want {
					r.t.Fatalf("seed %d step %d: transaction %v gave %s, the model says %s", r.seed, r.step, c.Operations, outcome, want)
				}
				for id, b := range wantBalances {
					w, err := r.tl.ledger.GetWallet(c.ProjectID, id)
					if err != nil || w.Balance.Big().Cmp(b) != 0 {
						r.t.Fatalf("seed %d step %d: wallet %s is %v (%v), the model says %s", r.seed, r.step, id, w, err, b)
					}
				}
			}
			code, _, _ := strings.Cut(outcome, "@")
			r.stats["tx:"+code]++
			if res.Err == nil && maxOperationAmount(c.Operations).Hi >= 1<<63 {
				r.stats["tx:ok≥2^127"]++
			}
			continue
		}
		r.stats[fmt.Sprint(c.Op)+":"+outcome]++
	}
}

// model predicts a transaction's outcome from the ledger's state before it, in big integers,
// following the documented rules: validation, reference reuse, wallets and assets, then each
// operation in order on working balances, failing the first that would leave a wallet short
// or a balance or supply above 2^128−1. It answers "ok" and the final balances, a structural
// rejection's code, or a recorded failure as "code@operationIndex".
func (r *propertyRun) model(c *Command) (string, map[string]*big.Int) {
	for _, op := range c.Operations {
		if op.Amount.IsZero() || (op.Type == OperationTransfer && op.From == op.To) {
			return string(CodeInvalidArgument), nil
		}
	}
	if prior, seen := r.refs[c.ProjectID+"/"+c.ReferenceID]; seen {
		if !sameOperations(prior, c.Operations) {
			return string(CodeReferenceIDMismatch), nil
		}
		return string(CodeDuplicateReferenceID), nil
	}
	wallets := map[string]*Wallet{}
	balances := map[string]*big.Int{}
	supplies := map[string]*big.Int{}
	find := func(id string) *Wallet {
		if w, ok := wallets[id]; ok {
			return w
		}
		w, err := r.tl.ledger.GetWallet(c.ProjectID, id)
		if err != nil {
			return nil
		}
		wallets[id], balances[id] = w, w.Balance.Big()
		if _, ok := supplies[w.AssetID]; !ok {
			as, err := r.tl.ledger.GetAsset(c.ProjectID, w.AssetID)
			if err != nil {
				r.t.Fatalf("asset %s: %v", w.AssetID, err)
			}
			supplies[w.AssetID] = as.Supply.Big()
		}
		return w
	}
	for _, op := range c.Operations {
		for _, id := range []string{op.From, op.To} {
			if id != "" && find(id) == nil {
				return string(CodeWalletNotFound), nil
			}
		}
		if op.Type == OperationTransfer && wallets[op.From].AssetID != wallets[op.To].AssetID {
			return string(CodeAssetMismatch), nil
		}
	}
	for i, op := range c.Operations {
		for _, id := range []string{op.From, op.To} {
			if id == "" {
				continue
			}
			switch wallets[id].Status {
			case WalletSuspendedStatus:
				return fmt.Sprintf("%s@%d", CodeWalletSuspended, i), nil
			case WalletClosed:
				return fmt.Sprintf("%s@%d", CodeWalletClosed, i), nil
			}
		}
		amount := op.Amount.Big()
		if op.From != "" {
			if balances[op.From].Cmp(amount) < 0 {
				return fmt.Sprintf("%s@%d", CodeInsufficientFunds, i), nil
			}
			balances[op.From] = new(big.Int).Sub(balances[op.From], amount)
		}
		var asset string
		if op.From != "" {
			asset = wallets[op.From].AssetID
		} else {
			asset = wallets[op.To].AssetID
		}
		switch op.Type {
		case OperationIssue:
			supplies[asset] = new(big.Int).Add(supplies[asset], amount)
			if supplies[asset].Cmp(propertyMax) > 0 {
				return fmt.Sprintf("%s@%d", CodeBalanceOverflow, i), nil
			}
		case OperationRedeem:
			supplies[asset] = new(big.Int).Sub(supplies[asset], amount)
		}
		if op.To != "" {
			balances[op.To] = new(big.Int).Add(balances[op.To], amount)
			if balances[op.To].Cmp(propertyMax) > 0 {
				return fmt.Sprintf("%s@%d", CodeBalanceOverflow, i), nil
			}
		}
	}
	return "ok", balances
}

func maxOperationAmount(ops []Operation) Amount {
	var m Amount
	for _, op := range ops {
		if op.Amount.Cmp(m) > 0 {
			m = op.Amount
		}
	}
	return m
}

// restart closes the store and opens it again, as a replica does after a crash or an upgrade.
func (r *propertyRun) restart() {
	r.t.Helper()
	if err := r.tl.ledger.Close(); err != nil {
		r.t.Fatal(err)
	}
	l, err := openTest(r.tl.dir, nil)
	if err != nil {
		r.t.Fatalf("seed %d step %d: reopen: %v", r.seed, r.step, err)
	}
	r.tl.ledger = l
	r.stats["restart"]++
}
