package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Limits.
const (
	// responseBodyMaxBytes bounds one answer read whole: a page of 1000 transactions of 100
	// operations each fits.
	responseBodyMaxBytes = 32 << 20
	// retryAttemptsMax bounds RetryPolicy.MaxAttempts.
	retryAttemptsMax = 1000
	// defaultRequestTimeout bounds one attempt of the default *http.Client; a caller's context
	// bounds the whole call. Above the longest long poll (ListEvents waits up to 30 s).
	defaultRequestTimeout = 45 * time.Second
)

// RetryPolicy says how often and how patiently a call is repeated when the client's
// classification (see the package documentation) allows it. Every call also ends when its
// context does.
type RetryPolicy struct {
	// MaxAttempts counts the first attempt: 1 means no retries. 1..1000.
	MaxAttempts int
	// BackoffMin is the pause before the second attempt; it doubles per attempt up to
	// BackoffMax. Each pause is drawn from [half, all] of that value (jitter, so that clients
	// that failed together do not return together), then raised to the server's Retry-After
	// when that is longer, but never above BackoffMax.
	BackoffMin, BackoffMax time.Duration
}

// DefaultRetryPolicy is the policy of a client made without WithRetryPolicy: a few attempts
// within a few seconds, enough to ride out a leader election.
var DefaultRetryPolicy = RetryPolicy{MaxAttempts: 5, BackoffMin: 100 * time.Millisecond, BackoffMax: 2 * time.Second}

// NoRetries is the policy of a caller that counts and classifies every attempt itself.
var NoRetries = RetryPolicy{MaxAttempts: 1}

// Client calls one GigaLedger node's Cloud Wallet API. It is safe for concurrent use; calls to
// several nodes share one *http.Client (and its connections) through WithHTTPClient.
type Client struct {
	baseURL    string
	httpClient *http.Client
	token      string
	userAgent  string
	retry      RetryPolicy
	// leaderRouting sends writes to the leader the server names (WithLeaderRouting); leader
	// is that leader's base URL, nil while none is known.
	leaderRouting bool
	leader        atomic.Pointer[string]
}

// Option configures a Client.
type Option func(*Client)

// WithToken sends Authorization: Bearer token on every request.
func WithToken(token string) Option { return func(c *Client) { c.token = token } }

// WithHTTPClient sends requests through httpClient (TLS settings, proxies, connection limits,
// a per-attempt timeout). The default has a 30 s timeout per attempt.
func WithHTTPClient(httpClient *http.Client) Option {
	return func(c *Client) { c.httpClient = httpClient }
}

// WithUserAgent sets the User-Agent header.
func WithUserAgent(userAgent string) Option { return func(c *Client) { c.userAgent = userAgent } }

// WithRetryPolicy replaces DefaultRetryPolicy.
func WithRetryPolicy(policy RetryPolicy) Option { return func(c *Client) { c.retry = policy } }

// WithLeaderRouting sends writes to the leader of the cluster's one shard once a response has
// named it (header GigaLedger-Shard-Leader, with GigaLedger-Shard-Count: 1), instead of to the
// configured node, which would forward them: the follower's HTTP, JSON and forwarding work is
// saved. Reads still go to the configured node. The leader's URL must use the base URL's
// scheme; the bearer token goes to it too (every node of a cluster takes the same token).
//
// When the leader cannot be reached or answers that it cannot serve (503), the client forgets
// it and the call's next attempt goes to the configured node; the retry policy and its
// classification stay as they are, so a write whose outcome is unknown is resent (to any
// node) only under its Idempotency-Key or referenceId, which the whole cluster honours. On a
// cluster of several shards the client cannot tell a request's shard before sending it, so it
// follows no hint there and sends everything to the configured node.
//
// It is opt-in: without it the client talks to the one node it was given, and sends the token
// nowhere else.
func WithLeaderRouting() Option { return func(c *Client) { c.leaderRouting = true } }

// New returns a client of the node at baseURL (scheme, host and optional path prefix, such as
// "http://127.0.0.1:8081").
func New(baseURL string, opts ...Option) (*Client, error) {
	parsed, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("gigaledger client: base URL: %w", err)
	}
	if (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Host == "" || parsed.RawQuery != "" || parsed.Fragment != "" {
		return nil, fmt.Errorf("gigaledger client: base URL %q is not http(s)://host[:port][/prefix]", baseURL)
	}
	c := &Client{baseURL: strings.TrimRight(baseURL, "/"), retry: DefaultRetryPolicy}
	for _, opt := range opts {
		opt(c)
	}
	if c.httpClient == nil {
		c.httpClient = &http.Client{Timeout: defaultRequestTimeout}
	}
	if p := c.retry; p.MaxAttempts < 1 || p.MaxAttempts > retryAttemptsMax || p.BackoffMin < 0 || p.BackoffMax < p.BackoffMin {
		return nil, fmt.Errorf("gigaledger client: retry policy %+v: want 1 ≤ MaxAttempts ≤ %d and 0 ≤ BackoffMin ≤ BackoffMax", p, retryAttemptsMax)
	}
	return c, nil
}

// BaseURL returns the node's URL the client calls.
func (c *Client) BaseURL() string { return c.baseURL }

// Leader returns the base URL of the leader writes go to under WithLeaderRouting, "" while none
// is known (or without it).
func (c *Client) Leader() string {
	if leader := c.leader.Load(); leader != nil {
		return *leader
	}
	return ""
}

// The headers that name the shard that served a write and its leader (docs/cloudwallet-api.md,
// "Finding the leader").
const (
	headerShardCount  = "GigaLedger-Shard-Count"
	headerShardLeader = "GigaLedger-Shard-Leader"
	// leaderURLMaxBytes bounds a leader URL the client believes.
	leaderURLMaxBytes = 255
)

// target is the base URL an attempt of r goes to: the known leader for a write under
// WithLeaderRouting, else the configured node.
func (c *Client) target(r *request) string {
	if c.leaderRouting && r.method != http.MethodGet {
		if leader := c.leader.Load(); leader != nil {
			return *leader
		}
	}
	return c.baseURL
}

// learnLeader follows an attempt sent to base: a leader named by an answer of a one-shard
// cluster becomes the target of writes; a leader that could not be reached or could not serve
// is forgotten, so that the next attempt goes to the configured node.
func (c *Client) learnLeader(base string, got *answer, err error) {
	if !c.leaderRouting {
		return
	}
	if got != nil && got.header.Get(headerShardCount) == "1" {
		if leader, ok := c.leaderURL(got.header.Get(headerShardLeader)); ok {
			if current := c.leader.Load(); current == nil || *current != leader {
				c.leader.Store(&leader)
			}
			return
		}
	}
	if err != nil && base != c.baseURL && (errors.Is(err, ErrUnavailable) || errors.Is(err, ErrOutcomeUnknown)) {
		if current := c.leader.Load(); current != nil && *current == base {
			c.leader.CompareAndSwap(current, nil)
		}
	}
}

// leaderURL checks a leader URL from a header: http(s)://host[:port][/prefix] in the base
// URL's scheme (never from https down to http).
func (c *Client) leaderURL(value string) (string, bool) {
	if value == "" || len(value) > leaderURLMaxBytes {
		return "", false
	}
	parsed, err := url.Parse(value)
	if err != nil || parsed.Host == "" || parsed.RawQuery != "" || parsed.Fragment != "" || parsed.User != nil ||
		!strings.HasPrefix(c.baseURL, parsed.Scheme+"://") {
		return "", false
	}
	return strings.TrimRight(value, "/"), true
}

// Attempt is one HTTP exchange of a call, as reported to an attempt hook.
type Attempt struct {
	// Number is 1 for the first attempt of a call.
	Number int
	// StatusCode is the answer's status; 0 when no answer came.
	StatusCode int
	// Code is the error envelope's code; "" on success.
	Code string
	// Replayed is set when the server answered from the stored outcome of an earlier attempt
	// with the same Idempotency-Key (header Idempotent-Replayed: true): this attempt changed
	// nothing.
	Replayed bool
	// Err is the transport error (a *TransportError) when no whole answer was read.
	Err error
	// BaseURL is the node the attempt went to: the client's, or the leader's under
	// WithLeaderRouting.
	BaseURL string
	// ShardLeader is the answer's GigaLedger-Shard-Leader header: the base URL of the leader
	// of the shard that served the write, when the node knew it.
	ShardLeader string
}

type attemptHookKey struct{}

// WithAttemptHook returns a context under which every call reports each of its attempts to
// hook, in order, on the calling goroutine, before the call returns. A caller that classifies
// answers itself (a checker that records the wire status of every attempt) uses it; the
// call's own result stays the one to act on.
func WithAttemptHook(ctx context.Context, hook func(Attempt)) context.Context {
	return context.WithValue(ctx, attemptHookKey{}, hook)
}

type idempotencyKeyKey struct{}

// WithIdempotencyKey returns a context under which a write call sends key as its
// Idempotency-Key on every attempt, instead of a fresh key per call: a caller that keeps the
// key (beside the work it stands for) can resend the same request after a restart and have it
// apply once. Use one key per distinct request: the same key with another request is 409
// IdempotencyKeyMismatch (GigaWallet's 409 already-exists). Calls that carry no key
// (CreateTransaction, whose referenceId is its key; the GigaWallet account upsert, void and
// setsyncheight) ignore it. The GigaWallet payouts and invoice creation send a key only under
// this context (GigaWallet itself has none), and are then resent after an unknown outcome.
func WithIdempotencyKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, idempotencyKeyKey{}, key)
}

// request is one logical call.
type request struct {
	method string
	// path is escaped and carries the query.
	path string
	// body is sent as JSON; every write has one ("{}" when it says nothing), see send.
	body []byte
	// idempotencyKey is the same on every attempt of the call: it is what makes resending a
	// write whose outcome is unknown safe.
	idempotencyKey string
	// notIdempotent marks a write that would apply again if resent and has no key that stops
	// it (a GigaWallet invoice create): it is resent only when certainly not applied.
	notIdempotent bool
}

// answer is one HTTP answer, read whole.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// emptyBody is the body of a write that says nothing.
var emptyBody = []byte("{}")

// newRequest builds a call; a write gets a fresh idempotency key.
func newRequest(method, path string, body []byte) *request {
	r := &request{method: method, path: path, body: body}
	if method != http.MethodGet {
		if r.body == nil {
			r.body = emptyBody
		}
		r.idempotencyKey = newIdempotencyKey()
	}
	return r
}

// newIdempotencyKey returns 128 random bits in hex.
func newIdempotencyKey() string {
	var key [16]byte
	_, _ = rand.Read(key[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(key[:])
}

// run sends r until an answer is final under the retry policy. It returns the last answer
// (success or *Error) or a *TransportError. When an attempt's outcome was unknown and no
// later answer settled it (a later attempt was refused as not applied, or the attempts or the
// context ran out), the error is that unknown attempt's: the call as a whole may have applied.
func (c *Client) run(ctx context.Context, r *request) (*answer, error) {
	hook, _ := ctx.Value(attemptHookKey{}).(func(Attempt))
	if key, _ := ctx.Value(idempotencyKeyKey{}).(string); key != "" && r.idempotencyKey != "" {
		r.idempotencyKey = key
	}
	var unknown error
	for attempt := 1; ; attempt++ {
		base := c.target(r)
		got, err := c.send(ctx, base, r)
		if err == nil && got.status >= 300 {
			err = got.apiError()
		}
		c.learnLeader(base, got, err)
		if hook != nil {
			a := attemptOf(attempt, got, err)
			a.BaseURL = base
			hook(a)
		}
		if err == nil {
			return got, nil
		}
		notApplied := errors.Is(err, ErrUnavailable) || errors.Is(err, ErrOverloaded)
		outcomeUnknown := errors.Is(err, ErrOutcomeUnknown)
		if outcomeUnknown {
			unknown = err
		}
		// A call may be resent after an unknown outcome: a read changes nothing, and a write
		// carries the same Idempotency-Key on every attempt or is idempotent by itself. Only a
		// write marked notIdempotent is not.
		retry := notApplied || (outcomeUnknown && !r.notIdempotent)
		if !retry || attempt >= c.retry.MaxAttempts || !c.pause(ctx, attempt, retryAfterOf(err)) {
			if notApplied && unknown != nil {
				return nil, unknown
			}
			return got, err
		}
	}
}

// attemptOf describes one attempt for the hook: got is its answer (nil when none came), err
// its *Error or *TransportError.
func attemptOf(number int, got *answer, err error) Attempt {
	if got == nil {
		return Attempt{Number: number, Err: err}
	}
	a := Attempt{Number: number, StatusCode: got.status, Replayed: got.header.Get(headerIdempotentReplayed) == "true",
		ShardLeader: got.header.Get(headerShardLeader)}
	var apiErr *Error
	if errors.As(err, &apiErr) {
		a.Code = apiErr.Code
	}
	return a
}

// pause waits before attempt+1 and reports whether the call should go on: false when the
// context ends first, or would end before the pause does.
func (c *Client) pause(ctx context.Context, attempt int, retryAfter time.Duration) bool {
	wait := c.retry.BackoffMin
	for doubled := 1; doubled < attempt && wait < c.retry.BackoffMax; doubled++ {
		wait *= 2
	}
	wait = min(wait, c.retry.BackoffMax)
	if wait > 0 {
		wait = wait/2 + mathrand.N(wait/2+1)
	}
	if retryAfter > wait {
		wait = min(retryAfter, c.retry.BackoffMax)
	}
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
		return false
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// retryAfterOf returns the wait an *Error asked for.
func retryAfterOf(err error) time.Duration {
	var apiErr *Error
	if errors.As(err, &apiErr) {
		return apiErr.RetryAfter
	}
	return 0
}

// send makes one attempt. The body is handed over without GetBody, so that net/http never
// replays a request by itself (it would for one with an Idempotency-Key on a reused
// connection): every resend is this client's decision, made by run and reported to the hook.
func (c *Client) send(ctx context.Context, base string, r *request) (*answer, error) {
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	httpRequest, err := http.NewRequestWithContext(ctx, r.method, base+r.path, body)
	if err != nil {
		return nil, &TransportError{Method: r.method, Path: r.path, NotSent: true, Err: err}
	}
	httpRequest.GetBody = nil
	httpRequest.Header.Set("Accept", "application/json")
	if r.body != nil {
		httpRequest.Header.Set("Content-Type", "application/json")
	}
	if r.idempotencyKey != "" {
		httpRequest.Header.Set(headerIdempotencyKey, r.idempotencyKey)
	}
	if c.token != "" {
		httpRequest.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.userAgent != "" {
		httpRequest.Header.Set("User-Agent", c.userAgent)
	}
	response, err := c.httpClient.Do(httpRequest)
	if err != nil {
		return nil, &TransportError{Method: r.method, Path: r.path, NotSent: notSent(err), Err: err}
	}
	defer response.Body.Close()
	data, err := io.ReadAll(io.LimitReader(response.Body, responseBodyMaxBytes+1))
	if err == nil && len(data) > responseBodyMaxBytes {
		err = fmt.Errorf("answer %d exceeds %d bytes", response.StatusCode, responseBodyMaxBytes)
	}
	if err != nil {
		return nil, &TransportError{Method: r.method, Path: r.path, Err: fmt.Errorf("read answer %d: %w", response.StatusCode, err)}
	}
	return &answer{status: response.StatusCode, header: response.Header, body: data}, nil
}

// notSent reports whether a transport error certainly happened before the request left: the
// connection could not be opened (refused, no route, name not found).
func notSent(err error) bool {
	var opErr *net.OpError
	return errors.As(err, &opErr) && opErr.Op == "dial"
}

// The headers of safe retries (docs/cloudwallet-api.md, "Safe retries: Idempotency-Key").
const (
	headerIdempotencyKey     = "Idempotency-Key"
	headerIdempotentReplayed = "Idempotent-Replayed"
)

// errorEnvelope is the API's one error shape; a failed or duplicate transaction, and a resolved
// hold, come with it.
type errorEnvelope struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	Transaction *Transaction `json:"transaction"`
	Hold        *Hold        `json:"hold"`
	// Token and Payment are a GigPay token's or payment's state, with a refusal that concerns
	// one (409 TokenNotActive, 422 InvalidStatusTransition).
	Token   *PaymentToken  `json:"token"`
	Payment *GigPayPayment `json:"payment"`
}

// envelope decodes the error envelope of a non-success answer; its entities are nil when the
// answer carried none (or no envelope).
func (a *answer) envelope() errorEnvelope {
	var envelope errorEnvelope
	if json.Unmarshal(a.body, &envelope) != nil {
		return errorEnvelope{}
	}
	return envelope
}

// messageFromBodyMaxBytes bounds the part of an answer without the envelope kept as Message.
const messageFromBodyMaxBytes = 200

// apiError builds the *Error of a non-success answer. An answer without the envelope (a proxy's
// page) keeps its status, no code, and the start of its body as the message.
func (a *answer) apiError() *Error {
	e := &Error{StatusCode: a.status, RetryAfter: parseRetryAfter(a.header.Get("Retry-After"))}
	var envelope errorEnvelope
	if json.Unmarshal(a.body, &envelope) == nil && envelope.Error.Code != "" {
		e.Code, e.Message = envelope.Error.Code, envelope.Error.Message
		return e
	}
	e.Message = strings.TrimSpace(string(a.body[:min(len(a.body), messageFromBodyMaxBytes)]))
	return e
}

// retryAfterMax bounds the Retry-After the client believes.
const retryAfterMax = time.Hour

// parseRetryAfter reads Retry-After in seconds or as an HTTP date; 0 when absent or malformed.
func parseRetryAfter(value string) time.Duration {
	if value == "" {
		return 0
	}
	if seconds, err := strconv.ParseInt(value, 10, 64); err == nil {
		if seconds < 0 {
			return 0
		}
		return min(time.Duration(seconds)*time.Second, retryAfterMax)
	}
	if when, err := http.ParseTime(value); err == nil {
		return min(max(time.Until(when), 0), retryAfterMax)
	}
	return 0
}

// decode unmarshals a success answer into out.
func (a *answer) decode(r *request, out any) error {
	if err := json.Unmarshal(a.body, out); err != nil {
		return fmt.Errorf("gigaledger: %s %s: decode answer %d: %w", r.method, r.path, a.status, err)
	}
	return nil
}

// call runs r and decodes a success answer into out (nil: no body expected).
func (c *Client) call(ctx context.Context, r *request, out any) error {
	got, err := c.run(ctx, r)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	return got.decode(r, out)
}
