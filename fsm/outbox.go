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
// Retention: the newest OutboxRetention events are kept (Registry.SetOutboxRetention changes it
// for tests); older ones are deleted at the end of
// the batch that pushes them out, whether or not every subscriber acknowledged them (a slow
// subscriber must never grow the store without bound). A subscriber whose cursor falls below
// the oldest kept event has lost events, which the delivery side reports.
//
//	o {sequence}    → Event
//	O {subscriber}  → acknowledged sequence
const (
	prefixOutbox       = 'o'
	prefixOutboxCursor = 'O'

	// OutboxRetention is how many events a shard keeps.
	OutboxRetention = 1 << 20
	// SubscriberMaxLength bounds a subscriber's name.
	SubscriberMaxLength = 128
)

// Event is one outbox record.
type Event struct {
	Sequence uint64
	Time     int64  // batch time, Unix milliseconds
	Type     string // e.g. LEDGER_TX_COMPLETED
	Data     []byte // the family's encoding of the event's subject
}

type outboxState struct {
	first, last uint64            // oldest and newest kept sequence; 0, 0 when empty
	cursors     map[string]uint64 // cursors acked in the batch being applied
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
		o.last = binary.BigEndian.Uint64(it.Key()[1:])
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
	e := Encoder{Buf: make([]byte, 0, 32+len(eventType)+len(data))}
	e.Byte(1)
	e.Varint(b.Now)
	e.String(eventType)
	e.Bytes(data)
	b.Set(outboxKey(o.last), e.Buf)
}

// endBatch trims the outbox to its retention with one range deletion.
func (o *outboxState) endBatch(b *Batch) {
	clear(o.cursors)
	retention := b.m.reg.outboxRetention
	if o.last == 0 || o.last-o.first+1 <= retention {
		return
	}
	newFirst := o.last - retention + 1
	if err := b.pb.DeleteRange(outboxKey(o.first), outboxKey(newFirst), nil); err != nil {
		panic(fmt.Sprintf("fsm: trim outbox: %v", err))
	}
	o.first = newFirst
}

func decodeEvent(sequence uint64, data []byte) (Event, error) {
	d := NewDecoder(data)
	if v := d.Byte(); d.err == nil && v != 1 {
		return Event{}, fmt.Errorf("decode event: unknown version %d", v)
	}
	ev := Event{Sequence: sequence, Time: d.Varint(), Type: d.String()}
	ev.Data = append([]byte(nil), d.Bytes()...)
	return ev, d.Finish("event")
}

// Events returns up to limit events with sequence > after, oldest first.
func (m *Machine) Events(after uint64, limit int) ([]Event, error) {
	var events []Event
	err := m.store.Read(func() error {
		it, err := m.store.NewIter(outboxKey(after+1), []byte{prefixOutbox + 1})
		if err != nil {
			return err
		}
		defer it.Close()
		for valid := it.First(); valid && len(events) < limit; valid = it.Next() {
			ev, err := decodeEvent(binary.BigEndian.Uint64(it.Key()[1:]), it.Value())
			if err != nil {
				return err
			}
			events = append(events, ev)
		}
		return it.Error()
	})
	return events, err
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

// Cursor is the result of an ack: the subscriber's cursor after it.
type Cursor struct{ Sequence uint64 }

// Encode implements Value.
func (c *Cursor) Encode(e *Encoder) { e.Uvarint(c.Sequence) }

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
			o := &b.m.outbox
			k := Key(prefixOutboxCursor, ack.Subscriber)
			cursor, ok := o.cursors[ack.Subscriber]
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
			if next := min(ack.Sequence, o.last); next > cursor {
				cursor = next
				b.Set(k, binary.BigEndian.AppendUint64(nil, cursor))
			}
			if o.cursors == nil {
				o.cursors = map[string]uint64{}
			}
			o.cursors[ack.Subscriber] = cursor
			return &Result{Value: &Cursor{Sequence: cursor}}
		},
		DecodeValue: func(d *Decoder) Value { return &Cursor{Sequence: d.Uvarint()} },
		Example:     &OutboxAck{Subscriber: "example", Sequence: 1},
	})
}
