package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/client"
)

func testScenario(name string) ScenarioConfig {
	return ScenarioConfig{Name: name, Wallets: 50, OperationsPerTx: 3, ZipfExponent: 1.2, RunID: "t"}
}

func TestGeneratorIsDeterministicPerSeedAndClient(t *testing.T) {
	for _, name := range ScenarioNames {
		first := NewGenerator(testScenario(name), 7, 3)
		second := NewGenerator(testScenario(name), 7, 3)
		other := NewGenerator(testScenario(name), 7, 4)
		differs := false
		for range 100 {
			a, b, c := first.Next(), second.Next(), other.Next()
			aJSON, _ := json.Marshal(a)
			bJSON, _ := json.Marshal(b)
			cJSON, _ := json.Marshal(c)
			if !bytes.Equal(aJSON, bJSON) {
				t.Fatalf("%s: same seed and client gave %s and %s", name, aJSON, bJSON)
			}
			differs = differs || !bytes.Equal(aJSON, cJSON)
		}
		if !differs {
			t.Errorf("%s: clients 3 and 4 generated identical streams", name)
		}
	}
}

func TestGeneratorRequestsAreValid(t *testing.T) {
	for _, name := range ScenarioNames {
		config := testScenario(name)
		generator := NewGenerator(config, 1, 0)
		references := map[string]bool{}
		kinds := map[RequestKind]int{}
		types := map[OperationType]int{}
		for range 2000 {
			request := generator.Next()
			kinds[request.Kind]++
			switch request.Kind {
			case RequestWalletBalance, RequestWalletEntries:
				if request.Wallet < 0 || request.Wallet >= config.Wallets {
					t.Fatalf("%s: read of wallet %d", name, request.Wallet)
				}
				continue
			case RequestInvoice:
				checkInvoiceRequest(t, config, request)
				continue
			case RequestToken, RequestTokenBatch:
				checkTokenRequest(t, config, request, references)
				continue
			case RequestTransaction:
			default:
				t.Fatalf("%s: kind %d", name, request.Kind)
			}
			if references[request.ReferenceID] {
				t.Fatalf("%s: reference %s reused", name, request.ReferenceID)
			}
			references[request.ReferenceID] = true
			wantOperations := 1
			if name == ScenarioMultiOp {
				wantOperations = config.OperationsPerTx
			}
			if len(request.Operations) != wantOperations {
				t.Fatalf("%s: %d operations, want %d", name, len(request.Operations), wantOperations)
			}
			for _, operation := range request.Operations {
				types[operation.Type]++
				if operation.Amount < 1 || operation.Amount > transferAmountMax {
					t.Fatalf("%s: amount %d", name, operation.Amount)
				}
				for _, wallet := range []int{operation.FromWallet, operation.ToWallet} {
					if wallet < 0 || wallet >= config.Wallets {
						t.Fatalf("%s: wallet %d", name, wallet)
					}
				}
				if operation.Type == OperationTransfer && operation.FromWallet == operation.ToWallet {
					t.Fatalf("%s: transfer to itself", name)
				}
			}
		}
		switch name {
		case ScenarioReads:
			if kinds[RequestWalletBalance] == 0 || kinds[RequestWalletEntries] == 0 {
				t.Errorf("reads: kinds %v, want both reads", kinds)
			}
		case ScenarioInvoice:
			if kinds[RequestInvoice] != 2000 || len(types) != 0 {
				t.Errorf("invoice: kinds %v, types %v, want invoices only", kinds, types)
			}
		case ScenarioToken:
			if kinds[RequestToken] != 2000 || len(kinds) != 1 {
				t.Errorf("token: kinds %v, want token requests only", kinds)
			}
		case ScenarioTokenBatch:
			if kinds[RequestTokenBatch] != 2000 || len(kinds) != 1 {
				t.Errorf("token-batch: kinds %v, want batches only", kinds)
			}
		case ScenarioIssueRedeem:
			if types[OperationIssue] == 0 || types[OperationRedeem] == 0 || types[OperationTransfer] != 0 {
				t.Errorf("issue-redeem: types %v", types)
			}
		default:
			if len(types) != 1 || types[OperationTransfer] == 0 {
				t.Errorf("%s: types %v, want transfers only", name, types)
			}
		}
	}
}

// checkInvoiceRequest fails for an invoice of an account out of range, or
// with items out of the generator's bounds.
func checkInvoiceRequest(t *testing.T, config ScenarioConfig, request Request) {
	t.Helper()
	if request.Wallet < 0 || request.Wallet >= config.Wallets || len(request.Items) < 1 || len(request.Items) > invoiceItemsMax ||
		request.ReferenceID != "" || len(request.Operations) != 0 {
		t.Fatalf("invoice request %+v", request)
	}
	for _, item := range request.Items {
		if item.ValueKoinu < 1 || item.ValueKoinu > invoiceValueMaxKoinu || item.Quantity < 1 || item.Quantity > invoiceQuantityMax {
			t.Fatalf("invoice item %+v", item)
		}
	}
}

// checkTokenRequest fails for a token request of a payer out of range, with
// the wrong number of amounts or an amount out of 1..transferAmountMax cents,
// or a batch whose reference (its items' client reference prefix) repeats.
func checkTokenRequest(t *testing.T, config ScenarioConfig, request Request, references map[string]bool) {
	t.Helper()
	want := 1
	if request.Kind == RequestTokenBatch {
		want = tokenBatchSize
		if request.ReferenceID == "" || references[request.ReferenceID] {
			t.Fatalf("batch reference %q empty or reused", request.ReferenceID)
		}
		references[request.ReferenceID] = true
	}
	if request.Wallet < 0 || request.Wallet >= config.Wallets || len(request.Amounts) != want || len(request.Operations) != 0 {
		t.Fatalf("token request %+v", request)
	}
	for _, cents := range request.Amounts {
		if cents < 1 || cents > transferAmountMax {
			t.Fatalf("token amount %d cents", cents)
		}
	}
}

// TestGigPayFundingIsOneDepositPerPayer: every payer once, the initial
// balance, a distinct client reference each.
func TestGigPayFundingIsOneDepositPerPayer(t *testing.T) {
	for _, scenario := range []string{ScenarioToken, ScenarioTokenBatch} {
		requests := FundingRequests(scenario, "r", 250, nil)
		references := map[string]bool{}
		for index, request := range requests {
			if request.Kind != RequestGigPayDeposit || request.Wallet != index || len(request.Amounts) != 1 ||
				request.Amounts[0] != initialBalanceAmount || references[request.ReferenceID] || request.ReferenceID == "" {
				t.Fatalf("%s: funding request %d: %+v", scenario, index, request)
			}
			references[request.ReferenceID] = true
		}
		if len(requests) != 250 {
			t.Fatalf("%s: %d deposits, want 250", scenario, len(requests))
		}
	}
}

// TestInvoiceGeneratorSpreadsItemsAndDecimals: every item count of 1..3 and
// every account appear, values use the 8 decimal places, and each value's
// decimal text converts back to the same koinu.
func TestInvoiceGeneratorSpreadsItemsAndDecimals(t *testing.T) {
	config := testScenario(ScenarioInvoice)
	generator := NewGenerator(config, 5, 0)
	itemCounts := map[int]int{}
	accounts := map[int]bool{}
	eightPlaces := 0
	for range 3000 {
		request := generator.Next()
		itemCounts[len(request.Items)]++
		accounts[request.Wallet] = true
		for _, item := range request.Items {
			text := client.DogeAmountFromKoinu(item.ValueKoinu)
			koinu, err := text.Koinu()
			if err != nil || koinu.Int64() != item.ValueKoinu {
				t.Fatalf("value %d koinu is %q, back %v, %v", item.ValueKoinu, text, koinu, err)
			}
			if _, fraction, _ := strings.Cut(string(text), "."); len(fraction) == 8 {
				eightPlaces++
			}
		}
	}
	if len(itemCounts) != invoiceItemsMax || len(accounts) != config.Wallets || eightPlaces == 0 {
		t.Fatalf("item counts %v, %d of %d accounts, %d values with 8 decimals", itemCounts, len(accounts), config.Wallets, eightPlaces)
	}
	if got := FundingRequests(ScenarioInvoice, "r", 10, nil); len(got) != 0 {
		t.Fatalf("invoice accounts are funded: %+v", got)
	}
}

func TestZipfIsSkewedAndUniformIsNot(t *testing.T) {
	hottestShare := func(name string) float64 {
		generator := NewGenerator(testScenario(name), 1, 0)
		counts := map[int]int{}
		const samples = 20000
		for range samples {
			counts[generator.Next().Operations[0].FromWallet]++
		}
		hottest := 0
		for _, count := range counts {
			hottest = max(hottest, count)
		}
		return float64(hottest) / samples
	}
	if share := hottestShare(ScenarioTransfer); share > 0.05 {
		t.Errorf("uniform: hottest wallet has %.3f of debits, want about 1/50", share)
	}
	if share := hottestShare(ScenarioZipf); share < 0.15 {
		t.Errorf("zipf: hottest wallet has %.3f of debits, want a hot spot", share)
	}
}

func TestFundingRequestsCoverEveryWalletOnce(t *testing.T) {
	requests := FundingRequests(ScenarioTransfer, "r", 250, nil)
	if len(requests) != 3 {
		t.Fatalf("%d funding transactions, want 3", len(requests))
	}
	seen := map[int]bool{}
	for _, request := range requests {
		if len(request.Operations) > operationsPerTransactionMax {
			t.Fatalf("%d operations in one transaction", len(request.Operations))
		}
		for _, operation := range request.Operations {
			if operation.Type != OperationIssue || operation.Amount != initialBalanceAmount || seen[operation.ToWallet] {
				t.Fatalf("bad funding operation %+v", operation)
			}
			seen[operation.ToWallet] = true
		}
	}
	if len(seen) != 250 {
		t.Fatalf("funded %d wallets, want 250", len(seen))
	}
}

func TestScenarioConfigValidate(t *testing.T) {
	for _, test := range []struct {
		change func(*ScenarioConfig)
		want   string
	}{
		{func(c *ScenarioConfig) {}, ""},
		{func(c *ScenarioConfig) { c.Name = "nope" }, "--scenario"},
		{func(c *ScenarioConfig) { c.Wallets = 1 }, "--wallets"},
		{func(c *ScenarioConfig) { c.OperationsPerTx = operationsPerTransactionMax + 1 }, "--ops-per-tx"},
		{func(c *ScenarioConfig) { c.Name, c.ZipfExponent = ScenarioZipf, 1 }, "--zipf-s"},
	} {
		config := testScenario(ScenarioTransfer)
		test.change(&config)
		err := config.Validate()
		if (err == nil) != (test.want == "") || (err != nil && !strings.Contains(err.Error(), test.want)) {
			t.Errorf("Validate(%+v) = %v, want %q", config, err, test.want)
		}
	}
}

func TestTransactionRequestNamesTheWallets(t *testing.T) {
	driver := &httpDriver{walletIDs: []string{"w-a", "w\"b"}}
	got := driver.transactionRequest(&Request{ReferenceID: "ref-1", Operations: []Operation{
		{Type: OperationTransfer, FromWallet: 0, ToWallet: 1, Amount: 11},
		{Type: OperationIssue, ToWallet: 0, Amount: 6},
		{Type: OperationRedeem, FromWallet: 1, Amount: 3},
	}})
	want := client.TransactionRequest{ReferenceID: "ref-1", Operations: []client.Operation{
		{Type: client.OperationTransfer, From: "w-a", To: "w\"b", Amount: "11"},
		{Type: client.OperationIssue, To: "w-a", Amount: "6"},
		{Type: client.OperationRedeem, From: "w\"b", Amount: "3"},
	}}
	if got.ReferenceID != want.ReferenceID || !slices.Equal(got.Operations, want.Operations) {
		t.Errorf("request\n%+v\nwant\n%+v", got, want)
	}
}

func TestCallOutcomeClassifiesByStatusAndCode(t *testing.T) {
	transportErr := &client.TransportError{Method: "POST", Path: "/x", Err: syscall.ECONNREFUSED}
	for _, test := range []struct {
		status int
		code   string
		err    error
		class  OutcomeClass
		kind   string
	}{
		{201, "", nil, OutcomeOK, "201"},
		{422, "InsufficientFunds", &client.Error{StatusCode: 422, Code: "InsufficientFunds"}, OutcomeBusiness, "422 InsufficientFunds"},
		{409, "DuplicateReferenceId", nil, OutcomeError, "409 DuplicateReferenceId"},
		{503, "", &client.Error{StatusCode: 503}, OutcomeError, "503 ?"},
		{0, "", transportErr, OutcomeTransport, "transport refused"},
		{201, "", errors.New("decode answer"), OutcomeError, "201 undecodable"},
		{0, "", errors.New("encode request"), OutcomeError, "client error"},
	} {
		outcome := callOutcome(test.status, test.code, test.err)
		if outcome.Class != test.class || outcome.Kind != test.kind {
			t.Errorf("callOutcome(%d, %q, %v) = %+v, want %v %q", test.status, test.code, test.err, outcome, test.class, test.kind)
		}
	}
}

// fixedResolver answers every lookup with addresses, without DNS.
func fixedResolver(t *testing.T, addresses ...string) *net.Resolver {
	t.Helper()
	server, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	go serveFakeDNS(server, addresses)
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "udp", server.LocalAddr().String())
		},
	}
}

func TestLoopbackCheck(t *testing.T) {
	ctx := context.Background()
	for _, test := range []struct {
		target string
		ok     bool
	}{
		{"http://127.0.0.1:8081", true},
		{"http://127.9.9.9:8081", true},
		{"http://[::1]:8081", true},
		{"http://[::ffff:127.0.0.1]:8081", true},
		{"http://10.0.0.1:8081", false},
		{"http://[2001:db8::1]:8081", false},
		{"http://0.0.0.0:8081", false},
		{"ftp://127.0.0.1", false},
		{"127.0.0.1:8081", false},
	} {
		err := checkLoopbackURL(ctx, net.DefaultResolver, test.target)
		if (err == nil) != test.ok {
			t.Errorf("checkLoopbackURL(%s) = %v, want ok %v", test.target, err, test.ok)
		}
	}
	if err := checkLoopbackHost(ctx, net.DefaultResolver, "/var/run/postgresql"); err != nil {
		t.Errorf("unix socket path refused: %v", err)
	}
	if err := checkLoopbackHost(ctx, fixedResolver(t, "127.0.0.1"), "bench.test"); err != nil {
		t.Errorf("name resolving to loopback refused: %v", err)
	}
	if err := checkLoopbackHost(ctx, fixedResolver(t, "127.0.0.1", "192.0.2.7"), "bench.test"); err == nil {
		t.Errorf("name resolving to loopback and a remote address allowed")
	}
}

func TestMainRefusesRemoteTargetBeforeSendingAnything(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := Main(context.Background(), []string{"--target", "http://192.0.2.1:8081", "--duration", "1s", "--progress", "off"}, &stdout, &stderr)
	if code == exitOK || !strings.Contains(stderr.String(), "not loopback") {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
	code = Main(context.Background(), []string{"--pg", "postgres://u@192.0.2.1:5432/db", "--progress", "off"}, &stdout, &stderr)
	if code == exitOK || !strings.Contains(stderr.String(), "not loopback") {
		t.Fatalf("--pg: exit %d, stderr %q", code, stderr.String())
	}
}

func TestMainRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--clients", "0"},
		{"--duration", "0s"},
		{"--duration", "2h"},
		{"--scenario", "nope"},
		{"--rate", "-1"},
		{"--pg", "postgres://bench@127.0.0.1:1/bench", "--scenario", ScenarioInvoice},
		{"--webhook", "--pg", "postgres://bench@127.0.0.1:1/bench"},
		{"--webhook", "--scenario", ScenarioReads},
		{"--webhook", "--scenario", ScenarioInvoice},
		{"--pg", "postgres://bench@127.0.0.1:1/bench", "--scenario", ScenarioToken},
		{"--pg", "postgres://bench@127.0.0.1:1/bench", "--scenario", ScenarioTokenBatch},
		{"--webhook", "--scenario", ScenarioToken},
		{"--webhook", "--scenario", ScenarioTokenBatch},
		{"--webhook", "--webhook-drain", "0s"},
		{"--webhook", "--webhook-drain", "11m"},
		{"extra"},
	} {
		var stdout, stderr bytes.Buffer
		if code := Main(context.Background(), args, &stdout, &stderr); code != exitUsage {
			t.Errorf("Main(%q) = %d, want %d (stderr %q)", args, code, exitUsage, stderr.String())
		}
	}
}

func TestReportTableJSONAndComparison(t *testing.T) {
	rec := newRecorder(4, false)
	for index := range 1000 {
		outcome := Outcome{Class: OutcomeOK, Kind: "201"}
		if index%100 == 0 {
			outcome = Outcome{Class: OutcomeBusiness, Kind: "422 InsufficientFunds"}
		}
		if index == 999 {
			outcome = Outcome{Class: OutcomeTransport, Kind: "transport timeout", Retries: 2, RetryKind: "pg 40P01"}
		}
		if index%2 == 0 {
			outcome.Phases = []Phase{{Name: "read", Latency: time.Millisecond}, {Name: "create", Latency: 2 * time.Millisecond}}
		}
		rec.record(index, time.Time{}, time.Duration(index+1)*time.Millisecond, outcome)
	}
	config := RunConfig{Scenario: testScenario(ScenarioMultiOp), Clients: 4, Duration: 2 * time.Second, Target: "x"}
	result := buildResult("gigaledger", config, rec, 2*time.Second)
	if result.Requests != 1000 || result.OK != 989 || result.Business != 10 || result.Transport != 1 || result.Errors != 0 {
		t.Fatalf("counts %+v", result)
	}
	if result.ThroughputPerSecond != 500 || result.OperationsPerSecond != 989.0/2*3 {
		t.Errorf("throughput %v/s, operations %v/s", result.ThroughputPerSecond, result.OperationsPerSecond)
	}
	within := func(got, want float64) bool { return got >= want*0.99 && got <= want*1.01 }
	if !within(result.Latency.P50Ms, 500) || !within(result.Latency.P99Ms, 990) || !within(result.Latency.MaxMs, 1000) {
		t.Errorf("latency %+v", result.Latency)
	}
	if len(result.Phases) != 2 || result.Phases[0].Name != "create" || !within(result.Phases[0].Latency.P99Ms, 2) || !within(result.Phases[1].Latency.MaxMs, 1) {
		t.Errorf("phases %+v", result.Phases)
	}
	if result.Outcomes[0].Kind != "201" || result.Retries["pg 40P01"] != 2 {
		t.Errorf("outcomes %+v retries %v", result.Outcomes, result.Retries)
	}
	var table bytes.Buffer
	if err := WriteTable(&table, result); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"throughput", "p99.9", "422 InsufficientFunds", "business", "transport timeout", "retried pg 40P01", "3 ops/tx", "create ms", "read ms"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	var encoded bytes.Buffer
	if err := WriteJSON(&encoded, result); err != nil {
		t.Fatal(err)
	}
	var decoded Result
	if err := json.Unmarshal(encoded.Bytes(), &decoded); err != nil || decoded.OK != result.OK || decoded.Latency != result.Latency {
		t.Fatalf("JSON round trip: %v %+v", err, decoded)
	}

	// compare and show read the files --json wrote.
	directory := t.TempDir()
	baseline := *result
	baseline.System, baseline.OKPerSecond = "postgresql", result.OKPerSecond/4
	paths := []string{filepath.Join(directory, "a.json"), filepath.Join(directory, "b.json")}
	for index, value := range []*Result{result, &baseline} {
		var buffer bytes.Buffer
		_ = WriteJSON(&buffer, value)
		if err := os.WriteFile(paths[index], buffer.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := Main(context.Background(), append([]string{"compare"}, paths...), &stdout, &stderr); code != exitOK {
		t.Fatalf("compare: %d %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "4.00") || !strings.Contains(stdout.String(), "x postgresql") {
		t.Errorf("comparison lacks the ratio:\n%s", stdout.String())
	}
	stdout.Reset()
	if code := Main(context.Background(), []string{"show", paths[0]}, &stdout, &stderr); code != exitOK || !strings.Contains(stdout.String(), "p99.9") {
		t.Errorf("show: %d %s %s", code, stdout.String(), stderr.String())
	}
}

func TestSmokeAgainstFakeLedger(t *testing.T) {
	for _, test := range []struct {
		scenario string
		extra    []string
	}{
		{ScenarioTransfer, nil},
		{ScenarioZipf, nil},
		{ScenarioIssueRedeem, nil},
		{ScenarioMultiOp, []string{"--ops-per-tx", "5"}},
		{ScenarioReads, nil},
		{ScenarioInvoice, nil},
		{ScenarioTransfer, []string{"--rate", "400"}},
	} {
		t.Run(test.scenario+strings.Join(test.extra, ""), func(t *testing.T) {
			ledger := newFakeLedger("secret")
			server := httptest.NewServer(ledger.handler())
			defer server.Close()
			args := append([]string{"--target", server.URL + "," + server.URL, "--token", "secret",
				"--scenario", test.scenario, "--clients", "8", "--wallets", "120", "--duration", "500ms",
				"--json", "--progress", "off"}, test.extra...)
			var stdout, stderr bytes.Buffer
			if code := Main(context.Background(), args, &stdout, &stderr); code != exitOK {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			var result Result
			if err := json.Unmarshal(stdout.Bytes(), &result); err != nil {
				t.Fatalf("%v: %s", err, stdout.String())
			}
			if result.OK == 0 || result.Errors != 0 || result.Transport != 0 {
				t.Fatalf("result %+v", result)
			}
			if result.ElapsedSeconds > 2 {
				t.Errorf("run took %.2fs for a 500ms duration", result.ElapsedSeconds)
			}
			if test.scenario == ScenarioInvoice {
				created, read := ledger.requests["POST /account/{foreignID}/invoice"], ledger.requests["GET /account/{foreignID}/invoice/{invoiceID}"]
				if len(ledger.accounts) != 120 || len(ledger.wallets) != 0 || int64(created) != result.Requests || read != created {
					t.Errorf("setup made %d accounts, %d wallets; %d creates, %d reads for %d requests", len(ledger.accounts), len(ledger.wallets), created, read, result.Requests)
				}
				if len(result.Phases) != 2 || result.Phases[0].Name != "create" || result.Phases[1].Name != "read" || result.Phases[0].Latency.MaxMs <= 0 {
					t.Errorf("phases %+v", result.Phases)
				}
			} else if len(ledger.wallets) != 120 || ledger.requests["POST /projects"] != 1 {
				t.Errorf("setup made %d wallets, %d projects", len(ledger.wallets), ledger.requests["POST /projects"])
			}
			if test.extra != nil && test.extra[0] == "--rate" {
				if result.Mode != "open-loop" || result.Requests > 220 || result.Requests < 150 {
					t.Errorf("open loop at 400/s for 0.5s sent %d requests (%s)", result.Requests, result.Mode)
				}
			}
		})
	}
}

func TestSmokeStopsAtOperationCount(t *testing.T) {
	ledger := newFakeLedger("")
	server := httptest.NewServer(ledger.handler())
	defer server.Close()
	var stdout, stderr bytes.Buffer
	code := Main(context.Background(), []string{"--target", server.URL, "--clients", "4", "--wallets", "10",
		"--ops", "37", "--duration", "30s", "--json", "--progress", "off"}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var result Result
	if err := json.Unmarshal(stdout.Bytes(), &result); err != nil || result.Requests != 37 {
		t.Fatalf("requests %d (%v), want 37", result.Requests, err)
	}
}

// TestGigPayScenariosAgainstFakeLedger runs token and token-batch against the fake's GigPay
// routes: setup opens a payer and a payee per index, in one slot (the fake refuses a claim
// across slots, so a wrong pairing would show as business outcomes), funds each payer once,
// and the run's tokens add up with the fake's books: every claim moved its amount, every
// unclaimed token holds its amount, and the money deposited is all still there.
func TestGigPayScenariosAgainstFakeLedger(t *testing.T) {
	for _, scenario := range []string{ScenarioToken, ScenarioTokenBatch} {
		t.Run(scenario, func(t *testing.T) {
			ledger := newFakeLedger("secret")
			server := httptest.NewServer(ledger.handler())
			defer server.Close()
			const pairs = 40
			args := []string{"--target", server.URL + "," + server.URL, "--token", "secret", "--scenario", scenario,
				"--clients", "8", "--wallets", strconv.Itoa(pairs), "--duration", "500ms", "--json", "--progress", "off"}
			var stdout, stderr bytes.Buffer
			if code := Main(context.Background(), args, &stdout, &stderr); code != exitOK {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			var result Result
			if err := json.Unmarshal(stdout.Bytes(), &result); err != nil {
				t.Fatalf("%v: %s", err, stdout.String())
			}
			if result.OK == 0 || result.OK != result.Requests || result.Errors+result.Business+result.Transport != 0 {
				t.Fatalf("result %+v", result)
			}
			ledger.mutex.Lock()
			defer ledger.mutex.Unlock()
			g := ledger.gigPay
			if len(g.accounts) != 2*pairs || g.deposited != pairs*initialBalanceAmount || len(ledger.wallets) != 0 {
				t.Fatalf("setup: %d accounts, %d cents deposited, %d ledger wallets", len(g.accounts), g.deposited, len(ledger.wallets))
			}
			var balances, held, activeCents int64
			for _, account := range g.accounts {
				balances += account.balance
				held += account.held
			}
			for _, token := range g.tokens {
				if token.status == client.PaymentTokenActive {
					activeCents += token.cents
				}
			}
			if balances != g.deposited || held != activeCents {
				t.Errorf("balances %d cents of %d deposited; held %d, active tokens %d", balances, g.deposited, held, activeCents)
			}
			switch scenario {
			case ScenarioToken:
				if result.Tokens != result.OK || int64(g.claims) != result.OK || int64(len(g.tokens)) != result.OK {
					t.Errorf("%d tokens reported, %d ok, %d claimed, %d created", result.Tokens, result.OK, g.claims, len(g.tokens))
				}
				if len(result.Phases) != 2 || result.Phases[0].Name != "claim" || result.Phases[1].Name != "create" || result.Phases[0].Latency.MaxMs <= 0 {
					t.Errorf("phases %+v", result.Phases)
				}
			case ScenarioTokenBatch:
				if result.Tokens != result.OK*tokenBatchSize || int64(len(g.tokens)) != result.Tokens || g.claims != 0 {
					t.Errorf("%d tokens reported for %d batches; %d created, %d claimed", result.Tokens, result.OK, len(g.tokens), g.claims)
				}
			}
			if result.TokensPerSecond <= 0 || result.TokensPerSecond < result.OKPerSecond || result.OperationsPerSecond != 0 {
				t.Errorf("tokens/s %.1f, ok/s %.1f, ledger operations/s %.1f", result.TokensPerSecond, result.OKPerSecond, result.OperationsPerSecond)
			}
			var table bytes.Buffer
			if err := WriteTable(&table, &result); err != nil || !strings.Contains(table.String(), "tokens ") {
				t.Errorf("table lacks tokens/s: %v\n%s", err, table.String())
			}
		})
	}
}

// TestComparisonShowsTokensPerSecond: with a GigPay result among them, the comparison adds
// a tokens/s column ("-" for the others); without one, it has none. (Each row's ratio is to the
// baseline system's run of its own scenario: 1.00 for both here.)
func TestComparisonShowsTokensPerSecond(t *testing.T) {
	transfer := &Result{System: "gigaledger", Scenario: ScenarioTransfer, OKPerSecond: 5000}
	batch := &Result{System: "gigaledger", Scenario: ScenarioTokenBatch, OKPerSecond: 80, Tokens: 16000, TokensPerSecond: 8000}
	var out bytes.Buffer
	if err := WriteComparison(&out, []*Result{batch, transfer}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "tokens/s") || !strings.Contains(lines[1], "8000.0") ||
		strings.Fields(lines[2])[4] != "-" || !strings.Contains(lines[1], "1.00") {
		t.Errorf("comparison:\n%s", out.String())
	}
	out.Reset()
	if err := WriteComparison(&out, []*Result{transfer, transfer}); err != nil || strings.Contains(out.String(), "tokens") {
		t.Errorf("comparison without GigPay runs: %v\n%s", err, out.String())
	}
}

// TestTokenBatchItemFailuresAreCounted: a batch whose items fail for want of funds is a
// business outcome naming the code, and only its created items count as tokens.
func TestTokenBatchItemFailuresAreCounted(t *testing.T) {
	ledger := newFakeLedger("")
	server := httptest.NewServer(ledger.handler())
	defer server.Close()
	driver, err := newHTTPDriver([]string{server.URL}, "", 1, routingRoundRobin)
	if err != nil {
		t.Fatal(err)
	}
	defer driver.Close()
	ctx := context.Background()
	if err := driver.Setup(ctx, SetupPlan{RunID: "r", Scenario: ScenarioTokenBatch, Wallets: 2, Clients: 2}); err != nil {
		t.Fatal(err)
	}
	// Fund payer 0 with 1.50: two of three items of 0.60 fit.
	if outcome := driver.Do(ctx, &Request{Kind: RequestGigPayDeposit, ReferenceID: "fund", Wallet: 0, Amounts: []int64{150}}); outcome.Class != OutcomeOK {
		t.Fatalf("deposit: %+v", outcome)
	}
	outcome := driver.Do(ctx, &Request{Kind: RequestTokenBatch, ReferenceID: "b1", Wallet: 0, Amounts: []int64{60, 60, 60}})
	if outcome.Class != OutcomeBusiness || outcome.Kind != "200 items InsufficientFunds" || outcome.Tokens != 2 {
		t.Errorf("batch outcome %+v", outcome)
	}
	// A token from the unfunded payer 1: the create is refused, nothing is claimed.
	outcome = driver.Do(ctx, &Request{Kind: RequestToken, Wallet: 1, Amounts: []int64{1}})
	if outcome.Class != OutcomeBusiness || outcome.Kind != "create 422 InsufficientFunds" || outcome.Tokens != 0 || len(outcome.Phases) != 1 {
		t.Errorf("token outcome %+v", outcome)
	}
}

// TestLatencyLog: --latency-log writes every request once, in the order they were due, with
// its latency in microseconds and its outcome class.
func TestLatencyLog(t *testing.T) {
	rec := newRecorder(4, true)
	start := time.UnixMicro(1_700_000_000_000_000)
	for index := range 8 {
		due := start.Add(time.Duration(7-index) * time.Millisecond) // recorded out of order
		outcome := Outcome{Class: OutcomeOK, Kind: "201"}
		if index == 3 {
			outcome = Outcome{Class: OutcomeBusiness, Kind: "422 InsufficientFunds"}
		}
		rec.record(index, due, time.Duration(index+1)*time.Millisecond, outcome)
	}
	var out bytes.Buffer
	if err := rec.writeTimeline(&out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 9 || lines[0] != "due_unix_us,latency_us,outcome" {
		t.Fatalf("latency log:\n%s", out.String())
	}
	if want := fmt.Sprintf("%d,8000,%s", start.UnixMicro(), OutcomeOK); lines[1] != want {
		t.Errorf("first line %q, want %q", lines[1], want)
	}
	if want := fmt.Sprintf("%d,4000,%s", start.Add(4*time.Millisecond).UnixMicro(), OutcomeBusiness); lines[5] != want {
		t.Errorf("fifth line %q, want %q", lines[5], want)
	}
}
