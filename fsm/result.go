package fsm

import (
	"encoding/json"
	"fmt"
)

// Result is what applying one command gives its proposer: either Err, or the entity the command
// created or changed. A failed or duplicate transaction carries both Err and Transaction.
type Result struct {
	Err         *Error       `json:"error,omitempty"`
	Project     *Project     `json:"project,omitempty"`
	Asset       *Asset       `json:"asset,omitempty"`
	Customer    *Customer    `json:"customer,omitempty"`
	Wallet      *Wallet      `json:"wallet,omitempty"`
	Transaction *Transaction `json:"transaction,omitempty"`
}

// ResultCodec encodes results for forwarding between nodes (shard.ResultCodec).
type ResultCodec struct{}

// EncodeResult encodes a *Result.
func (ResultCodec) EncodeResult(result any) ([]byte, error) {
	r, ok := result.(*Result)
	if !ok {
		return nil, fmt.Errorf("fsm: encode result: unexpected %T", result)
	}
	return json.Marshal(r)
}

// DecodeResult decodes what EncodeResult wrote.
func (ResultCodec) DecodeResult(data []byte) (any, error) {
	r := new(Result)
	if err := json.Unmarshal(data, r); err != nil {
		return nil, fmt.Errorf("fsm: decode result: %w", err)
	}
	return r, nil
}
