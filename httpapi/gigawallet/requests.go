package gigawallet

import (
	"encoding/json"
	"io"
	"math/big"
	"strconv"
	"unicode"
	"unicode/utf8"

	"github.com/gigaledger/gigaledger/fsm"
)

// Limits of the request bodies. GigaWallet has none; each is far above what a shop sends and
// each is a 400 (413 for the body) naming the limit.
const (
	// RequestBodyMaxBytes bounds every request body: 100 items at their longest fit.
	RequestBodyMaxBytes = 1 << 20
	// InvoiceItemsMaxCount bounds the items of one invoice.
	InvoiceItemsMaxCount = 100
	// ItemQuantityMax bounds an item's quantity.
	ItemQuantityMax = 1_000_000_000
	// Lengths of an item's strings, in bytes of UTF-8. The WooCommerce plugin sends the
	// order line's name, which for a variation carries its attributes ("T-Shirt - Blue, XL"),
	// so the name limit is generous; it sends no sku, description or image_link.
	ItemNameMaxBytes        = 1024
	ItemSKUMaxBytes         = 128
	ItemDescriptionMaxBytes = 2048
	ItemImageLinkMaxBytes   = 2048
	// RequiredConfirmationsMax bounds an invoice's required_confirmations: a day of Dogecoin
	// blocks (one a minute) is 1440; more is a typo, not a policy.
	RequiredConfirmationsMax = 1440
	// RequiredConfirmationsDefaultMarker is the value that, like an absent key, asks for the
	// configured default (GigaWallet's -1).
	RequiredConfirmationsDefaultMarker = -1
	// ExpireMinutesMax bounds expire_minutes (GigaWallet PR #160, issue 10 item 4): 30 days.
	ExpireMinutesMax = 30 * 24 * 60
	// PayoutAddressMaxBytes bounds payout_address before the network check; a P2PKH address
	// in base58 has 33 or 34 characters.
	PayoutAddressMaxBytes = 64
	// PayoutFrequencyMaxSeconds bounds payout_frequency: ten years.
	PayoutFrequencyMaxSeconds = 10 * 365 * 24 * 60 * 60
)

// accountUpsertRequest is the body of POST /account/:foreignID. Every key is raw JSON so that an
// absent key (nil) is told apart from null and the types are checked with clear messages.
type accountUpsertRequest struct {
	PayoutAddress   json.RawMessage `json:"payout_address"`
	PayoutThreshold json.RawMessage `json:"payout_threshold"`
	PayoutFrequency json.RawMessage `json:"payout_frequency"`
}

// AccountSettings is a validated account upsert. A nil field was absent from the request: an
// existing account keeps its setting, a new one takes the default ("", 0, ""). null sets the
// empty value, as GigaWallet reads null (the WooCommerce plugin's API class defaults
// payout_address to null; its checkout sends the configured address, "" when none).
type AccountSettings struct {
	// PayoutAddress is "" (none) or an address that passed the caller's check.
	PayoutAddress *string
	// PayoutThreshold is in koinu.
	PayoutThreshold *fsm.Amount
	// PayoutFrequency is "" (none) or a whole number of seconds in canonical decimal form
	// ("0" … PayoutFrequencyMaxSeconds).
	PayoutFrequency *string
}

// AddressCheck validates a payout address for the configured network (P2PKH, version byte);
// its error's text is shown to the client. Key and address code lives elsewhere; this package
// only calls it.
type AddressCheck func(address string) error

// DecodeAccountUpsert validates the body of an account upsert: a JSON object (`{}` is fine, an
// empty body is 400 as in GigaWallet) with optional payout_address (a string or null, checked
// by checkAddress when not empty; nil checkAddress checks only length and characters),
// payout_threshold (a non-negative DOGE amount, string or number) and payout_frequency.
//
// payout_frequency stays a JSON string as in GigaWallet (a number is 400 there too, and issue 10
// item 8 lists `payout_frequency: 5` as a wrong type), but its content is now defined: a whole
// number of seconds (issue 10 item 2), "" for none. GigaWallet stored any text and never used
// it; the plugin sends "0", which is valid here and means no schedule.
func DecodeAccountUpsert(body io.Reader, checkAddress AddressCheck) (AccountSettings, *Error) {
	var request accountUpsertRequest
	if apiErr := decodeBody(body, &request); apiErr != nil {
		return AccountSettings{}, apiErr
	}
	var settings AccountSettings
	if request.PayoutAddress != nil {
		address, apiErr := nullableString("payout_address", request.PayoutAddress)
		if apiErr != nil {
			return AccountSettings{}, apiErr
		}
		if apiErr := checkPayoutAddress(address, checkAddress); apiErr != nil {
			return AccountSettings{}, apiErr
		}
		settings.PayoutAddress = &address
	}
	if request.PayoutThreshold != nil {
		threshold, apiErr := ParseAmount("payout_threshold", request.PayoutThreshold)
		if apiErr != nil {
			return AccountSettings{}, apiErr
		}
		settings.PayoutThreshold = &threshold
	}
	if request.PayoutFrequency != nil {
		frequency, apiErr := nullableString("payout_frequency", request.PayoutFrequency)
		if apiErr != nil {
			return AccountSettings{}, apiErr
		}
		if frequency != "" {
			seconds, err := strconv.ParseUint(frequency, 10, 64)
			if err != nil || seconds > PayoutFrequencyMaxSeconds {
				return AccountSettings{}, badRequest("payout_frequency must be a whole number of seconds from \"0\" to \"%d\" as a JSON string, or \"\" for none", PayoutFrequencyMaxSeconds)
			}
			frequency = strconv.FormatUint(seconds, 10)
		}
		settings.PayoutFrequency = &frequency
	}
	return settings, nil
}

// nullableString reads raw as a JSON string; null is "".
func nullableString(field string, raw json.RawMessage) (string, *Error) {
	if string(raw) == "null" {
		return "", nil
	}
	var value string
	if err := json.Unmarshal(raw, &value); err != nil {
		return "", badRequest("%s must be a JSON string", field)
	}
	return value, nil
}

// checkPayoutAddress checks a payout address: "" (none), else base58 characters within
// PayoutAddressMaxBytes that checkAddress accepts.
func checkPayoutAddress(address string, checkAddress AddressCheck) *Error {
	if address == "" {
		return nil
	}
	if len(address) > PayoutAddressMaxBytes {
		return badRequest("payout_address must be at most %d characters", PayoutAddressMaxBytes)
	}
	for _, r := range address {
		if !isBase58(r) {
			return badRequest("payout_address must be a base58 P2PKH address (found %q)", r)
		}
	}
	if checkAddress != nil {
		if err := checkAddress(address); err != nil {
			return badRequest("payout_address: %v", err)
		}
	}
	return nil
}

// isBase58 reports whether r is in Bitcoin's base58 alphabet (no 0, O, I, l).
func isBase58(r rune) bool {
	switch {
	case r >= '1' && r <= '9', r >= 'A' && r <= 'Z' && r != 'I' && r != 'O', r >= 'a' && r <= 'z' && r != 'l':
		return true
	}
	return false
}

// invoiceCreateRequest is the body of POST /account/:foreignID/invoice.
type invoiceCreateRequest struct {
	Items                 []itemRequest `json:"items"`
	RequiredConfirmations *int64        `json:"required_confirmations"`
	ExpireMinutes         *int64        `json:"expire_minutes"`
}

// itemRequest is one item of an invoiceCreateRequest. Value stays raw JSON until
// ParseSignedAmount reads it, so that it never passes through float64. A null string is "", as
// encoding/json leaves it.
type itemRequest struct {
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	SKU         string          `json:"sku"`
	Description string          `json:"description"`
	Value       json.RawMessage `json:"value"`
	Quantity    *int64          `json:"quantity"`
	ImageLink   string          `json:"image_link"`
}

// InvoiceRequest is a validated invoice creation.
type InvoiceRequest struct {
	Items []Item
	// RequiredConfirmations is the invoice's N (paid when the tip is at least the payment's
	// height + N): the configured default when the request left it out or sent -1.
	RequiredConfirmations int32
	// ExpireMinutes is 0 when the invoice never expires.
	ExpireMinutes int32
	// Total is Σ quantity × value, exact, greater than zero.
	Total fsm.Amount
}

// amountMaxKoinu is AmountMaxDOGE in koinu.
var amountMaxKoinu = new(big.Int).Mul(big.NewInt(AmountMaxDOGE), big.NewInt(KoinuPerDOGE))

// The item types GigaWallet accepts (the docs list five; the code also takes donation).
const (
	ItemTypeItem     = "item"
	ItemTypeTax      = "tax"
	ItemTypeFee      = "fee"
	ItemTypeShipping = "shipping"
	ItemTypeDiscount = "discount"
	ItemTypeDonation = "donation"
)

// DecodeInvoiceCreate validates an invoice creation with GigaWallet's rules (contract §3.1),
// answered 400 instead of 500: 1..InvoiceItemsMaxCount items; each with a type of the six, a
// quantity that is a JSON integer 1..ItemQuantityMax, a value (DOGE, string or number, at most
// 8 decimals) below zero for a discount and above zero otherwise, and strings within their
// limits; the running total above zero after every item, as GigaWallet checks it inside its
// loop (so a discount listed before what it discounts is refused there and here).
// required_confirmations absent or -1 is defaultConfirmations, else 0..RequiredConfirmationsMax;
// expire_minutes absent or 0 is never, else 1..ExpireMinutesMax.
func DecodeInvoiceCreate(body io.Reader, defaultConfirmations int32) (InvoiceRequest, *Error) {
	var request invoiceCreateRequest
	if apiErr := decodeBody(body, &request); apiErr != nil {
		return InvoiceRequest{}, apiErr
	}
	if len(request.Items) == 0 {
		return InvoiceRequest{}, badRequest("missing 'items' in JSON body: an invoice needs 1 to %d items", InvoiceItemsMaxCount)
	}
	invoice := InvoiceRequest{Items: make([]Item, len(request.Items)), RequiredConfirmations: defaultConfirmations}
	total := new(big.Int)
	for i := range request.Items {
		item, apiErr := checkItem(i, &request.Items[i])
		if apiErr != nil {
			return InvoiceRequest{}, apiErr
		}
		total.Add(total, new(big.Int).Mul(item.Value.big(), big.NewInt(item.Quantity)))
		if total.Sign() <= 0 {
			return InvoiceRequest{}, badRequest("invoice total must be greater than zero after items[%d] (a discount must follow what it discounts)", i)
		}
		invoice.Items[i] = item
	}
	// The sum of bounded items is at most 100 × 10^9 × 10^15 × 10^8 koinu, inside 128 bits; the
	// total itself is held to the bound of every other amount, so what the ledger is asked to
	// move or hold for an invoice never exceeds it.
	invoiceTotal, err := fsm.AmountFromBig(total)
	if err != nil || total.Cmp(amountMaxKoinu) > 0 {
		return InvoiceRequest{}, badRequest("invoice total exceeds the largest amount, %d DOGE", AmountMaxDOGE)
	}
	invoice.Total = invoiceTotal
	if confirmations := request.RequiredConfirmations; confirmations != nil && *confirmations != RequiredConfirmationsDefaultMarker {
		if *confirmations < 0 || *confirmations > RequiredConfirmationsMax {
			return InvoiceRequest{}, badRequest("required_confirmations must be -1 (the default) or 0 to %d", RequiredConfirmationsMax)
		}
		invoice.RequiredConfirmations = int32(*confirmations)
	}
	if minutes := request.ExpireMinutes; minutes != nil {
		if *minutes < 0 || *minutes > ExpireMinutesMax {
			return InvoiceRequest{}, badRequest("expire_minutes must be 0 (never) to %d", ExpireMinutesMax)
		}
		invoice.ExpireMinutes = int32(*minutes)
	}
	return invoice, nil
}

// big returns an item value v as a big.Int of koinu.
func (v SignedAmount) big() *big.Int {
	b := v.Koinu.Big()
	if v.Negative {
		b.Neg(b)
	}
	return b
}

// checkItem validates items[i] in GigaWallet's order (quantity, then type and value) with this
// package's checks of the strings after.
func checkItem(i int, request *itemRequest) (Item, *Error) {
	field := func(name string) string { return "items[" + strconv.Itoa(i) + "]." + name }
	if request.Quantity == nil {
		return Item{}, badRequest("%s is required (a JSON integer above 0)", field("quantity"))
	}
	if *request.Quantity <= 0 || *request.Quantity > ItemQuantityMax {
		return Item{}, badRequest("%s must be 1 to %d", field("quantity"), ItemQuantityMax)
	}
	if !isItemType(request.Type) {
		return Item{}, badRequest("%s must be one of item, tax, fee, shipping, discount, donation", field("type"))
	}
	if request.Value == nil {
		return Item{}, badRequest("%s is required", field("value"))
	}
	value, apiErr := ParseSignedAmount(field("value"), request.Value)
	if apiErr != nil {
		return Item{}, apiErr
	}
	if request.Type == ItemTypeDiscount {
		if !value.Negative {
			return Item{}, badRequest("%s of a discount must be below zero", field("value"))
		}
	} else if value.Negative || value.Koinu.IsZero() {
		return Item{}, badRequest("%s of a%s %s must be above zero", field("value"), article(request.Type), request.Type)
	}
	for _, text := range []struct {
		name     string
		value    string
		maxBytes int
	}{
		{"name", request.Name, ItemNameMaxBytes},
		{"sku", request.SKU, ItemSKUMaxBytes},
		{"description", request.Description, ItemDescriptionMaxBytes},
		{"image_link", request.ImageLink, ItemImageLinkMaxBytes},
	} {
		if apiErr := checkText(field(text.name), text.value, text.maxBytes, text.name == "description"); apiErr != nil {
			return Item{}, apiErr
		}
	}
	return Item{Type: request.Type, Name: request.Name, SKU: request.SKU, Description: request.Description,
		Value: value, Quantity: *request.Quantity, ImageLink: request.ImageLink}, nil
}

// isItemType reports whether t is one of the six item types, spelled exactly (GigaWallet
// compares exactly too).
func isItemType(t string) bool {
	switch t {
	case ItemTypeItem, ItemTypeTax, ItemTypeFee, ItemTypeShipping, ItemTypeDiscount, ItemTypeDonation:
		return true
	}
	return false
}

// article returns "n" before a type that starts with a vowel sound, for "an item".
func article(itemType string) string {
	if itemType == ItemTypeItem {
		return "n"
	}
	return ""
}

// checkText checks free text: at most maxBytes bytes (the body is valid UTF-8 already) and no
// control characters, except line breaks and tabs where multiline allows them (descriptions).
func checkText(field, value string, maxBytes int, multiline bool) *Error {
	if len(value) > maxBytes {
		return badRequest("%s must be at most %d bytes of UTF-8", field, maxBytes)
	}
	if !utf8.ValidString(value) {
		return badRequest("%s must be valid UTF-8", field)
	}
	for _, r := range value {
		if multiline && (r == '\n' || r == '\r' || r == '\t') {
			continue
		}
		if unicode.IsControl(r) {
			return badRequest("%s must not contain control characters (found %U)", field, r)
		}
	}
	return nil
}
