package relay

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// MQTTOptions are an MQTT subscriber's settings besides its broker (Subscription.URL): the
// topic it publishes to and how it authenticates. GigaWallet's `[mqtt] username, password,
// clientid` and a queue's `topicfilter` map onto them; its `address` is the URL.
//
// Every field is comparable: a change of any of them restarts the subscriber's deliveries,
// and subscriptions whose connection fields (all but Topic) are equal share one connection.
type MQTTOptions struct {
	// Topic is where each event is published; "{type}" in it is replaced by the event's type,
	// e.g. "gigaledger/events/{type}". No wildcards ('+', '#'): a publish names one topic.
	Topic string
	// Username and Password authenticate to the broker (both empty: anonymous). The password
	// is never logged nor put in an error.
	Username string
	Password string
	// ClientID identifies the connection to the broker; empty: "gigaledger-" and random hex.
	// A broker drops the older of two connections with one ID, so the transport appends its
	// MQTTTransportOptions.ClientIDSuffix (the node's ID) to keep the nodes apart.
	ClientID string
	// CAFile is a PEM file of the certificate authorities that verify the broker (ssl://, tls://
	// and mqtts:// only); empty: the system's roots.
	CAFile string
	// InsecureSkipVerify accepts any broker certificate. Only for a test broker: it must be
	// asked for explicitly, and only with a TLS scheme.
	InsecureSkipVerify bool
}

// Limits of an MQTT subscription.
const (
	// MQTTTopicMaxBytes bounds a topic (MQTT allows 65535; nobody needs that).
	MQTTTopicMaxBytes = 1024
	// MQTTUsernameMaxBytes bounds a username.
	MQTTUsernameMaxBytes = 256
	// MQTTClientIDMaxBytes bounds a configured client ID (suffix not included).
	MQTTClientIDMaxBytes = 128
	// MQTTCAFileMaxBytes bounds the path of the CA file, and caFileContentMaxBytes its content.
	MQTTCAFileMaxBytes    = 4096
	caFileContentMaxBytes = 1 << 20
	// MQTTTopicTypePlaceholder in a topic is replaced by the event type.
	MQTTTopicTypePlaceholder = "{type}"
)

// mqttSchemes are the broker URL schemes paho dials, and whether each uses TLS.
var mqttSchemes = map[string]bool{"tcp": false, "mqtt": false, "ssl": true, "tls": true, "mqtts": true}

// ValidateBrokerURL checks an MQTT broker address at configuration time: scheme tcp or mqtt
// (plain), ssl, tls or mqtts (TLS); host and port both given; no user information
// (credentials go in MQTTOptions), path, query or fragment; at most URLMaxLength bytes; and
// not one of the node's own listeners (see ValidateWebhookURL).
func ValidateBrokerURL(raw string, ownListeners []string) error {
	return validateBrokerURL(raw, ownListeners, true)
}

func validateBrokerURL(raw string, ownListeners []string, hostForm bool) error {
	if raw == "" {
		return errors.New("broker URL: empty")
	}
	if len(raw) > URLMaxLength {
		return fmt.Errorf("broker URL: %d bytes, at most %d", len(raw), URLMaxLength)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("broker URL: %w", err)
	}
	if _, ok := mqttSchemes[u.Scheme]; !ok {
		return fmt.Errorf("broker URL: scheme %q, want tcp, mqtt, ssl, tls or mqtts (as in tcp://host:1883)", u.Scheme)
	}
	if u.User != nil {
		return errors.New("broker URL: user information is not allowed (use the username and password settings)")
	}
	if u.Hostname() == "" || u.Port() == "" {
		return fmt.Errorf("broker URL: want %s://host:port", u.Scheme)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return errors.New("broker URL: only scheme://host:port (no path, query or fragment)")
	}
	if err := checkHostForm(u.Hostname()); hostForm && err != nil {
		return fmt.Errorf("broker URL: %w", err)
	}
	for _, listener := range ownListeners {
		if sameListener(u.Hostname(), u.Port(), listener) {
			return fmt.Errorf("broker URL: %s is this node's own listener %s", u.Host, listener)
		}
	}
	return nil
}

// ValidateMQTTTopic checks a topic to publish to: 1..MQTTTopicMaxBytes of UTF-8 without NUL or
// control characters, no wildcard ('+', '#': a publish names one topic, GigaWallet published to
// the literal filter string), and not under '$' (the broker's own topics, $SYS).
func ValidateMQTTTopic(topic string) error {
	if topic == "" || len(topic) > MQTTTopicMaxBytes {
		return fmt.Errorf("MQTT topic must be 1..%d bytes", MQTTTopicMaxBytes)
	}
	if !utf8.ValidString(topic) {
		return errors.New("MQTT topic is not valid UTF-8")
	}
	for _, r := range topic {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return fmt.Errorf("MQTT topic %q: control character", topic)
		}
	}
	if strings.ContainsAny(topic, "+#") {
		return fmt.Errorf("MQTT topic %q: wildcards '+' and '#' only subscribe; name one topic", topic)
	}
	if strings.HasPrefix(topic, "$") {
		return fmt.Errorf("MQTT topic %q: topics starting with '$' belong to the broker", topic)
	}
	return nil
}

func (o *MQTTOptions) validate(brokerURL string) error {
	if err := ValidateMQTTTopic(o.Topic); err != nil {
		return err
	}
	if len(o.Username) > MQTTUsernameMaxBytes || !utf8.ValidString(o.Username) || strings.ContainsRune(o.Username, 0) {
		return fmt.Errorf("MQTT username must be at most %d bytes of UTF-8", MQTTUsernameMaxBytes)
	}
	if len(o.Password) > SecretMaxBytes {
		return fmt.Errorf("MQTT password longer than %d bytes", SecretMaxBytes)
	}
	if o.Password != "" && o.Username == "" {
		return errors.New("MQTT password without a username (MQTT 3.1.1 sends a password only with a username)")
	}
	if len(o.ClientID) > MQTTClientIDMaxBytes {
		return fmt.Errorf("MQTT client ID longer than %d bytes", MQTTClientIDMaxBytes)
	}
	for _, r := range o.ClientID {
		if r <= ' ' || r > '~' {
			return fmt.Errorf("MQTT client ID %q: printable ASCII without spaces only", o.ClientID)
		}
	}
	if len(o.CAFile) > MQTTCAFileMaxBytes {
		return fmt.Errorf("MQTT CA file path longer than %d bytes", MQTTCAFileMaxBytes)
	}
	if !brokerUsesTLS(brokerURL) && (o.CAFile != "" || o.InsecureSkipVerify) {
		return errors.New("MQTT TLS settings with a plain broker URL (use ssl://, tls:// or mqtts://)")
	}
	return nil
}

// brokerUsesTLS reports whether a broker URL's scheme (case-insensitive, as paho reads it)
// is a TLS one.
func brokerUsesTLS(brokerURL string) bool {
	u, err := url.Parse(brokerURL)
	return err == nil && mqttSchemes[u.Scheme]
}

// topicFor is the topic an event of eventType is published to.
func (o *MQTTOptions) topicFor(eventType string) string {
	return strings.ReplaceAll(o.Topic, MQTTTopicTypePlaceholder, eventType)
}

// MQTT transport defaults and limits.
const (
	// MQTTAttemptTimeoutDefault bounds one attempt: the connection (when it is not up) and the
	// PUBACK.
	MQTTAttemptTimeoutDefault = 10 * time.Second
	// MQTTConnectTimeoutDefault bounds one connect: dial, TLS and CONNACK.
	MQTTConnectTimeoutDefault = 10 * time.Second
	// MQTTReconnectMaxDefault caps the wait between failed connects (it starts at
	// mqttReconnectBase and doubles).
	MQTTReconnectMaxDefault = 30 * time.Second
	mqttReconnectBase       = 250 * time.Millisecond
	// MQTTConnectionMaxCount bounds the broker connections of one transport; a new one beyond
	// it closes the least recently used.
	MQTTConnectionMaxCount = 64
	// MQTTConnectionIdleMax is how long a connection no attempt used stays open (a subscription
	// whose password changed leaves its old connection behind).
	MQTTConnectionIdleMax = 10 * time.Minute
	// mqttSweepInterval is how often an attempt looks for idle connections to close.
	mqttSweepInterval = time.Minute
	// mqttDisconnectQuiesceMs is how long Close lets in-flight work finish.
	mqttDisconnectQuiesceMs = 250
)

// ErrMQTTClosed is returned by Attempt after Close.
var ErrMQTTClosed = errors.New("mqtt transport closed")

// MQTTTransportOptions configure NewMQTT; zero fields take the defaults.
type MQTTTransportOptions struct {
	AttemptTimeout time.Duration // default MQTTAttemptTimeoutDefault
	ConnectTimeout time.Duration // default MQTTConnectTimeoutDefault
	ReconnectMax   time.Duration // default MQTTReconnectMaxDefault
	// ClientIDSuffix is appended (after '-') to every client ID. Give each node its own (the
	// node ID): brokers allow one connection per client ID, and every node that leads a shard
	// connects with the subscription's ID.
	ClientIDSuffix string
}

// MQTTTransport publishes events to MQTT brokers at QoS 1 with Eclipse Paho. It implements
// Transport; the zero value is not usable, use NewMQTT.
//
// Subscriptions whose broker, credentials, client ID and TLS settings are equal share one
// connection (GigaWallet's queues of one [mqtt] section). A connection is opened by the first
// attempt that needs it and reopened by the first attempt after a loss, with a backoff between
// failed connects (from mqttReconnectBase doubling to ReconnectMax) that the attempts wait out
// within their timeout. An attempt publishes once at QoS 1 and waits for the PUBACK; anything
// else is an error and the engine retries.
//
// Reconnecting here rather than with paho's auto-reconnect is deliberate. After an automatic
// reconnect paho resends its stored in-flight publishes, even with a clean session, while new
// publishes may already go out: the resend rewrites a packet the sender is writing (a data race
// under -race) and can complete a new publish's token before its PUBACK. Without it, a lost
// connection fails every publish in flight at once (clean session, no auto-reconnect: paho
// completes their tokens with an error), the engine resends them, and nothing is stored.
//
// Threading: Attempt is called concurrently; Close once, after the last Attempt has returned
// or concurrently with them (they then fail).
type MQTTTransport struct {
	opts MQTTTransportOptions

	mu          sync.Mutex
	closed      bool
	connections map[mqttConnectionKey]*mqttConnection
	swept       time.Time // when idle connections were last looked for
}

// mqttConnectionKey is what identifies a shared connection: every MQTTOptions field but Topic.
type mqttConnectionKey struct {
	broker, username, password, clientID, caFile string
	insecureSkipVerify                           bool
}

// mqttConnection is the connection of one key, shared by its subscriptions: a paho client,
// replaced by a new one for each connect (paho's is not reusable right after a failed connect
// or a loss: it completes the tokens before its own cleanup).
type mqttConnection struct {
	options      *mqtt.ClientOptions // read only once made
	broker       string              // for errors, without any password
	user         string
	reconnectMax time.Duration

	mu         sync.Mutex
	client     mqtt.Client // the latest client; nil before the first connect
	connecting mqtt.Token  // the connect of client in flight; nil when none is
	closed     bool        // evicted or the transport closed: no connect any more
	lastUsed   time.Time
	failures   int       // connects failed in a row
	retryAt    time.Time // no connect before this, after a failure
	lastErr    error     // why the last connect failed or the connection was lost
	losses     uint64    // connections lost so far (tests)
}

// NewMQTT returns an MQTT transport with no connection open yet.
func NewMQTT(opts MQTTTransportOptions) *MQTTTransport {
	if opts.AttemptTimeout <= 0 {
		opts.AttemptTimeout = MQTTAttemptTimeoutDefault
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = MQTTConnectTimeoutDefault
	}
	if opts.ReconnectMax <= 0 {
		opts.ReconnectMax = MQTTReconnectMaxDefault
	}
	return &MQTTTransport{opts: opts, connections: map[mqttConnectionKey]*mqttConnection{}}
}

// Attempt implements Transport: one QoS 1 publish of env.Body to sub's topic, acknowledged by
// the broker (PUBACK) within the attempt timeout. The engine orders the attempts of one
// (shard, subscriber), so the events of a shard reach the topic in sequence order.
func (t *MQTTTransport) Attempt(ctx context.Context, sub Subscription, env Envelope) error {
	if sub.MQTT == nil {
		return fmt.Errorf("subscriber %q: no MQTT settings", sub.Name)
	}
	ctx, cancel := context.WithTimeout(ctx, t.opts.AttemptTimeout)
	defer cancel()
	conn, err := t.connection(sub)
	if err != nil {
		return err
	}
	client, err := conn.up(ctx)
	if err != nil {
		return err
	}
	topic := sub.MQTT.topicFor(env.Type)
	token := client.Publish(topic, 1, false, env.Body)
	select {
	case <-token.Done():
		// A loss completes the token with an error (clean session, no auto-reconnect).
		if err := token.Error(); err != nil {
			return fmt.Errorf("mqtt publish to %s on %s: %w", topic, conn.broker, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("mqtt publish to %s on %s: no PUBACK: %w", topic, conn.broker, ctx.Err())
	}
}

// connection returns the shared connection of sub's settings, creating it (not connected yet).
func (t *MQTTTransport) connection(sub Subscription) (*mqttConnection, error) {
	key := mqttConnectionKey{broker: sub.URL, username: sub.MQTT.Username, password: sub.MQTT.Password,
		clientID: sub.MQTT.ClientID, caFile: sub.MQTT.CAFile, insecureSkipVerify: sub.MQTT.InsecureSkipVerify}
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, ErrMQTTClosed
	}
	if now.Sub(t.swept) > mqttSweepInterval {
		t.swept = now
		t.closeIdle(now)
	}
	if conn, ok := t.connections[key]; ok {
		conn.touch(now)
		return conn, nil
	}
	if len(t.connections) >= MQTTConnectionMaxCount {
		t.closeLeastRecentlyUsed()
	}
	conn, err := t.newConnection(key)
	if err != nil {
		return nil, err
	}
	conn.touch(now)
	t.connections[key] = conn
	return conn, nil
}

// closeIdle closes the connections no attempt used for MQTTConnectionIdleMax (a subscription
// deleted, or changed to other credentials). Called with t.mu held.
func (t *MQTTTransport) closeIdle(now time.Time) {
	for k, conn := range t.connections {
		if now.Sub(conn.used()) > MQTTConnectionIdleMax {
			delete(t.connections, k)
			go conn.close()
		}
	}
}

// closeLeastRecentlyUsed makes room for a connection. Called with t.mu held.
func (t *MQTTTransport) closeLeastRecentlyUsed() {
	var oldestKey mqttConnectionKey
	var oldest *mqttConnection
	var oldestUsed time.Time
	for k, conn := range t.connections {
		if used := conn.used(); oldest == nil || used.Before(oldestUsed) {
			oldestKey, oldest, oldestUsed = k, conn, used
		}
	}
	if oldest != nil {
		delete(t.connections, oldestKey)
		go oldest.close()
	}
}

func (t *MQTTTransport) newConnection(key mqttConnectionKey) (*mqttConnection, error) {
	clientID := key.clientID
	if clientID == "" {
		random := make([]byte, 6)
		_, _ = rand.Read(random)
		clientID = "gigaledger-" + hex.EncodeToString(random)
	}
	if t.opts.ClientIDSuffix != "" {
		clientID += "-" + t.opts.ClientIDSuffix
	}
	broker := key.broker
	if u, err := url.Parse(key.broker); err == nil {
		broker = u.Redacted() // Validate refuses user information; an unvalidated URL may have some
	}
	conn := &mqttConnection{broker: broker, user: key.username, reconnectMax: t.opts.ReconnectMax}
	conn.options = mqtt.NewClientOptions().
		AddBroker(key.broker).
		SetClientID(clientID).
		SetUsername(key.username).
		SetPassword(key.password).
		SetProtocolVersion(4). // MQTT 3.1.1 only: no second CONNECT as 3.1 after a refusal
		SetCleanSession(true).
		SetAutoReconnect(false). // the attempts reconnect (see MQTTTransport)
		SetConnectRetry(false).
		SetConnectTimeout(t.opts.ConnectTimeout).
		SetWriteTimeout(t.opts.AttemptTimeout).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) { conn.lost(err) })
	if brokerUsesTLS(key.broker) {
		config, err := brokerTLS(key)
		if err != nil {
			return nil, err
		}
		conn.options.SetTLSConfig(config)
	}
	return conn, nil
}

// brokerTLS is the TLS configuration of a TLS broker URL.
func brokerTLS(key mqttConnectionKey) (*tls.Config, error) {
	u, err := url.Parse(key.broker)
	if err != nil {
		return nil, fmt.Errorf("broker URL: %w", err)
	}
	config := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: u.Hostname(), InsecureSkipVerify: key.insecureSkipVerify}
	if key.caFile != "" {
		pem, err := readBounded(key.caFile, caFileContentMaxBytes)
		if err != nil {
			return nil, fmt.Errorf("mqtt CA file: %w", err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mqtt CA file %s: no PEM certificate in it", key.caFile)
		}
		config.RootCAs = roots
	}
	return config, nil
}

func readBounded(path string, maxBytes int64) ([]byte, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if info.Size() > maxBytes {
		return nil, fmt.Errorf("%s: %d bytes, at most %d", path, info.Size(), maxBytes)
	}
	return os.ReadFile(path)
}

func (c *mqttConnection) touch(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastUsed = now
}

func (c *mqttConnection) used() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastUsed
}

// lost records a lost connection; the next attempt connects again.
func (c *mqttConnection) lost(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.losses++
	c.lastErr = fmt.Errorf("connection lost: %w", err)
}

// lossCount is how many times the connection was lost.
func (c *mqttConnection) lossCount() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.losses
}

// up returns a client whose connection is open, connecting one when none is (or joining the
// connect in flight), or an error when it cannot by ctx's end: the connect's error (a refused
// CONNACK names its return code), or, while the backoff after failed connects outlasts ctx,
// the last one.
func (c *mqttConnection) up(ctx context.Context) (mqtt.Client, error) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, ErrMQTTClosed
		}
		if c.client != nil && c.client.IsConnectionOpen() {
			client := c.client
			c.mu.Unlock()
			return client, nil
		}
		token := c.connecting
		if token == nil {
			if wait := time.Until(c.retryAt); wait > 0 {
				lastErr := c.lastErr
				c.mu.Unlock()
				if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
					return nil, fmt.Errorf("mqtt %s: down, next connect in %s; last: %w", c.broker, wait.Round(time.Millisecond), lastErr)
				}
				if err := sleep(ctx, wait); err != nil {
					return nil, fmt.Errorf("mqtt %s: down: %w; last: %w", c.broker, err, lastErr)
				}
				continue
			}
			c.client = mqtt.NewClient(c.options)
			c.connecting = c.client.Connect()
			token = c.connecting
		}
		c.mu.Unlock()
		select {
		case <-token.Done():
		case <-ctx.Done():
			return nil, fmt.Errorf("mqtt connect to %s: %w", c.broker, ctx.Err())
		}
		err := token.Error()
		if err != nil {
			err = c.connectError(token, err)
		}
		c.mu.Lock()
		if c.connecting == token {
			c.connecting = nil
			if err != nil {
				c.failures++
				c.retryAt = time.Now().Add(reconnectBackoff(c.failures, c.reconnectMax))
				c.lastErr = err
			} else {
				c.failures = 0
			}
		}
		c.mu.Unlock()
		if err != nil {
			return nil, err
		}
		// Connected: the next turn returns the client, unless it was closed or lost meanwhile.
	}
}

// reconnectBackoff is the wait after the n-th failed connect in a row (n ≥ 1).
func reconnectBackoff(n int, ceiling time.Duration) time.Duration {
	wait := mqttReconnectBase
	for i := 1; i < n && wait < ceiling; i++ {
		wait *= 2
	}
	return min(wait, ceiling)
}

// close disconnects the connection for good; an attempt holding it fails.
func (c *mqttConnection) close() {
	c.mu.Lock()
	c.closed = true
	client := c.client
	c.mu.Unlock()
	if client != nil {
		client.Disconnect(mqttDisconnectQuiesceMs) // after a connect in flight, paho waits for it
	}
}

// connectError describes a failed connect without the password: a broker's refusal names its
// CONNACK return code (4: bad user name or password, 5: not authorized).
func (c *mqttConnection) connectError(token mqtt.Token, err error) error {
	who := "anonymously"
	if c.user != "" {
		who = fmt.Sprintf("as %q", c.user)
	}
	if connect, ok := token.(*mqtt.ConnectToken); ok && connect.ReturnCode() != 0 {
		return fmt.Errorf("mqtt connect to %s %s: broker refused (return code %d): %w", c.broker, who, connect.ReturnCode(), err)
	}
	return fmt.Errorf("mqtt connect to %s %s: %w", c.broker, who, err)
}

// Close disconnects every connection, letting in-flight publishes finish for a moment; later
// attempts fail with ErrMQTTClosed.
func (t *MQTTTransport) Close() {
	t.mu.Lock()
	t.closed = true
	connections := t.connections
	t.connections = map[mqttConnectionKey]*mqttConnection{}
	t.mu.Unlock()
	var wg sync.WaitGroup
	for _, conn := range connections {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn.close()
		}()
	}
	wg.Wait()
}

// connectionCount is the number of connections open or opening (tests).
func (t *MQTTTransport) connectionCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.connections)
}
