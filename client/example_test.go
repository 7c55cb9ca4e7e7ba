package client_test

import (
	"context"
	"errors"
	"log"
	"os"

	"github.com/gigaledger/gigaledger/client"
)

// The example of README.md, "Go client": it compiles with the package, so it cannot drift
// from the API. It has no output to check, so it is not run (it needs a node).
func ExampleClient_CreateTransaction() {
	ctx := context.Background()
	w1, w2 := "w0014aohaowryx5bab7velsbg", "w03146ulybbnjfm5bctmuafz2"
	run := func() error {
		api, err := client.New("http://127.0.0.1:8081", client.WithToken(os.Getenv("GIGALEDGER_ADMIN_TOKEN")))
		if err != nil {
			return err
		}
		tx, err := api.CreateTransaction(ctx, "shop", client.TransactionRequest{
			ReferenceID: "order-2",
			Operations:  []client.Operation{{Type: client.OperationTransfer, From: w1, To: w2, Amount: "125"}},
		})
		switch {
		case client.IsCode(err, client.CodeInsufficientFunds):
			log.Printf("declined: %s failed at operation %d", tx.ID, *tx.FailedOperationIndex)
		case errors.Is(err, client.ErrOutcomeUnknown):
			// Still unknown after the retries: resend order-2 later, or read it back.
		case err != nil:
			return err
		}
		return nil
	}
	_ = run
}
