package httpapi

import (
	"bytes"
	"crypto/sha256"
	"io"

	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gin-gonic/gin"
)

// Idempotency-Key (Stripe's semantics, fsm/idempotency.go): every mutating route accepts the
// header. The first request with a key applies and its answer is stored in the shard; a retry
// with the same key and the same request (method, route, path parameters, body) gets the stored
// answer with `Idempotent-Replayed: true` and changes nothing; the same key with a different
// request is refused, 409 IdempotencyKeyMismatch. Keys are scoped per project and kept for 24
// hours. A transaction's referenceId is the same mechanism for transactions and needs no key.
const (
	headerIdempotencyKey     = "Idempotency-Key"
	headerIdempotentReplayed = "Idempotent-Replayed"
)

// idempotencyOf returns the request's idempotency key, bound to a hash of what the request asks
// for; nil when it has none. It reads the body again: handlers decode it from a buffered copy
// (see bufferBody).
func idempotencyOf(c *gin.Context, cmd fsm.Command) (*fsm.Idempotency, *apiError) {
	values := c.Request.Header.Values(headerIdempotencyKey)
	if len(values) == 0 {
		return nil, nil
	}
	if len(values) > 1 {
		return nil, invalidArgument("send one %s header", headerIdempotencyKey)
	}
	key := values[0]
	if key == "" || !fsm.ValidText(key, fsm.IdempotencyKeyMaxLength) {
		return nil, invalidArgument("%s must be 1..%d printable characters", headerIdempotencyKey, fsm.IdempotencyKeyMaxLength)
	}
	h := sha256.New()
	h.Write([]byte(c.Request.Method))
	h.Write([]byte{0})
	h.Write([]byte(c.FullPath()))
	for _, p := range c.Params {
		h.Write([]byte{0})
		h.Write([]byte(p.Key))
		h.Write([]byte{0})
		h.Write([]byte(p.Value))
	}
	h.Write([]byte{0})
	if body, ok := c.Get(bodyKey); ok {
		h.Write(body.([]byte))
	}
	idem := &fsm.Idempotency{Scope: c.Param("projectId"), Key: key}
	h.Sum(idem.RequestHash[:0])
	return idem, nil
}

// bodyKey is where bufferBody keeps the request body for the idempotency hash.
const bodyKey = "gigaledger.body"

// bufferBody reads a mutating request's body (already bounded by the body limit) once, keeps it
// for the idempotency hash, and hands the handler a reader over the same bytes.
func bufferBody(c *gin.Context) {
	if c.Request.Header.Get(headerIdempotencyKey) != "" && c.Request.Body != nil {
		body, err := io.ReadAll(c.Request.Body)
		if err != nil {
			// A body over the limit or a broken connection: the decoder reports it as usual.
			c.Request.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), errReader{err}))
		} else {
			c.Request.Body = io.NopCloser(bytes.NewReader(body))
		}
		c.Set(bodyKey, body)
	}
	c.Next()
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }
