package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil/base58"

	"github.com/gigaledger/gigaledger/bench"
	"github.com/gigaledger/gigaledger/chainwatch"
	"github.com/gigaledger/gigaledger/chainwatch/chainsim"
	"github.com/gigaledger/gigaledger/chainwatch/dogecoin"
	"github.com/gigaledger/gigaledger/chainwatch/rpc"
	"github.com/gigaledger/gigaledger/chainwatch/zmqsub"
	"github.com/gigaledger/gigaledger/cluster/testutil"
	"github.com/gigaledger/gigaledger/fsm"
)

// The chain follower's figures (bench/RESULTS.md), measured by tests that `make test` skips:
//
//	GIGALEDGER_CHAIN_FIGURES=1 go test -count=1 -run 'TestChainFigure' -v -timeout 20m ./cmd/gigaledger
//
// They print their figures with t.Log.
func chainFigures(t *testing.T) {
	if os.Getenv("GIGALEDGER_CHAIN_FIGURES") == "" {
		t.Skip("a measurement, not a test: set GIGALEDGER_CHAIN_FIGURES=1")
	}
}

// figureAddress is a regtest P2PKH address nobody watches.
func figureAddress(seed string) string {
	hash := sha256.Sum256([]byte(seed))
	return base58.CheckEncode(hash[:20], dogecoin.Regtest.P2PKHVersion)
}

// timedShard times the proposals (Raft replication and apply) of a follower's shard.
type timedShard struct {
	chainwatch.Shard
	proposeNanos atomic.Int64
	proposals    atomic.Int64
}

func (s *timedShard) Propose(ctx context.Context, cmd fsm.Command) (*fsm.Result, error) {
	start := time.Now()
	defer func() {
		s.proposeNanos.Add(int64(time.Since(start)))
		s.proposals.Add(1)
	}()
	return s.Shard.Propose(ctx, cmd)
}

// createFigureInvoices creates count invoices over accounts accounts through node 0's API,
// 8 at a time, each of totalDOGE with N = confirmations, and returns their addresses.
func createFigureInvoices(t *testing.T, g *gigaWalletCluster, accounts, count int, totalDOGE string, confirmations int) []string {
	t.Helper()
	for a := range accounts {
		g.expect(0, false, http.MethodPost, fmt.Sprintf("/account/fig-%d", a), `{}`, http.StatusOK)
	}
	addresses := make([]string, count)
	body := fmt.Sprintf(`{"items":[{"type":"item","name":"tea","value":%q,"quantity":1}],"required_confirmations":%d}`, totalDOGE, confirmations)
	var wg sync.WaitGroup
	var failed atomic.Value
	next := atomic.Int64{}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < count; i = int(next.Add(1) - 1) {
				status, data, err := g.send(g.configs[0].AdminAddr, http.MethodPost, fmt.Sprintf("/account/fig-%d/invoice", i%accounts), body)
				if err != nil || status != http.StatusOK {
					failed.Store(fmt.Sprintf("%d %s %v", status, data, err))
					return
				}
				var answer struct {
					ID string `json:"id"`
				}
				if err := json.Unmarshal(data, &answer); err != nil {
					failed.Store(err.Error())
					return
				}
				addresses[i] = answer.ID
			}
		}()
	}
	wg.Wait()
	if f := failed.Load(); f != nil {
		t.Fatalf("create an invoice: %v", f)
	}
	return addresses
}

// (a) Blocks of 2,000 transactions, 10% of them paying the shard's invoices (N = 0: each
// payment is credited in the block that mines it), followed by a real Follower through serve's
// chainShard on the shard's leader: per block, the RPC fetch and parse, the filter against
// the leader's replica, and the proposal through Raft to 1 or 3 replicas (apply included).
func TestChainFigureBlocksOf2000(t *testing.T) {
	chainFigures(t)
	const (
		blocks        = 30
		txsPerBlock   = 2000
		shardEveryNth = 10 // one transaction in ten pays an invoice
		invoices      = 200
		accounts      = 20
	)
	for _, replicas := range []int{1, 3} {
		t.Run(fmt.Sprintf("replicas-%d", replicas), func(t *testing.T) {
			chain, err := chainsim.New(chainsim.Options{AuxPoW: true})
			if err != nil {
				t.Fatal(err)
			}
			chain.Mine(simStartHeight)
			server := httptest.NewServer(chainsim.NewServer(chain, "user", "password"))
			defer server.Close()
			client, err := rpc.New(rpc.Config{URL: server.URL, User: "user", Password: "password"})
			if err != nil {
				t.Fatal(err)
			}
			g := newConfiguredGigaWalletCluster(t, replicas, 1, nil, func(cfg *serveConfig) {
				cfg.Replicas = replicas
				cfg.Network = "regtest"
			})
			addresses := createFigureInvoices(t, g, accounts, invoices, "1000000", 0)

			mineStart := time.Now()
			for b := range blocks {
				for i := range txsPerBlock {
					address := figureAddress(fmt.Sprintf("%d/%d", b, i))
					if i%shardEveryNth == 0 {
						address = addresses[(i/shardEveryNth)%invoices]
					}
					if _, err := chain.Pay(address, chainsim.KoinuPerCoin); err != nil {
						t.Fatal(err)
					}
				}
				chain.Mine(1)
			}
			t.Logf("mined %d blocks of %d payments in %s", blocks, txsPerBlock, time.Since(mineStart).Round(time.Millisecond))

			leader := g.leader()
			n := g.node(leader)
			shard, ok := chainShards{node: n.cluster, family: n.families.gigawallet}.Shard(0)
			if !ok {
				t.Fatal("no shard 0 on the leader")
			}
			timed := &timedShard{Shard: shard}
			f := chainwatch.NewFollower(chainwatch.Config{Network: dogecoin.Regtest, StartHeight: simStartHeight + 1}, client, 0, timed, nil)
			ctx := testutil.Context(t, 5*time.Minute)
			start := time.Now()
			if err := f.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			elapsed := time.Since(start)
			cursor, _ := shard.Reader().ChainCursor()
			if cursor.Height != chain.Height() {
				t.Fatalf("cursor at %d, tip %d", cursor.Height, chain.Height())
			}
			perInvoice := blocks * txsPerBlock / shardEveryNth / invoices
			for _, address := range addresses[:3] {
				v, err := shard.Reader().GetInvoice(gigaWalletProjectID, "", address)
				if err != nil || v.Confirmed.String() != fmt.Sprint(perInvoice*int(chainsim.KoinuPerCoin)) {
					t.Fatalf("invoice %s: %+v %v", address, v, err)
				}
			}
			proposeTime := time.Duration(timed.proposeNanos.Load())
			t.Logf("FIGURE replicas=%d: %d blocks x %d tx (%d paying invoices each) in %s: %.1f blocks/s, %.0f tx/s; "+
				"%.1f ms/block, of which propose+replicate+apply %.1f ms (%d proposals), fetch+parse+filter %.1f ms",
				replicas, blocks, txsPerBlock, txsPerBlock/shardEveryNth, elapsed.Round(time.Millisecond),
				float64(blocks)/elapsed.Seconds(), float64(blocks*txsPerBlock)/elapsed.Seconds(),
				float64(elapsed.Milliseconds())/blocks, float64(proposeTime.Milliseconds())/blocks, timed.proposals.Load(),
				float64((elapsed-proposeTime).Milliseconds())/blocks)
		})
	}
}

// progressStarted signals when the bench prints its first progress line: the measured phase
// (setup done) has begun.
type progressStarted struct {
	once    sync.Once
	started chan struct{}
	mu      sync.Mutex
	lines   bytes.Buffer
}

func (p *progressStarted) Write(b []byte) (int, error) {
	p.mu.Lock()
	p.lines.Write(b)
	p.mu.Unlock()
	if bytes.Contains(b, []byte("req/s")) {
		p.once.Do(func() { close(p.started) })
	}
	return len(b), nil
}

// (b) The time from a payment entering the node's mempool (chainsim.Pay returns) to
// INV_TOTAL_PAYMENT_DETECTED applied on the shard, while 64 bench clients send transfers to
// the same lone node (same shard). The follower is woken by ZMQ hashtx (polling every second as
// the fallback). Payments are one at a time, each to its own invoice.
func TestChainFigureDetectionLatencyUnderLoad(t *testing.T) {
	chainFigures(t)
	t.Run("idle", func(t *testing.T) { measureDetectionLatency(t, false) })
	t.Run("64-transfer-clients", func(t *testing.T) { measureDetectionLatency(t, true) })
}

func measureDetectionLatency(t *testing.T, load bool) {
	const payments = 200
	sim := startSimNode(t)
	g := newConfiguredGigaWalletCluster(t, 1, 1, nil, func(cfg *serveConfig) {
		cfg.Replicas = 1
		sim.configure(cfg, chainwatch.DefaultPollInterval)
	})
	testutil.EventuallyWithin(t, 20*time.Second, "the shard at the start tip", func() bool {
		return g.chainCursors(0)[0] == simStartHeight
	})
	testutil.EventuallyWithin(t, 20*time.Second, "the ZMQ subscription", func() bool {
		return sim.chain.ZMQSubscribed(zmqsub.TopicHashTx)
	})
	addresses := createFigureInvoices(t, g, 10, payments, "250", 2)
	n := g.node(0)
	machine := n.cluster.StateMachine(0).(*fsm.Machine)
	reader := n.families.gigawallet.Of(machine)

	ctx, cancel := context.WithCancel(testutil.Context(t, 10*time.Minute))
	progress := &progressStarted{started: make(chan struct{})}
	var result bytes.Buffer
	benchDone := make(chan int)
	if !load {
		close(progress.started)
		go func() { benchDone <- 0 }()
	}
	go func() {
		if !load {
			return
		}
		benchDone <- bench.Main(ctx, []string{"--target", "http://" + g.configs[0].AdminAddr, "--clients", "64",
			"--duration", "10m", "--scenario", "transfer", "--wallets", "1000"}, &result, progress)
	}()
	select {
	case <-progress.started:
	case code := <-benchDone:
		t.Fatalf("bench ended with %d before its measured phase: %s", code, progress.lines.String())
	case <-time.After(3 * time.Minute):
		t.Fatal("the bench's setup took more than 3 minutes")
	}

	latencies := make([]time.Duration, 0, payments)
	for _, address := range addresses {
		start := time.Now()
		if _, err := sim.chain.Pay(address, 250*chainsim.KoinuPerCoin); err != nil {
			t.Fatal(err)
		}
		deadline := time.After(30 * time.Second)
		for {
			changed := machine.EventsChanged()
			v, err := reader.GetInvoice(gigaWalletProjectID, "", address)
			if err != nil {
				t.Fatal(err)
			}
			if v.Incoming.Cmp(v.Total) >= 0 {
				break
			}
			select {
			case <-changed:
			case <-deadline:
				t.Fatalf("payment to %s not detected within 30 s", address)
			}
		}
		latencies = append(latencies, time.Since(start))
	}
	cancel()
	<-benchDone
	slices.Sort(latencies)
	at := func(q float64) time.Duration { return latencies[min(len(latencies)-1, int(q*float64(len(latencies))))] }
	t.Logf("FIGURE mempool -> INV_TOTAL_PAYMENT_DETECTED, %d payments, load %v: p50 %s, p90 %s, p99 %s, max %s",
		payments, load, at(0.50).Round(10*time.Microsecond), at(0.90).Round(10*time.Microsecond), at(0.99).Round(10*time.Microsecond),
		latencies[len(latencies)-1].Round(10*time.Microsecond))
	t.Logf("bench during the payments:\n%s", strings.TrimSpace(result.String()))
}
