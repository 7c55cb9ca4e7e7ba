package gigpay

import (
	"strings"
	"time"
)

// Times are RFC 3339 in UTC with milliseconds ("2024-01-09T18:00:56.246Z"). Input may carry an
// offset (it is converted), fewer fraction digits and RFC 3339's lowercase "t" and "z"; digits
// finer than a millisecond must be zeros (the ledger keeps milliseconds and never rounds a
// client's time).
const (
	timeLayout       = "2006-01-02T15:04:05.000Z"
	timeTextMaxBytes = 64
	// Bounds of a time the API accepts: years 1970..9999.
	timeMinMs = 0
	timeMaxMs = 253402300799999
)

// FormatTime writes Unix milliseconds as the API's time.
func FormatTime(ms int64) string { return time.UnixMilli(ms).UTC().Format(timeLayout) }

// ParseTime reads an RFC 3339 time as Unix milliseconds.
func ParseTime(field, text string) (int64, *Error) {
	if text == "" {
		return 0, invalid("%s is required", field)
	}
	if len(text) > timeTextMaxBytes || strings.ContainsAny(text, " \t") {
		return 0, invalid("%s must be an RFC 3339 time such as \"2024-01-09T18:00:56.246Z\"", field)
	}
	t, err := time.Parse(time.RFC3339Nano, upperSeparators(text))
	if err != nil || !offsetInRange(text) {
		return 0, invalid("%s must be an RFC 3339 time such as \"2024-01-09T18:00:56.246Z\"", field)
	}
	if t.Nanosecond()%int(time.Millisecond) != 0 {
		return 0, invalid("%s is finer than a millisecond", field)
	}
	ms := t.UnixMilli()
	if ms < timeMinMs || ms > timeMaxMs {
		return 0, invalid("%s must be between 1970 and 9999", field)
	}
	return ms, nil
}

// upperSeparators writes RFC 3339's lowercase date-time separator "t" and zone "z" (section
// 5.6 allows both) as the capitals Go's parser insists on. Only those two places are touched:
// a time has no other letter.
func upperSeparators(text string) string {
	if len(text) > 10 && text[10] == 't' {
		text = text[:10] + "T" + text[11:]
	}
	if last := len(text) - 1; text[last] == 'z' {
		text = text[:last] + "Z"
	}
	return text
}

// offsetInRange reports whether a time that time.Parse took has an RFC 3339 offset: Z, or
// ±hh:mm with hh at most 23 and mm at most 59. Go takes +24:00 and +05:60 (an hour) too.
func offsetInRange(text string) bool {
	if last := text[len(text)-1]; last == 'Z' || last == 'z' {
		return true
	}
	if len(text) < 6 {
		return false
	}
	offset := text[len(text)-6:] // the parse checked its form: ±hh:mm
	hours := int(offset[1]-'0')*10 + int(offset[2]-'0')
	minutes := int(offset[4]-'0')*10 + int(offset[5]-'0')
	return hours <= 23 && minutes <= 59
}
