package gigawallet

import (
	"reflect"
	"testing"

	"github.com/gigaledger/gigaledger/fsm"
)

func item(t string, negative bool, koinu, quantity uint64) Item {
	return Item{Type: t, Name: t, Negative: negative, Value: fsm.AmountFromUint64(koinu), Quantity: quantity}
}

func TestCreateInvoice(t *testing.T) {
	h := newHarness(t)
	h.ok(h.newAccount("shop"))
	invoice := func(index uint32, address string, items ...Item) *CreateInvoice {
		return &CreateInvoice{ProjectID: "gw", ForeignID: "shop", KeyIndex: index, Address: address, Items: items,
			RequiredConfirmations: 6, ExpireMinutes: 30}
	}
	// 2 × 1.5 + 0.25 shipping − 0.5 discount = 2.75 DOGE, exactly.
	r := h.ok(invoice(0, "nAddr0", item("item", false, 150_000_000, 2), item("shipping", false, 25_000_000, 1),
		item("discount", true, 50_000_000, 1)))
	v := r.Value.(*Invoice)
	if v.Total.String() != "275000000" || v.KeyIndex != 0 || v.ExpiresAt != v.CreatedAt+30*60_000 {
		t.Fatalf("invoice %+v", v)
	}
	// The next invoice takes the next key index; a stale one is refused.
	if r := h.apply(invoice(0, "nAddr0b", item("item", false, 1, 1))); r.Err == nil || r.Err.Code != CodeInvoiceIndexTaken {
		t.Fatalf("stale index: %v", r.Err)
	}
	h.ok(invoice(1, "nAddr1", item("item", false, 1, 1)))
	reader := h.family.Of(h.m)
	got, err := reader.GetInvoice("gw", "nAddr0")
	if err != nil || !reflect.DeepEqual(got, v) {
		t.Fatalf("stored %+v %v", got, err)
	}
	list, err := reader.ListInvoices("gw", "shop", 1, 10)
	if err != nil || len(list) != 1 || list[0].Address != "nAddr1" {
		t.Fatalf("list from cursor 1: %+v %v", list, err)
	}
	a, _ := reader.GetAccount("gw", "shop")
	if a.NextExternal != 2 {
		t.Fatalf("next external %d", a.NextExternal)
	}
	// Validation, as GigaWallet's (but answered, not a 500): the running total stays above zero,
	// a discount is negative and only a discount, quantities are positive.
	for name, items := range map[string][]Item{
		"discount first":     {item("discount", true, 1, 1), item("item", false, 5, 1)},
		"zero total":         {item("item", false, 5, 1), item("discount", true, 5, 1)},
		"positive discount":  {item("discount", false, 5, 1)},
		"negative item":      {item("item", true, 5, 1)},
		"zero quantity":      {item("item", false, 5, 0)},
		"unknown type":       {item("gift", false, 5, 1)},
		"no items":           nil,
		"quantity overflows": {item("item", false, 1<<63, 1<<63), item("item", false, 1<<63, 1<<63), item("item", false, 1<<63, 1<<63), item("item", false, 1<<63, 1<<63), item("item", false, 1<<63, 1<<63)},
	} {
		if r := h.apply(invoice(2, "nAddr2", items...)); r.Err == nil || r.Err.Code != fsm.CodeInvalidArgument {
			t.Errorf("%s: %v", name, r.Err)
		}
	}
	if r := h.apply(&CreateInvoice{ProjectID: "gw", ForeignID: "nobody", Address: "x", Items: []Item{item("item", false, 1, 1)}}); r.Err == nil || r.Err.Code != CodeAccountNotFound {
		t.Fatalf("unknown account: %v", r.Err)
	}
	events, _ := h.m.Events(0, 100)
	var created int
	for _, ev := range events {
		if ev.Type == EventInvoiceCreated {
			d := fsm.NewDecoder(ev.Data)
			if inv := ReadInvoice(d); d.Finish("event") != nil || inv.Total.IsZero() {
				t.Fatalf("INV_CREATED carries %+v", inv)
			}
			created++
		}
	}
	if created != 2 {
		t.Fatalf("%d INV_CREATED events, want 2", created)
	}
}
