package gigawallet

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"net/http"

	"github.com/btcsuite/btcd/wire"

	"github.com/gigaledger/gigaledger/chainwatch/dogecoin"
	"github.com/gigaledger/gigaledger/chainwatch/payout"
	"github.com/gigaledger/gigaledger/fsm"
)

// The DogeConnect payment relay (DogeConnect 1.0, "Payment Relay"): the envelope's relay is
// <public root>/dc/<invoice>, and a wallet that paid the envelope's outputs POSTs
//
//	<relay>/pay     {"id", "tx"}  → {"id", "status": accepted|declined, "reason"?, "required", "confirmed", "due_sec"}
//	<relay>/status  {"id"}        → {"id", "status": unpaid|accepted|confirmed, "required", "confirmed", "due_sec"}
//
// A transaction that is malformed or does not pay the invoice is 400; a refusal by the node
// (a double spend, a fee below its floor) is a declined reply. Errors are DogeConnect's:
// {"error": not_found|expired|invalid_tx|invalid_outputs, "message"}.

// Relay statuses and error codes.
const (
	RelayAccepted  = "accepted"
	RelayDeclined  = "declined"
	RelayUnpaid    = "unpaid"
	RelayConfirmed = "confirmed"

	RelayErrorNotFound       = "not_found"
	RelayErrorExpired        = "expired"
	RelayErrorInvalidTx      = "invalid_tx"
	RelayErrorInvalidOutputs = "invalid_outputs"
	// RelayErrorBadRequest is a body that is not a relay request at all, and
	// RelayErrorUnavailable a 503 (no node to send the transaction to, or its answer unknown):
	// DogeConnect's list has no code for either, and a wallet takes any answer but 200 as a
	// failure.
	RelayErrorBadRequest  = "bad_request"
	RelayErrorUnavailable = "unavailable"
)

// blockSeconds is Dogecoin's target block interval, for a reply's due_sec.
const blockSeconds = 60

// RelayError is a relay refusal: the HTTP status and DogeConnect's error body.
type RelayError struct {
	Status  int    `json:"-"`
	Code    string `json:"error"`
	Message string `json:"message"`
	// Cause is what the node logs beside an answer it could not give; never sent.
	Cause error `json:"-"`
}

func (e *RelayError) Error() string { return e.Code + ": " + e.Message }

func relayError(status int, code, format string, args ...any) *RelayError {
	return &RelayError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// RelayReply is the answer of pay and status. As DogeConnect's reference validator has it:
// reason only when declined; txid, required, confirmed and due_sec only when accepted or
// confirmed (RelayProgress sets them).
type RelayReply struct {
	ID        string `json:"id"`
	Status    string `json:"status"`
	Reason    string `json:"reason,omitempty"`
	TxID      string `json:"txid,omitempty"`
	Required  *int32 `json:"required,omitempty"`
	Confirmed *int32 `json:"confirmed,omitempty"`
	DueSec    *int64 `json:"due_sec,omitempty"`
}

type relayPayRequest struct {
	ID         string `json:"id"`
	Tx         string `json:"tx"`
	Refund     string `json:"refund"`
	RelayToken string `json:"relay_token"`
}

type relayStatusRequest struct {
	ID string `json:"id"`
}

// RelayPayment is a decoded payment submission: the transaction and its bytes.
type RelayPayment struct {
	Tx  *wire.MsgTx
	Raw []byte
}

// DecodeRelayPay reads POST <relay>/pay strictly: id must be the relay's payment ID (the
// invoice), tx one hex-encoded transaction of at most ConnectMaxSizeDefaultBytes with nothing
// after it.
func DecodeRelayPay(body io.Reader, paymentID string) (RelayPayment, *RelayError) {
	var request relayPayRequest
	if e := decodeBody(body, &request); e != nil {
		return RelayPayment{}, relayError(e.Status, RelayErrorBadRequest, "%s", e.Message)
	}
	if request.ID != paymentID {
		return RelayPayment{}, relayError(http.StatusNotFound, RelayErrorNotFound, "id %q is not this relay's payment (%s)", request.ID, paymentID)
	}
	if len(request.Tx) == 0 || len(request.Tx) > 2*ConnectMaxSizeDefaultBytes {
		return RelayPayment{}, relayError(http.StatusBadRequest, RelayErrorInvalidTx, "tx must be a hex-encoded transaction of at most %d bytes", ConnectMaxSizeDefaultBytes)
	}
	raw, err := hex.DecodeString(request.Tx)
	if err != nil {
		return RelayPayment{}, relayError(http.StatusBadRequest, RelayErrorInvalidTx, "tx is not hex: %v", err)
	}
	tx := new(wire.MsgTx)
	reader := bytes.NewReader(raw)
	// Dogecoin has no segregated witness: the base encoding, all of it.
	if err := tx.BtcDecode(reader, wire.ProtocolVersion, wire.BaseEncoding); err != nil {
		return RelayPayment{}, relayError(http.StatusBadRequest, RelayErrorInvalidTx, "tx is not a Dogecoin transaction: %v", err)
	}
	if reader.Len() != 0 {
		return RelayPayment{}, relayError(http.StatusBadRequest, RelayErrorInvalidTx, "tx has %d bytes after the transaction", reader.Len())
	}
	if len(tx.TxIn) == 0 || len(tx.TxOut) == 0 {
		return RelayPayment{}, relayError(http.StatusBadRequest, RelayErrorInvalidTx, "tx has no inputs or no outputs")
	}
	// As the node's own check (Core's bad-txns-vout-negative, -vout-toolarge,
	// -txouttotal-toolarge): no output and no sum of them outside 0..MAX_MONEY, so that no
	// impossible value passes the relay's check of what pays the invoice.
	const moneyMax = int64(payout.MoneyMaxKoinu)
	var sum int64
	for i, out := range tx.TxOut {
		if out.Value < 0 || out.Value > moneyMax || sum+out.Value > moneyMax { // sum ≤ moneyMax: no overflow
			return RelayPayment{}, relayError(http.StatusBadRequest, RelayErrorInvalidTx, "output %d's value is out of range (more than %s DOGE in all)", i, FormatKoinu(fsm.AmountFromUint64(payout.MoneyMaxKoinu)))
		}
		sum += out.Value
	}
	return RelayPayment{Tx: tx, Raw: raw}, nil
}

// DecodeRelayStatus reads POST <relay>/status strictly.
func DecodeRelayStatus(body io.Reader, paymentID string) *RelayError {
	var request relayStatusRequest
	if e := decodeBody(body, &request); e != nil {
		return relayError(e.Status, RelayErrorBadRequest, "%s", e.Message)
	}
	if request.ID != paymentID {
		return relayError(http.StatusNotFound, RelayErrorNotFound, "id %q is not this relay's payment (%s)", request.ID, paymentID)
	}
	return nil
}

// CheckRelayOutputs refuses a transaction that does not pay address at least total koinu in
// its P2PKH outputs (the envelope's one output): invalid_outputs, 400.
func CheckRelayOutputs(tx *wire.MsgTx, address string, total fsm.Amount, network dogecoin.Network) *RelayError {
	var paid uint64
	for _, out := range dogecoin.P2PKHOutputs(tx, network) {
		if out.Address != address {
			continue
		}
		if out.ValueKoinu < 0 || uint64(out.ValueKoinu) > math.MaxUint64-paid {
			return relayError(http.StatusBadRequest, RelayErrorInvalidTx, "output %d has an invalid amount", out.Index)
		}
		paid += uint64(out.ValueKoinu)
	}
	if total.Hi != 0 || paid < total.Lo {
		return relayError(http.StatusBadRequest, RelayErrorInvalidOutputs, "the transaction pays %s DOGE to %s; the payment is %s DOGE",
			FormatKoinu8DP(fsm.AmountFromUint64(paid)), address, FormatKoinu8DP(total))
	}
	return nil
}

// RelayProgress fills a reply's required, confirmed and due_sec for a payment that needs
// required confirmations, of which it has confirmed.
func (r *RelayReply) RelayProgress(required, confirmed int32) {
	var due int64
	if left := required - confirmed; left > 0 {
		due = int64(left) * blockSeconds
	}
	r.Required, r.Confirmed, r.DueSec = &required, &confirmed, &due
}
