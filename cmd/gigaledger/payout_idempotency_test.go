package main

import (
	"errors"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/client"
	"github.com/gigaledger/gigaledger/cluster/testutil"
)

// loseFirstPayAnswer loses the answer to the first /pay request after the node applied it.
type loseFirstPayAnswer struct {
	mu   sync.Mutex
	lost bool
	keys []string
}

var errAnswerLost = errors.New("connection reset after the request was sent")

func (l *loseFirstPayAnswer) RoundTrip(request *http.Request) (*http.Response, error) {
	response, err := http.DefaultTransport.RoundTrip(request)
	l.mu.Lock()
	defer l.mu.Unlock()
	if request.Method != http.MethodPost || len(request.URL.Path) < 4 || request.URL.Path[len(request.URL.Path)-4:] != "/pay" {
		return response, err
	}
	l.keys = append(l.keys, request.Header.Get("Idempotency-Key"))
	if err != nil || l.lost {
		return response, err
	}
	l.lost = true
	_, _ = io.Copy(io.Discard, response.Body)
	response.Body.Close()
	return nil, errAnswerLost
}

// A payout through a node (Raft, router, chain follower, simulated node): the client's key
// makes a lost answer safe — the client sends the same request again, the node answers the
// payout it made, and the chain receives one transaction; the same key later answers it again.
func TestPayoutIdempotencyKeyThroughTheNode(t *testing.T) {
	p := startPayoutNode(t)
	p.fund("shop", "5", 5*100_000_000)
	p.fund("shop", "5", 5*100_000_000)
	lossy := &loseFirstPayAnswer{}
	c, err := client.New(p.admin, client.WithHTTPClient(&http.Client{Transport: lossy}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := testutil.Context(t, time.Minute)
	keyed := client.WithIdempotencyKey(ctx, "order-7-payout")
	amount := client.DogeAmount("1.5")
	request := client.PayRequest{Amount: &amount, To: p.chain.FaucetAddress()}
	var attempts []client.Attempt
	sent, err := c.Pay(client.WithAttemptHook(keyed, func(a client.Attempt) { attempts = append(attempts, a) }), "shop", request)
	if err != nil || sent.Paid != "1.5" || len(attempts) != 2 || !attempts[1].Replayed {
		t.Fatalf("Pay with a lost answer: %+v %v, attempts %+v", sent, err, attempts)
	}
	if len(lossy.keys) != 2 || lossy.keys[0] != "order-7-payout" || lossy.keys[1] != lossy.keys[0] {
		t.Fatalf("keys sent %q", lossy.keys)
	}
	again, err := c.Pay(keyed, "shop", request)
	if err != nil || *again != *sent {
		t.Fatalf("Pay again with the key: %+v %v, first %+v", again, err, sent)
	}
	page, err := c.ListPayments(ctx, "shop", 0, 100)
	if err != nil || len(page.Items) != 1 || page.Items[0].TxID != sent.TxID {
		t.Fatalf("payouts %+v %v, want the one %s", page, err, sent.TxID)
	}
	if mempool := p.chain.Mempool(); len(mempool) != 1 || mempool[0].String() != sent.TxID {
		t.Fatalf("the node's mempool holds %v, want the one payout %s", mempool, sent.TxID)
	}
	// Another key is another payout.
	other, err := c.Pay(client.WithIdempotencyKey(ctx, "order-8-payout"), "shop", request)
	if err != nil || other.TxID == sent.TxID {
		t.Fatalf("another key: %+v %v", other, err)
	}
	if mempool := p.chain.Mempool(); len(mempool) != 2 {
		t.Fatalf("the node's mempool holds %d transactions, want 2", len(mempool))
	}
}
