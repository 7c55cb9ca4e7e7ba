package zmqsub

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"github.com/gigaledger/gigaledger/chainwatch/chainsim"
	"github.com/gigaledger/gigaledger/chainwatch/dogecoin"
	"github.com/gigaledger/gigaledger/cluster/testutil"
)

const receiveTimeout = 10 * time.Second

var allTopics = []string{TopicHashBlock, TopicHashTx, TopicRawBlock, TopicRawTx}

// receive returns the next notification, failing the test after receiveTimeout.
func receive(t *testing.T, notifications <-chan Notification) Notification {
	t.Helper()
	select {
	case n, ok := <-notifications:
		if !ok {
			t.Fatal("notification channel closed")
		}
		return n
	case <-time.After(receiveTimeout):
		t.Fatalf("no notification within %s", receiveTimeout)
	}
	return Notification{}
}

// receiveUntil skips notifications until one of kind arrives and returns the skipped ones too.
func receiveUntil(t *testing.T, notifications <-chan Notification, kind Kind) (Notification, []Notification) {
	t.Helper()
	var skipped []Notification
	for {
		n := receive(t, notifications)
		if n.Kind == kind {
			return n, skipped
		}
		skipped = append(skipped, n)
	}
}

func subscribedToAll(chain *chainsim.Chain) bool {
	for _, topic := range allTopics {
		if !chain.ZMQSubscribed(topic) {
			return false
		}
	}
	return true
}

func TestSimulatorNotificationsArriveInOrder(t *testing.T) {
	chain, err := chainsim.New(chainsim.Options{AuxPoW: true})
	if err != nil {
		t.Fatal(err)
	}
	endpoint, err := chain.ListenZMQ("tcp://127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { chain.CloseZMQ() })
	notifications, err := Subscribe(testutil.Context(t, time.Minute), endpoint, allTopics...)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the subscriber's four subscriptions", func() bool { return subscribedToAll(chain) })

	first := chain.Mine(1)[0]
	recipient, _ := dogecoin.P2PKHAddress(bytes.Repeat([]byte{2}, 33), dogecoin.Regtest)
	txid, err := chain.Pay(recipient, chainsim.KoinuPerCoin)
	if err != nil {
		t.Fatal(err)
	}
	second := chain.Mine(1)[0]

	var got []Notification
	for range 4 + 2 + 6 {
		got = append(got, receive(t, notifications))
	}
	kinds := []Kind{KindTxHash, KindRawTx, KindBlockHash, KindRawBlock, KindTxHash, KindRawTx,
		KindTxHash, KindRawTx, KindTxHash, KindRawTx, KindBlockHash, KindRawBlock}
	for i, n := range got {
		if n.Kind != kinds[i] {
			t.Fatalf("notification %d is %s, want %s (all: %v)", i, n.Kind, kinds[i], got)
		}
	}
	if got[2].Hash != first || got[10].Hash != second || got[4].Hash != txid || got[8].Hash != txid {
		t.Fatalf("hashes: block %s/%s, tx %s/%s", got[2].Hash, got[10].Hash, got[4].Hash, got[8].Hash)
	}
	block, err := dogecoin.ParseBlock(got[11].Raw)
	if err != nil || block.Hash != second || block.AuxPoW == nil {
		t.Fatalf("rawblock: %v", err)
	}
	var transaction wire.MsgTx
	if err := transaction.Deserialize(bytes.NewReader(got[5].Raw)); err != nil || transaction.TxHash() != txid {
		t.Fatalf("rawtx: %v", err)
	}
	// Sequences count per topic from 0.
	if got[2].Sequence != 0 || got[10].Sequence != 1 || got[0].Sequence != 0 || got[8].Sequence != 3 {
		t.Fatalf("sequences %d %d %d %d", got[2].Sequence, got[10].Sequence, got[0].Sequence, got[8].Sequence)
	}
}

func TestAPublisherRestartIsAGapAndTheStreamResumes(t *testing.T) {
	chain, _ := chainsim.New(chainsim.Options{})
	// A port below the ephemeral range: the subscriber dials it while nothing listens, and an
	// ephemeral port could be taken as that dial's own local port (a TCP self-connect) before
	// the publisher binds it again.
	endpoint, err := chain.ListenZMQ("tcp://" + testutil.FreeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { chain.CloseZMQ() })
	notifications, err := SubscribeConfig(testutil.Context(t, time.Minute), Config{Endpoint: endpoint, Topics: []string{TopicHashBlock}, ReconnectMax: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the subscription", func() bool { return chain.ZMQSubscribed(TopicHashBlock) })
	hash := chain.Mine(1)[0]
	if n := receive(t, notifications); n.Kind != KindBlockHash || n.Hash != hash {
		t.Fatalf("first: %+v", n)
	}

	if err := chain.CloseZMQ(); err != nil {
		t.Fatal(err)
	}
	chain.Mine(1) // nobody hears this one
	if _, err := chain.ListenZMQ(endpoint); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the resubscription", func() bool { return chain.ZMQSubscribed(TopicHashBlock) })
	hash = chain.Mine(1)[0]
	n, skipped := receiveUntil(t, notifications, KindBlockHash)
	if n.Hash != hash || len(skipped) == 0 || skipped[0].Kind != KindGap {
		t.Fatalf("after the restart: %+v, skipped %+v; want a gap, then %s", n, skipped, hash)
	}
}

// fakePublisher accepts connections and hands each to the next script, in order.
func fakePublisher(t *testing.T, scripts ...func(net.Conn)) string {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { listener.Close() })
	go func() {
		for i := 0; ; i++ {
			connection, err := listener.Accept()
			if err != nil {
				return
			}
			script := scripts[min(i, len(scripts)-1)]
			go func() {
				defer connection.Close()
				script(connection)
			}()
		}
	}()
	return "tcp://" + listener.Addr().String()
}

// handshakeAsPub does the PUB side of the handshake and reads the subscriptions.
func handshakeAsPub(connection net.Conn, topics int) bool {
	connection.SetDeadline(time.Now().Add(receiveTimeout))
	var peer [greetingBytes]byte
	if _, err := connection.Write(greeting()); err != nil {
		return false
	}
	if _, err := io.ReadFull(connection, peer[:]); err != nil {
		return false
	}
	reader := frameReader{reader: connection, frameMaxBytes: 1024}
	if _, _, err := reader.next(); err != nil { // READY
		return false
	}
	if _, err := connection.Write(frame(flagCommand, readyCommand("PUB"))); err != nil {
		return false
	}
	for range topics {
		if _, _, err := reader.next(); err != nil {
			return false
		}
	}
	return true
}

func hashBlockMessage(hash chainhash.Hash, sequence uint32) []byte {
	body := make([]byte, 32)
	for i := range 32 {
		body[i] = hash[31-i]
	}
	message := frame(flagMore, []byte(TopicHashBlock))
	message = append(message, frame(flagMore, body)...)
	return append(message, frame(0, binary.LittleEndian.AppendUint32(nil, sequence))...)
}

func TestGarbageAndOversizeFramesDropTheConnectionNotTheProcess(t *testing.T) {
	hash := chainhash.DoubleHashH([]byte("block"))
	endpoint := fakePublisher(t,
		// Not ZMTP at all.
		func(connection net.Conn) { connection.Write(bytes.Repeat([]byte{0xde, 0xad}, 100)) },
		// A frame claiming 2^62 bytes.
		func(connection net.Conn) {
			if handshakeAsPub(connection, 1) {
				connection.Write([]byte{flagLong, 0x40, 0, 0, 0, 0, 0, 0, 0})
				io.Copy(io.Discard, connection)
			}
		},
		// A malformed message (a short hash), then a sequence that skips, then good ones.
		func(connection net.Conn) {
			if !handshakeAsPub(connection, 1) {
				return
			}
			short := frame(flagMore, []byte(TopicHashBlock))
			short = append(short, frame(flagMore, []byte{1, 2, 3})...)
			short = append(short, frame(0, []byte{0, 0, 0, 0})...)
			connection.Write(short)
			connection.Write(hashBlockMessage(hash, 7))
			connection.Write(hashBlockMessage(hash, 9))
			io.Copy(io.Discard, connection)
		},
	)
	notifications, err := SubscribeConfig(testutil.Context(t, time.Minute), Config{
		Endpoint: endpoint, Topics: []string{TopicHashBlock}, MessageMaxBytes: 1024, ReconnectMax: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	first, _ := receiveUntil(t, notifications, KindBlockHash)
	if first.Hash != hash || first.Sequence != 7 {
		t.Fatalf("first good message: %+v", first)
	}
	gap := receive(t, notifications)
	second := receive(t, notifications)
	if gap.Kind != KindGap || second.Kind != KindBlockHash || second.Sequence != 9 {
		t.Fatalf("after a skipped sequence: %+v then %+v; want a gap, then sequence 9", gap, second)
	}
}

func TestSubscribeRefusesABadConfig(t *testing.T) {
	ctx := testutil.Context(t, time.Minute)
	for _, config := range []Config{
		{Endpoint: "127.0.0.1:1", Topics: []string{TopicHashBlock}},
		{Endpoint: "tcp://127.0.0.1:1"},
		{Endpoint: "tcp://127.0.0.1:1", Topics: []string{"sequence"}},
		{Endpoint: "tcp://127.0.0.1:1", Topics: []string{TopicHashBlock}, MessageMaxBytes: MessageMaxBytesLimit + 1},
	} {
		if _, err := SubscribeConfig(ctx, config); err == nil {
			t.Errorf("config %+v accepted", config)
		}
	}
}

func TestTheChannelClosesWhenTheContextEnds(t *testing.T) {
	endpoint := fakePublisher(t, func(connection net.Conn) {
		handshakeAsPub(connection, 1)
		io.Copy(io.Discard, connection)
	})
	child, stop := context.WithCancel(testutil.Context(t, time.Minute))
	notifications, err := Subscribe(child, endpoint, TopicHashBlock)
	if err != nil {
		t.Fatal(err)
	}
	stop()
	select {
	case _, ok := <-notifications:
		for ok {
			_, ok = <-notifications
		}
	case <-time.After(receiveTimeout):
		t.Fatal("the channel stayed open after the context ended")
	}
}

// FuzzReadMessages: no byte stream makes the reader or the READY parser panic, or hands out
// a frame over its bound.
func FuzzReadMessages(f *testing.F) {
	f.Add(hashBlockMessage(chainhash.Hash{1}, 3))
	f.Add(append(frame(flagCommand, readyCommand("PUB")), hashBlockMessage(chainhash.Hash{2}, 0)...))
	f.Add([]byte{flagLong, 0x40, 0, 0, 0, 0, 0, 0, 0})
	f.Add(frame(flagMore, []byte(TopicRawTx)))
	const frameMaxBytes = 256
	s := &subscriber{config: Config{Topics: allTopics}}
	f.Fuzz(func(t *testing.T, stream []byte) {
		parseReady(flagCommand, stream)
		reader := frameReader{reader: bytes.NewReader(stream), frameMaxBytes: frameMaxBytes}
		for {
			frames, err := reader.message()
			if err != nil {
				return
			}
			for _, body := range frames {
				if len(body) > frameMaxBytes {
					t.Fatalf("a frame of %d bytes passed a bound of %d", len(body), frameMaxBytes)
				}
			}
			s.decode(frames)
		}
	})
}
