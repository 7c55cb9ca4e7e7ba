package fsm

import "testing"

// planned is a test command planned from state its proposer read: it applies only while the
// counter is still the one read (Want), else it refuses "Stale" — a refusal kept under no key.
type planned struct {
	Name string
	Want uint64
}

const opPlanned Op = 1001

func (*planned) Op() Op                           { return opPlanned }
func (c *planned) Encode(e *Encoder)              { e.String(c.Name); e.Uvarint(c.Want) }
func (c *planned) Route() Route                   { return Route{ProjectID: "p", OwnerID: c.Name} }
func (*planned) StaleRefusal(code ErrorCode) bool { return code == "Stale" }

func plannedRegistry() *Registry {
	reg := testRegistry()
	reg.Add(OpSpec{Op: opPlanned, Name: "Planned", Example: &planned{Name: "a"},
		Decode: func(d *Decoder) Command { return &planned{Name: d.String(), Want: d.Uvarint()} },
		Apply: func(b *Batch, c Command) *Result {
			cmd := c.(*planned)
			v, _ := b.Get(Key('x', cmd.Name))
			n := NewDecoder(v).Uvarint()
			if n != cmd.Want {
				return Fail(Rejectf("Stale", "the counter is %d, not %d", n, cmd.Want))
			}
			e := Encoder{}
			e.Uvarint(n + 1)
			b.Set(Key('x', cmd.Name), e.Buf)
			return &Result{Value: &count{N: n + 1}}
		},
		DecodeValue: func(d *Decoder) Value { return &count{N: d.Uvarint()} }})
	return reg
}

// TestCheckIdempotencyAndStaleRefusals: CheckIdempotency applies nothing and keeps nothing for
// an unused key, and answers a used key as any command would (stored result or mismatch); a
// stale refusal keeps nothing, so the proposer's next plan under the same key applies, once.
func TestCheckIdempotencyAndStaleRefusals(t *testing.T) {
	tm := newTestMachine(t, plannedRegistry())
	check := func(key, body string) *Result {
		return tm.apply(Envelope{Command: &CheckIdempotency{ProjectID: "p", OwnerID: "a"}, Idempotency: idem(key, body)})[0]
	}
	for range 2 { // a check keeps nothing: the second finds the key unused too
		if r := check("k", "req"); r.Replayed || r.Err == nil || r.Err.Code != CodeIdempotencyKeyUnused {
			t.Fatalf("unused key: %+v", r)
		}
	}
	// A plan gone stale (the proposer read 1, the counter is 0): refused, kept under no key.
	if r := tm.apply(Envelope{Command: &planned{Name: "a", Want: 1}, Idempotency: idem("k", "req")})[0]; r.Replayed || r.Err == nil || r.Err.Code != "Stale" {
		t.Fatalf("stale plan: %+v", r)
	}
	if r := check("k", "req"); r.Err == nil || r.Err.Code != CodeIdempotencyKeyUnused {
		t.Fatalf("after a stale refusal: %+v", r)
	}
	// The next plan under the same key applies; every later use answers it.
	if r := tm.apply(Envelope{Command: &planned{Name: "a", Want: 0}, Idempotency: idem("k", "req")})[0]; r.Err != nil || r.Replayed || r.Value.(*count).N != 1 {
		t.Fatalf("fresh plan: %+v", r)
	}
	if r := check("k", "req"); !r.Replayed || r.Err != nil || r.Value.(*count).N != 1 {
		t.Fatalf("check of a used key: %+v", r)
	}
	// A retry that planned from the new state (Want 1) is answered the stored result: not applied.
	if r := tm.apply(Envelope{Command: &planned{Name: "a", Want: 1}, Idempotency: idem("k", "req")})[0]; !r.Replayed || r.Value.(*count).N != 1 {
		t.Fatalf("replay: %+v", r)
	}
	if r := check("k", "other request"); r.Err == nil || r.Err.Code != CodeIdempotencyKeyMismatch {
		t.Fatalf("check with another request: %+v", r)
	}
	// Nothing but the one plan applied.
	if r := tm.apply(Envelope{Command: &planned{Name: "a", Want: 1}})[0]; r.Err != nil || r.Value.(*count).N != 2 {
		t.Fatalf("the counter after: %+v", r)
	}
	// Another scope's key is its own.
	other := idem("k", "req")
	other.Scope = "q"
	if r := tm.apply(Envelope{Command: &CheckIdempotency{ProjectID: "p", OwnerID: "a"}, Idempotency: other})[0]; r.Err == nil || r.Err.Code != CodeIdempotencyKeyUnused {
		t.Fatalf("other scope: %+v", r)
	}
}
