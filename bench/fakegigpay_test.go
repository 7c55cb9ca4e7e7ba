package bench

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/gigaledger/gigaledger/client"
	"github.com/gigaledger/gigaledger/cluster/keyspace"
)

// The fake's GigPay routes (docs/gigpay-api.md), just enough for the token scenarios: accounts
// in project fakeGigPayProject whose wallet IDs carry their user's slot, admin deposits,
// tokens that hold their amount, per-item batches, and claims that refuse a payee in another
// slot (422 CrossShardTransaction, as a sharded cluster may) so that the harness's pairing is
// tested. Amounts are cents of usd; bodies are decoded strictly (unknown keys are 400), so the
// client's requests are checked against the contract's keys.

const fakeGigPayProject = "gigpay"

// fakeGigPay is the fake's GigPay state, under fakeLedger.mutex.
type fakeGigPay struct {
	accounts map[string]*fakeGigPayAccount
	payments map[string]*fakeGigPayPayment
	// references maps a deposit's client reference to its payment ID.
	references map[string]string
	tokens     map[string]*fakeGigPayToken // by bearer string
	next       int
	// claims counts succeeded claims; deposited the cents completed deposits added.
	claims    int
	deposited int64
}

type fakeGigPayAccount struct {
	user          string
	slot          keyspace.Slot
	balance, held int64
}

type fakeGigPayPayment struct {
	account   string
	cents     int64
	completed bool
}

type fakeGigPayToken struct {
	id, token, source, destination, reference string
	cents                                     int64
	status                                    client.PaymentTokenStatus
}

func newFakeGigPay() *fakeGigPay {
	return &fakeGigPay{accounts: map[string]*fakeGigPayAccount{}, payments: map[string]*fakeGigPayPayment{},
		references: map[string]string{}, tokens: map[string]*fakeGigPayToken{}}
}

// decodeStrict decodes body into out, refusing unknown keys.
func decodeStrict(r *http.Request, out any) bool {
	decoder := json.NewDecoder(r.Body)
	decoder.DisallowUnknownFields()
	return decoder.Decode(out) == nil
}

// fakeCents reads an amount of usd in cents; false for anything else.
func fakeCents(d client.Decimal) (int64, bool) {
	units, err := d.Units(2)
	if err != nil || !units.IsInt64() || units.Sign() <= 0 {
		return 0, false
	}
	return units.Int64(), true
}

func (g *fakeGigPay) accountView(id string) map[string]any {
	a := g.accounts[id]
	return map[string]any{"id": id, "businessAccountId": fakeGigPayProject, "userIdentityId": a.user, "assetType": "usd",
		"balance": gigPayAmount(a.balance), "available": gigPayAmount(a.balance - a.held), "held": gigPayAmount(a.held),
		"status": "open", "createdAtUtc": "2026-01-01T00:00:00.000Z"}
}

func (t *fakeGigPayToken) view() map[string]any {
	view := map[string]any{"id": t.id, "token": t.token, "status": t.status, "link": "https://wallet.gigpay.com/payment/" + t.token,
		"assetType": "usd", "sourceAccountId": t.source, "amount": gigPayAmount(t.cents), "expiresAtUtc": "2026-01-01T01:00:00.000Z",
		"memo": gigPayMemo, "createdAtUtc": "2026-01-01T00:00:00.000Z", "modifiedAtUtc": "2026-01-01T00:00:00.000Z"}
	if t.reference != "" {
		view["clientReference"] = t.reference
	}
	if t.destination != "" {
		view["destinationAccountId"] = t.destination
		view["paymentId"] = "y" + t.id[1:]
	}
	return view
}

// fakeTokenRequest is a token create's body, with the contract's keys only.
type fakeTokenRequest struct {
	AssetType       string         `json:"assetType"`
	SourceAccountID string         `json:"sourceAccountId"`
	Amount          client.Decimal `json:"amount"`
	ExpiresAtUtc    string         `json:"expiresAtUtc"`
	Memo            string         `json:"memo"`
	ClientReference string         `json:"clientReference"`
}

// createToken holds the amount and returns the token, or the refusal's status and code.
func (g *fakeGigPay) createToken(in fakeTokenRequest) (*fakeGigPayToken, int, string) {
	cents, ok := fakeCents(in.Amount)
	expires, err := time.Parse(time.RFC3339Nano, in.ExpiresAtUtc)
	switch {
	case !ok || in.AssetType != "usd":
		return nil, http.StatusBadRequest, "InvalidArgument"
	case err != nil || !expires.After(time.Now()):
		return nil, http.StatusBadRequest, "ExpiryInvalid"
	}
	source := g.accounts[in.SourceAccountID]
	if source == nil {
		return nil, http.StatusUnprocessableEntity, "WalletNotFound"
	}
	if source.balance-source.held < cents {
		return nil, http.StatusUnprocessableEntity, "InsufficientFunds"
	}
	source.held += cents
	g.next++
	suffix := keyspace.SlotHex(source.slot) + strconv.Itoa(g.next)
	token := &fakeGigPayToken{id: "k" + suffix, token: "g" + suffix + "-bearer", source: in.SourceAccountID, cents: cents,
		reference: in.ClientReference, status: client.PaymentTokenActive}
	g.tokens[token.token] = token
	return token, http.StatusCreated, ""
}

// routes adds the GigPay routes to the fake.
func (g *fakeGigPay) routes(route func(string, func(http.ResponseWriter, *http.Request))) {
	route("POST /api/v1/accounts", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			UserIdentityID string `json:"userIdentityId"`
			AssetType      string `json:"assetType"`
		}
		if !decodeStrict(r, &in) || in.UserIdentityID == "" || in.AssetType != "usd" {
			writeError(w, http.StatusBadRequest, "InvalidArgument")
			return
		}
		slot := keyspace.SlotOf(fakeGigPayProject, in.UserIdentityID)
		g.next++
		id := "w" + keyspace.SlotHex(slot) + "-" + strconv.Itoa(g.next)
		g.accounts[id] = &fakeGigPayAccount{user: in.UserIdentityID, slot: slot}
		writeJSON(w, http.StatusCreated, g.accountView(id))
	})
	route("POST /api/v1/payments", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Type            string         `json:"type"`
			AccountID       string         `json:"accountId"`
			AssetType       string         `json:"assetType"`
			Amount          client.Decimal `json:"amount"`
			ExternalStorage string         `json:"externalStorage"`
			ClientReference string         `json:"clientReference"`
		}
		ok := decodeStrict(r, &in)
		cents, amountOK := fakeCents(in.Amount)
		if !ok || !amountOK || in.Type != "deposit" || in.AssetType != "usd" || g.accounts[in.AccountID] == nil {
			writeError(w, http.StatusBadRequest, "InvalidArgument")
			return
		}
		id, seen := g.references[in.ClientReference]
		if !seen || in.ClientReference == "" {
			g.next++
			id = "y" + strconv.Itoa(g.next)
			g.payments[id] = &fakeGigPayPayment{account: in.AccountID, cents: cents}
			g.references[in.ClientReference] = id
		}
		writeJSON(w, http.StatusCreated, g.payments[id].view(id))
	})
	route("POST /api/v1/payments/{id}/status", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Status string `json:"status"`
			Reason string `json:"reason"`
		}
		payment := g.payments[r.PathValue("id")]
		switch {
		case !decodeStrict(r, &in) || in.Status != "completed":
			writeError(w, http.StatusBadRequest, "InvalidArgument")
		case payment == nil:
			writeError(w, http.StatusNotFound, "PaymentNotFound")
		case payment.completed:
			writeError(w, http.StatusConflict, "InvalidStatusTransition")
		default:
			payment.completed = true
			g.accounts[payment.account].balance += payment.cents
			g.deposited += payment.cents
			writeJSON(w, http.StatusOK, payment.view(r.PathValue("id")))
		}
	})
	route("POST /api/v1/payment-tokens", func(w http.ResponseWriter, r *http.Request) {
		var in fakeTokenRequest
		if !decodeStrict(r, &in) {
			writeError(w, http.StatusBadRequest, "InvalidArgument")
			return
		}
		token, status, code := g.createToken(in)
		if token == nil {
			writeError(w, status, code)
			return
		}
		writeJSON(w, http.StatusCreated, token.view())
	})
	route("POST /api/v1/payment-tokens/batch", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Items []fakeTokenRequest `json:"items"`
		}
		if !decodeStrict(r, &in) || len(in.Items) == 0 || len(in.Items) > 1000 {
			writeError(w, http.StatusBadRequest, "InvalidArgument")
			return
		}
		results := make([]map[string]any, len(in.Items))
		for index, item := range in.Items {
			token, _, code := g.createToken(item)
			if token == nil {
				results[index] = map[string]any{"index": index, "result": "failed", "error": map[string]string{"code": code, "message": code}}
				continue
			}
			results[index] = map[string]any{"index": index, "result": "created", "token": token.view()}
		}
		writeJSON(w, http.StatusOK, map[string]any{"data": results})
	})
	route("POST /api/v1/payment-tokens/{token}/claim", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			DestinationAccountID string `json:"destinationAccountId"`
		}
		token := g.tokens[r.PathValue("token")]
		switch {
		case !decodeStrict(r, &in):
			writeError(w, http.StatusBadRequest, "InvalidArgument")
			return
		case token == nil:
			writeError(w, http.StatusNotFound, "TokenNotFound")
			return
		case token.status != client.PaymentTokenActive:
			writeJSON(w, http.StatusConflict, map[string]any{"error": map[string]string{"code": "TokenNotActive", "message": "not active"}, "token": token.view()})
			return
		}
		source, destination := g.accounts[token.source], g.accounts[in.DestinationAccountID]
		switch {
		case destination == nil:
			writeError(w, http.StatusUnprocessableEntity, "WalletNotFound")
		case destination.slot != source.slot:
			writeError(w, http.StatusUnprocessableEntity, "CrossShardTransaction")
		default:
			source.held -= token.cents
			source.balance -= token.cents
			destination.balance += token.cents
			token.status, token.destination = client.PaymentTokenSucceeded, in.DestinationAccountID
			g.claims++
			writeJSON(w, http.StatusOK, token.view())
		}
	})
}

func (p *fakeGigPayPayment) view(id string) map[string]any {
	status := "pending"
	if p.completed {
		status = "completed"
	}
	return map[string]any{"paymentId": id, "amount": gigPayAmount(p.cents), "assetType": "usd", "status": status, "type": "deposit",
		"createdAtUtc": "2026-01-01T00:00:00.000Z", "modifiedAtUtc": "2026-01-01T00:00:00.000Z",
		"source":         map[string]string{"id": "", "businessAccountId": fakeGigPayProject, "userIdentityId": "", "externalStorage": "bench-bank"},
		"destination":    map[string]string{"id": p.account, "businessAccountId": fakeGigPayProject, "userIdentityId": "", "externalStorage": ""},
		"paymentTokenId": ""}
}
