package fsm

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Dead letters: an event a subscriber's delivery gave up on (its receiver kept failing for the
// whole retry budget). Recording one also moves the subscriber's cursor past the event, in the
// same apply, so delivery goes on with the next event and the record of what was skipped is
// never lost. A dead letter names its event by sequence: the event itself stays in the outbox,
// and a dead letter is trimmed with it (so dead letters are bounded by the outbox's retention).
//
//	D {sequence, 8 B} {subscriber}  → batch time, event type, reason
const (
	prefixDeadLetter = 'D'

	// OpOutboxDeadLetter records a dead letter and moves the cursor past it.
	OpOutboxDeadLetter Op = 102

	// DeadLetterReasonMaxBytes bounds the recorded reason (the last error, truncated by the
	// proposer).
	DeadLetterReasonMaxBytes = 512
	// eventTypeMaxBytes bounds a recorded event type.
	eventTypeMaxBytes = 64
)

// OutboxDeadLetter is the command of OpOutboxDeadLetter.
type OutboxDeadLetter struct {
	Subscriber string
	Sequence   uint64
	EventType  string
	Reason     string
}

// Op implements Command.
func (OutboxDeadLetter) Op() Op { return OpOutboxDeadLetter }

// Encode implements Command.
func (c *OutboxDeadLetter) Encode(e *Encoder) {
	e.String(c.Subscriber)
	e.Uvarint(c.Sequence)
	e.String(c.EventType)
	e.String(c.Reason)
}

// Route implements Command: the delivering node proposes it to the shard it delivers for.
func (*OutboxDeadLetter) Route() Route { return Route{Pinned: true} }

// DeadLetter is a recorded dead letter.
type DeadLetter struct {
	Subscriber string
	Sequence   uint64
	EventType  string
	Reason     string
	Time       int64 // batch time it was recorded, Unix milliseconds
}

// Encode implements Value (a dead letter crosses nodes in query answers).
func (dl *DeadLetter) Encode(e *Encoder) {
	e.String(dl.Subscriber)
	e.Uvarint(dl.Sequence)
	e.String(dl.EventType)
	e.String(dl.Reason)
	e.Varint(dl.Time)
}

// ReadDeadLetter reads what Encode wrote.
func ReadDeadLetter(d *Decoder) *DeadLetter {
	return &DeadLetter{Subscriber: d.String(), Sequence: d.Uvarint(), EventType: d.String(), Reason: d.String(), Time: d.Varint()}
}

func deadLetterKey(sequence uint64, subscriber string) []byte {
	k := binary.BigEndian.AppendUint64([]byte{prefixDeadLetter}, sequence)
	return append(k, subscriber...)
}

func registerDeadLetters(r *Registry) {
	r.ClaimPrefix(prefixDeadLetter, "kernel: outbox dead letters")
	r.Add(OpSpec{
		Op:      OpOutboxDeadLetter,
		Name:    "OutboxDeadLetter",
		Example: &OutboxDeadLetter{Subscriber: "webhook:shop", Sequence: 7, EventType: "INV_CREATED", Reason: "HTTP 500"},
		Decode: func(d *Decoder) Command {
			return &OutboxDeadLetter{Subscriber: d.String(), Sequence: d.Uvarint(), EventType: d.String(), Reason: d.String()}
		},
		Apply: func(b *Batch, c Command) *Result {
			dl := c.(*OutboxDeadLetter)
			o := &b.m.outbox
			switch {
			case dl.Subscriber == "" || !ValidText(dl.Subscriber, SubscriberMaxLength):
				return Invalid("subscriber must be 1..%d printable characters", SubscriberMaxLength)
			case len(dl.EventType) > eventTypeMaxBytes || len(dl.Reason) > DeadLetterReasonMaxBytes:
				return Invalid("a dead letter's event type is at most %d bytes, its reason %d", eventTypeMaxBytes, DeadLetterReasonMaxBytes)
			case dl.Sequence == 0 || dl.Sequence < o.first || dl.Sequence > o.last:
				// Not an event the outbox holds (trimmed, or never emitted): nothing to record.
				return &Result{Value: &Cursor{Sequence: advanceCursor(b, dl.Subscriber, dl.Sequence)}}
			}
			e := Encoder{}
			e.Varint(b.Now)
			e.String(dl.EventType)
			e.String(dl.Reason)
			b.Set(deadLetterKey(dl.Sequence, dl.Subscriber), e.Buf)
			return &Result{Value: &Cursor{Sequence: advanceCursor(b, dl.Subscriber, dl.Sequence)}}
		},
		DecodeValue: func(d *Decoder) Value { return &Cursor{Sequence: d.Uvarint()} },
	})
}

// trimDeadLetters deletes the dead letters of events the outbox no longer keeps.
func trimDeadLetters(b *Batch, first uint64) {
	start := []byte{prefixDeadLetter}
	end := binary.BigEndian.AppendUint64([]byte{prefixDeadLetter}, first)
	if err := b.deleteRangeRaw(start, end); err != nil {
		panic(fmt.Sprintf("fsm: trim dead letters: %v", err))
	}
}

// DeadLetters returns up to limit dead letters with sequence > after, oldest first, of one
// subscriber (all subscribers when subscriber is "").
func (m *Machine) DeadLetters(subscriber string, after uint64, limit int) ([]DeadLetter, error) {
	var letters []DeadLetter
	err := m.store.Read(func() error {
		it, err := m.store.NewIter(binary.BigEndian.AppendUint64([]byte{prefixDeadLetter}, after+1), []byte{prefixDeadLetter + 1})
		if err != nil {
			return err
		}
		defer it.Close()
		for valid := it.First(); valid && len(letters) < limit; valid = it.Next() {
			k := it.Key()
			if len(k) < 9 {
				return fmt.Errorf("fsm: dead letter key %x", k)
			}
			name := k[9:]
			if subscriber != "" && !bytes.Equal(name, []byte(subscriber)) {
				continue
			}
			d := NewDecoder(it.Value())
			dl := DeadLetter{Subscriber: string(name), Sequence: binary.BigEndian.Uint64(k[1:9]), Time: d.Varint()}
			dl.EventType, dl.Reason = d.String(), d.String()
			if err := d.Finish("dead letter"); err != nil {
				return err
			}
			letters = append(letters, dl)
		}
		return it.Error()
	})
	return letters, err
}
