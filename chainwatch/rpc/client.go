package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// Limits and defaults of a Client.
const (
	// DefaultTimeout bounds one attempt of a call when Config.Timeout is zero.
	DefaultTimeout = 30 * time.Second
	// RetriesMax bounds Config.Retries.
	RetriesMax = 10
	// DefaultResponseMaxBytes bounds an answer's body when Config.ResponseMaxBytes is zero:
	// a raw block in hex is twice the block's size, far below this.
	DefaultResponseMaxBytes = 64 << 20
	// retryBackoffStep is the pause before retry n: n × retryBackoffStep, at most
	// retryBackoffMax.
	retryBackoffStep = 100 * time.Millisecond
	retryBackoffMax  = 2 * time.Second
	// httpErrorBodyMaxBytes bounds the part of a non-200 body kept in an HTTPStatusError.
	httpErrorBodyMaxBytes = 256
)

// redacted is what the password shows of itself anywhere.
const redacted = "[redacted]"

// idempotentMethods are the methods that change nothing on the node, so repeating one after
// a transport error is safe. Every other method, including any unknown to this list, is sent
// once.
var idempotentMethods = map[string]bool{
	"getblockhash":         true,
	"getblockheader":       true,
	"getblock":             true,
	"getbestblockhash":     true,
	"getblockcount":        true,
	"getblockchaininfo":    true,
	"getrawtransaction":    true,
	"decoderawtransaction": true,
	"estimatefee":          true,
	"estimatesmartfee":     true,
	"getnetworkinfo":       true,
	"getmempoolinfo":       true,
	"getrawmempool":        true,
	"getwalletinfo":        true,
	"getbalance":           true,
}

// Config configures a Client.
type Config struct {
	// URL is the node's RPC endpoint, http://host:port (a path such as /wallet/name is
	// kept). It must not carry a user or password: those go in User and Password.
	URL      string
	User     string
	Password string
	// Timeout bounds each attempt of a call; zero means DefaultTimeout.
	Timeout time.Duration
	// Retries is how many times a read-only call is repeated after a transport error,
	// 0..RetriesMax.
	Retries int
	// ResponseMaxBytes bounds an answer's body; zero means DefaultResponseMaxBytes.
	ResponseMaxBytes int64
	// HTTP sends the requests; nil means a client of its own without a global timeout
	// (Timeout bounds each attempt).
	HTTP *http.Client
}

// Format prints a Config with its password redacted, whatever the verb.
func (c Config) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "{URL:%s User:%s Password:%s Timeout:%s Retries:%d ResponseMaxBytes:%d}",
		c.URL, c.User, redacted, c.Timeout, c.Retries, c.ResponseMaxBytes)
}

// Client calls one node. It is safe for concurrent use.
type Client struct {
	url              string
	user             string
	password         secret
	timeout          time.Duration
	retries          int
	responseMaxBytes int64
	http             *http.Client
	lastID           atomic.Uint64
}

// Format prints a Client as its endpoint and user, whatever the verb: fmt cannot reach the
// Format of an unexported field, so the password is kept out here.
func (c *Client) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "rpc.Client{URL:%s User:%s Password:%s}", c.url, c.user, redacted)
}

// secret is a string that prints, marshals and logs as "[redacted]".
type secret string

func (secret) Format(f fmt.State, _ rune)   { io.WriteString(f, redacted) }
func (secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }
func (secret) String() string               { return redacted }
func (secret) GoString() string             { return redacted }

// New validates cfg and returns a Client. It does not contact the node.
func New(cfg Config) (*Client, error) {
	endpoint, err := url.Parse(cfg.URL)
	if err != nil {
		// url.Parse's error quotes the URL, which might hold a password: name only the problem.
		return nil, fmt.Errorf("rpc: URL does not parse: %w", ErrInvalidArgument)
	}
	if endpoint.User != nil {
		return nil, fmt.Errorf("rpc: URL must not carry a user or password (use Config.User and Config.Password): %w", ErrInvalidArgument)
	}
	if endpoint.Scheme != "http" && endpoint.Scheme != "https" {
		return nil, fmt.Errorf("rpc: URL scheme %q is not http or https: %w", endpoint.Scheme, ErrInvalidArgument)
	}
	if endpoint.Host == "" {
		return nil, fmt.Errorf("rpc: URL %q has no host: %w", cfg.URL, ErrInvalidArgument)
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("rpc: Timeout %s is negative: %w", cfg.Timeout, ErrInvalidArgument)
	}
	if cfg.Retries < 0 || cfg.Retries > RetriesMax {
		return nil, fmt.Errorf("rpc: Retries %d is outside 0..%d: %w", cfg.Retries, RetriesMax, ErrInvalidArgument)
	}
	if cfg.ResponseMaxBytes < 0 {
		return nil, fmt.Errorf("rpc: ResponseMaxBytes %d is negative: %w", cfg.ResponseMaxBytes, ErrInvalidArgument)
	}
	client := &Client{
		url:              endpoint.String(),
		user:             cfg.User,
		password:         secret(cfg.Password),
		timeout:          cfg.Timeout,
		retries:          cfg.Retries,
		responseMaxBytes: cfg.ResponseMaxBytes,
		http:             cfg.HTTP,
	}
	if client.timeout == 0 {
		client.timeout = DefaultTimeout
	}
	if client.responseMaxBytes == 0 {
		client.responseMaxBytes = DefaultResponseMaxBytes
	}
	if client.http == nil {
		client.http = &http.Client{}
	}
	return client, nil
}

// request is the JSON-RPC 1.0-style envelope Dogecoin Core expects; field order is the wire's.
type request struct {
	Method string `json:"method"`
	Params []any  `json:"params"`
	ID     uint64 `json:"id"`
}

// response is the envelope of an answer. Fields are raw so that presence, null and shape can
// each be checked; unknown fields (a "jsonrpc" some proxies add) are ignored.
type response struct {
	Result json.RawMessage `json:"result"`
	Error  json.RawMessage `json:"error"`
	ID     json.RawMessage `json:"id"`
}

// Call sends method with params and decodes the result into result (a pointer, or nil to
// discard it). A node error is an *Error; a read-only method is retried after a transport
// error up to Config.Retries times; any other method's transport error wraps
// ErrOutcomeUnknown. Every error names the method and never the password.
func (c *Client) Call(ctx context.Context, method string, params []any, result any) error {
	if params == nil {
		params = []any{}
	}
	idempotent := idempotentMethods[method]
	attempts := 1
	if idempotent {
		attempts += c.retries
	}
	var err error
	for attempt := range attempts {
		if attempt > 0 {
			if waitErr := sleep(ctx, min(time.Duration(attempt)*retryBackoffStep, retryBackoffMax)); waitErr != nil {
				return fmt.Errorf("rpc %s: %w (after %d attempts, last: %w)", method, waitErr, attempt, err)
			}
		}
		err = c.callOnce(ctx, method, params, result)
		if err == nil || !errors.Is(err, ErrTransport) || ctx.Err() != nil {
			break
		}
	}
	if err == nil {
		return nil
	}
	if !idempotent && errors.Is(err, ErrTransport) {
		return fmt.Errorf("rpc %s: %w: %w", method, ErrOutcomeUnknown, err)
	}
	return fmt.Errorf("rpc %s: %w", method, err)
}

// callOnce is one attempt of Call, bounded by the client's timeout.
func (c *Client) callOnce(ctx context.Context, method string, params []any, result any) error {
	id := c.lastID.Add(1)
	body, err := json.Marshal(request{Method: method, Params: params, ID: id})
	if err != nil {
		return fmt.Errorf("encode params: %w: %w", ErrInvalidArgument, err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	httpRequest, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	httpRequest.Header.Set("Content-Type", "application/json")
	httpRequest.SetBasicAuth(c.user, string(c.password))
	httpResponse, err := c.http.Do(httpRequest)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrTransport, err)
	}
	defer httpResponse.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(httpResponse.Body, c.responseMaxBytes+1))
	if err != nil {
		return fmt.Errorf("%w: read answer: %w", ErrTransport, err)
	}
	if int64(len(answer)) > c.responseMaxBytes {
		return fmt.Errorf("%w: answer larger than %d bytes", ErrBadResponse, c.responseMaxBytes)
	}
	envelope, envelopeErr := decodeEnvelope(answer, id)
	if httpResponse.StatusCode != http.StatusOK {
		// A node answers a failed call with 500 (404 for an unknown method) and the error in
		// the body; anything else is the status alone.
		if envelopeErr == nil && envelope.nodeError != nil {
			return envelope.nodeError
		}
		return &HTTPStatusError{StatusCode: httpResponse.StatusCode, Body: c.bodyExcerpt(answer)}
	}
	if envelopeErr != nil {
		return envelopeErr
	}
	if envelope.nodeError != nil {
		return envelope.nodeError
	}
	if result == nil {
		return nil
	}
	if err := json.Unmarshal(envelope.result, result); err != nil {
		return fmt.Errorf("%w: result: %w", ErrBadResponse, err)
	}
	return nil
}

// envelope is a decoded, checked answer: either nodeError or result is set.
type envelope struct {
	result    json.RawMessage
	nodeError *Error
}

// decodeEnvelope checks that answer is one JSON object echoing id, with a non-null error
// object or a result.
func decodeEnvelope(answer []byte, id uint64) (envelope, error) {
	decoder := json.NewDecoder(bytes.NewReader(answer))
	var raw response
	if err := decoder.Decode(&raw); err != nil {
		return envelope{}, fmt.Errorf("%w: not a JSON-RPC response: %w", ErrBadResponse, err)
	}
	if decoder.More() {
		return envelope{}, fmt.Errorf("%w: data after the response object", ErrBadResponse)
	}
	var echoed uint64
	if len(raw.ID) == 0 || json.Unmarshal(raw.ID, &echoed) != nil || echoed != id {
		return envelope{}, fmt.Errorf("%w: id %s does not echo the request's %d", ErrBadResponse, excerpt(raw.ID), id)
	}
	if len(raw.Error) != 0 && !bytes.Equal(raw.Error, []byte("null")) {
		var nodeError struct {
			Code    *int    `json:"code"`
			Message *string `json:"message"`
		}
		if err := json.Unmarshal(raw.Error, &nodeError); err != nil || nodeError.Code == nil {
			return envelope{}, fmt.Errorf("%w: error field %s is not {code, message}", ErrBadResponse, excerpt(raw.Error))
		}
		message := ""
		if nodeError.Message != nil {
			message = *nodeError.Message
		}
		return envelope{nodeError: &Error{Code: *nodeError.Code, Message: message}}, nil
	}
	if len(raw.Result) == 0 {
		return envelope{}, fmt.Errorf("%w: neither result nor error", ErrBadResponse)
	}
	return envelope{result: raw.Result}, nil
}

// bodyExcerpt is the start of a non-200 body for an error, with the password (should a
// proxy ever echo it) cut out.
func (c *Client) bodyExcerpt(body []byte) string {
	if c.password != "" {
		body = bytes.ReplaceAll(body, []byte(c.password), []byte(redacted))
	}
	return excerpt(body)
}

// excerpt is the start of raw bytes, bounded and trimmed, for an error message.
func excerpt(raw []byte) string {
	if len(raw) > httpErrorBodyMaxBytes {
		raw = raw[:httpErrorBodyMaxBytes]
	}
	return strings.ToValidUTF8(strings.TrimSpace(string(raw)), "?")
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
