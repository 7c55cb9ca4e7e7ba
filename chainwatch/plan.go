package chainwatch

import (
	"errors"
	"fmt"

	"github.com/gigaledger/gigaledger/chainwatch/dogecoin"
	"github.com/gigaledger/gigaledger/chainwatch/payout"
	"github.com/gigaledger/gigaledger/fsm/gigawallet"
)

// PayoutOrder is one payout to plan for an account: what the API's /pay, payfrom and refund,
// and the auto-payouts, ask.
type PayoutOrder struct {
	Account   *gigawallet.Account
	Spendable []gigawallet.UTXO // the account's confirmed, free outputs (Reader.SpendableUTXOs)
	Outputs   []payout.Output
	// Percents are the outputs' deduct_fee_percent as the client wrote them, for the record.
	Percents          []string
	ExplicitFeeKoinu  uint64
	MaxFeeKoinu       uint64
	FeeRateKoinuPerKB uint64
	Kind, InvoiceID   string
	Broadcast         bool
	Confirmations     int32
	ProjectID         string
}

// ErrNoKeys: this node has no wallet seed, so it cannot sign.
var ErrNoKeys = errors.New("chainwatch: no wallet seed on this node")

// PlanPayout plans a payout (chainwatch/payout: GigaWallet's rules, its bugs fixed), derives the
// keys of its inputs from the cluster's seed — in memory, only for this signature — signs it, and
// answers the command that reserves it. A refusal of the plan is payout's error (errors.Is).
func PlanPayout(keys *dogecoin.Keychain, network dogecoin.Network, order PayoutOrder) (*gigawallet.ReservePayment, []byte, error) {
	if keys == nil {
		return nil, nil, ErrNoKeys
	}
	a := order.Account
	candidates := make([]payout.UTXO, 0, len(order.Spendable))
	for _, u := range order.Spendable {
		candidates = append(candidates, payout.UTXO{TxID: u.TxID.String(), Vout: u.Vout, Koinu: u.Koinu, Address: u.Address,
			Branch: dogecoin.Branch(u.Branch), Index: u.KeyIndex, Height: u.Height})
	}
	plan, err := payout.NewPlan(payout.Request{Outputs: order.Outputs, ExplicitFeeKoinu: order.ExplicitFeeKoinu,
		MaxFeeKoinu: order.MaxFeeKoinu, FeeRateKoinuPerKB: order.FeeRateKoinuPerKB, Network: network}, candidates)
	if err != nil {
		return nil, nil, err
	}
	accountKeys, err := dogecoin.ParseAccountKeys(a.XPub, network)
	if err != nil {
		return nil, nil, fmt.Errorf("chainwatch: the account's keys: %w", err)
	}
	change, err := accountKeys.ChangeAddress(a.NextInternal)
	if err != nil {
		return nil, nil, fmt.Errorf("chainwatch: derive the change address: %w", err)
	}
	signed, err := payout.Sign(plan, change.Address, payout.AccountKeySource{Keychain: keys, Account: a.Index}, network)
	if err != nil {
		return nil, nil, fmt.Errorf("chainwatch: sign: %w", err)
	}
	cmd := &gigawallet.ReservePayment{ProjectID: order.ProjectID, ForeignID: a.ForeignID, Kind: order.Kind, InvoiceID: order.InvoiceID,
		FeeKoinu: plan.FeeKoinu, RawTx: signed.Raw, Broadcast: order.Broadcast, Confirmations: order.Confirmations}
	for i, o := range plan.Outputs {
		percent := "0"
		if i < len(order.Percents) && order.Percents[i] != "" {
			percent = order.Percents[i]
		}
		cmd.Outputs = append(cmd.Outputs, gigawallet.PayOutput{Address: o.Address, Koinu: o.Koinu, DeductFeePercent: percent})
	}
	if plan.ChangeKoinu > 0 {
		cmd.ChangeAddress, cmd.ChangeIndex, cmd.ChangeKoinu = change.Address, a.NextInternal, plan.ChangeKoinu
	}
	return cmd, signed.Raw, nil
}
