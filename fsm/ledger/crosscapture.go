package ledger

import (
	"fmt"
	"slices"

	"github.com/gigaledger/gigaledger/fsm"
)

// Cross-shard transactions beyond transfers (cluster/DESIGN.md, "The capture leg and the
// hook"): one mechanism carries a hold captured to a wallet of another shard and a family's own
// state that must change with the transaction's decision (a GigPay token claimed by a payee of
// another shard).
//
//   - A capture leg is a transfer whose debit is paid by an existing hold of its from wallet
//     (HoldCapture) instead of the wallet's available balance. The hold's participant checks at
//     prepare that the hold is active, of that wallet and at least the amount, and marks it
//     (Hold.CrossTransactionID): until the finish nobody can release or capture it and it does
//     not expire. A completed finish captures it as CaptureHold does (the amount moves, the
//     rest is released, LEDGER_HOLD_CAPTURED); a failed one returns it as it was, and a hold
//     whose expiry passed meanwhile expires then. The captured wallet is named by no other
//     operation of the transaction, so the hold alone covers its side.
//   - A hook (CrossHook) names a family's handler registered with the core
//     (Family.RegisterCrossHook) and the wallet (Anchor) whose participant runs it: in that
//     participant's prepare, Check (before the ledger's own checks, writing nothing) may refuse
//     the vote and Prepared marks the family's state; in its finish Finished applies the
//     decision. Each runs in the same apply as the ledger's step, so the family's state
//     changes atomically with the money.
//
// Both ride in CrossExtras on the begin, the coordinator's record, the prepare and the
// participation. A command or record without extras keeps the encoding of the first version
// of the protocol; with extras the begin and the prepare are ops of their own (24, 25) and the
// records carry version 2.

// CrossHookDataMaxBytes bounds a hook's data.
const CrossHookDataMaxBytes = 1024

// HoldCapture says that operation Index, a transfer, is paid by capturing hold HoldID of its
// from wallet.
type HoldCapture struct {
	Index  int
	HoldID string
}

// CrossHook is a family's part in a cross-shard transaction: Name is the handler registered
// with Family.RegisterCrossHook, Anchor a wallet of the transaction (the participant owning it
// runs the handler), Data the family's own arguments.
type CrossHook struct {
	Name, Anchor string
	Data         []byte
}

// CrossExtras is what a cross-shard transaction carries beyond its operations. On the begin
// it names the whole transaction's captures (increasing operation indexes) and hook; on a
// participant, the captures of its wallets and the hook when it owns the anchor.
type CrossExtras struct {
	Captures []HoldCapture
	Hook     *CrossHook
}

func (x *CrossExtras) empty() bool { return len(x.Captures) == 0 && x.Hook == nil }

func encodeExtras(e *fsm.Encoder, x *CrossExtras) {
	e.Uvarint(uint64(len(x.Captures)))
	for _, c := range x.Captures {
		e.Uvarint(uint64(c.Index))
		e.String(c.HoldID)
	}
	e.Bool(x.Hook != nil)
	if x.Hook != nil {
		e.String(x.Hook.Name)
		e.String(x.Hook.Anchor)
		e.Bytes(x.Hook.Data)
	}
}

func decodeExtras(d *fsm.Decoder) CrossExtras {
	var x CrossExtras
	n := d.Count("captures")
	for i := 0; i < n && d.Err() == nil; i++ {
		x.Captures = append(x.Captures, HoldCapture{Index: decodeInt(d), HoldID: d.String()})
	}
	if d.Bool() {
		x.Hook = &CrossHook{Name: d.String(), Anchor: d.String(), Data: append([]byte(nil), d.Bytes()...)}
	}
	return x
}

// decodeExtended reads the extras of an extended op, which has some: an extended op without
// them would encode as the plain op, two encodings of one command.
func decodeExtended(d *fsm.Decoder) CrossExtras {
	x := decodeExtras(d)
	if d.Err() == nil && x.empty() {
		d.Fail(fmt.Errorf("an extended cross-shard command without captures or hook"))
	}
	return x
}

// CrossHookContext is what a hook's handler is told: the transaction, the participant's legs
// and captures (to check that they are the family's), and the hook's data.
type CrossHookContext struct {
	ProjectID, TransactionID string
	Legs                     []CrossLeg
	Captures                 []HoldCapture
	Data                     []byte
}

// CrossHookHandler is a family's handler of its hook, called in the apply of the participant
// that owns the hook's anchor. Like every apply it must be deterministic and must not panic on
// anything a command can carry.
type CrossHookHandler interface {
	// Check runs first in the prepare and writes nothing: a rejection refuses the vote and
	// is the transaction's failure before any of the ledger's (the family's record is checked
	// first, as its single-shard op does).
	Check(b *fsm.Batch, c *CrossHookContext) *fsm.Error
	// Prepared runs once the participant voted yes, in the same apply: the family marks its
	// state as taken by the transaction.
	Prepared(b *fsm.Batch, c *CrossHookContext)
	// Finished runs in the finish after the ledger applied the decision (completed: the legs
	// posted, the captures made; failed: the holds released, the captures returned). It cannot
	// refuse: the decision is made.
	Finished(b *fsm.Batch, c *CrossHookContext, completed bool)
}

// RegisterCrossHook registers a family's hook handler under name. Call it while registering
// the family, before any machine opens; a name is registered once.
func (f *Family) RegisterCrossHook(name string, h CrossHookHandler) {
	if name == "" || h == nil {
		panic("ledger: a cross-shard hook needs a name and a handler")
	}
	if _, dup := f.hooks[name]; dup {
		panic(fmt.Sprintf("ledger: cross-shard hook %q registered twice", name))
	}
	if f.hooks == nil {
		f.hooks = map[string]CrossHookHandler{}
	}
	f.hooks[name] = h
}

// validateExtras checks a begin's or a prepare's extras against its operations (legs): each
// capture names a transfer among them, in increasing order, a hold ID that is not a
// protocol's hold, each hold once, and a from wallet that no other operation names (the hold
// alone covers that wallet's side); a hook is registered, anchored on a wallet the operations
// name, with bounded data. wallets, when not nil, are the participant's: its captures debit
// them and its hook is anchored on one of them.
func (l *Ledger) validateExtras(x *CrossExtras, legs []CrossLeg, wallets []string) *fsm.Result {
	if len(x.Captures) > fsm.OperationsMaxCount {
		return invalid("at most %d captures", fsm.OperationsMaxCount)
	}
	for i, c := range x.Captures {
		if i > 0 && c.Index <= x.Captures[i-1].Index {
			return invalid("capture %d: operation indexes must increase", i)
		}
		if !fsm.ValidID(c.HoldID, fsm.GeneratedIDMaxLength) || isCrossHold(c.HoldID) {
			return invalid("capture %d: hold id must be 1..%d of [A-Za-z0-9_.-], not a cross-shard transaction's", i, fsm.GeneratedIDMaxLength)
		}
		if slices.ContainsFunc(x.Captures[:i], func(o HoldCapture) bool { return o.HoldID == c.HoldID }) {
			return invalid("capture %d: hold %q is captured twice", i, c.HoldID)
		}
		at := slices.IndexFunc(legs, func(leg CrossLeg) bool { return leg.Index == c.Index })
		if at < 0 || legs[at].Operation.Type != OperationTransfer {
			return invalid("capture %d: operation %d is not a transfer of the transaction", i, c.Index)
		}
		from := legs[at].Operation.From
		if wallets != nil && !slices.Contains(wallets, from) {
			return invalid("capture %d: wallet %q is not the participant's", i, from)
		}
		for _, leg := range legs {
			if leg.Index != c.Index && (leg.Operation.From == from || leg.Operation.To == from) {
				return invalid("capture %d: wallet %q of the captured hold is named by operation %d too", i, from, leg.Index)
			}
		}
	}
	if h := x.Hook; h != nil {
		if _, ok := l.family.hooks[h.Name]; !ok {
			return invalid("no cross-shard hook %q", h.Name)
		}
		if len(h.Data) > CrossHookDataMaxBytes {
			return invalid("hook data is at most %d bytes", CrossHookDataMaxBytes)
		}
		named := slices.ContainsFunc(legs, func(leg CrossLeg) bool {
			return leg.Operation.From == h.Anchor || leg.Operation.To == h.Anchor
		})
		if h.Anchor == "" || !named || (wallets != nil && !slices.Contains(wallets, h.Anchor)) {
			return invalid("hook anchor %q is not a wallet of the transaction's participant", h.Anchor)
		}
	}
	return nil
}

// legsOf numbers a transaction's operations as legs.
func legsOf(ops []Operation) []CrossLeg {
	legs := make([]CrossLeg, len(ops))
	for i, op := range ops {
		legs[i] = CrossLeg{Index: i, Operation: op}
	}
	return legs
}

// extrasFor is the part of a begin's extras that belongs to a participant: the captures of
// its wallets and the hook anchored on one of them.
func extrasFor(x *CrossExtras, ops []Operation, wallets []string) CrossExtras {
	var out CrossExtras
	for _, c := range x.Captures {
		if slices.Contains(wallets, ops[c.Index].From) {
			out.Captures = append(out.Captures, c)
		}
	}
	if x.Hook != nil && slices.Contains(wallets, x.Hook.Anchor) {
		h := *x.Hook
		out.Hook = &h
	}
	return out
}

func (l *Ledger) hookContext(p *Participation) (CrossHookHandler, *CrossHookContext) {
	if p.Hook == nil {
		return nil, nil
	}
	h := l.family.hooks[p.Hook.Name]
	if h == nil {
		panic(fmt.Sprintf("ledger: participation %s names unregistered hook %q", p.TransactionID, p.Hook.Name)) // validated at prepare
	}
	return h, &CrossHookContext{ProjectID: p.ProjectID, TransactionID: p.TransactionID, Legs: p.Legs,
		Captures: p.Captures, Data: p.Hook.Data}
}

// firstLegNaming is the operation index of the first leg naming a wallet (the failure index of
// a hook's refusal).
func firstLegNaming(legs []CrossLeg, walletID string) int {
	for _, leg := range legs {
		if leg.Operation.From == walletID || leg.Operation.To == walletID {
			return leg.Index
		}
	}
	return 0
}

// checkCapture finds the hold a capture leg pays with and checks it as CaptureHold would
// before its transaction runs: found, not in another cross-shard transaction, active (a due
// hold expires here), of the leg's from wallet, at least the leg's amount. A failure ranks
// before the operations' own.
func (l *Ledger) checkCapture(projectID, transactionID string, c HoldCapture, op Operation) (*Hold, crossFailure) {
	fails := func(code fsm.ErrorCode, format string, args ...any) crossFailure {
		err := rejectf(code, format, args...)
		return crossFailure{index: c.Index, rank: rankPrior, reason: err.Code, message: err.Message, set: true}
	}
	h, r := l.findHold(projectID, c.HoldID)
	if r != nil {
		return nil, fails(r.Err.Code, "%s", r.Err.Message)
	}
	if h.CrossTransactionID != "" && h.CrossTransactionID != transactionID {
		return nil, fails(CodeCrossShardHold, "hold %q is being captured by cross-shard transaction %s", h.ID, h.CrossTransactionID)
	}
	if h.Status == HoldActive && h.CrossTransactionID == "" && h.ExpiresAt != 0 && h.ExpiresAt <= l.b.Now {
		l.resolve(h, HoldExpired)
	}
	switch {
	case h.Status != HoldActive:
		return nil, fails(CodeHoldResolved, "hold %q is %s", h.ID, h.Status)
	case h.WalletID != op.From:
		return nil, fails(CodeInvalidArgument, "hold %q is on wallet %q, not %q", h.ID, h.WalletID, op.From)
	case op.Amount.Cmp(h.Amount) > 0:
		return nil, fails(CodeInvalidArgument, "capture of %s exceeds the hold's %s", op.Amount, h.Amount)
	}
	return h, crossFailure{}
}

// takeCaptures marks a prepared participant's captured holds as its transaction's: out of the
// expiry index until the finish.
func (l *Ledger) takeCaptures(p *Participation) {
	for _, c := range p.Captures {
		h, r := l.findHold(p.ProjectID, c.HoldID)
		if r != nil || h.Status != HoldActive {
			panic(fmt.Sprintf("ledger: prepare of %s lost hold %s", p.TransactionID, c.HoldID)) // checked in this apply
		}
		if h.ExpiresAt != 0 {
			l.delete(holdExpiryKey(h))
		}
		h.CrossTransactionID = p.TransactionID
		l.putHold(h)
	}
}

// capturedHold returns a prepared participant's captured hold, which must be its own.
func (l *Ledger) capturedHold(p *Participation, c HoldCapture) *Hold {
	h, r := l.findHold(p.ProjectID, c.HoldID)
	if r != nil || h.Status != HoldActive || h.CrossTransactionID != p.TransactionID {
		panic(fmt.Sprintf("ledger: participation %s names hold %s that it does not hold", p.TransactionID, c.HoldID)) // corruption
	}
	return h
}

// returnCaptures gives a failed transaction's captured holds back as they were: active, in the
// expiry index again, or expired now when their time passed meanwhile.
func (l *Ledger) returnCaptures(p *Participation) {
	for _, c := range p.Captures {
		h := l.capturedHold(p, c)
		h.CrossTransactionID = ""
		switch {
		case h.ExpiresAt != 0 && h.ExpiresAt <= l.b.Now:
			l.resolve(h, HoldExpired)
		case h.ExpiresAt != 0:
			l.set(holdExpiryKey(h), nil)
			if l.nextExpiryMs == 0 || h.ExpiresAt < l.nextExpiryMs {
				l.nextExpiryMs = h.ExpiresAt
			}
			l.putHold(h)
		default:
			l.putHold(h)
		}
	}
}

// finishCaptures captures a committing participant's holds as CaptureHold does: the leg's
// amount is its transfer, the rest of the hold is released, LEDGER_HOLD_CAPTURED is emitted.
// The caller posts the legs and writes the balances.
func (l *Ledger) finishCaptures(p *Participation) {
	for _, c := range p.Captures {
		h := l.capturedHold(p, c)
		leg := p.Legs[slices.IndexFunc(p.Legs, func(leg CrossLeg) bool { return leg.Index == c.Index })]
		w := l.wallet(h.WalletID)
		if w == nil {
			panic(fmt.Sprintf("ledger: hold %s names missing wallet %s", h.ID, h.WalletID)) // corruption
		}
		w.Held = mustSub(w.Held, h.Amount)
		l.putWallet(w)
		h.CrossTransactionID = ""
		h.CapturedAmount = leg.Operation.Amount
		h.CaptureTransactionID = p.TransactionID
		l.finishHold(h, HoldCaptured)
	}
}

// IsCrossShardHold reports a hold placed by a cross-shard prepare (only its transaction's
// decision resolves it): for the router, which answers a capture of one as CaptureHold does.
func IsCrossShardHold(holdID string) bool { return isCrossHold(holdID) }
