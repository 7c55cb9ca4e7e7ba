package gigpay

import "bytes"

// MergePages merges the shards' answers to one PaymentQuery into one page of at most limit
// payments, in the query's order, and the position the next page continues from.
//
// A shard that stopped early (at its limit or its scan bound) reported the last position it
// examined; the merge emits nothing past the earliest such frontier, because that shard may
// still hold payments before the others' next ones. Every shard examines at least one entry,
// so each page moves the position on, although a page may hold fewer than limit payments (even
// none) while more remain. hasMore is false only when every shard is exhausted and every
// payment they returned is in the page.
func MergePages(q *PaymentQuery, pages []*PaymentPage) (items []Payment, next []byte, hasMore bool) {
	keyOf := TimeKey
	if q.Sort == SortAmount {
		keyOf = AmountKey
	}
	less := func(a, b []byte) bool {
		if q.Descending {
			return bytes.Compare(a, b) > 0
		}
		return bytes.Compare(a, b) < 0
	}
	// bound is the earliest frontier of a shard that is not exhausted (nil: none).
	var bound []byte
	for _, p := range pages {
		if !p.Exhausted && p.Frontier != nil && (bound == nil || less(p.Frontier, bound)) {
			bound = p.Frontier
		}
	}
	type cursor struct {
		page *PaymentPage
		i    int
	}
	cursors := make([]cursor, len(pages))
	for i, p := range pages {
		cursors[i] = cursor{page: p}
	}
	for len(items) < q.Limit {
		best := -1
		var bestKey []byte
		for i, c := range cursors {
			if c.i >= len(c.page.Items) {
				continue
			}
			k := keyOf(&c.page.Items[c.i])
			if best < 0 || less(k, bestKey) {
				best, bestKey = i, k
			}
		}
		if best < 0 || (bound != nil && less(bound, bestKey)) {
			break
		}
		items = append(items, cursors[best].page.Items[cursors[best].i])
		cursors[best].i++
		next = bestKey
	}
	if len(items) == q.Limit {
		return items, next, true
	}
	if bound != nil {
		// Every payment up to the bound is in the page: continue after the bound.
		return items, bound, true
	}
	return items, next, false
}
