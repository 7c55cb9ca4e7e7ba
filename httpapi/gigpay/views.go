package gigpay

import (
	fsmgigpay "github.com/gigaledger/gigaledger/fsm/gigpay"
)

// Token is a payment token as the API shows it.
type Token struct {
	ID                   string `json:"id"`
	Token                string `json:"token"`
	Status               string `json:"status"`
	Link                 string `json:"link"`
	AssetType            string `json:"assetType"`
	SourceAccountID      string `json:"sourceAccountId"`
	Amount               Amount `json:"amount"`
	ExpiresAtUtc         string `json:"expiresAtUtc"`
	Memo                 string `json:"memo"`
	ClientReference      string `json:"clientReference,omitempty"`
	CreatedAtUtc         string `json:"createdAtUtc"`
	ModifiedAtUtc        string `json:"modifiedAtUtc"`
	DestinationAccountID string `json:"destinationAccountId,omitempty"`
	PaymentID            string `json:"paymentId,omitempty"`
	Reason               string `json:"reason,omitempty"`
}

// Link is the wallet app's link of a token: https://wallet.{env}.gigpay.com/payment/{token},
// https://wallet.gigpay.com/payment/{token} in production (env empty).
func Link(env, token string) string {
	host := "wallet.gigpay.com"
	if env != "" {
		host = "wallet." + env + ".gigpay.com"
	}
	return "https://" + host + "/payment/" + token
}

// TokenOf is a token's view; env names the wallet app's environment of the link.
func TokenOf(t *fsmgigpay.Token, env string) Token {
	return Token{ID: t.ID, Token: t.Token, Status: t.Status.String(), Link: Link(env, t.Token), AssetType: t.AssetID,
		SourceAccountID: t.SourceWalletID, Amount: Amount{Units: t.Amount, Fractions: t.Fractions},
		ExpiresAtUtc: FormatTime(t.ExpiresAt), Memo: t.Memo, ClientReference: t.ClientReference,
		CreatedAtUtc: FormatTime(t.CreatedAt), ModifiedAtUtc: FormatTime(t.ModifiedAt),
		DestinationAccountID: t.DestinationWalletID, PaymentID: t.PaymentID, Reason: t.Reason}
}

// Party is one side of a payment (the seed's source and destination): the outside party of a
// deposit or a withdrawal has an empty id and userIdentityId and its externalStorage.
type Party struct {
	ID                string `json:"id"`
	BusinessAccountID string `json:"businessAccountId"`
	UserIdentityID    string `json:"userIdentityId"`
	ExternalStorage   string `json:"externalStorage"`
}

// Payment is a payment as the API shows it (the seed's shape).
type Payment struct {
	PaymentID       string `json:"paymentId"`
	Amount          Amount `json:"amount"`
	AssetType       string `json:"assetType"`
	Status          string `json:"status"`
	Type            string `json:"type"`
	CreatedAtUtc    string `json:"createdAtUtc"`
	ModifiedAtUtc   string `json:"modifiedAtUtc"`
	Source          Party  `json:"source"`
	Destination     Party  `json:"destination"`
	PaymentTokenID  string `json:"paymentTokenId"`
	ClientReference string `json:"clientReference,omitempty"`
	Reason          string `json:"reason,omitempty"`
}

// PaymentOf is a payment's view.
func PaymentOf(p *fsmgigpay.Payment) Payment {
	party := func(x fsmgigpay.Party) Party {
		return Party{ID: x.WalletID, BusinessAccountID: p.ProjectID, UserIdentityID: x.CustomerID, ExternalStorage: x.ExternalStorage}
	}
	return Payment{PaymentID: p.ID, Amount: Amount{Units: p.Amount, Fractions: p.Fractions}, AssetType: p.AssetID,
		Status: p.Status.String(), Type: p.Type.String(), CreatedAtUtc: FormatTime(p.CreatedAt), ModifiedAtUtc: FormatTime(p.ModifiedAt),
		Source: party(p.Source), Destination: party(p.Destination), PaymentTokenID: p.TokenID,
		ClientReference: p.ClientReference, Reason: p.Reason}
}

// PaymentList is GET /api/v1/payments's answer.
type PaymentList struct {
	Data       []Payment `json:"data"`
	HasMore    bool      `json:"hasMore"`
	NextCursor string    `json:"nextCursor,omitempty"`
}

// Account is a GigPay account: a wallet of the GigPay project.
type Account struct {
	ID                string `json:"id"`
	BusinessAccountID string `json:"businessAccountId"`
	UserIdentityID    string `json:"userIdentityId"`
	AssetType         string `json:"assetType"`
	Balance           Amount `json:"balance"`
	Available         Amount `json:"available"`
	Held              Amount `json:"held"`
	Status            string `json:"status"`
	CreatedAtUtc      string `json:"createdAtUtc"`
}

// BatchResult is one item's outcome in a batch answer.
type BatchResult struct {
	Index  int          `json:"index"`
	Result string       `json:"result"` // created, replayed or failed
	Token  *Token       `json:"token,omitempty"`
	Error  *ErrorDetail `json:"error,omitempty"`
}

// Batch results.
const (
	ResultCreated  = "created"
	ResultReplayed = "replayed"
	ResultFailed   = "failed"
)

// ErrorDetail is the error of one batch item: the envelope's inside.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// BatchAnswer is the batch route's answer, one result per item in request order.
type BatchAnswer struct {
	Data []BatchResult `json:"data"`
}
