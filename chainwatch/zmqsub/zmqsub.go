// Package zmqsub owns listening to a Dogecoin-Core-family node's ZMQ notifications: a SUB
// connection to the node's PUB endpoint (tcp://host:port) for the topics hashblock, hashtx,
// rawblock and rawtx, delivered as typed Notifications on a channel, with reconnection (and
// backoff) when the node goes away and a Gap notification whenever messages may have been
// missed: after a reconnect, a sequence number that skips, or a malformed message. A Gap means
// the follower must poll the node (getbestblockhash) instead of trusting the stream.
//
// It speaks ZMTP 3.0 itself (NULL security, the SUB side only) rather than through
// github.com/go-zeromq/zmq4, which the simulator publishes with: zmq4's reader allocates a
// frame of whatever length the peer declares (up to 2^63 bytes) before reading it, so one
// garbage frame could exhaust memory or panic in a goroutine no caller can recover. Here every
// frame is bounded by Config.MessageMaxBytes before a byte of it is read, and anything that is
// not the protocol closes the connection, never the process.
//
// It must never decide what a notification means for the ledger: it carries notifications,
// and the follower polls and decides.
package zmqsub

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

// Topics a node publishes.
const (
	TopicHashBlock = "hashblock"
	TopicHashTx    = "hashtx"
	TopicRawBlock  = "rawblock"
	TopicRawTx     = "rawtx"
)

// Defaults and limits.
const (
	// DefaultMessageMaxBytes bounds one frame when Config.MessageMaxBytes is zero: a raw
	// Dogecoin block is at most 1 MB (its AuxPoW proof adds little); 4 MB leaves room.
	DefaultMessageMaxBytes = 4 << 20
	// MessageMaxBytesLimit bounds Config.MessageMaxBytes.
	MessageMaxBytesLimit = 64 << 20
	// DefaultReconnectMin and DefaultReconnectMax bound the pause between connection attempts,
	// doubling from the one to the other while the node stays away.
	DefaultReconnectMin = 50 * time.Millisecond
	DefaultReconnectMax = 2 * time.Second
	// DefaultBufferCount is the notification channel's capacity: a slow reader holds the
	// connection back (TCP flow control), it does not grow memory.
	DefaultBufferCount = 256
	// handshakeTimeout bounds connecting, the greeting and READY.
	handshakeTimeout = 5 * time.Second
	// commandMaxBytes bounds a ZMTP command (READY, PING): they are small.
	commandMaxBytes = 4096
	// messageFrameCount is a notification's frame count: topic, body, sequence.
	messageFrameCount = 3
)

// Kind says what a Notification carries.
type Kind int

const (
	// KindBlockHash is a hashblock notification: Hash is the new tip's hash.
	KindBlockHash Kind = iota + 1
	// KindTxHash is a hashtx notification: Hash is a transaction's id.
	KindTxHash
	// KindRawBlock is a rawblock notification: Raw is the serialized block.
	KindRawBlock
	// KindRawTx is a rawtx notification: Raw is the serialized transaction.
	KindRawTx
	// KindGap says notifications may have been missed (Reason says why): poll the node.
	KindGap
)

// String names the kind.
func (k Kind) String() string {
	switch k {
	case KindBlockHash:
		return "blockhash"
	case KindTxHash:
		return "txhash"
	case KindRawBlock:
		return "rawblock"
	case KindRawTx:
		return "rawtx"
	case KindGap:
		return "gap"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Notification is one message of the node, or a gap.
type Notification struct {
	Kind Kind
	// Hash is the block hash or txid of KindBlockHash and KindTxHash, in chainhash's internal
	// byte order: Hash.String() is the hex the node's RPC shows.
	Hash chainhash.Hash
	// Raw is the body of KindRawBlock and KindRawTx.
	Raw []byte
	// Sequence is the node's per-topic sequence number of the message.
	Sequence uint32
	// Reason says why for KindGap.
	Reason string
}

// Config configures Subscribe.
type Config struct {
	// Endpoint is the node's PUB endpoint, tcp://host:port.
	Endpoint string
	// Topics are the topics to subscribe to, each one of the Topic constants.
	Topics []string
	// MessageMaxBytes bounds each frame; zero means DefaultMessageMaxBytes.
	MessageMaxBytes int
	// ReconnectMin and ReconnectMax bound the pause between connection attempts; zero means
	// the defaults.
	ReconnectMin, ReconnectMax time.Duration
	// BufferCount is the channel's capacity; zero means DefaultBufferCount.
	BufferCount int
}

// ErrInvalidConfig marks a Config Subscribe refuses.
var ErrInvalidConfig = errors.New("zmqsub: invalid config")

// Subscribe subscribes to topics at endpoint with the default limits; see SubscribeConfig.
func Subscribe(ctx context.Context, endpoint string, topics ...string) (<-chan Notification, error) {
	return SubscribeConfig(ctx, Config{Endpoint: endpoint, Topics: topics})
}

// SubscribeConfig checks config and starts a goroutine that connects to the endpoint,
// subscribes and delivers notifications on the returned channel until ctx ends, when it
// closes the channel. It reconnects whenever the connection fails or the node sends what is
// not the protocol, and sends a KindGap notification after every reconnection and for every
// sequence number that skips. It does not wait for the first connection: a node that is down
// at start is tried again with backoff, like one that goes away later.
func SubscribeConfig(ctx context.Context, config Config) (<-chan Notification, error) {
	address, err := tcpAddress(config.Endpoint)
	if err != nil {
		return nil, err
	}
	if len(config.Topics) == 0 {
		return nil, fmt.Errorf("%w: no topics", ErrInvalidConfig)
	}
	for _, topic := range config.Topics {
		if kindOf(topic) == 0 {
			return nil, fmt.Errorf("%w: unknown topic %q (want hashblock, hashtx, rawblock or rawtx)", ErrInvalidConfig, topic)
		}
	}
	if config.MessageMaxBytes == 0 {
		config.MessageMaxBytes = DefaultMessageMaxBytes
	}
	if config.ReconnectMin == 0 {
		config.ReconnectMin = DefaultReconnectMin
	}
	if config.ReconnectMax == 0 {
		config.ReconnectMax = DefaultReconnectMax
	}
	if config.BufferCount == 0 {
		config.BufferCount = DefaultBufferCount
	}
	switch {
	case config.MessageMaxBytes < chainhash.HashSize || config.MessageMaxBytes > MessageMaxBytesLimit:
		return nil, fmt.Errorf("%w: MessageMaxBytes %d outside %d..%d", ErrInvalidConfig, config.MessageMaxBytes, chainhash.HashSize, MessageMaxBytesLimit)
	case config.ReconnectMin < 0 || config.ReconnectMax < config.ReconnectMin:
		return nil, fmt.Errorf("%w: reconnect pauses %s..%s", ErrInvalidConfig, config.ReconnectMin, config.ReconnectMax)
	case config.BufferCount < 0 || config.BufferCount > 1<<16:
		return nil, fmt.Errorf("%w: BufferCount %d outside 0..%d", ErrInvalidConfig, config.BufferCount, 1<<16)
	}
	subscriber := &subscriber{config: config, address: address, notifications: make(chan Notification, config.BufferCount)}
	go subscriber.run(ctx)
	return subscriber.notifications, nil
}

// tcpAddress returns host:port of tcp://host:port.
func tcpAddress(endpoint string) (string, error) {
	address, ok := strings.CutPrefix(endpoint, "tcp://")
	if !ok {
		return "", fmt.Errorf("%w: endpoint %q is not tcp://host:port", ErrInvalidConfig, endpoint)
	}
	if _, _, err := net.SplitHostPort(address); err != nil {
		return "", fmt.Errorf("%w: endpoint %q: %v", ErrInvalidConfig, endpoint, err)
	}
	return address, nil
}

func kindOf(topic string) Kind {
	switch topic {
	case TopicHashBlock:
		return KindBlockHash
	case TopicHashTx:
		return KindTxHash
	case TopicRawBlock:
		return KindRawBlock
	case TopicRawTx:
		return KindRawTx
	}
	return 0
}

type subscriber struct {
	config        Config
	address       string
	notifications chan Notification
}

// run connects, reads and reconnects until ctx ends.
func (s *subscriber) run(ctx context.Context) {
	defer close(s.notifications)
	pause := s.config.ReconnectMin
	// lastErr is why the previous connection ended, for the gap's reason.
	var lastErr error
	for ctx.Err() == nil {
		connection, err := s.connect(ctx)
		if err != nil {
			lastErr = err
		} else {
			pause = s.config.ReconnectMin
			if lastErr != nil {
				gap := Notification{Kind: KindGap, Reason: fmt.Sprintf("reconnected after %v: notifications may have been missed", lastErr)}
				if !s.deliver(ctx, gap) {
					connection.Close()
					return
				}
			}
			lastErr = s.read(ctx, connection)
			connection.Close()
			if ctx.Err() != nil {
				return
			}
		}
		timer := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		pause = min(2*pause, s.config.ReconnectMax)
	}
}

// deliver sends n unless ctx ends first.
func (s *subscriber) deliver(ctx context.Context, n Notification) bool {
	select {
	case s.notifications <- n:
		return true
	case <-ctx.Done():
		return false
	}
}

// connect dials and does the ZMTP handshake: greetings both ways, READY both ways (the peer
// must be a PUB or XPUB socket), then one subscription message per topic.
func (s *subscriber) connect(ctx context.Context) (net.Conn, error) {
	dialer := net.Dialer{Timeout: handshakeTimeout}
	connection, err := dialer.DialContext(ctx, "tcp", s.address)
	if err != nil {
		return nil, err
	}
	connection.SetDeadline(time.Now().Add(handshakeTimeout))
	if err := s.handshake(connection); err != nil {
		connection.Close()
		return nil, err
	}
	connection.SetDeadline(time.Time{})
	return connection, nil
}

func (s *subscriber) handshake(connection net.Conn) error {
	if _, err := connection.Write(greeting()); err != nil {
		return fmt.Errorf("send greeting: %w", err)
	}
	var peer [greetingBytes]byte
	if _, err := io.ReadFull(connection, peer[:]); err != nil {
		return fmt.Errorf("read greeting: %w", err)
	}
	if peer[0] != 0xff || peer[9] != 0x7f || peer[10] < 3 || !bytes.Equal(bytes.TrimRight(peer[12:32], "\x00"), []byte("NULL")) {
		return errors.New("peer greeting is not ZMTP 3 with NULL security")
	}
	if _, err := connection.Write(frame(flagCommand, readyCommand("SUB"))); err != nil {
		return fmt.Errorf("send READY: %w", err)
	}
	reader := frameReader{reader: connection, frameMaxBytes: commandMaxBytes}
	flags, body, err := reader.next()
	if err != nil {
		return fmt.Errorf("read READY: %w", err)
	}
	socketType, err := parseReady(flags, body)
	if err != nil {
		return err
	}
	if socketType != "PUB" && socketType != "XPUB" {
		return fmt.Errorf("peer is a %q socket, not PUB", socketType)
	}
	for _, topic := range s.config.Topics {
		if _, err := connection.Write(frame(0, append([]byte{1}, topic...))); err != nil {
			return fmt.Errorf("subscribe %s: %w", topic, err)
		}
	}
	return nil
}

// read delivers the connection's messages until it fails or ctx ends.
func (s *subscriber) read(ctx context.Context, connection net.Conn) error {
	stop := context.AfterFunc(ctx, func() { connection.Close() })
	defer stop()
	reader := frameReader{reader: bufio.NewReader(connection), frameMaxBytes: s.config.MessageMaxBytes}
	lastSequence := make(map[string]uint32)
	for {
		frames, err := reader.message()
		if err != nil {
			return err
		}
		notification, topic, err := s.decode(frames)
		if err != nil {
			if !s.deliver(ctx, Notification{Kind: KindGap, Reason: "malformed message: " + err.Error()}) {
				return ctx.Err()
			}
			continue
		}
		if last, seen := lastSequence[topic]; seen && notification.Sequence != last+1 {
			gap := Notification{Kind: KindGap, Reason: fmt.Sprintf("%s sequence %d after %d", topic, notification.Sequence, last)}
			if !s.deliver(ctx, gap) {
				return ctx.Err()
			}
		}
		lastSequence[topic] = notification.Sequence
		if !s.deliver(ctx, notification) {
			return ctx.Err()
		}
	}
}

// decode checks a message's shape and makes its notification.
func (s *subscriber) decode(frames [][]byte) (Notification, string, error) {
	if len(frames) != messageFrameCount {
		return Notification{}, "", fmt.Errorf("%d frames, want %d", len(frames), messageFrameCount)
	}
	topic := string(frames[0])
	kind := kindOf(topic)
	if kind == 0 || !slices.Contains(s.config.Topics, topic) {
		return Notification{}, "", fmt.Errorf("topic %q not subscribed", excerpt(frames[0]))
	}
	if len(frames[2]) != 4 {
		return Notification{}, "", fmt.Errorf("%s: sequence of %d bytes, want 4", topic, len(frames[2]))
	}
	notification := Notification{Kind: kind, Sequence: binary.LittleEndian.Uint32(frames[2])}
	switch kind {
	case KindBlockHash, KindTxHash:
		if len(frames[1]) != chainhash.HashSize {
			return Notification{}, "", fmt.Errorf("%s: body of %d bytes, want %d", topic, len(frames[1]), chainhash.HashSize)
		}
		// The node sends the hash in display order.
		for i := range chainhash.HashSize {
			notification.Hash[i] = frames[1][chainhash.HashSize-1-i]
		}
	default:
		if len(frames[1]) == 0 {
			return Notification{}, "", fmt.Errorf("%s: empty body", topic)
		}
		notification.Raw = frames[1]
	}
	return notification, topic, nil
}

func excerpt(raw []byte) string {
	const excerptMaxBytes = 32
	if len(raw) > excerptMaxBytes {
		raw = raw[:excerptMaxBytes]
	}
	return strings.ToValidUTF8(string(raw), "?")
}
