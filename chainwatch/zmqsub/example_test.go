package zmqsub_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"github.com/gigaledger/gigaledger/chainwatch/chainsim"
	"github.com/gigaledger/gigaledger/chainwatch/rpc"
	"github.com/gigaledger/gigaledger/chainwatch/zmqsub"
)

// A follower test's setup: a simulated chain behind an RPC server and a ZMQ publisher, the
// node client and a subscriber on them; then blocks, a payment and a reorg the follower must
// see.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	chain, err := chainsim.New(chainsim.Options{AuxPoW: true})
	if err != nil {
		panic(err)
	}
	server := httptest.NewServer(chainsim.NewServer(chain, "user", "password"))
	defer server.Close()
	client, err := rpc.New(rpc.Config{URL: server.URL, User: "user", Password: "password"})
	if err != nil {
		panic(err)
	}
	endpoint, err := chain.ListenZMQ("tcp://127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer chain.CloseZMQ()
	notifications, err := zmqsub.Subscribe(ctx, endpoint, zmqsub.TopicHashBlock)
	if err != nil {
		panic(err)
	}
	// ZMQ drops what is published before the subscription arrives: wait for it.
	for !chain.ZMQSubscribed(zmqsub.TopicHashBlock) {
		if ctx.Err() != nil {
			panic("no subscription within a minute")
		}
		time.Sleep(time.Millisecond)
	}

	chain.Mine(1) // funds the faucet
	txid, err := chain.Pay("mxVFsFW5N4mu1HPkxPttorvocvzeZ7KZyk", 25*chainsim.KoinuPerCoin)
	if err != nil {
		panic(err)
	}
	paidIn := chain.Mine(1)[0]
	for range 2 {
		n := <-notifications
		fmt.Println(n.Kind, n.Sequence)
	}
	// The block with the payment is replaced by two blocks with a conflicting spend.
	if _, err := chain.Reorg(1, 2, chainsim.ReorgOptions{DoubleSpend: []chainhash.Hash{txid}}); err != nil {
		panic(err)
	}
	header, err := client.GetBlockHeader(ctx, paidIn.String())
	if err != nil {
		panic(err)
	}
	count, _ := client.GetBlockCount(ctx)
	fmt.Println("stale block confirmations", header.Confirmations, "height", count, "payment confirmations", chain.Confirmations(txid))
	// Output:
	// blockhash 0
	// blockhash 1
	// stale block confirmations -1 height 3 payment confirmations -1
}
