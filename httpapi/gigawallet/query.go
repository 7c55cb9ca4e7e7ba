package gigawallet

import (
	"net/url"
	"strconv"
)

// Pagination of GET /account/:foreignID/invoices, as GigaWallet has it: the cursor is an HD key
// index (not an offset), the page holds invoices with key index ≥ cursor, oldest first.
const (
	InvoicePageSizeDefault = 10
	InvoicePageSizeMax     = 100
)

// InvoiceListQuery is a validated invoice list query.
type InvoiceListQuery struct {
	// Cursor is the first key index to list; 0 lists from the start.
	Cursor int64
	// Limit is 1..InvoicePageSizeMax.
	Limit int
}

// ParseInvoiceListQuery reads cursor and limit. An absent or empty parameter takes its default
// (the WooCommerce plugin builds "?cursor=&limit=" from whatever it holds); a cursor that is
// not a whole number ≥ 0 or a limit outside 1..100 is 400, as in GigaWallet. A parameter given
// twice is refused rather than read by its first occurrence.
func ParseInvoiceListQuery(query url.Values) (InvoiceListQuery, *Error) {
	parsed := InvoiceListQuery{Limit: InvoicePageSizeDefault}
	cursor, present, apiErr := singleParameter(query, "cursor")
	if apiErr != nil {
		return InvoiceListQuery{}, apiErr
	}
	if present {
		value, err := strconv.ParseInt(cursor, 10, 64)
		if err != nil || value < 0 {
			return InvoiceListQuery{}, badRequest("cursor must be a whole number of at least 0 (the cursor of the previous page)")
		}
		parsed.Cursor = value
	}
	limit, present, apiErr := singleParameter(query, "limit")
	if apiErr != nil {
		return InvoiceListQuery{}, apiErr
	}
	if present {
		value, err := strconv.Atoi(limit)
		if err != nil || value < 1 || value > InvoicePageSizeMax {
			return InvoiceListQuery{}, badRequest("limit must be a whole number from 1 to %d", InvoicePageSizeMax)
		}
		parsed.Limit = value
	}
	return parsed, nil
}

// singleParameter returns a query parameter's one non-empty value, whether there is one, or an
// error when it is given more than once.
func singleParameter(query url.Values, name string) (string, bool, *Error) {
	values := query[name]
	switch {
	case len(values) > 1:
		return "", false, badRequest("%s is given %d times; give it once", name, len(values))
	case len(values) == 0 || values[0] == "":
		return "", false, nil
	}
	return values[0], true, nil
}
