package ledger

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/gigaledger/gigaledger/cluster/keyspace"
	"github.com/gigaledger/gigaledger/fsm"
)

// Cross-shard transactions (cluster/DESIGN.md, "Cross-shard transactions (issue 14)"): the
// state-machine half. A router that sees the wallets of one transaction on several shards
// proposes CrossBegin to the coordinator (the shard of the first named wallet); a driver then
// proposes CrossPrepare to every participant, CrossDecide to the coordinator with the votes,
// CrossFinish to every participant with the decision, and CrossDone to the coordinator once
// every finish was acknowledged. Every step is idempotent by transaction ID.
//
// Acks are not recorded one by one: a finish is idempotent and its result is the ack, so a
// driver that lost its memory (a new leader) re-sends the finishes of every decided record
// and proposes CrossDone once all answered. One CrossDone per transaction instead of one ack
// per participant saves proposals and records nothing the re-sent finishes would not rebuild.
//
// Stored:
//
//	d {project} 0 {sequence}      → crossRecord: the coordinator's participants and legs, until done
//	l {project} 0 {transactionID} → Participation: a participant's vote, holds, legs and end,
//	                                until participationRetentionMs after its finish (crosstrim.go)
//	l 0x01 {wallet} 0 {transactionID}          → in-flight mark of a prepared participation
//	l 0x02 {finishedAt} {project} 0 {transactionID} → a finished participation, by finish time
//
// The transaction itself is the coordinator's ordinary record (t, r): pending until decided,
// then completed or failed. Its event (LEDGER_TX_COMPLETED|FAILED) is emitted at CrossDone,
// when every participant has applied the decision.
const (
	prefixCrossCoordinator = 'd'
	prefixCrossParticipant = 'l'
)

// CrossLeg is one operation of a cross-shard transaction with its index in the transaction.
type CrossLeg struct {
	Index     int
	Operation Operation
}

// WalletShard is the shard the router placed a wallet on.
type WalletShard struct {
	WalletID string
	Shard    int
}

// CrossBegin records a cross-shard transaction on its coordinator: the reference check of a
// Transact, a transaction ID (IDPrefix, which carries the coordinator's slot, and the shard's
// sequence) and the pending record with each participant's legs. Shards names every wallet of
// the operations once, with its shard as the router computed it.
//
// With extras (captures, a hook; crosscapture.go) it is op OpCrossBeginExtended. A begin with
// a capture may leave ReferenceID empty: the reference is then the transaction's own ID, as for
// a CaptureHold without one.
type CrossBegin struct {
	ProjectID, IDPrefix, ReferenceID string
	Operations                       []Operation
	Shards                           []WalletShard
	CrossExtras
}

// CrossPrepare asks a participant to vote: check its wallets' running balances in operation
// order and, if they all stay ≥ 0, hold each wallet's maximum drawdown. Wallets are the
// participant's wallets (they route the command); Legs are the operations naming them.
// With extras (the captures of its wallets, the hook it runs) it is op OpCrossPrepareExtended.
//
// BeginAt is the coordinator's batch time of the begin (the transaction's CreatedAt): a
// participant that has no record of the ID refuses the prepare, recording nothing, once its
// own batch time is past BeginAt + crossPrepareWindowMs (crosstrim.go: a very late duplicate
// must not meet a trimmed participation and hold again). A prepare with BeginAt is op
// OpCrossPrepareAt, with or without extras; 0 (ops 20 and 25, which the driver no longer
// sends) is unknown and skips the check.
type CrossPrepare struct {
	ProjectID, TransactionID string
	Wallets                  []string
	Legs                     []CrossLeg
	BeginAt                  int64
	CrossExtras
}

// ShardVote is a participant's vote as the driver hands it to the coordinator.
type ShardVote struct {
	Shard int
	Vote  CrossVote
}

// CrossDecide records the coordinator's decision from the participants' votes; a participant
// without a vote (it did not answer in time) fails the transaction.
type CrossDecide struct {
	ProjectID, TransactionID string
	Votes                    []ShardVote
}

// CrossFinish tells a participant the decision: completed applies its legs, failed releases
// its holds; a participant that never prepared records a tombstone (failed only).
//
// BeginAt is the coordinator's begin time, as in CrossPrepare (op OpCrossFinishAt when set): a
// participant with no record of the ID past BeginAt + crossPrepareWindowMs answers the finish
// without recording anything, since its participation may have been trimmed (crosstrim.go).
type CrossFinish struct {
	ProjectID, TransactionID string
	Wallets                  []string // the participant's wallets: they route the command
	Status                   TransactionStatus
	BeginAt                  int64
}

// CrossDone records on the coordinator that every participant applied the decision: the
// participants' state is dropped and the transaction's event emitted.
type CrossDone struct{ ProjectID, TransactionID string }

func (c *CrossBegin) Op() fsm.Op {
	if c.CrossExtras.empty() {
		return OpCrossBegin
	}
	return OpCrossBeginExtended
}
func (c *CrossPrepare) Op() fsm.Op {
	if c.BeginAt != 0 {
		return OpCrossPrepareAt
	}
	if c.CrossExtras.empty() {
		return OpCrossPrepare
	}
	return OpCrossPrepareExtended
}
func (*CrossDecide) Op() fsm.Op { return OpCrossDecide }
func (c *CrossFinish) Op() fsm.Op {
	if c.BeginAt != 0 {
		return OpCrossFinishAt
	}
	return OpCrossFinish
}
func (*CrossDone) Op() fsm.Op { return OpCrossDone }

// Route: the coordinator is the shard of the first named wallet (operation 0's from, else its
// to), which a retry of the same request names again.
func (c *CrossBegin) Route() fsm.Route {
	r := fsm.Route{ProjectID: c.ProjectID}
	if len(c.Operations) > 0 {
		first := c.Operations[0].From
		if first == "" {
			first = c.Operations[0].To
		}
		if first != "" {
			r.IDs = []string{first}
		}
	}
	return r
}
func (c *CrossPrepare) Route() fsm.Route { return fsm.Route{ProjectID: c.ProjectID, IDs: c.Wallets} }
func (c *CrossDecide) Route() fsm.Route  { return walletRoute(c.ProjectID, c.TransactionID) }
func (c *CrossFinish) Route() fsm.Route  { return fsm.Route{ProjectID: c.ProjectID, IDs: c.Wallets} }
func (c *CrossDone) Route() fsm.Route    { return walletRoute(c.ProjectID, c.TransactionID) }

func (c *CrossBegin) project() string   { return c.ProjectID }
func (c *CrossPrepare) project() string { return c.ProjectID }
func (c *CrossDecide) project() string  { return c.ProjectID }
func (c *CrossFinish) project() string  { return c.ProjectID }
func (c *CrossDone) project() string    { return c.ProjectID }

func encodeOperation(e *fsm.Encoder, op *Operation) {
	e.Byte(byte(op.Type))
	e.String(op.From)
	e.String(op.To)
	e.Amount(op.Amount)
	if op.Type == OperationHold {
		e.Varint(op.ExpiresAt)
	}
}

func decodeOperation(d *fsm.Decoder) Operation {
	op := Operation{Type: OperationType(d.Byte()), From: d.String(), To: d.String(), Amount: d.Amount()}
	if op.Type == OperationHold {
		op.ExpiresAt = d.Varint()
	}
	return op
}

func encodeLegs(e *fsm.Encoder, legs []CrossLeg) {
	e.Uvarint(uint64(len(legs)))
	for i := range legs {
		e.Uvarint(uint64(legs[i].Index))
		encodeOperation(e, &legs[i].Operation)
	}
}

// decodeInt reads a non-negative int (an operation index, a shard, a rank): one past 2^30 is
// no valid value of any, and is refused rather than wrapped or clamped (a clamp would
// re-encode differently).
func decodeInt(d *fsm.Decoder) int {
	v := d.Uvarint()
	if v > 1<<30 {
		d.Fail(fmt.Errorf("integer %d out of range", v))
		return 0
	}
	return int(v)
}

func decodeLegs(d *fsm.Decoder) []CrossLeg {
	n := d.Count("legs")
	var legs []CrossLeg
	for i := 0; i < n && d.Err() == nil; i++ {
		legs = append(legs, CrossLeg{Index: decodeInt(d), Operation: decodeOperation(d)})
	}
	return legs
}

func encodeVote(e *fsm.Encoder, v *CrossVote) {
	e.Bool(v.Prepared)
	e.Varint(int64(v.FailedOperationIndex))
	e.Uvarint(uint64(v.FailureRank))
	e.String(string(v.FailureReason))
	e.String(v.FailureMessage)
	e.Uvarint(uint64(len(v.Assets)))
	for _, a := range v.Assets {
		e.String(a.WalletID)
		e.String(a.AssetID)
	}
}

func decodeVote(d *fsm.Decoder) CrossVote {
	v := CrossVote{Prepared: d.Bool()}
	index := d.Varint()
	if index < -1 || index > 1<<30 {
		d.Fail(fmt.Errorf("operation index %d out of range", index))
		index = 0
	}
	v.FailedOperationIndex = int(index)
	v.FailureRank, v.FailureReason, v.FailureMessage = decodeInt(d), fsm.ErrorCode(d.String()), d.String()
	n := d.Count("assets")
	for i := 0; i < n && d.Err() == nil; i++ {
		v.Assets = append(v.Assets, WalletAsset{WalletID: d.String(), AssetID: d.String()})
	}
	return v
}

func (c *CrossBegin) Encode(e *fsm.Encoder) {
	e.String(c.ProjectID)
	e.String(c.IDPrefix)
	e.String(c.ReferenceID)
	encodeOperations(e, c.Operations)
	e.Uvarint(uint64(len(c.Shards)))
	for _, s := range c.Shards {
		e.String(s.WalletID)
		e.Uvarint(uint64(s.Shard))
	}
	if !c.CrossExtras.empty() {
		encodeExtras(e, &c.CrossExtras)
	}
}

func decodeCrossBegin(d *fsm.Decoder) fsm.Command {
	c := &CrossBegin{ProjectID: d.String(), IDPrefix: d.String(), ReferenceID: d.String(), Operations: decodeOperations(d)}
	n := d.Count("wallet shards")
	for i := 0; i < n && d.Err() == nil; i++ {
		c.Shards = append(c.Shards, WalletShard{WalletID: d.String(), Shard: decodeInt(d)})
	}
	return c
}

func decodeCrossBeginExtended(d *fsm.Decoder) fsm.Command {
	c := decodeCrossBegin(d).(*CrossBegin)
	c.CrossExtras = decodeExtended(d)
	return c
}

func (c *CrossPrepare) Encode(e *fsm.Encoder) {
	e.String(c.ProjectID)
	e.String(c.TransactionID)
	e.Strings(c.Wallets)
	encodeLegs(e, c.Legs)
	if c.BeginAt != 0 {
		e.Varint(c.BeginAt)
		encodeExtras(e, &c.CrossExtras) // possibly empty: op 26 has one encoding either way
		return
	}
	if !c.CrossExtras.empty() {
		encodeExtras(e, &c.CrossExtras)
	}
}

func decodeCrossPrepare(d *fsm.Decoder) fsm.Command {
	return &CrossPrepare{ProjectID: d.String(), TransactionID: d.String(), Wallets: d.Strings("wallets"), Legs: decodeLegs(d)}
}

func decodeCrossPrepareExtended(d *fsm.Decoder) fsm.Command {
	c := decodeCrossPrepare(d).(*CrossPrepare)
	c.CrossExtras = decodeExtended(d)
	return c
}

// decodeCrossPrepareAt reads op 26: a prepare with its begin time (> 0: 0 is the older ops'
// encoding) and its extras, empty or not.
func decodeCrossPrepareAt(d *fsm.Decoder) fsm.Command {
	c := decodeCrossPrepare(d).(*CrossPrepare)
	c.BeginAt = d.Varint()
	if d.Err() == nil && c.BeginAt <= 0 {
		d.Fail(fmt.Errorf("a timed prepare begun at %d", c.BeginAt))
	}
	c.CrossExtras = decodeExtras(d)
	return c
}

func (c *CrossDecide) Encode(e *fsm.Encoder) {
	e.String(c.ProjectID)
	e.String(c.TransactionID)
	e.Uvarint(uint64(len(c.Votes)))
	for i := range c.Votes {
		e.Uvarint(uint64(c.Votes[i].Shard))
		encodeVote(e, &c.Votes[i].Vote)
	}
}

func decodeCrossDecide(d *fsm.Decoder) fsm.Command {
	c := &CrossDecide{ProjectID: d.String(), TransactionID: d.String()}
	n := d.Count("votes")
	for i := 0; i < n && d.Err() == nil; i++ {
		c.Votes = append(c.Votes, ShardVote{Shard: decodeInt(d), Vote: decodeVote(d)})
	}
	return c
}

func (c *CrossFinish) Encode(e *fsm.Encoder) {
	e.String(c.ProjectID)
	e.String(c.TransactionID)
	e.Strings(c.Wallets)
	e.Byte(byte(c.Status))
	if c.BeginAt != 0 {
		e.Varint(c.BeginAt)
	}
}

func decodeCrossFinish(d *fsm.Decoder) fsm.Command {
	return &CrossFinish{ProjectID: d.String(), TransactionID: d.String(), Wallets: d.Strings("wallets"),
		Status: TransactionStatus(d.Byte())}
}

// decodeCrossFinishAt reads op 27: a finish with its begin time (> 0: 0 is op 22's encoding).
func decodeCrossFinishAt(d *fsm.Decoder) fsm.Command {
	c := decodeCrossFinish(d).(*CrossFinish)
	c.BeginAt = d.Varint()
	if d.Err() == nil && c.BeginAt <= 0 {
		d.Fail(fmt.Errorf("a timed finish begun at %d", c.BeginAt))
	}
	return c
}

func (c *CrossDone) Encode(e *fsm.Encoder) { e.String(c.ProjectID); e.String(c.TransactionID) }

func decodeCrossDone(d *fsm.Decoder) fsm.Command {
	return &CrossDone{ProjectID: d.String(), TransactionID: d.String()}
}

// crossOps declares the protocol's operations (ops.go appends them to the family's), every one
// urgent: the router waits on a transaction's begin, its driver on each prepare, the decision,
// each finish and the done, one after the other, and group commit must not hold any of them
// for more commands (fsm.OpSpec.Urgent).
func (f *Family) crossOps(spec func(op fsm.Op, name string, example fsm.Command, decode func(d *fsm.Decoder) fsm.Command,
	value func(d *fsm.Decoder) fsm.Value, apply func(l *Ledger, c fsm.Command) *fsm.Result) fsm.OpSpec,
	inProject func(func(l *Ledger, c fsm.Command) *fsm.Result) func(l *Ledger, c fsm.Command) *fsm.Result) []fsm.OpSpec {
	one := fsm.AmountFromUint64(1)
	specs := []fsm.OpSpec{
		spec(OpCrossBegin, "CrossBegin", &CrossBegin{ProjectID: "p", IDPrefix: "t0000", ReferenceID: "r",
			Operations: []Operation{{Type: OperationTransfer, From: "w00000", To: "w00010", Amount: one}},
			Shards:     []WalletShard{{WalletID: "w00000", Shard: 0}, {WalletID: "w00010", Shard: 1}}},
			decodeCrossBegin, valueCrossTransaction,
			inProject(func(l *Ledger, c fsm.Command) *fsm.Result { return l.crossBegin(c.(*CrossBegin)) })),
		spec(OpCrossPrepare, "CrossPrepare", &CrossPrepare{ProjectID: "p", TransactionID: "t00000000000000000001",
			Wallets: []string{"w00000"}, Legs: []CrossLeg{{Index: 0, Operation: Operation{Type: OperationTransfer, From: "w00000", To: "w00010", Amount: one}}}},
			decodeCrossPrepare, valueParticipation,
			func(l *Ledger, c fsm.Command) *fsm.Result { return l.crossPrepare(c.(*CrossPrepare)) }),
		spec(OpCrossDecide, "CrossDecide", &CrossDecide{ProjectID: "p", TransactionID: "t00000000000000000001",
			Votes: []ShardVote{{Shard: 0, Vote: CrossVote{Prepared: true, FailedOperationIndex: -1, Assets: []WalletAsset{{WalletID: "w00000", AssetID: "a"}}}},
				{Shard: 1, Vote: CrossVote{FailedOperationIndex: 0, FailureRank: rankToUnusable, FailureReason: CodeWalletClosed, FailureMessage: "m"}}}},
			decodeCrossDecide, valueCrossTransaction,
			inProject(func(l *Ledger, c fsm.Command) *fsm.Result { return l.crossDecide(c.(*CrossDecide)) })),
		spec(OpCrossFinish, "CrossFinish", &CrossFinish{ProjectID: "p", TransactionID: "t00000000000000000001",
			Wallets: []string{"w00010"}, Status: TransactionCompleted},
			decodeCrossFinish, valueParticipation,
			func(l *Ledger, c fsm.Command) *fsm.Result { return l.crossFinish(c.(*CrossFinish)) }),
		spec(OpCrossDone, "CrossDone", &CrossDone{ProjectID: "p", TransactionID: "t00000000000000000001"},
			decodeCrossDone, valueCrossTransaction,
			inProject(func(l *Ledger, c fsm.Command) *fsm.Result { return l.crossDone(c.(*CrossDone)) })),
		spec(OpCrossBeginExtended, "CrossBeginExtended", &CrossBegin{ProjectID: "p", IDPrefix: "t0000",
			Operations: []Operation{{Type: OperationTransfer, From: "w00000", To: "w00010", Amount: one}},
			Shards:     []WalletShard{{WalletID: "w00000", Shard: 0}, {WalletID: "w00010", Shard: 1}},
			CrossExtras: CrossExtras{Captures: []HoldCapture{{Index: 0, HoldID: "h0000000000000000001.0"}},
				Hook: &CrossHook{Name: "family.hook", Anchor: "w00000", Data: []byte("d")}}},
			decodeCrossBeginExtended, valueCrossTransaction,
			inProject(func(l *Ledger, c fsm.Command) *fsm.Result { return l.crossBegin(c.(*CrossBegin)) })),
		spec(OpCrossPrepareExtended, "CrossPrepareExtended", &CrossPrepare{ProjectID: "p", TransactionID: "t00000000000000000001",
			Wallets: []string{"w00000"}, Legs: []CrossLeg{{Index: 0, Operation: Operation{Type: OperationTransfer, From: "w00000", To: "w00010", Amount: one}}},
			CrossExtras: CrossExtras{Captures: []HoldCapture{{Index: 0, HoldID: "h0000000000000000001.0"}}}},
			decodeCrossPrepareExtended, valueParticipation,
			func(l *Ledger, c fsm.Command) *fsm.Result { return l.crossPrepare(c.(*CrossPrepare)) }),
		spec(OpCrossPrepareAt, "CrossPrepareAt", &CrossPrepare{ProjectID: "p", TransactionID: "t00000000000000000001",
			Wallets: []string{"w00000"}, Legs: []CrossLeg{{Index: 0, Operation: Operation{Type: OperationTransfer, From: "w00000", To: "w00010", Amount: one}}},
			BeginAt: 1_700_000_000_000, CrossExtras: CrossExtras{Captures: []HoldCapture{{Index: 0, HoldID: "h0000000000000000001.0"}}}},
			decodeCrossPrepareAt, valueParticipation,
			func(l *Ledger, c fsm.Command) *fsm.Result { return l.crossPrepare(c.(*CrossPrepare)) }),
		spec(OpCrossFinishAt, "CrossFinishAt", &CrossFinish{ProjectID: "p", TransactionID: "t00000000000000000001",
			Wallets: []string{"w00010"}, Status: TransactionCompleted, BeginAt: 1_700_000_000_000},
			decodeCrossFinishAt, valueParticipation,
			func(l *Ledger, c fsm.Command) *fsm.Result { return l.crossFinish(c.(*CrossFinish)) }),
	}
	for i := range specs {
		specs[i].Urgent = true
	}
	return specs
}

// Failure ranks order the failures of one operation the way the single-shard path meets them:
// first the structural checks of the wallets in operation order (the from wallet missing, the
// to wallet missing, the two wallets of different assets), which win over any balance failure
// because the single-shard path checks them before it runs an operation; then, while running,
// the from wallet unusable, the to wallet unusable, insufficient funds, a supply and a balance
// overflow.
const (
	rankFromMissing = iota
	rankToMissing
	rankAssetMismatch
	rankFromUnusable
	rankToUnusable
	rankFunds
	rankSupply
	rankToOverflow
	// rankPrior is a failure met before the operations run: a captured hold that cannot be
	// captured, or a hook's refusal (the single-shard op checks the hold or the family's record
	// first). It beats every other failure. Appended: ranks are stored in votes.
	rankPrior
	rankCount
)

// CrossVote is a participant's answer to a prepare: prepared, or refused with the lowest
// failing operation among its wallets and why. Assets names the asset of each of the
// participant's wallets that exists, so the coordinator can check transfers across shards.
type CrossVote struct {
	Prepared             bool
	FailedOperationIndex int // -1 when prepared
	FailureRank          int
	FailureReason        fsm.ErrorCode
	FailureMessage       string
	Assets               []WalletAsset
}

// WalletAsset is a wallet's asset, as its participant reports it.
type WalletAsset struct{ WalletID, AssetID string }

func (v *CrossVote) failure() crossFailure {
	return crossFailure{index: v.FailedOperationIndex, rank: v.FailureRank, reason: v.FailureReason, message: v.FailureMessage}
}

// crossFailure is one failing operation; the lowest (structural first, then index, then rank)
// is the transaction's.
type crossFailure struct {
	index, rank int
	reason      fsm.ErrorCode
	message     string
	set         bool
}

func (f crossFailure) less(g crossFailure) bool {
	if fp, gp := f.rank == rankPrior, g.rank == rankPrior; fp != gp {
		return fp
	}
	fs, gs := f.rank <= rankAssetMismatch, g.rank <= rankAssetMismatch
	if fs != gs {
		return fs
	}
	if f.index != g.index {
		return f.index < g.index
	}
	return f.rank < g.rank
}

func (f *crossFailure) keep(g crossFailure) {
	if !f.set || g.less(*f) {
		*f = g
		f.set = true
	}
}

// CrossParticipant is one participant as the coordinator records it: its shard, its wallets
// and the legs that name them, in operation order.
type CrossParticipant struct {
	Shard   int
	Wallets []string
	Legs    []CrossLeg
	// CrossExtras are its captures and hook. The coordinator's record keeps them; the
	// CrossTransaction value does not carry them (the driver reads its own replica's record).
	CrossExtras
}

// CrossTransaction is the coordinator's view of a cross-shard transaction: the transaction
// (pending, completed or failed) and, until it is done, its participants.
type CrossTransaction struct {
	Transaction  *Transaction
	Participants []CrossParticipant
}

// Done reports a transaction whose participants all applied the decision.
func (x *CrossTransaction) Done() bool {
	return x.Participants == nil && x.Transaction.Status != TransactionPending
}

// ParticipationStatus is where a participant is in a cross-shard transaction.
type ParticipationStatus uint8

// Participation states; the zero value is invalid. Append only: the values are stored.
const (
	ParticipationPrepared  ParticipationStatus = iota + 1 // voted yes, holds placed
	ParticipationRefused                                  // voted no, nothing held
	ParticipationCommitted                                // applied its legs
	ParticipationReleased                                 // the transaction failed: holds released
	ParticipationTombstone                                // finished before any prepare: a late prepare is refused
)

var participationStatusNames = []string{"", "prepared", "refused", "committed", "released", "tombstone"}

func (s ParticipationStatus) String() string { return enumName(participationStatusNames, uint8(s)) }

// Participation is a participant's record of a cross-shard transaction.
type Participation struct {
	ProjectID     string
	TransactionID string
	Status        ParticipationStatus
	Wallets       []string
	Legs          []CrossLeg
	Vote          CrossVote
	HoldIDs       []string // per wallet: the hold of its drawdown, "" for none
	CreatedAt     int64
	FinishedAt    int64
	// CrossExtras are the holds its legs capture and the hook it runs (version 2 records).
	CrossExtras
}

// Encode implements fsm.Value; it is also the stored record.
// Version 2 appends the extras; a participation without them keeps version 1's bytes.
func (p *Participation) Encode(e *fsm.Encoder) {
	version := recordVersion
	if !p.CrossExtras.empty() {
		version = crossRecordVersionExtras
	}
	e.Byte(version)
	e.String(p.ProjectID)
	e.String(p.TransactionID)
	e.Byte(byte(p.Status))
	e.Strings(p.Wallets)
	encodeLegs(e, p.Legs)
	encodeVote(e, &p.Vote)
	e.Strings(p.HoldIDs)
	e.Varint(p.CreatedAt)
	e.Varint(p.FinishedAt)
	if version == crossRecordVersionExtras {
		encodeExtras(e, &p.CrossExtras)
	}
}

// crossRecordVersionExtras is the version of a participation, or of a coordinator's record,
// with extras.
const crossRecordVersionExtras byte = 2

// readCrossVersion reads the version byte of a participation or a coordinator's record.
func readCrossVersion(d *fsm.Decoder) byte {
	v := d.Byte()
	if d.Err() == nil && v != recordVersion && v != crossRecordVersionExtras {
		d.Fail(fmt.Errorf("unknown record version %d", v))
	}
	return v
}

func readParticipation(d *fsm.Decoder) *Participation {
	version := readCrossVersion(d)
	p := &Participation{ProjectID: d.String(), TransactionID: d.String(), Status: ParticipationStatus(d.Byte()),
		Wallets: d.Strings("wallets"), Legs: decodeLegs(d), Vote: decodeVote(d), HoldIDs: d.Strings("holds"),
		CreatedAt: d.Varint(), FinishedAt: d.Varint()}
	if version == crossRecordVersionExtras {
		p.CrossExtras = decodeExtended(d)
	}
	return p
}

// ReadParticipation reads a Participation.
func ReadParticipation(d *fsm.Decoder) *Participation { return readParticipation(d) }

func decodeParticipation(data []byte) (*Participation, error) {
	return decodeRecord("participation", data, readParticipation)
}

func valueParticipation(d *fsm.Decoder) fsm.Value { return readParticipation(d) }

func encodeParticipants(e *fsm.Encoder, ps []CrossParticipant) {
	e.Uvarint(uint64(len(ps)))
	for i := range ps {
		e.Uvarint(uint64(ps[i].Shard))
		e.Strings(ps[i].Wallets)
		encodeLegs(e, ps[i].Legs)
	}
}

func decodeParticipants(d *fsm.Decoder) []CrossParticipant {
	n := d.Count("participants")
	var ps []CrossParticipant
	for i := 0; i < n && d.Err() == nil; i++ {
		ps = append(ps, CrossParticipant{Shard: decodeInt(d), Wallets: d.Strings("wallets"), Legs: decodeLegs(d)})
	}
	return ps
}

// Encode implements fsm.Value.
func (x *CrossTransaction) Encode(e *fsm.Encoder) {
	x.Transaction.Encode(e)
	encodeParticipants(e, x.Participants)
}

func readCrossTransaction(d *fsm.Decoder) *CrossTransaction {
	return &CrossTransaction{Transaction: readTransaction(d), Participants: decodeParticipants(d)}
}

// ReadCrossTransaction reads a CrossTransaction.
func ReadCrossTransaction(d *fsm.Decoder) *CrossTransaction { return readCrossTransaction(d) }

func valueCrossTransaction(d *fsm.Decoder) fsm.Value { return readCrossTransaction(d) }

// The coordinator's stored record is its participants, with a version byte.
// Version 2 follows the participants with each one's extras.
func encodeCrossRecord(ps []CrossParticipant) []byte {
	e := fsm.Encoder{Buf: make([]byte, 0, 128)}
	extras := slices.ContainsFunc(ps, func(p CrossParticipant) bool { return !p.CrossExtras.empty() })
	if !extras {
		e.Byte(recordVersion)
		encodeParticipants(&e, ps)
		return e.Buf
	}
	e.Byte(crossRecordVersionExtras)
	encodeParticipants(&e, ps)
	for i := range ps {
		encodeExtras(&e, &ps[i].CrossExtras)
	}
	return e.Buf
}

func decodeCrossRecord(data []byte) ([]CrossParticipant, error) {
	d := fsm.NewDecoder(data)
	version := readCrossVersion(d)
	ps := decodeParticipants(d)
	if version == crossRecordVersionExtras {
		for i := 0; i < len(ps) && d.Err() == nil; i++ {
			ps[i].CrossExtras = decodeExtras(d)
		}
	}
	return ps, d.Finish("cross-shard record")
}

func crossKey(projectID string, sequence uint64) []byte {
	return appendSequence(prefixOf(prefixCrossCoordinator, projectID), sequence)
}

func participationKey(projectID, transactionID string) []byte {
	return key(prefixCrossParticipant, projectID, transactionID)
}

// inFlightKey marks a wallet of a prepared participation until its finish: such a wallet
// cannot be closed, or a commit would credit a closed wallet. Layout: l 0x01 {wallet} 0 {tx};
// a project ID never starts with 0x01, so these keys stay apart from the participations.
func inFlightKey(walletID, transactionID string) []byte {
	k := make([]byte, 0, 3+len(walletID)+len(transactionID))
	k = append(k, prefixCrossParticipant, 1)
	k = append(k, walletID...)
	k = append(k, 0)
	return append(k, transactionID...)
}

func (l *Ledger) markInFlight(p *Participation, on bool) {
	for _, id := range p.Wallets {
		if on {
			l.set(inFlightKey(id, p.TransactionID), nil)
		} else {
			l.delete(inFlightKey(id, p.TransactionID))
		}
	}
}

// crossInFlight reports whether a wallet takes part in a prepared cross-shard transaction:
// the store's marks as of the previous batch, corrected by this batch's participations.
func (l *Ledger) crossInFlight(walletID string) bool {
	var finished map[string]bool
	for _, p := range l.pendingParticipations {
		if !slices.Contains(p.Wallets, walletID) {
			continue
		}
		if p.Status == ParticipationPrepared {
			return true
		}
		if finished == nil {
			finished = map[string]bool{}
		}
		finished[p.TransactionID] = true
	}
	lower := inFlightKey(walletID, "")
	upper := append(inFlightKey(walletID, ""), 0xff) // IDs are [A-Za-z0-9_.-]: below 0xff
	it, err := l.store.NewIter(lower, upper)
	if err != nil {
		panic(fmt.Sprintf("ledger: in-flight marks: %v", err)) // the store failed
	}
	defer it.Close()
	for valid := it.First(); valid; valid = it.Next() {
		if !finished[string(it.Key()[len(lower):])] {
			return true
		}
	}
	if err := it.Error(); err != nil {
		panic(fmt.Sprintf("ledger: in-flight marks: %v", err))
	}
	return false
}

// crossHoldID is the ID of the hold a participant places on the wallet at index i of its
// wallets: ".x" keeps it apart from the holds of a transaction's hold operations.
func crossHoldID(transactionID string, i int) string {
	return "h" + transactionID[1:] + ".x" + strconv.Itoa(i)
}

// isCrossHold reports a hold placed by a cross-shard prepare: only its transaction's finish
// may resolve it.
func isCrossHold(holdID string) bool {
	i := strings.LastIndexByte(holdID, '.')
	return i >= 0 && i+1 < len(holdID) && holdID[i+1] == 'x'
}

// ---- coordinator ----

// crossBegin checks the reference like runTransaction, assigns the ID and records the pending
// transaction with its participants.
func (l *Ledger) crossBegin(c *CrossBegin) *fsm.Result {
	referenceID := c.ReferenceID
	if referenceID == "" && !c.CrossExtras.empty() && fsm.ValidID(c.IDPrefix, fsm.GeneratedIDMaxLength) {
		// A family's write (a capture, a hook: a GigPay claim or close) without the caller's
		// reference: the transaction's own ID, as CaptureHold (a reference of the family's
		// would be burnt by a failed attempt).
		referenceID = transactionID(c.IDPrefix, l.b.Peek(l.family.transactionSequence))
	}
	tc := &Transact{ProjectID: c.ProjectID, IDPrefix: c.IDPrefix, ReferenceID: referenceID, Operations: c.Operations}
	if r := validateTransaction(tc); r != nil {
		return r
	}
	if r := l.validateExtras(&c.CrossExtras, legsOf(c.Operations), nil); r != nil {
		return r
	}
	for i, op := range c.Operations {
		if op.Type == OperationHold {
			// A hold's ID carries its transaction's slot, the coordinator's: its capture and
			// release would route to a shard that does not hold it.
			return invalid("operation %d: a hold cannot be part of a cross-shard transaction", i)
		}
	}
	shardOf := make(map[string]int, len(c.Shards))
	for _, s := range c.Shards {
		if s.Shard < 0 || s.Shard >= keyspace.ShardCountMax {
			return invalid("wallet %q: shard %d out of range", s.WalletID, s.Shard)
		}
		if _, dup := shardOf[s.WalletID]; dup {
			return invalid("wallet %q is placed twice", s.WalletID)
		}
		shardOf[s.WalletID] = s.Shard
	}
	named := 0
	seen := make(map[string]bool, len(shardOf))
	for i, op := range c.Operations {
		for _, id := range []string{op.From, op.To} {
			if id == "" || seen[id] {
				continue
			}
			if _, ok := shardOf[id]; !ok {
				return invalid("operation %d: wallet %q has no shard", i, id)
			}
			seen[id] = true
			named++
		}
	}
	if named != len(shardOf) {
		return invalid("the shards name a wallet no operation names")
	}

	referenceKey := c.ProjectID + "\x00" + referenceID
	prior, err := l.transactionByReference(c.ProjectID, referenceID, referenceKey)
	if err != nil {
		panic(fmt.Sprintf("fsm: reference lookup: %v", err)) // a broken store
	}
	if prior != nil {
		x := l.crossOf(prior)
		if !sameOperations(prior.Operations, c.Operations) {
			return &fsm.Result{Err: rejectf(CodeReferenceIDMismatch,
				"reference id %q was used by transaction %s with different operations", referenceID, prior.ID), Value: x}
		}
		return &fsm.Result{Err: rejectf(CodeDuplicateReferenceID,
			"reference id %q was already used by transaction %s", referenceID, prior.ID), Value: x}
	}

	// Participants by shard, each with its wallets in order of first mention and its legs.
	var ps []CrossParticipant
	index := map[int]int{}
	for i, op := range c.Operations {
		touched := -1
		for _, id := range []string{op.From, op.To} {
			if id == "" {
				continue
			}
			s := shardOf[id]
			pi, ok := index[s]
			if !ok {
				pi = len(ps)
				index[s] = pi
				ps = append(ps, CrossParticipant{Shard: s})
			}
			p := &ps[pi]
			if !slices.Contains(p.Wallets, id) {
				p.Wallets = append(p.Wallets, id)
			}
			if touched != pi {
				p.Legs = append(p.Legs, CrossLeg{Index: i, Operation: op})
				touched = pi
			}
		}
	}
	slices.SortFunc(ps, func(a, b CrossParticipant) int { return cmp.Compare(a.Shard, b.Shard) })
	for i := range ps {
		ps[i].CrossExtras = extrasFor(&c.CrossExtras, c.Operations, ps[i].Wallets)
	}

	sequence := l.b.Next(l.family.transactionSequence)
	t := &Transaction{ID: transactionID(c.IDPrefix, sequence), ProjectID: c.ProjectID, ReferenceID: referenceID,
		Status: TransactionPending, Operations: c.Operations, CreatedAt: l.b.Now, Sequence: sequence,
		FailedOperationIndex: -1}
	x := &CrossTransaction{Transaction: t, Participants: ps}
	l.writeTransaction(t, false)
	l.set(key(prefixReference, t.ProjectID, t.ReferenceID), appendSequence(nil, t.Sequence))
	l.pendingReferences[referenceKey] = t
	l.putCross(x)
	l.crossBegun = append(l.crossBegun, CrossRef{ProjectID: t.ProjectID, Sequence: t.Sequence})
	return &fsm.Result{Value: x.copy()}
}

func (x *CrossTransaction) copy() *CrossTransaction {
	t := *x.Transaction
	return &CrossTransaction{Transaction: &t, Participants: x.Participants}
}

func (l *Ledger) putCross(x *CrossTransaction) {
	t := x.Transaction
	if x.Participants == nil {
		l.delete(crossKey(t.ProjectID, t.Sequence))
	} else {
		l.set(crossKey(t.ProjectID, t.Sequence), encodeCrossRecord(x.Participants))
	}
	l.pendingCross[t.ProjectID+"\x00"+t.ID] = x
}

// crossOf returns the cross-shard view of a transaction: its participants while it has any.
func (l *Ledger) crossOf(t *Transaction) *CrossTransaction {
	if x := l.pendingCross[t.ProjectID+"\x00"+t.ID]; x != nil {
		return x.copy()
	}
	v, err := l.get(crossKey(t.ProjectID, t.Sequence))
	if err != nil {
		panic(fmt.Sprintf("ledger: read cross-shard record: %v", err)) // the store failed
	}
	x := &CrossTransaction{Transaction: t}
	if v != nil {
		if x.Participants, err = decodeCrossRecord(v); err != nil {
			panic(fmt.Sprintf("ledger: transaction %s: %v", t.ID, err)) // corruption
		}
	}
	return x
}

// findCross returns a transaction of the coordinator with its participants.
func (l *Ledger) findCross(projectID, transactionID string) (*CrossTransaction, *fsm.Result) {
	if x := l.pendingCross[projectID+"\x00"+transactionID]; x != nil {
		return x, nil
	}
	missing := fail(rejectf(CodeTransactionNotFound, "transaction %q not found", transactionID))
	sequence, ok := transactionSequence(transactionID)
	if !ok {
		return nil, missing
	}
	v, err := l.transactionRecord(projectID, sequence)
	if err != nil {
		panic(fmt.Sprintf("ledger: read transaction: %v", err)) // the store failed
	}
	if v == nil {
		return nil, missing
	}
	t, err := decodeTransaction(v)
	if err != nil {
		panic(fmt.Sprintf("ledger: transaction %s: %v", transactionID, err)) // corruption
	}
	if t.ID != transactionID {
		return nil, missing
	}
	x := l.crossOf(t)
	l.pendingCross[projectID+"\x00"+transactionID] = x
	return x, nil
}

// crossDecide records completed when every participant prepared and every transfer's two
// wallets hold one asset, else failed with the failure the single-shard path would report.
// A decided transaction answers its decision again.
func (l *Ledger) crossDecide(c *CrossDecide) *fsm.Result {
	x, r := l.findCross(c.ProjectID, c.TransactionID)
	if r != nil {
		return r
	}
	t := x.Transaction
	if t.Status != TransactionPending {
		return &fsm.Result{Value: x.copy()}
	}
	votes := make(map[int]*CrossVote, len(c.Votes))
	for i := range c.Votes {
		sv := &c.Votes[i]
		if _, dup := votes[sv.Shard]; dup {
			return invalid("two votes of shard %d", sv.Shard)
		}
		if !slices.ContainsFunc(x.Participants, func(p CrossParticipant) bool { return p.Shard == sv.Shard }) {
			return invalid("shard %d is not a participant", sv.Shard)
		}
		votes[sv.Shard] = &sv.Vote
	}
	assets := map[string]string{}
	var failure crossFailure
	missing := false
	for _, p := range x.Participants {
		v := votes[p.Shard]
		if v == nil {
			missing = true
			continue
		}
		for _, a := range v.Assets {
			if !slices.Contains(p.Wallets, a.WalletID) {
				return invalid("shard %d reports wallet %q, not one of its wallets", p.Shard, a.WalletID)
			}
			assets[a.WalletID] = a.AssetID
		}
		if v.Prepared {
			for _, id := range p.Wallets {
				if _, ok := assets[id]; !ok {
					return invalid("shard %d prepared without the asset of wallet %q", p.Shard, id)
				}
			}
			continue
		}
		if v.FailedOperationIndex < -1 || v.FailedOperationIndex >= len(t.Operations) || v.FailureRank < 0 ||
			v.FailureRank >= rankCount || v.FailureReason == "" || !fsm.ValidText(string(v.FailureReason), fsm.NameMaxLength) ||
			!fsm.ValidText(v.FailureMessage, fsm.DescriptionMaxLength) {
			return invalid("shard %d: malformed vote", p.Shard)
		}
		failure.keep(v.failure())
	}
	for i, op := range t.Operations {
		if op.Type != OperationTransfer {
			continue
		}
		from, fok := assets[op.From]
		to, tok := assets[op.To]
		if fok && tok && from != to {
			failure.keep(crossFailure{index: i, rank: rankAssetMismatch, reason: CodeAssetMismatch,
				message: fmt.Sprintf("operation %d: wallet %q holds %q and wallet %q holds %q", i, op.From, from, op.To, to)})
		}
	}
	switch {
	case failure.set:
		t.Status = TransactionFailed
		t.FailedOperationIndex = failure.index
		t.FailureReason = failure.reason
		t.FailureMessage = failure.message
	case missing:
		t.Status = TransactionFailed
		t.FailedOperationIndex = -1
		t.FailureReason = CodeParticipantUnavailable
		t.FailureMessage = "a participant did not vote in time"
	default:
		t.Status = TransactionCompleted
	}
	l.writeTransaction(t, true)
	l.putCross(x)
	return &fsm.Result{Value: x.copy()}
}

// crossDone drops the participants of a decided transaction and emits its event.
func (l *Ledger) crossDone(c *CrossDone) *fsm.Result {
	x, r := l.findCross(c.ProjectID, c.TransactionID)
	if r != nil {
		return r
	}
	if x.Transaction.Status == TransactionPending {
		return fail(rejectf(CodeInvalidArgument, "transaction %q is not decided", c.TransactionID))
	}
	if x.Participants != nil {
		x.Participants = nil
		l.putCross(x)
		l.emitTransaction(x.Transaction)
		l.crossEnded = append(l.crossEnded, x.Transaction.ProjectID+"\x00"+x.Transaction.ID)
	}
	return &fsm.Result{Value: x.copy()}
}

// ---- participant ----

func (l *Ledger) findParticipation(projectID, transactionID string) *Participation {
	if p := l.pendingParticipations[projectID+"\x00"+transactionID]; p != nil {
		return p
	}
	v, err := l.get(participationKey(projectID, transactionID))
	if err != nil {
		panic(fmt.Sprintf("ledger: read participation: %v", err)) // the store failed
	}
	if v == nil {
		return nil
	}
	p, err := decodeParticipation(v)
	if err != nil {
		panic(fmt.Sprintf("ledger: participation %s: %v", transactionID, err)) // corruption
	}
	return p
}

func (l *Ledger) putParticipation(p *Participation) {
	l.set(participationKey(p.ProjectID, p.TransactionID), record(p))
	l.pendingParticipations[p.ProjectID+"\x00"+p.TransactionID] = p
}

func (p *Participation) copy() *Participation {
	out := *p
	return &out
}

func validateCrossID(projectID, transactionID string) *fsm.Result {
	if !fsm.ValidID(transactionID, fsm.GeneratedIDMaxLength) {
		return invalid("transaction id must be 1..%d of [A-Za-z0-9_.-]", fsm.GeneratedIDMaxLength)
	}
	if !fsm.ValidID(projectID, fsm.IDMaxLength) {
		return invalid("project id must be 1..%d of [A-Za-z0-9_.-]", fsm.IDMaxLength)
	}
	return nil
}

// validateLegs checks a prepare's legs: in increasing operation order, each a valid operation
// (no hold) naming at least one of the participant's wallets.
func validateLegs(wallets []string, legs []CrossLeg) *fsm.Result {
	if len(wallets) == 0 || len(wallets) > 2*fsm.OperationsMaxCount {
		return invalid("a participant has 1..%d wallets", 2*fsm.OperationsMaxCount)
	}
	for i, id := range wallets {
		if id == "" || slices.Contains(wallets[:i], id) {
			return invalid("wallet %q: empty or named twice", id)
		}
	}
	if len(legs) == 0 || len(legs) > fsm.OperationsMaxCount {
		return invalid("a participant has 1..%d legs", fsm.OperationsMaxCount)
	}
	ops := make([]Operation, len(legs))
	for i, leg := range legs {
		if leg.Index < 0 || leg.Index >= fsm.OperationsMaxCount || (i > 0 && leg.Index <= legs[i-1].Index) {
			return invalid("leg %d: operation indexes must increase within 0..%d", i, fsm.OperationsMaxCount-1)
		}
		if leg.Operation.Type == OperationHold {
			return invalid("leg %d: a hold cannot be part of a cross-shard transaction", i)
		}
		if !slices.Contains(wallets, leg.Operation.From) && !slices.Contains(wallets, leg.Operation.To) {
			return invalid("leg %d names none of the participant's wallets", i)
		}
		ops[i] = leg.Operation
	}
	return validateTransaction(&Transact{IDPrefix: "t", ReferenceID: "r", Operations: ops})
}

// crossPrepare votes: every wallet found, then the legs walked in operation order from each
// wallet's balance (its other holds excluded), the transaction's own earlier credits counted.
// Prepared: one hold per wallet of its maximum drawdown. A participant that voted answers its
// vote again; one that finished refuses.
func (l *Ledger) crossPrepare(c *CrossPrepare) *fsm.Result {
	if r := validateCrossID(c.ProjectID, c.TransactionID); r != nil {
		return r
	}
	if r := validateLegs(c.Wallets, c.Legs); r != nil {
		return r
	}
	if r := l.validateExtras(&c.CrossExtras, c.Legs, c.Wallets); r != nil {
		return r
	}
	if p := l.findParticipation(c.ProjectID, c.TransactionID); p != nil {
		switch p.Status {
		case ParticipationPrepared, ParticipationRefused:
			return &fsm.Result{Value: p.copy()}
		}
		// Finished (or a tombstone): the decision is made; a late prepare holds nothing.
		out := p.copy()
		out.Vote = CrossVote{FailedOperationIndex: -1, FailureRank: rankFromUnusable, FailureReason: CodeCrossShardFinished,
			FailureMessage: fmt.Sprintf("transaction %q is %s on this shard", c.TransactionID, p.Status)}
		return &fsm.Result{Err: rejectf(CodeCrossShardFinished, "%s", out.Vote.FailureMessage), Value: out}
	}
	if r := l.prepareTooLate(c); r != nil {
		return r
	}
	p := &Participation{ProjectID: c.ProjectID, TransactionID: c.TransactionID, Wallets: c.Wallets, Legs: c.Legs,
		CreatedAt: l.b.Now, CrossExtras: c.CrossExtras}
	local := func(id string) int { return slices.Index(c.Wallets, id) }

	// First the family's record (a hook) and the captured holds, as the single-shard ops
	// check them before their transaction runs.
	var failure crossFailure
	hook, hookContext := l.hookContext(p)
	if hook != nil {
		if err := hook.Check(l.b, hookContext); err != nil {
			failure.keep(crossFailure{index: firstLegNaming(c.Legs, c.Hook.Anchor), rank: rankPrior, reason: err.Code,
				message: err.Message, set: true})
		}
	}
	captured := make([]*Hold, len(c.Wallets)) // per wallet: the hold its one leg captures
	for _, capture := range c.Captures {
		leg := c.Legs[slices.IndexFunc(c.Legs, func(leg CrossLeg) bool { return leg.Index == capture.Index })]
		h, f := l.checkCapture(c.ProjectID, c.TransactionID, capture, leg.Operation)
		if f.set {
			failure.keep(f)
			continue
		}
		captured[local(leg.Operation.From)] = h
	}

	// Structural: every wallet of the participant exists in the project.
	wallets := make([]touchedWallet, len(c.Wallets))
	for i, id := range c.Wallets {
		w, r := l.findWallet(c.ProjectID, id)
		if r != nil {
			for _, leg := range c.Legs {
				if leg.Operation.From == id {
					failure.keep(crossFailure{index: leg.Index, rank: rankFromMissing, reason: r.Err.Code, message: r.Err.Message})
					break
				}
				if leg.Operation.To == id {
					failure.keep(crossFailure{index: leg.Index, rank: rankToMissing, reason: r.Err.Code, message: r.Err.Message})
					break
				}
			}
			continue
		}
		p.Vote.Assets = append(p.Vote.Assets, WalletAsset{WalletID: id, AssetID: w.AssetID})
		wallets[i] = touchedWallet{wallet: w, balance: w.Balance, held: w.Held, startBalance: w.Balance}
		if h := captured[i]; h != nil {
			// The capture pays from the hold: its amount is the leg's to spend.
			wallets[i].held = mustSub(w.Held, h.Amount)
		}
	}
	// A transfer between two of its wallets must stay within one asset (the coordinator checks
	// the transfers across shards from the votes' assets).
	for _, leg := range c.Legs {
		from, to := local(leg.Operation.From), local(leg.Operation.To)
		if leg.Operation.From == "" || leg.Operation.To == "" || from < 0 || to < 0 || wallets[from].wallet == nil || wallets[to].wallet == nil {
			continue
		}
		if fa, ta := wallets[from].wallet.AssetID, wallets[to].wallet.AssetID; fa != ta {
			failure.keep(crossFailure{index: leg.Index, rank: rankAssetMismatch, reason: CodeAssetMismatch,
				message: fmt.Sprintf("operation %d: wallet %q holds %q and wallet %q holds %q", leg.Index, leg.Operation.From, fa, leg.Operation.To, ta)})
		}
	}
	if !failure.set {
		failure = l.walkLegs(c.Legs, wallets, local)
	}
	if failure.set {
		p.Status = ParticipationRefused
		p.Vote.FailedOperationIndex = failure.index
		p.Vote.FailureRank = failure.rank
		p.Vote.FailureReason = failure.reason
		p.Vote.FailureMessage = failure.message
		l.putParticipation(p)
		return &fsm.Result{Value: p.copy()}
	}
	// Hold each wallet's maximum drawdown: the walk kept the lowest running balance.
	p.Status = ParticipationPrepared
	p.Vote.Prepared = true
	p.Vote.FailedOperationIndex = -1
	p.HoldIDs = make([]string, len(wallets))
	for i := range wallets {
		tw := &wallets[i]
		drawdown := mustSub(tw.startBalance, tw.lastPosted) // lastPosted: the walk's lowest balance
		if drawdown.IsZero() || captured[i] != nil {        // a captured hold covers its wallet's one leg
			continue
		}
		w := tw.wallet
		w.Held = mustAdd(w.Held, drawdown) // the walk checked balance − held ≥ the drawdown
		l.putWallet(w)
		h := &Hold{ID: crossHoldID(c.TransactionID, i), ProjectID: c.ProjectID, WalletID: w.ID, Amount: drawdown,
			Status: HoldActive, TransactionID: c.TransactionID, CreatedAt: l.b.Now}
		l.putHold(h)
		p.HoldIDs[i] = h.ID
	}
	l.takeCaptures(p)
	l.markInFlight(p, true)
	if hook != nil {
		hook.Prepared(l.b, hookContext)
	}
	l.putParticipation(p)
	return &fsm.Result{Value: p.copy()}
}

// walkLegs runs the participant's side of the legs on working balances, in operation order,
// and answers the first failure. Each wallet's lowest running balance is left in lastPosted.
func (l *Ledger) walkLegs(legs []CrossLeg, wallets []touchedWallet, local func(string) int) crossFailure {
	for i := range wallets {
		wallets[i].lastPosted = wallets[i].balance
	}
	supply := map[string]Amount{}
	supplyOf := func(w *Wallet) Amount {
		if s, ok := supply[w.AssetID]; ok {
			return s
		}
		as := l.assets[assetKey(w.ProjectID, w.AssetID)]
		if as == nil {
			panic(fmt.Sprintf("fsm: wallet uses missing asset %q", w.AssetID)) // corruption
		}
		return as.Supply
	}
	fails := func(index, rank int, code fsm.ErrorCode, format string, args ...any) crossFailure {
		err := rejectf(code, format, args...)
		return crossFailure{index: index, rank: rank, reason: err.Code, message: err.Message, set: true}
	}
	for _, leg := range legs {
		op, i := leg.Operation, leg.Index
		from, to := -1, -1
		if op.From != "" {
			from = local(op.From)
		}
		if op.To != "" {
			to = local(op.To)
		}
		if from >= 0 {
			if e := l.checkUsable(wallets, from); e != nil {
				return fails(i, rankFromUnusable, e.Code, "%s", e.Message)
			}
		}
		if to >= 0 {
			if e := l.checkUsable(wallets, to); e != nil {
				return fails(i, rankToUnusable, e.Code, "%s", e.Message)
			}
		}
		if from >= 0 {
			fw := &wallets[from]
			available := mustSub(fw.balance, fw.held)
			if available.Cmp(op.Amount) < 0 {
				return fails(i, rankFunds, CodeInsufficientFunds, "operation %d: wallet %q has %s available, needs %s",
					i, fw.wallet.ID, available, op.Amount)
			}
			fw.balance = mustSub(fw.balance, op.Amount)
			if fw.balance.Cmp(fw.lastPosted) < 0 {
				fw.lastPosted = fw.balance
			}
			if to < 0 { // value leaves the shard (a redeem, or a transfer to another shard)
				w := fw.wallet
				supply[w.AssetID] = mustSub(supplyOf(w), op.Amount)
			}
		}
		if to >= 0 {
			tw := &wallets[to]
			if from < 0 { // value enters the shard (an issue, or a transfer from another shard)
				s, err := supplyOf(tw.wallet).Add(op.Amount)
				if err != nil {
					return fails(i, rankSupply, CodeBalanceOverflow, "operation %d: %s overflows the asset supply", i, op.Amount)
				}
				supply[tw.wallet.AssetID] = s
			}
			b, err := tw.balance.Add(op.Amount)
			if err != nil {
				return fails(i, rankToOverflow, CodeBalanceOverflow, "operation %d: wallet %q balance would overflow", i, tw.wallet.ID)
			}
			tw.balance = b
		}
	}
	return crossFailure{}
}

// crossFinish applies the decision: completed releases the holds and posts the legs as entries
// of the transaction, moving the shard's supply with the value that enters or leaves it;
// failed releases the holds; a participant that never prepared records a tombstone. A finished
// participant answers its record again.
func (l *Ledger) crossFinish(c *CrossFinish) *fsm.Result {
	if r := validateCrossID(c.ProjectID, c.TransactionID); r != nil {
		return r
	}
	if c.Status != TransactionCompleted && c.Status != TransactionFailed {
		return invalid("a decision is completed or failed")
	}
	if len(c.Wallets) == 0 || len(c.Wallets) > 2*fsm.OperationsMaxCount {
		return invalid("a participant has 1..%d wallets", 2*fsm.OperationsMaxCount)
	}
	for _, id := range c.Wallets {
		if !fsm.ValidID(id, fsm.GeneratedIDMaxLength) {
			return invalid("wallet id must be 1..%d of [A-Za-z0-9_.-]", fsm.GeneratedIDMaxLength)
		}
	}
	p := l.findParticipation(c.ProjectID, c.TransactionID)
	if p == nil {
		if r := l.finishTrimmed(c); r != nil {
			return r
		}
		if c.Status == TransactionCompleted {
			// A completed decision needs this participant's prepared vote: the finish went to
			// the wrong shard, or a bug decided without it. A tombstone would lose the legs.
			return fail(rejectf(CodeInvalidArgument, "transaction %q never prepared on this shard", c.TransactionID))
		}
		p = &Participation{ProjectID: c.ProjectID, TransactionID: c.TransactionID, Status: ParticipationTombstone,
			Wallets: c.Wallets, Vote: CrossVote{FailedOperationIndex: -1}, CreatedAt: l.b.Now}
		l.finishParticipation(p)
		return &fsm.Result{Value: p.copy()}
	}
	switch {
	case p.Status == ParticipationCommitted && c.Status == TransactionCompleted,
		(p.Status == ParticipationReleased || p.Status == ParticipationTombstone) && c.Status == TransactionFailed:
		return &fsm.Result{Value: p.copy()}
	case p.Status != ParticipationPrepared && !(p.Status == ParticipationRefused && c.Status == TransactionFailed):
		return fail(rejectf(CodeInvalidArgument, "transaction %q is %s here; the decision says %s", c.TransactionID, p.Status, c.Status))
	}
	if c.Status == TransactionFailed {
		prepared := p.Status == ParticipationPrepared
		if prepared {
			l.markInFlight(p, false)
			l.returnCaptures(p)
		}
		l.releaseCrossHolds(p)
		p.Status = ParticipationReleased
		l.finishParticipation(p)
		if hook, hc := l.hookContext(p); hook != nil && prepared {
			hook.Finished(l.b, hc, false)
		}
		return &fsm.Result{Value: p.copy()}
	}
	if r := l.commitLegs(p); r != nil {
		return r // still prepared: the driver retries
	}
	l.markInFlight(p, false)
	p.Status = ParticipationCommitted
	l.finishParticipation(p)
	if hook, hc := l.hookContext(p); hook != nil {
		hook.Finished(l.b, hc, true)
	}
	return &fsm.Result{Value: p.copy()}
}

// releaseCrossHolds releases a participant's holds.
func (l *Ledger) releaseCrossHolds(p *Participation) { l.endCrossHolds(p, HoldReleased) }

// endCrossHolds resolves a participant's holds without events (they are the protocol's, not a
// client's): released, or captured by the transaction's commit.
func (l *Ledger) endCrossHolds(p *Participation, status HoldStatus) {
	for _, id := range p.HoldIDs {
		if id == "" {
			continue
		}
		h, r := l.findHold(p.ProjectID, id)
		if r != nil || h.Status != HoldActive {
			panic(fmt.Sprintf("ledger: participation %s names hold %s that is not active", p.TransactionID, id)) // corruption
		}
		w := l.wallet(h.WalletID)
		if w == nil {
			panic(fmt.Sprintf("ledger: hold %s names missing wallet %s", h.ID, h.WalletID)) // corruption
		}
		w.Held = mustSub(w.Held, h.Amount)
		l.putWallet(w)
		h.Status = status
		if status == HoldCaptured {
			h.CapturedAmount = h.Amount
			h.CaptureTransactionID = p.TransactionID
		}
		h.ResolvedAt = l.b.Now
		l.putHold(h)
	}
}

// commitLegs posts the participant's legs. It runs them first on working balances with checked
// arithmetic: the holds make a debit unable to fail, but a credit could overflow a balance or
// the shard's supply that other transactions raised since the prepare (2^128−1: adversarial
// only). Then nothing changes, the holds stay and the finish is answered with the rejection,
// for the driver to retry: no partial transaction, and no input crashes the node.
func (l *Ledger) commitLegs(p *Participation) *fsm.Result {
	wallets := make([]touchedWallet, len(p.Wallets))
	heldBack := make([]Amount, len(p.Wallets)) // this transaction's hold per wallet
	var assets []touchedAsset
	assetIndex := func(w *Wallet) int {
		for i := range assets {
			if assets[i].asset.ID == w.AssetID {
				return i
			}
		}
		as := l.assets[assetKey(w.ProjectID, w.AssetID)]
		if as == nil {
			panic(fmt.Sprintf("fsm: wallet uses missing asset %q", w.AssetID)) // corruption
		}
		assets = append(assets, touchedAsset{asset: as, supply: as.Supply})
		return len(assets) - 1
	}
	for i, id := range p.Wallets {
		w := l.wallet(id)
		if w == nil {
			panic(fmt.Sprintf("ledger: prepared participation %s names missing wallet %s", p.TransactionID, id)) // corruption
		}
		if i < len(p.HoldIDs) && p.HoldIDs[i] != "" {
			h, r := l.findHold(p.ProjectID, p.HoldIDs[i])
			if r != nil || h.Status != HoldActive {
				panic(fmt.Sprintf("ledger: participation %s names hold %s that is not active", p.TransactionID, p.HoldIDs[i])) // corruption
			}
			heldBack[i] = h.Amount
		}
		for _, capture := range p.Captures {
			if h := l.capturedHold(p, capture); h.WalletID == id {
				heldBack[i] = mustAdd(heldBack[i], h.Amount)
			}
		}
		wallets[i] = touchedWallet{wallet: w, balance: w.Balance, held: mustSub(w.Held, heldBack[i]),
			startBalance: w.Balance, entryCount: w.EntryCount}
	}
	stuck := func(format string, args ...any) *fsm.Result {
		return &fsm.Result{Err: rejectf(CodeBalanceOverflow, format, args...), Value: p.copy()}
	}
	type posting struct {
		wallet int
		kind   EntryType
		index  int
		amount Amount
	}
	postings := make([]posting, 0, 2*len(p.Legs))
	for _, leg := range p.Legs {
		op := leg.Operation
		from, to := slices.Index(p.Wallets, op.From), slices.Index(p.Wallets, op.To)
		if op.From == "" {
			from = -1
		}
		if op.To == "" {
			to = -1
		}
		if from >= 0 {
			fw := &wallets[from]
			b, err := fw.balance.Sub(op.Amount)
			if err != nil || b.Cmp(fw.held) < 0 {
				return stuck("operation %d: wallet %q cannot pay %s", leg.Index, fw.wallet.ID, op.Amount)
			}
			fw.balance = b
			kind := EntryDebit
			if op.Type == OperationRedeem {
				kind = EntryRedeem
			}
			postings = append(postings, posting{from, kind, leg.Index, op.Amount})
			if to < 0 {
				a := &assets[assetIndex(fw.wallet)]
				s, err := a.supply.Sub(op.Amount)
				if err != nil {
					return stuck("operation %d: the shard's supply of %q is below %s", leg.Index, a.asset.ID, op.Amount)
				}
				a.supply = s
			}
		}
		if to >= 0 {
			tw := &wallets[to]
			b, err := tw.balance.Add(op.Amount)
			if err != nil {
				return stuck("operation %d: wallet %q balance would overflow", leg.Index, tw.wallet.ID)
			}
			tw.balance = b
			kind := EntryCredit
			if op.Type == OperationIssue {
				kind = EntryIssue
			}
			postings = append(postings, posting{to, kind, leg.Index, op.Amount})
			if from < 0 {
				a := &assets[assetIndex(tw.wallet)]
				s, err := a.supply.Add(op.Amount)
				if err != nil {
					return stuck("operation %d: %s overflows the shard's supply of %q", leg.Index, op.Amount, a.asset.ID)
				}
				a.supply = s
			}
		}
	}
	// Every leg fits: capture the holds, post the entries, write the balances and supplies.
	l.endCrossHolds(p, HoldCaptured)
	l.finishCaptures(p)
	t := &Transaction{ID: p.TransactionID, ProjectID: p.ProjectID, CreatedAt: l.b.Now}
	for _, ps := range postings {
		l.postEntry(t, ps.index, &wallets[ps.wallet], ps.kind, ps.amount)
	}
	for i := range wallets {
		tw := &wallets[i]
		w := tw.wallet
		w.Balance = tw.balance
		w.EntryCount = tw.entryCount
		// Corruption only: the walk above kept every balance at or above its other holds.
		if w.Held.Cmp(w.Balance) > 0 {
			panic(fmt.Sprintf("fsm: transaction %s left wallet %s with held > balance", t.ID, w.ID))
		}
		l.putWallet(w)
	}
	for i := range assets {
		if assets[i].asset.Supply != assets[i].supply {
			assets[i].asset.Supply = assets[i].supply
			l.putAsset(assets[i].asset)
		}
	}
	return nil
}

// AssetRef names an asset of a project.
type AssetRef struct{ ProjectID, AssetID string }

// SupplyAcross sums each asset's supply over the ledgers of several shards: with cross-shard
// transactions a shard's supply is the sum of its own wallets' balances, and the asset's
// supply is the sum over the shards (issued − redeemed, at a quiescent point). For tests and
// the fault suite's conservation check.
func SupplyAcross(ledgers ...*Ledger) (map[AssetRef]Amount, error) {
	sums := map[AssetRef]wideSum{}
	for _, l := range ledgers {
		err := l.read(func() error {
			return l.store.Scan([]byte{prefixAsset}, func(k, v []byte) error {
				a, err := decodeAsset(v)
				if err != nil {
					return err
				}
				ref := AssetRef{a.ProjectID, a.ID}
				s := sums[ref]
				s.add(a.Supply)
				sums[ref] = s
				return nil
			})
		})
		if err != nil {
			return nil, err
		}
	}
	out := make(map[AssetRef]Amount, len(sums))
	for ref, s := range sums {
		if s.top != 0 {
			return nil, fmt.Errorf("asset %s/%s: supplies sum to %s, past 2^128−1", ref.ProjectID, ref.AssetID, s)
		}
		out[ref] = s.low
	}
	return out, nil
}
