package routing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/ledger"
)

// shardQuery asks one shard for its part of a project-wide list, when the shard is not hosted
// on the node that merges the parts. It travels as JSON over the cluster's query RPC.
type shardQuery struct {
	Kind      string             `json:"kind"` // "customers", "transactions" or "assets"
	ProjectID string             `json:"projectId"`
	Page      ledger.PageRequest `json:"page"`
	Range     ledger.TimeRange   `json:"range"`
}

// shardAnswer is a shard's part: items, or the business rejection that replaced them.
type shardAnswer struct {
	Items json.RawMessage `json:"items,omitempty"`
	Err   *fsm.Error      `json:"error,omitempty"`
}

// AnswerQuery answers a shardQuery from this node's replica of shardID; the cluster layer has
// fenced a linearizable read on it already. It is cluster.Config.Query.
func (r *Router) AnswerQuery(ctx context.Context, shardID int, query []byte) ([]byte, error) {
	var q shardQuery
	if err := json.Unmarshal(query, &q); err != nil {
		return nil, fmt.Errorf("routing: bad shard query: %w", err)
	}
	ledger := r.shards.Ledger(shardID)
	if ledger == nil {
		return nil, fmt.Errorf("routing: shard %d not hosted here", shardID)
	}
	var items any
	var err error
	switch q.Kind {
	case "customers":
		items, _, err = ledger.ListCustomers(q.ProjectID, q.Page)
	case "transactions":
		items, _, err = ledger.ListTransactions(q.ProjectID, q.Range, q.Page)
	case "assets":
		items, err = ledger.ListAssets(q.ProjectID)
	default:
		return nil, fmt.Errorf("routing: unknown shard query %q", q.Kind)
	}
	var rejection *fsm.Error
	if errors.As(err, &rejection) {
		return json.Marshal(shardAnswer{Err: rejection})
	}
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(items)
	if err != nil {
		return nil, err
	}
	return json.Marshal(shardAnswer{Items: raw})
}

// shardPart returns one shard's part of a list: from the local replica when hosted (list),
// else by a query to a node that hosts it. A shard that has not met the project has no part.
func shardPart[T any](rd *reader, shardID int, q shardQuery, list func(*ledger.Ledger) ([]T, error)) ([]T, error) {
	var items []T
	var err error
	if rd.router.shards.Ledger(shardID) != nil {
		l, ferr := rd.ledger(shardID)
		if ferr != nil {
			return nil, ferr
		}
		items, err = list(l)
	} else {
		items, err = remotePart[T](rd.ctx, rd.router, shardID, q)
	}
	var rejection *fsm.Error
	if errors.As(err, &rejection) && rejection.Code == ledger.CodeProjectNotFound {
		return nil, nil
	}
	return items, err
}

func remotePart[T any](ctx context.Context, r *Router, shardID int, q shardQuery) ([]T, error) {
	query, err := json.Marshal(q)
	if err != nil {
		return nil, err
	}
	raw, err := r.shards.Query(ctx, shardID, query)
	if err != nil {
		return nil, backendError(err)
	}
	var answer shardAnswer
	if err := json.Unmarshal(raw, &answer); err != nil {
		return nil, fmt.Errorf("routing: shard %d answered: %w", shardID, err)
	}
	if answer.Err != nil {
		return nil, answer.Err
	}
	var items []T
	if err := json.Unmarshal(answer.Items, &items); err != nil {
		return nil, fmt.Errorf("routing: shard %d items: %w", shardID, err)
	}
	return items, nil
}
