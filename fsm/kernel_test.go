package fsm

import (
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble"
)

// The kernel's own behaviour, with a tiny test family: a counter per name.

const (
	opBump Op = 1000
)

type bump struct {
	Name string
	By   uint64
}

func (*bump) Op() Op              { return opBump }
func (c *bump) Encode(e *Encoder) { e.String(c.Name); e.Uvarint(c.By) }
func (c *bump) Route() Route      { return Route{ProjectID: "p", OwnerID: c.Name} }

type count struct{ N uint64 }

func (c *count) Encode(e *Encoder) { e.Uvarint(c.N) }

func testRegistry() *Registry {
	reg := NewRegistry()
	reg.ClaimPrefix('x', "test: counts")
	reg.Add(OpSpec{Op: opBump, Name: "Bump", Example: &bump{Name: "a", By: 1},
		Decode: func(d *Decoder) Command { return &bump{Name: d.String(), By: d.Uvarint()} },
		Apply: func(b *Batch, c Command) *Result {
			cmd := c.(*bump)
			if cmd.By == 0 {
				return Invalid("by must be positive")
			}
			v, _ := b.Get(Key('x', cmd.Name))
			n := NewDecoder(v).Uvarint() + cmd.By
			e := Encoder{}
			e.Uvarint(n)
			b.Set(Key('x', cmd.Name), e.Buf)
			b.Emit("BUMPED", e.Buf)
			return &Result{Value: &count{N: n}}
		},
		DecodeValue: func(d *Decoder) Value { return &count{N: d.Uvarint()} }})
	return reg
}

type testMachine struct {
	t     *testing.T
	m     *Machine
	index uint64
	now   int64
}

func newTestMachine(t *testing.T, reg *Registry) *testMachine {
	m, err := Open(t.TempDir(), nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return &testMachine{t: t, m: m, now: 1_700_000_000_000}
}

func (tm *testMachine) apply(envs ...Envelope) []*Result {
	tm.index++
	tm.now += 1000
	raw := make([][]byte, len(envs))
	for i, env := range envs {
		raw[i] = EncodeEnvelope(env)
	}
	out := tm.m.ApplyBatch(tm.index, tm.now, raw)
	results := make([]*Result, len(out))
	for i, r := range out {
		// Every result crosses the wire codec, as a forwarded one does.
		data, err := tm.m.Registry().EncodeResult(r)
		if err != nil {
			tm.t.Fatal(err)
		}
		back, err := tm.m.Registry().DecodeResult(data)
		if err != nil {
			tm.t.Fatal(err)
		}
		results[i] = back.(*Result)
	}
	return results
}

func idem(key, body string) *Idempotency {
	i := &Idempotency{Scope: "p", Key: key}
	copy(i.RequestHash[:], body)
	return i
}

func TestIdempotencyKey(t *testing.T) {
	tm := newTestMachine(t, testRegistry())
	first := tm.apply(Envelope{Command: &bump{Name: "a", By: 5}, Idempotency: idem("k1", "body-1")})[0]
	if first.Err != nil || first.Value.(*count).N != 5 || first.Replayed {
		t.Fatalf("first: %+v", first)
	}
	// The same key and request, in the same batch and in a later one: the stored answer,
	// nothing applied.
	results := tm.apply(Envelope{Command: &bump{Name: "a", By: 5}, Idempotency: idem("k1", "body-1")},
		Envelope{Command: &bump{Name: "a", By: 5}, Idempotency: idem("k2", "body-2")},
		Envelope{Command: &bump{Name: "a", By: 5}, Idempotency: idem("k2", "body-2")})
	if !results[0].Replayed || results[0].Value.(*count).N != 5 {
		t.Fatalf("replay: %+v", results[0])
	}
	if results[1].Replayed || results[1].Value.(*count).N != 10 || !results[2].Replayed || results[2].Value.(*count).N != 10 {
		t.Fatalf("same batch: %+v %+v", results[1], results[2])
	}
	// A different request under a used key is refused; another scope is another key.
	r := tm.apply(Envelope{Command: &bump{Name: "a", By: 6}, Idempotency: idem("k1", "body-other")})[0]
	if r.Err == nil || r.Err.Code != CodeIdempotencyKeyMismatch {
		t.Fatalf("mismatch: %+v", r)
	}
	other := idem("k1", "body-1")
	other.Scope = "q"
	if r := tm.apply(Envelope{Command: &bump{Name: "a", By: 1}, Idempotency: other})[0]; r.Replayed || r.Value.(*count).N != 11 {
		t.Fatalf("other scope: %+v", r)
	}
	// A rejection is stored as well: the retry gets it again.
	bad := tm.apply(Envelope{Command: &bump{Name: "a"}, Idempotency: idem("k3", "zero")})[0]
	again := tm.apply(Envelope{Command: &bump{Name: "a"}, Idempotency: idem("k3", "zero")})[0]
	if bad.Err == nil || again.Err == nil || !again.Replayed || again.Err.Message != bad.Err.Message {
		t.Fatalf("stored rejection: %+v %+v", bad, again)
	}
	// A restart keeps the keys; after the retention, a key is forgotten and applies anew.
	if err := tm.m.Close(); err != nil {
		t.Fatal(err)
	}
	m, err := Open(tm.m.store.dir, nil, tm.m.reg)
	if err != nil {
		t.Fatal(err)
	}
	tm.m = m
	if m.AppliedIndex() != tm.index {
		t.Fatalf("applied index %d after a restart, want %d", m.AppliedIndex(), tm.index)
	}
	if _, applied, err := m.DigestAt(); err != nil || applied != tm.index {
		t.Fatalf("digest's applied index %d %v, want %d", applied, err, tm.index)
	}
	if r := tm.apply(Envelope{Command: &bump{Name: "a", By: 5}, Idempotency: idem("k1", "body-1")})[0]; !r.Replayed {
		t.Fatalf("after restart: %+v", r)
	}
	tm.now += IdempotencyRetentionMs
	tm.apply(Envelope{Command: &bump{Name: "b", By: 1}}) // forgets the old keys
	if r := tm.apply(Envelope{Command: &bump{Name: "a", By: 5}, Idempotency: idem("k1", "body-1")})[0]; r.Replayed || r.Value.(*count).N != 16 {
		t.Fatalf("after retention: %+v", r)
	}
	// Bad keys are refused before anything applies.
	if r := tm.apply(Envelope{Command: &bump{Name: "a", By: 1}, Idempotency: idem("", "x")})[0]; r.Err == nil || r.Err.Code != CodeInvalidArgument {
		t.Fatalf("empty key: %+v", r)
	}
	if r := tm.apply(Envelope{Command: &bump{Name: "a", By: 1}, Idempotency: idem(strings.Repeat("k", 256), "x")})[0]; r.Err == nil {
		t.Fatalf("long key: %+v", r)
	}
}

func TestOutboxAckAndRetention(t *testing.T) {
	reg := testRegistry()
	reg.SetOutboxRetention(3)
	tm := newTestMachine(t, reg)
	for i := 0; i < 3; i++ {
		tm.apply(Envelope{Command: &bump{Name: "a", By: 1}}, Envelope{Command: &bump{Name: "b", By: 1}})
	}
	events, err := tm.m.Events(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	// Six events in three batch records; the newest three are kept with the whole record of
	// the oldest of them: sequences 3..6 remain.
	if len(events) != 4 || events[0].Sequence != 3 || events[3].Sequence != 6 || events[0].Type != "BUMPED" {
		t.Fatalf("events %+v", events)
	}
	if first, last, err := tm.m.OutboxRange(); first != 3 || last != 6 || err != nil {
		t.Fatalf("range %d..%d %v", first, last, err)
	}
	if events, _ := tm.m.Events(4, 1); len(events) != 1 || events[0].Sequence != 5 {
		t.Fatalf("events after 4: %+v", events)
	}
	// Acks move the cursor forward only, never past the newest event.
	for _, c := range []struct{ ack, want uint64 }{{3, 3}, {2, 3}, {99, 6}} {
		r := tm.apply(Envelope{Command: &OutboxAck{Subscriber: "hook", Sequence: c.ack}})[0]
		if r.Err != nil || r.Value.(*Cursor).Sequence != c.want {
			t.Fatalf("ack %d: %+v", c.ack, r)
		}
	}
	if cursor, err := tm.m.OutboxCursor("hook"); err != nil || cursor != 6 {
		t.Fatalf("cursor %d %v", cursor, err)
	}
	// Two acks in one batch: the later one cannot move the cursor back.
	rs := tm.apply(Envelope{Command: &OutboxAck{Subscriber: "s2", Sequence: 5}}, Envelope{Command: &OutboxAck{Subscriber: "s2", Sequence: 4}})
	if rs[1].Value.(*Cursor).Sequence != 5 {
		t.Fatalf("same-batch acks: %+v", rs[1])
	}
	if r := tm.apply(Envelope{Command: &OutboxAck{Subscriber: "", Sequence: 1}})[0]; r.Err == nil {
		t.Fatal("an ack without a subscriber was accepted")
	}
	// After a restart the outbox continues its sequence.
	if err := tm.m.Close(); err != nil {
		t.Fatal(err)
	}
	m, err := Open(tm.m.store.dir, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	tm.m = m
	tm.apply(Envelope{Command: &bump{Name: "a", By: 1}})
	if events, _ := tm.m.Events(6, 10); len(events) != 1 || events[0].Sequence != 7 {
		t.Fatalf("after restart: %+v", events)
	}
}

// EventsChanged wakes a waiter when a batch with events commits, and not for one without.
func TestEventsChanged(t *testing.T) {
	tm := newTestMachine(t, testRegistry())
	changed := tm.m.EventsChanged()
	if again := tm.m.EventsChanged(); again != changed {
		t.Fatal("two waiters before a batch got different channels")
	}
	tm.apply(Envelope{Command: &OutboxAck{Subscriber: "hook", Sequence: 1}}) // emits nothing
	select {
	case <-changed:
		t.Fatal("a batch without events woke the waiter")
	default:
	}
	tm.apply(Envelope{Command: &bump{Name: "a", By: 1}})
	select {
	case <-changed:
	default:
		t.Fatal("a batch with an event did not wake the waiter")
	}
	if next := tm.m.EventsChanged(); next == changed {
		t.Fatal("the closed channel was handed out again")
	}
}

func TestRegistryRefusesIncompleteOps(t *testing.T) {
	for name, spec := range map[string]OpSpec{
		"no decoder": {Op: 2000, Name: "x", Example: &bump{}, Apply: func(*Batch, Command) *Result { return nil }},
		"no example": {Op: 2000, Name: "x", Decode: func(*Decoder) Command { return nil }, Apply: func(*Batch, Command) *Result { return nil }},
		"taken code": {Op: OpOutboxAck, Name: "x", Example: &OutboxAck{}, Decode: func(*Decoder) Command { return nil },
			Apply: func(*Batch, Command) *Result { return nil }},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: registered", name)
				}
			}()
			NewRegistry().Add(spec)
		}()
	}
	defer func() {
		if recover() == nil {
			t.Error("a key prefix was claimed twice")
		}
	}()
	NewRegistry().ClaimPrefix(prefixOutbox, "someone else")
}

// TestEveryOpRoutes: every op of the kernel declares a routing key.
func TestEveryOpRoutes(t *testing.T) {
	for _, spec := range testRegistry().Specs() {
		if spec.Example.Route().IsZero() {
			t.Errorf("op %s has no routing key", spec.Name)
		}
		raw := EncodeCommand(spec.Example)
		if _, err := testRegistry().DecodeCommand(raw); err != nil {
			t.Errorf("op %s: %v", spec.Name, err)
		}
	}
}

// TestFirstReleaseAppliedIndex: a store of the first release keeps its applied index in a key of
// its own; it loads, and the first batch moves it into the clock record.
func TestFirstReleaseAppliedIndex(t *testing.T) {
	tm := newTestMachine(t, testRegistry())
	tm.apply(Envelope{Command: &bump{Name: "a", By: 1}})
	// Rewrite the bookkeeping as the first release wrote it: index 41, clock version 1.
	e := Encoder{}
	e.Byte(1)
	e.Varint(tm.now)
	b := tm.m.store.db.NewBatch()
	b.Set(keyApplied, []byte{0, 0, 0, 0, 0, 0, 0, 41}, nil)
	b.Set(keyClock, e.Buf, nil)
	if err := b.Commit(pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	if err := tm.m.Close(); err != nil {
		t.Fatal(err)
	}
	m, err := Open(tm.m.store.dir, nil, tm.m.reg)
	if err != nil {
		t.Fatal(err)
	}
	tm.m, tm.index = m, 41
	if m.AppliedIndex() != 41 {
		t.Fatalf("applied index %d, want 41", m.AppliedIndex())
	}
	if out := m.ApplyBatch(41, tm.now, [][]byte{EncodeCommand(&bump{Name: "a", By: 1})}); out != nil {
		t.Fatal("an applied entry was applied again")
	}
	tm.apply(Envelope{Command: &bump{Name: "a", By: 1}})
	if v, _ := m.store.Get(keyApplied); v != nil {
		t.Fatal("the first release's applied key is still there")
	}
	if _, applied, _ := m.DigestAt(); applied != 42 {
		t.Fatalf("digest's applied index %d, want 42", applied)
	}
}

// TestOutboxDeadLetters: a dead letter is recorded with the cursor moved past it in one apply,
// listed per subscriber, refused when malformed, and trimmed with its event.
func TestOutboxDeadLetters(t *testing.T) {
	reg := testRegistry()
	reg.SetOutboxRetention(4)
	tm := newTestMachine(t, reg)
	for i := 0; i < 3; i++ {
		tm.apply(Envelope{Command: &bump{Name: "a", By: 1}}) // events 1, 2, 3
	}
	r := tm.apply(Envelope{Command: &OutboxDeadLetter{Subscriber: "hook", Sequence: 2, EventType: "BUMPED", Reason: "HTTP 500"}})[0]
	if r.Err != nil || r.Value.(*Cursor).Sequence != 2 {
		t.Fatalf("dead letter: %+v", r)
	}
	if cursor, _ := tm.m.OutboxCursor("hook"); cursor != 2 {
		t.Fatalf("cursor %d, want 2", cursor)
	}
	tm.apply(Envelope{Command: &OutboxDeadLetter{Subscriber: "other", Sequence: 3, EventType: "BUMPED", Reason: "timeout"}})
	letters, err := tm.m.DeadLetters("hook", 0, 10)
	if err != nil || len(letters) != 1 || letters[0].Sequence != 2 || letters[0].Reason != "HTTP 500" || letters[0].Time == 0 {
		t.Fatalf("hook's dead letters %+v %v", letters, err)
	}
	if all, _ := tm.m.DeadLetters("", 0, 10); len(all) != 2 {
		t.Fatalf("all dead letters %+v", all)
	}
	for name, bad := range map[string]*OutboxDeadLetter{
		"no subscriber": {Sequence: 1, EventType: "BUMPED"},
		"long reason":   {Subscriber: "hook", Sequence: 1, Reason: strings.Repeat("r", DeadLetterReasonMaxBytes+1)},
	} {
		if r := tm.apply(Envelope{Command: bad})[0]; r.Err == nil || r.Err.Code != CodeInvalidArgument {
			t.Errorf("%s: %+v", name, r)
		}
	}
	// An event the outbox never had records nothing (and moves no cursor past the newest).
	if r := tm.apply(Envelope{Command: &OutboxDeadLetter{Subscriber: "hook", Sequence: 99}})[0]; r.Value.(*Cursor).Sequence != 3 {
		t.Fatalf("beyond the newest: %+v", r)
	}
	if letters, _ := tm.m.DeadLetters("hook", 0, 10); len(letters) != 1 {
		t.Fatalf("after a dead letter beyond the newest: %+v", letters)
	}
	// Once the outbox trims event 2 and 3, their dead letters go too.
	for i := 0; i < 5; i++ {
		tm.apply(Envelope{Command: &bump{Name: "a", By: 1}})
	}
	if all, _ := tm.m.DeadLetters("", 0, 10); len(all) != 0 {
		t.Fatalf("dead letters of trimmed events: %+v", all)
	}
}

// TestOutboxRedrive: a re-drive marks only its subscriber's dead letters, pages through a
// bounded scan, is idempotent; an outcome removes the mark and, when delivered, the dead letter,
// otherwise keeps it with the new reason; an outcome again changes nothing; the cursor never
// moves; marks are trimmed with their events.
func TestOutboxRedrive(t *testing.T) {
	reg := testRegistry()
	reg.SetOutboxRetention(8)
	tm := newTestMachine(t, reg)
	for i := 0; i < 4; i++ {
		tm.apply(Envelope{Command: &bump{Name: "a", By: 1}}) // events 1..4
	}
	tm.apply(Envelope{Command: &OutboxDeadLetter{Subscriber: "hook", Sequence: 1, EventType: "BUMPED", Reason: "HTTP 500"}},
		Envelope{Command: &OutboxDeadLetter{Subscriber: "other", Sequence: 2, EventType: "BUMPED", Reason: "HTTP 500"}},
		Envelope{Command: &OutboxDeadLetter{Subscriber: "hook", Sequence: 3, EventType: "BUMPED", Reason: "HTTP 500"}})
	for range 2 {
		r := tm.apply(Envelope{Command: &OutboxRedrive{Subscriber: "hook"}})[0]
		if marked := r.Value.(*RedriveMarked); r.Err != nil || marked.Marked != 2 || marked.Last != 3 || !marked.Done {
			t.Fatalf("redrive: %+v %+v", r, r.Value)
		}
	}
	if r := tm.apply(Envelope{Command: &OutboxRedrive{Subscriber: "hook", After: 1}})[0]; r.Value.(*RedriveMarked).Marked != 1 {
		t.Fatalf("redrive after 1: %+v", r.Value)
	}
	if r := tm.apply(Envelope{Command: &OutboxRedrive{}})[0]; r.Err == nil || r.Err.Code != CodeInvalidArgument {
		t.Fatalf("redrive without a subscriber: %+v", r)
	}
	if marks, err := tm.m.Redrives("hook", 10); err != nil || !slices.Equal(marks, []uint64{1, 3}) {
		t.Fatalf("hook's marks %v %v", marks, err)
	}
	if marks, _ := tm.m.Redrives("other", 10); len(marks) != 0 {
		t.Fatalf("other's marks %v", marks)
	}
	cursor, _ := tm.m.OutboxCursor("hook")
	for range 2 {
		tm.apply(Envelope{Command: &OutboxRedriven{Subscriber: "hook", Sequence: 1, Delivered: true}},
			Envelope{Command: &OutboxRedriven{Subscriber: "hook", Sequence: 3, Reason: "HTTP 502"}})
	}
	letters, _ := tm.m.DeadLetters("hook", 0, 10)
	if len(letters) != 1 || letters[0].Sequence != 3 || letters[0].Reason != "HTTP 502" || letters[0].EventType != "BUMPED" {
		t.Fatalf("dead letters after the re-drive %+v", letters)
	}
	if marks, _ := tm.m.Redrives("hook", 10); len(marks) != 0 {
		t.Fatalf("marks after the outcomes %v", marks)
	}
	if after, _ := tm.m.OutboxCursor("hook"); after != cursor {
		t.Fatalf("cursor moved from %d to %d", cursor, after)
	}
	// An outcome without a mark changes nothing: the letter of 3 stays.
	tm.apply(Envelope{Command: &OutboxRedriven{Subscriber: "hook", Sequence: 3, Delivered: true}})
	if letters, _ := tm.m.DeadLetters("hook", 0, 10); len(letters) != 1 {
		t.Fatalf("an unmarked outcome removed %+v", letters)
	}
	// Marks go with their trimmed events.
	tm.apply(Envelope{Command: &OutboxRedrive{Subscriber: "other"}})
	for i := 0; i < 10; i++ {
		tm.apply(Envelope{Command: &bump{Name: "a", By: 1}})
	}
	if marks, _ := tm.m.Redrives("other", 10); len(marks) != 0 {
		t.Fatalf("marks of trimmed events %v", marks)
	}
}

// TestSubscriptions: created once per name (also within one batch), listed, deleted once,
// malformed ones refused.
func TestSubscriptions(t *testing.T) {
	tm := newTestMachine(t, testRegistry())
	hook := Subscription{Name: "shop", Kind: 1, Target: "https://shop.example/hook", Secret: "s3", Types: []string{"INV", "LEDGER_TX_COMPLETED"}, StartAfter: []uint64{4, 0}}
	rs := tm.apply(Envelope{Command: &PutSubscription{Subscription: hook}}, Envelope{Command: &PutSubscription{Subscription: hook}})
	if rs[0].Err != nil || rs[1].Err == nil || rs[1].Err.Code != CodeSubscriptionExists {
		t.Fatalf("create twice in one batch: %+v, %+v", rs[0], rs[1].Err)
	}
	if r := tm.apply(Envelope{Command: &PutSubscription{Subscription: hook}})[0]; r.Err == nil || r.Err.Code != CodeSubscriptionExists {
		t.Fatalf("create again: %+v", r)
	}
	subs, err := tm.m.Subscriptions()
	if err != nil || len(subs) != 1 || subs[0].Target != hook.Target || subs[0].Secret != "s3" || len(subs[0].StartAfter) != 2 ||
		subs[0].StartAfter[0] != 4 || subs[0].CreatedAt == 0 {
		t.Fatalf("subscriptions %+v %v", subs, err)
	}
	for name, bad := range map[string]Subscription{
		"no name":    {Kind: 1, Target: "x", Types: []string{"ALL"}},
		"no kind":    {Name: "a", Target: "x", Types: []string{"ALL"}},
		"no target":  {Name: "a", Kind: 1, Types: []string{"ALL"}},
		"no types":   {Name: "a", Kind: 1, Target: "x"},
		"bad type":   {Name: "a", Kind: 1, Target: "x", Types: []string{"IN V"}},
		"big secret": {Name: "a", Kind: 1, Target: "x", Types: []string{"ALL"}, Secret: strings.Repeat("s", SubscriptionSecretMaxBytes+1)},
	} {
		if r := tm.apply(Envelope{Command: &PutSubscription{Subscription: bad}})[0]; r.Err == nil || r.Err.Code != CodeInvalidArgument {
			t.Errorf("%s: %+v", name, r)
		}
	}
	rs = tm.apply(Envelope{Command: &DeleteSubscription{Name: "shop"}}, Envelope{Command: &DeleteSubscription{Name: "shop"}})
	if rs[0].Err != nil || rs[1].Err == nil || rs[1].Err.Code != CodeSubscriptionNotFound {
		t.Fatalf("delete twice in one batch: %+v, %+v", rs[0], rs[1].Err)
	}
	if subs, _ := tm.m.Subscriptions(); len(subs) != 0 {
		t.Fatalf("after delete: %+v", subs)
	}
	// A deleted name is never reused (the shards keep its cursors and dead letters), also
	// within one batch.
	if r := tm.apply(Envelope{Command: &PutSubscription{Subscription: hook}})[0]; r.Err == nil || r.Err.Code != CodeSubscriptionNameRetired {
		t.Fatalf("reuse a deleted name: %+v", r)
	}
	other := hook
	other.Name = "other"
	rs = tm.apply(Envelope{Command: &PutSubscription{Subscription: other}}, Envelope{Command: &DeleteSubscription{Name: "other"}},
		Envelope{Command: &PutSubscription{Subscription: other}})
	if rs[0].Err != nil || rs[1].Err != nil || rs[2].Err == nil || rs[2].Err.Code != CodeSubscriptionNameRetired {
		t.Fatalf("create, delete, create: %v %v %v", rs[0].Err, rs[1].Err, rs[2].Err)
	}
	if subs, _ := tm.m.Subscriptions(); len(subs) != 0 {
		t.Fatalf("after create, delete, create: %+v", subs)
	}
}
