package routing

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/gigaledger/gigaledger/cluster"
	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/ledger"
)

// queryKind names the read a shardQuery asks for: one per ledger read method. Only add kinds
// (before queryKindEnd), never renumber or rename: they travel between nodes.
type queryKind uint8

const (
	queryGetProject queryKind = iota + 1
	queryListProjects
	queryGetAsset
	queryListAssets
	queryGetCustomer
	queryListCustomers
	queryListCustomerWallets
	queryListSystemWallets
	queryGetWallet
	queryListEntries
	queryGetTransaction
	queryListTransactions
	queryGetHold
	queryKindEnd
)

// queryKindNames are the kinds as the wire spells them.
var queryKindNames = [queryKindEnd]string{
	queryGetProject: "getProject", queryListProjects: "listProjects", queryGetAsset: "getAsset",
	queryListAssets: "listAssets", queryGetCustomer: "getCustomer", queryListCustomers: "listCustomers",
	queryListCustomerWallets: "listCustomerWallets", queryListSystemWallets: "listSystemWallets",
	queryGetWallet: "getWallet", queryListEntries: "listEntries", queryGetTransaction: "getTransaction",
	queryListTransactions: "listTransactions", queryGetHold: "getHold",
}

func (k queryKind) String() string {
	if k == 0 || k >= queryKindEnd {
		return fmt.Sprintf("queryKind(%d)", uint8(k))
	}
	return queryKindNames[k]
}

// shardQuery is one read of one shard's ledger: which read (Kind) and the arguments that kind
// takes; the others stay zero.
type shardQuery struct {
	Kind       queryKind
	ProjectID  string
	CustomerID string
	ID         string // the asset, wallet or transaction the kind names
	Page       ledger.PageRequest
	Range      ledger.TimeRange
}

// shardAnswer is a shard's answer to a shardQuery: the field of the query's kind (HasMore with
// a page), or the business rejection that replaced it.
type shardAnswer struct {
	Err          *fsm.Error
	Project      *ledger.Project
	Projects     []ledger.Project
	Asset        *ledger.Asset
	Assets       []ledger.Asset
	Customer     *ledger.Customer
	Customers    []ledger.Customer
	Wallet       *ledger.Wallet
	Wallets      []ledger.Wallet
	Entries      []ledger.Entry
	Transaction  *ledger.Transaction
	Transactions []ledger.Transaction
	Hold         *ledger.Hold
	HasMore      bool
}

// run answers q from ledger, which the caller has fenced. A business rejection is an answer;
// any other error is a storage failure.
func (q shardQuery) run(l *ledger.Ledger) (*shardAnswer, error) {
	a := &shardAnswer{}
	var err error
	switch q.Kind {
	case queryGetProject:
		a.Project, err = l.GetProject(q.ProjectID)
	case queryListProjects:
		a.Projects, err = l.ListProjects()
	case queryGetAsset:
		a.Asset, err = l.GetAsset(q.ProjectID, q.ID)
	case queryListAssets:
		a.Assets, err = l.ListAssets(q.ProjectID)
	case queryGetCustomer:
		a.Customer, err = l.GetCustomer(q.ProjectID, q.CustomerID)
	case queryListCustomers:
		a.Customers, a.HasMore, err = l.ListCustomers(q.ProjectID, q.Page)
	case queryListCustomerWallets:
		a.Wallets, err = l.ListCustomerWallets(q.ProjectID, q.CustomerID)
	case queryListSystemWallets:
		a.Wallets, err = l.ListSystemWallets(q.ProjectID)
	case queryGetWallet:
		a.Wallet, err = l.GetWallet(q.ProjectID, q.ID)
	case queryListEntries:
		a.Entries, a.HasMore, err = l.ListEntries(q.ProjectID, q.ID, q.Range, q.Page)
	case queryGetTransaction:
		a.Transaction, err = l.GetTransaction(q.ProjectID, q.ID)
	case queryListTransactions:
		a.Transactions, a.HasMore, err = l.ListTransactions(q.ProjectID, q.Range, q.Page)
	case queryGetHold:
		a.Hold, err = l.GetHold(q.ProjectID, q.ID)
	default:
		return nil, fmt.Errorf("routing: no read for %v", q.Kind)
	}
	var rejection *fsm.Error
	if errors.As(err, &rejection) {
		return &shardAnswer{Err: rejection}, nil
	}
	if err != nil {
		return nil, err
	}
	return a, nil
}

// AnswerQuery answers an encoded shardQuery from this node's replica of shardID; the cluster
// layer has fenced a linearizable read on it already. It is cluster.Config.Query.
func (r *Router) AnswerQuery(ctx context.Context, shardID int, query []byte) ([]byte, error) {
	q, err := decodeQuery(query)
	if err != nil {
		return nil, err
	}
	l := r.shards.Ledger(shardID)
	if l == nil {
		return nil, fmt.Errorf("routing: shard %d: %w", shardID, cluster.ErrNotHosted)
	}
	answer, err := q.run(l)
	if err != nil {
		return nil, err
	}
	return encodeAnswer(q.Kind, answer)
}

// askRemote runs q on a node that hosts shardID, through the cluster's query RPC.
func (r *Router) askRemote(ctx context.Context, shardID int, q shardQuery) (*shardAnswer, error) {
	query, err := encodeQuery(q)
	if err != nil {
		return nil, err
	}
	raw, err := r.shards.Query(ctx, shardID, query)
	if err != nil {
		return nil, backendError(err)
	}
	answer, err := decodeAnswer(q.Kind, raw)
	if err != nil {
		return nil, fmt.Errorf("routing: shard %d answered %v: %w", shardID, q.Kind, err)
	}
	return answer, nil
}

// The query wire format. Everything about it is in the four functions below (encodeQuery,
// decodeQuery for the question; encodeAnswer, decodeAnswer for the reply), so that it can move
// to a binary codec without touching the callers. Version 1 is JSON:
//
//	query:  {"v":1, "kind":"getWallet", "projectId", "customerId", "id", "page", "pageSize",
//	         "fromMs", "toMs"}   (fields the kind does not take are left out)
//	answer: {"v":1, "kind":"getWallet", "error":{code,message} | "items":<record or list>,
//	         "hasMore"}
//
// Records and lists are the fsm types' JSON. Decoders are strict: an unknown version, kind or
// field, a query over queryMaxBytes or with an ID over queryIDMaxBytes, an answer over
// answerMaxBytes, of another kind, or with both or neither of error and items is an error.
const (
	queryWireVersion = 1
	// queryMaxBytes bounds an encoded query: a kind, three IDs and four numbers.
	queryMaxBytes = 1024
	// queryIDMaxBytes bounds each ID in a query: the longest ID a read names (customer IDs,
	// fsm.CustomerIDMaxLength).
	queryIDMaxBytes = fsm.CustomerIDMaxLength
	// answerMaxBytes bounds an encoded answer, well inside the RPC's frame. A deep page of a
	// project-wide list can exceed it; it then fails rather than grow without bound.
	answerMaxBytes = 32 << 20
)

type queryWire struct {
	Version    int    `json:"v"`
	Kind       string `json:"kind"`
	ProjectID  string `json:"projectId,omitempty"`
	CustomerID string `json:"customerId,omitempty"`
	ID         string `json:"id,omitempty"`
	Page       int    `json:"page,omitempty"`
	PageSize   int    `json:"pageSize,omitempty"`
	FromMs     int64  `json:"fromMs,omitempty"`
	ToMs       int64  `json:"toMs,omitempty"`
}

type answerWire struct {
	Version int             `json:"v"`
	Kind    string          `json:"kind"`
	Error   *fsm.Error      `json:"error,omitempty"`
	Items   json.RawMessage `json:"items,omitempty"`
	HasMore bool            `json:"hasMore,omitempty"`
}

func encodeQuery(q shardQuery) ([]byte, error) {
	if q.Kind == 0 || q.Kind >= queryKindEnd {
		return nil, fmt.Errorf("routing: encode query: unknown kind %d", q.Kind)
	}
	return json.Marshal(queryWire{Version: queryWireVersion, Kind: q.Kind.String(), ProjectID: q.ProjectID,
		CustomerID: q.CustomerID, ID: q.ID, Page: q.Page.Page, PageSize: q.Page.PageSize,
		FromMs: q.Range.FromMs, ToMs: q.Range.ToMs})
}

func decodeQuery(data []byte) (shardQuery, error) {
	if len(data) > queryMaxBytes {
		return shardQuery{}, fmt.Errorf("routing: query of %d bytes exceeds %d", len(data), queryMaxBytes)
	}
	var w queryWire
	if err := strictJSON(data, &w); err != nil {
		return shardQuery{}, fmt.Errorf("routing: decode query: %w", err)
	}
	kind, err := parseKind(w.Version, w.Kind)
	if err != nil {
		return shardQuery{}, fmt.Errorf("routing: decode query: %w", err)
	}
	for _, id := range []string{w.ProjectID, w.CustomerID, w.ID} {
		if len(id) > queryIDMaxBytes {
			return shardQuery{}, fmt.Errorf("routing: decode query: an ID of %d bytes exceeds %d", len(id), queryIDMaxBytes)
		}
	}
	return shardQuery{Kind: kind, ProjectID: w.ProjectID, CustomerID: w.CustomerID, ID: w.ID,
		Page: ledger.PageRequest{Page: w.Page, PageSize: w.PageSize}, Range: ledger.TimeRange{FromMs: w.FromMs, ToMs: w.ToMs}}, nil
}

func encodeAnswer(kind queryKind, a *shardAnswer) ([]byte, error) {
	w := answerWire{Version: queryWireVersion, Kind: kind.String(), Error: a.Err, HasMore: a.HasMore}
	if a.Err == nil {
		items, err := answerItems(kind, a)
		if err != nil {
			return nil, err
		}
		if w.Items, err = json.Marshal(items); err != nil {
			return nil, fmt.Errorf("routing: encode answer: %w", err)
		}
	}
	data, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("routing: encode answer: %w", err)
	}
	if len(data) > answerMaxBytes {
		return nil, fmt.Errorf("routing: %v answer of %d bytes exceeds %d; ask for a smaller page", kind, len(data), answerMaxBytes)
	}
	return data, nil
}

func decodeAnswer(kind queryKind, data []byte) (*shardAnswer, error) {
	if len(data) > answerMaxBytes {
		return nil, fmt.Errorf("answer of %d bytes exceeds %d", len(data), answerMaxBytes)
	}
	var w answerWire
	if err := strictJSON(data, &w); err != nil {
		return nil, err
	}
	got, err := parseKind(w.Version, w.Kind)
	if err != nil {
		return nil, err
	}
	if got != kind {
		return nil, fmt.Errorf("a %v answer to a %v query", got, kind)
	}
	hasItems := len(w.Items) > 0 // an empty list may be null, as the ledger's nil slice is
	switch {
	case w.Error != nil && (hasItems || w.HasMore):
		return nil, errors.New("an answer with both an error and items")
	case w.Error != nil:
		return &shardAnswer{Err: w.Error}, nil
	case !hasItems:
		return nil, errors.New("an answer with neither an error nor items")
	}
	a := &shardAnswer{HasMore: w.HasMore}
	items, err := answerItems(kind, a)
	if err != nil {
		return nil, err
	}
	// Not strict: the fsm types' JSON carries derived fields (a wallet's system, available)
	// that do not decode back into a field.
	if err := json.Unmarshal(w.Items, items); err != nil {
		return nil, fmt.Errorf("items: %w", err)
	}
	if a.Project == nil && a.Asset == nil && a.Customer == nil && a.Wallet == nil && a.Transaction == nil && a.Hold == nil && singleRecord(kind) {
		return nil, fmt.Errorf("a %v answer without its record", kind)
	}
	return a, nil
}

// answerItems points at the field of a that holds kind's records.
func answerItems(kind queryKind, a *shardAnswer) (any, error) {
	switch kind {
	case queryGetProject:
		return &a.Project, nil
	case queryListProjects:
		return &a.Projects, nil
	case queryGetAsset:
		return &a.Asset, nil
	case queryListAssets:
		return &a.Assets, nil
	case queryGetCustomer:
		return &a.Customer, nil
	case queryListCustomers:
		return &a.Customers, nil
	case queryListCustomerWallets, queryListSystemWallets:
		return &a.Wallets, nil
	case queryGetWallet:
		return &a.Wallet, nil
	case queryListEntries:
		return &a.Entries, nil
	case queryGetTransaction:
		return &a.Transaction, nil
	case queryListTransactions:
		return &a.Transactions, nil
	case queryGetHold:
		return &a.Hold, nil
	}
	return nil, fmt.Errorf("no records for %v", kind)
}

// singleRecord reports whether kind answers one record (which must be there) or a list.
func singleRecord(kind queryKind) bool {
	switch kind {
	case queryGetProject, queryGetAsset, queryGetCustomer, queryGetWallet, queryGetTransaction, queryGetHold:
		return true
	}
	return false
}

func parseKind(version int, name string) (queryKind, error) {
	if version != queryWireVersion {
		return 0, fmt.Errorf("unknown version %d", version)
	}
	for kind := queryGetProject; kind < queryKindEnd; kind++ {
		if queryKindNames[kind] == name {
			return kind, nil
		}
	}
	return 0, fmt.Errorf("unknown kind %q", name)
}

// strictJSON decodes exactly one JSON value into v, refusing unknown fields and trailing data.
func strictJSON(data []byte, v any) error {
	decoder := json.NewDecoder(bytes.NewReader(data))
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(v); err != nil {
		return err
	}
	if decoder.More() {
		return errors.New("trailing data")
	}
	return nil
}
