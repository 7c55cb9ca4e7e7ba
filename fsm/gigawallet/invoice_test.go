package gigawallet

import (
	"reflect"
	"testing"

	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/ledger"
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
	got, err := reader.GetInvoice("gw", "shop", "nAddr0")
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
			subject, ok, err := EventSubject(ev)
			if inv, isInvoice := subject.(*Invoice); !ok || err != nil || !isInvoice || inv.Total.IsZero() {
				t.Fatalf("INV_CREATED carries %+v, %v %v", subject, ok, err)
			}
			created++
		}
	}
	if created != 2 {
		t.Fatalf("%d INV_CREATED events, want 2", created)
	}
	if _, ok, _ := EventSubject(fsm.Event{Type: "LEDGER_TX_COMPLETED"}); ok {
		t.Fatal("claimed another family's event")
	}
	if _, ok, err := EventSubject(fsm.Event{Type: EventAccountCreated, Data: []byte{1}}); !ok || err == nil {
		t.Fatalf("a truncated account event: %v %v", ok, err)
	}
}

func TestInvoiceExpiry(t *testing.T) {
	h := newHarness(t)
	h.ok(h.newAccount("shop"))
	h.ok(h.newAccount("other"))
	expiring := h.ok(&CreateInvoice{ProjectID: "gw", ForeignID: "shop", KeyIndex: 0, Address: "nA", ExpireMinutes: 2,
		Items: []Item{item("item", false, 1, 1)}}).Value.(*Invoice)
	h.ok(&CreateInvoice{ProjectID: "gw", ForeignID: "shop", KeyIndex: 1, Address: "nB", Items: []Item{item("item", false, 1, 1)}})
	if expiring.Status != InvoiceUnpaid || h.m.NextDueMs() != expiring.ExpiresAt {
		t.Fatalf("status %v, due %d, expires %d", expiring.Status, h.m.NextDueMs(), expiring.ExpiresAt)
	}
	reader := h.family.Of(h.m)
	if _, err := reader.GetInvoice("gw", "other", "nA"); err == nil || err.(*fsm.Error).Code != CodeInvoiceNotFound {
		t.Fatalf("another account's invoice: %v", err)
	}
	// One minute later nothing has changed; at the expiry the first batch (a tick) expires it.
	h.now = expiring.ExpiresAt - 60_000
	h.ok(&fsm.Tick{})
	if v, _ := reader.GetInvoice("gw", "", "nA"); v.Status != InvoiceUnpaid {
		t.Fatalf("expired early: %+v", v)
	}
	h.now = expiring.ExpiresAt - 1000 // apply adds a second
	h.ok(&fsm.Tick{})
	v, err := reader.GetInvoice("gw", "", "nA")
	if err != nil || v.Status != InvoiceExpired || v.UpdatedAt != expiring.ExpiresAt {
		t.Fatalf("at expiry: %+v %v", v, err)
	}
	if other, _ := reader.GetInvoice("gw", "shop", "nB"); other.Status != InvoiceUnpaid {
		t.Fatalf("an invoice without expiry: %+v", other)
	}
	if h.m.NextDueMs() != 0 {
		t.Fatalf("due %d after the last expiry", h.m.NextDueMs())
	}
	events, _ := h.m.Events(0, 100)
	var expired int
	for _, ev := range events {
		if ev.Type == EventInvoiceExpired {
			d := fsm.NewDecoder(ev.Data)
			if inv := ReadInvoice(d); d.Finish("event") != nil || inv.Address != "nA" || inv.Status != InvoiceExpired {
				t.Fatalf("INV_EXPIRED carries %+v", inv)
			}
			expired++
		}
	}
	if expired != 1 {
		t.Fatalf("%d INV_EXPIRED events, want 1", expired)
	}
}

func TestInvoiceExpiryAfterReopen(t *testing.T) {
	dir := t.TempDir()
	open := func() (*fsm.Machine, *Family) {
		reg := fsm.NewRegistry()
		f := Register(reg, ledger.Register(reg))
		m, err := fsm.Open(dir, nil, reg)
		if err != nil {
			t.Fatal(err)
		}
		return m, f
	}
	m, f := open()
	h := &harness{t: t, m: m, family: f, now: 1_700_000_000_000}
	h.ok(&ledger.CreateProject{ProjectID: "gw", Name: "GigaWallet"})
	h.ok(&ledger.CreateAsset{ProjectID: "gw", AssetID: "doge", Name: "Dogecoin", Code: "DOGE", Fractions: 100_000_000})
	h.ok(h.newAccount("shop"))
	v := h.ok(&CreateInvoice{ProjectID: "gw", ForeignID: "shop", Address: "nA", ExpireMinutes: 1,
		Items: []Item{item("item", false, 1, 1)}}).Value.(*Invoice)
	m.Close()
	m, f = open()
	defer m.Close()
	if m.NextDueMs() != v.ExpiresAt {
		t.Fatalf("reopened: due %d, want %d", m.NextDueMs(), v.ExpiresAt)
	}
	h.m, h.family, h.now = m, f, v.ExpiresAt
	h.ok(&fsm.Tick{})
	if got, _ := f.Of(m).GetInvoice("gw", "shop", "nA"); got.Status != InvoiceExpired {
		t.Fatalf("after reopen: %+v", got)
	}
}
