package gigpay

import (
	"net/url"
	"strconv"

	"github.com/gigaledger/gigaledger/fsm"
	fsmgigpay "github.com/gigaledger/gigaledger/fsm/gigpay"
)

// Paging of GET /api/v1/payments.
const (
	PageLimitDefault = 100
	PageLimitMax     = 1000
)

// PaymentQueryParams are the list's query parameters.
var PaymentQueryParams = []string{"status", "type", "accountId", "assetType", "createdFromUtc", "createdToUtc",
	"sort", "order", "limit", "cursor"}

// Sort names.
const (
	SortCreatedAtUtc = "createdAtUtc"
	SortAmount       = "amount"
)

// ParsePaymentQuery reads the list's query parameters: each at most once, no others. The
// default order is createdAtUtc descending (newest first); createdFromUtc is inclusive,
// createdToUtc exclusive.
func ParsePaymentQuery(values url.Values) (fsmgigpay.PaymentQuery, *Error) {
	q := fsmgigpay.PaymentQuery{Sort: fsmgigpay.SortCreated, Descending: true, Limit: PageLimitDefault}
	known := map[string]bool{}
	for _, name := range PaymentQueryParams {
		known[name] = true
	}
	for name, vs := range values {
		if !known[name] {
			return q, invalid("unknown query parameter %q (known: status, type, accountId, assetType, createdFromUtc, createdToUtc, sort, order, limit, cursor)", clip(name))
		}
		if len(vs) != 1 {
			return q, invalid("query parameter %s must be given once", name)
		}
	}
	get := values.Get
	if v := get("status"); v != "" {
		s, ok := fsmgigpay.ParsePaymentStatus(v)
		if !ok {
			return q, invalid("status must be pending, processing, completed, canceled or failed")
		}
		q.Status = s
	}
	if v := get("type"); v != "" {
		t, ok := fsmgigpay.ParsePaymentType(v)
		if !ok {
			return q, invalid("type must be deposit, transfer or withdrawal")
		}
		q.Type = t
	}
	if v := get("accountId"); v != "" {
		if e := checkAccountID("accountId", v); e != nil {
			return q, e
		}
		q.WalletID = v
	}
	if v := get("assetType"); v != "" {
		if e := checkAssetType(v); e != nil {
			return q, e
		}
		q.AssetID = v
	}
	if v := get("createdFromUtc"); v != "" {
		ms, e := ParseTime("createdFromUtc", v)
		if e != nil {
			return q, e
		}
		q.FromMs = ms
	}
	if v := get("createdToUtc"); v != "" {
		ms, e := ParseTime("createdToUtc", v)
		if e != nil {
			return q, e
		}
		if ms == 0 || ms <= q.FromMs {
			return q, invalid("createdToUtc must be after createdFromUtc (and after 1970-01-01T00:00:00.000Z)")
		}
		q.ToMs = ms
	}
	switch get("sort") {
	case "", SortCreatedAtUtc:
	case SortAmount:
		q.Sort = fsmgigpay.SortAmount
	default:
		return q, invalid("sort must be createdAtUtc or amount")
	}
	switch get("order") {
	case "", "desc":
	case "asc":
		q.Descending = false
	default:
		return q, invalid("order must be asc or desc")
	}
	if v, present := values["limit"]; present {
		n, err := strconv.Atoi(v[0])
		if err != nil || n < 1 || n > PageLimitMax || len(v[0]) > 4 || !allDigits(v[0]) {
			return q, invalid("limit must be 1..%d", PageLimitMax)
		}
		q.Limit = n
	}
	if v, present := values["cursor"]; present {
		position, e := DecodeCursor(v[0], q.Sort, q.Descending)
		if e != nil {
			return q, e
		}
		q.After = position
	}
	return q, nil
}

// clip cuts a client's text for a message.
func clip(s string) string {
	if len(s) > 64 || !fsm.ValidText(s, 64) {
		return "(a long or unprintable name)"
	}
	return s
}
