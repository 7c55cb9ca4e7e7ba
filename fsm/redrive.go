package fsm

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Re-drives: an operator asks for a subscriber's dead letters to be delivered again. The
// request marks them (OpOutboxRedrive); whichever node leads the shard delivers each marked
// event and records the outcome (OpOutboxRedriven), which removes the mark and, when the event
// arrived, the dead letter. The subscriber's cursor never moves back, so nothing else is
// delivered again. Both ops are idempotent: marking a marked letter changes nothing, and an
// outcome for a letter no longer marked (recorded already by a previous leader) is ignored.
// Marks are trimmed with their dead letters.
//
//	R {sequence, 8 B} {subscriber}  → (empty)
const (
	prefixRedrive = 'R'

	// OpOutboxRedrive marks a subscriber's dead letters for re-delivery.
	OpOutboxRedrive Op = 105
	// OpOutboxRedriven records the outcome of one re-delivery.
	OpOutboxRedriven Op = 106

	// RedriveScanMaxCount bounds the dead letters (of every subscriber) one OpOutboxRedrive
	// looks at; the caller goes on from the result's Last.
	RedriveScanMaxCount = 4096
)

// OutboxRedrive is the command of OpOutboxRedrive: mark the dead letters of Subscriber with a
// sequence above After (at most RedriveScanMaxCount looked at).
type OutboxRedrive struct {
	Subscriber string
	After      uint64
}

// Op implements Command.
func (OutboxRedrive) Op() Op { return OpOutboxRedrive }

// Encode implements Command.
func (c *OutboxRedrive) Encode(e *Encoder) {
	e.String(c.Subscriber)
	e.Uvarint(c.After)
}

// Route implements Command: the API proposes it to each shard by name.
func (*OutboxRedrive) Route() Route { return Route{Pinned: true} }

// RedriveMarked is the result of OpOutboxRedrive.
type RedriveMarked struct {
	Marked uint64 // the subscriber's dead letters marked (marked before included)
	Last   uint64 // the last sequence looked at; go on after it unless Done
	Done   bool   // no dead letter after Last
}

// Encode implements Value.
func (r *RedriveMarked) Encode(e *Encoder) {
	e.Uvarint(r.Marked)
	e.Uvarint(r.Last)
	e.Bool(r.Done)
}

// OutboxRedriven is the command of OpOutboxRedriven: the re-delivery of a marked dead letter
// ended; Delivered removes the dead letter, otherwise it stays with Reason.
type OutboxRedriven struct {
	Subscriber string
	Sequence   uint64
	Delivered  bool
	Reason     string
}

// Op implements Command.
func (OutboxRedriven) Op() Op { return OpOutboxRedriven }

// Encode implements Command.
func (c *OutboxRedriven) Encode(e *Encoder) {
	e.String(c.Subscriber)
	e.Uvarint(c.Sequence)
	e.Bool(c.Delivered)
	e.String(c.Reason)
}

// Route implements Command: the delivering node proposes it to the shard it delivers for.
func (*OutboxRedriven) Route() Route { return Route{Pinned: true} }

func redriveKey(sequence uint64, subscriber string) []byte {
	k := binary.BigEndian.AppendUint64([]byte{prefixRedrive}, sequence)
	return append(k, subscriber...)
}

func registerRedrives(r *Registry) {
	r.ClaimPrefix(prefixRedrive, "kernel: outbox dead letters to deliver again")
	r.Add(OpSpec{
		Op:      OpOutboxRedrive,
		Name:    "OutboxRedrive",
		Example: &OutboxRedrive{Subscriber: "webhook:shop", After: 0},
		Decode:  func(d *Decoder) Command { return &OutboxRedrive{Subscriber: d.String(), After: d.Uvarint()} },
		Apply: func(b *Batch, c Command) *Result {
			redrive := c.(*OutboxRedrive)
			if redrive.Subscriber == "" || !ValidText(redrive.Subscriber, SubscriberMaxLength) {
				return Invalid("subscriber must be 1..%d printable characters", SubscriberMaxLength)
			}
			result := &RedriveMarked{Last: redrive.After, Done: true}
			if redrive.After == ^uint64(0) {
				return &Result{Value: result}
			}
			if err := markRedrives(b, redrive, result); err != nil {
				panic(fmt.Sprintf("fsm: read dead letters: %v", err)) // the store failed
			}
			return &Result{Value: result}
		},
		DecodeValue: func(d *Decoder) Value {
			return &RedriveMarked{Marked: d.Uvarint(), Last: d.Uvarint(), Done: d.Bool()}
		},
	})
	r.Add(OpSpec{
		Op:      OpOutboxRedriven,
		Name:    "OutboxRedriven",
		Example: &OutboxRedriven{Subscriber: "webhook:shop", Sequence: 7, Delivered: true},
		Decode: func(d *Decoder) Command {
			return &OutboxRedriven{Subscriber: d.String(), Sequence: d.Uvarint(), Delivered: d.Bool(), Reason: d.String()}
		},
		Apply: func(b *Batch, c Command) *Result {
			done := c.(*OutboxRedriven)
			switch {
			case done.Subscriber == "" || !ValidText(done.Subscriber, SubscriberMaxLength):
				return Invalid("subscriber must be 1..%d printable characters", SubscriberMaxLength)
			case len(done.Reason) > DeadLetterReasonMaxBytes:
				return Invalid("a dead letter's reason is at most %d bytes", DeadLetterReasonMaxBytes)
			}
			mark := redriveKey(done.Sequence, done.Subscriber)
			if v, err := b.Get(mark); err != nil {
				panic(fmt.Sprintf("fsm: read re-drive mark: %v", err)) // the store failed
			} else if v == nil {
				return &Result{} // recorded already, or trimmed
			}
			b.Delete(mark)
			letter := deadLetterKey(done.Sequence, done.Subscriber)
			if done.Delivered {
				b.Delete(letter)
				return &Result{}
			}
			v, err := b.Get(letter)
			if err != nil {
				panic(fmt.Sprintf("fsm: read dead letter: %v", err)) // the store failed
			}
			if v == nil {
				// Delivered by an earlier re-drive whose outcome was applied in the batch
				// that marked it again: nothing to keep.
				return &Result{}
			}
			d := NewDecoder(v)
			d.Varint() // the time it was first recorded
			eventType := d.String()
			e := Encoder{}
			e.Varint(b.Now)
			e.String(eventType)
			e.String(done.Reason)
			b.Set(letter, e.Buf)
			return &Result{}
		},
	})
}

// markRedrives marks the dead letters of redrive.Subscriber after redrive.After, looking at
// no more than RedriveScanMaxCount, as of the previous batch.
func markRedrives(b *Batch, redrive *OutboxRedrive, result *RedriveMarked) error {
	lower := binary.BigEndian.AppendUint64([]byte{prefixDeadLetter}, redrive.After+1)
	it, err := b.m.store.NewIter(lower, []byte{prefixDeadLetter + 1})
	if err != nil {
		return err
	}
	defer it.Close()
	scanned := 0
	for valid := it.First(); valid; valid = it.Next() {
		if scanned == RedriveScanMaxCount {
			result.Done = false
			break
		}
		scanned++
		k := it.Key()
		if len(k) < 9 {
			return fmt.Errorf("fsm: dead letter key %x", k)
		}
		sequence := binary.BigEndian.Uint64(k[1:9])
		result.Last = sequence
		if bytes.Equal(k[9:], []byte(redrive.Subscriber)) {
			b.Set(redriveKey(sequence, redrive.Subscriber), redriveMarkValue)
			result.Marked++
		}
	}
	return it.Error()
}

// redriveMarkValue is a mark's value: not empty, as the store reads an empty value as absent.
var redriveMarkValue = []byte{1}

// trimRedrives deletes the marks of events the outbox no longer keeps.
func trimRedrives(b *Batch, first uint64) {
	start := []byte{prefixRedrive}
	end := binary.BigEndian.AppendUint64([]byte{prefixRedrive}, first)
	if err := b.deleteRangeRaw(start, end); err != nil {
		panic(fmt.Sprintf("fsm: trim re-drive marks: %v", err))
	}
}

// Redrives returns up to limit sequences of the subscriber's dead letters marked for
// re-delivery, oldest first.
func (m *Machine) Redrives(subscriber string, limit int) ([]uint64, error) {
	var sequences []uint64
	err := m.store.Read(func() error {
		it, err := m.store.NewIter([]byte{prefixRedrive}, []byte{prefixRedrive + 1})
		if err != nil {
			return err
		}
		defer it.Close()
		for valid := it.First(); valid && len(sequences) < limit; valid = it.Next() {
			k := it.Key()
			if len(k) < 9 {
				return fmt.Errorf("fsm: re-drive key %x", k)
			}
			if bytes.Equal(k[9:], []byte(subscriber)) {
				sequences = append(sequences, binary.BigEndian.Uint64(k[1:9]))
			}
		}
		return it.Error()
	})
	return sequences, err
}
