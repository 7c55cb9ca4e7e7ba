package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gigaledger/gigaledger/client"
	"github.com/gigaledger/gigaledger/cluster/keyspace"
	"github.com/gigaledger/gigaledger/cluster/relay"
)

// fakeLedger implements just enough of docs/cloudwallet-api.md for the
// harness's smoke test: projects, assets, customers, wallets, transactions
// (transfer, issue, redeem, with the non-negative rule and reference IDs),
// and wallet/entries reads. It is not a model of GigaLedger.
type fakeLedger struct {
	mutex      sync.Mutex
	token      string
	projects   map[string]bool
	wallets    map[string]int64 // walletID → balance
	entries    map[string]int   // walletID → entry count
	references map[string]bool
	nextWallet int
	requests   map[string]int // route pattern → count
	// accounts maps GigaWallet foreign IDs to their invoices (ID → total).
	accounts    map[string]map[string]client.DogeAmount
	nextInvoice int
	// gigPay is the GigPay API's state.
	gigPay *fakeGigPay
	// hook is the one webhook subscription (POST /subscriptions), nil when none; the
	// transactions committed while it exists are posted to it by its delivery goroutine.
	hook *fakeHook
	// shardCount > 0 makes the fake a sharded cluster: GET /cluster tells the count, wallet IDs
	// carry their customer's slot, and a funding transaction (issues only) whose wallets span
	// shards is refused 422 CrossShardTransaction. crossTransfers counts the committed
	// transfers between shards, transfers all of them.
	shardCount                int
	crossTransfers, transfers int
}

// fakeHook delivers a fake's events to one webhook, in order, each event whose sequence is a
// multiple of fakeHookDuplicateEvery twice (as a relay may after a leader change).
type fakeHook struct {
	name, url, secret string
	events            []fakeEvent // under fakeLedger.mutex; delivered ones are dropped
	sequence          uint64
	changed           chan struct{} // signalled after an append
	stop              chan struct{} // closed by DELETE
	done              chan struct{} // closed when the delivery goroutine returned
}

type fakeEvent struct {
	body    []byte
	eventID string
}

const fakeHookDuplicateEvery = 50

func newFakeLedger(token string) *fakeLedger {
	return &fakeLedger{
		token:      token,
		projects:   map[string]bool{},
		wallets:    map[string]int64{},
		entries:    map[string]int{},
		references: map[string]bool{},
		requests:   map[string]int{},
		accounts:   map[string]map[string]client.DogeAmount{},
		gigPay:     newFakeGigPay(),
	}
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func writeError(w http.ResponseWriter, status int, code string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": code}})
}

func (f *fakeLedger) handler() http.Handler {
	mux := http.NewServeMux()
	route := func(pattern string, handle func(http.ResponseWriter, *http.Request)) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if f.token != "" && r.Header.Get("Authorization") != "Bearer "+f.token {
				writeError(w, http.StatusUnauthorized, "Unauthorized")
				return
			}
			f.mutex.Lock()
			defer f.mutex.Unlock()
			f.requests[pattern]++
			if project := r.PathValue("projectId"); project != "" && !f.projects[project] {
				writeError(w, http.StatusNotFound, "ProjectNotFound")
				return
			}
			handle(w, r)
		})
	}
	route("POST /projects", func(w http.ResponseWriter, r *http.Request) {
		var body struct{ ID, Name string }
		if json.NewDecoder(r.Body).Decode(&body) != nil || body.ID == "" {
			writeError(w, http.StatusBadRequest, "InvalidJSON")
			return
		}
		if f.projects[body.ID] {
			writeError(w, http.StatusConflict, "ProjectExists")
			return
		}
		f.projects[body.ID] = true
		writeJSON(w, http.StatusCreated, map[string]any{"id": body.ID, "name": body.Name})
	})
	route("POST /projects/{projectId}/assets", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusCreated, map[string]any{"id": assetID, "fractions": assetFractions})
	})
	route("POST /projects/{projectId}/customers", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"id": "c"})
	})
	route("GET /cluster", func(w http.ResponseWriter, r *http.Request) {
		if f.shardCount == 0 {
			writeError(w, http.StatusNotFound, "NotFound")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"shardCount": f.shardCount, "shards": []any{}})
	})
	route("POST /projects/{projectId}/wallets", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			CustomerID string `json:"customerId"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		f.nextWallet++
		id := "w" + strconv.Itoa(f.nextWallet)
		if f.shardCount > 0 {
			id = "w" + keyspace.SlotHex(keyspace.SlotOf(r.PathValue("projectId"), body.CustomerID)) + strconv.Itoa(f.nextWallet)
		}
		f.wallets[id] = 0
		writeJSON(w, http.StatusCreated, map[string]any{"id": id, "balance": 0})
	})
	route("GET /projects/{projectId}/wallets/{walletId}", func(w http.ResponseWriter, r *http.Request) {
		balance, ok := f.wallets[r.PathValue("walletId")]
		if !ok {
			writeError(w, http.StatusNotFound, "WalletNotFound")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"id": r.PathValue("walletId"), "balance": balance})
	})
	route("GET /projects/{projectId}/wallets/{walletId}/entries", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("page") == "" || r.URL.Query().Get("from") == "" || r.URL.Query().Get("to") == "" {
			writeError(w, http.StatusBadRequest, "InvalidArgument")
			return
		}
		if _, ok := f.wallets[r.PathValue("walletId")]; !ok {
			writeError(w, http.StatusNotFound, "WalletNotFound")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"items": []any{}, "page": 1, "pageSize": entriesPageSize, "hasMore": false})
	})
	route("POST /projects/{projectId}/transactions", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			ReferenceID string `json:"referenceId"`
			Operations  []struct {
				Type   string
				From   string
				To     string
				Amount int64
			}
		}
		if json.NewDecoder(r.Body).Decode(&body) != nil || body.ReferenceID == "" || len(body.Operations) == 0 {
			writeError(w, http.StatusBadRequest, "InvalidJSON")
			return
		}
		if len(body.Operations) > operationsPerTransactionMax {
			writeError(w, http.StatusBadRequest, "LimitExceeded")
			return
		}
		key := r.PathValue("projectId") + "/" + body.ReferenceID
		if f.references[key] {
			writeError(w, http.StatusConflict, "DuplicateReferenceId")
			return
		}
		balances := map[string]int64{}
		for _, operation := range body.Operations {
			for _, id := range []string{operation.From, operation.To} {
				if id == "" {
					continue
				}
				balance, ok := f.wallets[id]
				if !ok {
					writeError(w, http.StatusNotFound, "WalletNotFound")
					return
				}
				if _, seen := balances[id]; !seen {
					balances[id] = balance
				}
			}
		}
		shards := map[keyspace.ShardID]bool{}
		issuesOnly := true
		for id := range balances {
			if slot, ok := keyspace.SlotOfID(id); ok && f.shardCount > 0 {
				shards[keyspace.ShardOfSlot(slot, f.shardCount)] = true
			}
		}
		for _, operation := range body.Operations {
			issuesOnly = issuesOnly && operation.Type == "issue"
		}
		if issuesOnly && len(shards) > 1 {
			writeError(w, http.StatusUnprocessableEntity, "CrossShardTransaction")
			return
		}
		f.references[key] = true
		if len(body.Operations) == 1 && body.Operations[0].Type == "transfer" {
			f.transfers++
			if len(shards) > 1 {
				f.crossTransfers++
			}
		}
		committed := balances
		defer func() { f.emit(body.ReferenceID, committed) }()
		for _, operation := range body.Operations {
			if operation.Amount <= 0 {
				writeError(w, http.StatusBadRequest, "InvalidAmount")
				return
			}
			if operation.From != "" {
				balances[operation.From] -= operation.Amount
				if balances[operation.From] < 0 {
					committed = nil
					writeError(w, http.StatusUnprocessableEntity, "InsufficientFunds")
					return
				}
			}
			if operation.To != "" {
				balances[operation.To] += operation.Amount
			}
		}
		for id, balance := range balances {
			f.wallets[id] = balance
			f.entries[id]++
		}
		writeJSON(w, http.StatusCreated, map[string]any{"referenceId": body.ReferenceID, "status": "completed"})
	})
	f.gigaWalletRoutes(route)
	f.gigPay.routes(route)
	f.subscriptionRoutes(route)
	return mux
}

// emit appends a transaction's event (failed when committed is nil) for the webhook, if any.
// Called with f.mutex held.
func (f *fakeLedger) emit(referenceID string, committed map[string]int64) {
	hook := f.hook
	if hook == nil {
		return
	}
	eventType := "LEDGER_TX_COMPLETED"
	if committed == nil {
		eventType = "LEDGER_TX_FAILED"
	}
	hook.sequence++
	eventID := fmt.Sprintf("s000-%020d", hook.sequence)
	body, _ := json.Marshal(map[string]any{"event_type": eventType, "message": map[string]string{"referenceId": referenceID},
		"event_id": eventID, "shard": 0, "sequence": hook.sequence,
		"created_at": time.Now().UTC().Format("2006-01-02T15:04:05.000Z07:00")})
	hook.events = append(hook.events, fakeEvent{body: body, eventID: eventID})
	if hook.sequence%fakeHookDuplicateEvery == 0 {
		hook.events = append(hook.events, fakeEvent{body: body, eventID: eventID})
	}
	select {
	case hook.changed <- struct{}{}:
	default:
	}
}

// subscriptionRoutes adds POST and DELETE /subscriptions for one webhook.
func (f *fakeLedger) subscriptionRoutes(route func(string, func(http.ResponseWriter, *http.Request))) {
	route("POST /subscriptions", func(w http.ResponseWriter, r *http.Request) {
		var body client.CreateSubscriptionRequest
		if json.NewDecoder(r.Body).Decode(&body) != nil || body.Name == "" || body.URL == "" || f.hook != nil {
			writeError(w, http.StatusBadRequest, "InvalidArgument")
			return
		}
		f.hook = &fakeHook{name: body.Name, url: body.URL, secret: body.Secret, changed: make(chan struct{}, 1),
			stop: make(chan struct{}), done: make(chan struct{})}
		go f.deliver(f.hook)
		writeJSON(w, http.StatusCreated, map[string]any{"name": body.Name, "url": body.URL, "types": body.Types})
	})
	route("DELETE /subscriptions/{name}", func(w http.ResponseWriter, r *http.Request) {
		if f.hook == nil || f.hook.name != r.PathValue("name") {
			writeError(w, http.StatusNotFound, "SubscriptionNotFound")
			return
		}
		close(f.hook.stop)
		f.hook = nil
		w.WriteHeader(http.StatusNoContent)
	})
}

// deliver posts hook's events in order, signed as the relay signs them, until DELETE.
func (f *fakeLedger) deliver(hook *fakeHook) {
	defer close(hook.done)
	httpClient := &http.Client{Timeout: 5 * time.Second}
	for {
		f.mutex.Lock()
		pending := hook.events
		hook.events = nil
		f.mutex.Unlock()
		for _, event := range pending {
			request, _ := http.NewRequest(http.MethodPost, hook.url, bytes.NewReader(event.body))
			timestamp := strconv.FormatInt(time.Now().Unix(), 10)
			request.Header.Set(relay.HeaderTimestamp, timestamp)
			request.Header.Set(relay.HeaderSignature, relay.Sign(hook.secret, timestamp, event.body))
			if response, err := httpClient.Do(request); err == nil {
				_, _ = io.Copy(io.Discard, response.Body)
				_ = response.Body.Close()
			}
		}
		select {
		case <-hook.stop:
			return
		case <-hook.changed:
		}
	}
}

// gigaWalletRoutes adds the GigaWallet routes the invoice scenario calls:
// account upsert, invoice create (total = Σ value × quantity, exactly) and
// the admin read.
func (f *fakeLedger) gigaWalletRoutes(route func(string, func(http.ResponseWriter, *http.Request))) {
	route("POST /account/{foreignID}", func(w http.ResponseWriter, r *http.Request) {
		foreignID := r.PathValue("foreignID")
		if f.accounts[foreignID] == nil {
			f.accounts[foreignID] = map[string]client.DogeAmount{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"id": "acct-" + foreignID, "foreign_id": foreignID, "payout_threshold": "0"})
	})
	route("POST /account/{foreignID}/invoice", func(w http.ResponseWriter, r *http.Request) {
		invoices := f.accounts[r.PathValue("foreignID")]
		if invoices == nil {
			writeError(w, http.StatusNotFound, "not-found")
			return
		}
		var body client.InvoiceRequest
		if json.NewDecoder(r.Body).Decode(&body) != nil || len(body.Items) == 0 {
			writeError(w, http.StatusBadRequest, "bad-request")
			return
		}
		total := new(big.Int)
		for _, item := range body.Items {
			koinu, err := item.Value.Koinu()
			if err != nil || item.Quantity < 1 {
				writeError(w, http.StatusBadRequest, "bad-request")
				return
			}
			total.Add(total, koinu.Mul(koinu, big.NewInt(item.Quantity)))
		}
		f.nextInvoice++
		id := "inv" + strconv.Itoa(f.nextInvoice)
		invoices[id] = client.DogeAmountFromKoinu(total.Int64())
		writeJSON(w, http.StatusOK, map[string]any{"id": id, "pay_to_address": id, "total": invoices[id], "items": body.Items})
	})
	route("GET /account/{foreignID}/invoice/{invoiceID}", func(w http.ResponseWriter, r *http.Request) {
		total, ok := f.accounts[r.PathValue("foreignID")][r.PathValue("invoiceID")]
		if !ok {
			writeError(w, http.StatusNotFound, "not-found")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"id": r.PathValue("invoiceID"), "total": total})
	})
}
