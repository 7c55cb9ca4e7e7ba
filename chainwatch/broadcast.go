package chainwatch

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gigaledger/gigaledger/chainwatch/rpc"
	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/gigawallet"
)

// Sender is the node call that broadcasts (chainwatch/rpc.Client).
type Sender interface {
	SendRawTransaction(ctx context.Context, rawHex string) (string, error)
}

// RefusedError is a node's refusal of a transaction for good: it will not take it however often
// it is sent (invalid, inputs missing or spent, below its fee policy).
type RefusedError struct{ Reason string }

func (e *RefusedError) Error() string { return "the node refused the transaction: " + e.Reason }

// RefusalReason is the node's reason (httpapi.ChainService's contract).
func (e *RefusedError) RefusalReason() string { return e.Reason }

// Core's RPC error codes for sendrawtransaction.
const (
	rpcDeserializationError = -22
	rpcVerifyError          = -25
	rpcVerifyRejected       = -26
	rpcVerifyAlreadyInChain = -27
)

// Broadcast sends a signed transaction: nil when the node has it (taken now, or already in its
// mempool or chain), a *RefusedError when it refuses it for good, any other error when the
// outcome is unknown (a transport failure: it may have taken it; send it again later).
func Broadcast(ctx context.Context, node Sender, raw []byte) error {
	_, err := node.SendRawTransaction(ctx, hex.EncodeToString(raw))
	if err == nil {
		return nil
	}
	var nodeErr *rpc.Error
	if !errors.As(err, &nodeErr) {
		return err
	}
	message := strings.ToLower(nodeErr.Message)
	switch {
	case nodeErr.Code == rpcVerifyAlreadyInChain,
		nodeErr.Code == rpcVerifyRejected && (strings.Contains(message, "already-in-mempool") || strings.Contains(message, "already known") || strings.Contains(message, "already-known")):
		return nil
	case nodeErr.Code == rpcVerifyRejected, nodeErr.Code == rpcVerifyError, nodeErr.Code == rpcDeserializationError:
		return &RefusedError{Reason: fmt.Sprintf("%d: %s", nodeErr.Code, boundReason(nodeErr.Message))}
	}
	return err
}

// DefaultRequestSendGrace is how long a payout reserved by an API request is that request's to
// send (the request's own timeout is 10 s by default).
const DefaultRequestSendGrace = 15 * time.Second

// DefaultPaytxUnseenMax is how long a paytx payout (sent by the caller) may stay unseen by the
// node before the shard's leader voids it, freeing its inputs and hold.
const DefaultPaytxUnseenMax = time.Hour

// reasonMaxBytes bounds a refusal's reason as the payout records it.
const reasonMaxBytes = 200

func boundReason(s string) string {
	clean := strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(clean) > reasonMaxBytes {
		clean = clean[:reasonMaxBytes]
	}
	return strings.ToValidUTF8(clean, "?")
}

// broadcastUnmined sends the shard's payouts that are not mined yet and that the node's mempool
// lacks (never sent: a leader died between reserving and sending; or the node lost them), and
// records what the node answered. It runs once the shard is at the node's tip, so a payout
// refused because its block arrived meanwhile is not released on a stale view.
func (f *Follower) broadcastUnmined(ctx context.Context, sender Sender) error {
	payments, err := f.shard.Reader().UnminedPayments(mempoolBatchMax)
	if err != nil || len(payments) == 0 {
		return err
	}
	unmined := make(map[string]bool, len(payments))
	for _, p := range payments {
		unmined[p.TxID.String()] = true
	}
	for txid := range f.refusedAt {
		if !unmined[txid] {
			delete(f.refusedAt, txid) // mined or released since (forgetting only asks again)
		}
	}
	pool, err := f.node.GetRawMempool(ctx)
	if err != nil {
		return err
	}
	inPool := make(map[string]bool, len(pool))
	for _, id := range pool {
		inPool[id] = true
	}
	unseenMax := f.cfg.PaytxUnseenMax
	if unseenMax <= 0 {
		unseenMax = DefaultPaytxUnseenMax
	}
	grace := f.cfg.RequestSendGrace
	if grace == 0 {
		grace = DefaultRequestSendGrace
	}
	for _, p := range payments {
		if p.Broadcast && p.Status == gigawallet.PaymentReserved && p.Kind != gigawallet.PaymentKindAuto &&
			time.Since(time.UnixMilli(p.CreatedAt)) < grace {
			// The request that reserved it is sending it now: two sends race, and a refusal the
			// node gives one of them (a full mempool, a transient policy) would release a payout
			// the other got into the mempool. The follower sends only what its request left.
			continue
		}
		if !p.Broadcast {
			// paytx: the caller broadcasts it. Not seen by the node within unseenMax of its
			// reservation, it is voided (the shard refuses if it was seen meanwhile).
			if p.Status == gigawallet.PaymentReserved && !inPool[p.TxID.String()] &&
				time.Since(time.UnixMilli(p.CreatedAt)) > unseenMax {
				void := &gigawallet.VoidPayment{ProjectID: p.ProjectID, ForeignID: p.ForeignID, TxID: p.TxID}
				result, err := f.shard.Propose(ctx, void)
				if err != nil {
					return err
				}
				if result.Err == nil {
					f.cfg.Logger.Info("chainwatch: a paytx payout was not sent within its time; released", "shard", f.shardID, "txid", p.TxID.String())
				}
			}
			continue
		}
		txid := p.TxID.String()
		var refused *RefusedError
		if inPool[txid] {
			delete(f.refusedAt, txid)
		} else {
			err := Broadcast(ctx, sender, p.RawTx)
			switch {
			case errors.As(err, &refused):
				cursor, cerr := f.shard.Reader().ChainCursor()
				if cerr != nil {
					return cerr
				}
				if best, berr := f.node.GetBestBlockHash(ctx); berr != nil || best != cursor.Hash.String() {
					continue // a block arrived: observe it first
				}
				// An earlier send of it may still reach the node (the request's, whose answer was
				// lost; a probe's proxy delivered it 7 s after this send was refused for a full
				// mempool, and the payout the client was told was released went out after all).
				// Released only when the node still refuses it a send grace later.
				first, seen := f.refusedAt[txid]
				if !seen {
					f.refusedAt[txid] = time.Now()
				}
				if grace > 0 && (!seen || time.Since(first) < grace) {
					f.cfg.Logger.Info("chainwatch: the node refused a payout; asking again before releasing it",
						"shard", f.shardID, "txid", txid, "reason", refused.Reason)
					continue
				}
				delete(f.refusedAt, txid)
			case err != nil:
				f.cfg.Logger.Warn("chainwatch: payout broadcast outcome unknown; sending again later", "shard", f.shardID, "txid", txid, "err", err)
				continue
			}
		}
		if refused == nil && p.Status != gigawallet.PaymentReserved {
			continue // sent before, and the node has it again
		}
		cmd := &gigawallet.PaymentBroadcast{ProjectID: p.ProjectID, ForeignID: p.ForeignID, TxID: p.TxID}
		if refused != nil {
			cmd.Refused, cmd.Reason = true, refused.Reason
			f.cfg.Logger.Warn("chainwatch: the node refused a payout; releasing it", "shard", f.shardID, "txid", txid, "reason", refused.Reason)
		}
		if err := f.propose(ctx, func() (fsm.Command, error) { return cmd, nil }); err != nil {
			return err
		}
	}
	return nil
}
