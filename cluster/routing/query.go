package routing

import (
	"context"
	"errors"
	"fmt"

	"github.com/gigaledger/gigaledger/backend"
	"github.com/gigaledger/gigaledger/cluster"
	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/gigawallet"
	"github.com/gigaledger/gigaledger/fsm/gigpay"
	"github.com/gigaledger/gigaledger/fsm/ledger"
)

// queryKind names the read a shardQuery asks for: one per ledger read method. Only add kinds
// (before queryKindEnd), never renumber: their numbers travel between nodes.
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
	queryGetAccount
	queryNextAccountIndex
	queryGetInvoice
	queryListInvoices
	queryListEvents
	queryListSubscriptions
	queryListDeadLetters
	queryListSpendable
	queryGetPayment
	queryListPayments
	queryGetToken
	queryGetTokenByString
	queryGetGigPayPayment
	queryListGigPayPayments
	queryGetCrossTransaction
	queryGetPayFrom
	// awaitCrossTransaction is getCrossTransaction answered on the coordinator's leader once
	// the transaction is done there, or after crossAwaitMax (Shards.QueryLeader; cross.go).
	queryAwaitCrossTransaction
	queryKindEnd
)

// queryKindNames name the kinds in errors and logs.
var queryKindNames = [queryKindEnd]string{
	queryGetProject: "getProject", queryListProjects: "listProjects", queryGetAsset: "getAsset",
	queryListAssets: "listAssets", queryGetCustomer: "getCustomer", queryListCustomers: "listCustomers",
	queryListCustomerWallets: "listCustomerWallets", queryListSystemWallets: "listSystemWallets",
	queryGetWallet: "getWallet", queryListEntries: "listEntries", queryGetTransaction: "getTransaction",
	queryListTransactions: "listTransactions", queryGetHold: "getHold",
	queryGetAccount: "getAccount", queryNextAccountIndex: "nextAccountIndex",
	queryGetInvoice: "getInvoice", queryListInvoices: "listInvoices", queryListEvents: "listEvents",
	queryListSubscriptions: "listSubscriptions", queryListDeadLetters: "listDeadLetters",
	queryListSpendable: "listSpendable", queryGetPayment: "getPayment", queryListPayments: "listPayments",
	queryGetToken: "getToken", queryGetTokenByString: "getTokenByString", queryGetGigPayPayment: "getGigPayPayment",
	queryListGigPayPayments: "listGigPayPayments", queryGetCrossTransaction: "getCrossTransaction",
	queryGetPayFrom: "getPayFrom", queryAwaitCrossTransaction: "awaitCrossTransaction",
}

func (k queryKind) String() string {
	if k == 0 || k >= queryKindEnd {
		return fmt.Sprintf("queryKind(%d)", uint8(k))
	}
	return queryKindNames[k]
}

// shardQuery is one read of one shard's ledger: which read (Kind) and the arguments that kind
// takes; the others stay zero. listInvoices carries its cursor in Page.Page and its limit in
// Page.PageSize; so does listEvents (the sequence to read after, and 0..backend.EventsMaxCount).
// getTokenByString carries the token string in ID.
type shardQuery struct {
	Kind       queryKind
	ProjectID  string
	CustomerID string
	ID         string // the asset, wallet or transaction the kind names
	Page       ledger.PageRequest
	Range      ledger.TimeRange
	// Args are the encoded arguments of a kind that takes more than the fields above carry:
	// listGigPayPayments's gigpay.PaymentQuery (its Encode). Empty for every other kind. A
	// string, not a []byte, so that a query stays comparable.
	Args string
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
	// Cross is a coordinator's transaction with its cross-shard participants (none once done).
	Cross        *ledger.CrossTransaction
	Hold         *ledger.Hold
	Account      *gigawallet.Account
	AccountIndex uint32
	Invoice      *gigawallet.Invoice
	Invoices     []gigawallet.Invoice
	UTXOs        []gigawallet.UTXO
	Payment      *gigawallet.Payment
	Payments     []gigawallet.Payment
	// GigPay family.
	Token         *gigpay.Token
	GigPayPayment *gigpay.Payment
	PaymentPage   *gigpay.PaymentPage
	// Subscriptions (the metadata shard's) and DeadLetters (any shard's) of the event relay.
	Subscriptions []fsm.Subscription
	DeadLetters   []fsm.DeadLetter
	Events        *backend.ShardEvents
	HasMore       bool
}

// replica is this node's copy of a shard, as the families' readers see it.
type replica struct {
	ledger     *ledger.Ledger
	gigawallet *gigawallet.Reader
	gigpay     *gigpay.Reader
	outbox     Outbox
}

// run answers q from the replica, which the caller has fenced. A business rejection is an
// answer; any other error is a storage failure.
func (q shardQuery) run(r replica) (*shardAnswer, error) {
	l := r.ledger
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
	case queryGetCrossTransaction, queryAwaitCrossTransaction:
		a.Cross, err = l.GetCrossTransaction(q.ProjectID, q.ID)
	case queryGetHold:
		a.Hold, err = l.GetHold(q.ProjectID, q.ID)
	case queryGetAccount, queryNextAccountIndex, queryGetInvoice, queryListInvoices, queryListSpendable, queryGetPayment, queryListPayments,
		queryGetPayFrom:
		if r.gigawallet == nil {
			return nil, fmt.Errorf("routing: %v: this node runs without the GigaWallet family", q.Kind)
		}
		switch q.Kind {
		case queryGetAccount:
			a.Account, err = r.gigawallet.GetAccount(q.ProjectID, q.CustomerID)
		case queryNextAccountIndex:
			a.AccountIndex, err = r.gigawallet.NextAccountIndex(q.ProjectID, q.CustomerID)
		case queryGetInvoice:
			a.Invoice, err = r.gigawallet.GetInvoice(q.ProjectID, q.CustomerID, q.ID)
		case queryListInvoices:
			if q.Page.Page < 0 || q.Page.Page > 1<<32-1 || q.Page.PageSize < 1 || q.Page.PageSize > fsm.ListMaxCount {
				return nil, fmt.Errorf("routing: listInvoices cursor %d, limit %d", q.Page.Page, q.Page.PageSize)
			}
			a.Invoices, err = r.gigawallet.ListInvoices(q.ProjectID, q.CustomerID, uint32(q.Page.Page), q.Page.PageSize)
		case queryListSpendable:
			if q.Page.PageSize < 1 || q.Page.PageSize > fsm.ListMaxCount {
				return nil, fmt.Errorf("routing: listSpendable limit %d", q.Page.PageSize)
			}
			a.UTXOs, err = r.gigawallet.SpendableUTXOs(q.ProjectID, q.CustomerID, q.Page.PageSize)
		case queryGetPayment:
			var txid gigawallet.Hash
			if txid, err = gigawallet.ParseHash(q.ID); err != nil {
				return nil, fmt.Errorf("routing: getPayment %q: %w", q.ID, err)
			}
			a.Payment, err = r.gigawallet.GetPayment(q.ProjectID, q.CustomerID, txid)
		case queryGetPayFrom:
			a.Payment, err = r.gigawallet.GetPayFrom(q.ProjectID, q.ID)
		case queryListPayments:
			if q.Page.Page < 0 || q.Page.PageSize < 1 || q.Page.PageSize > fsm.ListMaxCount {
				return nil, fmt.Errorf("routing: listPayments cursor %d, limit %d", q.Page.Page, q.Page.PageSize)
			}
			a.Payments, err = r.gigawallet.ListPayments(q.ProjectID, q.CustomerID, uint64(q.Page.Page), q.Page.PageSize)
		}
	case queryGetToken, queryGetTokenByString, queryGetGigPayPayment, queryListGigPayPayments:
		if r.gigpay == nil {
			return nil, fmt.Errorf("routing: %v: this node runs without the GigPay family", q.Kind)
		}
		switch q.Kind {
		case queryGetToken:
			a.Token, err = r.gigpay.GetToken(q.ProjectID, q.ID)
		case queryGetTokenByString:
			a.Token, err = r.gigpay.GetTokenByString(q.ProjectID, q.ID)
		case queryGetGigPayPayment:
			a.GigPayPayment, err = r.gigpay.GetPayment(q.ProjectID, q.ID)
		case queryListGigPayPayments:
			var pq *gigpay.PaymentQuery
			if pq, err = decodePaymentQuery(q.Args); err != nil {
				return nil, err
			}
			a.PaymentPage, err = r.gigpay.ListPayments(q.ProjectID, pq)
		}
	case queryListEvents:
		if q.Page.Page < 0 || q.Page.PageSize < 0 || q.Page.PageSize > backend.EventsMaxCount {
			return nil, fmt.Errorf("routing: listEvents after %d, limit %d", q.Page.Page, q.Page.PageSize)
		}
		a.Events, err = r.listEvents(uint64(q.Page.Page), q.Page.PageSize)
	case queryListSubscriptions, queryListDeadLetters:
		if r.outbox == nil {
			return nil, fmt.Errorf("routing: %v: the replica has no outbox", q.Kind)
		}
		if q.Kind == queryListSubscriptions {
			a.Subscriptions, err = r.outbox.Subscriptions()
			break
		}
		if q.Page.Page < 0 || q.Page.PageSize < 1 || q.Page.PageSize > backend.EventsMaxCount {
			return nil, fmt.Errorf("routing: listDeadLetters after %d, limit %d", q.Page.Page, q.Page.PageSize)
		}
		a.DeadLetters, err = r.outbox.DeadLetters(q.ID, uint64(q.Page.Page), q.Page.PageSize)
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
	if q.Kind == queryAwaitCrossTransaction {
		awaitCrossDone(ctx, l, q.ProjectID, q.ID)
	}
	answer, err := q.run(r.replica(shardID, l))
	if err != nil {
		return nil, err
	}
	return encodeAnswer(q.Kind, answer)
}

// replica is this node's replica of shardID, whose ledger is l.
func (r *Router) replica(shardID int, l *ledger.Ledger) replica {
	return replica{ledger: l, gigawallet: r.shards.GigaWallet(shardID), gigpay: r.shards.GigPay(shardID),
		outbox: r.shards.Outbox(shardID)}
}

// askRemote runs q on a node that hosts shardID, through the cluster's query RPC.
func (r *Router) askRemote(ctx context.Context, shardID int, q shardQuery) (*shardAnswer, error) {
	return r.askThrough(ctx, shardID, q, r.shards.Query)
}

// askThrough runs q on shardID through query (Shards.Query or Shards.QueryLeader).
func (r *Router) askThrough(ctx context.Context, shardID int, q shardQuery, query func(context.Context, int, []byte) ([]byte, error)) (*shardAnswer, error) {
	encoded, err := encodeQuery(q)
	if err != nil {
		return nil, err
	}
	raw, err := query(ctx, shardID, encoded)
	if err != nil {
		return nil, backendError(err)
	}
	answer, err := decodeAnswer(q.Kind, raw)
	if err != nil {
		return nil, fmt.Errorf("routing: shard %d answered %v: %w", shardID, q.Kind, err)
	}
	return answer, nil
}

// The query wire format, in the kernel's binary codec (fsm.Encoder; records as the store and
// proposal results carry them). Everything about it is in the four functions below
// (encodeQuery, decodeQuery for the question; encodeAnswer, decodeAnswer for the reply).
//
//	query:  version, kind, projectId, customerId, id, page, pageSize, fromMs, toMs, args
//	answer: version, kind, flags (error, hasMore), [code, message] | the kind's records
//	        (one record, or a count and the records; a project with its assets; a
//	        gigpay.PaymentPage)
//
// Decoders are strict: an unknown version or kind, a query over queryMaxBytes, with an ID over
// queryIDMaxBytes or args over queryArgsMaxBytes, args on a kind that takes none or args that
// are not the kind's canonical encoding, an answer over answerMaxBytes or of another kind, a
// list over fsm.ListMaxCount records, or trailing bytes is an error.
const (
	// queryWireVersion 3 added args (and the GigPay kinds).
	queryWireVersion = 3
	// queryMaxBytes bounds an encoded query: a kind, three IDs, four numbers and the args.
	queryMaxBytes = 1536
	// queryArgsMaxBytes bounds a query's args: an encoded gigpay.PaymentQuery is two IDs, a
	// position (an amount key and a payment ID) and a few numbers, well under it.
	queryArgsMaxBytes = 512
	// queryIDMaxBytes bounds each ID in a query: the longest ID a read names (customer IDs,
	// fsm.CustomerIDMaxLength).
	queryIDMaxBytes = fsm.CustomerIDMaxLength
	// answerMaxBytes bounds an encoded answer, well inside the RPC's frame. A deep page of a
	// project-wide list can exceed it; it then fails rather than grow without bound.
	answerMaxBytes = 32 << 20

	answerHasError = 1 << 0
	answerHasMore  = 1 << 1
)

func encodeQuery(q shardQuery) ([]byte, error) {
	if q.Kind == 0 || q.Kind >= queryKindEnd {
		return nil, fmt.Errorf("routing: encode query: unknown kind %d", q.Kind)
	}
	e := fsm.Encoder{Buf: make([]byte, 0, 64)}
	e.Byte(queryWireVersion)
	e.Byte(byte(q.Kind))
	e.String(q.ProjectID)
	e.String(q.CustomerID)
	e.String(q.ID)
	e.Varint(int64(q.Page.Page))
	e.Varint(int64(q.Page.PageSize))
	e.Varint(q.Range.FromMs)
	e.Varint(q.Range.ToMs)
	e.String(q.Args)
	return e.Buf, nil
}

func decodeQuery(data []byte) (shardQuery, error) {
	if len(data) > queryMaxBytes {
		return shardQuery{}, fmt.Errorf("routing: query of %d bytes exceeds %d", len(data), queryMaxBytes)
	}
	d := fsm.NewDecoder(data)
	kind, err := readHeader(d)
	if err != nil {
		return shardQuery{}, fmt.Errorf("routing: decode query: %w", err)
	}
	q := shardQuery{Kind: kind, ProjectID: d.String(), CustomerID: d.String(), ID: d.String()}
	q.Page = ledger.PageRequest{Page: int(d.Varint()), PageSize: int(d.Varint())}
	q.Range = ledger.TimeRange{FromMs: d.Varint(), ToMs: d.Varint()}
	q.Args = d.String()
	if err := d.Finish("query"); err != nil {
		return shardQuery{}, fmt.Errorf("routing: %w", err)
	}
	for _, id := range []string{q.ProjectID, q.CustomerID, q.ID} {
		if len(id) > queryIDMaxBytes {
			return shardQuery{}, fmt.Errorf("routing: decode query: an ID of %d bytes exceeds %d", len(id), queryIDMaxBytes)
		}
	}
	if q.Kind == queryListGigPayPayments {
		if _, err := decodePaymentQuery(q.Args); err != nil {
			return shardQuery{}, err
		}
	} else if q.Args != "" {
		return shardQuery{}, fmt.Errorf("routing: decode query: %v takes no args", q.Kind)
	}
	return q, nil
}

// encodePaymentQuery is a listGigPayPayments query's args.
func encodePaymentQuery(pq *gigpay.PaymentQuery) (string, error) {
	var e fsm.Encoder
	pq.Encode(&e)
	if len(e.Buf) > queryArgsMaxBytes {
		return "", fmt.Errorf("routing: a payments query of %d bytes exceeds %d", len(e.Buf), queryArgsMaxBytes)
	}
	return string(e.Buf), nil
}

// decodePaymentQuery reads a listGigPayPayments query's args, strictly: at most
// queryArgsMaxBytes, nothing after the query, and in the one encoding the query has (so that a
// limit or scan bound out of range is refused, not silently clamped).
func decodePaymentQuery(args string) (*gigpay.PaymentQuery, error) {
	if len(args) > queryArgsMaxBytes {
		return nil, fmt.Errorf("routing: payments query of %d bytes exceeds %d", len(args), queryArgsMaxBytes)
	}
	d := fsm.NewDecoder([]byte(args))
	pq := gigpay.ReadPaymentQuery(d)
	if err := d.Finish("payments query"); err != nil {
		return nil, fmt.Errorf("routing: %w", err)
	}
	if again, err := encodePaymentQuery(pq); err != nil || again != args {
		return nil, errors.New("routing: decode payments query: not in its canonical encoding")
	}
	return pq, nil
}

// readHeader reads the version and a known kind.
func readHeader(d *fsm.Decoder) (queryKind, error) {
	version, kind := d.Byte(), queryKind(d.Byte())
	switch {
	case d.Err() != nil:
		return 0, d.Err()
	case version != queryWireVersion:
		return 0, fmt.Errorf("unknown version %d", version)
	case kind == 0 || kind >= queryKindEnd:
		return 0, fmt.Errorf("unknown kind %d", kind)
	}
	return kind, nil
}

func encodeAnswer(kind queryKind, a *shardAnswer) ([]byte, error) {
	e := fsm.Encoder{Buf: make([]byte, 0, 256)}
	e.Byte(queryWireVersion)
	e.Byte(byte(kind))
	var flags byte
	if a.Err != nil {
		flags |= answerHasError
	}
	if a.HasMore {
		flags |= answerHasMore
	}
	e.Byte(flags)
	if a.Err != nil {
		e.String(string(a.Err.Code))
		e.String(a.Err.Message)
	} else if err := writeRecords(&e, kind, a); err != nil {
		return nil, err
	}
	if len(e.Buf) > answerMaxBytes {
		return nil, fmt.Errorf("routing: %v answer of %d bytes exceeds %d; ask for a smaller page", kind, len(e.Buf), answerMaxBytes)
	}
	return e.Buf, nil
}

func decodeAnswer(kind queryKind, data []byte) (*shardAnswer, error) {
	if len(data) > answerMaxBytes {
		return nil, fmt.Errorf("answer of %d bytes exceeds %d", len(data), answerMaxBytes)
	}
	d := fsm.NewDecoder(data)
	got, err := readHeader(d)
	if err != nil {
		return nil, err
	}
	if got != kind {
		return nil, fmt.Errorf("a %v answer to a %v query", got, kind)
	}
	flags := d.Byte()
	if flags&^(answerHasError|answerHasMore) != 0 {
		return nil, fmt.Errorf("unknown answer flags %#x", flags)
	}
	a := &shardAnswer{HasMore: flags&answerHasMore != 0}
	if flags&answerHasError != 0 {
		if a.HasMore {
			return nil, errors.New("an answer with both an error and more items")
		}
		a.Err = &fsm.Error{Code: fsm.ErrorCode(d.String()), Message: d.String()}
	} else {
		readRecords(d, kind, a)
	}
	if err := d.Finish("answer"); err != nil {
		return nil, err
	}
	return a, nil
}

// writeList writes a count and the records.
func writeList[T any, P interface {
	*T
	fsm.Value
}](e *fsm.Encoder, records []T) {
	e.Uvarint(uint64(len(records)))
	for i := range records {
		P(&records[i]).Encode(e)
	}
}

// readList reads what writeList wrote; an empty list is nil, as the ledger returns it.
func readList[T any](d *fsm.Decoder, read func(*fsm.Decoder) *T) []T {
	n := d.Count("records")
	var records []T
	for i := 0; i < n && d.Err() == nil; i++ {
		records = append(records, *read(d))
	}
	return records
}

// writeOne writes a record that a single-record answer must carry.
func writeOne(e *fsm.Encoder, kind queryKind, record fsm.Value, missing bool) error {
	if missing {
		return fmt.Errorf("routing: a %v answer without its record", kind)
	}
	record.Encode(e)
	return nil
}

func writeRecords(e *fsm.Encoder, kind queryKind, a *shardAnswer) error {
	switch kind {
	case queryGetProject:
		if err := writeOne(e, kind, a.Project, a.Project == nil); err != nil {
			return err
		}
		writeList(e, a.Project.Assets)
	case queryListProjects:
		writeList(e, a.Projects)
	case queryGetAsset:
		return writeOne(e, kind, a.Asset, a.Asset == nil)
	case queryListAssets:
		writeList(e, a.Assets)
	case queryGetCustomer:
		return writeOne(e, kind, a.Customer, a.Customer == nil)
	case queryListCustomers:
		writeList(e, a.Customers)
	case queryListCustomerWallets, queryListSystemWallets:
		writeList(e, a.Wallets)
	case queryGetWallet:
		return writeOne(e, kind, a.Wallet, a.Wallet == nil)
	case queryListEntries:
		writeList(e, a.Entries)
	case queryGetTransaction:
		return writeOne(e, kind, a.Transaction, a.Transaction == nil)
	case queryListTransactions:
		writeList(e, a.Transactions)
	case queryGetHold:
		return writeOne(e, kind, a.Hold, a.Hold == nil)
	case queryGetCrossTransaction, queryAwaitCrossTransaction:
		return writeOne(e, kind, a.Cross, a.Cross == nil)
	case queryGetAccount:
		return writeOne(e, kind, a.Account, a.Account == nil)
	case queryNextAccountIndex:
		e.Uvarint(uint64(a.AccountIndex))
	case queryGetInvoice:
		return writeOne(e, kind, a.Invoice, a.Invoice == nil)
	case queryListInvoices:
		writeList(e, a.Invoices)
	case queryListSpendable:
		writeList(e, a.UTXOs)
	case queryGetPayment, queryGetPayFrom:
		return writeOne(e, kind, a.Payment, a.Payment == nil)
	case queryListPayments:
		writeList(e, a.Payments)
	case queryGetToken, queryGetTokenByString:
		return writeOne(e, kind, a.Token, a.Token == nil)
	case queryGetGigPayPayment:
		return writeOne(e, kind, a.GigPayPayment, a.GigPayPayment == nil)
	case queryListGigPayPayments:
		return writeOne(e, kind, a.PaymentPage, a.PaymentPage == nil)
	case queryListEvents:
		return writeEvents(e, a.Events)
	case queryListSubscriptions:
		writeList(e, a.Subscriptions)
	case queryListDeadLetters:
		writeList(e, a.DeadLetters)
	default:
		return fmt.Errorf("routing: no records for %v", kind)
	}
	return nil
}

func readRecords(d *fsm.Decoder, kind queryKind, a *shardAnswer) {
	switch kind {
	case queryGetProject:
		a.Project = ledger.ReadProject(d)
		a.Project.Assets = readList(d, ledger.ReadAsset)
	case queryListProjects:
		a.Projects = readList(d, ledger.ReadProject)
	case queryGetAsset:
		a.Asset = ledger.ReadAsset(d)
	case queryListAssets:
		a.Assets = readList(d, ledger.ReadAsset)
	case queryGetCustomer:
		a.Customer = ledger.ReadCustomer(d)
	case queryListCustomers:
		a.Customers = readList(d, ledger.ReadCustomer)
	case queryListCustomerWallets, queryListSystemWallets:
		a.Wallets = readList(d, ledger.ReadWallet)
	case queryGetWallet:
		a.Wallet = ledger.ReadWallet(d)
	case queryListEntries:
		a.Entries = readList(d, ledger.ReadEntry)
	case queryGetTransaction:
		a.Transaction = ledger.ReadTransaction(d)
	case queryListTransactions:
		a.Transactions = readList(d, ledger.ReadTransaction)
	case queryGetHold:
		a.Hold = ledger.ReadHold(d)
	case queryGetCrossTransaction, queryAwaitCrossTransaction:
		a.Cross = ledger.ReadCrossTransaction(d)
	case queryGetAccount:
		a.Account = gigawallet.ReadAccount(d)
	case queryNextAccountIndex:
		if index := d.Uvarint(); index < 1<<31 {
			a.AccountIndex = uint32(index)
		} else {
			d.Fail(fmt.Errorf("account index %d", index))
		}
	case queryGetInvoice:
		a.Invoice = gigawallet.ReadInvoice(d)
	case queryListInvoices:
		a.Invoices = readList(d, gigawallet.ReadInvoice)
	case queryListSpendable:
		a.UTXOs = readList(d, gigawallet.ReadUTXO)
	case queryGetPayment, queryGetPayFrom:
		a.Payment = gigawallet.ReadPayment(d)
	case queryListPayments:
		a.Payments = readList(d, gigawallet.ReadPayment)
	case queryGetToken, queryGetTokenByString:
		a.Token = gigpay.ReadToken(d)
	case queryGetGigPayPayment:
		a.GigPayPayment = gigpay.ReadPayment(d)
	case queryListGigPayPayments:
		a.PaymentPage = gigpay.ReadPaymentPage(d)
	case queryListEvents:
		a.Events = readEvents(d)
	case queryListSubscriptions:
		a.Subscriptions = readList(d, fsm.ReadSubscription)
	case queryListDeadLetters:
		a.DeadLetters = readList(d, fsm.ReadDeadLetter)
	}
}
