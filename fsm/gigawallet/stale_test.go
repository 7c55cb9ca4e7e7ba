package gigawallet

import (
	"testing"

	"github.com/gigaledger/gigaledger/fsm"
)

// The commands planned from state their proposer read name the refusals that mean "plan again":
// under an idempotency key those keep nothing (fsm.StaleRefusals), every other refusal is kept.
func TestStaleRefusals(t *testing.T) {
	for _, tc := range []struct {
		cmd   fsm.StaleRefusals
		stale []fsm.ErrorCode
		kept  []fsm.ErrorCode
	}{
		{&ReservePayment{}, []fsm.ErrorCode{CodeInputUnavailable, CodeChangeIndexTaken},
			[]fsm.ErrorCode{CodeInsufficientFunds, CodePaymentExists, CodeRefundExists, CodeRefundTooLarge, CodeAccountNotFound, fsm.CodeInvalidArgument}},
		{&CreateInvoice{}, []fsm.ErrorCode{CodeInvoiceIndexTaken}, []fsm.ErrorCode{CodeInvoiceExists, CodeAccountNotFound, fsm.CodeInvalidArgument}},
		{&UpsertAccount{}, []fsm.ErrorCode{CodeAccountIndexTaken}, []fsm.ErrorCode{CodeAccountNotFound, fsm.CodeInvalidArgument}},
	} {
		for _, code := range tc.stale {
			if !tc.cmd.StaleRefusal(code) {
				t.Errorf("%T: %s is not stale", tc.cmd, code)
			}
		}
		for _, code := range tc.kept {
			if tc.cmd.StaleRefusal(code) {
				t.Errorf("%T: %s is stale", tc.cmd, code)
			}
		}
	}
}
