package chainwatch

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"github.com/gigaledger/gigaledger/chainwatch/chainsim"
	"github.com/gigaledger/gigaledger/chainwatch/dogecoin"
	"github.com/gigaledger/gigaledger/chainwatch/rpc"
	"github.com/gigaledger/gigaledger/cluster/testutil"
	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/gigawallet"
)

// simChain is a follower test's node: a chainsim chain behind its JSON-RPC server, the client
// the follower uses, and a one-replica shard.
type simChain struct {
	t      testing.TB
	chain  *chainsim.Chain
	client *rpc.Client
	shard  *testShard
	ctx    context.Context
}

// simStartHeight is where the tests' chains stand when the follower first looks: every block
// funds the faucet, whose coinbases are spendable at once.
const simStartHeight = 20

func newSimChain(t testing.TB, options chainsim.Options) *simChain {
	t.Helper()
	chain, err := chainsim.New(options)
	if err != nil {
		t.Fatal(err)
	}
	server := httptest.NewServer(chainsim.NewServer(chain, "user", "password"))
	t.Cleanup(server.Close)
	client, err := rpc.New(rpc.Config{URL: server.URL, User: "user", Password: "password"})
	if err != nil {
		t.Fatal(err)
	}
	chain.Mine(simStartHeight)
	return &simChain{t: t, chain: chain, client: client, shard: newTestShard(t), ctx: testutil.Context(t, time.Minute)}
}

// follower returns a fresh follower of the shard, as a new leader starts one.
func (s *simChain) follower() *Follower {
	return NewFollower(Config{Network: dogecoin.Regtest, StartHeight: 1}, s.client, 0, s.shard, nil)
}

func (s *simChain) sync(f *Follower) {
	s.t.Helper()
	if err := f.Sync(s.ctx); err != nil {
		s.t.Fatalf("sync: %v", err)
	}
	if c, _ := s.shard.Reader().ChainCursor(); c.Height != s.chain.Height() || c.Hash.String() != s.chain.TipHash().String() {
		s.t.Fatalf("after sync the cursor is at %d %s, the node's tip at %d %s", c.Height, c.Hash, s.chain.Height(), s.chain.TipHash())
	}
}

func (s *simChain) pay(address string, koinu int64) gigawallet.Hash {
	s.t.Helper()
	txid, err := s.chain.Pay(address, koinu)
	if err != nil {
		s.t.Fatal(err)
	}
	return gigawallet.Hash(txid)
}

// want is what a test expects of an invoice and its account.
type want struct {
	incoming, confirmed string // invoice koinu
	paidHeight          int64
	status              gigawallet.InvoiceStatus
	balance             string // the account's wallet
	accountIncoming     string
}

func (s *simChain) check(step, foreignID, address string, w want) {
	s.t.Helper()
	v := s.shard.getInvoice(address)
	a, err := s.shard.Reader().GetAccount("gw", foreignID)
	if err != nil {
		s.t.Fatal(err)
	}
	got := want{incoming: v.Incoming.String(), confirmed: v.Confirmed.String(), paidHeight: v.PaidHeight, status: v.Status,
		balance: s.shard.balance(foreignID), accountIncoming: a.Incoming.String()}
	if got != w {
		s.t.Fatalf("%s: got %+v, want %+v", step, got, w)
	}
}

// chainEvents lists the shard's payment events (the invoice and account chain events) in
// order, without INV_BALANCE_CHANGED and ACC_BALANCE_CHANGE.
func (s *simChain) chainEvents() []string {
	var out []string
	for _, e := range s.shard.eventTypes() {
		switch e {
		case gigawallet.EventInvoicePartPaymentDetected, gigawallet.EventInvoiceTotalPaymentDetected,
			gigawallet.EventInvoiceOverPaymentDetected, gigawallet.EventInvoiceTotalPaymentConfirmed,
			gigawallet.EventInvoiceOverPaymentConfirmed, gigawallet.EventInvoicePaymentUnconfirmed:
			out = append(out, e)
		}
	}
	return out
}

func (s *simChain) checkEvents(step string, want ...string) {
	s.t.Helper()
	if got := s.chainEvents(); !slices.Equal(got, want) {
		s.t.Fatalf("%s: events %v, want %v", step, got, want)
	}
}

// simAddress is a regtest P2PKH address of a key derived from seed (nobody spends from it).
func simAddress(t testing.TB, seed string) string {
	t.Helper()
	secret := sha256.Sum256([]byte(seed))
	key, _ := btcec.PrivKeyFromBytes(secret[:])
	address, err := dogecoin.P2PKHAddress(key.PubKey().SerializeCompressed(), dogecoin.Regtest)
	if err != nil {
		t.Fatal(err)
	}
	return address
}

const (
	detected    = gigawallet.EventInvoiceTotalPaymentDetected
	confirmed   = gigawallet.EventInvoiceTotalPaymentConfirmed
	unconfirmed = gigawallet.EventInvoicePaymentUnconfirmed
	payKoinu    = 250 * chainsim.KoinuPerCoin
	payText     = "25000000000"
)

// A payment is detected in the mempool (INV_TOTAL_PAYMENT_DETECTED, incoming but not
// confirmed: payment_unconfirmed) and confirmed when the tip reaches its height + N
// (GigaWallet's N), in merge-mined blocks and in plain ones: the follower parses both.
func TestFollowerSimDetectsThenConfirmsAfterN(t *testing.T) {
	for _, mode := range []chainsim.AuxPoWMode{chainsim.AuxPoWOn, chainsim.AuxPoWOff} {
		name := map[chainsim.AuxPoWMode]string{chainsim.AuxPoWOn: "auxpow", chainsim.AuxPoWOff: "plain"}[mode]
		t.Run(name, func(t *testing.T) {
			s := newSimChain(t, chainsim.Options{AuxPoW: mode == chainsim.AuxPoWOn})
			address := simAddress(t, "detect")
			s.shard.invoice("shop", address, uint64(payKoinu), 2)
			f := s.follower()
			s.sync(f)

			s.pay(address, payKoinu)
			s.sync(f)
			s.check("in the mempool", "shop", address, want{incoming: payText, confirmed: "0", balance: "0", accountIncoming: payText})
			s.checkEvents("in the mempool", detected)

			paidIn := s.chain.MineWith(1, chainsim.MineOptions{AuxPoW: mode})[0]
			block, _, err := f.block(s.ctx, paidIn.String())
			if err != nil {
				t.Fatal(err)
			}
			if (block.AuxPoW != nil) != (mode == chainsim.AuxPoWOn) {
				t.Fatalf("block %s: AuxPoW proof %v, want it %s", paidIn, block.AuxPoW != nil, name)
			}
			height := s.chain.Height()
			s.sync(f)
			s.check("mined, tip = h", "shop", address, want{incoming: payText, confirmed: "0", balance: "0", accountIncoming: payText})
			s.chain.MineWith(1, chainsim.MineOptions{AuxPoW: mode})
			s.sync(f)
			s.check("tip = h+1", "shop", address, want{incoming: payText, confirmed: "0", balance: "0", accountIncoming: payText})
			s.chain.MineWith(1, chainsim.MineOptions{AuxPoW: mode})
			s.sync(f)
			s.check("tip = h+2", "shop", address, want{incoming: payText, confirmed: payText, paidHeight: height + 2,
				status: gigawallet.InvoicePaid, balance: payText, accountIncoming: "0"})
			s.checkEvents("confirmed", detected, confirmed)
		})
	}
}

// A reorg of depth 1 takes the payment's block away (N = 0 had confirmed it there): the credit
// is redeemed, the payment waits in the mempool again (still incoming), and it is confirmed
// once more when mined again.
func TestFollowerSimReorgDepthOne(t *testing.T) {
	s := newSimChain(t, chainsim.Options{AuxPoW: true})
	address := simAddress(t, "reorg1")
	s.shard.invoice("shop", address, uint64(payKoinu), 0)
	f := s.follower()
	s.sync(f)
	s.pay(address, payKoinu)
	s.chain.Mine(1)
	s.sync(f)
	height := s.chain.Height()
	s.check("confirmed at N=0", "shop", address, want{incoming: payText, confirmed: payText, paidHeight: height,
		status: gigawallet.InvoicePaid, balance: payText, accountIncoming: "0"})

	if _, err := s.chain.Reorg(1, 1, chainsim.ReorgOptions{EmptyBlocks: true}); err != nil {
		t.Fatal(err)
	}
	s.sync(f)
	s.check("reorged back into the mempool", "shop", address, want{incoming: payText, confirmed: "0", balance: "0", accountIncoming: payText})
	s.checkEvents("after the reorg", detected, confirmed, unconfirmed)

	s.chain.Mine(1)
	s.sync(f)
	s.check("mined again", "shop", address, want{incoming: payText, confirmed: payText, paidHeight: height + 1,
		status: gigawallet.InvoicePaid, balance: payText, accountIncoming: "0"})
	s.checkEvents("mined again", detected, confirmed, unconfirmed, confirmed)
}

// A reorg of depth 10 with N = 2 replaces a confirmed payment's block; in one sync the follower
// rewinds 10 blocks and observes the 12 new ones. Re-mined in the replacement chain, the
// payment is confirmed again and credited once; dropped by every node, it leaves the invoice
// and the wallet is debited back.
func TestFollowerSimDeepReorg(t *testing.T) {
	for _, dropped := range []bool{false, true} {
		name := map[bool]string{false: "remined", true: "dropped"}[dropped]
		t.Run(name, func(t *testing.T) {
			s := newSimChain(t, chainsim.Options{})
			address := simAddress(t, "deep")
			s.shard.invoice("shop", address, uint64(payKoinu), 2)
			f := s.follower()
			s.sync(f)
			fork := s.chain.Height()
			s.pay(address, payKoinu)
			s.chain.Mine(10)
			s.sync(f)
			s.check("confirmed", "shop", address, want{incoming: payText, confirmed: payText, paidHeight: fork + 3,
				status: gigawallet.InvoicePaid, balance: payText, accountIncoming: "0"})

			if _, err := s.chain.Reorg(10, 12, chainsim.ReorgOptions{DropTransactions: dropped}); err != nil {
				t.Fatal(err)
			}
			s.sync(f)
			if dropped {
				s.check("dropped", "shop", address, want{incoming: "0", confirmed: "0", balance: "0", accountIncoming: "0"})
				// Two transitions, two events: the rewind took the paid state away, the
				// drop the incoming.
				s.checkEvents("dropped", detected, confirmed, unconfirmed, unconfirmed)
				if pending, _ := s.shard.Reader().PendingTransactions(gigawallet.Hash{}, 10); len(pending) != 0 {
					t.Fatalf("pending after the drop: %v", pending)
				}
				return
			}
			s.check("re-mined", "shop", address, want{incoming: payText, confirmed: payText, paidHeight: fork + 3,
				status: gigawallet.InvoicePaid, balance: payText, accountIncoming: "0"})
			s.checkEvents("re-mined", detected, confirmed, unconfirmed, confirmed)
		})
	}
}

// A double spend: the payment waits in the mempool, then a reorg's replacement chain mines a
// conflicting spend. The node forgets the payment; the follower drops it (DropTransactions),
// the invoice's incoming falls back to zero and INV_PAYMENT_UNCONFIRMED fires. The same for a
// payment already confirmed: the credit is redeemed.
func TestFollowerSimDoubleSpend(t *testing.T) {
	t.Run("mempool", func(t *testing.T) {
		s := newSimChain(t, chainsim.Options{})
		address := simAddress(t, "double")
		s.shard.invoice("shop", address, uint64(payKoinu), 2)
		f := s.follower()
		s.sync(f)
		txid := s.pay(address, payKoinu)
		s.sync(f)
		s.check("detected", "shop", address, want{incoming: payText, confirmed: "0", balance: "0", accountIncoming: payText})

		if _, err := s.chain.Reorg(1, 2, chainsim.ReorgOptions{DoubleSpend: []chainhash.Hash{chainhash.Hash(txid)}}); err != nil {
			t.Fatal(err)
		}
		if s.chain.InMempool(chainhash.Hash(txid)) {
			t.Fatal("the double-spent payment is still in the node's mempool")
		}
		s.sync(f)
		s.check("double spent", "shop", address, want{incoming: "0", confirmed: "0", balance: "0", accountIncoming: "0"})
		s.checkEvents("double spent", detected, unconfirmed)
	})
	t.Run("confirmed", func(t *testing.T) {
		s := newSimChain(t, chainsim.Options{})
		address := simAddress(t, "double-confirmed")
		s.shard.invoice("shop", address, uint64(payKoinu), 1)
		f := s.follower()
		s.sync(f)
		txid := s.pay(address, payKoinu)
		s.chain.Mine(3)
		s.sync(f)
		s.check("confirmed", "shop", address, want{incoming: payText, confirmed: payText, paidHeight: simStartHeight + 2,
			status: gigawallet.InvoicePaid, balance: payText, accountIncoming: "0"})
		if _, err := s.chain.Reorg(3, 4, chainsim.ReorgOptions{DoubleSpend: []chainhash.Hash{chainhash.Hash(txid)}}); err != nil {
			t.Fatal(err)
		}
		s.sync(f)
		s.check("double spent", "shop", address, want{incoming: "0", confirmed: "0", balance: "0", accountIncoming: "0"})
		// The rewind took the paid state away, the drop the incoming: two events.
		s.checkEvents("double spent", detected, confirmed, unconfirmed, unconfirmed)
	})
}

// Leadership moves at every step: each sync is a fresh follower (a new leader knows nothing
// but the replicated cursor and records). The payment is counted once in the mempool although
// the new leader looks at the whole mempool again, and credited once.
func TestFollowerSimLeaderChangeResumesFromTheCursor(t *testing.T) {
	s := newSimChain(t, chainsim.Options{AuxPoW: true})
	address := simAddress(t, "leader")
	s.shard.invoice("shop", address, uint64(payKoinu), 2)
	s.sync(s.follower())
	s.pay(address, payKoinu)
	s.sync(s.follower()) // the old leader saw the mempool, then lost leadership
	next := s.follower()
	s.sync(next) // the new leader looks at the same mempool
	s.check("two leaders saw the mempool", "shop", address, want{incoming: payText, confirmed: "0", balance: "0", accountIncoming: payText})

	s.chain.Mine(1)
	height := s.chain.Height()
	s.sync(next)
	s.chain.Mine(2)
	s.sync(s.follower())
	s.sync(s.follower())
	s.check("confirmed", "shop", address, want{incoming: payText, confirmed: payText, paidHeight: height + 2,
		status: gigawallet.InvoicePaid, balance: payText, accountIncoming: "0"})
	s.checkEvents("confirmed once", detected, confirmed)
}

// genesisNode is a node whose genesis block differs from the chain the shard followed.
type genesisNode struct{ Node }

func (g genesisNode) GetBlockHash(ctx context.Context, height int64) (string, error) {
	if height == 0 {
		return "00000000000000000000000000000000000000000000000000000000000000aa", nil
	}
	return g.Node.GetBlockHash(ctx, height)
}

// testnetNode is a node that says it follows testnet.
type testnetNode struct{ Node }

func (n testnetNode) GetBlockchainInfo(ctx context.Context) (rpc.BlockchainInfo, error) {
	info, err := n.Node.GetBlockchainInfo(ctx)
	info.Chain = "test"
	return info, err
}

// A follower configured for another network than the node's, or whose shard's cursor comes
// from another network (a regtest cursor, a testnet node and configuration) or from a chain
// with another genesis, stops with ErrWrongChain and proposes nothing.
func TestFollowerSimWrongChain(t *testing.T) {
	s := newSimChain(t, chainsim.Options{})
	s.sync(s.follower())
	before, _ := s.shard.Reader().ChainCursor()

	testnet := NewFollower(Config{Network: dogecoin.Testnet, StartHeight: 1}, s.client, 0, s.shard, nil)
	if err := testnet.Sync(s.ctx); !errors.Is(err, ErrWrongChain) {
		t.Fatalf("a testnet follower of a regtest node: %v, want ErrWrongChain", err)
	}
	moved := NewFollower(Config{Network: dogecoin.Testnet, StartHeight: 1}, testnetNode{s.client}, 0, s.shard, nil)
	if err := moved.Sync(s.ctx); !errors.Is(err, ErrWrongChain) {
		t.Fatalf("a regtest cursor followed on testnet: %v, want ErrWrongChain", err)
	}
	other := NewFollower(Config{Network: dogecoin.Regtest, StartHeight: 1}, genesisNode{s.client}, 0, s.shard, nil)
	s.chain.Mine(1)
	if err := other.Run(s.ctx, nil); !errors.Is(err, ErrWrongChain) {
		t.Fatalf("a node with another genesis: Run returned %v, want ErrWrongChain", err)
	}
	if after, _ := s.shard.Reader().ChainCursor(); *after != *before {
		t.Fatalf("the cursor moved from %+v to %+v", before, after)
	}
}

// racingShard creates an invoice on the shard just before the first block observation it is
// given applies: the invoice is registered after the follower filtered the block.
type racingShard struct {
	*testShard
	create func()
	// staleRefusals counts the observations the shard refused as StaleFilter.
	staleRefusals int
}

func (r *racingShard) Propose(ctx context.Context, cmd fsm.Command) (*fsm.Result, error) {
	if c, ok := cmd.(*gigawallet.ObserveChain); ok && c.Height > 0 && r.create != nil {
		create := r.create
		r.create = nil
		create()
	}
	result, err := r.testShard.Propose(ctx, cmd)
	if err == nil && result.Err != nil && result.Err.Code == gigawallet.CodeStaleFilter {
		r.staleRefusals++
	}
	return result, err
}

// The stale-filter race: an invoice created between the follower's filter and its proposal is
// still found in the block (the command's tags catch it, the shard refuses it as StaleFilter,
// the follower filters again).
func TestFollowerSimStaleFilterRace(t *testing.T) {
	s := newSimChain(t, chainsim.Options{})
	address := simAddress(t, "race")
	s.sync(s.follower())
	// Paid before the invoice exists: the mempool observation has nothing for the shard.
	s.pay(address, payKoinu)
	s.sync(s.follower())
	s.chain.Mine(1)
	racing := &racingShard{testShard: s.shard, create: func() { s.shard.invoice("shop", address, uint64(payKoinu), 0) }}
	f := NewFollower(Config{Network: dogecoin.Regtest, StartHeight: 1}, s.client, 0, racing, nil)
	s.sync(f)
	if racing.create != nil || racing.staleRefusals != 1 {
		t.Fatalf("block observation proposed: %v; refused as stale %d times, want once", racing.create == nil, racing.staleRefusals)
	}
	s.check("created during the block's proposal", "shop", address, want{incoming: payText, confirmed: payText,
		paidHeight: s.chain.Height(), status: gigawallet.InvoicePaid, balance: payText, accountIncoming: "0"})
}
