package fsm

import (
	"encoding/json"
	"fmt"
)

// Enum names as the API spells them. Index 0 is the invalid zero value.
var (
	customerStatusNames    = []string{"", "active", "suspended"}
	walletStatusNames      = []string{"", "open", "suspended", "closed"}
	operationTypeNames     = []string{"", "transfer", "issue", "redeem"}
	entryTypeNames         = []string{"", "issue", "redeem", "debit", "credit"}
	transactionStatusNames = []string{"", "completed", "failed"}
)

func enumName(names []string, v uint8) string {
	if int(v) < len(names) {
		return names[v]
	}
	return fmt.Sprintf("unknown(%d)", v)
}

func enumParse(names []string, kind string, data []byte) (uint8, error) {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return 0, fmt.Errorf("%s must be a string", kind)
	}
	for i := 1; i < len(names); i++ {
		if names[i] == s {
			return uint8(i), nil
		}
	}
	return 0, fmt.Errorf("unknown %s %q", kind, s)
}

func (s CustomerStatus) String() string { return enumName(customerStatusNames, uint8(s)) }

// MarshalJSON writes the status name.
func (s CustomerStatus) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

func (s WalletStatus) String() string { return enumName(walletStatusNames, uint8(s)) }

// MarshalJSON writes the status name.
func (s WalletStatus) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// UnmarshalJSON reads a status name.
func (s *WalletStatus) UnmarshalJSON(data []byte) error {
	v, err := enumParse(walletStatusNames, "wallet status", data)
	*s = WalletStatus(v)
	return err
}

func (t OperationType) String() string { return enumName(operationTypeNames, uint8(t)) }

// MarshalJSON writes the operation type name.
func (t OperationType) MarshalJSON() ([]byte, error) { return json.Marshal(t.String()) }

// UnmarshalJSON reads an operation type name.
func (t *OperationType) UnmarshalJSON(data []byte) error {
	v, err := enumParse(operationTypeNames, "operation type", data)
	*t = OperationType(v)
	return err
}

func (t EntryType) String() string { return enumName(entryTypeNames, uint8(t)) }

// MarshalJSON writes the entry type name.
func (t EntryType) MarshalJSON() ([]byte, error) { return json.Marshal(t.String()) }

func (s TransactionStatus) String() string { return enumName(transactionStatusNames, uint8(s)) }

// MarshalJSON writes the status name.
func (s TransactionStatus) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// UnmarshalJSON reads a status name.
func (s *TransactionStatus) UnmarshalJSON(data []byte) error {
	v, err := enumParse(transactionStatusNames, "transaction status", data)
	*s = TransactionStatus(v)
	return err
}

// UnmarshalJSON reads a status name.
func (s *CustomerStatus) UnmarshalJSON(data []byte) error {
	v, err := enumParse(customerStatusNames, "customer status", data)
	*s = CustomerStatus(v)
	return err
}

// UnmarshalJSON reads an entry type name.
func (t *EntryType) UnmarshalJSON(data []byte) error {
	v, err := enumParse(entryTypeNames, "entry type", data)
	*t = EntryType(v)
	return err
}
