package fsm

import (
	"encoding/binary"
	"fmt"
)

// The outbox is a shard's replicated event log. A family emits an event in the same apply as
// the change that causes it (Batch.Emit), so an event exists if and only if its change does.
// Each event gets the shard's next outbox sequence: (shard, sequence) is its stable ID.
// Subscribers' delivery cursors are replicated too (OpOutboxAck), so whichever node leads the
// shard continues delivery from the last acknowledged event.
//
// Storage: the events of one batch are one record, keyed by the sequence of its first event, so
// an event costs its bytes and not a store write of its own.
//
// Retention: about the newest OutboxRetention events are kept (Registry.SetOutboxRetention
// changes it for tests); older batch records are deleted at the end of the batch that pushes
// them out, whether or not every subscriber acknowledged them (a slow subscriber must never grow
// the store without bound). A record is kept whole while any of its events is within the
// retention, so up to one batch more is kept. A subscriber whose cursor falls below the oldest
// kept event has lost events, which the delivery side reports.
//
//	o {first sequence}  → batch time, event count, events (type, data)
//	O {subscriber}      → acknowledged sequence
const (
	prefixOutbox       = 'o'
	prefixOutboxCursor = 'O'

	// OutboxRetention is how many events a shard keeps.
	OutboxRetention = 1 << 20
	// SubscriberMaxLength bounds a subscriber's name.
	SubscriberMaxLength = 128

	outboxRecordVersion = 1
)

// Event is one outbox event.
type Event struct {
	Sequence uint64
	Time     int64  // batch time, Unix milliseconds
	Type     string // e.g. LEDGER_TX_COMPLETED
	Data     []byte // the family's encoding of the event's subject
}

type outboxState struct {
	first, last uint64            // oldest and newest kept sequence; 0, 0 when empty
	cursors     map[string]uint64 // cursors acked in the batch being applied
	// subscriptions are the names the batch being applied made live or retired, and
	// subscriptionsAdded how many more there are than before it (subscription.go).
	subscriptions      map[string]uint8
	subscriptionsAdded int
	pending            Encoder // the batch's events, written at its end
	pendingLen         uint64
	record             []byte // reused to assemble the batch's record (the store copies it)
}

func outboxKey(sequence uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixOutbox}, sequence)
}

func (o *outboxState) load(s *Store) error {
	*o = outboxState{}
	it, err := s.NewIter([]byte{prefixOutbox}, []byte{prefixOutbox + 1})
	if err != nil {
		return err
	}
	defer it.Close()
	if it.First() {
		o.first = binary.BigEndian.Uint64(it.Key()[1:])
	}
	if it.Last() {
		d := NewDecoder(it.Value())
		d.Byte()
		d.Varint()
		count := d.Uvarint()
		if d.err != nil || count == 0 {
			return fmt.Errorf("outbox record %x: %v", it.Key(), d.err)
		}
		o.last = binary.BigEndian.Uint64(it.Key()[1:]) + count - 1
	}
	return it.Error()
}

// Emit appends an event to the shard's outbox, in this batch.
func (b *Batch) Emit(eventType string, data []byte) {
	if b.quiet {
		return
	}
	o := &b.m.outbox
	o.last++
	if o.first == 0 {
		o.first = o.last
	}
	o.pending.String(eventType)
	o.pending.Bytes(data)
	o.pendingLen++
}

// endBatch writes the batch's events as one record and trims the outbox to its retention.
func (o *outboxState) endBatch(b *Batch) {
	clear(o.cursors)
	clear(o.subscriptions)
	o.subscriptionsAdded = 0
	var batchFirst uint64
	if o.pendingLen > 0 {
		batchFirst = o.last - o.pendingLen + 1
		value := append(o.record[:0], outboxRecordVersion)
		value = binary.AppendVarint(value, b.Now)
		value = binary.AppendUvarint(value, o.pendingLen)
		o.record = append(value, o.pending.Buf...)
		var k [9]byte
		k[0] = prefixOutbox
		binary.BigEndian.PutUint64(k[1:], batchFirst)
		b.Set(k[:], o.record)
		o.pending.Buf = o.pending.Buf[:0]
		o.pendingLen = 0
	}
	retention := b.m.reg.outboxRetention
	if o.last == 0 || o.last-o.first+1 <= retention {
		return
	}
	// Keep the record holding the oldest event to retain: it is this batch's, or the stored
	// record with the greatest first sequence at or below it.
	keepFrom := o.last - retention + 1
	cut := batchFirst
	if batchFirst == 0 || batchFirst > keepFrom {
		it, err := b.m.store.NewIter(outboxKey(o.first), outboxKey(keepFrom+1))
		if err != nil {
			panic(fmt.Sprintf("fsm: trim outbox: %v", err))
		}
		if it.Last() {
			cut = binary.BigEndian.Uint64(it.Key()[1:])
		}
		if err := it.Close(); err != nil {
			panic(fmt.Sprintf("fsm: trim outbox: %v", err))
		}
	}
	if cut > o.first {
		if err := b.deleteRangeRaw(outboxKey(o.first), outboxKey(cut)); err != nil {
			panic(fmt.Sprintf("fsm: trim outbox: %v", err))
		}
		o.first = cut
		trimDeadLetters(b, cut)
		trimRedrives(b, cut)
	}
}

// decodeRecord appends the events of one batch record with sequence > after, up to limit.
func decodeOutboxRecord(first uint64, data []byte, after uint64, limit int, events []Event) ([]Event, error) {
	d := NewDecoder(data)
	if v := d.Byte(); d.err == nil && v != outboxRecordVersion {
		return events, fmt.Errorf("decode outbox record %d: unknown version %d", first, v)
	}
	batchTime := d.Varint()
	count := d.Uvarint()
	for i := uint64(0); i < count && d.err == nil && len(events) < limit; i++ {
		ev := Event{Sequence: first + i, Time: batchTime, Type: d.String()}
		data := d.Bytes()
		if ev.Sequence > after && d.err == nil {
			ev.Data = append([]byte(nil), data...)
			events = append(events, ev)
		}
	}
	if d.err != nil {
		return events, fmt.Errorf("decode outbox record %d: %w", first, d.err)
	}
	return events, nil
}

// Events returns up to limit events with sequence > after, oldest first.
func (m *Machine) Events(after uint64, limit int) ([]Event, error) {
	var events []Event
	err := m.store.Read(func() error {
		it, err := m.store.NewIter([]byte{prefixOutbox}, []byte{prefixOutbox + 1})
		if err != nil {
			return err
		}
		defer it.Close()
		// The record holding after+1 starts at or below it.
		valid := it.SeekLT(outboxKey(after + 2))
		if !valid {
			valid = it.First()
		}
		for ; valid && len(events) < limit; valid = it.Next() {
			if events, err = decodeOutboxRecord(binary.BigEndian.Uint64(it.Key()[1:]), it.Value(), after, limit, events); err != nil {
				return err
			}
		}
		return it.Error()
	})
	return events, err
}

// OutboxRange is the oldest and newest kept event sequence (0, 0 when none was emitted).
func (m *Machine) OutboxRange() (first, last uint64, err error) {
	err = m.store.Read(func() error {
		var o outboxState
		if err := o.load(m.store); err != nil {
			return err
		}
		first, last = o.first, o.last
		return nil
	})
	return first, last, err
}

// OutboxCursor is a subscriber's acknowledged sequence (0: none yet).
func (m *Machine) OutboxCursor(subscriber string) (uint64, error) {
	var cursor uint64
	err := m.store.Read(func() error {
		v, err := m.store.Get(Key(prefixOutboxCursor, subscriber))
		if err == nil && len(v) == 8 {
			cursor = binary.BigEndian.Uint64(v)
		}
		return err
	})
	return cursor, err
}

// OpOutboxAck records that a subscriber has received every event up to a sequence.
const OpOutboxAck Op = 100

// OpTick changes nothing itself: it makes a batch, at the leader's time, so that work due at
// that time (Timed modules: hold expiries) happens on a shard that nothing else writes to.
const OpTick Op = 101

// Tick is the command of OpTick.
type Tick struct{}

// Op implements Command.
func (Tick) Op() Op { return OpTick }

// Encode implements Command.
func (*Tick) Encode(*Encoder) {}

// Route implements Command: the leader proposes ticks to the shard it leads.
func (*Tick) Route() Route { return Route{Pinned: true} }

// OutboxAck is the command of OpOutboxAck. Cursors only move forward, and never past the
// newest event: an older or repeated ack changes nothing.
type OutboxAck struct {
	Subscriber string
	Sequence   uint64
}

// Op implements Command.
func (OutboxAck) Op() Op { return OpOutboxAck }

// Encode implements Command.
func (c *OutboxAck) Encode(e *Encoder) {
	e.String(c.Subscriber)
	e.Uvarint(c.Sequence)
}

// Route implements Command: the delivering node proposes acks to the shard it delivers for.
func (c *OutboxAck) Route() Route { return Route{Pinned: true} }

// advanceCursor moves a subscriber's cursor forward to sequence (never past the newest event,
// never back) and returns it.
func advanceCursor(b *Batch, subscriber string, sequence uint64) uint64 {
	o := &b.m.outbox
	k := Key(prefixOutboxCursor, subscriber)
	cursor, ok := o.cursors[subscriber]
	if !ok {
		v, err := b.Get(k)
		if err != nil {
			// A store read failed: the replica cannot go on.
			panic(fmt.Sprintf("fsm: read outbox cursor: %v", err))
		}
		if len(v) == 8 {
			cursor = binary.BigEndian.Uint64(v)
		}
	}
	if next := min(sequence, o.last); next > cursor {
		cursor = next
		b.Set(k, binary.BigEndian.AppendUint64(nil, cursor))
	}
	if o.cursors == nil {
		o.cursors = map[string]uint64{}
	}
	o.cursors[subscriber] = cursor
	return cursor
}

// Cursor is the result of an ack: the subscriber's cursor after it.
type Cursor struct{ Sequence uint64 }

// Encode implements Value.
func (c *Cursor) Encode(e *Encoder) { e.Uvarint(c.Sequence) }

func registerTick(r *Registry) {
	r.Add(OpSpec{Op: OpTick, Name: "Tick", Example: &Tick{},
		Decode: func(*Decoder) Command { return &Tick{} },
		Apply:  func(*Batch, Command) *Result { return &Result{} }})
}

func registerOutbox(r *Registry) {
	r.ClaimPrefix(prefixOutbox, "kernel: outbox")
	r.ClaimPrefix(prefixOutboxCursor, "kernel: outbox cursors")
	r.Add(OpSpec{
		Op:   OpOutboxAck,
		Name: "OutboxAck",
		Decode: func(d *Decoder) Command {
			return &OutboxAck{Subscriber: d.String(), Sequence: d.Uvarint()}
		},
		Apply: func(b *Batch, c Command) *Result {
			ack := c.(*OutboxAck)
			if ack.Subscriber == "" || !ValidText(ack.Subscriber, SubscriberMaxLength) {
				return Invalid("subscriber must be 1..%d printable characters", SubscriberMaxLength)
			}
			return &Result{Value: &Cursor{Sequence: advanceCursor(b, ack.Subscriber, ack.Sequence)}}
		},
		DecodeValue: func(d *Decoder) Value { return &Cursor{Sequence: d.Uvarint()} },
		Example:     &OutboxAck{Subscriber: "example", Sequence: 1},
	})
}
