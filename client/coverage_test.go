package client_test

import (
	"encoding/json"
	"io"
	"net/http"
	"reflect"
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
	"createTransaction": "CreateTransaction", "listTransactions": "ListTransactions", "getTransaction": "GetTransaction",
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

// operationsWithoutCall are the operational routes an API client has no use for.
var operationsWithoutCall = map[string]bool{"openapi": true, "metrics": true, "replaceNode": true}

// TestEveryOperationHasACall reads the OpenAPI document the server serves, with every optional
// API on (GigaWallet's), and fails for an operation the client has no method for: a new route
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
	seen := 0
	for path, methods := range document.Paths {
		for method, operation := range methods {
			seen++
			if operationsWithoutCall[operation.OperationID] {
				continue
			}
			call, ok := callByOperation[operation.OperationID]
			if !ok {
				t.Errorf("%s %s (%s) has no client call", method, path, operation.OperationID)
				continue
			}
			if _, ok := clientType.MethodByName(call); !ok {
				t.Errorf("%s %s (%s): client.Client has no method %s", method, path, operation.OperationID, call)
			}
		}
	}
	if seen < len(callByOperation) {
		t.Errorf("the document lists %d operations, fewer than the %d the client calls", seen, len(callByOperation))
	}
}
