package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const (
	testUser     = "follower"
	testPassword = "s3cret-Pa55word"
	testHash     = "3d2160a3b5dc4a9d62e7e66a295f70313ac808440ef7400d6c0772171ce973a5"
)

// fakeNode is an httptest server that checks each request like a node would and answers with
// answer(method, params, id).
type fakeNode struct {
	server *httptest.Server
	calls  atomic.Int64
}

type fakeAnswer struct {
	status int    // 0 means 200
	body   string // raw body; empty means the envelope from result/err
	result any
	err    *Error
	idDiff int // added to the echoed id
}

func newFakeNode(t *testing.T, answer func(method string, params []json.RawMessage) fakeAnswer) *fakeNode {
	t.Helper()
	node := &fakeNode{}
	node.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		node.calls.Add(1)
		user, password, ok := r.BasicAuth()
		if r.Method != http.MethodPost || !ok || user != testUser || password != testPassword {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var raw map[string]json.RawMessage
		if err := json.NewDecoder(r.Body).Decode(&raw); err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		if _, has := raw["jsonrpc"]; has || len(raw) != 3 {
			http.Error(w, fmt.Sprintf("unexpected envelope keys %v", raw), http.StatusBadRequest)
			return
		}
		var method string
		var params []json.RawMessage
		var id int64
		if json.Unmarshal(raw["method"], &method) != nil || json.Unmarshal(raw["params"], &params) != nil || params == nil || json.Unmarshal(raw["id"], &id) != nil {
			http.Error(w, "bad envelope", http.StatusBadRequest)
			return
		}
		a := answer(method, params)
		status := a.status
		if status == 0 {
			status = http.StatusOK
		}
		body := a.body
		if body == "" {
			envelope := map[string]any{"result": a.result, "error": nil, "id": id + int64(a.idDiff)}
			if a.err != nil {
				envelope["result"] = nil
				envelope["error"] = map[string]any{"code": a.err.Code, "message": a.err.Message}
			}
			encoded, _ := json.Marshal(envelope)
			body = string(encoded)
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(node.server.Close)
	return node
}

func newTestClient(t *testing.T, url string, mutate func(*Config)) *Client {
	t.Helper()
	cfg := Config{URL: url, User: testUser, Password: testPassword, Timeout: 2 * time.Second}
	if mutate != nil {
		mutate(&cfg)
	}
	client, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return client
}

func noPassword(t *testing.T, err error) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), testPassword) {
		t.Fatalf("error shows the password: %v", err)
	}
}

func TestTypedCallsSendTheMethodAndParamsAndDecodeTheResult(t *testing.T) {
	var seen []string
	node := newFakeNode(t, func(method string, params []json.RawMessage) fakeAnswer {
		var rendered []string
		for _, p := range params {
			rendered = append(rendered, string(p))
		}
		seen = append(seen, method+"("+strings.Join(rendered, ",")+")")
		switch method {
		case "getblockhash", "getbestblockhash":
			return fakeAnswer{result: testHash}
		case "getblockcount":
			return fakeAnswer{result: 431}
		case "getblockheader":
			if string(params[1]) == "false" {
				return fakeAnswer{result: strings.Repeat("00", 80)}
			}
			return fakeAnswer{err: &Error{Code: -5, Message: "not used"}}
		case "getblock":
			return fakeAnswer{result: "0100"}
		case "getblockchaininfo":
			return fakeAnswer{result: map[string]any{"chain": "regtest", "blocks": 5, "headers": 6, "bestblockhash": testHash, "initialblockdownload": true, "extra": 1}}
		case "sendrawtransaction":
			return fakeAnswer{result: testHash}
		}
		return fakeAnswer{err: &Error{Code: CodeMethodNotFound, Message: "Method not found"}, status: http.StatusNotFound}
	})
	ctx := context.Background()
	client := newTestClient(t, node.server.URL, nil)

	if hash, err := client.GetBlockHash(ctx, 7); err != nil || hash != testHash {
		t.Fatalf("GetBlockHash = %q, %v", hash, err)
	}
	if hash, err := client.GetBestBlockHash(ctx); err != nil || hash != testHash {
		t.Fatalf("GetBestBlockHash = %q, %v", hash, err)
	}
	if count, err := client.GetBlockCount(ctx); err != nil || count != 431 {
		t.Fatalf("GetBlockCount = %d, %v", count, err)
	}
	if header, err := client.GetBlockHeaderHex(ctx, testHash); err != nil || len(header) != 160 {
		t.Fatalf("GetBlockHeaderHex = %q, %v", header, err)
	}
	if block, err := client.GetBlockHex(ctx, testHash); err != nil || block != "0100" {
		t.Fatalf("GetBlockHex = %q, %v", block, err)
	}
	info, err := client.GetBlockchainInfo(ctx)
	if err != nil || info != (BlockchainInfo{Chain: "regtest", Blocks: 5, Headers: 6, BestBlockHash: testHash, InitialBlockDownload: true}) {
		t.Fatalf("GetBlockchainInfo = %+v, %v", info, err)
	}
	if txid, err := client.SendRawTransaction(ctx, "0100"); err != nil || txid != testHash {
		t.Fatalf("SendRawTransaction = %q, %v", txid, err)
	}
	want := []string{
		"getblockhash(7)", "getbestblockhash()", "getblockcount()",
		`getblockheader("` + testHash + `",false)`, `getblock("` + testHash + `",false)`,
		"getblockchaininfo()", `sendrawtransaction("0100")`,
	}
	if strings.Join(seen, " ") != strings.Join(want, " ") {
		t.Fatalf("calls\n got %v\nwant %v", seen, want)
	}
}

func TestGetBlockHeaderDecodesAnOrphanedHeader(t *testing.T) {
	node := newFakeNode(t, func(string, []json.RawMessage) fakeAnswer {
		return fakeAnswer{result: map[string]any{
			"hash": testHash, "confirmations": -1, "height": 12, "version": 536870912,
			"merkleroot": testHash, "time": 1700000000, "previousblockhash": testHash,
		}}
	})
	header, err := newTestClient(t, node.server.URL, nil).GetBlockHeader(context.Background(), testHash)
	if err != nil {
		t.Fatal(err)
	}
	if header.Confirmations != -1 || header.Height != 12 || header.Time != 1700000000 || header.PreviousBlockHash != testHash || header.NextBlockHash != "" {
		t.Fatalf("header = %+v", header)
	}
}

func TestANodeErrorIsAnErrorAndMethodNotFoundIsDetectable(t *testing.T) {
	node := newFakeNode(t, func(method string, _ []json.RawMessage) fakeAnswer {
		if method == "estimatefee" {
			// Bitcoin-Core-family nodes answer an unknown method with 404 and the error.
			return fakeAnswer{status: http.StatusNotFound, err: &Error{Code: CodeMethodNotFound, Message: "Method not found"}}
		}
		return fakeAnswer{status: http.StatusInternalServerError, err: &Error{Code: -5, Message: "Block not found"}}
	})
	client := newTestClient(t, node.server.URL, nil)
	_, err := client.EstimateFee(context.Background(), 6)
	var nodeError *Error
	if !errors.Is(err, ErrMethodNotFound) || !errors.As(err, &nodeError) || nodeError.Code != CodeMethodNotFound {
		t.Fatalf("EstimateFee error = %v, want ErrMethodNotFound", err)
	}
	_, err = client.GetBlockHeader(context.Background(), testHash)
	if !errors.As(err, &nodeError) || nodeError.Code != -5 || nodeError.Message != "Block not found" || errors.Is(err, ErrMethodNotFound) {
		t.Fatalf("GetBlockHeader error = %v, want node error -5", err)
	}
	if !strings.Contains(err.Error(), "getblockheader") {
		t.Fatalf("error %q does not name the method", err)
	}
}

func TestEstimateFeeParsesAmountsExactly(t *testing.T) {
	for _, tc := range []struct {
		body string
		want Amount
	}{
		{"-1", -1_0000_0000},
		{"0.01000000", 100_0000},
		{"1.23456789", 1_2345_6789},
		{"92233720368", 92233720368_0000_0000},
	} {
		node := newFakeNode(t, func(string, []json.RawMessage) fakeAnswer {
			return fakeAnswer{body: `{"result":` + tc.body + `,"error":null,"id":1}`}
		})
		fee, err := newTestClient(t, node.server.URL, nil).EstimateFee(context.Background(), 6)
		if err != nil || fee != tc.want {
			t.Fatalf("EstimateFee(%s) = %d, %v; want %d", tc.body, fee, err, tc.want)
		}
	}
	for _, bad := range []string{"1e-8", "0.000000001", "92233720369", "\"1\"", "1.", ".5", "--1", "true"} {
		var amount Amount
		if err := json.Unmarshal([]byte(bad), &amount); err == nil {
			t.Errorf("Amount accepted %s as %d", bad, amount)
		}
	}
}

func TestMalformedAnswersAreClearErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer fakeAnswer
		want   error
		text   string
	}{
		{"wrong id", fakeAnswer{result: testHash, idDiff: 1}, ErrBadResponse, "does not echo"},
		{"not JSON", fakeAnswer{body: "<html>hello</html>"}, ErrBadResponse, "not a JSON-RPC response"},
		{"no id", fakeAnswer{body: `{"result":"x","error":null}`}, ErrBadResponse, "does not echo"},
		{"string id", fakeAnswer{body: `{"result":"x","error":null,"id":"1"}`}, ErrBadResponse, "does not echo"},
		{"trailing data", fakeAnswer{body: `{"result":"x","error":null,"id":1} {}`}, ErrBadResponse, "data after"},
		{"neither result nor error", fakeAnswer{body: `{"id":1}`}, ErrBadResponse, "neither result nor error"},
		{"error not an object", fakeAnswer{body: `{"result":null,"error":"boom","id":1}`}, ErrBadResponse, "not {code, message}"},
		{"result of the wrong shape", fakeAnswer{result: 7}, ErrBadResponse, "result"},
		{"hash not hex", fakeAnswer{result: "zz"}, ErrBadResponse, "64-hex-digit"},
		{"502 without JSON", fakeAnswer{status: http.StatusBadGateway, body: "bad gateway " + testPassword}, nil, "HTTP status 502: bad gateway [redacted]"},
		{"401", fakeAnswer{status: http.StatusUnauthorized, body: " "}, nil, "refused the RPC user or password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			node := newFakeNode(t, func(string, []json.RawMessage) fakeAnswer { return tc.answer })
			_, err := newTestClient(t, node.server.URL, nil).GetBlockHash(context.Background(), 1)
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("err = %v; want %v containing %q", err, tc.want, tc.text)
			}
			noPassword(t, err)
			if errors.Is(err, ErrTransport) {
				t.Fatalf("a bad answer counted as a transport error: %v", err)
			}
		})
	}
}

func TestAWrongPasswordIsAnHTTPStatusErrorWithoutThePassword(t *testing.T) {
	node := newFakeNode(t, func(string, []json.RawMessage) fakeAnswer { return fakeAnswer{result: 1} })
	client := newTestClient(t, node.server.URL, func(cfg *Config) { cfg.Password = "wrong-" + testPassword })
	_, err := client.GetBlockCount(context.Background())
	var statusError *HTTPStatusError
	if !errors.As(err, &statusError) || statusError.StatusCode != http.StatusUnauthorized {
		t.Fatalf("err = %v, want HTTP 401", err)
	}
	noPassword(t, err)
}

func TestAnOversizeAnswerIsRefused(t *testing.T) {
	node := newFakeNode(t, func(string, []json.RawMessage) fakeAnswer {
		return fakeAnswer{result: strings.Repeat("00", 600)}
	})
	client := newTestClient(t, node.server.URL, func(cfg *Config) { cfg.ResponseMaxBytes = 1000 })
	if _, err := client.GetBlockHex(context.Background(), testHash); !errors.Is(err, ErrBadResponse) || !strings.Contains(err.Error(), "larger than 1000 bytes") {
		t.Fatalf("err = %v, want an oversize answer refused", err)
	}
	client = newTestClient(t, node.server.URL, func(cfg *Config) { cfg.ResponseMaxBytes = 2000 })
	if _, err := client.GetBlockHex(context.Background(), testHash); err != nil {
		t.Fatalf("an answer under the limit: %v", err)
	}
}

func TestATimeoutEndsTheAttempt(t *testing.T) {
	release := make(chan struct{})
	server := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }))
	t.Cleanup(server.Close)
	t.Cleanup(func() { close(release) })
	client := newTestClient(t, server.URL, func(cfg *Config) { cfg.Timeout = 100 * time.Millisecond })
	start := time.Now()
	_, err := client.GetBlockCount(context.Background())
	if !errors.Is(err, ErrTransport) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a transport error from the deadline", err)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Fatalf("the call took %s with a 100ms timeout", elapsed)
	}
}

// flakyNode drops the connection of the first drops requests without an answer, then answers.
func flakyNode(t *testing.T, drops int64, result any) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var calls atomic.Int64
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		var request struct{ ID int64 }
		json.NewDecoder(r.Body).Decode(&request)
		if n <= drops {
			connection, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				connection.Close()
			}
			return
		}
		encoded, _ := json.Marshal(map[string]any{"result": result, "error": nil, "id": request.ID})
		w.Write(encoded)
	}))
	t.Cleanup(server.Close)
	return server, &calls
}

func TestReadOnlyCallsAreRetriedAfterTransportErrorsUpToTheBound(t *testing.T) {
	server, calls := flakyNode(t, 2, 101)
	client := newTestClient(t, server.URL, func(cfg *Config) { cfg.Retries = 2 })
	if count, err := client.GetBlockCount(context.Background()); err != nil || count != 101 {
		t.Fatalf("GetBlockCount = %d, %v after two drops and two retries", count, err)
	}
	if calls.Load() != 3 {
		t.Fatalf("%d requests, want 3", calls.Load())
	}

	server, calls = flakyNode(t, 5, 101)
	client = newTestClient(t, server.URL, func(cfg *Config) { cfg.Retries = 2 })
	if _, err := client.GetBlockCount(context.Background()); !errors.Is(err, ErrTransport) {
		t.Fatalf("err = %v, want a transport error after the retries", err)
	}
	if calls.Load() != 3 {
		t.Fatalf("%d requests, want 1 + 2 retries", calls.Load())
	}
}

func TestNodeErrorsAndBadAnswersAreNotRetried(t *testing.T) {
	node := newFakeNode(t, func(string, []json.RawMessage) fakeAnswer {
		return fakeAnswer{status: http.StatusInternalServerError, err: &Error{Code: -8, Message: "Block height out of range"}}
	})
	client := newTestClient(t, node.server.URL, func(cfg *Config) { cfg.Retries = 3 })
	if _, err := client.GetBlockHash(context.Background(), 999); err == nil {
		t.Fatal("no error")
	}
	node2 := newFakeNode(t, func(string, []json.RawMessage) fakeAnswer { return fakeAnswer{body: "garbage"} })
	client2 := newTestClient(t, node2.server.URL, func(cfg *Config) { cfg.Retries = 3 })
	if _, err := client2.GetBlockHash(context.Background(), 1); err == nil {
		t.Fatal("no error")
	}
	if node.calls.Load() != 1 || node2.calls.Load() != 1 {
		t.Fatalf("requests %d and %d, want 1 each", node.calls.Load(), node2.calls.Load())
	}
}

func TestSendRawTransactionIsNeverRetriedAndItsTransportErrorIsOutcomeUnknown(t *testing.T) {
	server, calls := flakyNode(t, 1, testHash)
	client := newTestClient(t, server.URL, func(cfg *Config) { cfg.Retries = RetriesMax })
	_, err := client.SendRawTransaction(context.Background(), "0100")
	if !errors.Is(err, ErrOutcomeUnknown) || !errors.Is(err, ErrTransport) {
		t.Fatalf("err = %v, want ErrOutcomeUnknown", err)
	}
	if calls.Load() != 1 {
		t.Fatalf("%d requests, want exactly 1", calls.Load())
	}
	// A generic call of a method outside the read-only list is not retried either.
	server, calls = flakyNode(t, 1, nil)
	client = newTestClient(t, server.URL, func(cfg *Config) { cfg.Retries = RetriesMax })
	if err := client.Call(context.Background(), "generatetoaddress", []any{1, "m"}, nil); !errors.Is(err, ErrOutcomeUnknown) || calls.Load() != 1 {
		t.Fatalf("err = %v after %d requests, want ErrOutcomeUnknown after 1", err, calls.Load())
	}
}

func TestACanceledContextStopsTheRetries(t *testing.T) {
	server, calls := flakyNode(t, 100, 1)
	client := newTestClient(t, server.URL, func(cfg *Config) { cfg.Retries = RetriesMax })
	ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond)
	defer cancel()
	if _, err := client.GetBlockCount(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the context's deadline", err)
	}
	if calls.Load() >= 1+RetriesMax {
		t.Fatalf("%d requests: the retries outlived the context", calls.Load())
	}
}

func TestATransportErrorOnAClosedPortIsATransportError(t *testing.T) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + listener.Addr().String()
	listener.Close()
	_, err = newTestClient(t, url, nil).GetBlockCount(context.Background())
	if !errors.Is(err, ErrTransport) {
		t.Fatalf("err = %v, want ErrTransport", err)
	}
	noPassword(t, err)
}

func TestNewRefusesABadConfigAndNeverPrintsThePassword(t *testing.T) {
	for _, cfg := range []Config{
		{URL: "http://u:" + testPassword + "@127.0.0.1:1"},
		{URL: "ftp://127.0.0.1:1"},
		{URL: "http://"},
		{URL: "http://127.0.0.1:1", Retries: RetriesMax + 1},
		{URL: "http://127.0.0.1:1", Retries: -1},
		{URL: "http://127.0.0.1:1", Timeout: -time.Second},
		{URL: "http://127.0.0.1:1", ResponseMaxBytes: -1},
		{URL: "http://127.0.0.1:1\x7f" + testPassword},
	} {
		_, err := New(cfg)
		if !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("New(%v) = %v, want ErrInvalidArgument", cfg, err)
		}
		noPassword(t, err)
	}
	cfg := Config{URL: "http://127.0.0.1:1", User: testUser, Password: testPassword}
	client, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		for _, value := range []any{cfg, &cfg, client} {
			if text := fmt.Sprintf(verb, value); strings.Contains(text, testPassword) {
				t.Errorf("%s of %T shows the password: %s", verb, value, text)
			}
		}
	}
}

func TestArgumentsAreCheckedBeforeSending(t *testing.T) {
	node := newFakeNode(t, func(string, []json.RawMessage) fakeAnswer { return fakeAnswer{result: testHash} })
	client := newTestClient(t, node.server.URL, nil)
	ctx := context.Background()
	if _, err := client.GetBlockHeader(ctx, "not-a-hash"); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("GetBlockHeader: %v", err)
	}
	if _, err := client.GetBlockHex(ctx, testHash[:62]); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("GetBlockHex: %v", err)
	}
	if _, err := client.SendRawTransaction(ctx, "abc"); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("SendRawTransaction: %v", err)
	}
	if node.calls.Load() != 0 {
		t.Fatalf("%d requests sent for refused arguments", node.calls.Load())
	}
}

func TestGetRawMempoolListsTxidsAndRefusesAnythingElse(t *testing.T) {
	other := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name   string
		body   string
		want   []string
		errors bool
	}{
		{"two", `["` + testHash + `","` + other + `"]`, []string{testHash, other}, false},
		{"empty", `[]`, []string{}, false},
		{"null", `null`, nil, true},
		{"verbose object", `{"` + testHash + `":{}}`, nil, true},
		{"not a hash", `["` + testHash + `","zz"]`, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var params string
			node := newFakeNode(t, func(method string, raw []json.RawMessage) fakeAnswer {
				if method != "getrawmempool" {
					return fakeAnswer{status: http.StatusNotFound, err: &Error{Code: CodeMethodNotFound, Message: "Method not found"}}
				}
				for _, p := range raw {
					params += string(p)
				}
				return fakeAnswer{body: `{"result":` + tc.body + `,"error":null,"id":1}`}
			})
			txids, err := newTestClient(t, node.server.URL, nil).GetRawMempool(context.Background())
			if tc.errors {
				if !errors.Is(err, ErrBadResponse) {
					t.Fatalf("GetRawMempool = %v, %v; want ErrBadResponse", txids, err)
				}
				return
			}
			if err != nil || strings.Join(txids, ",") != strings.Join(tc.want, ",") || txids == nil {
				t.Fatalf("GetRawMempool = %#v, %v; want %v", txids, err, tc.want)
			}
			if params != "false" {
				t.Fatalf("params %q, want verbose false", params)
			}
		})
	}
}
