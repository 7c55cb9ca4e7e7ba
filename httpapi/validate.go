package httpapi

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/ledger"
)

// Validation of single values. Each check names the field in its message, so a client sees which
// part of its request to fix. Messages quote at most a bounded prefix of what the client sent.

// checkSimpleID checks an ID of 1..maxChars characters from [A-Za-z0-9_.-] (projects, assets,
// and the wallet and transaction IDs this package makes), as fsm.ValidID does, and not "." or
// "..", which a URL path cannot address.
func checkSimpleID(field, value string, maxChars int) *apiError {
	if value == "" {
		return invalidArgument("%s is required", field)
	}
	if len(value) > maxChars {
		return invalidArgument("%s must be at most %d characters", field, maxChars)
	}
	for i := 0; i < len(value); i++ {
		if !isSimpleIDByte(value[i]) {
			return invalidArgument("%s may contain only letters, digits, '_', '.' and '-'", field)
		}
	}
	if isDotSegment(value) {
		return invalidArgument("%s must not be %q (a URL path cannot address it)", field, value)
	}
	return nil
}

func isSimpleIDByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '_' || b == '.' || b == '-'
}

// isDotSegment reports whether an ID is "." or "..": URL clients and proxies resolve them as
// path segments, so a record with such an ID could never be addressed.
func isDotSegment(value string) bool {
	return value == "." || value == ".."
}

// checkCustomerID checks a customer ID: the integrator's own identifier (a number, a string, an
// email) of 1..fsm.CustomerIDMaxLength bytes of printable characters (checkPrintable), without
// '/' and not "." or ".." (it is a path segment).
func checkCustomerID(field, value string) *apiError {
	if value == "" {
		return invalidArgument("%s is required", field)
	}
	if apiErr := checkPrintable(field, value, fsm.CustomerIDMaxLength); apiErr != nil {
		return apiErr
	}
	if strings.IndexByte(value, '/') >= 0 {
		return invalidArgument("%s must not contain '/'", field)
	}
	if isDotSegment(value) {
		return invalidArgument("%s must not be %q (a URL path cannot address it)", field, value)
	}
	return nil
}

// checkPrintable checks an identifier the client chooses (customer IDs, referenceId): valid UTF-8
// of at most maxBytes bytes, every character printable as Go's unicode.IsPrint says (letters,
// marks, numbers, punctuation, symbols and the ASCII space). Control, format (zero-width,
// bidirectional, BOM), other space and unassigned characters are refused: two identifiers that
// look the same must be the same.
func checkPrintable(field, value string, maxBytes int) *apiError {
	if apiErr := checkText(field, value, maxBytes); apiErr != nil {
		return apiErr
	}
	if printableASCII(value) {
		return nil
	}
	for _, r := range value {
		if !unicode.IsPrint(r) {
			return invalidArgument("%s must contain only printable characters (found %U)", field, r)
		}
	}
	return nil
}

// checkText checks free text (names, codes, descriptions) as the fsm does (fsm.ValidText) and
// more: valid UTF-8 of at most maxBytes bytes without control characters (Unicode Cc), line or
// paragraph separators (Zl, Zp) or format characters (Cf: zero-width, bidirectional overrides
// and isolates, BOM), except the zero-width joiner and non-joiner (U+200D, U+200C) that emoji
// sequences and several scripts need.
func checkText(field, value string, maxBytes int) *apiError {
	if len(value) > maxBytes {
		return invalidArgument("%s must be at most %d bytes of UTF-8", field, maxBytes)
	}
	if printableASCII(value) {
		return nil
	}
	if !utf8.ValidString(value) {
		return invalidArgument("%s must be valid UTF-8", field)
	}
	if !fsm.ValidText(value, maxBytes) {
		return invalidArgument("%s must not contain control characters", field)
	}
	for _, r := range value {
		if fsm.HiddenFormat(r) {
			return invalidArgument("%s must not contain invisible format or separator characters (found %U)", field, r)
		}
	}
	return nil
}

// checkRequiredText is checkText for a value that must not be empty.
func checkRequiredText(field, value string, maxBytes int) *apiError {
	if value == "" {
		return invalidArgument("%s is required", field)
	}
	return checkText(field, value, maxBytes)
}

// parseAmount reads a positive amount from its raw JSON: an integer literal or a string holding
// one. The text goes straight to fsm.ParseAmount and never through float64, so 2^128−1 stays
// exact and 1.5 or 1e3 is refused rather than rounded.
func parseAmount(field string, raw json.RawMessage) (fsm.Amount, *apiError) {
	if len(raw) == 0 {
		return fsm.Amount{}, badRequest(CodeInvalidAmount, "%s is required", field)
	}
	const wholeNumberHint = "a whole positive number of the asset's smallest parts, as a JSON integer or a string of digits (no sign, fraction or exponent)"
	digits := raw
	if isQuotedDigits(raw) {
		digits = raw[1 : len(raw)-1]
	}
	if isDigits(digits) {
		if len(digits) > 1 && digits[0] == '0' {
			return fsm.Amount{}, badRequest(CodeInvalidAmount, "%s must not have leading zeros", field)
		}
		if len(digits) > amountMaxDigits {
			return fsm.Amount{}, badRequest(CodeInvalidAmount, "%s exceeds the largest amount 2^128-1", field)
		}
	}
	var amount fsm.Amount
	if err := amount.UnmarshalJSON(raw); err != nil {
		if errors.Is(err, fsm.ErrAmountOverflow) {
			return fsm.Amount{}, badRequest(CodeInvalidAmount, "%s exceeds the largest amount 2^128-1", field)
		}
		return fsm.Amount{}, badRequest(CodeInvalidAmount, "%s must be %s", field, wholeNumberHint)
	}
	if amount.IsZero() {
		return fsm.Amount{}, badRequest(CodeInvalidAmount, "%s must be greater than zero", field)
	}
	return amount, nil
}

func isDigits(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func isQuotedDigits(b []byte) bool {
	return len(b) >= 3 && b[0] == '"' && b[len(b)-1] == '"' && isDigits(b[1:len(b)-1])
}

// parseWalletStatus reads a wallet status name as the API spells it.
func parseWalletStatus(field, value string) (ledger.WalletStatus, *apiError) {
	for _, status := range []ledger.WalletStatus{ledger.WalletOpen, ledger.WalletSuspendedStatus, ledger.WalletClosed} {
		if status.String() == value {
			return status, nil
		}
	}
	return 0, invalidArgument("%s must be one of open, suspended, closed", field)
}

// parseOperationType reads an operation type name as the API spells it.
func parseOperationType(field, value string) (ledger.OperationType, *apiError) {
	for _, kind := range []ledger.OperationType{ledger.OperationTransfer, ledger.OperationIssue, ledger.OperationRedeem, ledger.OperationHold} {
		if kind.String() == value {
			return kind, nil
		}
	}
	return 0, invalidArgument("%s must be one of transfer, issue, redeem, hold", field)
}

// parseIntQuery reads an integer query parameter. present is false when the parameter is absent.
func parseIntQuery(name, value string, present bool, required bool) (v int64, ok bool, err *apiError) {
	if !present || value == "" {
		if required {
			return 0, false, invalidArgument("query parameter %s is required", name)
		}
		return 0, false, nil
	}
	v, parseErr := strconv.ParseInt(value, 10, 64)
	if parseErr != nil || value[0] == '+' {
		// A '+' sign is refused as strconv would take it: '+' in a query string is a space to
		// most clients, so "page=+1" arrives as " 1" and "from=%2B5" as "+5"; one rule for both.
		return 0, false, invalidArgument("query parameter %s must be an integer", name)
	}
	return v, true, nil
}

// pageQuery is the raw page, pageSize, from and to query parameters of a list request.
type pageQuery struct {
	page, pageSize, from, to                             string
	pagePresent, pageSizePresent, fromPresent, toPresent bool
}

// parsePage checks page (required, ≥ 1) and pageSize (1..pageSizeMaxCount, default
// pageSizeDefaultCount).
func parsePage(q pageQuery) (ledger.PageRequest, *apiError) {
	page, _, err := parseIntQuery("page", q.page, q.pagePresent, true)
	if err != nil {
		return ledger.PageRequest{}, err
	}
	if page < 1 || page > pageNumberMax {
		return ledger.PageRequest{}, invalidArgument("query parameter page must be between 1 and %d", pageNumberMax)
	}
	pageSize, given, err := parseIntQuery("pageSize", q.pageSize, q.pageSizePresent, false)
	if err != nil {
		return ledger.PageRequest{}, err
	}
	if !given {
		pageSize = pageSizeDefaultCount
	}
	if pageSize < 1 {
		return ledger.PageRequest{}, invalidArgument("query parameter pageSize must be at least 1")
	}
	if pageSize > pageSizeMaxCount {
		return ledger.PageRequest{}, badRequest(CodeLimitExceeded, "query parameter pageSize must be at most %d", pageSizeMaxCount)
	}
	return ledger.PageRequest{Page: int(page), PageSize: int(pageSize)}, nil
}

// parseTimeRange checks from and to (epoch milliseconds, from ≤ to, both inclusive). The
// Cloud Wallet reference requires both; GigaLedger also takes either or neither, meaning no
// bound on that side (from 0, to the largest int64), so a client that sends them sees the
// same answers and a person listing everything need not invent a far-future bound.
func parseTimeRange(q pageQuery) (ledger.TimeRange, *apiError) {
	from, _, err := parseIntQuery("from", q.from, q.fromPresent, false)
	if err != nil {
		return ledger.TimeRange{}, err
	}
	to, toGiven, err := parseIntQuery("to", q.to, q.toPresent, false)
	if err != nil {
		return ledger.TimeRange{}, err
	}
	if from < 0 || to < 0 {
		return ledger.TimeRange{}, invalidArgument("query parameters from and to must be times in Unix milliseconds, 0 or more")
	}
	if !toGiven {
		to = math.MaxInt64
	}
	if from > to {
		// from may be the default: say which values met.
		return ledger.TimeRange{}, invalidArgument("query parameter from (%d) must not be after to (%d)", from, to)
	}
	return ledger.TimeRange{FromMs: from, ToMs: to}, nil
}

// printableASCII reports whether every byte of s is printable ASCII (space to '~'): such text
// is valid UTF-8 and holds no control, format or separator character, so it passes checkText
// and checkPrintable without their per-rune table lookups. IDs and references nearly always
// are; in batches of 1,000 transactions those lookups were 4.6 % of the leader's CPU.
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}
