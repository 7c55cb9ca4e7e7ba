package cloudwallet

import "strconv"

// AppendJSON appends t exactly as json.Marshal writes it, for the transfer route's answer
// without reflection; ok is false (and dst comes back as it was) when a string of it would
// need an escape (json.Marshal escapes quotes, backslashes, control characters, <, > and &, and
// checks UTF-8), and then the caller marshals it with encoding/json.
func (t *Transaction) AppendJSON(dst []byte) (_ []byte, ok bool) {
	start := len(dst)
	for _, field := range [...]struct{ key, value string }{
		{`{"id":`, t.ID}, {`,"projectId":`, t.ProjectID}, {`,"referenceId":`, t.ReferenceID}, {`,"status":`, t.Status},
	} {
		dst = append(dst, field.key...)
		if dst, ok = appendPlainString(dst, field.value); !ok {
			return dst[:start], false
		}
	}
	dst = append(dst, `,"operations":`...)
	if t.Operations == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '[')
		for i := range t.Operations {
			if i > 0 {
				dst = append(dst, ',')
			}
			if dst, ok = t.Operations[i].appendJSON(dst); !ok {
				return dst[:start], false
			}
		}
		dst = append(dst, ']')
	}
	if t.FailedOperationIndex != nil {
		dst = append(dst, `,"failedOperationIndex":`...)
		dst = strconv.AppendInt(dst, int64(*t.FailedOperationIndex), 10)
	}
	for _, field := range [...]struct{ key, value string }{{`,"failureReason":`, t.FailureReason}, {`,"failureMessage":`, t.FailureMessage}} {
		if field.value != "" {
			dst = append(dst, field.key...)
			if dst, ok = appendPlainString(dst, field.value); !ok {
				return dst[:start], false
			}
		}
	}
	dst = append(dst, `,"createdAt":`...)
	dst = strconv.AppendInt(dst, t.CreatedAt, 10)
	return append(dst, '}'), true
}

// appendJSON appends o as json.Marshal writes it (see Transaction.AppendJSON).
func (o *Operation) appendJSON(dst []byte) (_ []byte, ok bool) {
	dst = append(dst, `{"type":`...)
	if dst, ok = appendPlainString(dst, o.Type); !ok {
		return dst, false
	}
	for _, field := range [...]struct{ key, value string }{{`,"from":`, o.From}, {`,"to":`, o.To}} {
		if field.value != "" {
			dst = append(dst, field.key...)
			if dst, ok = appendPlainString(dst, field.value); !ok {
				return dst, false
			}
		}
	}
	dst = append(dst, `,"amount":`...)
	dst = append(dst, o.Amount.String()...)
	if o.ExpiresAt != 0 {
		dst = append(dst, `,"expiresAt":`...)
		dst = strconv.AppendInt(dst, o.ExpiresAt, 10)
	}
	if o.HoldID != "" {
		dst = append(dst, `,"holdId":`...)
		if dst, ok = appendPlainString(dst, o.HoldID); !ok {
			return dst, false
		}
	}
	return append(dst, '}'), true
}

// appendPlainString appends s quoted when json.Marshal would write it with no escape: printable
// ASCII other than the quote, the backslash and the HTML characters <, > and &.
func appendPlainString(dst []byte, s string) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return dst, false
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"'), true
}
