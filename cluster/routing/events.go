package routing

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/gigaledger/gigaledger/backend"
	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/gigawallet"
	"github.com/gigaledger/gigaledger/fsm/gigpay"
	"github.com/gigaledger/gigaledger/fsm/ledger"
)

// Events: every shard's outbox, read with its subjects resolved on a node that hosts the shard
// (a transaction event carries only the transaction's key; the record is in that shard's
// store). The listEvents query answers one shard's part; merging the parts into pages and the
// cursor across shards belong to the API layer.

const (
	// eventTypeMaxBytes bounds an event type on the wire (LEDGER_TX_COMPLETED is 19).
	eventTypeMaxBytes = 64
	// eventsAnswerBudgetBytes: a listEvents answer stops adding events once it is this large,
	// far inside answerMaxBytes (1000 transactions of 100 operations can exceed it). The
	// caller's cursor moves only over the events it got, so the rest come with the next page.
	eventsAnswerBudgetBytes = 8 << 20
	// eventsPollInterval is how often a long poll rereads shards this node does not host: their
	// applies wake nobody here.
	eventsPollInterval = 200 * time.Millisecond
)

// eventSubjectKind says which record follows an event on the wire. Only add kinds, never
// renumber.
type eventSubjectKind uint8

const (
	subjectNone eventSubjectKind = iota // a family this node does not run
	subjectTransaction
	subjectWallet
	subjectHold
	subjectAccount
	subjectInvoice
	subjectAccountBalance
	subjectPayment
	subjectGigPayToken
	subjectGigPayPayment
	subjectKindEnd
)

// listEvents reads up to limit events after a sequence, each with its subject, and the range.
func (r replica) listEvents(after uint64, limit int) (*backend.ShardEvents, error) {
	if r.outbox == nil {
		return nil, errors.New("routing: listEvents: the replica has no outbox")
	}
	first, last, err := r.outbox.OutboxRange()
	if err != nil {
		return nil, err
	}
	out := &backend.ShardEvents{First: first, Last: last}
	if limit == 0 {
		return out, nil
	}
	events, err := r.outbox.Events(after, limit)
	if err != nil {
		return nil, err
	}
	for _, ev := range events {
		e := backend.Event{Sequence: ev.Sequence, TimeMs: ev.Time, Type: ev.Type}
		if e.Subject, err = r.eventSubject(ev); err != nil {
			return nil, fmt.Errorf("routing: event %d (%s): %w", ev.Sequence, ev.Type, err)
		}
		var owner *gigawallet.Invoice
		switch subject := e.Subject.(type) {
		case *gigawallet.Invoice:
			owner = subject
		case *gigawallet.Payment:
			owner = &gigawallet.Invoice{ProjectID: subject.ProjectID, ForeignID: subject.ForeignID}
		}
		if owner != nil && r.gigawallet != nil {
			account, err := r.gigawallet.GetAccount(owner.ProjectID, owner.ForeignID)
			var rejection *fsm.Error
			if err != nil && !errors.As(err, &rejection) {
				return nil, err
			}
			e.Account = account
		}
		out.Events = append(out.Events, e)
	}
	// The range was read before the events: a batch committed in between may have added some.
	if n := len(out.Events); n > 0 {
		out.Last = max(out.Last, out.Events[n-1].Sequence)
		if out.First == 0 {
			out.First = out.Events[0].Sequence
		}
	}
	return out, nil
}

func (r replica) eventSubject(ev fsm.Event) (fsm.Value, error) {
	if subject, ok, err := r.ledger.EventSubject(ev); ok {
		return subject, err
	}
	if r.gigawallet != nil {
		if subject, ok, err := gigawallet.EventSubject(ev); ok {
			return subject, err
		}
	}
	if r.gigpay != nil {
		if subject, ok, err := gigpay.EventSubject(ev); ok {
			return subject, err
		}
	}
	return nil, nil
}

func subjectKindOf(subject fsm.Value) (eventSubjectKind, error) {
	switch subject.(type) {
	case nil:
		return subjectNone, nil
	case *ledger.Transaction:
		return subjectTransaction, nil
	case *ledger.Wallet:
		return subjectWallet, nil
	case *ledger.Hold:
		return subjectHold, nil
	case *gigawallet.Account:
		return subjectAccount, nil
	case *gigawallet.Invoice:
		return subjectInvoice, nil
	case *gigawallet.AccountBalance:
		return subjectAccountBalance, nil
	case *gigawallet.Payment:
		return subjectPayment, nil
	case *gigpay.Token:
		return subjectGigPayToken, nil
	case *gigpay.Payment:
		return subjectGigPayPayment, nil
	}
	return 0, fmt.Errorf("routing: no wire form for an event subject %T", subject)
}

// writeEvents writes a shard's events: first, last, count, then per event its sequence, time,
// type, subject kind and record (an invoice then its account: a presence byte and the record).
// Events past eventsAnswerBudgetBytes are left out.
func writeEvents(e *fsm.Encoder, part *backend.ShardEvents) error {
	if part == nil {
		return errors.New("routing: a listEvents answer without its events")
	}
	var body fsm.Encoder
	count := 0
	for _, ev := range part.Events {
		if len(body.Buf) >= eventsAnswerBudgetBytes {
			break
		}
		kind, err := subjectKindOf(ev.Subject)
		if err != nil {
			return err
		}
		body.Uvarint(ev.Sequence)
		body.Varint(ev.TimeMs)
		body.String(ev.Type)
		body.Byte(byte(kind))
		if ev.Subject != nil {
			ev.Subject.Encode(&body)
		}
		if kind == subjectInvoice || kind == subjectPayment {
			if ev.Account == nil {
				body.Byte(0)
			} else {
				body.Byte(1)
				ev.Account.Encode(&body)
			}
		}
		count++
	}
	e.Uvarint(part.First)
	e.Uvarint(part.Last)
	e.Uvarint(uint64(count))
	e.Buf = append(e.Buf, body.Buf...)
	return nil
}

// readEvents reads what writeEvents wrote, strictly: at most backend.EventsMaxCount events, in
// ascending sequence within [first, last], types of at most eventTypeMaxBytes, known subject
// kinds.
func readEvents(d *fsm.Decoder) *backend.ShardEvents {
	part := &backend.ShardEvents{First: d.Uvarint(), Last: d.Uvarint()}
	if d.Err() == nil && part.First > part.Last {
		d.Fail(fmt.Errorf("outbox range %d..%d", part.First, part.Last))
	}
	n := d.Uvarint()
	if n > backend.EventsMaxCount {
		d.Fail(fmt.Errorf("%d events", n))
		return part
	}
	previous := uint64(0)
	for i := uint64(0); i < n && d.Err() == nil; i++ {
		ev := backend.Event{Sequence: d.Uvarint(), TimeMs: d.Varint(), Type: d.String()}
		kind := eventSubjectKind(d.Byte())
		if d.Err() != nil {
			break
		}
		switch {
		case ev.Sequence <= previous || ev.Sequence < part.First || ev.Sequence > part.Last:
			d.Fail(fmt.Errorf("event sequence %d after %d in range %d..%d", ev.Sequence, previous, part.First, part.Last))
		case ev.Type == "" || len(ev.Type) > eventTypeMaxBytes:
			d.Fail(fmt.Errorf("event type of %d bytes", len(ev.Type)))
		case kind >= subjectKindEnd:
			d.Fail(fmt.Errorf("unknown event subject kind %d", kind))
		}
		previous = ev.Sequence
		switch kind {
		case subjectTransaction:
			ev.Subject = ledger.ReadTransaction(d)
		case subjectWallet:
			ev.Subject = ledger.ReadWallet(d)
		case subjectHold:
			ev.Subject = ledger.ReadHold(d)
		case subjectAccount:
			ev.Subject = gigawallet.ReadAccount(d)
		case subjectAccountBalance:
			ev.Subject = gigawallet.ReadAccountBalance(d)
		case subjectGigPayToken:
			ev.Subject = gigpay.ReadToken(d)
		case subjectGigPayPayment:
			ev.Subject = gigpay.ReadPayment(d)
		case subjectPayment:
			ev.Subject = gigawallet.ReadPayment(d)
			switch present := d.Byte(); present {
			case 0:
			case 1:
				ev.Account = gigawallet.ReadAccount(d)
			default:
				d.Fail(fmt.Errorf("payment account flag %d", present))
			}
		case subjectInvoice:
			ev.Subject = gigawallet.ReadInvoice(d)
			switch present := d.Byte(); present {
			case 0:
			case 1:
				ev.Account = gigawallet.ReadAccount(d)
			default:
				d.Fail(fmt.Errorf("invoice account flag %d", present))
			}
		}
		part.Events = append(part.Events, ev)
	}
	return part
}

// ShardCount is the cluster's shard count (backend.Reader).
func (rd *reader) ShardCount() int { return rd.router.shards.ShardCount() }

// ListEvents reads one shard's events (backend.Reader), linearizably as every read.
func (rd *reader) ListEvents(shardID int, after uint64, limit int) (*backend.ShardEvents, error) {
	if shardID < 0 || shardID >= rd.router.shards.ShardCount() {
		return nil, fmt.Errorf("routing: listEvents of shard %d of %d", shardID, rd.router.shards.ShardCount())
	}
	if after > 1<<63-1 || limit < 0 || limit > backend.EventsMaxCount {
		return nil, fmt.Errorf("routing: listEvents after %d, limit %d", after, limit)
	}
	a, err := rd.ask(shardID, shardQuery{Kind: queryListEvents, Page: ledger.PageRequest{Page: int(after), PageSize: limit}})
	if err != nil {
		return nil, err
	}
	return a.Events, nil
}

// WaitForEvents returns once some shard may hold an event above after[shard]
// (backend.Backend). A shard hosted here wakes it when its replica applies a batch with events
// (fsm.Machine.EventsChanged); a shard hosted elsewhere, or by a replica here that is outside
// its configuration and so applies nothing (Shards.Follows), is asked again every
// eventsPollInterval, so a long poll costs one range query per such shard per interval.
// The local check reads the replica without a fence: a replica behind its leader only wakes
// the waiter later, when it applies the events, and the caller's read fences.
func (r *Router) WaitForEvents(ctx context.Context, after []uint64) error {
	count := r.shards.ShardCount()
	if len(after) != count {
		return fmt.Errorf("routing: wait for events of %d shards; the cluster has %d", len(after), count)
	}
	cases := []reflect.SelectCase{{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())}}
	polled := make([]bool, count)
	remote := false
	for shardID := range count {
		outbox := r.shards.Outbox(shardID)
		if outbox == nil || !r.shards.Follows(shardID) {
			polled[shardID], remote = true, true
			continue
		}
		changed := outbox.EventsChanged() // before reading, so that no batch slips between
		_, last, err := outbox.OutboxRange()
		if err != nil {
			return err
		}
		if last > after[shardID] {
			return nil
		}
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(changed)})
	}
	if remote {
		rd := r.newReader(ctx)
		for shardID := range count {
			if !polled[shardID] {
				continue
			}
			part, err := rd.ListEvents(shardID, after[shardID], 0)
			if err != nil {
				return err
			}
			if part.Last > after[shardID] {
				return nil
			}
		}
		poll := time.NewTimer(eventsPollInterval)
		defer poll.Stop()
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(poll.C)})
	}
	if chosen, _, _ := reflect.Select(cases); chosen == 0 {
		return ctx.Err()
	}
	return nil
}

// ListSubscriptions reads the event subscriptions from the metadata shard.
func (rd *reader) ListSubscriptions() ([]fsm.Subscription, error) {
	a, err := rd.ask(MetadataShard, shardQuery{Kind: queryListSubscriptions})
	if err != nil {
		return nil, err
	}
	return a.Subscriptions, nil
}

// ListDeadLetters reads up to limit dead letters of a shard with sequence > after, of one
// subscriber ("" for all), oldest first.
func (rd *reader) ListDeadLetters(shardID int, subscriber string, after uint64, limit int) ([]fsm.DeadLetter, error) {
	if shardID < 0 || shardID >= rd.router.shards.ShardCount() {
		return nil, fmt.Errorf("routing: no shard %d", shardID)
	}
	a, err := rd.ask(shardID, shardQuery{Kind: queryListDeadLetters, ID: subscriber,
		Page: ledger.PageRequest{Page: int(after), PageSize: limit}})
	if err != nil {
		return nil, err
	}
	return a.DeadLetters, nil
}
