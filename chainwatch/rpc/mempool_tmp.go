package rpc

import "context"

// GetRawMempool returns the txids in the node's mempool.
func (c *Client) GetRawMempool(ctx context.Context) ([]string, error) {
	var txids []string
	if err := c.Call(ctx, "getrawmempool", nil, &txids); err != nil {
		return nil, err
	}
	for _, id := range txids {
		if err := checkHash("getrawmempool", id); err != nil {
			return nil, err
		}
	}
	return txids, nil
}
