package ledger

import "github.com/gigaledger/gigaledger/fsm"

// Events the accounting core appends to the shard's outbox, in the apply that makes the change.
// An event's data is the record of its subject (a transaction, a wallet, a hold) in the store's
// encoding; DecodeEvent reads it back for delivery.
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
	l.b.Emit(eventType, record(t))
}

func (l *Ledger) emitWalletStatus(w *Wallet) { l.b.Emit(EventWalletStatusChanged, record(w)) }

func (l *Ledger) emitHold(h *Hold) {
	eventType := map[HoldStatus]string{HoldCaptured: EventHoldCaptured, HoldReleased: EventHoldReleased,
		HoldExpired: EventHoldExpired}[h.Status]
	l.b.Emit(eventType, record(h))
}

// DecodeEvent returns the subject of one of the family's events: *Transaction, *Wallet or
// *Hold; ok is false for another family's event.
func DecodeEvent(ev fsm.Event) (subject fsm.Value, ok bool, err error) {
	switch ev.Type {
	case EventTransactionCompleted, EventTransactionFailed:
		subject, err = decodeTransaction(ev.Data)
	case EventWalletStatusChanged:
		subject, err = decodeWallet(ev.Data)
	case EventHoldCaptured, EventHoldReleased, EventHoldExpired:
		subject, err = decodeHold(ev.Data)
	default:
		return nil, false, nil
	}
	return subject, true, err
}
