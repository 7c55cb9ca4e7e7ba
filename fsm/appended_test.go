package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble"
)

const opNote Op = 1002

// note appends one record under its name (Batch.Append), and bumps a count in the state store.
type note struct{ Name, Text string }

func (*note) Op() Op              { return opNote }
func (c *note) Encode(e *Encoder) { e.String(c.Name); e.String(c.Text) }
func (c *note) Route() Route      { return Route{ProjectID: "p", OwnerID: c.Name} }

func appendRegistry() *Registry {
	reg := historyRegistry()
	reg.Add(OpSpec{Op: opNote, Name: "Note", Example: &note{Name: "a", Text: "t"},
		Decode: func(d *Decoder) Command { return &note{Name: d.String(), Text: d.String()} },
		Apply: func(b *Batch, c Command) *Result {
			cmd := c.(*note)
			b.Append(Key('n', cmd.Name), []byte(cmd.Text))
			return &Result{}
		}})
	return reg
}

func newAppendMachine(t *testing.T) *testMachine {
	tm := newTestMachine(t, appendRegistry())
	tm.apply(Envelope{Command: &RaiseRules{Version: RulesHistoryStore}})
	tm.apply(Envelope{Command: &StartHistoryChain{}})
	return tm
}

// Appended records are read back by (log index, key), survive a restart, are covered by the
// chain and the digest, and are not mistaken for chain records by the chain's readers.
func TestAppendedRecordsAreReadVerifiedAndKept(t *testing.T) {
	tm := newAppendMachine(t)
	var at []uint64
	for i := range 5 {
		tm.apply(Envelope{Command: &note{Name: fmt.Sprint("a", i), Text: fmt.Sprint("first ", i)}},
			Envelope{Command: &note{Name: fmt.Sprint("b", i), Text: fmt.Sprint("second ", i)}},
			Envelope{Command: &bump{Name: "c", By: 1}})
		at = append(at, tm.index)
	}
	check := func(m *Machine) {
		t.Helper()
		for i, index := range at {
			err := m.store.Read(func() error {
				v, err := m.store.GetAppended(index, Key('n', fmt.Sprint("b", i)))
				if err == nil && string(v) != fmt.Sprint("second ", i) {
					err = fmt.Errorf("index %d: %q", index, v)
				}
				if v, _ := m.store.GetAppended(index+1, Key('n', fmt.Sprint("b", i))); err == nil && v != nil {
					err = fmt.Errorf("found at the wrong index")
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		report, err := m.VerifyHistory()
		if err != nil {
			t.Fatal(err)
		}
		// 10 appended writes and 5 set writes in 5 records, and the genesis.
		if report.Records != 6 || report.Writes != 15 || report.HistoryKeys != 11 || !report.Fresh {
			t.Fatalf("report %+v", report)
		}
		if h, ok := m.HistoryChainHead(); !ok || h.Index != at[len(at)-1] {
			t.Fatalf("head %+v", h)
		}
	}
	check(tm.m)
	sets := 0
	if err := tm.m.store.HistorySetsAfter(0, func(_ uint64, _ int64, k, _ []byte) error {
		sets++
		return nil
	}); err != nil || sets != 15 {
		t.Fatalf("HistorySetsAfter: %d writes, %v", sets, err)
	}
	before, err := tm.m.Digest()
	if err != nil {
		t.Fatal(err)
	}
	dir := tm.m.store.dir
	if err := tm.m.Close(); err != nil {
		t.Fatal(err)
	}
	m, err := Open(dir, nil, appendRegistry())
	if err != nil {
		t.Fatal(err)
	}
	tm.m = m
	t.Cleanup(func() { m.Close() })
	check(m)
	if after, err := m.Digest(); err != nil || after != before {
		t.Fatalf("digest after restart %x, before %x (%v)", after, before, err)
	}
	// The digest covers appended records, also without the chain's own records.
	without, err := m.DigestWithoutHistoryChain()
	if err != nil {
		t.Fatal(err)
	}
	k := appendedKey(at[0], Key('n', "a0"))
	if err := m.store.history.Set(k, []byte("changed"), pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	if changed, _ := m.DigestWithoutHistoryChain(); changed == without {
		t.Fatal("the digest does not cover appended records")
	}
}

// Tampering with appended records is named: a changed value, a removed record, a forged one.
func TestVerifyHistoryNamesAppendedMismatches(t *testing.T) {
	build := func(t *testing.T) *testMachine {
		tm := newAppendMachine(t)
		for i := range 3 {
			tm.apply(Envelope{Command: &note{Name: fmt.Sprint("a", i), Text: "x"}})
		}
		return tm
	}
	for _, tc := range []struct {
		name   string
		tamper func(h *pebble.DB, index uint64) error
		key    []byte
		reason string
	}{
		{"changed", func(h *pebble.DB, index uint64) error {
			return h.Set(appendedKey(index-1, Key('n', "a1")), []byte("y"), pebble.NoSync)
		}, Key('n', "a1"), "differs"},
		{"removed", func(h *pebble.DB, index uint64) error {
			return h.Delete(appendedKey(index-1, Key('n', "a1")), pebble.NoSync)
		}, Key('n', "a1"), "missing"},
		{"forged", func(h *pebble.DB, index uint64) error {
			return h.Set(appendedKey(index, Key('n', "forged")), []byte("y"), pebble.NoSync)
		}, nil, "not in the history chain"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tm := build(t)
			if err := tc.tamper(tm.m.store.history, tm.index); err != nil {
				t.Fatal(err)
			}
			_, err := tm.m.VerifyHistory()
			var mismatch *HistoryMismatch
			if !errors.As(err, &mismatch) || !bytes.Contains([]byte(mismatch.Reason), []byte(tc.reason)) {
				t.Fatalf("got %v", err)
			}
			if tc.key != nil && !bytes.Equal(mismatch.Key, tc.key) {
				t.Fatalf("named key %q, want %q", mismatch.Key, tc.key)
			}
		})
	}
}

// A batch's appended records above the applied index (a crash lost the state batch) are trimmed
// at open, with the record, and written again by the replay.
func TestAppendedRecordsAboveTheAppliedIndexAreTrimmed(t *testing.T) {
	tm := newAppendMachine(t)
	tm.apply(Envelope{Command: &note{Name: "a", Text: "kept"}})
	kept := tm.index
	// What a crash leaves: the history store has a batch the state store never got.
	hb := tm.m.store.history.NewBatch()
	lost := kept + 1
	if err := hb.Set(chainKey(lost), []byte("record"), nil); err != nil {
		t.Fatal(err)
	}
	if err := hb.Set(appendedKey(lost, Key('n', "b")), []byte("lost"), nil); err != nil {
		t.Fatal(err)
	}
	if err := hb.Commit(pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	if err := tm.m.store.trimHistory(tm.m.AppliedIndex()); err != nil {
		t.Fatal(err)
	}
	err := tm.m.store.Read(func() error {
		if v, err := tm.m.store.GetAppended(lost, Key('n', "b")); err != nil || v != nil {
			return fmt.Errorf("lost record still there: %q %v", v, err)
		}
		if v, err := tm.m.store.GetAppended(kept, Key('n', "a")); err != nil || string(v) != "kept" {
			return fmt.Errorf("kept record: %q %v", v, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tm.m.VerifyHistory(); err != nil {
		t.Fatal(err)
	}
}

// A replica restored from either kind of snapshot stream reads the appended records: a
// checkpoint stream carries the history store; a record stream (Snapshot: one store) puts them
// into the state store, where GetAppended and VerifyHistory look too.
func TestAppendedRecordsAfterARestore(t *testing.T) {
	src := newAppendMachine(t)
	for i := range 20 {
		src.apply(Envelope{Command: &note{Name: fmt.Sprint("a", i), Text: fmt.Sprint("text ", i)}})
	}
	checkpoint, err := src.m.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	snap, err := src.m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var records bytes.Buffer
	if err := snap.Persist(&records); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	want := src.digest()
	for name, stream := range map[string][]byte{"checkpoint stream": checkpointBytes(t, src.m, checkpoint), "record stream": records.Bytes()} {
		t.Run(name, func(t *testing.T) {
			dst := newAppendMachine(t)
			dst.apply(Envelope{Command: &note{Name: "replaced", Text: "gone"}})
			if err := restoreBytes(dst.m, stream); err != nil {
				t.Fatal(err)
			}
			if dst.digest() != want {
				t.Fatal("the restored store differs from its source")
			}
			err := dst.m.store.Read(func() error {
				for i := range 20 {
					v, err := dst.m.store.GetAppended(uint64(3+i), Key('n', fmt.Sprint("a", i)))
					if err == nil && string(v) != fmt.Sprint("text ", i) {
						err = fmt.Errorf("record %d: %q", i, v)
					}
					if err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if report, err := dst.m.VerifyHistory(); err != nil || report.HistoryKeys != 20 {
				t.Fatalf("verify: %+v %v", report, err)
			}
		})
	}
}
