package relay

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Webhook headers, GigaWallet's scheme (contract §6.4), so existing receivers verify
// unchanged: X-Giga-Signature is "sha256=" + hex(HMAC-SHA256(secret, timestamp + "." + body)).
const (
	HeaderTimestamp = "X-Giga-Timestamp"
	HeaderSignature = "X-Giga-Signature"
	// HeaderEventID repeats the envelope's event_id, so a receiver can dedupe without parsing.
	HeaderEventID = "X-Giga-Event-Id"
)

// Webhook limits.
const (
	// WebhookAttemptTimeoutDefault bounds one attempt: connect, send, and the response headers.
	WebhookAttemptTimeoutDefault = 10 * time.Second
	// responseDrainMaxBytes bounds how much of a response body is read (and discarded) so the
	// connection can be reused; a larger body closes the connection instead.
	responseDrainMaxBytes = 64 << 10
	// idleConnsPerHostMax is how many idle connections the default transport keeps per
	// receiver host: every shard a node leads delivers to a receiver at once, one request at a
	// time, so each keeps its connection between events (the standard transport keeps 2 per
	// host and would close and reopen the others for every few events). 256 is the most shards
	// a cluster has (keyspace.ShardCountMax).
	idleConnsPerHostMax = 256
	// idleConnsMax bounds the idle connections over every receiver host.
	idleConnsMax = 1024
)

// Webhook posts events to a subscriber's URL. It implements Transport; the zero value is not
// usable, use NewWebhook.
type Webhook struct {
	client         *http.Client
	attemptTimeout time.Duration
	now            func() time.Time
}

// WebhookOptions configure NewWebhook; zero fields take the defaults.
type WebhookOptions struct {
	// AttemptTimeout bounds one attempt (default WebhookAttemptTimeoutDefault).
	AttemptTimeout time.Duration
	// Now is the clock of the timestamp header (default time.Now).
	Now func() time.Time
	// Transport is the HTTP round tripper (default: a clone of http.DefaultTransport keeping
	// up to idleConnsPerHostMax idle connections per host).
	Transport http.RoundTripper
}

// NewWebhook returns a webhook transport. It never follows redirects: a 3xx is a failed
// attempt, so a receiver cannot point the node at an address the configuration refused.
func NewWebhook(opts WebhookOptions) *Webhook {
	w := &Webhook{attemptTimeout: opts.AttemptTimeout, now: opts.Now}
	if w.attemptTimeout <= 0 {
		w.attemptTimeout = WebhookAttemptTimeoutDefault
	}
	if w.now == nil {
		w.now = time.Now
	}
	transport := opts.Transport
	if transport == nil {
		standard := http.DefaultTransport.(*http.Transport).Clone()
		standard.MaxIdleConnsPerHost, standard.MaxIdleConns = idleConnsPerHostMax, idleConnsMax
		// The default transport's dialer settings, with the receiver address check.
		dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: WebhookDialControl}
		standard.DialContext = dialer.DialContext
		transport = standard
	}
	w.client = &http.Client{
		Transport:     transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return w
}

// StatusError is a delivery attempt answered with a status other than 2xx.
type StatusError struct{ StatusCode int }

func (e *StatusError) Error() string { return fmt.Sprintf("receiver answered %d", e.StatusCode) }

// Sign returns the X-Giga-Signature value of body at timestamp (Unix seconds, as sent in
// X-Giga-Timestamp).
func Sign(secret string, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(timestamp))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify checks a webhook request's signature headers against secret, as a receiver does.
func Verify(secret string, header http.Header, body []byte) error {
	timestamp := header.Get(HeaderTimestamp)
	if timestamp == "" {
		return errors.New("no " + HeaderTimestamp)
	}
	if !hmac.Equal([]byte(header.Get(HeaderSignature)), []byte(Sign(secret, timestamp, body))) {
		return errors.New("signature mismatch")
	}
	return nil
}

// Attempt implements Transport: one POST of env.Body to sub.URL, in a request of its own (a
// request body is consumed by sending it, so a retry that reused one would send nothing, as
// GigaWallet's did). Any 2xx is delivery.
func (w *Webhook) Attempt(ctx context.Context, sub Subscription, env Envelope) error {
	ctx, cancel := context.WithTimeout(ctx, w.attemptTimeout)
	defer cancel()
	request, err := http.NewRequestWithContext(ctx, http.MethodPost, sub.URL, bytes.NewReader(env.Body))
	if err != nil {
		return fmt.Errorf("webhook request: %w", err)
	}
	request.Header.Set("Content-Type", "application/json")
	request.Header.Set("User-Agent", "GigaLedger-relay")
	request.Header.Set(HeaderEventID, env.EventID)
	if sub.Secret != "" {
		timestamp := strconv.FormatInt(w.now().Unix(), 10)
		request.Header.Set(HeaderTimestamp, timestamp)
		request.Header.Set(HeaderSignature, Sign(sub.Secret, timestamp, env.Body))
	}
	response, err := w.client.Do(request)
	if err != nil {
		// The URL may carry a receiver's token in its query: keep it out of logs and reasons.
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			err = urlErr.Err
		}
		return fmt.Errorf("webhook post: %w", err)
	}
	// Drain a bounded amount so the connection can be reused, and always close.
	_, _ = io.Copy(io.Discard, io.LimitReader(response.Body, responseDrainMaxBytes))
	_ = response.Body.Close()
	if response.StatusCode < 200 || response.StatusCode > 299 {
		return &StatusError{StatusCode: response.StatusCode}
	}
	return nil
}

// CloseIdleConnections closes the transport's idle connections (on shutdown).
func (w *Webhook) CloseIdleConnections() { w.client.CloseIdleConnections() }
