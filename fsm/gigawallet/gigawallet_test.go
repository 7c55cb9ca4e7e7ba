package gigawallet

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/gigaledger/gigaledger/cluster/keyspace"
	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/ledger"
)

type harness struct {
	t      *testing.T
	m      *fsm.Machine
	core   *ledger.Ledger
	family *Family
	index  uint64
	now    int64
}

func newHarness(t *testing.T) *harness { return newHarnessAtRules(t, fsm.RulesVersion) }

// newHarnessAtRules is newHarness on a shard whose rules version was raised to rules (0: never,
// a log written before rules versions).
func newHarnessAtRules(t *testing.T, rules uint32) *harness {
	reg := fsm.NewRegistry()
	core := ledger.Register(reg)
	f := Register(reg, core)
	m, err := fsm.Open(t.TempDir(), nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, m: m, core: core.Of(m), family: f, now: 1_700_000_000_000}
	t.Cleanup(func() {
		if err := h.core.CheckInvariants(); err != nil {
			t.Errorf("invariants: %v", err)
		}
		m.Close()
	})
	if rules > 0 {
		h.ok(&fsm.RaiseRules{Version: rules}) // as a new shard's leader does first
	}
	h.ok(&ledger.CreateProject{ProjectID: "gw", Name: "GigaWallet"})
	h.ok(&ledger.CreateAsset{ProjectID: "gw", AssetID: "doge", Name: "Dogecoin", Code: "DOGE", Fractions: 100_000_000})
	return h
}

func (h *harness) apply(c fsm.Command) *fsm.Result {
	h.t.Helper()
	h.index++
	h.now += 1000
	out := h.m.ApplyBatch(h.index, h.now, [][]byte{fsm.EncodeCommand(c)})
	return out[0].(*fsm.Result)
}

func (h *harness) ok(c fsm.Command) *fsm.Result {
	h.t.Helper()
	r := h.apply(c)
	if r.Err != nil {
		h.t.Fatalf("%T: %v", c, r.Err)
	}
	return r
}

// newAccount upserts a new account the way the API does: read the slot's next index, derive
// (here: fake) keys for it, propose.
func (h *harness) newAccount(foreignID string) *UpsertAccount {
	index, err := h.family.Of(h.m).NextAccountIndex("gw", foreignID)
	if err != nil {
		h.t.Fatal(err)
	}
	return &UpsertAccount{ProjectID: "gw", AssetID: "doge", ForeignID: foreignID, Index: index,
		Address: "D" + foreignID, XPub: "dgub" + foreignID, WalletID: "w" + keyspace.SlotHex(keyspace.SlotOf("gw", foreignID)) + foreignID}
}

func TestUpsertAccount(t *testing.T) {
	h := newHarness(t)
	cmd := h.newAccount("123456789")
	created := h.ok(cmd).Value.(*Account)
	slot := keyspace.SlotOf("gw", "123456789")
	if created.Index != uint32(slot) || created.Address != "D123456789" || created.WalletID != cmd.WalletID {
		t.Fatalf("created %+v", created)
	}
	// The account is a customer with a DOGE wallet of the accounting core.
	if w := h.core.Wallet("gw", cmd.WalletID); w == nil || w.CustomerID != "123456789" || w.AssetID != "doge" {
		t.Fatalf("wallet %+v", w)
	}
	// An upsert of the existing account applies the payout settings it sets (GigaWallet #134)
	// and keeps everything else; the keys and index of a retry's command are ignored.
	again := h.newAccount("123456789")
	again.SetPayoutThreshold, again.PayoutThreshold = true, fsm.AmountFromUint64(5_000_000_000)
	again.SetPayoutFrequency, again.PayoutFrequency = true, "3600"
	updated := h.ok(again).Value.(*Account)
	if updated.Index != created.Index || updated.Address != created.Address || updated.PayoutThreshold.String() != "5000000000" ||
		updated.PayoutFrequency != "3600" || updated.PayoutAddress != "" {
		t.Fatalf("updated %+v", updated)
	}
	stored, err := h.family.Of(h.m).GetAccount("gw", "123456789")
	if err != nil || !reflect.DeepEqual(stored, updated) {
		t.Fatalf("stored %+v %v, want %+v", stored, err, updated)
	}
	// The same upsert again changes nothing (no event, same record).
	before, _ := h.m.Digest()
	h.ok(again)
	if after, _ := h.m.Digest(); after != before {
		t.Fatal("an upsert that sets nothing new changed the state")
	}
	events, err := h.m.Events(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, ev := range events {
		types = append(types, ev.Type)
	}
	if !reflect.DeepEqual(types, []string{EventAccountCreated, EventAccountUpdated}) {
		t.Fatalf("events %v", types)
	}
}

func TestAccountIndexesAreUniquePerSlot(t *testing.T) {
	h := newHarness(t)
	// Two accounts in one slot get consecutive indexes of that slot; a proposer that derived
	// its keys for an index taken meanwhile is refused, and succeeds after reading again.
	slotOf := func(id string) keyspace.Slot { return keyspace.SlotOf("gw", id) }
	first := "a0"
	var second string
	for i := 1; second == ""; i++ {
		if id := fmt.Sprintf("a%d", i); slotOf(id) == slotOf(first) {
			second = id
		}
		if i > 200_000 {
			t.Fatal("no second foreign ID in the slot")
		}
	}
	c1, c2 := h.newAccount(first), h.newAccount(second)
	if c1.Index != c2.Index {
		t.Fatalf("both proposers should read the same next index: %d %d", c1.Index, c2.Index)
	}
	h.ok(c1)
	if r := h.apply(c2); r.Err == nil || r.Err.Code != CodeAccountIndexTaken {
		t.Fatalf("stale index: %v", r.Err)
	}
	c2 = h.newAccount(second)
	a2 := h.ok(c2).Value.(*Account)
	if a2.Index != c1.Index+keyspace.SlotCount {
		t.Fatalf("second index %d, want %d", a2.Index, c1.Index+keyspace.SlotCount)
	}
}

func TestUpsertAccountRejections(t *testing.T) {
	h := newHarness(t)
	bad := h.newAccount("x")
	bad.Address = ""
	if r := h.apply(bad); r.Err == nil || r.Err.Code != fsm.CodeInvalidArgument {
		t.Fatalf("no address: %v", r.Err)
	}
	bad = h.newAccount("y")
	bad.AssetID = "nope"
	if r := h.apply(bad); r.Err == nil || r.Err.Code != ledger.CodeAssetNotFound {
		t.Fatalf("no asset: %v", r.Err)
	}
	bad = h.newAccount("z/1")
	if r := h.apply(bad); r.Err == nil || r.Err.Code != fsm.CodeInvalidArgument {
		t.Fatalf("bad foreign id: %v", r.Err)
	}
	if _, err := h.family.Of(h.m).GetAccount("gw", "x"); err == nil {
		t.Fatal("a refused account exists")
	}
	if events, _ := h.m.Events(0, 10); len(events) != 0 {
		t.Fatalf("refused upserts emitted %v", events)
	}
}

func TestAccountIndexBounds(t *testing.T) {
	if i, err := AccountIndex(4095, AccountsPerSlotMax-1); err != nil || i != 1<<31-1 {
		t.Fatalf("largest index %d %v", i, err)
	}
	if _, err := AccountIndex(0, AccountsPerSlotMax); err == nil {
		t.Fatal("an index past 2^31-1")
	}
}
