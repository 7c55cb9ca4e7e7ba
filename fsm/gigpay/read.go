package gigpay

import (
	"bytes"
	"crypto/subtle"
	"encoding/binary"
	"fmt"

	"github.com/gigaledger/gigaledger/fsm"
)

// Of returns the family's read side over a machine built from the registry f was registered in.
func (f *Family) Of(m *fsm.Machine) *Reader { return &Reader{store: m.Store()} }

// Reader reads the family's records from a shard's store (linearizable once the caller has
// fenced a read index).
type Reader struct{ store *fsm.Store }

func (r *Reader) getToken(projectID, tokenID string) (*Token, error) {
	v, err := r.store.Get(tokenKey(projectID, tokenID))
	if err != nil || v == nil {
		return nil, err
	}
	d := fsm.NewDecoder(v)
	t := ReadToken(d)
	return t, d.Finish("token")
}

// GetToken reads a token by its ID.
func (r *Reader) GetToken(projectID, tokenID string) (*Token, error) {
	var t *Token
	err := r.store.Read(func() error {
		var err error
		if t, err = r.getToken(projectID, tokenID); err == nil && t == nil {
			err = fsm.Rejectf(CodeTokenNotFound, "token %q not found", tokenID)
		}
		return err
	})
	return t, err
}

// GetTokenByString reads a token by its bearer string: found through the string's SHA-256, then
// compared in constant time, so that neither step's timing depends on how much of a guess is
// right. A forged or truncated string is TokenNotFound.
func (r *Reader) GetTokenByString(projectID, token string) (*Token, error) {
	var t *Token
	err := r.store.Read(func() error {
		h := TokenHash(token)
		id, err := r.store.Get(tokenHashKey(h))
		if err != nil {
			return err
		}
		if id != nil {
			if t, err = r.getToken(projectID, string(id)); err != nil {
				return err
			}
		}
		if t == nil || subtle.ConstantTimeCompare([]byte(t.Token), []byte(token)) != 1 {
			t = nil
			return fsm.Rejectf(CodeTokenNotFound, "token not found")
		}
		return nil
	})
	return t, err
}

// GetPayment reads a payment by its ID.
func (r *Reader) GetPayment(projectID, paymentID string) (*Payment, error) {
	var p *Payment
	err := r.store.Read(func() error {
		var err error
		if p, err = r.getPayment(projectID, paymentID); err == nil && p == nil {
			err = fsm.Rejectf(CodePaymentNotFound, "payment %q not found", paymentID)
		}
		return err
	})
	return p, err
}

func (r *Reader) getPayment(projectID, paymentID string) (*Payment, error) {
	v, err := r.store.Get(paymentKey(projectID, paymentID))
	if err != nil || v == nil {
		return nil, err
	}
	d := fsm.NewDecoder(v)
	p := ReadPayment(d)
	return p, d.Finish("payment")
}

// PaymentSort is the order of a payments list.
type PaymentSort uint8

// Orders of a payments list.
const (
	SortCreated PaymentSort = iota + 1
	SortAmount
)

// PaymentQuery asks one shard for payments of a project in an order, after a position, with
// filters. Positions are sort keys (TimeKey, AmountKey): the same on every shard, so a merge of
// shards' answers pages with one position.
type PaymentQuery struct {
	Sort       PaymentSort
	Descending bool
	// After is the position to continue from (exclusive); nil starts at the beginning.
	After []byte
	Limit int
	// Filters; zero values filter nothing. ToMs is exclusive.
	Status   PaymentStatus
	Type     PaymentType
	WalletID string // either side
	AssetID  string
	FromMs   int64
	ToMs     int64
	// ScanMax bounds the index entries examined (0: DefaultScanMax).
	ScanMax int
}

// DefaultScanMax bounds the index entries one shard examines for one page.
const DefaultScanMax = 10_000

// PaymentPage is one shard's answer: matching payments in order, and how far it looked.
// Exhausted says the shard has nothing after Frontier; otherwise Frontier is the last position
// it examined (it stopped at Limit matches, or at its scan bound), and a merge must not pass it.
type PaymentPage struct {
	Items     []Payment
	Frontier  []byte
	Exhausted bool
}

// Encode implements fsm.Value (for the query's trip between nodes).
func (p *PaymentPage) Encode(e *fsm.Encoder) {
	e.Uvarint(uint64(len(p.Items)))
	for i := range p.Items {
		p.Items[i].Encode(e)
	}
	e.Bytes(p.Frontier)
	e.Bool(p.Exhausted)
}

// ReadPaymentPage reads what Encode wrote.
func ReadPaymentPage(d *fsm.Decoder) *PaymentPage {
	p := &PaymentPage{}
	n := d.Count("payments")
	for i := 0; i < n && d.Err() == nil; i++ {
		p.Items = append(p.Items, *ReadPayment(d))
	}
	p.Frontier = d.Bytes()
	if len(p.Frontier) == 0 {
		p.Frontier = nil
	}
	p.Exhausted = d.Bool()
	return p
}

// Encode writes the query (for the trip between nodes).
func (q *PaymentQuery) Encode(e *fsm.Encoder) {
	e.Byte(byte(q.Sort))
	e.Bool(q.Descending)
	e.Bytes(q.After)
	e.Uvarint(uint64(q.Limit))
	e.Byte(byte(q.Status))
	e.Byte(byte(q.Type))
	e.String(q.WalletID)
	e.String(q.AssetID)
	e.Varint(q.FromMs)
	e.Varint(q.ToMs)
	e.Uvarint(uint64(q.ScanMax))
}

// ReadPaymentQuery reads what Encode wrote.
func ReadPaymentQuery(d *fsm.Decoder) *PaymentQuery {
	q := &PaymentQuery{Sort: PaymentSort(d.Byte()), Descending: d.Bool(), After: d.Bytes()}
	if len(q.After) == 0 {
		q.After = nil
	}
	q.Limit = int(min(d.Uvarint(), fsm.ListMaxCount))
	q.Status, q.Type = PaymentStatus(d.Byte()), PaymentType(d.Byte())
	q.WalletID, q.AssetID = d.String(), d.String()
	q.FromMs, q.ToMs = d.Varint(), d.Varint()
	q.ScanMax = int(min(d.Uvarint(), 1<<20))
	return q
}

// ListPayments reads one shard's part of a payments list. With a wallet filter and creation
// order it walks the wallet's own index; otherwise the order's index, filtering as it goes.
func (r *Reader) ListPayments(projectID string, q *PaymentQuery) (*PaymentPage, error) {
	if q.Sort != SortCreated && q.Sort != SortAmount {
		return nil, fsm.Rejectf(fsm.CodeInvalidArgument, "unknown sort %d", q.Sort)
	}
	if q.Limit < 1 || q.Limit > fsm.ListMaxCount {
		return nil, fsm.Rejectf(fsm.CodeInvalidArgument, "limit must be 1..%d", fsm.ListMaxCount)
	}
	scanMax := q.ScanMax
	if scanMax <= 0 {
		scanMax = DefaultScanMax
	}
	var prefix []byte
	switch {
	case q.Sort == SortCreated && q.WalletID != "":
		prefix = fsm.KeyPrefix(prefixWalletPayment, projectID, q.WalletID)
	case q.Sort == SortCreated:
		prefix = fsm.KeyPrefix(prefixPaymentTime, projectID)
	default:
		prefix = fsm.KeyPrefix(prefixPaymentAmount, projectID)
	}
	lower, upper := prefix, fsm.PrefixEnd(prefix)
	if q.After != nil {
		pos := append(append([]byte(nil), prefix...), q.After...)
		if q.Descending {
			upper = pos // exclusive already
		} else {
			lower = append(pos, 0) // the smallest key after pos
		}
	}
	if q.Sort == SortCreated {
		// The creation-time index is ordered by time: a time range bounds the walk itself.
		if q.FromMs > 0 {
			if from := binary.BigEndian.AppendUint64(bytes.Clone(prefix), uint64(q.FromMs)); bytes.Compare(from, lower) > 0 {
				lower = from
			}
		}
		if q.ToMs > 0 {
			if to := binary.BigEndian.AppendUint64(bytes.Clone(prefix), uint64(q.ToMs)); bytes.Compare(to, upper) < 0 {
				upper = to
			}
		}
	}
	page := &PaymentPage{}
	if bytes.Compare(lower, upper) >= 0 {
		page.Exhausted = true
		return page, nil
	}
	err := r.store.Read(func() error {
		it, err := r.store.NewIter(lower, upper)
		if err != nil {
			return err
		}
		defer it.Close()
		valid := it.First()
		step := it.Next
		if q.Descending {
			valid, step = it.Last(), it.Prev
		}
		scanned := 0
		for ; valid; valid = step() {
			if len(page.Items) == q.Limit || scanned == scanMax {
				return it.Error()
			}
			scanned++
			pos := bytes.Clone(it.Key()[len(prefix):])
			page.Frontier = pos
			id := paymentIDOfPosition(q.Sort, pos)
			p, err := r.getPayment(projectID, id)
			if err != nil {
				return err
			}
			if p == nil {
				return fmt.Errorf("gigpay: payment index names missing payment %q", id)
			}
			if q.matches(p) {
				page.Items = append(page.Items, *p)
			}
		}
		page.Exhausted = true
		return it.Error()
	})
	if err != nil {
		return nil, err
	}
	return page, nil
}

// paymentIDOfPosition is the payment ID at the end of a sort position.
func paymentIDOfPosition(sort PaymentSort, pos []byte) string {
	if sort == SortAmount {
		return string(pos[amountKeyBytes:])
	}
	return string(pos[8:])
}

func (q *PaymentQuery) matches(p *Payment) bool {
	switch {
	case q.Status != 0 && p.Status != q.Status,
		q.Type != 0 && p.Type != q.Type,
		q.AssetID != "" && p.AssetID != q.AssetID,
		q.WalletID != "" && p.Source.WalletID != q.WalletID && p.Destination.WalletID != q.WalletID,
		q.FromMs != 0 && p.CreatedAt < q.FromMs,
		q.ToMs != 0 && p.CreatedAt >= q.ToMs:
		return false
	}
	return true
}

// EventSubject returns the subject of one of the family's events, the record it carries:
// *Token (GIGPAY_TOKEN_*) or *Payment (GIGPAY_PAYMENT_*); ok is false for another family's event.
func EventSubject(ev fsm.Event) (subject fsm.Value, ok bool, err error) {
	d := fsm.NewDecoder(ev.Data)
	switch ev.Type {
	case EventTokenCreated, EventTokenSucceeded, EventTokenRejected, EventTokenExpired, EventTokenClosed:
		subject = ReadToken(d)
	case EventPaymentCreated, EventPaymentUpdated:
		subject = ReadPayment(d)
	default:
		return nil, false, nil
	}
	if err := d.Finish(ev.Type + " event"); err != nil {
		return nil, true, err
	}
	return subject, true, nil
}
