package gigawallet

import (
	"reflect"
	"testing"

	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/ledger"
)

// FuzzApplyCommand decodes arbitrary bytes as a command of the full registry (the accounting core
// and this family) and applies what decodes to a shard that has an account, an invoice, a
// confirmed deposit and a chain cursor: no input may crash it, a decoded command re-encodes to
// itself, and the ledger and custody invariants hold after it.
func FuzzApplyCommand(f *testing.F) {
	reg := fsm.NewRegistry()
	core := ledger.Register(reg)
	Register(reg, core)
	for _, spec := range reg.Specs() {
		f.Add(fsm.EncodeCommand(spec.Example))
	}
	deposit := ObservedTx{TxID: Hash{0x70, 1}, Outputs: []ObservedOutput{{Vout: 0, Address: "nInv1", Koinu: 10 * doge}}}
	f.Add(fsm.EncodeCommand(&ObserveChain{Network: "regtest", Genesis: Hash{0xee}, Height: 3, Hash: Hash{3}, PrevHash: Hash{0xb0, 2, 2},
		FilterIndex: 1, Tags: tags([]ObservedTx{deposit}), Txs: []ObservedTx{{TxID: Hash{9}, Spends: []Outpoint{{TxID: deposit.TxID}}}}}))
	f.Add(fsm.EncodeCommand(&RewindChain{Height: 1, Hash: Hash{0xb0, 1, 1}}))
	f.Add(fsm.EncodeCommand(&DropTransactions{TxIDs: []Hash{deposit.TxID}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := reg.DecodeEnvelope(data)
		if err != nil {
			return
		}
		again, err := reg.DecodeEnvelope(fsm.EncodeEnvelope(env))
		if err != nil || !reflect.DeepEqual(again.Command, env.Command) {
			t.Fatalf("re-encode differs: %+v vs %+v (%v)", env, again, err)
		}
		if raise, ok := env.Command.(*fsm.RaiseRules); ok && raise.Version > fsm.RulesVersion {
			// A replica meeting a raise beyond its binary stops there by design (fsm/rules.go):
			// only a shard's leader proposes one, and only a version every voter implements.
			return
		}
		h := newChainHarness(t)
		h.mine()
		h.invoice("shop", "nInv1", 10*doge, 0)
		h.mine(deposit)
		h.apply(env.Command)
		// What the command left must survive the next block, on whatever cursor it left.
		cur, err := h.family.Of(h.m).ChainCursor()
		if err != nil {
			t.Fatal(err)
		}
		next := &ObserveChain{Network: cur.Network, Genesis: cur.Genesis, Height: cur.Height + 1, Hash: Hash{0xfe},
			PrevHash: cur.Hash, FilterIndex: h.index}
		if r := h.apply(next); r.Err != nil && cur.Network == "regtest" {
			t.Fatalf("the next block: %v", r.Err)
		}
	})
}
