package client_test

import (
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/gigaledger/gigaledger/client"
)

// callByOperation names the client method of each operation of the server's OpenAPI document.
var callByOperation = map[string]string{
	"createProject": "CreateProject", "listProjects": "ListProjects", "getProject": "GetProject", "renameProject": "RenameProject",
	"createAsset": "CreateAsset", "listAssets": "ListAssets", "getAsset": "GetAsset", "renameAsset": "RenameAsset", "deleteAsset": "DeleteAsset",
	"upsertCustomer": "UpsertCustomer", "listCustomers": "ListCustomers", "getCustomer": "GetCustomer", "updateCustomer": "UpdateCustomer",
	"deleteCustomer": "DeleteCustomer", "suspendCustomer": "SuspendCustomer", "resumeCustomer": "ResumeCustomer",
	"listCustomerWallets": "ListCustomerWallets",
	"createWallet":        "CreateWallet", "createSystemWallet": "CreateSystemWallet", "listSystemWallets": "ListSystemWallets",
	"getWallet": "GetWallet", "renameWallet": "RenameWallet", "describeWallet": "DescribeWallet", "setWalletStatus": "SetWalletStatus",
	"listEntries":       "ListEntries",
	"createTransaction": "CreateTransaction", "createTransactionBatch": "CreateTransactionBatch", "listTransactions": "ListTransactions", "getTransaction": "GetTransaction",
	"getHold": "GetHold", "captureHold": "CaptureHold", "releaseHold": "ReleaseHold",
	"listEvents": "ListEvents", "createSubscription": "CreateSubscription", "listSubscriptions": "ListSubscriptions",
	"getSubscription": "GetSubscription", "deleteSubscription": "DeleteSubscription", "listDeadLetters": "ListDeadLetters",
	"redriveDeadLetters": "RedriveDeadLetters",
	"healthz":            "Health", "readyz": "Ready", "clusterStatus": "ClusterStatus", "stateDigest": "StateDigest",
	// GigaWallet's routes; the create at the path with a trailing slash is the same call.
	"gigawalletUpsertAccount": "UpsertAccount", "gigawalletGetAccount": "GetAccount", "gigawalletGetBalance": "GetAccountBalance",
	"gigawalletCreateInvoice": "CreateInvoice", "gigawalletCreateInvoiceSlash": "CreateInvoice",
	"gigawalletListInvoices": "ListInvoices", "gigawalletGetInvoice": "GetInvoice", "gigawalletGetPublicInvoice": "GetPublicInvoice",
	"gigawalletGetInvoiceQR": "GetInvoiceQR", "gigawalletGetInvoiceConnect": "GetInvoiceConnect",
	"gigawalletPay": "Pay", "gigawalletPayTx": "PayTx", "gigawalletPayFrom": "PayInvoiceFrom", "gigawalletRefundInvoice": "RefundInvoice",
	"gigawalletGetPayment": "GetPayment", "gigawalletListPayments": "ListPayments", "gigawalletVoidPayment": "VoidPayment",
	"gigawalletSetSyncHeight": "SetSyncHeight",
}

// callByRoute names the client method of GigPay's routes by method and path (parameters
// written {}), whatever operationIds the server's document gives them: the routes and their
// calls were written in parallel from the same contract (docs/gigpay-api.md).
var callByRoute = map[string]string{
	"post /api/v1/accounts":                 "CreateGigPayAccount",
	"get /api/v1/accounts/{}":               "GetGigPayAccount",
	"post /api/v1/payment-tokens":           "CreatePaymentToken",
	"post /api/v1/payment-tokens/batch":     "CreatePaymentTokens",
	"get /api/v1/payment-tokens/{}":         "GetPaymentToken",
	"get /api/v1/payment-tokens/{}/qr.png":  "PaymentTokenQR",
	"post /api/v1/payment-tokens/{}/claim":  "ClaimPaymentToken",
	"post /api/v1/payment-tokens/{}/reject": "RejectPaymentToken",
	"post /api/v1/payment-tokens/{}/close":  "ClosePaymentToken",
	"post /api/v1/payments":                 "CreateGigPayPayment",
	"post /api/v1/payments/{}/status":       "UpdateGigPayPaymentStatus",
	"get /api/v1/payments/{}":               "GetGigPayPayment",
	"get /api/v1/payments":                  "ListGigPayPayments",
}

// routeKey is a route's key in callByRoute: the method and the path with every parameter's
// name dropped.
func routeKey(method, path string) string {
	segments := strings.Split(path, "/")
	for i, segment := range segments {
		if strings.HasPrefix(segment, "{") && strings.HasSuffix(segment, "}") {
			segments[i] = "{}"
		}
	}
	return strings.ToLower(method) + " " + strings.Join(segments, "/")
}

// operationsWithoutCall are the operational routes an API client has no use for, and the
// DogeConnect relay, which a payer's wallet app calls (DogeConnect's protocol), never a backend.
var operationsWithoutCall = map[string]bool{"openapi": true, "metrics": true, "replaceNode": true, "moveReplica": true, "balanceLeaders": true, "balanceReplicas": true,
	"dogeconnectRelayPay": true, "dogeconnectRelayStatus": true}

// TestEveryOperationHasACall reads the OpenAPI document the server serves, with every optional
// API on (GigaWallet's and GigPay's), and fails for an operation the client has no method for: a new route
// cannot ship without its call.
func TestEveryOperationHasACall(t *testing.T) {
	baseURL := startGigaWalletServer(t, nil).adminURL
	request, err := http.NewRequest(http.MethodGet, baseURL+"/openapi.json", nil)
	if err != nil {
		t.Fatal(err)
	}
	request.Header.Set("Authorization", "Bearer "+testToken)
	response, err := http.DefaultClient.Do(request)
	if err != nil {
		t.Fatal(err)
	}
	defer response.Body.Close()
	body, err := io.ReadAll(response.Body)
	if err != nil || response.StatusCode != http.StatusOK {
		t.Fatalf("GET /openapi.json: %d, %v", response.StatusCode, err)
	}
	var document struct {
		Paths map[string]map[string]struct {
			OperationID string `json:"operationId"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(body, &document); err != nil {
		t.Fatal(err)
	}
	clientType := reflect.TypeFor[*client.Client]()
	for key, call := range callByRoute {
		if _, ok := clientType.MethodByName(call); !ok {
			t.Errorf("%s: client.Client has no method %s", key, call)
		}
	}
	seen, gigPayRoutes := 0, map[string]bool{}
	for path, methods := range document.Paths {
		for method, operation := range methods {
			seen++
			if operationsWithoutCall[operation.OperationID] {
				continue
			}
			call, ok := callByOperation[operation.OperationID]
			if !ok && strings.HasPrefix(path, "/api/v1/") {
				call, ok = callByRoute[routeKey(method, path)]
				gigPayRoutes[routeKey(method, path)] = ok
			}
			if !ok {
				t.Errorf("%s %s (%s) has no client call", method, path, operation.OperationID)
				continue
			}
			if _, ok := clientType.MethodByName(call); !ok {
				t.Errorf("%s %s (%s): client.Client has no method %s", method, path, operation.OperationID, call)
			}
		}
	}
	// The GigPay routes are described once the server serves them (they were written in
	// parallel with these calls): from then on, every call must have its route.
	if len(gigPayRoutes) == 0 {
		t.Logf("NOTE: the OpenAPI document lists no GigPay route (/api/v1/...) yet; the %d GigPay calls are not checked against it", len(callByRoute))
	} else {
		for key := range callByRoute {
			if _, ok := gigPayRoutes[key]; !ok {
				t.Errorf("the GigPay call %s has no route %s in the document", callByRoute[key], key)
			}
		}
	}
	if seen < len(callByOperation) {
		t.Errorf("the document lists %d operations, fewer than the %d the client calls", seen, len(callByOperation))
	}
}
