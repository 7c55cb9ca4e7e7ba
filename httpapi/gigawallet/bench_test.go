package gigawallet

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/fsm"
)

// pluginInvoiceBody is what the WooCommerce plugin sends for a two-line order with shipping.
const pluginInvoiceBody = `{"required_confirmations":3,"items":[{"type":"item","name":"Doge T-Shirt - Blue, XL","quantity":2,"value":"49.795480"},` +
	`{"type":"item","name":"Cap","quantity":1,"value":"12.5"},{"type":"shipping","name":"shipping","quantity":1,"value":"4.166667"}]}`

// BenchmarkDecodeInvoiceCreate measures the decode of the invoice bench scenario's request.
func BenchmarkDecodeInvoiceCreate(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, apiErr := DecodeInvoiceCreate(strings.NewReader(pluginInvoiceBody), 6); apiErr != nil {
			b.Fatal(apiErr)
		}
	}
}

// BenchmarkMarshalPublicInvoice measures the create response.
func BenchmarkMarshalPublicInvoice(b *testing.B) {
	request, apiErr := DecodeInvoiceCreate(strings.NewReader(pluginInvoiceBody), 6)
	if apiErr != nil {
		b.Fatal(apiErr)
	}
	invoice := PublicInvoice{ID: "nbMFaHF9pjNoohS4fD1jefKBgDnETK9uPu", Items: request.Items, Created: time.Now(),
		Total: Amount(request.Total), PayToAddress: "nbMFaHF9pjNoohS4fD1jefKBgDnETK9uPu", RequiredConfirmations: 3}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(invoice); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFormatKoinu measures one amount written out.
func BenchmarkFormatKoinu(b *testing.B) {
	koinu := fsm.AmountFromUint64(2489774000)
	for b.Loop() {
		_ = FormatKoinu(koinu)
	}
}
