package fsm

import (
	"unicode"
	"unicode/utf8"
)

// Limits on what one command may carry. httpapi checks the same constants before proposing;
// the FSM checks them again because it never trusts the log more than the network.
const (
	IDMaxLength                  = 30   // project and asset IDs
	GeneratedIDMaxLength         = 64   // wallet and transaction IDs
	TransactionIDPrefixMaxLength = 16   // the proposer's part of a transaction ID
	CustomerIDMaxLength          = 128  // customer IDs (the integrator's own IDs, e.g. e-mails)
	ReferenceIDMaxLength         = 128  // transaction reference IDs
	NameMaxLength                = 200  // names of projects, assets, customers and wallets
	CodeMaxLength                = 16   // asset codes
	DescriptionMaxLength         = 1000 // descriptions
	OperationsMaxCount           = 100  // operations in one transaction
	ResumeWalletIDsMaxCount      = 1000 // wallet IDs in one resume
)

// ValidID reports whether s is a well-formed project, asset, wallet or transaction ID of at
// most maxLength bytes: letters, digits, '_', '.', '-'.
func ValidID(s string, maxLength int) bool {
	if s == "" || len(s) > maxLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// ValidCustomerID reports whether s is a usable customer ID: 1..CustomerIDMaxLength bytes of
// printable UTF-8 without '/'.
func ValidCustomerID(s string) bool {
	return s != "" && len(s) <= CustomerIDMaxLength && ValidText(s, CustomerIDMaxLength) && !containsByte(s, '/')
}

// ValidText reports whether s is valid UTF-8 of at most maxLength bytes without control
// characters.
func ValidText(s string, maxLength int) bool {
	if len(s) > maxLength || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// HiddenFormat reports whether r is a format (Cf: zero-width, bidirectional overrides and
// isolates, BOM) or line/paragraph separator (Zl, Zp) character, which free text the APIs take
// (names, descriptions, memos, reasons) must not hold: it hides or reorders what a reader
// sees. The zero-width joiner and non-joiner (U+200D, U+200C), which emoji sequences and
// several scripts need, are not. The APIs check it; apply does not, as for Printable.
func HiddenFormat(r rune) bool {
	if r == '\u200C' || r == '\u200D' {
		return false
	}
	return unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Zl, r) || unicode.Is(unicode.Zp, r)
}

// VisibleText reports whether s holds no HiddenFormat character.
func VisibleText(s string) bool {
	for _, r := range s {
		if HiddenFormat(r) {
			return false
		}
	}
	return true
}

// Printable reports whether every character of s is printable as Go's unicode.IsPrint says
// (letters, marks, numbers, punctuation, symbols and the ASCII space): no control, format
// (zero-width, bidirectional, BOM), other space or unassigned character, so that two IDs that
// look the same are the same. The APIs check it on the IDs a client chooses; apply does not
// (ValidCustomerID), so that no stored ID becomes one a replica refuses.
func Printable(s string) bool {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

func containsByte(s string, b byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == b {
			return true
		}
	}
	return false
}
