package gigpay

import (
	"encoding/base64"

	"github.com/gigaledger/gigaledger/fsm"
	fsmgigpay "github.com/gigaledger/gigaledger/fsm/gigpay"
)

// The payments list's cursor: base64url (no padding) of a version byte, the sort, the order
// (0 ascending, 1 descending) and the position the next page continues after (the last sort
// key the previous page covered: creation time then payment ID, or the 32-byte amount key then
// payment ID). Opaque to clients; strict on the way in: canonical base64, the version, and a
// sort and order equal to the request's (a cursor of another order would skip or repeat).
const (
	cursorVersion = 1
	// positionMaxBytes: the longer key (amount) and the longest ID.
	positionMaxBytes = 32 + fsm.GeneratedIDMaxLength
	// CursorMaxChars bounds a cursor's text.
	CursorMaxChars = (3 + positionMaxBytes + 2) * 4 / 3
)

var cursorEncoding = base64.RawURLEncoding.Strict()

// EncodeCursor writes a position of a query's order.
func EncodeCursor(sort fsmgigpay.PaymentSort, descending bool, position []byte) string {
	buf := make([]byte, 0, 3+len(position))
	buf = append(buf, cursorVersion, byte(sort), boolByte(descending))
	return cursorEncoding.EncodeToString(append(buf, position...))
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// DecodeCursor reads a cursor for a query of sort and order.
func DecodeCursor(text string, sort fsmgigpay.PaymentSort, descending bool) ([]byte, *Error) {
	if len(text) > CursorMaxChars {
		return nil, newError(CodeInvalidCursor, "cursor is not one this API wrote")
	}
	raw, err := cursorEncoding.DecodeString(text)
	if err != nil || len(raw) < 3 || raw[0] != cursorVersion || raw[2] > 1 {
		return nil, newError(CodeInvalidCursor, "cursor is not one this API wrote")
	}
	if fsmgigpay.PaymentSort(raw[1]) != sort || (raw[2] == 1) != descending {
		return nil, newError(CodeInvalidCursor, "cursor belongs to another sort or order; send the same sort and order as the request that returned it")
	}
	position := raw[3:]
	keyBytes := 8
	if sort == fsmgigpay.SortAmount {
		keyBytes = 32
	}
	if len(position) <= keyBytes || !fsm.ValidID(string(position[keyBytes:]), fsm.GeneratedIDMaxLength) {
		return nil, newError(CodeInvalidCursor, "cursor is not one this API wrote")
	}
	return position, nil
}
