package gigpay

import (
	"reflect"
	"testing"

	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/ledger"
)

// FuzzApplyCommand decodes arbitrary bytes as a command of the full registry (the accounting
// core and this family) and applies what decodes to a shard with funded wallets, an active
// token, a claimed one and a pending withdrawal: no input may crash it, a decoded command
// re-encodes to itself, and the ledger's invariants hold after it (checked at cleanup).
func FuzzApplyCommand(f *testing.F) {
	reg := fsm.NewRegistry()
	core := ledger.Register(reg)
	Register(reg, core)
	for _, spec := range reg.Specs() {
		f.Add(fsm.EncodeCommand(spec.Example))
	}
	f.Add(fsm.EncodeCommand(&ClaimToken{ProjectID: project, Token: "g0001" + "0000000000000000000005", DestinationWalletID: "w0001bob2"}))
	f.Add(fsm.EncodeCommand(&CloseToken{ProjectID: project, TokenID: "k0001tok6"}))
	f.Add(fsm.EncodeCommand(&UpdatePayment{ProjectID: project, PaymentID: "y0001w", Status: PaymentCompleted}))
	// A claim of the active token to a payee "on another shard": begin, and a prepare of the
	// payer's side (the hook marks the token; the tick then must not expire it).
	claim := ledger.CrossExtras{Captures: []ledger.HoldCapture{{Index: 0, HoldID: "h000100000000000000003.0"}},
		Hook: &ledger.CrossHook{Name: ClaimHook, Anchor: "w0001alice1",
			Data: (&ClaimAcross{TokenID: "k0001tok3", DestinationWalletID: "w0002bob9", DestinationCustomerID: "bob"}).Encode()}}
	transfer := ledger.Operation{Type: ledger.OperationTransfer, From: "w0001alice1", To: "w0002bob9", Amount: fsm.AmountFromUint64(100)}
	f.Add(fsm.EncodeCommand(&ledger.CrossBegin{ProjectID: project, IDPrefix: "t0001", Operations: []ledger.Operation{transfer},
		Shards: []ledger.WalletShard{{WalletID: "w0001alice1", Shard: 0}, {WalletID: "w0002bob9", Shard: 1}}, CrossExtras: claim}))
	f.Add(fsm.EncodeCommand(&ledger.CrossPrepare{ProjectID: project, TransactionID: "t00010000000000000009", Wallets: []string{"w0001alice1"},
		Legs: []ledger.CrossLeg{{Index: 0, Operation: transfer}}, CrossExtras: claim}))
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
		h := newHarness(t)
		payer, payee := h.wallet("alice", "usd", 10_000), h.wallet("bob", "usd", 0)
		h.mustCreate(h.spec(payer, 100))
		claimed := h.mustCreate(h.spec(payer, 200))
		h.ok(&ClaimToken{ProjectID: project, Token: claimed.Token, DestinationWalletID: payee})
		h.ok(&CreatePayment{ProjectID: project, PaymentID: "y0001w", Type: PaymentWithdrawal, WalletID: payer, AssetID: "usd",
			Amount: Decimal{Units: fsm.AmountFromUint64(3)}})
		h.apply(env.Command)
		h.applyAt(h.now+TokenLifetimeMaxMs*2, &fsm.Tick{}) // every token expires
	})
}
