package fsm

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Idempotency makes any command safe to retry (Stripe's Idempotency-Key semantics): the first
// command with a key applies and its result is stored with the request's hash; a later command
// with the same key and the same hash changes nothing and answers the stored result (Replayed);
// with a different hash it is refused with IdempotencyKeyMismatch. Keys are scoped (the proposer
// uses the project), kept for IdempotencyRetentionMs of batch time, and replicated like every
// other record, so a retry through another node or after a leader change finds them.
//
// A key lives on the shard of the command it came with. A retry of the same request routes to
// the same shard; a different request under the same key may route elsewhere and is then not
// recognised as a mismatch.
//
//	i {scope} 0 {key}           → time, request hash, encoded result
//	I {time} {scope} 0 {key}    → (empty) expiry index
type Idempotency struct {
	Scope       string
	Key         string
	RequestHash [32]byte // the proposer's hash of what the request asks (method, path, body)
}

const (
	prefixIdempotency       = 'i'
	prefixIdempotencyExpiry = 'I'

	// IdempotencyRetentionMs is how long a key is remembered: 24 hours of batch time.
	IdempotencyRetentionMs = 24 * 60 * 60 * 1000
	// IdempotencyKeyMaxLength bounds a key (Stripe allows 255 characters).
	IdempotencyKeyMaxLength = 255
	// idempotencyExpiriesPerBatch bounds the work one batch spends forgetting old keys.
	idempotencyExpiriesPerBatch = 1000
)

func (i *Idempotency) encode(e *Encoder) {
	e.String(i.Scope)
	e.String(i.Key)
	e.Bytes(i.RequestHash[:])
}

func decodeIdempotency(d *Decoder) *Idempotency {
	i := &Idempotency{Scope: d.String(), Key: d.String()}
	if h := d.Bytes(); len(h) == len(i.RequestHash) {
		copy(i.RequestHash[:], h)
	} else {
		d.Fail(fmt.Errorf("idempotency: hash of %d bytes", len(h)))
	}
	return i
}

type idempotencyState struct {
	pending map[string][]byte // records written in the batch being applied
	// oldestMs is the time of the oldest stored key (0: none), so that a batch looks for
	// expired keys only when there are some.
	oldestMs int64
}

func (s *idempotencyState) load(store *Store) error {
	s.pending = map[string][]byte{}
	s.oldestMs = 0
	return s.readOldest(store)
}

// readOldest reads the time of the oldest key from the expiry index.
func (s *idempotencyState) readOldest(store *Store) error {
	it, err := store.NewIter([]byte{prefixIdempotencyExpiry}, []byte{prefixIdempotencyExpiry + 1})
	if err != nil {
		return err
	}
	s.oldestMs = 0
	if it.First() {
		s.oldestMs = int64(binary.BigEndian.Uint64(it.Key()[1:9]))
	}
	if err := it.Error(); err != nil {
		it.Close()
		return err
	}
	return it.Close()
}

type idempotencyRecord struct {
	time   int64
	hash   []byte
	result []byte
}

func encodeIdempotencyRecord(r idempotencyRecord) []byte {
	e := Encoder{}
	e.Byte(1)
	e.Varint(r.time)
	e.Bytes(r.hash)
	e.Bytes(r.result)
	return e.Buf
}

func decodeIdempotencyRecord(data []byte) (idempotencyRecord, error) {
	d := NewDecoder(data)
	if v := d.Byte(); d.err == nil && v != 1 {
		return idempotencyRecord{}, fmt.Errorf("unknown version %d", v)
	}
	r := idempotencyRecord{time: d.Varint(), hash: d.Bytes(), result: d.Bytes()}
	return r, d.Finish("idempotency record")
}

// applyEnvelope applies a command, answering from the stored result when its idempotency key
// was seen.
func (m *Machine) applyEnvelope(b *Batch, env Envelope) *Result {
	idem := env.Idempotency
	if env.legacy {
		b.quiet = true
		defer func() { b.quiet = false }()
	}
	if idem == nil {
		return m.applyCommand(b, env.Command)
	}
	if idem.Key == "" || !ValidText(idem.Key, IdempotencyKeyMaxLength) || !ValidText(idem.Scope, StringMaxBytes) {
		return Invalid("idempotency key must be 1..%d printable characters", IdempotencyKeyMaxLength)
	}
	k := Key(prefixIdempotency, idem.Scope, idem.Key)
	stored, ok := m.idem.pending[string(k)]
	if !ok {
		var err error
		if stored, err = b.Get(k); err != nil {
			panic(fmt.Sprintf("fsm: read idempotency key: %v", err))
		}
	}
	if stored != nil {
		rec, err := decodeIdempotencyRecord(stored)
		if err != nil {
			panic(fmt.Sprintf("fsm: idempotency record %q: %v", k, err))
		}
		if !bytes.Equal(rec.hash, idem.RequestHash[:]) {
			return Fail(Rejectf(CodeIdempotencyKeyMismatch,
				"idempotency key %q was used for a different request", idem.Key))
		}
		res, err := m.reg.decodeResult(rec.result)
		if err != nil {
			panic(fmt.Sprintf("fsm: idempotency record %q: %v", k, err))
		}
		res.Replayed = true
		return res
	}
	res := m.applyCommand(b, env.Command)
	if res.Err != nil {
		if stale, ok := env.Command.(StaleRefusals); ok && stale.StaleRefusal(res.Err.Code) {
			return res // nothing applied and nothing kept: the proposer plans again under the key
		}
	}
	rec := encodeIdempotencyRecord(idempotencyRecord{time: b.Now, hash: idem.RequestHash[:], result: appendResult(nil, res)})
	b.Set(k, rec)
	b.Set(append(binary.BigEndian.AppendUint64([]byte{prefixIdempotencyExpiry}, uint64(b.Now)), k[1:]...), nil)
	m.idem.pending[string(k)] = rec
	if m.idem.oldestMs == 0 {
		m.idem.oldestMs = b.Now // batch times never go backwards: older keys set it already
	}
	return res
}

// endBatch forgets keys older than the retention, a bounded number per batch, in time order.
func (s *idempotencyState) endBatch(b *Batch) {
	wrote := len(s.pending) > 0
	clear(s.pending)
	cut := b.Now - IdempotencyRetentionMs
	if s.oldestMs == 0 || s.oldestMs > cut {
		return
	}
	it, err := b.m.store.NewIter([]byte{prefixIdempotencyExpiry}, []byte{prefixIdempotencyExpiry + 1})
	if err != nil {
		panic(fmt.Sprintf("fsm: idempotency expiry: %v", err))
	}
	defer it.Close()
	// The store shows the index as of the previous batch: every key it holds is older than
	// this batch's.
	s.oldestMs = 0
	n := 0
	for valid := it.First(); valid; valid = it.Next() {
		keyTime := int64(binary.BigEndian.Uint64(it.Key()[1:9]))
		if keyTime > cut || n == idempotencyExpiriesPerBatch {
			s.oldestMs = keyTime // the oldest key left
			break
		}
		expiry := append([]byte(nil), it.Key()...)
		b.Delete(expiry)
		b.Delete(append([]byte{prefixIdempotency}, expiry[9:]...))
		n++
	}
	if err := it.Error(); err != nil {
		panic(fmt.Sprintf("fsm: idempotency expiry: %v", err))
	}
	if s.oldestMs == 0 && wrote {
		s.oldestMs = b.Now
	}
}

// StaleRefusals is implemented by a command its proposer plans from state it read first (an HD
// index, a payout's inputs and change address): a refusal that says the plan went stale changes
// nothing and is not kept under the envelope's idempotency key, so the proposer reads again,
// plans again and proposes under the same key. Every other result is kept as usual. A command
// must write nothing before such a refusal.
type StaleRefusals interface {
	StaleRefusal(code ErrorCode) bool
}

// OpCheckIdempotency asks, through the log, whether an idempotency key was used on the shard of
// a route, applying nothing: a proposer whose command costs work outside the machine (planning
// and signing a payout, whose inputs the first attempt reserved) asks first, so that a retry gets
// the stored answer without that work. A used key answers as for any command: the stored result
// (Replayed) or IdempotencyKeyMismatch. An unused key is refused, IdempotencyKeyUnused, and stays
// unused (StaleRefusals): the proposer then proposes its command under the key.
const OpCheckIdempotency Op = 108

// CodeIdempotencyKeyUnused answers CheckIdempotency for a key not used on the shard.
const CodeIdempotencyKeyUnused ErrorCode = "IdempotencyKeyUnused"

// CheckIdempotency is the command of OpCheckIdempotency; it routes as the command it checks for
// (ProjectID, OwnerID) and is only meaningful in an envelope with an idempotency key.
type CheckIdempotency struct {
	ProjectID, OwnerID string
}

// Op implements Command.
func (*CheckIdempotency) Op() Op { return OpCheckIdempotency }

// Encode implements Command.
func (c *CheckIdempotency) Encode(e *Encoder) {
	e.String(c.ProjectID)
	e.String(c.OwnerID)
}

// Route implements Command.
func (c *CheckIdempotency) Route() Route { return Route{ProjectID: c.ProjectID, OwnerID: c.OwnerID} }

// StaleRefusal implements StaleRefusals: the check keeps nothing under the key.
func (*CheckIdempotency) StaleRefusal(code ErrorCode) bool { return code == CodeIdempotencyKeyUnused }

func registerIdempotency(r *Registry) {
	r.ClaimPrefix(prefixIdempotency, "kernel: idempotency keys")
	r.ClaimPrefix(prefixIdempotencyExpiry, "kernel: idempotency expiry")
	r.Add(OpSpec{Op: OpCheckIdempotency, Name: "CheckIdempotency", Example: &CheckIdempotency{ProjectID: "example", OwnerID: "owner"},
		Decode: func(d *Decoder) Command { return &CheckIdempotency{ProjectID: d.String(), OwnerID: d.String()} },
		Apply: func(*Batch, Command) *Result {
			return Fail(Rejectf(CodeIdempotencyKeyUnused, "the idempotency key was not used on this shard"))
		}})
}
