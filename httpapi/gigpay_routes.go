package httpapi

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gigaledger/gigaledger/cluster/keyspace"
	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/gigpay"
	"github.com/gigaledger/gigaledger/fsm/ledger"
	gw "github.com/gigaledger/gigaledger/httpapi/gigawallet"
	gp "github.com/gigaledger/gigaledger/httpapi/gigpay"
	"github.com/gin-gonic/gin"
)

// The GigPay API (seed 002, docs/gigpay-api.md): accounts are customer wallets of one project,
// payment tokens hold their amount on the source wallet until claimed, rejected, expired or
// closed, and payments are listed with filters, sorting and cursor paging. The handlers decode
// strictly (httpapi/gigpay), propose one command (a batch: one per slot) and render the
// record; the state machine (fsm/gigpay) decides every business rule.

// ID kinds of GigPay.
const (
	idKindToken   idKind = 'k'
	idKindPayment idKind = 'y'
	// tokenStringKind is the first character of a token's bearer string.
	tokenStringKind = 'g'
	// tokenRandomChars is the bearer string's random part: 22 base64url characters, 132 bits.
	tokenRandomChars = 22
	// batchGroupsConcurrencyMax bounds the CreateTokens commands of one batch in flight.
	batchGroupsConcurrencyMax = 8
	// gigPayAssetID is the asset created with the project: US dollars in cents.
	gigPayAssetID = "usd"
	// tagGigPay is the OpenAPI tag of the GigPay routes.
	tagGigPay = "gigpay"
)

// gigPay serves the GigPay routes.
type gigPay struct {
	*server
	cfg GigPayConfig
	// ready records that the project and its usd asset exist.
	mu    sync.Mutex
	ready bool
}

// nowMs is the handler's clock, Unix milliseconds.
func (g *gigPay) nowMs() int64 {
	if g.cfg.Clock != nil {
		return g.cfg.Clock()
	}
	return time.Now().UnixMilli()
}

// ensureProject creates the GigPay project and its usd asset the first time a route needs them;
// either may exist already. A failure is tried again by the next request.
func (g *gigPay) ensureProject(c *gin.Context) *apiError {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ready {
		return nil
	}
	for _, cmd := range []fsm.Command{
		&ledger.CreateProject{ProjectID: g.cfg.ProjectID, Name: "GigPay"},
		&ledger.CreateAsset{ProjectID: g.cfg.ProjectID, AssetID: gigPayAssetID, Name: "US dollar", Code: "USD", Fractions: 100},
	} {
		ctx, cancel := g.withTimeout(c)
		result, err := g.backend.Propose(ctx, fsm.Envelope{Command: cmd})
		cancel()
		if err != nil {
			return fromBackendError(err, true) // both commands are safe to send again
		}
		if result.Err != nil && result.Err.Code != ledger.CodeProjectExists && result.Err.Code != ledger.CodeAssetExists {
			return internalError(fmt.Errorf("create the GigPay project: %w", result.Err))
		}
	}
	g.ready = true
	return nil
}

// badInput answers a decoder's refusal.
func (g *gigPay) badInput(c *gin.Context, e *gp.Error) {
	g.fail(c, &apiError{status: e.Status, code: e.Code, message: e.Message})
}

// refusal turns a GigPay rejection into an answer: an account or asset named in a command that
// does not exist is 422 (the request is well formed; the ledger refuses it), and the token or
// payment the rejection concerns rides along.
func (g *gigPay) refusal(e *fsm.Error, value fsm.Value) *apiError {
	answer := fromFSMError(e, value)
	switch e.Code {
	case ledger.CodeWalletNotFound, ledger.CodeAssetNotFound, ledger.CodeCustomerNotFound, ledger.CodeProjectNotFound:
		answer.status = http.StatusUnprocessableEntity
	}
	switch v := value.(type) {
	case *gigpay.Token:
		view := gp.TokenOf(v, g.cfg.Env)
		answer.token = &view
	case *gigpay.Payment:
		view := gp.PaymentOf(v)
		answer.payment = &view
	}
	return answer
}

// propose hands one command to the backend with the request's Idempotency-Key (scoped to the
// GigPay project). It answers the request itself unless the command succeeded.
func (g *gigPay) propose(c *gin.Context, cmd fsm.Command) (*fsm.Result, bool) {
	env := fsm.Envelope{Command: cmd}
	idem, apiErr := idempotencyOf(c, cmd)
	if apiErr != nil {
		g.fail(c, apiErr)
		return nil, false
	}
	if idem != nil {
		idem.Scope = g.cfg.ProjectID
		env.Idempotency = idem
	}
	result, err := g.proposeEnvelope(c, env)
	if err != nil {
		g.fail(c, err)
		return nil, false
	}
	if result.Replayed {
		c.Header(headerIdempotentReplayed, "true")
	}
	if result.Err != nil {
		g.fail(c, g.refusal(result.Err, result.Value))
		return result, false
	}
	return result, true
}

func (g *gigPay) proposeEnvelope(c *gin.Context, env fsm.Envelope) (*fsm.Result, *apiError) {
	ctx, cancel := g.withTimeout(c)
	defer cancel()
	result, err := g.backend.Propose(ctx, env)
	switch {
	case err != nil:
		return nil, fromBackendError(err, true)
	case result == nil:
		return nil, internalError(fmt.Errorf("backend returned no result for op %d", env.Command.Op()))
	}
	return result, nil
}

// read runs fn on a linearizable read and writes its value (200) or error; a rejection of a
// read (a missing token, payment or account) keeps its own status (404).
func (g *gigPay) read(c *gin.Context, fn func(reader Reader) (any, error)) {
	ctx, cancel := g.withTimeout(c)
	defer cancel()
	reader, err := g.backend.Read(ctx)
	if err != nil {
		g.fail(c, fromBackendError(err, false))
		return
	}
	value, err := fn(reader)
	if err != nil {
		var e *gp.Error
		if errors.As(err, &e) {
			g.badInput(c, e)
			return
		}
		g.fail(c, fromBackendError(err, false))
		return
	}
	g.ok(c, http.StatusOK, value)
}

// newTokenString makes a token's bearer string: 'g', the slot of its source wallet, and 22
// base64url characters (132 bits) from crypto/rand.
func newTokenString(slot keyspace.Slot) string {
	var random [17]byte // 136 bits, encoded to 23 characters, cut to 22
	if _, err := rand.Read(random[:]); err != nil {
		panic(fmt.Sprintf("httpapi: crypto/rand: %v", err))
	}
	return string(tokenStringKind) + keyspace.SlotHex(slot) + base64.RawURLEncoding.EncodeToString(random[:])[:tokenRandomChars]
}

// tokenSpec is the command item of a validated token: its ID and bearer string carry the source
// wallet's slot, so that the token lives on its shard.
func (g *gigPay) tokenSpec(in gp.TokenInput) gigpay.TokenSpec {
	route := Route{ProjectID: g.cfg.ProjectID, WalletID: in.SourceWalletID}
	return gigpay.TokenSpec{ID: newID(idKindToken, route), Token: newTokenString(slotOf(route)), SourceWalletID: in.SourceWalletID,
		AssetID: in.AssetID, Amount: in.Amount, ExpiresAt: in.ExpiresAt, Memo: in.Memo, ClientReference: in.ClientReference}
}

// --- accounts

// createAccount is POST /api/v1/accounts: the customer (created when new) and a wallet of the
// asset in the GigPay project.
func (g *gigPay) createAccount(c *gin.Context) {
	in, e := gp.DecodeAccount(c.Request.Body)
	if e != nil {
		g.badInput(c, e)
		return
	}
	if apiErr := g.ensureProject(c); apiErr != nil {
		g.fail(c, apiErr)
		return
	}
	fractions, apiErr := g.assetFractions(c, in.AssetID)
	if apiErr != nil {
		g.fail(c, apiErr)
		return
	}
	result, apiErr := g.proposeEnvelope(c, fsm.Envelope{Command: &ledger.UpsertCustomer{ProjectID: g.cfg.ProjectID, CustomerID: in.CustomerID}})
	if apiErr == nil && result.Err != nil {
		apiErr = g.refusal(result.Err, nil)
	}
	if apiErr != nil {
		g.fail(c, apiErr)
		return
	}
	cmd := &ledger.CreateWallet{ProjectID: g.cfg.ProjectID, CustomerID: in.CustomerID, AssetID: in.AssetID,
		WalletID: newID(idKindWallet, Route{ProjectID: g.cfg.ProjectID, CustomerID: in.CustomerID})}
	if result, ok := g.propose(c, cmd); ok {
		w, isWallet := result.Value.(*ledger.Wallet)
		if !isWallet || w == nil {
			g.fail(c, internalError(fmt.Errorf("CreateWallet returned %T", result.Value)))
			return
		}
		g.ok(c, http.StatusCreated, accountOf(w, fractions))
	}
}

// assetFractions reads the fractions of an asset of the project that GigPay can use: 422 when
// it does not exist or its fractions is not a power of ten. Only the fractions: a used asset's
// are answered without a round trip to the metadata shard (backend.Reader.AssetFractions),
// where the whole asset would be read there with its supply from every shard.
func (g *gigPay) assetFractions(c *gin.Context, assetID string) (uint64, *apiError) {
	ctx, cancel := g.withTimeout(c)
	defer cancel()
	reader, err := g.backend.Read(ctx)
	if err != nil {
		return 0, fromBackendError(err, false)
	}
	fractions, err := reader.AssetFractions(g.cfg.ProjectID, assetID)
	if err != nil {
		var rejection *fsm.Error
		if errors.As(err, &rejection) {
			return 0, g.refusal(rejection, nil)
		}
		return 0, fromBackendError(err, false)
	}
	if gigpay.Scale(fractions) < 0 {
		return 0, &apiError{status: http.StatusUnprocessableEntity, code: string(gigpay.CodeUnsupportedAsset),
			message: fmt.Sprintf("asset %q has %d fractions; GigPay needs a power of ten", assetID, fractions)}
	}
	return fractions, nil
}

func accountOf(w *ledger.Wallet, fractions uint64) gp.Account {
	amount := func(a fsm.Amount) gp.Amount { return gp.Amount{Units: a, Fractions: fractions} }
	return gp.Account{ID: w.ID, BusinessAccountID: w.ProjectID, UserIdentityID: w.CustomerID, AssetType: w.AssetID,
		Balance: amount(w.Balance), Available: amount(w.Available()), Held: amount(w.Held), Status: w.Status.String(),
		CreatedAtUtc: gp.FormatTime(w.CreatedAt)}
}

// getAccount is GET /api/v1/accounts/{id}.
func (g *gigPay) getAccount(c *gin.Context) {
	id := c.Param("id")
	g.read(c, func(reader Reader) (any, error) {
		w, err := reader.GetWallet(g.cfg.ProjectID, id)
		if err != nil {
			return nil, err
		}
		// The wallet uses its asset: its fractions are fixed for good (AssetFractions).
		fractions, err := reader.AssetFractions(g.cfg.ProjectID, w.AssetID)
		if err != nil {
			return nil, err
		}
		return accountOf(w, fractions), nil
	})
}

// --- tokens

// createToken is POST /api/v1/payment-tokens.
func (g *gigPay) createToken(c *gin.Context) {
	in, e := gp.DecodeToken(c.Request.Body, g.nowMs())
	if e != nil {
		g.badInput(c, e)
		return
	}
	if apiErr := g.ensureProject(c); apiErr != nil {
		g.fail(c, apiErr)
		return
	}
	cmd := &gigpay.CreateTokens{ProjectID: g.cfg.ProjectID, Items: []gigpay.TokenSpec{g.tokenSpec(in)}}
	result, ok := g.propose(c, cmd)
	if !ok {
		return
	}
	results, isResults := result.Value.(*gigpay.TokenResults)
	if !isResults || len(results.Items) != 1 {
		g.fail(c, internalError(fmt.Errorf("CreateTokens returned %T", result.Value)))
		return
	}
	item := results.Items[0]
	if item.Err != nil {
		g.fail(c, g.refusal(item.Err, nil))
		return
	}
	if item.Replayed {
		c.Header(headerIdempotentReplayed, "true")
	}
	g.ok(c, http.StatusCreated, gp.TokenOf(item.Token, g.cfg.Env))
}

// batchGroup is the items of a batch whose source wallets share a slot: one command.
type batchGroup struct {
	slot    keyspace.Slot
	indices []int
	specs   []gigpay.TokenSpec
}

// createTokenBatch is POST /api/v1/payment-tokens/batch: per item, not all-or-nothing. Each
// item is checked on its own; the valid ones are grouped by their source wallet's slot and each
// group is one CreateTokens command (at most batchGroupsConcurrencyMax in flight), whose items
// the state machine also creates or refuses one by one. The answer lists every item's result
// in request order.
func (g *gigPay) createTokenBatch(c *gin.Context) {
	items, e := gp.DecodeBatch(c.Request.Body, g.nowMs())
	if e != nil {
		g.badInput(c, e)
		return
	}
	idem, apiErr := idempotencyOf(c, nil)
	if apiErr != nil {
		g.fail(c, apiErr)
		return
	}
	if apiErr := g.ensureProject(c); apiErr != nil {
		g.fail(c, apiErr)
		return
	}
	out := make([]gp.BatchResult, len(items))
	bySlot := map[keyspace.Slot]*batchGroup{}
	var groups []*batchGroup
	for i, item := range items {
		out[i].Index = i
		if item.Err != nil {
			out[i].Result, out[i].Error = gp.ResultFailed, &gp.ErrorDetail{Code: item.Err.Code, Message: item.Err.Message}
			continue
		}
		spec := g.tokenSpec(item.Input)
		slot := slotOf(Route{ProjectID: g.cfg.ProjectID, WalletID: spec.SourceWalletID})
		group := bySlot[slot]
		if group == nil {
			group = &batchGroup{slot: slot}
			bySlot[slot] = group
			groups = append(groups, group)
		}
		group.indices = append(group.indices, i)
		group.specs = append(group.specs, spec)
	}
	sem := make(chan struct{}, batchGroupsConcurrencyMax)
	var wg sync.WaitGroup
	for _, group := range groups {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			g.proposeBatchGroup(c, group, batchIdempotency(idem, group), out)
		}()
	}
	wg.Wait()
	g.ok(c, http.StatusOK, gp.BatchAnswer{Data: out})
}

// batchIdempotency derives a group's idempotency key from the request's: one key per slot, and
// a request hash that covers which items the group holds (a retry that groups differently is a
// mismatch, never another group's answer).
func batchIdempotency(idem *fsm.Idempotency, group *batchGroup) *fsm.Idempotency {
	if idem == nil {
		return nil
	}
	keyHash := sha256.Sum256([]byte(idem.Key))
	h := sha256.New()
	h.Write(idem.RequestHash[:])
	for _, i := range group.indices {
		h.Write(binary.BigEndian.AppendUint32(nil, uint32(i)))
	}
	derived := &fsm.Idempotency{Scope: idem.Scope, Key: "batch:" + hex.EncodeToString(keyHash[:16]) + ":" + keyspace.SlotHex(group.slot)}
	h.Sum(derived.RequestHash[:0])
	return derived
}

// proposeBatchGroup proposes one group and writes its items' results into out (each index is
// written by one goroutine only).
func (g *gigPay) proposeBatchGroup(c *gin.Context, group *batchGroup, idem *fsm.Idempotency, out []gp.BatchResult) {
	failAll := func(code, message string) {
		for _, i := range group.indices {
			out[i].Result, out[i].Error = gp.ResultFailed, &gp.ErrorDetail{Code: code, Message: message}
		}
	}
	if idem != nil {
		idem.Scope = g.cfg.ProjectID
	}
	result, apiErr := g.proposeEnvelope(c, fsm.Envelope{Command: &gigpay.CreateTokens{ProjectID: g.cfg.ProjectID, Items: group.specs}, Idempotency: idem})
	if apiErr != nil {
		if apiErr.status >= http.StatusInternalServerError && apiErr.status != http.StatusServiceUnavailable {
			g.logger.Error("gigpay batch group failed", "error", apiErr.cause)
		}
		failAll(apiErr.code, apiErr.message)
		return
	}
	if result.Err != nil {
		if result.Err.Code == fsm.CodeIdempotencyKeyMismatch {
			// The refusal names the group's derived key (batchIdempotency): name the client's.
			failAll(string(fsm.CodeIdempotencyKeyMismatch), fmt.Sprintf("Idempotency-Key %q was used for a different batch (or for these items in another order)", c.GetHeader("Idempotency-Key")))
			return
		}
		answer := g.refusal(result.Err, nil)
		failAll(answer.code, answer.message)
		return
	}
	results, ok := result.Value.(*gigpay.TokenResults)
	if !ok || len(results.Items) != len(group.indices) {
		g.logger.Error("gigpay batch group: unexpected result", "value", fmt.Sprintf("%T", result.Value))
		failAll(CodeInternal, "internal error; the items may be retried with their clientReference")
		return
	}
	for k, i := range group.indices {
		item := results.Items[k]
		switch {
		case item.Err != nil:
			answer := g.refusal(item.Err, nil)
			out[i].Result, out[i].Error = gp.ResultFailed, &gp.ErrorDetail{Code: answer.code, Message: answer.message}
		case item.Token == nil:
			out[i].Result, out[i].Error = gp.ResultFailed, &gp.ErrorDetail{Code: CodeInternal, Message: "internal error"}
		default:
			view := gp.TokenOf(item.Token, g.cfg.Env)
			out[i].Token = &view
			out[i].Result = gp.ResultCreated
			if item.Replayed || result.Replayed {
				out[i].Result = gp.ResultReplayed
			}
		}
	}
}

// getToken is GET /api/v1/payment-tokens/{id}.
func (g *gigPay) getToken(c *gin.Context) {
	id := c.Param("id")
	g.read(c, func(reader Reader) (any, error) {
		t, err := reader.GetToken(g.cfg.ProjectID, id)
		if err != nil {
			return nil, err
		}
		return gp.TokenOf(t, g.cfg.Env), nil
	})
}

// getTokenQR is GET /api/v1/payment-tokens/{id}/qr.png: the token's link as a QR code.
func (g *gigPay) getTokenQR(c *gin.Context) {
	ctx, cancel := g.withTimeout(c)
	defer cancel()
	reader, err := g.backend.Read(ctx)
	if err != nil {
		g.fail(c, fromBackendError(err, false))
		return
	}
	t, err := reader.GetToken(g.cfg.ProjectID, c.Param("id"))
	if err != nil {
		g.fail(c, fromBackendError(err, false))
		return
	}
	image, err := gw.QRPNG(gp.Link(g.cfg.Env, t.Token), "", "")
	if err != nil {
		g.fail(c, internalError(err))
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Data(http.StatusOK, "image/png", image)
}

// tokenByString reads the token a bearer string names; a forged or truncated string is 404
// TokenNotFound and nothing is proposed. It answers the request itself when it fails.
func (g *gigPay) tokenByString(c *gin.Context, token string) bool {
	ctx, cancel := g.withTimeout(c)
	defer cancel()
	reader, err := g.backend.Read(ctx)
	if err == nil {
		_, err = reader.GetTokenByString(g.cfg.ProjectID, token)
	}
	if err != nil {
		g.fail(c, fromBackendError(err, false))
		return false
	}
	return true
}

// claimToken is POST /api/v1/payment-tokens/{token}/claim: authorised by the token string.
func (g *gigPay) claimToken(c *gin.Context) {
	destination, e := gp.DecodeClaim(c.Request.Body)
	if e != nil {
		g.badInput(c, e)
		return
	}
	token := c.Param("id")
	if !g.tokenByString(c, token) {
		return
	}
	if result, ok := g.propose(c, &gigpay.ClaimToken{ProjectID: g.cfg.ProjectID, Token: token, DestinationWalletID: destination}); ok {
		g.respondToken(c, http.StatusOK, result)
	}
}

// rejectToken is POST /api/v1/payment-tokens/{token}/reject: authorised by the token string.
func (g *gigPay) rejectToken(c *gin.Context) {
	if e := gp.DecodeEmpty(c.Request.Body); e != nil {
		g.badInput(c, e)
		return
	}
	token := c.Param("id")
	if !g.tokenByString(c, token) {
		return
	}
	if result, ok := g.propose(c, &gigpay.RejectToken{ProjectID: g.cfg.ProjectID, Token: token}); ok {
		g.respondToken(c, http.StatusOK, result)
	}
}

// closeToken is POST /api/v1/payment-tokens/{id}/close.
func (g *gigPay) closeToken(c *gin.Context) {
	reason, e := gp.DecodeClose(c.Request.Body)
	if e != nil {
		g.badInput(c, e)
		return
	}
	if result, ok := g.propose(c, &gigpay.CloseToken{ProjectID: g.cfg.ProjectID, TokenID: c.Param("id"), Reason: reason}); ok {
		g.respondToken(c, http.StatusOK, result)
	}
}

func (g *gigPay) respondToken(c *gin.Context, status int, result *fsm.Result) {
	t, ok := result.Value.(*gigpay.Token)
	if !ok || t == nil {
		g.fail(c, internalError(fmt.Errorf("result of %s carries %T", c.FullPath(), result.Value)))
		return
	}
	g.ok(c, status, gp.TokenOf(t, g.cfg.Env))
}

func (g *gigPay) respondPayment(c *gin.Context, status int, result *fsm.Result) {
	p, ok := result.Value.(*gigpay.Payment)
	if !ok || p == nil {
		g.fail(c, internalError(fmt.Errorf("result of %s carries %T", c.FullPath(), result.Value)))
		return
	}
	if result.Replayed {
		c.Header(headerIdempotentReplayed, "true")
	}
	g.ok(c, status, gp.PaymentOf(p))
}

// --- payments

// createPayment is POST /api/v1/payments: a deposit or a withdrawal, pending.
func (g *gigPay) createPayment(c *gin.Context) {
	in, e := gp.DecodePayment(c.Request.Body)
	if e != nil {
		g.badInput(c, e)
		return
	}
	if apiErr := g.ensureProject(c); apiErr != nil {
		g.fail(c, apiErr)
		return
	}
	cmd := &gigpay.CreatePayment{ProjectID: g.cfg.ProjectID, Type: in.Type, WalletID: in.WalletID, AssetID: in.AssetID,
		PaymentID: newID(idKindPayment, Route{ProjectID: g.cfg.ProjectID, WalletID: in.WalletID}),
		Amount:    in.Amount, ExternalStorage: in.ExternalStorage, ClientReference: in.ClientRef}
	if result, ok := g.propose(c, cmd); ok {
		g.respondPayment(c, http.StatusCreated, result)
	}
}

// updatePayment is POST /api/v1/payments/{id}/status.
func (g *gigPay) updatePayment(c *gin.Context) {
	status, reason, e := gp.DecodePaymentStatus(c.Request.Body)
	if e != nil {
		g.badInput(c, e)
		return
	}
	if result, ok := g.propose(c, &gigpay.UpdatePayment{ProjectID: g.cfg.ProjectID, PaymentID: c.Param("id"), Status: status, Reason: reason}); ok {
		g.respondPayment(c, http.StatusOK, result)
	}
}

// getPayment is GET /api/v1/payments/{id}.
func (g *gigPay) getPayment(c *gin.Context) {
	id := c.Param("id")
	g.read(c, func(reader Reader) (any, error) {
		p, err := reader.GetGigPayPayment(g.cfg.ProjectID, id)
		if err != nil {
			return nil, err
		}
		return gp.PaymentOf(p), nil
	})
}

// listPayments is GET /api/v1/payments: one page merged across shards. A page may hold fewer
// than limit payments (even none) while hasMore is true: a shard that stopped at its scan bound
// holds the merge back; follow nextCursor.
func (g *gigPay) listPayments(c *gin.Context) {
	q, e := gp.ParsePaymentQuery(c.Request.URL.Query())
	if e != nil {
		g.badInput(c, e)
		return
	}
	g.read(c, func(reader Reader) (any, error) {
		items, next, hasMore, err := reader.ListGigPayPayments(g.cfg.ProjectID, q)
		if err != nil {
			return nil, err
		}
		answer := gp.PaymentList{Data: make([]gp.Payment, 0, len(items)), HasMore: hasMore}
		for i := range items {
			answer.Data = append(answer.Data, gp.PaymentOf(&items[i]))
		}
		if hasMore {
			answer.NextCursor = gp.EncodeCursor(q.Sort, q.Descending, next)
		}
		return answer, nil
	})
}

// checkGigPayID validates the {id} of the GigPay routes (an account, token, payment ID or a
// token string): anything that cannot be one is 404, as a forged token string is.
func checkGigPayID(field, value string) *apiError {
	if !fsm.ValidID(value, fsm.GeneratedIDMaxLength) {
		return &apiError{status: http.StatusNotFound, code: CodeNotFound, message: "not found"}
	}
	return nil
}

// routes are the GigPay routes. The admin listener serves them all with the admin token; the
// public listener serves claim and reject (public) without it: the token string in the path
// authorises them, as the payee holds only the link.
func (g *gigPay) routes() []routeSpec {
	const (
		get, post     = http.MethodGet, http.MethodPost
		ok, created   = http.StatusOK, http.StatusCreated
		missing       = http.StatusNotFound
		conflict      = http.StatusConflict
		unprocessable = http.StatusUnprocessableEntity
	)
	return []routeSpec{
		{method: post, path: "/api/v1/accounts", operationID: "gigpayCreateAccount", tag: tagGigPay, handler: g.createAccount,
			request: "GigPayAccountRequest", success: created, response: "GigPayAccount",
			summary: "Open a GigPay account: a wallet of the asset for the user identity (a customer of the GigPay project, created when new).",
			errors:  []int{conflict, unprocessable}},
		{method: get, path: "/api/v1/accounts/:id", operationID: "gigpayGetAccount", tag: tagGigPay, handler: g.getAccount,
			success: ok, response: "GigPayAccount", summary: "An account with its balance, available (balance − held) and held amounts.",
			errors: []int{missing}},
		{method: post, path: "/api/v1/payment-tokens", operationID: "gigpayCreateToken", tag: tagGigPay, handler: g.createToken,
			request: "GigPayTokenRequest", success: created, response: "GigPayToken",
			summary: "Create a payment token: its amount is held on the source account until it is claimed, rejected or expires. A retry with the same clientReference (per source account) or Idempotency-Key answers the same token.",
			errors:  []int{conflict, unprocessable}},
		{method: post, path: "/api/v1/payment-tokens/batch", operationID: "gigpayCreateTokenBatch", tag: tagGigPay, handler: g.createTokenBatch,
			request: "GigPayTokenBatchRequest", success: ok, response: "GigPayTokenBatchAnswer",
			summary: fmt.Sprintf("Create up to %d tokens, each on its own (per item, not all-or-nothing): every item has a result, created, replayed (its clientReference was used before with the same fields) or failed with its error, in request order.", gigpay.BatchMaxItems)},
		{method: get, path: "/api/v1/payment-tokens/:id", operationID: "gigpayGetToken", tag: tagGigPay, handler: g.getToken,
			success: ok, response: "GigPayToken", summary: "A token by its ID.", errors: []int{missing}},
		{method: get, path: "/api/v1/payment-tokens/:id/qr.png", operationID: "gigpayGetTokenQR", tag: tagGigPay, handler: g.getTokenQR,
			success: ok, contentType: "image/png", summary: "The token's link as a 512 px PNG QR code.", errors: []int{missing}},
		{method: post, path: "/api/v1/payment-tokens/:id/close", operationID: "gigpayCloseToken", tag: tagGigPay, handler: g.closeToken,
			request: "GigPayCloseRequest", requestOptional: true, success: ok, response: "GigPayToken",
			summary: "Close a Succeeded token whose payment failed downstream: a compensating transfer from the payee back to the payer, the payment canceled. A token claimed into an account on another shard is closed atomically across shards (slower: several consensus rounds); while such a close is in progress another close of the token is 409 TokenCloseInProgress (with the token, retryable: it ends Closed or Succeeded again).",
			errors:  []int{missing, conflict, unprocessable}},
		{method: post, path: "/api/v1/payment-tokens/:id/claim", operationID: "gigpayClaimToken", tag: tagGigPay, handler: g.claimToken,
			request: "GigPayClaimRequest", success: ok, response: "GigPayToken", public: true,
			summary: "Claim an Active token into the destination account ({id} is the token string). Public listener: no admin token, the token string authorises it; admin listener: the admin token too. 409 TokenNotActive carries the token. A destination on another shard than the token's source is claimed atomically across shards (slower: several consensus rounds); while such a claim is in progress other claims and rejects of the token are 409 TokenClaimInProgress (with the token, retryable: it ends Succeeded or Active again).",
			errors:  []int{missing, conflict, unprocessable}},
		{method: post, path: "/api/v1/payment-tokens/:id/reject", operationID: "gigpayRejectToken", tag: tagGigPay, handler: g.rejectToken,
			request: "EmptyRequest", requestOptional: true, success: ok, response: "GigPayToken", public: true,
			summary: "Reject an Active token ({id} is the token string): its hold is released. Public listener: no admin token, the token string authorises it. 409 TokenNotActive carries the token; 409 TokenClaimInProgress while a claim across shards is under way.",
			errors:  []int{missing, conflict}},
		{method: post, path: "/api/v1/payments", operationID: "gigpayCreatePayment", tag: tagGigPay, handler: g.createPayment,
			request: "GigPayPaymentRequest", success: created, response: "GigPayPayment",
			summary: "Create a deposit or a withdrawal, pending (a withdrawal holds its amount at once).",
			errors:  []int{conflict, unprocessable}},
		{method: get, path: "/api/v1/payments", operationID: "gigpayListPayments", tag: tagGigPay, handler: g.listPayments,
			query: gp.PaymentQueryParams, success: ok, response: "GigPayPaymentList",
			summary: "Payments filtered, sorted and paged by an opaque cursor. A page may hold fewer than limit items while hasMore is true: follow nextCursor until hasMore is false."},
		{method: get, path: "/api/v1/payments/:id", operationID: "gigpayGetPayment", tag: tagGigPay, handler: g.getPayment,
			success: ok, response: "GigPayPayment", summary: "A payment by its ID.", errors: []int{missing}},
		{method: post, path: "/api/v1/payments/:id/status", operationID: "gigpayUpdatePayment", tag: tagGigPay, handler: g.updatePayment,
			request: "GigPayPaymentStatusRequest", success: ok, response: "GigPayPayment",
			summary: "Move a deposit or a withdrawal: processing, then completed (a deposit credits its account, a withdrawal takes its hold), canceled or failed (a withdrawal's hold is released).",
			errors:  []int{missing, unprocessable}},
	}
}
