package httpapi

import (
	"github.com/gigaledger/gigaledger/fsm"
	gw "github.com/gigaledger/gigaledger/httpapi/gigawallet"
	"github.com/gin-gonic/gin"
)

// Idempotency-Key on the GigaWallet routes that move money or create things (pay, paytx,
// payfrom, refund, invoice creation): the kernel's keys (fsm/idempotency.go), as the Cloud Wallet
// and GigPay routes use them. The first request with a key applies and its answer is stored on
// the account's shard; a retry with the same key and the same request (method, route, path
// parameters, body) gets the same answer (the same payout or invoice) with Idempotent-Replayed:
// true and changes nothing; the same key with a different request is refused, 409
// already-exists, and changes nothing. Keys are scoped per account (project and foreign ID), so
// one account's key never meets another's, and kept 24 hours. Without the header every route
// answers as before (GigaWallet's clients send none). The account upsert needs no key: it is
// idempotent already, and ignores the header.
//
// A payout is planned and signed by the node that takes the request, from the account's free
// outputs, before the shard reserves them; a retry planned after the first attempt reserved them
// would plan another transaction (or find no funds). So a keyed payout first asks the shard
// whether the key was used (fsm.CheckIdempotency, applying nothing): a replay answers the stored
// payout without planning, signing or broadcasting anything. A plan that went stale meanwhile
// (an input or the change address taken) keeps nothing under the key (fsm.StaleRefusals), so the
// handler plans again under the same key; two racing requests with one key reserve one payout:
// the loser's transaction is discarded in memory, never reserved nor sent.

// gwIdempotency reads the request's Idempotency-Key (nil without one), scoped to the account
// whose shard the command goes to; a malformed key is 400 bad-request.
func (g *gigaWallet) gwIdempotency(c *gin.Context, where, foreignID string) (*fsm.Idempotency, *gw.Error) {
	idem, apiErr := idempotencyOf(c, nil)
	if apiErr != nil {
		return nil, gw.NewError(gw.CodeBadRequest, "%s: %s", where, apiErr.message)
	}
	if idem != nil {
		idem.Scope = gwIdempotencyScope(g.cfg.ProjectID, foreignID)
	}
	return idem, nil
}

// gwIdempotencyScope is the scope of an account's keys. A foreign ID holds no '/' (checkForeignID),
// and the Cloud Wallet API's scopes are bare project IDs, which hold none either.
func gwIdempotencyScope(projectID, foreignID string) string {
	return projectID + "/" + foreignID
}

// storedAnswer asks the account's shard whether idem was used (fsm.CheckIdempotency): the stored
// result when it was (marked replayed on the response), nil when it was not; a key used for
// another request is 409 already-exists.
func (g *gigaWallet) storedAnswer(c *gin.Context, where, foreignID string, idem *fsm.Idempotency) (*fsm.Result, *gw.Error) {
	ctx, cancel := g.withTimeout(c)
	defer cancel()
	result, err := g.backend.Propose(ctx, fsm.Envelope{Command: &fsm.CheckIdempotency{ProjectID: g.cfg.ProjectID, OwnerID: foreignID}, Idempotency: idem})
	switch {
	case err != nil:
		return nil, gwProposeError(where, err)
	case result == nil:
		return nil, gw.NewError(gw.CodeUnknownError, "%s: no result", where)
	case result.Replayed:
		c.Header(headerIdempotentReplayed, "true")
		return result, nil
	case result.Err != nil && result.Err.Code == fsm.CodeIdempotencyKeyUnused:
		return nil, nil
	case result.Err != nil:
		return nil, gwError(where, result.Err) // IdempotencyKeyMismatch: 409 already-exists
	}
	return nil, gw.NewError(gw.CodeUnknownError, "%s: the idempotency check answered nothing", where)
}
