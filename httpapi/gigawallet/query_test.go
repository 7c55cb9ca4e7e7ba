package gigawallet

import (
	"net/url"
	"testing"
)

// TestParseInvoiceListQuery pins GigaWallet's pagination parameters.
func TestParseInvoiceListQuery(t *testing.T) {
	for _, tc := range []struct {
		query string
		want  InvoiceListQuery
	}{
		{"", InvoiceListQuery{Cursor: 0, Limit: 10}},
		{"cursor=&limit=", InvoiceListQuery{Cursor: 0, Limit: 10}},
		{"cursor=0&limit=1", InvoiceListQuery{Cursor: 0, Limit: 1}},
		{"cursor=42&limit=100", InvoiceListQuery{Cursor: 42, Limit: 100}},
		{"cursor=9223372036854775807", InvoiceListQuery{Cursor: 1<<63 - 1, Limit: 10}},
		{"other=1", InvoiceListQuery{Cursor: 0, Limit: 10}},
	} {
		query, _ := url.ParseQuery(tc.query)
		got, apiErr := ParseInvoiceListQuery(query)
		if apiErr != nil || got != tc.want {
			t.Errorf("%q = %+v, %v; want %+v", tc.query, got, apiErr, tc.want)
		}
	}
	for _, tc := range []struct{ query, want string }{
		{"cursor=-1", "cursor must be"},
		{"cursor=x", "cursor must be"},
		{"cursor=1.5", "cursor must be"},
		{"cursor=9223372036854775808", "cursor must be"},
		{"limit=0", "limit must be"},
		{"limit=101", "limit must be"},
		{"limit=ten", "limit must be"},
		{"limit=5&limit=6", "limit is given 2 times"},
		{"cursor=1&cursor=1", "cursor is given 2 times"},
	} {
		query, _ := url.ParseQuery(tc.query)
		_, apiErr := ParseInvoiceListQuery(query)
		checkRefused(t, tc.query, apiErr, tc.want)
	}
}
