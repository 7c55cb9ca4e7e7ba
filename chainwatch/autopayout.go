package chainwatch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gigaledger/gigaledger/chainwatch/payout"
	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/gigawallet"
)

// autoPayoutAccountsMax bounds the accounts one sync round looks at.
const autoPayoutAccountsMax = 1000

// autoPayoutCandidatesMax bounds the outputs one auto-payout spends.
const autoPayoutCandidatesMax = 1000

// autoPayouts pays out, for each account of the shard with auto-payouts, its confirmed balance
// to its payout address when due (payout_frequency passed, or payout_threshold reached): the
// whole of its spendable outputs, the fee deducted from the output. A periodic payout with
// nothing to pay (below dust, the wallet's money moved elsewhere) is skipped with its reason,
// recorded by the shard, so each period is decided once. The payout is reserved here and sent by
// broadcastUnmined.
func (f *Follower) autoPayouts(ctx context.Context) error {
	if f.cfg.Keys == nil {
		return nil
	}
	reader := f.shard.Reader()
	accounts, err := reader.AutoPayoutAccounts(autoPayoutAccountsMax)
	if err != nil || len(accounts) == 0 {
		return err
	}
	var feeRate uint64
	if rate, err := f.node.EstimateFee(ctx, 6); err == nil && rate > 0 {
		feeRate = uint64(rate)
	}
	now := time.Now().UnixMilli()
	for i := range accounts {
		a := &accounts[i]
		spendable, err := reader.SpendableUTXOs(a.ProjectID, a.ForeignID, autoPayoutCandidatesMax)
		if err != nil {
			return err
		}
		var sum uint64
		for _, u := range spendable {
			sum += u.Koinu
		}
		due, periodic := a.AutoPayoutDue(now, fsm.AmountFromUint64(sum))
		if !due {
			continue
		}
		order := PayoutOrder{Account: a, Spendable: spendable, ProjectID: a.ProjectID, Kind: gigawallet.PaymentKindAuto,
			Outputs:  []payout.Output{{Address: a.PayoutAddress, Koinu: sum, DeductFeeShare: payout.FeeShareAll}},
			Percents: []string{"100"}, FeeRateKoinuPerKB: feeRate, Broadcast: true, Confirmations: f.cfg.PayoutConfirmations}
		var reason string
		cmd, _, err := PlanPayout(f.cfg.Keys, f.cfg.Network, order)
		switch {
		case sum == 0:
			reason = "nothing confirmed to pay"
		case errors.Is(err, payout.ErrDust), errors.Is(err, payout.ErrInsufficientFunds), errors.Is(err, payout.ErrFeeAboveMax):
			reason = err.Error()
		case err != nil:
			return err
		default:
			result, err := f.shard.Propose(ctx, cmd)
			if err != nil {
				return err
			}
			if result.Err == nil {
				f.cfg.Logger.Info("auto-payout reserved", "shard", f.shardID, "foreign_id", a.ForeignID, "koinu", sum)
				continue
			}
			if result.Err.Code != gigawallet.CodeInsufficientFunds {
				continue // not due any more, or its outputs taken meanwhile: the next round decides
			}
			reason = result.Err.Message
		}
		if !periodic {
			continue
		}
		skip := &gigawallet.SkipAutoPayout{ProjectID: a.ProjectID, ForeignID: a.ForeignID, Reason: boundReason(reason)}
		result, err := f.shard.Propose(ctx, skip)
		if err != nil {
			return err
		}
		if result.Err != nil && result.Err.Code != gigawallet.CodeAutoPayoutNotDue {
			return fmt.Errorf("chainwatch: skip auto-payout of %s: %w", a.ForeignID, result.Err)
		}
	}
	return nil
}
