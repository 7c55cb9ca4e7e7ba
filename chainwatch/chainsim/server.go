package chainsim

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// requestBodyMaxBytes bounds a JSON-RPC request: the largest is sendrawtransaction with a
// TransactionMaxBytes transaction in hex.
const requestBodyMaxBytes = 4*TransactionMaxBytes + 4096

// Server answers JSON-RPC 1.0 calls on a Chain as Dogecoin Core does, for the calls
// chainwatch/rpc's client makes: getblockhash, getbestblockhash, getblockcount,
// getblockheader, getblock, getblockchaininfo, getrawtransaction, decoderawtransaction,
// sendrawtransaction, estimatefee and getrawmempool. Any other method is -32601 with HTTP
// 404; a node error is HTTP 500 with the error in the body; a wrong user or password is 401
// with an empty body. A Server is an http.Handler (for httptest.NewServer) and can listen on
// an address itself (Listen). It is safe for concurrent use.
type Server struct {
	chain    *Chain
	user     string
	password string
	// dropSendAnswers counts sendrawtransaction calls to carry out and then answer by
	// closing the connection.
	dropSendAnswers atomic.Int64

	mu       sync.Mutex
	listener net.Listener
	http     *http.Server
}

// NewServer returns a server for chain that accepts HTTP basic auth with user and password.
func NewServer(chain *Chain, user, password string) *Server {
	return &Server{chain: chain, user: user, password: password}
}

// DropNextSendAnswer makes the next sendrawtransaction reach the chain (the transaction is
// accepted or rejected as ever) and then lose its answer: the connection closes with no
// response, so the client cannot know the outcome (chainwatch/rpc's ErrOutcomeUnknown).
// Calls add up.
func (s *Server) DropNextSendAnswer() { s.dropSendAnswers.Add(1) }

// Listen serves on address (127.0.0.1:port; port 0 picks one) in the background and returns
// the URL to give a client, http://127.0.0.1:port.
func (s *Server) Listen(address string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listener != nil {
		return "", fmt.Errorf("chainsim: server already listening on %s", s.listener.Addr())
	}
	listener, err := net.Listen("tcp", address)
	if err != nil {
		return "", fmt.Errorf("chainsim: listen: %w", err)
	}
	s.listener = listener
	s.http = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go s.http.Serve(listener) //nolint:errcheck // Serve ends with ErrServerClosed on Close.
	return "http://" + listener.Addr().String(), nil
}

// Close stops a server started by Listen, closing its connections.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.http == nil {
		return nil
	}
	err := s.http.Close()
	s.http, s.listener = nil, nil
	return err
}

// rpcRequest is a JSON-RPC 1.0 request; params stay raw for each method to decode.
type rpcRequest struct {
	Method string            `json:"method"`
	Params []json.RawMessage `json:"params"`
	ID     json.RawMessage   `json:"id"`
}

// rpcError is the error object of an answer, and the error a method returns.
type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *rpcError) Error() string { return fmt.Sprintf("%d: %s", e.Code, e.Message) }

// ServeHTTP answers one JSON-RPC call.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user, password, ok := r.BasicAuth()
	if !ok || subtle.ConstantTimeCompare([]byte(user), []byte(s.user)) != 1 ||
		subtle.ConstantTimeCompare([]byte(password), []byte(s.password)) != 1 {
		w.Header().Set("WWW-Authenticate", `Basic realm="jsonrpc"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if r.Method != http.MethodPost {
		http.Error(w, "JSONRPC server handles only POST requests", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, requestBodyMaxBytes))
	if err != nil {
		writeAnswer(w, http.StatusRequestEntityTooLarge, nil, nil, &rpcError{Code: CodeInvalidRequest, Message: "request too large"})
		return
	}
	var request rpcRequest
	decoder := json.NewDecoder(bytes.NewReader(body))
	if err := decoder.Decode(&request); err != nil || decoder.More() {
		writeAnswer(w, http.StatusInternalServerError, nil, nil, &rpcError{Code: CodeParseError, Message: "Parse error"})
		return
	}
	if request.Method == "" {
		writeAnswer(w, http.StatusBadRequest, request.ID, nil, &rpcError{Code: CodeInvalidRequest, Message: "Method must be a string"})
		return
	}
	method, known := methods[request.Method]
	if !known {
		writeAnswer(w, http.StatusNotFound, request.ID, nil, &rpcError{Code: CodeMethodNotFound, Message: "Method not found"})
		return
	}
	result, callErr := method(s, request.Params)
	if request.Method == "sendrawtransaction" && s.takeDropSendAnswer() {
		dropConnection(w)
		return
	}
	if callErr != nil {
		var nodeError *rpcError
		if !errors.As(callErr, &nodeError) {
			nodeError = &rpcError{Code: CodeMiscError, Message: callErr.Error()}
		}
		writeAnswer(w, http.StatusInternalServerError, request.ID, nil, nodeError)
		return
	}
	writeAnswer(w, http.StatusOK, request.ID, result, nil)
}

func (s *Server) takeDropSendAnswer() bool {
	for {
		n := s.dropSendAnswers.Load()
		if n <= 0 {
			return false
		}
		if s.dropSendAnswers.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

// dropConnection closes the connection without an answer.
func dropConnection(w http.ResponseWriter) {
	hijacker, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	connection, _, err := hijacker.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	connection.Close()
}

// writeAnswer writes {"result","error","id"} with status.
func writeAnswer(w http.ResponseWriter, status int, id json.RawMessage, result any, nodeError *rpcError) {
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	answer := struct {
		Result any             `json:"result"`
		Error  *rpcError       `json:"error"`
		ID     json.RawMessage `json:"id"`
	}{Result: result, Error: nodeError, ID: id}
	encoded, err := json.Marshal(answer)
	if err != nil {
		status = http.StatusInternalServerError
		encoded = []byte(`{"result":null,"error":{"code":-32603,"message":"Internal error"},"id":null}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(encoded, '\n'))
}
