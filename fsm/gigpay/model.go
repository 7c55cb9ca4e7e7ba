package gigpay

import (
	"encoding/binary"
	"fmt"
	"math/big"

	"github.com/gigaledger/gigaledger/fsm"
)

// TokenStatus is where a payment token is in its life: Active until exactly one of claimed
// (Succeeded), rejected, expired; a succeeded token whose payment failed downstream is Closed.
// The numbers are stored: append only.
type TokenStatus uint8

// Token statuses.
const (
	TokenActive TokenStatus = iota + 1
	TokenSucceeded
	TokenRejected
	TokenExpired
	TokenClosed
	tokenStatusEnd
)

var tokenStatusNames = [tokenStatusEnd]string{TokenActive: "Active", TokenSucceeded: "Succeeded",
	TokenRejected: "Rejected", TokenExpired: "Expired", TokenClosed: "Closed"}

// String is the status's name in the API (the seed's capitalised names).
func (s TokenStatus) String() string {
	if s == 0 || s >= tokenStatusEnd {
		return fmt.Sprintf("TokenStatus(%d)", uint8(s))
	}
	return tokenStatusNames[s]
}

// PaymentType is what a payment moves: from outside into a wallet (deposit), between two
// wallets (transfer, a claimed token), or out of a wallet (withdrawal). Stored: append only.
type PaymentType uint8

// Payment types.
const (
	PaymentDeposit PaymentType = iota + 1
	PaymentTransfer
	PaymentWithdrawal
	paymentTypeEnd
)

var paymentTypeNames = [paymentTypeEnd]string{PaymentDeposit: "deposit", PaymentTransfer: "transfer", PaymentWithdrawal: "withdrawal"}

// String is the type's name in the API.
func (t PaymentType) String() string {
	if t == 0 || t >= paymentTypeEnd {
		return fmt.Sprintf("PaymentType(%d)", uint8(t))
	}
	return paymentTypeNames[t]
}

// ParsePaymentType reads a type's API name.
func ParsePaymentType(s string) (PaymentType, bool) {
	for t := PaymentDeposit; t < paymentTypeEnd; t++ {
		if paymentTypeNames[t] == s {
			return t, true
		}
	}
	return 0, false
}

// PaymentStatus is where a payment is: pending (created), processing (under way), then one of
// completed, canceled (failed downstream), failed (for unexpected reasons). Stored: append only.
type PaymentStatus uint8

// Payment statuses.
const (
	PaymentPending PaymentStatus = iota + 1
	PaymentProcessing
	PaymentCompleted
	PaymentCanceled
	PaymentFailed
	paymentStatusEnd
)

var paymentStatusNames = [paymentStatusEnd]string{PaymentPending: "pending", PaymentProcessing: "processing",
	PaymentCompleted: "completed", PaymentCanceled: "canceled", PaymentFailed: "failed"}

// String is the status's name in the API.
func (s PaymentStatus) String() string {
	if s == 0 || s >= paymentStatusEnd {
		return fmt.Sprintf("PaymentStatus(%d)", uint8(s))
	}
	return paymentStatusNames[s]
}

// ParsePaymentStatus reads a status's API name.
func ParsePaymentStatus(s string) (PaymentStatus, bool) {
	for st := PaymentPending; st < paymentStatusEnd; st++ {
		if paymentStatusNames[st] == s {
			return st, true
		}
	}
	return 0, false
}

// Final reports a status that a payment does not leave (but a completed transfer, which a close
// cancels with a compensating transfer).
func (s PaymentStatus) Final() bool {
	return s == PaymentCompleted || s == PaymentCanceled || s == PaymentFailed
}

// Limits of what the family stores; the API checks the same before proposing.
const (
	MemoMaxLength            = 500
	ClientReferenceMaxLength = 128
	ExternalStorageMaxLength = 200
	ReasonMaxLength          = 500
	// TokenLifetimeMaxMs bounds expiresAtUtc: at most a year after creation.
	TokenLifetimeMaxMs = 366 * 24 * 60 * 60 * 1000
	// BatchMaxItems bounds the tokens of one batch request.
	BatchMaxItems = 1000
	// ScaleMax is the most decimals an amount may carry (an asset of 10^19 fractions).
	ScaleMax = 19
)

// Token is a payment token: the payer's promise of Amount from SourceWalletID, held there while
// it is active. Token is the bearer string the payee holds (a link or a QR code); anyone who
// has it may claim or reject.
type Token struct {
	ID        string // "k" + slot + random: the admin's handle
	Token     string // "g" + slot + 22 base64url characters (132 random bits)
	ProjectID string
	AssetID   string
	Fractions uint64 // the asset's, to show the amount
	Amount    fsm.Amount
	// SourceWalletID and SourceCustomerID are the payer's wallet and its owner.
	SourceWalletID, SourceCustomerID string
	ExpiresAt                        int64 // Unix ms, batch time
	Memo                             string
	ClientReference                  string
	Status                           TokenStatus
	HoldID                           string
	// Set by a claim: the payee's wallet, the transfer payment and its transaction.
	DestinationWalletID, DestinationCustomerID string
	PaymentID, TransactionID                   string
	// Set by a close: the compensating transaction and why.
	ReversalTransactionID, Reason string
	CreatedAt, ModifiedAt         int64
	// ClaimTransactionID is the cross-shard transaction of a claim in progress (an Active
	// token whose payee lives on another shard, claim.go): until its decision the token can be
	// neither claimed again nor rejected, and it does not expire. "" for none.
	ClaimTransactionID string
	// CloseTransactionID is the cross-shard transaction of a close in progress (a Succeeded
	// token whose payee lives on another shard, closeacross.go): until its decision the token
	// cannot be closed again. "" for none.
	CloseTransactionID string
}

// Token records: version 2 appends ClaimTransactionID and is written only while a claim is in
// progress, version 3 appends CloseTransactionID and is written only while a close is in
// progress, so every other token keeps version 1's bytes.
const (
	tokenRecordVersion      = 1
	tokenRecordVersionClaim = 2
	tokenRecordVersionClose = 3
)

// Encode implements fsm.Value; it is also the stored record.
func (t *Token) Encode(e *fsm.Encoder) {
	version := byte(tokenRecordVersion)
	switch {
	case t.ClaimTransactionID != "" && t.CloseTransactionID != "":
		panic(fmt.Sprintf("gigpay: token %s both claimed and closed in progress", t.ID)) // Active vs Succeeded
	case t.ClaimTransactionID != "":
		version = tokenRecordVersionClaim
	case t.CloseTransactionID != "":
		version = tokenRecordVersionClose
	}
	e.Byte(version)
	for _, s := range []string{t.ID, t.Token, t.ProjectID, t.AssetID} {
		e.String(s)
	}
	e.Uvarint(t.Fractions)
	e.Amount(t.Amount)
	e.String(t.SourceWalletID)
	e.String(t.SourceCustomerID)
	e.Varint(t.ExpiresAt)
	e.String(t.Memo)
	e.String(t.ClientReference)
	e.Byte(byte(t.Status))
	for _, s := range []string{t.HoldID, t.DestinationWalletID, t.DestinationCustomerID, t.PaymentID,
		t.TransactionID, t.ReversalTransactionID, t.Reason} {
		e.String(s)
	}
	e.Varint(t.CreatedAt)
	e.Varint(t.ModifiedAt)
	switch version {
	case tokenRecordVersionClaim:
		e.String(t.ClaimTransactionID)
	case tokenRecordVersionClose:
		e.String(t.CloseTransactionID)
	}
}

// ReadToken reads what Encode wrote.
func ReadToken(d *fsm.Decoder) *Token {
	version := d.Byte()
	if d.Err() == nil && version != tokenRecordVersion && version != tokenRecordVersionClaim && version != tokenRecordVersionClose {
		d.Fail(fmt.Errorf("unknown token record version %d", version))
	}
	t := &Token{ID: d.String(), Token: d.String(), ProjectID: d.String(), AssetID: d.String()}
	t.Fractions = d.Uvarint()
	t.Amount = d.Amount()
	t.SourceWalletID, t.SourceCustomerID = d.String(), d.String()
	t.ExpiresAt = d.Varint()
	t.Memo, t.ClientReference = d.String(), d.String()
	t.Status = TokenStatus(d.Byte())
	if d.Err() == nil && (t.Status == 0 || t.Status >= tokenStatusEnd) {
		d.Fail(fmt.Errorf("unknown token status %d", t.Status))
	}
	t.HoldID, t.DestinationWalletID, t.DestinationCustomerID = d.String(), d.String(), d.String()
	t.PaymentID, t.TransactionID = d.String(), d.String()
	t.ReversalTransactionID, t.Reason = d.String(), d.String()
	t.CreatedAt, t.ModifiedAt = d.Varint(), d.Varint()
	if version == tokenRecordVersionClaim {
		t.ClaimTransactionID = d.String()
		if d.Err() == nil && (t.ClaimTransactionID == "" || t.Status != TokenActive) {
			d.Fail(fmt.Errorf("token %q: a claim in progress on a token that is not Active", t.ID))
		}
	}
	if version == tokenRecordVersionClose {
		t.CloseTransactionID = d.String()
		if d.Err() == nil && (t.CloseTransactionID == "" || t.Status != TokenSucceeded) {
			d.Fail(fmt.Errorf("token %q: a close in progress on a token that is not Succeeded", t.ID))
		}
	}
	return t
}

// Party is one side of a payment: a wallet of the project and its owner, or, for the outside
// side of a deposit or a withdrawal, the integrator's reference of the external account
// (ExternalStorage: a bank account, an off-ramp).
type Party struct {
	WalletID, CustomerID, ExternalStorage string
}

// Payment is money moving into, between or out of GigPay accounts.
type Payment struct {
	ID        string
	ProjectID string
	Type      PaymentType
	Status    PaymentStatus
	AssetID   string
	Fractions uint64
	Amount    fsm.Amount
	Source    Party
	// Destination is the payee's side.
	Destination Party
	TokenID     string // the claimed token of a transfer
	// HoldID is a withdrawal's hold on its source while it is not final.
	HoldID string
	// TransactionID moved the money (a deposit's issue, a transfer's capture, a withdrawal's
	// redeem); ReversalTransactionID gave it back (a closed transfer).
	TransactionID, ReversalTransactionID string
	ClientReference                      string
	Reason                               string
	CreatedAt, ModifiedAt                int64
}

const paymentRecordVersion = 1

// Encode implements fsm.Value; it is also the stored record.
func (p *Payment) Encode(e *fsm.Encoder) {
	e.Byte(paymentRecordVersion)
	e.String(p.ID)
	e.String(p.ProjectID)
	e.Byte(byte(p.Type))
	e.Byte(byte(p.Status))
	e.String(p.AssetID)
	e.Uvarint(p.Fractions)
	e.Amount(p.Amount)
	for _, party := range []Party{p.Source, p.Destination} {
		e.String(party.WalletID)
		e.String(party.CustomerID)
		e.String(party.ExternalStorage)
	}
	for _, s := range []string{p.TokenID, p.HoldID, p.TransactionID, p.ReversalTransactionID, p.ClientReference, p.Reason} {
		e.String(s)
	}
	e.Varint(p.CreatedAt)
	e.Varint(p.ModifiedAt)
}

// ReadPayment reads what Encode wrote.
func ReadPayment(d *fsm.Decoder) *Payment {
	if v := d.Byte(); d.Err() == nil && v != paymentRecordVersion {
		d.Fail(fmt.Errorf("unknown payment record version %d", v))
	}
	p := &Payment{ID: d.String(), ProjectID: d.String(), Type: PaymentType(d.Byte()), Status: PaymentStatus(d.Byte())}
	if d.Err() == nil && (p.Type == 0 || p.Type >= paymentTypeEnd || p.Status == 0 || p.Status >= paymentStatusEnd) {
		d.Fail(fmt.Errorf("unknown payment type %d or status %d", p.Type, p.Status))
	}
	p.AssetID = d.String()
	p.Fractions = d.Uvarint()
	p.Amount = d.Amount()
	p.Source = Party{WalletID: d.String(), CustomerID: d.String(), ExternalStorage: d.String()}
	p.Destination = Party{WalletID: d.String(), CustomerID: d.String(), ExternalStorage: d.String()}
	p.TokenID, p.HoldID, p.TransactionID = d.String(), d.String(), d.String()
	p.ReversalTransactionID, p.ClientReference, p.Reason = d.String(), d.String(), d.String()
	p.CreatedAt, p.ModifiedAt = d.Varint(), d.Varint()
	return p
}

// Stored keys (prefixes claimed in the registry):
//
//	f {project} 0 {tokenID}                          → Token
//	U {sha256(token)}                                → tokenID
//	N {expiresAt, 8 bytes} {project} 0 {tokenID}     → (empty) active tokens by expiry
//	C {project} 0 {walletID} 0 {clientReference}     → tokenID or paymentID (a retry's answer)
//	M {project} 0 {paymentID}                        → Payment
//	L {project} 0 {createdAt, 8} {paymentID}         → (empty) payments by creation time
//	A {project} 0 {amount, 32} {paymentID}           → (empty) payments by amount
//	Z {project} 0 {walletID} 0 {createdAt, 8} {paymentID} → (empty) payments by wallet
const (
	prefixToken         = 'f'
	prefixTokenHash     = 'U'
	prefixTokenExpiry   = 'N'
	prefixClientRef     = 'C'
	prefixPayment       = 'M'
	prefixPaymentTime   = 'L'
	prefixPaymentAmount = 'A'
	prefixWalletPayment = 'Z'
)

func tokenKey(projectID, tokenID string) []byte { return fsm.Key(prefixToken, projectID, tokenID) }

func tokenHashKey(hash [32]byte) []byte { return append([]byte{prefixTokenHash}, hash[:]...) }

func tokenExpiryKey(t *Token) []byte {
	k := binary.BigEndian.AppendUint64([]byte{prefixTokenExpiry}, uint64(t.ExpiresAt))
	return append(append(append(k, t.ProjectID...), 0), t.ID...)
}

func clientRefKey(projectID, walletID, reference string) []byte {
	return fsm.Key(prefixClientRef, projectID, walletID, reference)
}

func paymentKey(projectID, paymentID string) []byte {
	return fsm.Key(prefixPayment, projectID, paymentID)
}

// SortKeyBytes is the length of a payment's amount sort key: the amount in units of 10^-ScaleMax
// of the asset (so that amounts of assets with different fractions compare by value), as a
// 256-bit big-endian number.
const amountKeyBytes = 32

// TimeKey is a payment's position in creation order: its creation time, then its ID.
func TimeKey(p *Payment) []byte {
	return append(binary.BigEndian.AppendUint64(nil, uint64(p.CreatedAt)), p.ID...)
}

// AmountKey is a payment's position in amount order: its value, then its ID.
func AmountKey(p *Payment) []byte {
	v := p.Amount.Big()
	v.Mul(v, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(ScaleMax-scaleOf(p.Fractions))), nil))
	k := v.FillBytes(make([]byte, amountKeyBytes, amountKeyBytes+len(p.ID)))
	return append(k, p.ID...)
}

func paymentTimeKey(p *Payment) []byte {
	return append(fsm.KeyPrefix(prefixPaymentTime, p.ProjectID), TimeKey(p)...)
}

func paymentAmountKey(p *Payment) []byte {
	return append(fsm.KeyPrefix(prefixPaymentAmount, p.ProjectID), AmountKey(p)...)
}

func walletPaymentKey(p *Payment, walletID string) []byte {
	return append(fsm.KeyPrefix(prefixWalletPayment, p.ProjectID, walletID), TimeKey(p)...)
}

// scaleOf is the number of decimals of an asset whose fractions is a power of ten; -1 for any
// other (GigPay refuses those assets: their amounts have no exact decimal form).
func scaleOf(fractions uint64) int {
	scale := 0
	for fractions > 1 {
		if fractions%10 != 0 {
			return -1
		}
		fractions /= 10
		scale++
	}
	if fractions != 1 {
		return -1
	}
	return scale
}

// Scale is the number of decimals of an asset's amounts (fractions 100 → 2), or -1 when its
// fractions is not a power of ten.
func Scale(fractions uint64) int { return scaleOf(fractions) }
