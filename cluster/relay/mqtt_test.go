package relay

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/gigaledger/gigaledger/cluster/testutil"
)

// mqttWait bounds every wait of these tests for a broker, a connection or a message.
const mqttWait = 30 * time.Second

func mqttSub(name, broker, topic string, types ...string) Subscription {
	filter, err := ParseFilter(types)
	if err != nil {
		panic(err)
	}
	return Subscription{Name: name, Kind: KindMQTT, URL: broker, Filter: filter, MQTT: &MQTTOptions{Topic: topic}}
}

// mqttMessage is one message a test subscriber got.
type mqttMessage struct {
	topic     string
	qos       byte
	eventID   string
	eventType string
	shard     int
	sequence  uint64
}

// mqttSubscriber is a paho client subscribed at QoS 1, as an integrator's would be.
type mqttSubscriber struct {
	t      *testing.T
	client mqtt.Client

	mu       sync.Mutex
	messages []mqttMessage
	problems []string
}

type subscriberOptions struct {
	username, password string
	// persistent keeps the session on the broker (clean session off, a fixed client ID): what
	// is published while the subscriber reconnects waits for it.
	persistent bool
	tls        *tls.Config
}

func subscribeMQTT(t *testing.T, broker, filter string, opts subscriberOptions) *mqttSubscriber {
	t.Helper()
	s := &mqttSubscriber{t: t}
	clientID := fmt.Sprintf("test-subscriber-%d", time.Now().UnixNano())
	options := mqtt.NewClientOptions().AddBroker(broker).SetClientID(clientID).
		SetUsername(opts.username).SetPassword(opts.password).
		SetCleanSession(!opts.persistent).SetAutoReconnect(true).SetMaxReconnectInterval(500 * time.Millisecond).
		SetConnectTimeout(5 * time.Second).SetDefaultPublishHandler(s.handle)
	if opts.tls != nil {
		options.SetTLSConfig(opts.tls)
	}
	s.client = mqtt.NewClient(options)
	if token := s.client.Connect(); !token.WaitTimeout(mqttWait) || token.Error() != nil {
		t.Fatalf("subscriber connect: %v", token.Error())
	}
	t.Cleanup(func() { s.client.Disconnect(100) })
	if token := s.client.Subscribe(filter, 1, s.handle); !token.WaitTimeout(mqttWait) || token.Error() != nil {
		t.Fatalf("subscribe %s: %v", filter, token.Error())
	}
	return s
}

func (s *mqttSubscriber) handle(_ mqtt.Client, message mqtt.Message) {
	var envelope struct {
		EventID   string `json:"event_id"`
		EventType string `json:"event_type"`
		Shard     int    `json:"shard"`
		Sequence  uint64 `json:"sequence"`
	}
	err := json.Unmarshal(message.Payload(), &envelope)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.problems = append(s.problems, fmt.Sprintf("payload %q: %v", message.Payload(), err))
		return
	}
	s.messages = append(s.messages, mqttMessage{topic: message.Topic(), qos: message.Qos(), eventID: envelope.EventID,
		eventType: envelope.EventType, shard: envelope.Shard, sequence: envelope.Sequence})
}

// got returns the messages so far, failing the test on any that did not decode.
func (s *mqttSubscriber) got() []mqttMessage {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.problems) > 0 {
		s.t.Fatalf("subscriber: %v", s.problems)
	}
	return slices.Clone(s.messages)
}

// firstSeen returns the sequences of shard on topic (any topic when empty), each once, in the
// order they first arrived.
func firstSeen(messages []mqttMessage, shard int, topicPrefix string) []uint64 {
	seen := map[uint64]bool{}
	var order []uint64
	for _, m := range messages {
		if m.shard == shard && strings.HasPrefix(m.topic, topicPrefix) && !seen[m.sequence] {
			seen[m.sequence] = true
			order = append(order, m.sequence)
		}
	}
	return order
}

func sequencesUpTo(n uint64) []uint64 {
	var list []uint64
	for s := uint64(1); s <= n; s++ {
		list = append(list, s)
	}
	return list
}

// The engine publishes every event at QoS 1, in order per shard: to one fixed topic, and, for
// a second queue on the same broker (sharing its connection), to a topic per event type.
func TestMQTTSubscriberReceivesEveryEventInOrderAtQoS1(t *testing.T) {
	broker := startMosquitto(t, mosquittoOptions{})
	subscriber := subscribeMQTT(t, broker.url("tcp"), "gigaledger/#", subscriberOptions{})
	transport := NewMQTT(MQTTTransportOptions{AttemptTimeout: 5 * time.Second})
	t.Cleanup(transport.Close)

	w := newWorld()
	w.subs.set(mqttSub("all", broker.url("tcp"), "gigaledger/all", "ALL"),
		mqttSub("invoices", broker.url("tcp"), "gigaledger/typed/{type}", "INV"))
	cfg := w.config(led(1, 2), 0)
	cfg.Transports = map[Kind]Transport{KindMQTT: transport}
	startEngine(t, cfg, false)

	types := []string{"INV_CREATED", "PAYMENT_SENT", "INV_TOTAL_PAYMENT_CONFIRMED", "LEDGER_TRANSFER"}
	const perShard = 60
	want := map[int][]string{}
	for i := range perShard {
		for _, shard := range []int{1, 2} {
			eventType := types[(i+shard)%len(types)]
			w.source.emit(shard, eventType)
			want[shard] = append(want[shard], eventType)
		}
	}
	for _, shard := range []int{1, 2} {
		waitCursor(t, w, shard, "all", perShard)
		waitCursor(t, w, shard, "invoices", perShard)
	}
	testutil.EventuallyWithin(t, mqttWait, "the subscriber to get every event", func() bool {
		return len(subscriber.got()) >= 2*perShard+2*perShard/2
	})

	messages := subscriber.got()
	for _, m := range messages {
		if m.qos != 1 {
			t.Fatalf("message %s arrived at QoS %d, want 1", m.eventID, m.qos)
		}
		if m.eventID != fmt.Sprintf("%d-%d", m.shard, m.sequence) {
			t.Fatalf("message on %s: event ID %q for shard %d sequence %d", m.topic, m.eventID, m.shard, m.sequence)
		}
	}
	for _, shard := range []int{1, 2} {
		if got := firstSeen(messages, shard, "gigaledger/all"); !slices.Equal(got, sequencesUpTo(perShard)) {
			t.Fatalf("shard %d on gigaledger/all: %v", shard, got)
		}
		var invoices []uint64
		for i, eventType := range want[shard] {
			if strings.HasPrefix(eventType, "INV_") {
				invoices = append(invoices, uint64(i+1))
			}
		}
		if got := firstSeen(messages, shard, "gigaledger/typed/"); !slices.Equal(got, invoices) {
			t.Fatalf("shard %d on the typed topics: %v, want %v", shard, got, invoices)
		}
	}
	// No fault, so no duplicate; every typed message on its own type's topic.
	if len(messages) != 2*perShard+2*perShard/2 {
		t.Fatalf("%d messages, want %d", len(messages), 2*perShard+2*perShard/2)
	}
	for _, m := range messages {
		if strings.HasPrefix(m.topic, "gigaledger/typed/") && m.topic != "gigaledger/typed/"+m.eventType {
			t.Fatalf("event of type %s on %s", m.eventType, m.topic)
		}
	}
	if n := transport.connectionCount(); n != 1 {
		t.Fatalf("%d broker connections, want 1 shared by both queues", n)
	}
	if letters := w.dead.list(); len(letters) != 0 {
		t.Fatalf("dead letters %v", letters)
	}
}

// A broker that refuses the credentials fails the attempt at once with its return code, never
// with the password; the engine retries, then dead-letters, and other subscribers go on.
func TestMQTTRefusedCredentialsFailTheAttemptWithTheReturnCode(t *testing.T) {
	const password, wrongPassword = "right-horse-battery", "wrong-staple-4711"
	broker := startMosquitto(t, mosquittoOptions{users: map[string]string{"relay": password}})
	subscriber := subscribeMQTT(t, broker.url("tcp"), "events/#", subscriberOptions{username: "relay", password: password})
	// Refused connects back off up to ReconnectMax, waited out within an attempt: keep it short.
	transport := NewMQTT(MQTTTransportOptions{AttemptTimeout: 10 * time.Second, ReconnectMax: 50 * time.Millisecond})
	t.Cleanup(transport.Close)
	env := Envelope{Shard: 1, Sequence: 1, EventID: "1-1", Type: "INV_CREATED",
		Body: []byte(`{"event_id":"1-1","event_type":"INV_CREATED","shard":1,"sequence":1}`)}

	refused := mqttSub("refused", broker.url("tcp"), "events/refused", "ALL")
	refused.MQTT.Username, refused.MQTT.Password = "relay", wrongPassword
	anonymous := mqttSub("anonymous", broker.url("tcp"), "events/anonymous", "ALL")
	for _, sub := range []Subscription{refused, anonymous} {
		start := time.Now()
		err := transport.Attempt(context.Background(), sub, env)
		elapsed := time.Since(start)
		if err == nil {
			t.Fatalf("%s: delivered with refused credentials", sub.Name)
		}
		if !strings.Contains(err.Error(), "return code 5") || strings.Contains(err.Error(), wrongPassword) {
			t.Fatalf("%s: error %q, want the return code and not the password", sub.Name, err)
		}
		if elapsed > 5*time.Second {
			t.Fatalf("%s: refusal took %s", sub.Name, elapsed)
		}
	}

	accepted := mqttSub("accepted", broker.url("tcp"), "events/accepted", "ALL")
	accepted.MQTT.Username, accepted.MQTT.Password = "relay", password
	if err := transport.Attempt(context.Background(), accepted, env); err != nil {
		t.Fatalf("right credentials: %v", err)
	}

	w := newWorld()
	refused.Name, accepted.Name = "refused-engine", "accepted-engine"
	w.subs.set(refused, accepted)
	cfg := w.config(led(1), 0)
	cfg.Retry = RetryPolicy{AttemptMaxCount: 3, BackoffBase: time.Millisecond, BackoffMax: time.Millisecond}
	cfg.Transports = map[Kind]Transport{KindMQTT: transport}
	h := startEngine(t, cfg, false)
	w.source.emit(1, "INV_CREATED", "PAYMENT_SENT")
	waitCursor(t, w, 1, "refused-engine", 2)
	waitCursor(t, w, 1, "accepted-engine", 2)
	letters := w.dead.list()
	if len(letters) != 2 || !strings.Contains(letters[0].reason, "return code 5") || strings.Contains(letters[0].reason, wrongPassword) {
		t.Fatalf("dead letters %+v, want both events of the refused subscriber with the return code", letters)
	}
	if retried := h.metric(t, "gigaledger_relay_retried_total", map[string]string{"subscriber": "refused-engine"}); retried != 4 {
		t.Fatalf("retried %v, want 2 per event", retried)
	}
	testutil.EventuallyWithin(t, mqttWait, "the accepted subscriber's events", func() bool {
		return len(firstSeen(subscriber.got(), 1, "events/accepted")) == 2
	})
}

// The broker is killed while events keep committing and comes back on the same port: the
// transport reconnects and every event arrives at least once, in order of first arrival.
func TestMQTTReconnectsAfterTheBrokerRestartsAndLosesNoEvent(t *testing.T) {
	broker := startMosquitto(t, mosquittoOptions{persistent: true})
	subscriber := subscribeMQTT(t, broker.url("tcp"), "gigaledger/events", subscriberOptions{persistent: true})
	transport := NewMQTT(MQTTTransportOptions{AttemptTimeout: 2 * time.Second, ReconnectMax: time.Second})
	t.Cleanup(transport.Close)

	w := newWorld()
	w.subs.set(mqttSub("restart", broker.url("tcp"), "gigaledger/events", "ALL"))
	cfg := w.config(led(1), 0)
	cfg.Transports = map[Kind]Transport{KindMQTT: transport}
	// Real waits: the retries must outlast the outage (100 attempts of up to 2 s each).
	cfg.Retry = RetryPolicy{AttemptMaxCount: 100, BackoffBase: 50 * time.Millisecond, BackoffMax: 500 * time.Millisecond}
	cfg.Sleep = sleep
	h := startEngine(t, cfg, false)

	const wave = 20
	emitWave := func() {
		for i := range wave {
			w.source.emit(1, []string{"INV_CREATED", "PAYMENT_RECEIVED"}[i%2])
		}
	}
	emitWave()
	testutil.EventuallyWithin(t, mqttWait, "the first wave", func() bool {
		return len(firstSeen(subscriber.got(), 1, "")) == wave
	})

	broker.kill()
	emitWave()
	retried := map[string]string{"subscriber": "restart"}
	testutil.EventuallyWithin(t, mqttWait, "an attempt to fail while the broker is down", func() bool {
		return h.metric(t, "gigaledger_relay_retried_total", retried) >= 1
	})
	broker.start()
	emitWave()

	testutil.EventuallyWithin(t, mqttWait, "every event after the restart", func() bool {
		return len(firstSeen(subscriber.got(), 1, "")) == 3*wave
	})
	waitCursor(t, w, 1, "restart", 3*wave)
	if got := firstSeen(subscriber.got(), 1, ""); !slices.Equal(got, sequencesUpTo(3*wave)) {
		t.Fatalf("first arrivals %v, want 1..%d in order", got, 3*wave)
	}
	if letters := w.dead.list(); len(letters) != 0 {
		t.Fatalf("dead letters %v", letters)
	}
	if n := transport.connectionCount(); n != 1 {
		t.Fatalf("%d connections, want the one reconnected", n)
	}
}

// ssl:// verifies the broker against the CA file; without it (the system's roots) the attempt
// fails, and InsecureSkipVerify is only what it says.
func TestMQTTOverTLSVerifiesTheBrokerWithTheCAFile(t *testing.T) {
	files := writeTestCertificates(t)
	broker := startMosquitto(t, mosquittoOptions{tls: &files})
	roots := x509.NewCertPool()
	caPEM, err := os.ReadFile(files.caFile)
	if err != nil || !roots.AppendCertsFromPEM(caPEM) {
		t.Fatalf("CA: %v", err)
	}
	subscriber := subscribeMQTT(t, broker.url("ssl"), "secure/#",
		subscriberOptions{tls: &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}})
	transport := NewMQTT(MQTTTransportOptions{AttemptTimeout: 10 * time.Second})
	t.Cleanup(transport.Close)
	env := Envelope{Shard: 3, Sequence: 9, EventID: "3-9", Type: "PAYMENT_SENT",
		Body: []byte(`{"event_id":"3-9","event_type":"PAYMENT_SENT","shard":3,"sequence":9}`)}

	unverified := mqttSub("unverified", broker.url("ssl"), "secure/unverified", "ALL")
	if err := transport.Attempt(context.Background(), unverified, env); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("a broker with an unknown CA: %v, want a certificate error", err)
	}
	verified := mqttSub("verified", broker.url("ssl"), "secure/verified", "ALL")
	verified.MQTT.CAFile = files.caFile
	skipping := mqttSub("skipping", broker.url("tls"), "secure/skipping", "ALL")
	skipping.MQTT.InsecureSkipVerify = true
	for _, sub := range []Subscription{verified, skipping} {
		if err := sub.Validate(nil); err != nil {
			t.Fatal(err)
		}
		if err := transport.Attempt(context.Background(), sub, env); err != nil {
			t.Fatalf("%s: %v", sub.Name, err)
		}
	}
	testutil.EventuallyWithin(t, mqttWait, "both TLS deliveries", func() bool {
		return len(subscriber.got()) == 2
	})
}

// writeTestCertificates makes a CA and a certificate for 127.0.0.1 signed by it.
func writeTestCertificates(t *testing.T) mosquittoTLS {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTemplate := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "relay test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	serverKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serverTemplate := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	serverDER, err := x509.CreateCertificate(rand.Reader, serverTemplate, caCert, &serverKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(serverKey)
	if err != nil {
		t.Fatal(err)
	}
	files := mosquittoTLS{caFile: filepath.Join(dir, "ca.pem"), certFile: filepath.Join(dir, "server.pem"), keyFile: filepath.Join(dir, "server.key")}
	for path, block := range map[string]*pem.Block{
		files.caFile:   {Type: "CERTIFICATE", Bytes: caDER},
		files.certFile: {Type: "CERTIFICATE", Bytes: serverDER},
		files.keyFile:  {Type: "PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return files
}

// Close disconnects, and an attempt after it fails at once.
func TestMQTTAttemptAfterCloseFails(t *testing.T) {
	transport := NewMQTT(MQTTTransportOptions{})
	transport.Close()
	err := transport.Attempt(context.Background(), mqttSub("s", "tcp://127.0.0.1:1", "t", "ALL"), Envelope{Type: "INV_CREATED"})
	if err == nil || !strings.Contains(err.Error(), ErrMQTTClosed.Error()) {
		t.Fatalf("attempt after Close: %v", err)
	}
}

// Connections are shared by equal settings, bounded in number, and closed once idle; no broker
// is needed, as a connection connects only in an attempt.
func TestMQTTConnectionsAreSharedBoundedAndClosedWhenIdle(t *testing.T) {
	transport := NewMQTT(MQTTTransportOptions{})
	t.Cleanup(transport.Close)
	queue := func(user, topic string) Subscription {
		sub := mqttSub("q", "tcp://127.0.0.1:1", topic, "ALL")
		sub.MQTT.Username = user
		return sub
	}
	first, err := transport.connection(queue("a", "one"))
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := transport.connection(queue("a", "two")); again != first {
		t.Fatal("two topics with equal connection settings did not share the connection")
	}
	for i := range MQTTConnectionMaxCount + 5 {
		if _, err := transport.connection(queue(fmt.Sprintf("user-%d", i), "one")); err != nil {
			t.Fatal(err)
		}
	}
	if n := transport.connectionCount(); n != MQTTConnectionMaxCount {
		t.Fatalf("%d connections, want the bound %d", n, MQTTConnectionMaxCount)
	}
	// Every connection but the last idle for longer than the limit: the next attempt closes them.
	transport.mu.Lock()
	for _, conn := range transport.connections {
		conn.touch(time.Now().Add(-MQTTConnectionIdleMax - time.Minute))
	}
	transport.swept = time.Time{}
	transport.mu.Unlock()
	if _, err := transport.connection(queue("fresh", "one")); err != nil {
		t.Fatal(err)
	}
	if n := transport.connectionCount(); n != 1 {
		t.Fatalf("%d connections after the idle ones closed, want 1", n)
	}
}

// losses is how many times the transport's connections were lost (tests).
func (t *MQTTTransport) losses() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	var total uint64
	for _, conn := range t.connections {
		total += conn.lossCount()
	}
	return total
}

// Two nodes deliver with the same configured client ID at once (each leads a shard), each
// with its own suffix, so the broker keeps both connections. Then the leader of shard 1 stops
// after its last acks failed: the new leader redelivers from the replicated cursor, and the
// subscriber gets every event at least once, each duplicate with its event ID, in order of
// first arrival.
func TestMQTTSubscriberGetsEveryEventAcrossALeaderChange(t *testing.T) {
	broker := startMosquitto(t, mosquittoOptions{})
	subscriber := subscribeMQTT(t, broker.url("tcp"), "gigaledger/events", subscriberOptions{})
	w := newWorld()
	queue := mqttSub("queue", broker.url("tcp"), "gigaledger/events", "ALL")
	queue.MQTT.ClientID = "gigaledger"
	w.subs.set(queue)
	node1 := NewMQTT(MQTTTransportOptions{ClientIDSuffix: "n1"})
	node2 := NewMQTT(MQTTTransportOptions{ClientIDSuffix: "n2"})
	t.Cleanup(node1.Close)
	t.Cleanup(node2.Close)

	const wave = 30
	const ackedByOldLeader = 10
	cfg1 := w.config(led(1), ackedByOldLeader) // its acks past 10 fail: it lost its quorum
	cfg1.Transports = map[Kind]Transport{KindMQTT: node1}
	lead2 := led(2)
	cfg2 := w.config(lead2, 0)
	cfg2.Transports = map[Kind]Transport{KindMQTT: node2}
	old := startEngine(t, cfg1, false)
	startEngine(t, cfg2, false)

	for range wave {
		w.source.emit(1, "PAYMENT_RECEIVED")
		w.source.emit(2, "INV_CREATED")
	}
	testutil.EventuallyWithin(t, mqttWait, "the first wave of both shards", func() bool {
		got := subscriber.got()
		return len(firstSeen(got, 1, "")) == wave && len(firstSeen(got, 2, "")) == wave
	})
	if node1.losses() != 0 || node2.losses() != 0 {
		t.Fatalf("connections lost: node 1 %d, node 2 %d (one client ID for two nodes?)", node1.losses(), node2.losses())
	}
	old.stop()
	cursor := w.cursors.get(1, "queue")
	if cursor > ackedByOldLeader {
		t.Fatalf("cursor %d past the old leader's last applied ack", cursor)
	}
	for range wave {
		w.source.emit(1, "PAYMENT_RECEIVED")
	}
	lead2.set(1, 2)
	testutil.EventuallyWithin(t, mqttWait, "every event of shard 1 from the new leader", func() bool {
		return len(firstSeen(subscriber.got(), 1, "")) == 2*wave
	})
	waitCursor(t, w, 1, "queue", 2*wave)
	got := subscriber.got()
	if first := firstSeen(got, 1, ""); !slices.Equal(first, sequencesUpTo(2*wave)) {
		t.Fatalf("first arrivals of shard 1 %v", first)
	}
	copies := map[string]int{}
	for _, m := range got {
		if m.eventID != fmt.Sprintf("%d-%d", m.shard, m.sequence) {
			t.Fatalf("event ID %q for shard %d sequence %d", m.eventID, m.shard, m.sequence)
		}
		copies[m.eventID]++
	}
	// Acked before the change: once. Delivered but not acked: again from the new leader.
	for sequence := uint64(1); sequence <= 2*wave; sequence++ {
		want := 1
		if sequence > cursor && sequence <= wave {
			want = 2
		}
		if n := copies[fmt.Sprintf("1-%d", sequence)]; n != want {
			t.Fatalf("event 1-%d arrived %d times, want %d (cursor %d at the change)", sequence, n, want, cursor)
		}
	}
	t.Logf("%d messages for %d events", len(got), 3*wave)
}

// The broker comes back with the relay's password changed: paho's reconnects are refused, and
// each attempt fails within its timeout naming the refusal (not a silent stall); with the
// password back, the same connection delivers again.
func TestMQTTRefusedReconnectIsVisibleInTheAttemptError(t *testing.T) {
	const password = "first-password"
	broker := startMosquitto(t, mosquittoOptions{users: map[string]string{"relay": password}})
	transport := NewMQTT(MQTTTransportOptions{AttemptTimeout: 3 * time.Second, ReconnectMax: 500 * time.Millisecond})
	t.Cleanup(transport.Close)
	sub := mqttSub("queue", broker.url("tcp"), "events/q", "ALL")
	sub.MQTT.Username, sub.MQTT.Password = "relay", password
	env := Envelope{Shard: 1, Sequence: 1, EventID: "1-1", Type: "INV_CREATED", Body: []byte(`{"event_id":"1-1"}`)}
	if err := transport.Attempt(context.Background(), sub, env); err != nil {
		t.Fatal(err)
	}

	broker.kill()
	broker.passwordFile(map[string]string{"relay": "second-password"})
	broker.start()
	var last error
	testutil.EventuallyWithin(t, mqttWait, "an attempt to name the refused reconnect", func() bool {
		start := time.Now()
		last = transport.Attempt(context.Background(), sub, env)
		if elapsed := time.Since(start); elapsed > 5*time.Second {
			t.Fatalf("attempt took %s", elapsed)
		}
		return last != nil && strings.Contains(last.Error(), "not Authorized")
	})
	t.Logf("attempt error: %v", last)
	if strings.Contains(last.Error(), password) {
		t.Fatalf("error %q names the password", last)
	}

	broker.kill()
	broker.passwordFile(map[string]string{"relay": password})
	broker.start()
	testutil.EventuallyWithin(t, mqttWait, "delivery once the password is right again", func() bool {
		return transport.Attempt(context.Background(), sub, env) == nil
	})
	if n := transport.connectionCount(); n != 1 {
		t.Fatalf("%d connections, want the one that reconnected", n)
	}
}

func TestReconnectBackoffDoublesUpToTheCeiling(t *testing.T) {
	var got []time.Duration
	for n := 1; n <= 9; n++ {
		got = append(got, reconnectBackoff(n, 30*time.Second))
	}
	want := []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second,
		8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second}
	if !slices.Equal(got, want) {
		t.Fatalf("backoff %v, want %v", got, want)
	}
	if d := reconnectBackoff(1_000_000, time.Second); d != time.Second {
		t.Fatalf("after a million failures %s", d)
	}
}
