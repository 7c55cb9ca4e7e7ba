package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/png"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/gigpay"
	"github.com/gigaledger/gigaledger/httpapi"
	gp "github.com/gigaledger/gigaledger/httpapi/gigpay"
	"github.com/gigaledger/gigaledger/httpapi/httpapitest"
)

const gigPayProject = "gigpay"

// gigPayEnv holds an admin client, a public client (no token) and the backend of one test.
type gigPayEnv struct {
	t       *testing.T
	admin   *apiClient
	public  *apiClient
	backend *httpapitest.LedgerBackend
}

func newGigPay(t *testing.T) *gigPayEnv {
	t.Helper()
	backend := httpapitest.NewLedgerBackend(t)
	cfg := &httpapi.GigPayConfig{ProjectID: gigPayProject, Env: "stage", Clock: backend.NowMs}
	admin := httpapi.NewAdmin(httpapi.AdminConfig{Token: testToken, GigPay: cfg}, backend, testLogger(t), nil)
	public := httpapi.NewPublic(httpapi.PublicConfig{GigPay: cfg, Backend: backend}, testLogger(t), nil)
	return &gigPayEnv{t: t, admin: &apiClient{t: t, handler: admin, token: testToken}, public: &apiClient{t: t, handler: public}, backend: backend}
}

// at is the backend's clock plus d, as the API writes times.
func (e *gigPayEnv) at(d time.Duration) string {
	return gp.FormatTime(e.backend.NowMs() + d.Milliseconds())
}

func (e *gigPayEnv) account(user string) string {
	e.t.Helper()
	var a gp.Account
	e.admin.do("POST", "/api/v1/accounts", map[string]any{"userIdentityId": user, "assetType": "usd"}).expect(201).decode(&a)
	if a.ID == "" || a.UserIdentityID != user || a.BusinessAccountID != gigPayProject || a.Status != "open" {
		e.t.Fatalf("account %+v", a)
	}
	return a.ID
}

// fund deposits amount into an account and completes the deposit.
func (e *gigPayEnv) fund(accountID, amount string) string {
	e.t.Helper()
	var p gp.Payment
	e.admin.do("POST", "/api/v1/payments", map[string]any{"type": "deposit", "accountId": accountID, "assetType": "usd",
		"amount": json.Number(amount), "externalStorage": "wire:1"}).expect(201).decode(&p)
	e.admin.do("POST", "/api/v1/payments/"+p.PaymentID+"/status", map[string]any{"status": "completed"}).expect(200)
	return p.PaymentID
}

func (e *gigPayEnv) getAccount(id string) gp.Account {
	e.t.Helper()
	var a gp.Account
	e.admin.do("GET", "/api/v1/accounts/"+id, nil).expect(200).decode(&a)
	return a
}

// balances returns an account's balance, available and held as the API writes them.
func (e *gigPayEnv) balances(id string) string {
	e.t.Helper()
	a := e.getAccount(id)
	return fmt.Sprintf("%s/%s/%s", a.Balance, a.Available, a.Held)
}

func (e *gigPayEnv) createToken(source, amount string, extra map[string]any) gp.Token {
	e.t.Helper()
	body := map[string]any{"assetType": "usd", "sourceAccountId": source, "amount": json.Number(amount),
		"expiresAtUtc": e.at(time.Hour), "memo": "lunch"}
	for k, v := range extra {
		body[k] = v
	}
	var tok gp.Token
	e.admin.do("POST", "/api/v1/payment-tokens", body).expect(201).decode(&tok)
	return tok
}

// tokenFromError reads the token a refusal carries.
func tokenFromError(r *response) gp.Token {
	r.t.Helper()
	var body struct {
		Token *gp.Token `json:"token"`
	}
	r.decode(&body)
	if body.Token == nil {
		r.t.Fatalf("refusal %s carries no token", r.body)
	}
	return *body.Token
}

func TestGigPayTokenLifecycle(t *testing.T) {
	e := newGigPay(t)
	payer, payee := e.account("alice"), e.account("bob")
	e.fund(payer, "100")
	if got := e.balances(payer); got != "100/100/0" {
		t.Fatalf("payer after deposit %s", got)
	}

	tok := e.createToken(payer, "1.5", nil)
	if tok.Status != "Active" || tok.Amount.String() != "1.5" || tok.SourceAccountID != payer || tok.Memo != "lunch" {
		t.Fatalf("token %+v", tok)
	}
	if !strings.HasPrefix(tok.ID, "k"+payer[1:5]) || !strings.HasPrefix(tok.Token, "g"+payer[1:5]) || len(tok.Token) != 27 {
		t.Fatalf("token id %q / string %q do not carry the source's slot", tok.ID, tok.Token)
	}
	if tok.Link != "https://wallet.stage.gigpay.com/payment/"+tok.Token {
		t.Fatalf("link %q", tok.Link)
	}
	if got := e.balances(payer); got != "100/98.5/1.5" {
		t.Fatalf("payer with an active token %s", got)
	}
	// The amount is written as a JSON number literal.
	raw := e.admin.do("GET", "/api/v1/payment-tokens/"+tok.ID, nil).expect(200)
	if !bytes.Contains(raw.body, []byte(`"amount":1.5,`)) || !bytes.Contains(raw.body, []byte(`"expiresAtUtc":"2024-01-01T01:00:00.000Z"`)) {
		t.Fatalf("token body %s", raw.body)
	}

	qr := e.admin.do("GET", "/api/v1/payment-tokens/"+tok.ID+"/qr.png", nil).expect(200)
	if qr.header.Get("Content-Type") != "image/png" {
		t.Fatalf("qr content type %q", qr.header.Get("Content-Type"))
	}
	if _, err := png.Decode(bytes.NewReader(qr.body)); err != nil {
		t.Fatalf("qr.png is not a PNG: %v", err)
	}

	// The payee claims through the public listener, without a token.
	var claimed gp.Token
	e.public.do("POST", "/api/v1/payment-tokens/"+tok.Token+"/claim", map[string]any{"destinationAccountId": payee}).expect(200).decode(&claimed)
	if claimed.Status != "Succeeded" || claimed.DestinationAccountID != payee || claimed.PaymentID != gigpay.PaymentIDOfToken(tok.ID) {
		t.Fatalf("claimed %+v", claimed)
	}
	if got, want := e.balances(payer)+" "+e.balances(payee), "98.5/98.5/0 1.5/1.5/0"; got != want {
		t.Fatalf("after claim %s, want %s", got, want)
	}
	var payment gp.Payment
	e.admin.do("GET", "/api/v1/payments/"+claimed.PaymentID, nil).expect(200).decode(&payment)
	if payment.Type != "transfer" || payment.Status != "completed" || payment.Source.ID != payer || payment.Destination.ID != payee ||
		payment.Source.UserIdentityID != "alice" || payment.Destination.BusinessAccountID != gigPayProject || payment.PaymentTokenID != tok.ID {
		t.Fatalf("payment %+v", payment)
	}

	// Claiming twice: 409 with the token's state; nothing moves.
	again := e.public.do("POST", "/api/v1/payment-tokens/"+tok.Token+"/claim", map[string]any{"destinationAccountId": payee}).
		expectError(409, "TokenNotActive")
	if tokenFromError(again).Status != "Succeeded" {
		t.Fatalf("second claim's token %s", again.body)
	}
	e.public.do("POST", "/api/v1/payment-tokens/"+tok.Token+"/reject", nil).expectError(409, "TokenNotActive")

	// Close: a compensating transfer back, the payment canceled.
	var closed gp.Token
	e.admin.do("POST", "/api/v1/payment-tokens/"+tok.ID+"/close", map[string]any{"reason": "masspay: account closed"}).expect(200).decode(&closed)
	if closed.Status != "Closed" || closed.Reason != "masspay: account closed" {
		t.Fatalf("closed %+v", closed)
	}
	if got, want := e.balances(payer)+" "+e.balances(payee), "100/100/0 0/0/0"; got != want {
		t.Fatalf("after close %s, want %s", got, want)
	}
	e.admin.do("GET", "/api/v1/payments/"+claimed.PaymentID, nil).expect(200).decode(&payment)
	if payment.Status != "canceled" || payment.Reason != "masspay: account closed" {
		t.Fatalf("payment after close %+v", payment)
	}
	// Closing again (or an active token) is refused with the token.
	e.admin.do("POST", "/api/v1/payment-tokens/"+tok.ID+"/close", nil).expectError(422, "InvalidStatusTransition")
}

func TestGigPayRejectAndExpiry(t *testing.T) {
	e := newGigPay(t)
	payer, payee := e.account("alice"), e.account("bob")
	e.fund(payer, "10")

	rejected := e.createToken(payer, "2", nil)
	var tok gp.Token
	e.public.do("POST", "/api/v1/payment-tokens/"+rejected.Token+"/reject", nil).expect(200).decode(&tok)
	if tok.Status != "Rejected" {
		t.Fatalf("rejected %+v", tok)
	}
	e.public.do("POST", "/api/v1/payment-tokens/"+rejected.Token+"/reject", "{}").expectError(409, "TokenNotActive")
	claim := e.public.do("POST", "/api/v1/payment-tokens/"+rejected.Token+"/claim", map[string]any{"destinationAccountId": payee}).
		expectError(409, "TokenNotActive")
	if tokenFromError(claim).Status != "Rejected" {
		t.Fatalf("claim after reject %s", claim.body)
	}
	if got := e.balances(payer); got != "10/10/0" {
		t.Fatalf("after reject %s", got)
	}

	// Expiry: the clock passes expiresAtUtc; the next command's batch expires the token.
	expiring := e.createToken(payer, "3", map[string]any{"expiresAtUtc": e.at(time.Minute)})
	if got := e.balances(payer); got != "10/7/3" {
		t.Fatalf("with a token %s", got)
	}
	e.backend.Advance(time.Minute.Milliseconds())
	e.account("carol") // any command: its batch expires the due tokens first
	e.admin.do("GET", "/api/v1/payment-tokens/"+expiring.ID, nil).expect(200).decode(&tok)
	if tok.Status != "Expired" {
		t.Fatalf("after its expiry %+v", tok)
	}
	if got := e.balances(payer); got != "10/10/0" {
		t.Fatalf("after expiry %s", got)
	}
	e.public.do("POST", "/api/v1/payment-tokens/"+expiring.Token+"/claim", map[string]any{"destinationAccountId": payee}).
		expectError(409, "TokenNotActive")

	// A token past its time expires at the claim itself, even before any other batch.
	late := e.createToken(payer, "1", map[string]any{"expiresAtUtc": e.at(time.Second)})
	e.backend.Advance(2000)
	r := e.public.do("POST", "/api/v1/payment-tokens/"+late.Token+"/claim", map[string]any{"destinationAccountId": payee}).
		expectError(409, "TokenNotActive")
	if tokenFromError(r).Status != "Expired" {
		t.Fatalf("late claim %s", r.body)
	}
	if got := e.balances(payer) + " " + e.balances(payee); got != "10/10/0 0/0/0" {
		t.Fatalf("after the late claim %s", got)
	}
}

func TestGigPayRefusals(t *testing.T) {
	e := newGigPay(t)
	payer, payee := e.account("alice"), e.account("bob")
	e.fund(payer, "5")
	before := e.backend.Proposals()

	valid := map[string]any{"assetType": "usd", "sourceAccountId": payer, "amount": json.Number("1"), "expiresAtUtc": e.at(time.Hour), "memo": "m"}
	with := func(key string, value any) map[string]any {
		body := map[string]any{}
		for k, v := range valid {
			body[k] = v
		}
		if value == nil {
			delete(body, key)
		} else {
			body[key] = value
		}
		return body
	}
	for _, tc := range []struct {
		name string
		body any
		code string
	}{
		{"negative", with("amount", json.Number("-1")), "InvalidArgument"},
		{"zero", with("amount", json.Number("0")), "InvalidArgument"},
		{"zero string", with("amount", "0.00"), "InvalidArgument"},
		{"exponent", with("amount", json.Number("1e2")), "InvalidArgument"},
		{"1e400", with("amount", json.Number("1e400")), "InvalidArgument"},
		{"huge", with("amount", json.Number(strings.Repeat("9", 60))), "InvalidArgument"},
		{"over 128 bits", with("amount", json.Number("340282366920938463463374607431768211456")), "InvalidArgument"},
		{"too many decimals for any asset", with("amount", "0."+strings.Repeat("1", 20)), "AmountTooPrecise"},
		{"no amount", with("amount", nil), "InvalidArgument"},
		{"amount object", with("amount", map[string]any{}), "InvalidArgument"},
		{"past expiry", with("expiresAtUtc", e.at(-time.Second)), "ExpiryInvalid"},
		{"now expiry", with("expiresAtUtc", e.at(0)), "ExpiryInvalid"},
		{"far expiry", with("expiresAtUtc", e.at(400*24*time.Hour)), "ExpiryInvalid"},
		{"malformed expiry", with("expiresAtUtc", "tomorrow"), "ExpiryInvalid"},
		{"no expiry", with("expiresAtUtc", nil), "ExpiryInvalid"},
		{"memo too long", with("memo", strings.Repeat("x", gigpay.MemoMaxLength+1)), "InvalidArgument"},
		{"memo control", with("memo", "a\x01"), "InvalidArgument"},
		{"memo bidi override", with("memo", "a\u202eb"), "InvalidArgument"},
		{"memo zero-width space", with("memo", "a\u200bb"), "InvalidArgument"},
		{"memo line separator", with("memo", "a\u2028b"), "InvalidArgument"},
		{"clientReference zero-width", with("clientReference", "c\u200b1"), "InvalidArgument"},
		{"clientReference other space", with("clientReference", "c\u00a01"), "InvalidArgument"},
		{"unknown key", with("Memo", "x"), "InvalidArgument"},
		{"duplicate key", `{"assetType":"usd","assetType":"usd"}`, "InvalidJSON"},
		{"invalid utf8", []byte("{\"memo\":\"\xff\"}"), "InvalidJSON"},
		{"array", `[]`, "InvalidJSON"},
		{"empty", ``, "InvalidJSON"},
		{"trailing", `{} {}`, "InvalidJSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.admin.t = t
			e.admin.do("POST", "/api/v1/payment-tokens", tc.body).expectError(400, tc.code)
		})
	}
	e.admin.t = t
	if e.backend.Proposals() != before {
		t.Fatalf("bad input proposed %d commands", e.backend.Proposals()-before)
	}
	// The asset's precision is the state machine's: usd has 2 decimals.
	e.admin.do("POST", "/api/v1/payment-tokens", with("amount", "0.001")).expectError(400, "AmountTooPrecise")
	e.admin.do("POST", "/api/v1/payment-tokens", with("amount", "0.010")).expect(201) // trailing zeros are not precision
	e.admin.do("POST", "/api/v1/payment-tokens", with("assetType", "eur")).expectError(422, "AssetMismatch")
	e.admin.do("POST", "/api/v1/payment-tokens", with("sourceAccountId", "w0000nosuchaccount")).expectError(422, "WalletNotFound")
	// Not enough available: 422 and no hold.
	e.admin.do("POST", "/api/v1/payment-tokens", with("amount", "5")).expectError(422, "InsufficientFunds")
	if got := e.balances(payer); got != "5/4.99/0.01" {
		t.Fatalf("after the refused token %s (want only the 0.01 token held)", got)
	}
	// Free text takes other spaces and the joiners of emoji and scripts.
	e.admin.do("POST", "/api/v1/payment-tokens", with("memo", "caf\u00e9\u00a0\u3000\U0001F468\u200D\U0001F469")).expect(201)
	// Forged and truncated token strings: 404, nothing proposed.
	tok := e.createToken(payer, "1", nil)
	before = e.backend.Proposals()
	last := "A" // the real string with its last character changed (never to itself)
	if strings.HasSuffix(tok.Token, last) {
		last = "B"
	}
	for _, forged := range []string{tok.Token[:len(tok.Token)-1], tok.Token[:len(tok.Token)-1] + last, "g0000" + strings.Repeat("A", 22), tok.ID, "x", "%00"} {
		e.public.do("POST", "/api/v1/payment-tokens/"+forged+"/claim", map[string]any{"destinationAccountId": payee}).expect(404)
		e.public.do("POST", "/api/v1/payment-tokens/"+forged+"/reject", nil).expect(404)
	}
	if e.backend.Proposals() != before {
		t.Fatalf("forged strings proposed %d commands", e.backend.Proposals()-before)
	}
	// The public listener serves nothing else of GigPay.
	e.public.do("GET", "/api/v1/payment-tokens/"+tok.ID, nil).expect(404)
	e.public.do("POST", "/api/v1/payments", map[string]any{}).expect(404)
	// The admin listener needs its token, also for claim.
	noToken := &apiClient{t: t, handler: e.admin.handler}
	noToken.do("POST", "/api/v1/payment-tokens/"+tok.Token+"/claim", map[string]any{"destinationAccountId": payee}).expectError(401, "Unauthorized")
	// Claim into the source itself, an unknown account, and a suspended source.
	e.public.do("POST", "/api/v1/payment-tokens/"+tok.Token+"/claim", map[string]any{"destinationAccountId": payer}).expectError(400, "InvalidArgument")
	e.public.do("POST", "/api/v1/payment-tokens/"+tok.Token+"/claim", map[string]any{"destinationAccountId": "w0000nosuchaccount"}).expectError(422, "WalletNotFound")
	e.public.do("POST", "/api/v1/payment-tokens/"+tok.Token+"/claim", map[string]any{}).expectError(400, "InvalidArgument")
	e.admin.do("PUT", "/projects/"+gigPayProject+"/wallets/"+payer+"/status", map[string]any{"status": "suspended"}).expect(200)
	r := e.public.do("POST", "/api/v1/payment-tokens/"+tok.Token+"/claim", map[string]any{"destinationAccountId": payee}).expectError(422, "WalletSuspended")
	if tokenFromError(r).Status != "Active" {
		t.Fatalf("refused claim's token %s", r.body)
	}
	if got := e.balances(payee); got != "0/0/0" {
		t.Fatalf("payee after refused claims %s", got)
	}
	// Unknown asset for an account, and a GET of what does not exist.
	e.admin.do("POST", "/api/v1/accounts", map[string]any{"userIdentityId": "dan", "assetType": "eur"}).expectError(422, "AssetNotFound")
	// A user ID that looks like another (a zero-width space after "dan") is refused.
	e.admin.do("POST", "/api/v1/accounts", map[string]any{"userIdentityId": "dan\u200b", "assetType": "usd"}).expectError(400, "InvalidArgument")
	for _, dots := range []string{".", ".."} { // Cloud Wallet customer IDs that a URL path cannot address
		e.admin.do("POST", "/api/v1/accounts", map[string]any{"userIdentityId": dots, "assetType": "usd"}).expectError(400, "InvalidArgument")
	}
	e.admin.do("GET", "/api/v1/accounts/w0000nosuch", nil).expectError(404, "WalletNotFound")
	e.admin.do("GET", "/api/v1/payment-tokens/k0000nosuch", nil).expectError(404, "TokenNotFound")
	e.admin.do("GET", "/api/v1/payments/y0000nosuch", nil).expectError(404, "PaymentNotFound")
	e.admin.do("POST", "/api/v1/payments/y0000nosuch/status", map[string]any{"status": "completed"}).expectError(404, "PaymentNotFound")
}

func TestGigPayDepositsAndWithdrawals(t *testing.T) {
	e := newGigPay(t)
	acct := e.account("alice")
	var dep gp.Payment
	e.admin.do("POST", "/api/v1/payments", map[string]any{"type": "deposit", "accountId": acct, "assetType": "usd",
		"amount": "25.10", "externalStorage": "wire:42"}).expect(201).decode(&dep)
	if dep.Status != "pending" || dep.Type != "deposit" || dep.Source.ExternalStorage != "wire:42" || dep.Source.ID != "" ||
		dep.Destination.ID != acct || dep.Amount.String() != "25.1" {
		t.Fatalf("deposit %+v", dep)
	}
	if got := e.balances(acct); got != "0/0/0" {
		t.Fatalf("pending deposit credited: %s", got)
	}
	e.admin.do("POST", "/api/v1/payments/"+dep.PaymentID+"/status", map[string]any{"status": "processing"}).expect(200).decode(&dep)
	if dep.Status != "processing" {
		t.Fatalf("deposit %+v", dep)
	}
	e.admin.do("POST", "/api/v1/payments/"+dep.PaymentID+"/status", map[string]any{"status": "completed"}).expect(200).decode(&dep)
	if got := e.balances(acct); got != "25.1/25.1/0" || dep.Status != "completed" {
		t.Fatalf("completed deposit: %s %+v", got, dep)
	}
	e.admin.do("POST", "/api/v1/payments/"+dep.PaymentID+"/status", map[string]any{"status": "failed"}).expectError(422, "InvalidStatusTransition")
	e.admin.do("POST", "/api/v1/payments/"+dep.PaymentID+"/status", map[string]any{"status": "pending"}).expectError(400, "InvalidArgument")

	var wd gp.Payment
	e.admin.do("POST", "/api/v1/payments", map[string]any{"type": "withdrawal", "accountId": acct, "assetType": "usd",
		"amount": json.Number("10"), "externalStorage": "ach:7"}).expect(201).decode(&wd)
	if got := e.balances(acct); got != "25.1/15.1/10" || wd.Source.ID != acct || wd.Destination.ExternalStorage != "ach:7" {
		t.Fatalf("withdrawal holds: %s %+v", got, wd)
	}
	e.admin.do("POST", "/api/v1/payments/"+wd.PaymentID+"/status", map[string]any{"status": "completed"}).expect(200)
	if got := e.balances(acct); got != "15.1/15.1/0" {
		t.Fatalf("completed withdrawal %s", got)
	}
	e.admin.do("POST", "/api/v1/payments", map[string]any{"type": "withdrawal", "accountId": acct, "assetType": "usd",
		"amount": json.Number("5"), "externalStorage": "ach:7"}).expect(201).decode(&wd)
	e.admin.do("POST", "/api/v1/payments/"+wd.PaymentID+"/status", map[string]any{"status": "failed", "reason": "bank said no"}).expect(200).decode(&wd)
	if got := e.balances(acct); got != "15.1/15.1/0" || wd.Reason != "bank said no" || wd.Status != "failed" {
		t.Fatalf("failed withdrawal %s %+v", got, wd)
	}
	// A withdrawal beyond what is available: 422, no hold.
	e.admin.do("POST", "/api/v1/payments", map[string]any{"type": "withdrawal", "accountId": acct, "assetType": "usd",
		"amount": json.Number("15.11")}).expectError(422, "InsufficientFunds")
	e.admin.do("POST", "/api/v1/payments", map[string]any{"type": "transfer", "accountId": acct, "assetType": "usd",
		"amount": json.Number("1")}).expectError(400, "InvalidArgument")
	if got := e.balances(acct); got != "15.1/15.1/0" {
		t.Fatalf("after refusals %s", got)
	}
}

func TestGigPayRetries(t *testing.T) {
	e := newGigPay(t)
	payer := e.account("alice")
	e.fund(payer, "50")

	// Idempotency-Key: the same request answers the same token, once.
	body := map[string]any{"assetType": "usd", "sourceAccountId": payer, "amount": json.Number("2"), "expiresAtUtc": e.at(time.Hour), "memo": "m"}
	e.admin.header = http.Header{"Idempotency-Key": {"key-1"}}
	var first, second gp.Token
	e.admin.do("POST", "/api/v1/payment-tokens", body).expect(201).decode(&first)
	r := e.admin.do("POST", "/api/v1/payment-tokens", body).expect(201)
	r.decode(&second)
	if second.ID != first.ID || r.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry answered %+v (replayed %q), first %+v", second, r.header.Get("Idempotent-Replayed"), first)
	}
	body["amount"] = json.Number("3")
	e.admin.do("POST", "/api/v1/payment-tokens", body).expectError(409, "IdempotencyKeyMismatch")
	e.admin.header = nil
	if got := e.balances(payer); got != "50/48/2" {
		t.Fatalf("after idempotent retries %s", got)
	}

	// clientReference: a retry answers the same token; other fields are a mismatch.
	body = map[string]any{"assetType": "usd", "sourceAccountId": payer, "amount": json.Number("4"), "expiresAtUtc": e.at(time.Hour),
		"memo": "m", "clientReference": "order-1"}
	e.admin.do("POST", "/api/v1/payment-tokens", body).expect(201).decode(&first)
	r = e.admin.do("POST", "/api/v1/payment-tokens", body).expect(201)
	r.decode(&second)
	if second.ID != first.ID || second.ClientReference != "order-1" || r.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("client reference retry %+v, first %+v", second, first)
	}
	body["memo"] = "other"
	e.admin.do("POST", "/api/v1/payment-tokens", body).expectError(409, "ClientReferenceMismatch")
	if got := e.balances(payer); got != "50/44/6" {
		t.Fatalf("after client reference retries %s", got)
	}

	// Payments: clientReference too.
	pay := map[string]any{"type": "deposit", "accountId": payer, "assetType": "usd", "amount": json.Number("1"), "externalStorage": "w", "clientReference": "dep-1"}
	var p1, p2 gp.Payment
	e.admin.do("POST", "/api/v1/payments", pay).expect(201).decode(&p1)
	e.admin.do("POST", "/api/v1/payments", pay).expect(201).decode(&p2)
	if p1.PaymentID != p2.PaymentID {
		t.Fatalf("payment retry made %s and %s", p1.PaymentID, p2.PaymentID)
	}
	pay["amount"] = json.Number("2")
	e.admin.do("POST", "/api/v1/payments", pay).expectError(409, "ClientReferenceMismatch")

	// A payee's claim retried with its Idempotency-Key (after a 503 OutcomeUnknown, say) gets the
	// stored success, not 409 TokenNotActive.
	payee := e.account("bob")
	tok := e.createToken(payer, "1", nil)
	e.public.header = http.Header{"Idempotency-Key": {"claim-1"}}
	var c1, c2 gp.Token
	e.public.do("POST", "/api/v1/payment-tokens/"+tok.Token+"/claim", map[string]any{"destinationAccountId": payee}).expect(200).decode(&c1)
	r = e.public.do("POST", "/api/v1/payment-tokens/"+tok.Token+"/claim", map[string]any{"destinationAccountId": payee}).expect(200)
	r.decode(&c2)
	e.public.header = nil
	if c1.Status != "Succeeded" || c2.Status != "Succeeded" || r.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("claim retry %+v then %+v", c1, c2)
	}
	if got := e.balances(payee); got != "1/1/0" {
		t.Fatalf("payee after a retried claim %s", got)
	}
}

func TestGigPayBatch(t *testing.T) {
	e := newGigPay(t)
	// Accounts of different users land on different slots, so the batch has several groups.
	var accounts []string
	for i := range 6 {
		id := e.account(fmt.Sprintf("user-%d", i))
		e.fund(id, "10")
		accounts = append(accounts, id)
	}
	item := func(source, amount, ref string) map[string]any {
		return map[string]any{"assetType": "usd", "sourceAccountId": source, "amount": json.Number(amount),
			"expiresAtUtc": e.at(time.Hour), "memo": "batch", "clientReference": ref}
	}
	items := []any{
		item(accounts[0], "1", "r0"),
		item(accounts[1], "2", "r1"),
		item(accounts[2], "-1", "r2"),                     // bad amount: fails alone
		map[string]any{"assetType": "usd", "bogus": true}, // malformed item: fails alone
		item(accounts[3], "11", "r4"),                     // more than available: fails alone
		item(accounts[0], "3", "r5"),                      // same slot as item 0: same command
		item("w0000nosuchaccount", "1", "r6"),
		item(accounts[4], "0.001", "r7"), // too precise for usd
		item(accounts[5], "5", "r8"),
	}
	var answer gp.BatchAnswer
	e.admin.do("POST", "/api/v1/payment-tokens/batch", map[string]any{"items": items}).expect(200).decode(&answer)
	wantResults := []string{"created", "created", "failed", "failed", "failed", "created", "failed", "failed", "created"}
	wantCodes := []string{"", "", "InvalidArgument", "InvalidArgument", "InsufficientFunds", "", "WalletNotFound", "AmountTooPrecise", ""}
	if len(answer.Data) != len(items) {
		t.Fatalf("%d results for %d items", len(answer.Data), len(items))
	}
	for i, res := range answer.Data {
		code := ""
		if res.Error != nil {
			code = res.Error.Code
		}
		if res.Index != i || res.Result != wantResults[i] || code != wantCodes[i] || (res.Result == "created") != (res.Token != nil) {
			t.Errorf("item %d: %+v (error %+v), want %s %s", i, res, res.Error, wantResults[i], wantCodes[i])
		}
	}
	if got := e.balances(accounts[0]); got != "10/6/4" {
		t.Fatalf("account 0 after the batch %s", got)
	}
	// The same batch again: the created items replay by their client reference; nothing more is held.
	var again gp.BatchAnswer
	e.admin.do("POST", "/api/v1/payment-tokens/batch", map[string]any{"items": items}).expect(200).decode(&again)
	for i, res := range again.Data {
		if wantResults[i] == "created" && (res.Result != "replayed" || res.Token.ID != answer.Data[i].Token.ID) {
			t.Errorf("retry item %d: %+v", i, res)
		}
	}
	if got := e.balances(accounts[0]) + " " + e.balances(accounts[5]); got != "10/6/4 10/5/5" {
		t.Fatalf("after the retried batch %s", got)
	}
	// Bounds of the batch as a whole.
	e.admin.do("POST", "/api/v1/payment-tokens/batch", map[string]any{"items": []any{}}).expectError(400, "InvalidArgument")
	e.admin.do("POST", "/api/v1/payment-tokens/batch", `{"items":{}}`).expectError(400, "InvalidArgument")
	many := make([]any, gigpay.BatchMaxItems+1)
	for i := range many {
		many[i] = map[string]any{}
	}
	e.admin.do("POST", "/api/v1/payment-tokens/batch", map[string]any{"items": many}).expectError(400, "InvalidArgument")

	// With an Idempotency-Key, a retried batch replays every group.
	fresh := []any{item(accounts[1], "1", ""), item(accounts[2], "1", "")}
	e.admin.header = http.Header{"Idempotency-Key": {"batch-1"}}
	var b1, b2 gp.BatchAnswer
	e.admin.do("POST", "/api/v1/payment-tokens/batch", map[string]any{"items": fresh}).expect(200).decode(&b1)
	e.admin.do("POST", "/api/v1/payment-tokens/batch", map[string]any{"items": fresh}).expect(200).decode(&b2)
	e.admin.header = nil
	for i := range fresh {
		if b1.Data[i].Result != "created" || b2.Data[i].Result != "replayed" || b1.Data[i].Token.ID != b2.Data[i].Token.ID {
			t.Fatalf("idempotent batch item %d: %+v then %+v", i, b1.Data[i], b2.Data[i])
		}
	}
	if got := e.balances(accounts[1]); got != "10/7/3" {
		t.Fatalf("account 1 after the idempotent batch %s", got)
	}
	// The key with another batch: each group refused, naming the client's key (not the key
	// derived per group).
	e.admin.header = http.Header{"Idempotency-Key": {"batch-1"}}
	var b3 gp.BatchAnswer
	e.admin.do("POST", "/api/v1/payment-tokens/batch", map[string]any{"items": []any{item(accounts[1], "2", "")}}).expect(200).decode(&b3)
	e.admin.header = nil
	if d := b3.Data[0]; d.Result != "failed" || d.Error == nil || d.Error.Code != "IdempotencyKeyMismatch" ||
		!strings.Contains(d.Error.Message, `"batch-1"`) || strings.Contains(d.Error.Message, "batch:") {
		t.Fatalf("another batch under the key: %+v %+v", d, d.Error)
	}
}

// TestGigPayHoldsAddUp: available = balance − Σ active tokens after a mix of creates, claims,
// rejects, expiries and withdrawals.
func TestGigPayHoldsAddUp(t *testing.T) {
	e := newGigPay(t)
	payer, payee := e.account("alice"), e.account("bob")
	e.fund(payer, "100")
	var active []gp.Token
	for i := range 20 {
		tok := e.createToken(payer, fmt.Sprintf("%d.%02d", i%3+1, i), map[string]any{"expiresAtUtc": e.at(time.Duration(i+1) * time.Minute)})
		active = append(active, tok)
	}
	for i, tok := range active {
		switch i % 4 {
		case 0:
			e.public.do("POST", "/api/v1/payment-tokens/"+tok.Token+"/claim", map[string]any{"destinationAccountId": payee}).expect(200)
		case 1:
			e.public.do("POST", "/api/v1/payment-tokens/"+tok.Token+"/reject", nil).expect(200)
		}
	}
	e.backend.Advance((10 * time.Minute).Milliseconds())
	e.fund(payee, "1") // a batch: the tokens of the first ten minutes expire
	check := func() {
		t.Helper()
		a := e.getAccount(payer)
		var held, balance, available = fsm.Amount{}, a.Balance.Units, a.Available.Units
		for _, tok := range active {
			var now gp.Token
			e.admin.do("GET", "/api/v1/payment-tokens/"+tok.ID, nil).expect(200).decode(&now)
			if now.Status == "Active" {
				held, _ = held.Add(now.Amount.Units)
			}
		}
		if a.Held.Units != held {
			t.Fatalf("held %s, Σ active tokens %s", a.Held, held)
		}
		if sum, _ := available.Add(held); sum != balance {
			t.Fatalf("available %s + held %s != balance %s", available, held, balance)
		}
	}
	check()
	e.backend.Advance((30 * time.Minute).Milliseconds())
	e.fund(payee, "1")
	check()
	if a := e.getAccount(payer); !a.Held.Units.IsZero() {
		t.Fatalf("every token expired or ended, yet %s is held", a.Held)
	}
}

// TestGigPayEvents: GET /events renders the GigPay subjects.
func TestGigPayEvents(t *testing.T) {
	e := newGigPay(t)
	payer, payee := e.account("alice"), e.account("bob")
	e.fund(payer, "10")
	tok := e.createToken(payer, "1", nil)
	e.public.do("POST", "/api/v1/payment-tokens/"+tok.Token+"/claim", map[string]any{"destinationAccountId": payee}).expect(200)
	var page struct {
		Items []struct {
			EventType string          `json:"event_type"`
			Message   json.RawMessage `json:"message"`
		} `json:"items"`
	}
	e.admin.do("GET", "/events?limit=1000&types=GIGPAY", nil).expect(200).decode(&page)
	seen := map[string]string{}
	for _, ev := range page.Items {
		if !strings.HasPrefix(ev.EventType, "GIGPAY_") {
			t.Errorf("types=GIGPAY answered %s", ev.EventType)
		}
		seen[ev.EventType] = string(ev.Message)
	}
	for _, want := range []string{"GIGPAY_TOKEN_CREATED", "GIGPAY_TOKEN_SUCCEEDED", "GIGPAY_PAYMENT_CREATED", "GIGPAY_PAYMENT_UPDATED"} {
		if seen[want] == "" || seen[want] == "null" {
			t.Errorf("event %s not rendered: %q", want, seen[want])
		}
	}
	if !strings.Contains(seen["GIGPAY_TOKEN_SUCCEEDED"], `"status":"Succeeded"`) || !strings.Contains(seen["GIGPAY_TOKEN_SUCCEEDED"], "wallet.stage.gigpay.com") {
		t.Errorf("token event %s", seen["GIGPAY_TOKEN_SUCCEEDED"])
	}
	if !strings.Contains(seen["GIGPAY_PAYMENT_CREATED"], `"type":"transfer"`) {
		t.Errorf("payment event %s", seen["GIGPAY_PAYMENT_CREATED"])
	}
}

// crossShardReader finds any token string: the claim reaches the proposal.
type crossShardReader struct{ httpapi.Reader }

func (crossShardReader) GetTokenByString(projectID, token string) (*gigpay.Token, error) {
	return &gigpay.Token{ID: "k0001x", Token: token, Status: gigpay.TokenActive}, nil
}

// TestGigPayCrossShardClaim: while a claim across shards is in progress the router answers
// other claims TokenClaimInProgress with the token: 409, the token riding along.
func TestGigPayCrossShardClaim(t *testing.T) {
	token := "g0001" + strings.Repeat("a", 22)
	fake := &httpapitest.FakeBackend{Reader: crossShardReader{},
		ProposeResult: &fsm.Result{Err: fsm.Rejectf(gigpay.CodeClaimInProgress, "cannot claim: a claim of the token is in progress"),
			Value: &gigpay.Token{ID: "k0001x", Token: token, Status: gigpay.TokenActive, AssetID: "usd", Fractions: 100}}}
	cfg := &httpapi.GigPayConfig{ProjectID: gigPayProject}
	public := &apiClient{t: t, handler: httpapi.NewPublic(httpapi.PublicConfig{GigPay: cfg, Backend: fake}, testLogger(t), nil)}
	r := public.do("POST", "/api/v1/payment-tokens/"+token+"/claim", map[string]any{"destinationAccountId": "w0002abc"}).
		expectError(409, "TokenClaimInProgress")
	if !strings.Contains(string(r.body), `"token"`) {
		t.Fatalf("claim in progress answer %s does not carry the token", r.body)
	}
	if proposals, _ := fake.Calls(); proposals != 1 {
		t.Fatalf("%d proposals", proposals)
	}
}

// TestGigPayCrossShardClose: while a close across shards is in progress the router answers
// another close TokenCloseInProgress with the token: 409, the token riding along.
func TestGigPayCrossShardClose(t *testing.T) {
	fake := &httpapitest.FakeBackend{
		ProposeResult: &fsm.Result{Err: fsm.Rejectf(gigpay.CodeCloseInProgress, "cannot close: a close of the token is in progress"),
			Value: &gigpay.Token{ID: "k0001x", Token: "g0001" + strings.Repeat("a", 22), Status: gigpay.TokenSucceeded, AssetID: "usd", Fractions: 100}}}
	cfg := &httpapi.GigPayConfig{ProjectID: gigPayProject}
	admin := &apiClient{t: t, handler: httpapi.NewAdmin(httpapi.AdminConfig{Token: testToken, GigPay: cfg}, fake, testLogger(t), nil), token: testToken}
	r := admin.do("POST", "/api/v1/payment-tokens/k0001x/close", map[string]any{"reason": "masspay"}).
		expectError(409, "TokenCloseInProgress")
	if !strings.Contains(string(r.body), `"token"`) {
		t.Fatalf("close in progress answer %s does not carry the token", r.body)
	}
	if proposals, _ := fake.Calls(); proposals != 1 {
		t.Fatalf("%d proposals", proposals)
	}
}

// TestGigPayMoneyMovesOnlyThroughGigPay: in GigPay's project the Cloud Wallet API refuses its
// transactions and its hold captures and releases (409 ProjectOwnedByGigPay), so a token's or a
// withdrawal's hold cannot be resolved beside GigPay (an adversarial probe released a token's
// hold, which left an active token no claim could take). What GigPay's documentation sends to
// the Cloud Wallet API (wallet status) still works, and so does another project.
func TestGigPayMoneyMovesOnlyThroughGigPay(t *testing.T) {
	e := newGigPay(t)
	payer, payee := e.account("alice"), e.account("bob")
	e.fund(payer, "10")
	tok := e.createToken(payer, "4", nil)
	var withdrawal gp.Payment
	e.admin.do("POST", "/api/v1/payments", map[string]any{"type": "withdrawal", "accountId": payer, "assetType": "usd",
		"amount": json.Number("1"), "externalStorage": "wire:2"}).expect(201).decode(&withdrawal)
	before := e.balances(payer)
	if before != "10/5/5" {
		t.Fatalf("payer before: %s", before)
	}
	// Every hold of the project, as a Cloud Wallet client would find them.
	var page struct {
		Items []struct {
			Operations []struct {
				HoldID string `json:"holdId"`
			} `json:"operations"`
		} `json:"items"`
	}
	e.admin.do("GET", "/projects/"+gigPayProject+"/transactions?page=1&pageSize=100", nil).expect(200).decode(&page)
	var holds []string
	for _, tx := range page.Items {
		for _, op := range tx.Operations {
			if op.HoldID != "" {
				holds = append(holds, op.HoldID)
			}
		}
	}
	if len(holds) != 2 {
		t.Fatalf("holds of the token and the withdrawal: %v", holds)
	}
	owned := func(r *response) {
		t.Helper()
		r.expectError(409, "ProjectOwnedByGigPay")
	}
	for _, hold := range holds {
		owned(e.admin.do("POST", "/projects/"+gigPayProject+"/holds/"+hold+"/release", nil))
		owned(e.admin.do("POST", "/projects/"+gigPayProject+"/holds/"+hold+"/capture", map[string]any{"to": payee}))
	}
	issue := map[string]any{"referenceId": "mint", "operations": []map[string]any{{"type": "issue", "to": payee, "amount": "100"}}}
	owned(e.admin.do("POST", "/projects/"+gigPayProject+"/transactions", issue))
	owned(e.admin.do("POST", "/projects/"+gigPayProject+"/transactions/batch", map[string]any{"transactions": []any{issue}}))
	if after := e.balances(payer); after != before {
		t.Fatalf("payer %s after the refusals, %s before", after, before)
	}
	if after := e.balances(payee); after != "0/0/0" {
		t.Fatalf("payee after the refusals: %s", after)
	}
	// GigPay resolves its own holds as before.
	e.public.do("POST", "/api/v1/payment-tokens/"+tok.Token+"/claim", map[string]any{"destinationAccountId": payee}).expect(200)
	e.admin.do("POST", "/api/v1/payments/"+withdrawal.PaymentID+"/status", map[string]any{"status": "completed"}).expect(200)
	if got := e.balances(payer) + " " + e.balances(payee); got != "5/5/0 4/4/0" {
		t.Fatalf("payer, payee after the claim and the withdrawal: %s", got)
	}
	// Nor does it create the project (GigPay did) or delete GigPay's own asset; other assets of
	// the project stay the operator's.
	owned(e.admin.do("POST", "/projects", map[string]any{"id": gigPayProject, "name": "Mine"}))
	owned(e.admin.do("DELETE", "/projects/"+gigPayProject+"/assets/usd", nil))
	e.admin.do("POST", "/projects/"+gigPayProject+"/assets", map[string]any{"id": "pts", "name": "Points", "code": "PTS", "fractions": 1}).expect(201)
	e.admin.do("DELETE", "/projects/"+gigPayProject+"/assets/pts", nil).expect(204)
	// Still open: wallet status in GigPay's project, and money in any other project.
	e.admin.do("PUT", "/projects/"+gigPayProject+"/wallets/"+payee+"/status", map[string]any{"status": "suspended"}).expect(200)
	e.admin.do("POST", "/projects", map[string]any{"id": "shop", "name": "Shop"}).expect(201)
	e.admin.do("POST", "/projects/shop/assets", map[string]any{"id": "usd", "name": "USD", "code": "USD", "fractions": 100}).expect(201)
	var w struct{ ID string }
	e.admin.do("POST", "/projects/shop/system-wallets", map[string]any{"assetId": "usd", "name": "float"}).expect(201).decode(&w)
	e.admin.do("POST", "/projects/shop/transactions", map[string]any{"referenceId": "mint",
		"operations": []map[string]any{{"type": "issue", "to": w.ID, "amount": "100"}}}).expect(201)
}
