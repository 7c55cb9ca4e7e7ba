package faults

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gigaledger/gigaledger/client"
)

// The event check's receiver: a webhook subscribed, for the whole run, to the events of failed
// transactions (about one in eight transfers: enough to cross every fault, few enough that
// delivery keeps up on two cores). After healing, every failed transaction of the final
// history must have arrived at least once, each copy of an event identical, every request
// signed (GigaWallet's X-Giga-Signature), and no event of a transaction the history lacks.

const (
	// webhookSubscriber names the run's subscription.
	webhookSubscriber = "faults"
	// webhookPortLow and webhookPortHigh bound the receiver's port (below the ephemeral range).
	webhookPortLow, webhookPortHigh = 20000, 32767
	// webhookDrainMax bounds the wait, after healing, for the last events to arrive. Delivery
	// runs through the whole workload, so it is normally seconds behind.
	webhookDrainMax = 3 * time.Minute
	// webhookBodyMax bounds a request body.
	webhookBodyMax = 1 << 20
)

// Delivery is what the receiver saw, for the final state.
type Delivery struct {
	URL string `json:"url"`
	// Received maps a delivered transaction's ID to how many requests carried its event.
	Received      map[string]int `json:"received"`
	Requests      int            `json:"requests"`
	BadSignatures int            `json:"badSignatures"`
	// Mismatched counts repeats of an event_id whose body differed from the first.
	Mismatched int `json:"mismatched"`
	// Foreign counts events of another project or type (none is expected).
	Foreign  int    `json:"foreign"`
	DrainErr string `json:"drainErr,omitempty"`
}

// webhookReceiver receives the run's events.
type webhookReceiver struct {
	secret string
	srv    *http.Server
	url    string

	mu        sync.Mutex
	delivery  Delivery
	bodies    map[string][]byte // event_id → first body
	projectID string
}

// startWebhookReceiver listens on host at a free port in [webhookPortLow, webhookPortHigh].
func startWebhookReceiver(host, projectID string) (*webhookReceiver, error) {
	secret := make([]byte, 16)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	r := &webhookReceiver{secret: hex.EncodeToString(secret), bodies: map[string][]byte{}, projectID: projectID,
		delivery: Delivery{Received: map[string]int{}}}
	var listener net.Listener
	for attempt := 0; listener == nil; attempt++ {
		if attempt == 200 {
			return nil, fmt.Errorf("no free port for the webhook receiver on %s", host)
		}
		n, err := rand.Int(rand.Reader, big.NewInt(webhookPortHigh-webhookPortLow+1))
		if err != nil {
			return nil, err
		}
		listener, _ = net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(webhookPortLow+int(n.Int64()))))
	}
	r.url = "http://" + listener.Addr().String() + "/events"
	r.delivery.URL = r.url
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(listener) }()
	return r, nil
}

// ServeHTTP records one delivery.
func (r *webhookReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, webhookBodyMax))
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	mac := hmac.New(sha256.New, []byte(r.secret))
	mac.Write([]byte(req.Header.Get("X-Giga-Timestamp") + "."))
	mac.Write(body)
	signed := hmac.Equal([]byte(req.Header.Get("X-Giga-Signature")), []byte("sha256="+hex.EncodeToString(mac.Sum(nil))))
	var envelope struct {
		EventType string `json:"event_type"`
		EventID   string `json:"event_id"`
		Message   struct {
			ID        string `json:"id"`
			ProjectID string `json:"projectId"`
		} `json:"message"`
	}
	decoded := json.Unmarshal(body, &envelope) == nil
	r.mu.Lock()
	defer r.mu.Unlock()
	r.delivery.Requests++
	switch {
	case !signed:
		r.delivery.BadSignatures++
	case !decoded || envelope.EventType != "LEDGER_TX_FAILED" || envelope.Message.ProjectID != r.projectID || envelope.Message.ID == "":
		r.delivery.Foreign++
	default:
		if first, seen := r.bodies[envelope.EventID]; seen && string(first) != string(body) {
			r.delivery.Mismatched++
		} else if !seen {
			r.bodies[envelope.EventID] = body
		}
		r.delivery.Received[envelope.Message.ID]++
	}
	w.WriteHeader(http.StatusOK)
}

// subscribe subscribes the receiver, from the oldest event, through the node at base.
func (r *webhookReceiver) subscribe(ctx context.Context, c *Client, base string) error {
	api, err := c.patientAPI(base)
	if err != nil {
		return err
	}
	_, err = api.CreateSubscription(ctx, client.CreateSubscriptionRequest{Name: webhookSubscriber, URL: r.url, Secret: r.secret,
		Types: []string{"LEDGER_TX_FAILED"}, From: "oldest"})
	return err
}

// drain waits until every transaction in want has arrived, or ctx ends; it returns what the
// receiver saw.
func (r *webhookReceiver) drain(ctx context.Context, want []string) Delivery {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		r.mu.Lock()
		missing := 0
		for _, id := range want {
			if r.delivery.Received[id] == 0 {
				missing++
			}
		}
		r.mu.Unlock()
		if missing == 0 {
			break
		}
		select {
		case <-ctx.Done():
			r.mu.Lock()
			r.delivery.DrainErr = fmt.Sprintf("%d of %d failed transactions not delivered within %s", missing, len(want), webhookDrainMax)
			r.mu.Unlock()
			return r.snapshot()
		case <-tick.C:
		}
	}
	return r.snapshot()
}

func (r *webhookReceiver) snapshot() Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := r.delivery
	d.Received = make(map[string]int, len(r.delivery.Received))
	for id, n := range r.delivery.Received {
		d.Received[id] = n
	}
	return d
}

// close stops the receiver.
func (r *webhookReceiver) close() { _ = r.srv.Close() }
