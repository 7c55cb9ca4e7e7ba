package main

import (
	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/gigawallet"
	"github.com/gigaledger/gigaledger/fsm/gigpay"
	"github.com/gigaledger/gigaledger/fsm/ledger"
)

// families is the state machine every shard runs: the kernel's registry with every API family
// registered in it. Every node of a cluster must compose the same families in the same order
// (op codes, key prefixes and counters are in the log and the store).
type families struct {
	registry   *fsm.Registry
	ledger     *ledger.Family
	gigawallet *gigawallet.Family
	gigpay     *gigpay.Family
}

func newFamilies() *families {
	reg := fsm.NewRegistry()
	// The accounting core first: its counters come first in the stored clock record.
	core := ledger.Register(reg)
	// Then GigaWallet, then GigPay: the order is replicated state (op codes, prefixes, the
	// counters' places in the clock record); a family is only ever added after the others.
	f := &families{registry: reg, ledger: core}
	f.gigawallet = gigawallet.Register(reg, core)
	f.gigpay = gigpay.Register(reg, core)
	return f
}

// ledgerOf is the accounting core of a shard's machine, or nil when sm is not one.
func (f *families) ledgerOf(sm any) *ledger.Ledger {
	m, ok := sm.(*fsm.Machine)
	if !ok || m == nil {
		return nil
	}
	return f.ledger.Of(m)
}
