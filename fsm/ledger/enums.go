package ledger

import "fmt"

// Enum names, as logs and the APIs' views spell them. Index 0 is the invalid zero value.
var (
	customerStatusNames    = []string{"", "active", "suspended"}
	walletStatusNames      = []string{"", "open", "suspended", "closed"}
	operationTypeNames     = []string{"", "transfer", "issue", "redeem", "hold"}
	entryTypeNames         = []string{"", "issue", "redeem", "debit", "credit"}
	transactionStatusNames = []string{"", "completed", "failed", "pending"}
	holdStatusNames        = []string{"", "active", "captured", "released", "expired"}
)

func enumName(names []string, v uint8) string {
	if int(v) < len(names) {
		return names[v]
	}
	return fmt.Sprintf("unknown(%d)", v)
}

func enumParse(names []string, s string) (uint8, bool) {
	for i := 1; i < len(names); i++ {
		if names[i] == s {
			return uint8(i), true
		}
	}
	return 0, false
}

func (s CustomerStatus) String() string    { return enumName(customerStatusNames, uint8(s)) }
func (s WalletStatus) String() string      { return enumName(walletStatusNames, uint8(s)) }
func (t OperationType) String() string     { return enumName(operationTypeNames, uint8(t)) }
func (t EntryType) String() string         { return enumName(entryTypeNames, uint8(t)) }
func (s TransactionStatus) String() string { return enumName(transactionStatusNames, uint8(s)) }
func (s HoldStatus) String() string        { return enumName(holdStatusNames, uint8(s)) }

// ParseWalletStatus reads a wallet status name.
func ParseWalletStatus(s string) (WalletStatus, bool) {
	v, ok := enumParse(walletStatusNames, s)
	return WalletStatus(v), ok
}

// ParseOperationType reads an operation type name.
func ParseOperationType(s string) (OperationType, bool) {
	v, ok := enumParse(operationTypeNames, s)
	return OperationType(v), ok
}

// ParseCustomerStatus reads a customer status name.
func ParseCustomerStatus(s string) (CustomerStatus, bool) {
	v, ok := enumParse(customerStatusNames, s)
	return CustomerStatus(v), ok
}

// ParseEntryType reads an entry type name.
func ParseEntryType(s string) (EntryType, bool) {
	v, ok := enumParse(entryTypeNames, s)
	return EntryType(v), ok
}

// ParseTransactionStatus reads a transaction status name.
func ParseTransactionStatus(s string) (TransactionStatus, bool) {
	v, ok := enumParse(transactionStatusNames, s)
	return TransactionStatus(v), ok
}

// ParseHoldStatus reads a hold status name.
func ParseHoldStatus(s string) (HoldStatus, bool) {
	v, ok := enumParse(holdStatusNames, s)
	return HoldStatus(v), ok
}
