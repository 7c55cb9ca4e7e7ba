package chainsim

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"slices"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
	"github.com/go-zeromq/zmq4"
)

// ZMQ topics Dogecoin Core (like Bitcoin Core) publishes, each message three frames: the
// topic, the body and a 4-byte little-endian sequence number counted per topic from 0.
const (
	// TopicHashBlock's body is a new tip's hash, 32 bytes in display order (reversed
	// from the hash's internal byte order, as Core sends it).
	TopicHashBlock = "hashblock"
	// TopicHashTx's body is a transaction's id, 32 bytes in display order.
	TopicHashTx = "hashtx"
	// TopicRawBlock's body is a new tip's serialized block (with its AuxPoW proof).
	TopicRawBlock = "rawblock"
	// TopicRawTx's body is a serialized transaction.
	TopicRawTx = "rawtx"
)

// zmqQueueMaxMessages bounds the publisher's queue: past it messages are dropped, which a
// subscriber sees as a sequence gap (as with Core's high-water mark).
const zmqQueueMaxMessages = 100_000

// ErrZMQ marks a failure of the ZMQ publisher.
var ErrZMQ = errors.New("chainsim: ZMQ publisher")

// publisher is the PUB socket and its per-topic sequence numbers.
type publisher struct {
	socket    zmq4.Socket
	endpoint  string
	sequences map[string]uint32
}

// ListenZMQ binds a PUB socket to endpoint (tcp://127.0.0.1:port; port 0 picks a free one)
// and publishes on it from now on, as Dogecoin Core does with -zmqpub<topic>=endpoint for all
// four topics: a transaction when the mempool accepts it and again when a connected block
// holds it (hashtx, rawtx), then the block (hashblock, rawblock), for every block that becomes
// the tip. It returns the bound endpoint. Subscribers that connect late miss what came before
// (ZMQ's slow joiner): wait for ZMQSubscribed before making the events a test awaits.
func (c *Chain) ListenZMQ(endpoint string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.publisher != nil {
		return "", fmt.Errorf("%w: already listening on %s", ErrZMQ, c.publisher.endpoint)
	}
	socket := zmq4.NewPub(context.Background(), zmq4.WithLogger(log.New(io.Discard, "", 0)))
	if err := socket.Listen(endpoint); err != nil {
		socket.Close()
		return "", fmt.Errorf("%w: %w", ErrZMQ, err)
	}
	if err := socket.SetOption(zmq4.OptionHWM, zmqQueueMaxMessages); err != nil {
		socket.Close()
		return "", fmt.Errorf("%w: high-water mark: %w", ErrZMQ, err)
	}
	bound := "tcp://" + socket.Addr().String()
	c.publisher = &publisher{socket: socket, endpoint: bound, sequences: make(map[string]uint32)}
	return bound, nil
}

// CloseZMQ closes the PUB socket, as a node that stops does; ListenZMQ may bind again, with
// sequence numbers from 0 as a restarted node's.
func (c *Chain) CloseZMQ() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.publisher == nil {
		return nil
	}
	err := c.publisher.socket.Close()
	c.publisher = nil
	if err != nil {
		return fmt.Errorf("%w: close: %w", ErrZMQ, err)
	}
	return nil
}

// ZMQSubscribed reports whether some subscriber has subscribed to topic (a prefix of it
// counts, as in ZMQ).
func (c *Chain) ZMQSubscribed(topic string) bool {
	c.mu.Lock()
	publisher := c.publisher
	c.mu.Unlock()
	if publisher == nil {
		return false
	}
	topics, ok := publisher.socket.(zmq4.Topics)
	if !ok {
		return false
	}
	return slices.ContainsFunc(topics.Topics(), func(subscribed string) bool {
		return len(subscribed) <= len(topic) && topic[:len(subscribed)] == subscribed
	})
}

// publish queues one message; the caller holds c.mu, so messages leave in the chain's order.
func (c *Chain) publish(topic string, body []byte) {
	if c.publisher == nil {
		return
	}
	sequence := c.publisher.sequences[topic]
	c.publisher.sequences[topic] = sequence + 1
	message := zmq4.NewMsgFrom([]byte(topic), body, binary.LittleEndian.AppendUint32(nil, sequence))
	// A PUB socket queues and never blocks; a failure is a closed socket, and a node does not
	// stop for its notifications either.
	_ = c.publisher.socket.SendMulti(message)
}

func (c *Chain) publishTransaction(transaction *wire.MsgTx, txid chainhash.Hash) {
	if c.publisher == nil {
		return
	}
	c.publish(TopicHashTx, displayOrder(txid))
	raw, err := serializeTransaction(transaction)
	if err != nil {
		panic(fmt.Sprintf("chainsim: serialize %s: %v", txid, err))
	}
	c.publish(TopicRawTx, raw)
}

func (c *Chain) publishBlock(b *block) {
	if c.publisher == nil {
		return
	}
	for index, transaction := range b.transactions {
		c.publishTransaction(transaction, b.txids[index])
	}
	c.publish(TopicHashBlock, displayOrder(b.hash))
	c.publish(TopicRawBlock, b.serialize())
}

// displayOrder is a hash's bytes reversed: the order of its hex as shown, which Core's
// hashblock and hashtx bodies use.
func displayOrder(hash chainhash.Hash) []byte {
	reversed := make([]byte, chainhash.HashSize)
	for i := range hash {
		reversed[chainhash.HashSize-1-i] = hash[i]
	}
	return reversed
}
