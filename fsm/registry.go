package fsm

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Op identifies a registered operation. The values are in the Raft log: a family owns a range
// (see DESIGN.md), adds codes at the end of it, and never reuses one.
type Op uint16

// Command is one state change proposed to a shard, declared by its family: a typed value that
// knows its operation, its binary form and where it lives.
type Command interface {
	// Op is the command's registered operation.
	Op() Op
	// Encode appends the command's fields (the payload, without the envelope).
	Encode(e *Encoder)
	// Route names the data the command changes, which decides its shard.
	Route() Route
}

// Route says which shard a command or a read belongs to. The router hashes it (cluster/keyspace)
// and needs nothing else: Metadata → the metadata shard; otherwise the shard of the IDs (which
// carry their slot) when there are any, all of which must live on one shard; otherwise the slot
// of (ProjectID, OwnerID).
type Route struct {
	Metadata  bool
	Pinned    bool // proposed by a node to a shard it names (outbox acks), never routed
	ProjectID string
	OwnerID   string   // the customer or account that owns the data; "" = the project itself
	IDs       []string // generated IDs that carry a slot (wallets, transactions, holds)
}

// IsZero reports a route that names nothing: a command must never have one.
func (r Route) IsZero() bool {
	return !r.Metadata && !r.Pinned && r.ProjectID == "" && r.OwnerID == "" && len(r.IDs) == 0
}

// Value is what a successful (or a recorded failed) command gives back: an entity of its
// family, encoded for the trip from the leader to a forwarding node.
type Value interface {
	Encode(e *Encoder)
}

// Result is what applying one command gives its proposer: a business rejection (Err), an
// entity (Value), or both (a failed transaction is recorded and returned with its reason).
type Result struct {
	Op    Op
	Err   *Error
	Value Value
	// Replayed says the result is the stored answer to an earlier command with the same
	// idempotency key: this command changed nothing.
	Replayed bool
}

// Fail is a result that carries only a rejection.
func Fail(err *Error) *Result { return &Result{Err: err} }

// OpSpec declares one operation, once, in its family.
type OpSpec struct {
	Op   Op
	Name string
	// Decode reads the payload Command.Encode wrote; errors go to the decoder.
	Decode func(d *Decoder) Command
	// Apply runs the command in the batch. It returns business rejections as results and
	// panics only on corruption that no request can cause.
	Apply func(b *Batch, c Command) *Result
	// DecodeValue reads the Value that Apply returns; nil when results carry no value.
	DecodeValue func(d *Decoder) Value
	// Example is a valid command of this op, for the registry's tests (codec round trip, a
	// non-empty route).
	Example Command
	// Urgent marks a step of a chain of proposals that its proposer waits on one after the
	// other (a cross-shard transaction's protocol, a batch request's waves): group commit
	// never holds it for more commands (Registry.Urgent, shard.Config.Urgent).
	Urgent bool
}

// Registry is the append-only table of operations and the store's key prefixes. cmd/ composes
// one from the kernel and every family; every replica of a cluster must compose the same.
type Registry struct {
	// specs are the ops by code, nil where none is registered: a slice, because apply looks
	// every command's op up twice (decode, apply), and a map's hashing showed in its profile.
	specs    []*OpSpec
	prefixes map[byte]string
	// history marks the prefixes whose writes the history chain records (MarkHistory).
	history [256]bool
	// chainPosition marks the prefixes DigestWithoutHistoryChain leaves out with the chain
	// (MarkChainPosition).
	chainPosition [256]bool
	counters      []string
	legacy        func(data []byte) (Command, error)
	modules       []func(s *Store) Module
	// outboxRetention is how many events a shard keeps (OutboxRetention).
	outboxRetention uint64
}

// NewRegistry returns a registry holding the kernel's own operations and key prefixes.
func NewRegistry() *Registry {
	r := &Registry{prefixes: map[byte]string{}, outboxRetention: OutboxRetention}
	r.ClaimPrefix(prefixMeta, "kernel: bookkeeping")
	registerOutbox(r)
	registerTick(r)
	registerDeadLetters(r)
	registerRedrives(r)
	registerSubscriptions(r)
	registerIdempotency(r)
	registerHistoryChain(r)
	registerRules(r)
	return r
}

// Add registers an operation. Registering an op code twice, or without a decoder, an apply, a
// name or an example, is a programming error and panics at startup.
func (r *Registry) Add(spec OpSpec) {
	switch {
	case spec.Op == 0 || spec.Name == "" || spec.Decode == nil || spec.Apply == nil || spec.Example == nil:
		panic(fmt.Sprintf("fsm: incomplete op spec %d %q", spec.Op, spec.Name))
	case r.specOf(spec.Op) != nil:
		panic(fmt.Sprintf("fsm: op %d registered twice (%s, %s)", spec.Op, r.specOf(spec.Op).Name, spec.Name))
	case spec.Example.Op() != spec.Op:
		panic(fmt.Sprintf("fsm: op %s: example is op %d", spec.Name, spec.Example.Op()))
	}
	if int(spec.Op) >= len(r.specs) {
		r.specs = append(r.specs, make([]*OpSpec, int(spec.Op)+1-len(r.specs))...)
	}
	r.specs[spec.Op] = &spec
}

// specOf is op's declaration, nil when none is registered.
func (r *Registry) specOf(op Op) *OpSpec {
	if int(op) < len(r.specs) {
		return r.specs[op]
	}
	return nil
}

// ClaimPrefix reserves a store key prefix byte for its owner; two owners of one prefix panic at
// startup.
func (r *Registry) ClaimPrefix(prefix byte, owner string) {
	if prev, ok := r.prefixes[prefix]; ok {
		panic(fmt.Sprintf("fsm: key prefix %q claimed by %s and %s", prefix, prev, owner))
	}
	r.prefixes[prefix] = owner
}

// MarkHistory marks a claimed prefix as history: records that are appended and never rewritten
// or deleted in the normal course (a ledger's entries), or rewritten only as their own state
// advances (a transaction's status). The history chain records every write under it (chain.go).
// Marking is replicated state like the prefixes: every replica must mark the same.
func (r *Registry) MarkHistory(prefix byte) {
	if _, ok := r.prefixes[prefix]; !ok {
		panic(fmt.Sprintf("fsm: history prefix %q is not claimed", prefix))
	}
	r.history[prefix] = true
}

// MarkChainPosition marks a claimed prefix whose records say where in the history chain a
// family's state stands (the ledger's wallet epoch: a log index). Like the chain's own records
// they depend on the batch the chain started in, so DigestWithoutHistoryChain leaves them out.
func (r *Registry) MarkChainPosition(prefix byte) {
	if _, ok := r.prefixes[prefix]; !ok {
		panic(fmt.Sprintf("fsm: chain position prefix %q is not claimed", prefix))
	}
	r.chainPosition[prefix] = true
}

// rangeHasHistory reports whether [start, end) may hold a key of a history prefix.
func (r *Registry) rangeHasHistory(start, end []byte) bool {
	first, last := 0, 255
	if len(start) > 0 {
		first = int(start[0])
	}
	if len(end) > 0 {
		last = int(end[0])
	}
	for p := first; p <= last; p++ {
		if r.history[p] {
			return true
		}
	}
	return false
}

// Counter registers a replicated sequence that a family draws from in apply (Batch.Next).
// Counters are stored in registration order: a family registers its counters once, at the end.
func (r *Registry) Counter(name string) Counter {
	r.counters = append(r.counters, name)
	return Counter(len(r.counters) - 1)
}

// Counter names a replicated sequence.
type Counter int

// SetLegacyDecoder installs the decoder of version-1 commands (the flat command of the first
// release), so that a log written by it replays.
func (r *Registry) SetLegacyDecoder(decode func(data []byte) (Command, error)) { r.legacy = decode }

// ModuleID names a family's per-shard state inside a Machine.
type ModuleID int

// AddModule registers a family's per-shard state: every Machine calls newModule once at open,
// loads the module from the store at open and after a restore, and calls its EndBatch at the
// end of each batch, in registration order. Apply finds it with Batch.Module.
func (r *Registry) AddModule(newModule func(s *Store) Module) ModuleID {
	r.modules = append(r.modules, newModule)
	return ModuleID(len(r.modules) - 1)
}

// SetOutboxRetention sets how many outbox events a shard keeps. Every replica must use the same
// value: the trimming is part of the replicated state. Tests use small values.
func (r *Registry) SetOutboxRetention(events uint64) { r.outboxRetention = max(events, 1) }

// Spec returns an op's declaration.
func (r *Registry) Spec(op Op) (*OpSpec, bool) {
	s := r.specOf(op)
	return s, s != nil
}

// Specs returns every registered op, by code.
func (r *Registry) Specs() []*OpSpec {
	var out []*OpSpec
	for _, s := range r.specs {
		if s != nil {
			out = append(out, s)
		}
	}
	return out
}

// Urgent reports whether an encoded command is of an op marked Urgent, reading only its
// envelope's version and op code; anything else (the first release's envelope, a malformed or
// unknown command) is not urgent. shard.Config.Urgent.
func (r *Registry) Urgent(command []byte) bool {
	if len(command) < 2 || command[0] != envelopeVersion {
		return false
	}
	op, n := binary.Uvarint(command[1:])
	if n <= 0 || op > math.MaxUint16 {
		return false
	}
	spec := r.specOf(Op(op))
	return spec != nil && spec.Urgent
}

// OpName names an op for logs and errors.
func (r *Registry) OpName(op Op) string {
	if s := r.specOf(op); s != nil {
		return s.Name
	}
	return fmt.Sprintf("Op(%d)", op)
}
