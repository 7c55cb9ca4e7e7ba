package main

import (
	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/gigawallet"
	"github.com/gigaledger/gigaledger/fsm/ledger"
)

// families is the state machine every shard runs: the kernel's registry with every API family
// registered in it. Every node of a cluster must compose the same families in the same order
// (op codes, key prefixes and counters are in the log and the store).
type families struct {
	registry   *fsm.Registry
	ledger     *ledger.Family
	gigawallet *gigawallet.Family
}

func newFamilies() *families {
	reg := fsm.NewRegistry()
	// The accounting core first: its counters come first in the stored clock record.
	core := ledger.Register(reg)
	return &families{registry: reg, ledger: core, gigawallet: gigawallet.Register(reg, core)}
}

// ledgerOf is the accounting core of a shard's machine, or nil when sm is not one.
func (f *families) ledgerOf(sm any) *ledger.Ledger {
	m, ok := sm.(*fsm.Machine)
	if !ok || m == nil {
		return nil
	}
	return f.ledger.Of(m)
}
