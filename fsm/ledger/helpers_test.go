package ledger

import (
	"github.com/gigaledger/gigaledger/fsm"
)

// The tests write commands in the first release's flat shape (legacyCommand): it reads well in
// tables, and every command still goes through the typed command of its op and the version-2
// envelope, as a proposer sends it. Results come back flattened the same way.

type (
	Command   = legacyCommand
	Error     = fsm.Error
	ErrorCode = fsm.ErrorCode
)

var (
	AmountFromUint64 = fsm.AmountFromUint64
	ParseAmount      = fsm.ParseAmount
	AmountFromBig    = fsm.AmountFromBig
)

// Encode encodes the typed command of c's op in the current envelope.
func (c *legacyCommand) Encode(dst []byte) []byte {
	return append(dst, fsm.EncodeCommand(c.typed())...)
}

// Result is a result in the first release's flat shape.
type Result struct {
	Err         *fsm.Error
	Project     *Project
	Asset       *Asset
	Customer    *Customer
	Wallet      *Wallet
	Transaction *Transaction
	Hold        *Hold
}

func flatten(r *fsm.Result) *Result {
	out := &Result{Err: r.Err}
	switch v := r.Value.(type) {
	case *Project:
		out.Project = v
	case *Asset:
		out.Asset = v
	case *Customer:
		out.Customer = v
	case *Wallet:
		out.Wallet = v
	case *Transaction:
		out.Transaction = v
	case *HoldResolution:
		out.Hold, out.Transaction = v.Hold, v.Transaction
	}
	return out
}

// machineLedger is a machine with the accounting core as its only family, with the methods of
// both (Close, ApplyBatch, Snapshot... of the machine; the queries of the ledger).
type machineLedger struct {
	*fsm.Machine
	*Ledger
}

func openTest(dir string, _ any) (*machineLedger, error) {
	reg := fsm.NewRegistry()
	f := Register(reg)
	f.RegisterCrossHook(testHookName, &testHook)
	m, err := fsm.Open(dir, nil, reg)
	if err != nil {
		return nil, err
	}
	return &machineLedger{Machine: m, Ledger: f.Of(m)}, nil
}

// applyTyped applies one typed command as its own log entry.
func (tl *testLedger) applyTyped(c fsm.Command) *Result {
	tl.t.Helper()
	tl.index++
	tl.nowMs += 1000
	out := tl.ledger.ApplyBatch(tl.index, tl.nowMs, [][]byte{fsm.EncodeCommand(c)})
	return flatten(out[0].(*fsm.Result))
}

func (tl *testLedger) checkInvariants() {
	tl.t.Helper()
	if err := tl.ledger.CheckInvariants(); err != nil {
		tl.t.Fatalf("invariants: %v", err)
	}
}
