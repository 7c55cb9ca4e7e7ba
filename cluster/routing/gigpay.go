package routing

import (
	"errors"
	"sync"

	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/gigpay"
)

// GigPay reads. A token lives in the shard of its source wallet: its ID ('k' + slot) and its
// bearer string ('g' + slot) both carry that slot, and so does a payment's ID ('y' + slot), so
// each read asks that one shard. An ID or string that carries no slot (or is longer than any
// the API makes) names nothing, and is not found without asking anyone. The payments list asks
// every shard at once and merges their pages (gigpay.MergePages).

// slotShard is the shard of a GigPay ID or token string; ok is false for one that cannot exist.
func (rd *reader) slotShard(id string) (int, bool) {
	if len(id) > fsm.GeneratedIDMaxLength {
		return 0, false
	}
	return rd.idShard(id)
}

// askGigPay asks the shard of q.ID about it; missing when the ID carries no slot.
func (rd *reader) askGigPay(q shardQuery, missing *fsm.Error) (*shardAnswer, error) {
	shardID, ok := rd.slotShard(q.ID)
	if !ok {
		return nil, missing
	}
	return rd.ask(shardID, q)
}

// GetToken reads a token by its ID, from its source wallet's shard.
func (rd *reader) GetToken(projectID, tokenID string) (*gigpay.Token, error) {
	a, err := rd.askGigPay(shardQuery{Kind: queryGetToken, ProjectID: projectID, ID: tokenID},
		missing(gigpay.CodeTokenNotFound, "token "+quoteBounded(tokenID)))
	if err != nil {
		return nil, err
	}
	return a.Token, nil
}

// GetTokenByString reads a token by its bearer string, from the shard its slot names. The
// shard compares the string in constant time; the rejection never quotes the string (it is a
// credential).
func (rd *reader) GetTokenByString(projectID, token string) (*gigpay.Token, error) {
	a, err := rd.askGigPay(shardQuery{Kind: queryGetTokenByString, ProjectID: projectID, ID: token},
		missing(gigpay.CodeTokenNotFound, "token"))
	if err != nil {
		return nil, err
	}
	return a.Token, nil
}

// GetGigPayPayment reads a GigPay payment by its ID, from its wallet's shard.
func (rd *reader) GetGigPayPayment(projectID, paymentID string) (*gigpay.Payment, error) {
	a, err := rd.askGigPay(shardQuery{Kind: queryGetGigPayPayment, ProjectID: projectID, ID: paymentID},
		missing(gigpay.CodePaymentNotFound, "payment "+quoteBounded(paymentID)))
	if err != nil {
		return nil, err
	}
	return a.GigPayPayment, nil
}

// quoteBounded names an ID in a message, cut to the longest ID the API makes.
func quoteBounded(id string) string {
	if len(id) > fsm.GeneratedIDMaxLength {
		id = id[:fsm.GeneratedIDMaxLength] + "…"
	}
	return id
}

// paymentScanMax bounds gigpay.PaymentQuery.ScanMax as the wire carries it.
const paymentScanMax = 1 << 20

// ListGigPayPayments reads one page of a project's GigPay payments: every shard answers the
// same query at once (each through a reader of its own: a reader serves one goroutine), and
// the pages merge into one (gigpay.MergePages). A query the shards could not take is an
// InvalidArgument; a shard that fails fails the page (it may hold the page's payments).
func (rd *reader) ListGigPayPayments(projectID string, q gigpay.PaymentQuery) ([]gigpay.Payment, []byte, bool, error) {
	switch {
	case q.Sort != gigpay.SortCreated && q.Sort != gigpay.SortAmount:
		return nil, nil, false, &fsm.Error{Code: fsm.CodeInvalidArgument, Message: "unknown payments sort"}
	case q.Limit < 1 || q.Limit > fsm.ListMaxCount:
		return nil, nil, false, &fsm.Error{Code: fsm.CodeInvalidArgument, Message: "payments limit out of range"}
	case q.ScanMax < 0 || q.ScanMax > paymentScanMax:
		return nil, nil, false, &fsm.Error{Code: fsm.CodeInvalidArgument, Message: "payments scan bound out of range"}
	}
	args, err := encodePaymentQuery(&q)
	if err != nil {
		// Only an oversized cursor or filter makes a query this long.
		return nil, nil, false, &fsm.Error{Code: fsm.CodeInvalidArgument, Message: "payments query too long (cursor or filters)"}
	}
	sq := shardQuery{Kind: queryListGigPayPayments, ProjectID: projectID, Args: args}
	count := rd.router.shards.ShardCount()
	pages := make([]*gigpay.PaymentPage, count)
	errs := make([]error, count)
	if count == 1 {
		pages[0], errs[0] = paymentPage(rd, 0, sq)
	} else {
		var wg sync.WaitGroup
		for shardID := range count {
			wg.Go(func() {
				pages[shardID], errs[shardID] = paymentPage(rd.router.newReader(rd.ctx), shardID, sq)
			})
		}
		wg.Wait()
	}
	if err := firstError(errs); err != nil {
		return nil, nil, false, err
	}
	items, next, hasMore := gigpay.MergePages(&q, pages)
	return items, next, hasMore, nil
}

// paymentPage is one shard's page of a payments list, asked through rd.
func paymentPage(rd *reader, shardID int, q shardQuery) (*gigpay.PaymentPage, error) {
	a, err := rd.ask(shardID, q)
	if err != nil {
		return nil, err
	}
	if a.PaymentPage == nil {
		return nil, errors.New("routing: a listGigPayPayments answer without its page")
	}
	return a.PaymentPage, nil
}

// firstError is the first failure of a fan-out, preferring one that is not a business
// rejection (a shard that could not answer says more than one that refused the query, which
// every shard refuses alike).
func firstError(errs []error) error {
	var rejection error
	for _, err := range errs {
		var fsmErr *fsm.Error
		switch {
		case err == nil:
		case errors.As(err, &fsmErr):
			if rejection == nil {
				rejection = err
			}
		default:
			return err
		}
	}
	return rejection
}
