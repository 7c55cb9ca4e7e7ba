package chainwatch

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/cluster/keyspace"
	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/gigawallet"
	"github.com/gigaledger/gigaledger/fsm/ledger"
)

// testShard is a one-replica shard: proposals apply at once, in order, one per log entry.
type testShard struct {
	t      testing.TB
	mu     sync.Mutex
	m      *fsm.Machine
	family *gigawallet.Family
	core   *ledger.Family
	index  uint64
}

func newTestShard(t testing.TB) *testShard {
	t.Helper()
	reg := fsm.NewRegistry()
	core := ledger.Register(reg)
	family := gigawallet.Register(reg, core)
	m, err := fsm.Open(t.TempDir(), nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	s := &testShard{t: t, m: m, family: family, core: core}
	t.Cleanup(func() {
		if err := core.Of(m).CheckInvariants(); err != nil {
			t.Errorf("ledger invariants: %v", err)
		}
		if err := family.CheckCustody(m); err != nil {
			t.Errorf("custody: %v", err)
		}
		m.Close()
	})
	s.apply(&ledger.CreateProject{ProjectID: "gw", Name: "GigaWallet"})
	s.apply(&ledger.CreateAsset{ProjectID: "gw", AssetID: "doge", Name: "Dogecoin", Code: "DOGE", Fractions: 100_000_000})
	return s
}

func (s *testShard) Reader() *gigawallet.Reader { return s.family.Of(s.m) }
func (s *testShard) AppliedIndex() uint64       { return s.m.AppliedIndex() }

func (s *testShard) Propose(_ context.Context, cmd fsm.Command) (*fsm.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.index++
	out := s.m.ApplyBatch(s.index, time.Now().UnixMilli(), [][]byte{fsm.EncodeCommand(cmd)})
	return out[0].(*fsm.Result), nil
}

func (s *testShard) apply(cmd fsm.Command) *fsm.Result {
	s.t.Helper()
	r, _ := s.Propose(context.Background(), cmd)
	if r.Err != nil {
		s.t.Fatalf("%T: %v", cmd, r.Err)
	}
	return r
}

// invoice creates (if needed) the account and an invoice of koinu paid to address.
func (s *testShard) invoice(foreignID, address string, koinu uint64, confirmations int32) {
	s.t.Helper()
	reader := s.Reader()
	a, err := reader.GetAccount("gw", foreignID)
	if err != nil {
		index, err := reader.NextAccountIndex("gw", foreignID)
		if err != nil {
			s.t.Fatal(err)
		}
		s.apply(&gigawallet.UpsertAccount{ProjectID: "gw", AssetID: "doge", ForeignID: foreignID, Index: index,
			Address: "D" + foreignID, XPub: "tpub" + foreignID, WalletID: "w" + keyspace.SlotHex(keyspace.SlotOf("gw", foreignID)) + foreignID})
		a, _ = reader.GetAccount("gw", foreignID)
	}
	s.apply(&gigawallet.CreateInvoice{ProjectID: "gw", ForeignID: foreignID, KeyIndex: a.NextExternal, Address: address,
		Items:                 []gigawallet.Item{{Type: "item", Name: "tea", Value: fsm.AmountFromUint64(koinu), Quantity: 1}},
		RequiredConfirmations: confirmations})
}

func (s *testShard) getInvoice(address string) *gigawallet.Invoice {
	s.t.Helper()
	v, err := s.Reader().GetInvoice("gw", "", address)
	if err != nil {
		s.t.Fatal(err)
	}
	return v
}

func (s *testShard) balance(foreignID string) string {
	s.t.Helper()
	a, err := s.Reader().GetAccount("gw", foreignID)
	if err != nil {
		s.t.Fatal(err)
	}
	// Wallet reads apply's memory: not beside Propose, which applies under s.mu.
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.core.Of(s.m).Wallet("gw", a.WalletID).Balance.String()
}

// eventTypes lists the types of the shard's events so far.
func (s *testShard) eventTypes() []string {
	evs, err := s.m.Events(0, 100_000)
	if err != nil {
		s.t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		out = append(out, e.Type)
	}
	return out
}
