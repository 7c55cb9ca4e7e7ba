package httpapi_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	gp "github.com/gigaledger/gigaledger/httpapi/gigpay"
)

// TestGigPayPaymentsListAgainstModel creates about 60 payments of every type and status, with
// mixed amounts (ties included), times, accounts and two assets, then walks GET /api/v1/payments
// page by page with several limits, for every filter, sort and order, and compares each walk
// with the model: the same payments, in the same order, each exactly once.
func TestGigPayPaymentsListAgainstModel(t *testing.T) {
	e := newGigPay(t)
	rng := rand.New(rand.NewPCG(13, 2))
	var usd, eur []string
	for i := range 4 {
		usd = append(usd, e.account(fmt.Sprintf("u%d", i)))
	}
	// A second asset with three decimals: amounts sort by value across assets.
	e.admin.do("POST", "/projects/"+gigPayProject+"/assets", map[string]any{"id": "eur", "name": "Euro", "code": "EUR", "fractions": 1000}).expect(201)
	for i := range 2 {
		id := ""
		var a gp.Account
		e.admin.do("POST", "/api/v1/accounts", map[string]any{"userIdentityId": fmt.Sprintf("e%d", i), "assetType": "eur"}).expect(201).decode(&a)
		id = a.ID
		eur = append(eur, id)
	}
	amounts := []string{"1", "2.5", "2.5", "10", "0.01", "7.25", "3", "100"}
	step := func() { e.backend.Advance(int64(rng.IntN(3)) * 1000) } // equal times happen too
	deposit := func(acct, asset, amount string, final string) {
		var p gp.Payment
		e.admin.do("POST", "/api/v1/payments", map[string]any{"type": "deposit", "accountId": acct, "assetType": asset,
			"amount": json.Number(amount), "externalStorage": "wire"}).expect(201).decode(&p)
		if final != "" {
			e.admin.do("POST", "/api/v1/payments/"+p.PaymentID+"/status", map[string]any{"status": final}).expect(200)
		}
		step()
	}
	// Fund every account, then mix deposits of every status, withdrawals and transfers.
	for _, a := range usd {
		deposit(a, "usd", "1000", "completed")
	}
	for _, a := range eur {
		deposit(a, "eur", "1000.125", "completed")
	}
	statuses := []string{"", "processing", "completed", "canceled", "failed"}
	for i := range 15 {
		if i%3 == 0 {
			deposit(eur[i%2], "eur", amounts[i%len(amounts)], statuses[i%len(statuses)])
		} else {
			deposit(usd[i%4], "usd", amounts[i%len(amounts)], statuses[(i+1)%len(statuses)])
		}
	}
	for i := range 15 {
		var p gp.Payment
		e.admin.do("POST", "/api/v1/payments", map[string]any{"type": "withdrawal", "accountId": usd[i%4], "assetType": "usd",
			"amount": json.Number(amounts[(i+3)%len(amounts)]), "externalStorage": "ach"}).expect(201).decode(&p)
		if s := []string{"", "processing", "completed", "failed", "canceled"}[i%5]; s != "" {
			e.admin.do("POST", "/api/v1/payments/"+p.PaymentID+"/status", map[string]any{"status": s}).expect(200)
		}
		step()
	}
	for i := range 24 {
		source, dest := usd[i%4], usd[(i+1)%4]
		tok := e.createToken(source, amounts[(i+5)%len(amounts)], nil)
		e.public.do("POST", "/api/v1/payment-tokens/"+tok.Token+"/claim", map[string]any{"destinationAccountId": dest}).expect(200)
		if i%5 == 0 {
			e.admin.do("POST", "/api/v1/payment-tokens/"+tok.ID+"/close", map[string]any{"reason": "downstream"}).expect(200)
		}
		step()
	}

	// The model: every payment, read back one by one.
	var all []gp.Payment
	var first gp.PaymentList
	e.admin.do("GET", "/api/v1/payments?limit=1000", nil).expect(200).decode(&first)
	if first.HasMore || len(first.Data) < 60 {
		t.Fatalf("%d payments, hasMore %v", len(first.Data), first.HasMore)
	}
	for _, p := range first.Data {
		var one gp.Payment
		e.admin.do("GET", "/api/v1/payments/"+p.PaymentID, nil).expect(200).decode(&one)
		all = append(all, one)
	}
	ms := func(text string) int64 {
		tm, err := time.Parse(time.RFC3339Nano, text)
		if err != nil {
			t.Fatal(err)
		}
		return tm.UnixMilli()
	}
	mid, late := ms(all[len(all)/3].CreatedAtUtc), ms(all[2*len(all)/3].CreatedAtUtc)
	if mid > late {
		mid, late = late, mid
	}
	if mid == late {
		late++
	}

	type filter struct {
		params string
		keep   func(p gp.Payment) bool
	}
	filters := []filter{{"", func(gp.Payment) bool { return true }}}
	for _, s := range []string{"pending", "processing", "completed", "canceled", "failed"} {
		filters = append(filters, filter{"status=" + s, func(p gp.Payment) bool { return p.Status == s }})
	}
	for _, ty := range []string{"deposit", "transfer", "withdrawal"} {
		filters = append(filters, filter{"type=" + ty, func(p gp.Payment) bool { return p.Type == ty }})
	}
	for _, a := range []string{usd[0], usd[3], eur[1]} {
		filters = append(filters, filter{"accountId=" + a, func(p gp.Payment) bool { return p.Source.ID == a || p.Destination.ID == a }})
	}
	filters = append(filters,
		filter{"assetType=eur", func(p gp.Payment) bool { return p.AssetType == "eur" }},
		filter{"createdFromUtc=" + url.QueryEscape(gp.FormatTime(mid)), func(p gp.Payment) bool { return ms(p.CreatedAtUtc) >= mid }},
		filter{"createdToUtc=" + url.QueryEscape(gp.FormatTime(late)), func(p gp.Payment) bool { return ms(p.CreatedAtUtc) < late }},
		filter{"createdFromUtc=" + url.QueryEscape(gp.FormatTime(mid)) + "&createdToUtc=" + url.QueryEscape(gp.FormatTime(late)) + "&type=transfer&status=completed",
			func(p gp.Payment) bool {
				return ms(p.CreatedAtUtc) >= mid && ms(p.CreatedAtUtc) < late && p.Type == "transfer" && p.Status == "completed"
			}},
		filter{"accountId=" + usd[1] + "&assetType=usd&type=withdrawal", func(p gp.Payment) bool {
			return (p.Source.ID == usd[1] || p.Destination.ID == usd[1]) && p.Type == "withdrawal"
		}},
	)
	compare := map[string]func(a, b gp.Payment) int{
		"createdAtUtc": func(a, b gp.Payment) int {
			if c := ms(a.CreatedAtUtc) - ms(b.CreatedAtUtc); c != 0 {
				if c < 0 {
					return -1
				}
				return 1
			}
			return strings.Compare(a.PaymentID, b.PaymentID)
		},
		"amount": func(a, b gp.Payment) int {
			if c := a.Amount.Units.Cmp(b.Amount.Units); c != 0 {
				return c
			}
			return strings.Compare(a.PaymentID, b.PaymentID)
		},
	}
	walks := 0
	for _, f := range filters {
		for _, sort := range []string{"", "createdAtUtc", "amount"} {
			for _, order := range []string{"", "asc", "desc"} {
				var want []gp.Payment
				for _, p := range all {
					if f.keep(p) {
						want = append(want, p)
					}
				}
				if len(want) == 0 || (f.params != "" && len(want) == len(all)) {
					t.Fatalf("filter %q keeps %d of %d payments: it tests nothing", f.params, len(want), len(all))
				}
				cmp := compare[sort]
				if sort == "" {
					cmp = compare["createdAtUtc"]
				}
				slices.SortFunc(want, cmp)
				if order != "asc" {
					slices.Reverse(want) // desc is the default
				}
				for _, limit := range []int{1, 7, 100} {
					got := walk(e, f.params, sort, order, limit)
					walks++
					if ids(got) != ids(want) {
						t.Fatalf("?%s sort=%s order=%s limit=%d:\n got  %s\n want %s", f.params, sort, order, limit, ids(got), ids(want))
					}
				}
			}
		}
	}
	t.Logf("%d payments, %d filters, %d walks agree with the model", len(all), len(filters), walks)

	// Refusals of the list's query.
	for _, q := range []string{"limit=0", "limit=1001", "limit=x", "limit=+5", "sort=time", "order=up", "status=done", "type=refund",
		"accountId=a/b", "createdFromUtc=yesterday", "createdToUtc=1970-01-01T00:00:00Z", "bogus=1", "limit=1&limit=2",
		"createdFromUtc=2024-01-02T00:00:00Z&createdToUtc=2024-01-01T00:00:00Z"} {
		e.admin.do("GET", "/api/v1/payments?"+q, nil).expectError(400, "InvalidArgument")
	}
	var page gp.PaymentList
	e.admin.do("GET", "/api/v1/payments?limit=2&sort=amount&order=asc", nil).expect(200).decode(&page)
	if !page.HasMore || page.NextCursor == "" {
		t.Fatalf("page %+v", page)
	}
	for _, q := range []string{"sort=amount&order=desc", "order=asc", ""} {
		e.admin.do("GET", "/api/v1/payments?"+q+"&cursor="+page.NextCursor, nil).expectError(400, "InvalidCursor")
	}
	for _, bad := range []string{"x", "AAAA", page.NextCursor + "A", strings.Repeat("A", 500), page.NextCursor[:len(page.NextCursor)-2]} {
		e.admin.do("GET", "/api/v1/payments?sort=amount&order=asc&cursor="+url.QueryEscape(bad), nil).expectError(400, "InvalidCursor")
	}
}

// walk reads every page of a query and checks each page's shape.
func walk(e *gigPayEnv, params, sort, order string, limit int) []gp.Payment {
	e.t.Helper()
	base := fmt.Sprintf("/api/v1/payments?limit=%d", limit)
	if params != "" {
		base += "&" + params
	}
	if sort != "" {
		base += "&sort=" + sort
	}
	if order != "" {
		base += "&order=" + order
	}
	var out []gp.Payment
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 1000 {
			e.t.Fatalf("%s: no end after %d pages", base, pages)
		}
		path := base
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		var page gp.PaymentList
		e.admin.do("GET", path, nil).expect(200).decode(&page)
		if len(page.Data) > limit || page.HasMore != (page.NextCursor != "") {
			e.t.Fatalf("%s: page of %d, hasMore %v, cursor %q", path, len(page.Data), page.HasMore, page.NextCursor)
		}
		out = append(out, page.Data...)
		if !page.HasMore {
			return out
		}
		cursor = page.NextCursor
	}
}

func ids(ps []gp.Payment) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString(p.PaymentID[len(p.PaymentID)-4:])
		b.WriteByte(' ')
	}
	return b.String()
}
