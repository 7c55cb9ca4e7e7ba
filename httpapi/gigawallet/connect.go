package gigawallet

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/btcsuite/btcd/btcec/v2/schnorr"

	"github.com/gigaledger/gigaledger/fsm"
)

// DogeConnect 1.0 (contract §9): a wallet scans a dogecoin: URI carrying dc= (where to fetch a
// payment envelope) and h= (the hash of the key that signs it), fetches the envelope, checks
// the key against h, checks the signature, and shows the itemised payment before paying.
// GigaWallet v1.0.8 serves an unsigned 0.1 envelope; this is the current protocol, as the
// DogeConnect specification (dogeorg/connect: payment_envelope, qr_codes, schema_reference) and
// its reference library (dogeorg/dogeconnect-go) define it:
//
//   - payload is the payment JSON exactly as signed, in standard base64 with padding (RFC 4648
//     §4, not the URL alphabet);
//   - the message signed is SHA-256(SHA-256(payload bytes)): a plain double SHA-256 of the
//     JSON bytes, not a BIP-340 tagged hash (BIP-340 tags its own challenge hash inside the
//     signature, as always); wallets re-hash the bytes they decode from payload, so the JSON
//     never needs to be canonical;
//   - sig is the 64-byte BIP-340 Schnorr signature of that message, pubkey the signer's 32-byte
//     x-only public key, both in lower-case hex;
//   - h= in the URI is the first 15 bytes of SHA-256(pubkey bytes) in URL-safe base64 (20
//     characters, no padding needed); dc= is the envelope's https:// URL without "https://";
//   - relay is the base URL the wallet POSTs to: <relay>/pay with the signed transaction and
//     <relay>/status to poll. GigaWallet's own DogeConnect code (after v1.0.8) serves the
//     envelope at <root>/dc/<invoice> and uses that same URL as the relay.
//
// Amounts are "8-DP strings": decimal DOGE with at most 8 decimal places; the reference parser
// refuses more than 10^10 DOGE. ConnectEnvelope writes exactly 8 places ("24.89774000").
const (
	// ConnectEnvelopeVersion is the envelope version this package writes.
	ConnectEnvelopeVersion = "1.0"
	// ConnectPaymentType is the payload type of a payment request.
	ConnectPaymentType = "payment"
	// ConnectTimeoutDefaultSeconds is the payment timeout when ConnectPayment has none:
	// GigaWallet's (its 0.1 envelope's timeout_sec).
	ConnectTimeoutDefaultSeconds = 1800
	// ConnectTimeoutMaxSeconds bounds the timeout: the longest invoice expiry (ExpireMinutesMax).
	ConnectTimeoutMaxSeconds = ExpireMinutesMax * 60
	// ConnectFeePerKBDefault is the minimum fee rate the relay asks for when ConnectPayment has
	// none: 0.01 DOGE per 1000 bytes, the rate Dogecoin Core recommends since 1.14.4 and the
	// rate the DogeConnect examples use.
	ConnectFeePerKBDefault = "0.01000000"
	// ConnectMaxSizeDefaultBytes is the largest payment transaction the relay accepts when
	// ConnectPayment says nothing: Dogecoin Core's largest standard transaction, so any
	// transaction the network relays is accepted (GigaWallet's later code asks for 10000).
	ConnectMaxSizeDefaultBytes = 100_000
	// ConnectAmountMaxDOGE bounds every amount of an envelope: dogeconnect-go's MaxMoney,
	// beyond which wallets refuse the payment.
	ConnectAmountMaxDOGE = 10_000_000_000
	// ConnectTextMaxBytes bounds each text of a payment (names, URLs, IDs); item texts are
	// within it by the invoice's own limits.
	ConnectTextMaxBytes = 2048
	// ConnectPayloadMaxBytes bounds the payment JSON: InvoiceItemsMaxCount items at the
	// longest texts the invoice limits allow fit, with room for JSON's escapes.
	ConnectPayloadMaxBytes = 4 << 20
	// connectKeyHashBytes is how much of SHA-256(pubkey) the URI's h= carries.
	connectKeyHashBytes = 15
	// connectAmountDigitsMax bounds the integer digits of an 8-DP string (10^10 has 11).
	connectAmountDigitsMax = 11
)

// Errors of the DogeConnect builders, for callers that branch on them (errors.Is).
var (
	// ErrConnectPayment: a ConnectPayment that cannot make a valid envelope (a bad amount, an
	// item whose total is not count × unit, missing vendor name, …). The message says which.
	ErrConnectPayment = errors.New("invalid DogeConnect payment")
	// ErrConnectSigner: the signer gave a key that is not a BIP-340 public key, failed, or
	// gave a signature that does not verify against its key.
	ErrConnectSigner = errors.New("DogeConnect signer failed")
	// ErrConnectURL: a URL a wallet could not use (ConnectURI needs https://).
	ErrConnectURL = errors.New("invalid DogeConnect URL")
)

// connectAmountMaxBig is ConnectAmountMaxDOGE in koinu.
var connectAmountMaxBig = new(big.Int).Mul(big.NewInt(ConnectAmountMaxDOGE), big.NewInt(KoinuPerDOGE))

// EnvelopeSigner signs DogeConnect envelopes; *dogecoin.ConnectSigner is one. PublicKey returns
// the 32-byte BIP-340 x-only public key; Sign returns the 64-byte BIP-340 Schnorr signature of a
// 32-byte message. Both may be called concurrently.
type EnvelopeSigner interface {
	PublicKey() []byte
	Sign(hash [32]byte) ([64]byte, error)
}

// Envelope is the signed DogeConnect 1.0 envelope a wallet fetches from the URI's dc= URL.
type Envelope struct {
	Version string `json:"version"`
	// Payload is the payment JSON (ConnectPaymentPayload) in standard base64.
	Payload string `json:"payload"`
	// PubKey is the signer's BIP-340 x-only public key, hex.
	PubKey string `json:"pubkey"`
	// Sig is the BIP-340 signature of SHA-256(SHA-256(payload bytes)), hex.
	Sig string `json:"sig"`
}

// ConnectPaymentPayload is the payment request inside an Envelope, in the specification's
// field order. Amounts are 8-DP strings. Optional fields are omitted when empty.
type ConnectPaymentPayload struct {
	Type string `json:"type"`
	// ID is the payment's ID at the relay: the invoice ID.
	ID string `json:"id"`
	// Issued is RFC 3339; the wallet must not pay after Issued + Timeout seconds.
	Issued     string `json:"issued"`
	Timeout    int    `json:"timeout"`
	Relay      string `json:"relay"`
	RelayToken string `json:"relay_token,omitempty"`
	FeePerKB   string `json:"fee_per_kb"`
	MaxSize    int    `json:"max_size"`
	VendorIcon string `json:"vendor_icon,omitempty"`
	VendorName string `json:"vendor_name"`
	VendorURL  string `json:"vendor_url,omitempty"`
	Total      string `json:"total"`
	// Fees and Taxes are the sums of the fee and tax items, present when there are any.
	Fees    string          `json:"fees,omitempty"`
	Taxes   string          `json:"taxes,omitempty"`
	Items   []ConnectItem   `json:"items"`
	Outputs []ConnectOutput `json:"outputs"`
}

// ConnectItem is one line of a payment request, as ConnectPayment takes it and the payload
// writes it. ConnectItemFromInvoice makes one from an invoice item.
type ConnectItem struct {
	// Type is one of the invoice item types (item, tax, fee, shipping, discount, donation):
	// DogeConnect has the same six.
	Type string `json:"type"`
	// ID is the item's ID or SKU; ConnectEnvelope writes the line number ("1", "2", …) for an
	// item without one, since wallets require it.
	ID   string `json:"id"`
	Icon string `json:"icon,omitempty"`
	// Name is shown to the payer; ConnectEnvelope writes the item's type for an item without
	// one, since wallets require it.
	Name        string `json:"name"`
	Description string `json:"desc,omitempty"`
	Count       int64  `json:"count"`
	// Unit and Total are 8-DP strings, below zero for a discount; Total is Count × Unit.
	Unit  string `json:"unit"`
	Total string `json:"total"`
	// Tax is the tax included in this line, an 8-DP string, optional.
	Tax string `json:"tax,omitempty"`
}

// ConnectOutput is one output the payment transaction must have.
type ConnectOutput struct {
	Address string `json:"address"`
	Amount  string `json:"amount"`
}

// ConnectPayment is what ConnectEnvelope needs to know of an invoice and the service. Amounts
// are 8-DP strings (FormatKoinu8DP, SignedAmount.Format8DP, ConnectItemFromInvoice write them).
// It holds no secret.
type ConnectPayment struct {
	// InvoiceID is the invoice's ID, which is its pay-to address: the payment ID and the
	// address of the one output.
	InvoiceID string
	// Total is the invoice total, what the output pays; with items, their totals must add up
	// to it.
	Total string
	Items []ConnectItem
	// Issued is when the request was issued; Issued + TimeoutSeconds is when the wallet must
	// stop paying. The caller chooses it (this package reads no clock); the invoice's creation
	// time makes the envelope the same on every request.
	Issued time.Time
	// TimeoutSeconds is 1..ConnectTimeoutMaxSeconds, or 0 for ConnectTimeoutDefaultSeconds.
	TimeoutSeconds int
	// RelayURL is the http(s) base URL of the payment relay (<relay>/pay, <relay>/status).
	RelayURL string
	// RelayToken is an opaque token the wallet echoes when it pays; optional.
	RelayToken string
	// VendorName is shown to the payer; required (--service-name).
	VendorName string
	// VendorDomain is the vendor's host (--service-domain), written as vendor_url
	// "https://<domain>"; optional.
	VendorDomain string
	// VendorIconURL is the vendor's icon (--service-icon-url); optional.
	VendorIconURL string
	// FeePerKB is the lowest fee rate the relay accepts, an 8-DP string; "" for
	// ConnectFeePerKBDefault.
	FeePerKB string
	// MaxSizeBytes is the largest transaction the relay accepts; 0 for
	// ConnectMaxSizeDefaultBytes.
	MaxSizeBytes int
}

// ConnectItemFromInvoice returns the DogeConnect line of an invoice item: its SKU as ID, its
// image link as icon, its value as unit and quantity × value as total, all 8-DP.
func ConnectItemFromInvoice(item Item) ConnectItem {
	lineTotal := new(big.Int).Mul(item.Value.big(), big.NewInt(item.Quantity))
	return ConnectItem{
		Type:        item.Type,
		ID:          item.SKU,
		Icon:        item.ImageLink,
		Name:        item.Name,
		Description: item.Description,
		Count:       item.Quantity,
		Unit:        item.Value.Format8DP(),
		Total:       format8DP(lineTotal),
	}
}

// FormatKoinu8DP writes koinu as DOGE with exactly 8 decimal places ("24.89774000", "0.00000001",
// "100.00000000"): DogeConnect's 8-DP string. fsm.AmountFromUint64 makes an fsm.Amount of a
// uint64.
func FormatKoinu8DP(koinu fsm.Amount) string { return format8DP(koinu.Big()) }

// Format8DP writes v as DOGE with exactly 8 decimal places, "-" first when below zero.
func (v SignedAmount) Format8DP() string { return format8DP(v.big()) }

// format8DP writes a signed number of koinu as DOGE with exactly 8 decimal places.
func format8DP(koinu *big.Int) string {
	sign := ""
	if koinu.Sign() < 0 {
		sign = "-"
	}
	digits := new(big.Int).Abs(koinu).String()
	if len(digits) <= AmountDecimalsMax {
		digits = strings.Repeat("0", AmountDecimalsMax+1-len(digits)) + digits
	}
	return sign + digits[:len(digits)-AmountDecimalsMax] + "." + digits[len(digits)-AmountDecimalsMax:]
}

// parse8DP reads an 8-DP string (optional "-", digits, optionally "." and 1 to 8 digits) as
// koinu, within ConnectAmountMaxDOGE either side of zero.
func parse8DP(field, text string) (*big.Int, error) {
	unsigned := strings.TrimPrefix(text, "-")
	whole, fraction, hasPoint := strings.Cut(unsigned, ".")
	padded := len(whole) > connectAmountDigitsMax && len(strings.TrimLeft(whole, "0")) <= connectAmountDigitsMax
	if whole == "" || padded || countDigits(whole) != len(whole) ||
		(hasPoint && (fraction == "" || len(fraction) > AmountDecimalsMax || countDigits(fraction) != len(fraction))) {
		return nil, fmt.Errorf("%w: %s %q is not a decimal number of DOGE with at most %d decimal places",
			ErrConnectPayment, field, text, AmountDecimalsMax)
	}
	// More integer digits than the maximum has (zeros in front of fewer are refused above) is
	// too large, whatever they are: no big number is built from a long string.
	var koinu *big.Int
	if len(whole) <= connectAmountDigitsMax {
		koinu, _ = new(big.Int).SetString(whole+fraction+strings.Repeat("0", AmountDecimalsMax-len(fraction)), 10)
	}
	if koinu == nil || koinu.Cmp(connectAmountMaxBig) > 0 {
		return nil, fmt.Errorf("%w: %s %q exceeds %d DOGE, the most a DogeConnect wallet accepts",
			ErrConnectPayment, field, text, ConnectAmountMaxDOGE)
	}
	if len(unsigned) != len(text) {
		koinu.Neg(koinu)
	}
	return koinu, nil
}

// checkConnectText refuses text longer than ConnectTextMaxBytes or not UTF-8, and empty text
// where required.
func checkConnectText(field, text string, required bool) error {
	switch {
	case required && text == "":
		return fmt.Errorf("%w: %s is required", ErrConnectPayment, field)
	case len(text) > ConnectTextMaxBytes:
		return fmt.Errorf("%w: %s is longer than %d bytes", ErrConnectPayment, field, ConnectTextMaxBytes)
	case !utf8.ValidString(text):
		return fmt.Errorf("%w: %s is not UTF-8", ErrConnectPayment, field)
	}
	return nil
}

// ConnectEnvelope builds the payment request of p, signs it with signer and returns the
// envelope. It checks p first (every amount an 8-DP string within ConnectAmountMaxDOGE, the
// total and item totals above zero except a discount's, which is below zero, each item's
// total Count × Unit, the items adding up to the total, the texts bounded), and checks the
// signature against the signer's key after: an envelope that fails a wallet's checks is never
// returned. Building is a pure function of p and the signer.
func ConnectEnvelope(p ConnectPayment, signer EnvelopeSigner) (Envelope, error) {
	payload, err := connectPaymentPayload(p)
	if err != nil {
		return Envelope{}, err
	}
	payloadJSON, err := json.Marshal(payload)
	if err != nil {
		return Envelope{}, fmt.Errorf("%w: %w", ErrConnectPayment, err)
	}
	if len(payloadJSON) > ConnectPayloadMaxBytes {
		return Envelope{}, fmt.Errorf("%w: payment JSON of %d bytes exceeds %d", ErrConnectPayment, len(payloadJSON), ConnectPayloadMaxBytes)
	}

	publicKeyBytes := signer.PublicKey()
	if len(publicKeyBytes) != 32 {
		return Envelope{}, fmt.Errorf("%w: public key of %d bytes, want a 32-byte x-only key", ErrConnectSigner, len(publicKeyBytes))
	}
	publicKey, err := schnorr.ParsePubKey(publicKeyBytes)
	if err != nil {
		return Envelope{}, fmt.Errorf("%w: public key: %w", ErrConnectSigner, err)
	}
	hash := connectMessageHash(payloadJSON)
	signatureBytes, err := signer.Sign(hash)
	if err != nil {
		return Envelope{}, fmt.Errorf("%w: %w", ErrConnectSigner, err)
	}
	signature, err := schnorr.ParseSignature(signatureBytes[:])
	if err != nil || !signature.Verify(hash[:], publicKey) {
		return Envelope{}, fmt.Errorf("%w: signature does not verify against the signer's public key", ErrConnectSigner)
	}
	return Envelope{
		Version: ConnectEnvelopeVersion,
		Payload: base64.StdEncoding.EncodeToString(payloadJSON),
		PubKey:  hex.EncodeToString(publicKeyBytes),
		Sig:     hex.EncodeToString(signatureBytes[:]),
	}, nil
}

// connectMessageHash is the message DogeConnect signs: SHA-256(SHA-256(payload JSON bytes)).
func connectMessageHash(payloadJSON []byte) [32]byte {
	first := sha256.Sum256(payloadJSON)
	return sha256.Sum256(first[:])
}

// connectPaymentPayload checks p and builds its payload.
func connectPaymentPayload(p ConnectPayment) (ConnectPaymentPayload, error) {
	for _, text := range []struct {
		field, value string
		required     bool
	}{
		{"invoice ID", p.InvoiceID, true},
		{"relay URL", p.RelayURL, true},
		{"relay token", p.RelayToken, false},
		{"vendor name", p.VendorName, true},
		{"vendor domain", p.VendorDomain, false},
		{"vendor icon URL", p.VendorIconURL, false},
	} {
		if err := checkConnectText(text.field, text.value, text.required); err != nil {
			return ConnectPaymentPayload{}, err
		}
	}
	if relay, err := url.Parse(p.RelayURL); err != nil || (relay.Scheme != "https" && relay.Scheme != "http") || relay.Host == "" {
		return ConnectPaymentPayload{}, fmt.Errorf("%w: relay URL %q is not an http(s) URL", ErrConnectPayment, p.RelayURL)
	}
	vendorURL := ""
	if p.VendorDomain != "" {
		vendorURL = "https://" + p.VendorDomain
		if parsed, err := url.Parse(vendorURL); err != nil || parsed.Host != p.VendorDomain {
			return ConnectPaymentPayload{}, fmt.Errorf("%w: vendor domain %q is not a host name", ErrConnectPayment, p.VendorDomain)
		}
	}
	if p.Issued.IsZero() {
		return ConnectPaymentPayload{}, fmt.Errorf("%w: issued time is required", ErrConnectPayment)
	}
	timeoutSeconds := p.TimeoutSeconds
	if timeoutSeconds == 0 {
		timeoutSeconds = ConnectTimeoutDefaultSeconds
	}
	if timeoutSeconds < 1 || timeoutSeconds > ConnectTimeoutMaxSeconds {
		return ConnectPaymentPayload{}, fmt.Errorf("%w: timeout %d s is not 1 to %d", ErrConnectPayment, p.TimeoutSeconds, ConnectTimeoutMaxSeconds)
	}
	feePerKB := p.FeePerKB
	if feePerKB == "" {
		feePerKB = ConnectFeePerKBDefault
	}
	fee, err := parse8DP("fee per kB", feePerKB)
	if err != nil {
		return ConnectPaymentPayload{}, err
	}
	if fee.Sign() < 0 {
		return ConnectPaymentPayload{}, fmt.Errorf("%w: fee per kB %q is below zero", ErrConnectPayment, feePerKB)
	}
	maxSizeBytes := p.MaxSizeBytes
	if maxSizeBytes == 0 {
		maxSizeBytes = ConnectMaxSizeDefaultBytes
	}
	if maxSizeBytes < 1 || maxSizeBytes > ConnectMaxSizeDefaultBytes {
		return ConnectPaymentPayload{}, fmt.Errorf("%w: max size %d bytes is not 1 to %d", ErrConnectPayment, p.MaxSizeBytes, ConnectMaxSizeDefaultBytes)
	}
	total, err := parse8DP("total", p.Total)
	if err != nil {
		return ConnectPaymentPayload{}, err
	}
	if total.Sign() <= 0 {
		// A wallet cannot pay an output of nothing; an invoice's total is above zero.
		return ConnectPaymentPayload{}, fmt.Errorf("%w: total %q is not above zero", ErrConnectPayment, p.Total)
	}
	if len(p.Items) > InvoiceItemsMaxCount {
		return ConnectPaymentPayload{}, fmt.Errorf("%w: %d items, at most %d", ErrConnectPayment, len(p.Items), InvoiceItemsMaxCount)
	}

	payload := ConnectPaymentPayload{
		Type:       ConnectPaymentType,
		ID:         p.InvoiceID,
		Issued:     p.Issued.UTC().Format(time.RFC3339),
		Timeout:    timeoutSeconds,
		Relay:      p.RelayURL,
		RelayToken: p.RelayToken,
		FeePerKB:   format8DP(fee),
		MaxSize:    maxSizeBytes,
		VendorIcon: p.VendorIconURL,
		VendorName: p.VendorName,
		VendorURL:  vendorURL,
		Total:      format8DP(total),
		Items:      make([]ConnectItem, len(p.Items)),
		Outputs:    []ConnectOutput{{Address: p.InvoiceID, Amount: format8DP(total)}},
	}
	itemsTotal, fees, taxes := new(big.Int), new(big.Int), new(big.Int)
	hasFees, hasTaxes := false, false
	for i, item := range p.Items {
		lineTotal, err := checkConnectItem(i, &item)
		if err != nil {
			return ConnectPaymentPayload{}, err
		}
		itemsTotal.Add(itemsTotal, lineTotal)
		switch item.Type {
		case ItemTypeFee:
			fees.Add(fees, lineTotal)
			hasFees = true
		case ItemTypeTax:
			taxes.Add(taxes, lineTotal)
			hasTaxes = true
		}
		payload.Items[i] = item
	}
	if len(p.Items) > 0 && itemsTotal.Cmp(total) != 0 {
		return ConnectPaymentPayload{}, fmt.Errorf("%w: items add up to %s, the total is %s",
			ErrConnectPayment, format8DP(itemsTotal), format8DP(total))
	}
	if hasFees {
		payload.Fees = format8DP(fees)
	}
	if hasTaxes {
		payload.Taxes = format8DP(taxes)
	}
	return payload, nil
}

// checkConnectItem checks items[i], fills its default ID and name, rewrites its amounts with
// exactly 8 decimal places, and returns its total in koinu.
func checkConnectItem(i int, item *ConnectItem) (*big.Int, error) {
	field := func(name string) string { return "items[" + strconv.Itoa(i) + "]." + name }
	if !isItemType(item.Type) {
		return nil, fmt.Errorf("%w: %s %q is not one of item, tax, fee, shipping, discount, donation", ErrConnectPayment, field("type"), item.Type)
	}
	if item.ID == "" {
		item.ID = strconv.Itoa(i + 1)
	}
	if item.Name == "" {
		item.Name = item.Type
	}
	for _, text := range []struct{ name, value string }{
		{"id", item.ID}, {"icon", item.Icon}, {"name", item.Name}, {"desc", item.Description},
	} {
		if err := checkConnectText(field(text.name), text.value, false); err != nil {
			return nil, err
		}
	}
	if item.Count < 1 || item.Count > ItemQuantityMax {
		return nil, fmt.Errorf("%w: %s %d is not 1 to %d", ErrConnectPayment, field("count"), item.Count, ItemQuantityMax)
	}
	unit, err := parse8DP(field("unit"), item.Unit)
	if err != nil {
		return nil, err
	}
	lineTotal, err := parse8DP(field("total"), item.Total)
	if err != nil {
		return nil, err
	}
	if product := new(big.Int).Mul(unit, big.NewInt(item.Count)); product.Cmp(lineTotal) != 0 {
		return nil, fmt.Errorf("%w: %s %s is not count %d × unit %s", ErrConnectPayment, field("total"), item.Total, item.Count, item.Unit)
	}
	if discount := item.Type == ItemTypeDiscount; discount != (lineTotal.Sign() < 0) || (!discount && lineTotal.Sign() == 0) {
		return nil, fmt.Errorf("%w: %s %s must be below zero for a discount and above zero otherwise", ErrConnectPayment, field("total"), item.Total)
	}
	item.Unit, item.Total = format8DP(unit), format8DP(lineTotal)
	if item.Tax != "" {
		tax, err := parse8DP(field("tax"), item.Tax)
		if err != nil {
			return nil, err
		}
		if tax.Sign() < 0 {
			return nil, fmt.Errorf("%w: %s %q is below zero", ErrConnectPayment, field("tax"), item.Tax)
		}
		item.Tax = format8DP(tax)
	}
	return lineTotal, nil
}

// ConnectURI returns the DogeConnect 1.0 QR text: dogecoin:<address>?amount=<amount>&dc=<the
// envelope's URL without "https://", query-escaped>&h=<URL-safe base64 of the first 15 bytes of
// SHA-256(publicKey)>. Wallets without DogeConnect pay address and amount; the others fetch
// https://<dc>, check the envelope's key against h and its signature. connectURL must be https
// (a wallet puts "https://" back in front of dc), publicKey the signer's 32-byte x-only key.
func ConnectURI(address, amount, connectURL string, publicKey []byte) (string, error) {
	rest, isHTTPS := strings.CutPrefix(connectURL, "https://")
	if !isHTTPS || rest == "" || len(connectURL) > ConnectTextMaxBytes {
		return "", fmt.Errorf("%w: %q: a DogeConnect URL must be https:// (wallets add it back to dc=)", ErrConnectURL, connectURL)
	}
	if len(publicKey) != 32 {
		return "", fmt.Errorf("%w: public key of %d bytes, want a 32-byte x-only key", ErrConnectSigner, len(publicKey))
	}
	keyHash := sha256.Sum256(publicKey)
	return "dogecoin:" + address + "?amount=" + amount + "&dc=" + url.QueryEscape(rest) +
		"&h=" + base64.URLEncoding.EncodeToString(keyHash[:connectKeyHashBytes]), nil
}
