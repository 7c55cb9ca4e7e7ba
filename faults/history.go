package faults

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"
)

// EventType says what one history line records.
type EventType string

// History event types. A logical transfer is one Invoke per attempt, each followed by one
// Complete; the attempts of one transfer share its referenceId.
const (
	EventInvoke   EventType = "invoke"   // a request is about to be sent
	EventComplete EventType = "complete" // its answer (or the lack of one) arrived
	EventFault    EventType = "fault"    // the nemesis began or ended a fault
	EventSnapshot EventType = "snapshot" // a quiescent double-collect of every balance
	EventNote     EventType = "note"     // anything else worth reading in the history
)

// Outcome classifies one attempt's answer from the client's side.
type Outcome string

// Attempt outcomes.
const (
	// OutcomeApplied: 201, or 409 DuplicateReferenceId whose stored transaction completed.
	OutcomeApplied Outcome = "applied"
	// OutcomeFailed: 422, or 409 whose stored transaction failed: recorded as failed.
	OutcomeFailed Outcome = "failed"
	// OutcomeRejected: this attempt certainly did not apply (503 Unavailable or Overloaded,
	// 400, 404).
	OutcomeRejected Outcome = "rejected"
	// OutcomeUnknown: 503 OutcomeUnknown, another 5xx, a timeout or a connection error.
	OutcomeUnknown Outcome = "unknown"
	// OutcomeRead: a successful balance read (Balance holds the value).
	OutcomeRead Outcome = "read"
)

// Operation kinds in the history.
const (
	OpTransfer = "transfer"
	OpRead     = "read"
	OpSetup    = "setup"
	// OpVerify reads one wallet's recent entries after a cross-shard transaction was answered,
	// looking for that transaction's postings (Postings holds how many it found).
	OpVerify = "verify"
)

// Leg is one transfer operation of a transaction the workload sends.
type Leg struct {
	From   string `json:"from"`
	To     string `json:"to"`
	Amount uint64 `json:"amount"`
}

// Event is one line of the history file. Times are nanoseconds since the run began, on the
// runner's monotonic clock, so invoke/complete intervals of different clients compare.
type Event struct {
	TimeNs  int64     `json:"t"`
	Type    EventType `json:"type"`
	Process int       `json:"process,omitempty"` // client or reader number; -1 for the runner
	Op      string    `json:"op,omitempty"`
	// Transfers.
	ReferenceID string `json:"ref,omitempty"`
	From        string `json:"from,omitempty"`
	To          string `json:"to,omitempty"`
	Amount      uint64 `json:"amount,omitempty"`
	// Legs lists every operation of a transaction of more than one (From, To and Amount are
	// then its first).
	Legs []Leg `json:"legs,omitempty"`
	// Cross marks a transaction whose wallets live on more than one shard.
	Cross   bool `json:"cross,omitempty"`
	Attempt int  `json:"attempt,omitempty"`
	// TxID is the transaction an answer carried.
	TxID string `json:"txId,omitempty"`
	// Reads.
	Wallet  string `json:"wallet,omitempty"`
	Balance uint64 `json:"balance,omitempty"`
	// Postings is how many entries of the transaction a verify read found on the wallet.
	Postings int `json:"postings,omitempty"`
	// Answers.
	Node       string  `json:"node,omitempty"`
	Outcome    Outcome `json:"outcome,omitempty"`
	HTTPStatus int     `json:"status,omitempty"`
	Code       string  `json:"code,omitempty"`
	TxStatus   string  `json:"txStatus,omitempty"`
	Error      string  `json:"error,omitempty"`
	// Faults and snapshots.
	Fault    string            `json:"fault,omitempty"`
	Phase    string            `json:"phase,omitempty"` // "start" or "end" of a fault
	Nodes    []string          `json:"nodes,omitempty"`
	Balances map[string]uint64 `json:"balances,omitempty"`
	Total    uint64            `json:"total,omitempty"`
	// Held is what a snapshot's wallets held in all (no hold of ours may outlive its
	// transaction); Supply the asset's supply summed over the shards, as GET asset reads it.
	Held   uint64 `json:"held,omitempty"`
	Supply string `json:"supply,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// Recorder appends events to a JSON-lines file. It is safe for concurrent use; Now gives the
// timestamps every event must carry.
type Recorder struct {
	start time.Time
	mu    sync.Mutex
	file  *os.File
	out   *bufio.Writer
	err   error
	count int
}

// recorderBufferBytes is the history writer's buffer.
const recorderBufferBytes = 1 << 20

// NewRecorder creates (truncates) the history file at path.
func NewRecorder(path string) (*Recorder, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	return &Recorder{start: time.Now(), file: f, out: bufio.NewWriterSize(f, recorderBufferBytes)}, nil
}

// Now is the time since the recorder started, in nanoseconds.
func (r *Recorder) Now() int64 { return int64(time.Since(r.start)) }

// Record appends e. A write error is kept and reported by Close.
func (r *Recorder) Record(e Event) {
	line, err := json.Marshal(e)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.err = err
		return
	}
	line = append(line, '\n')
	if _, err := r.out.Write(line); err != nil && r.err == nil {
		r.err = err
	}
	r.count++
}

// Count is the number of events recorded so far.
func (r *Recorder) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.count
}

// Close flushes and closes the file.
func (r *Recorder) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.out.Flush(); err != nil && r.err == nil {
		r.err = err
	}
	if err := r.file.Close(); err != nil && r.err == nil {
		r.err = err
	}
	return r.err
}

// historyLineMaxBytes bounds one history line when reading it back (snapshots list every
// wallet).
const historyLineMaxBytes = 16 << 20

// ReadHistory loads a history file written by Recorder.
func ReadHistory(path string) ([]Event, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	defer f.Close()
	scanner := bufio.NewScanner(f)
	scanner.Buffer(make([]byte, 64<<10), historyLineMaxBytes)
	var events []Event
	for line := 1; scanner.Scan(); line++ {
		var e Event
		if err := json.Unmarshal(scanner.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("history %s line %d: %w", path, line, err)
		}
		events = append(events, e)
	}
	if err := scanner.Err(); err != nil {
		return nil, fmt.Errorf("history %s: %w", path, err)
	}
	return events, nil
}
