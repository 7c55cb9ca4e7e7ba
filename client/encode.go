package client

import (
	"fmt"
	"strconv"
)

// The transaction body is encoded by hand: it is the hot path of every load generator built
// on this package, and reflection would cost the client more than the server spends on it.

// appendJSON appends r as JSON, or returns an error for an operation the API would refuse for
// its shape (unknown type, a missing or extra wallet, a malformed amount), so that what is sent
// is exactly what the caller meant.
func (r TransactionRequest) appendJSON(buf []byte) ([]byte, error) {
	buf = append(buf, `{"referenceId":`...)
	buf = appendJSONString(buf, r.ReferenceID)
	buf = append(buf, `,"operations":[`...)
	for index, operation := range r.Operations {
		if err := operation.check(); err != nil {
			return nil, fmt.Errorf("gigaledger: transaction %q operation %d: %w", r.ReferenceID, index, err)
		}
		if index > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"type":`...)
		buf = appendJSONString(buf, string(operation.Type))
		if operation.From != "" {
			buf = append(buf, `,"from":`...)
			buf = appendJSONString(buf, operation.From)
		}
		if operation.To != "" {
			buf = append(buf, `,"to":`...)
			buf = appendJSONString(buf, operation.To)
		}
		buf = append(buf, `,"amount":`...)
		buf = operation.Amount.appendJSON(buf)
		if operation.ExpiresAt != 0 {
			buf = append(buf, `,"expiresAt":`...)
			buf = strconv.AppendInt(buf, operation.ExpiresAt, 10)
		}
		buf = append(buf, '}')
	}
	return append(buf, "]}"...), nil
}

// check refuses an operation whose wallets do not fit its type, an expiry on anything but a
// hold or before the epoch, or a malformed amount. HoldID is not checked: it is never sent.
func (o Operation) check() error {
	var wantFrom, wantTo bool
	switch o.Type {
	case OperationIssue:
		wantTo = true
	case OperationRedeem, OperationHold:
		wantFrom = true
	case OperationTransfer:
		wantFrom, wantTo = true, true
	default:
		return fmt.Errorf("unknown operation type %q", o.Type)
	}
	if (o.From != "") != wantFrom || (o.To != "") != wantTo {
		return fmt.Errorf("%s names from %q and to %q", o.Type, o.From, o.To)
	}
	if o.ExpiresAt < 0 || (o.ExpiresAt != 0 && o.Type != OperationHold) {
		return fmt.Errorf("%s has expiresAt %d: only a hold expires, at a time after the epoch", o.Type, o.ExpiresAt)
	}
	return o.Amount.Valid()
}

// hexDigits are the digits of \u escapes.
const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string. Quotes, backslashes and control characters are
// escaped; everything else is copied as it is (invalid UTF-8 included: the server refuses it
// rather than the client silently replacing it).
func appendJSONString(buf []byte, s string) []byte {
	buf = append(buf, '"')
	for i := 0; i < len(s); i++ {
		b := s[i]
		switch {
		case b == '"' || b == '\\':
			buf = append(buf, '\\', b)
		case b < 0x20:
			buf = append(buf, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
		default:
			buf = append(buf, b)
		}
	}
	return append(buf, '"')
}
