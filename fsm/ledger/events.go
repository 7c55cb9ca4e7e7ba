package ledger

import (
	"fmt"

	"github.com/gigaledger/gigaledger/fsm"
)

// Events the accounting core appends to the shard's outbox, in the apply that makes the change.
// A wallet or hold event carries the subject's record as it was (they change later); a
// transaction event carries only its key (project, sequence), because a transaction record never
// changes and copying it into the outbox doubled the bytes every transfer writes.
// Ledger.EventSubject reads an event's subject back for delivery.
const (
	EventTransactionCompleted = "LEDGER_TX_COMPLETED"
	EventTransactionFailed    = "LEDGER_TX_FAILED"
	EventWalletStatusChanged  = "LEDGER_WALLET_STATUS"
	EventHoldCaptured         = "LEDGER_HOLD_CAPTURED"
	EventHoldReleased         = "LEDGER_HOLD_RELEASED"
	EventHoldExpired          = "LEDGER_HOLD_EXPIRED"
)

func (l *Ledger) emitTransaction(t *Transaction) {
	eventType := EventTransactionCompleted
	if t.Status == TransactionFailed {
		eventType = EventTransactionFailed
	}
	e := &l.eventScratch // Emit copies the data: one buffer serves every event
	e.Buf = e.Buf[:0]
	e.String(t.ProjectID)
	e.Uvarint(t.Sequence)
	l.b.Emit(eventType, e.Buf)
}

func (l *Ledger) emitWalletStatus(w *Wallet) { l.b.Emit(EventWalletStatusChanged, record(w)) }

func (l *Ledger) emitHold(h *Hold) {
	eventType := map[HoldStatus]string{HoldCaptured: EventHoldCaptured, HoldReleased: EventHoldReleased,
		HoldExpired: EventHoldExpired}[h.Status]
	l.b.Emit(eventType, record(h))
}

// EventSubject returns the subject of one of the family's events: *Transaction, *Wallet or
// *Hold; ok is false for another family's event.
func (l *Ledger) EventSubject(ev fsm.Event) (subject fsm.Value, ok bool, err error) {
	switch ev.Type {
	case EventTransactionCompleted, EventTransactionFailed:
		d := fsm.NewDecoder(ev.Data)
		projectID, sequence := d.String(), d.Uvarint()
		if err := d.Finish("transaction event"); err != nil {
			return nil, true, err
		}
		err = l.read(func() error {
			v, err := l.transactionRecord(projectID, sequence)
			if err == nil && v == nil {
				err = fmt.Errorf("transaction event %d names missing transaction %s/%d", ev.Sequence, projectID, sequence)
			}
			if err == nil {
				subject, err = decodeTransaction(v)
			}
			return err
		})
	case EventWalletStatusChanged:
		subject, err = decodeWallet(ev.Data)
	case EventHoldCaptured, EventHoldReleased, EventHoldExpired:
		subject, err = decodeHold(ev.Data)
	default:
		return nil, false, nil
	}
	return subject, true, err
}
