package fsm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"
)

// historyLog is a log with history: a rules raise (raises[0]), the chain started, then batches
// of bumps with a second raise (raises[1]) in the middle, so that
// the same log can put the chain's records in the state store, the history store, or first one
// then the other.
func historyLog(tm *testMachine, raises [2]uint32, from, to int) {
	tm.t.Helper()
	for i := from; i < to; i++ {
		var envs []Envelope
		switch {
		case i == 0:
			envs = []Envelope{{Command: &RaiseRules{Version: raises[0]}}}
		case i == 1:
			envs = []Envelope{{Command: &StartHistoryChain{}}}
		case i == 10:
			envs = []Envelope{{Command: &RaiseRules{Version: raises[1]}}}
		default:
			for k := range 20 {
				envs = append(envs, Envelope{Command: &bump{Name: fmt.Sprintf("n-%03d", (i*7+k)%53), By: uint64(i*20 + k + 1)}})
			}
		}
		for _, r := range tm.apply(envs...) {
			if r.Err != nil {
				tm.t.Fatalf("batch %d: %v", i, r.Err)
			}
		}
	}
}

// chainKeys counts the chain records a Pebble store holds.
func chainKeys(t *testing.T, r pebble.Reader) int {
	t.Helper()
	if r == nil {
		return 0
	}
	n := 0
	if err := scanReader(r, []byte{prefixChain}, func(_, _ []byte) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// The history store changes where the chain's records are kept, never what any replica
// computes: the same log with the records in the state store, in the history store, or first
// in one and then in the other (the rules raised midway, as an upgraded cluster does) gives
// the same digest, the same chain head and the same verified history, also after a restart, a
// record stream and a checkpoint stream.
func TestHistoryStoreKeepsTheChainElsewhereAndNothingElseChanges(t *testing.T) {
	reg := historyRegistry()
	variants := []struct {
		name          string
		raises        [2]uint32
		state, histry bool // where chain records end up
	}{
		{"state store", [2]uint32{RulesHistoryStore - 1, RulesHistoryStore - 1}, true, false},
		{"history store", [2]uint32{RulesHistoryStore, RulesHistoryStore}, false, true},
		{"both, raised midway", [2]uint32{RulesHistoryStore - 1, RulesHistoryStore}, true, true},
	}
	const batches = 20
	var wantDigest [32]byte
	var wantHead ChainHead
	var wantReport *HistoryReport
	for i, v := range variants {
		tm := newTestMachine(t, reg)
		historyLog(tm, v.raises, 0, batches)
		digest := tm.digest()
		head, ok := tm.m.HistoryChainHead()
		report, err := tm.m.VerifyHistory()
		if err != nil || !ok {
			t.Fatalf("%s: verify %v, head %v", v.name, err, ok)
		}
		inState, inHistory := chainKeys(t, tm.m.store.db), chainKeys(t, tm.m.store.historyReader())
		if (inState > 0) != v.state || (inHistory > 0) != v.histry || inState+inHistory != int(report.Records) {
			t.Fatalf("%s: %d records in the state store, %d in the history store, %d verified", v.name, inState, inHistory, report.Records)
		}
		// GET /debug/digest's reading: digest, applied index and head of one view.
		if d, applied, h, started, err := tm.m.DigestAndHead(); err != nil || d != digest || applied != tm.index || h != head || !started {
			t.Fatalf("%s: DigestAndHead %x %d %x %v (%v), want %x %d %x", v.name, d, applied, h, started, err, digest, tm.index, head)
		}
		if i == 0 {
			wantDigest, wantHead, wantReport = digest, head, report
		} else if digest != wantDigest || head != wantHead || *report != *wantReport {
			t.Fatalf("%s: digest, head or report differ from the state store's:\n%+v\n%+v", v.name, report, wantReport)
		}

		// A restart reads the head back and goes on from it.
		dir := tm.m.store.dir
		if err := tm.m.Close(); err != nil {
			t.Fatal(err)
		}
		m, err := Open(dir, nil, reg)
		if err != nil {
			t.Fatalf("%s: reopen: %v", v.name, err)
		}
		t.Cleanup(func() { m.Close() })
		tm.m = m
		if h, _ := m.HistoryChainHead(); h != head || tm.digest() != digest {
			t.Fatalf("%s: head or digest changed across a restart", v.name)
		}

		// A record stream and a checkpoint stream carry the records wherever they are.
		snap, err := m.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		var records bytes.Buffer
		if err := snap.Persist(&records); err != nil {
			t.Fatal(err)
		}
		snap.Release()
		descriptor, err := m.Checkpoint()
		if err != nil {
			t.Fatal(err)
		}
		checkpoint := checkpointBytes(t, m, descriptor)
		wantV2 := v.histry
		if bytes.HasPrefix(checkpoint, checkpointMagicV2) != wantV2 {
			t.Fatalf("%s: checkpoint stream starts %q", v.name, checkpoint[:len(checkpointMagic)])
		}
		further := newTestMachine(t, reg) // the same log, three batches further
		historyLog(further, v.raises, 0, batches+3)
		for _, stream := range [][]byte{records.Bytes(), checkpoint} {
			dst := newTestMachine(t, reg)
			if err := restoreBytes(dst.m, stream); err != nil {
				t.Fatalf("%s: restore: %v", v.name, err)
			}
			dst.index, dst.now = tm.index, tm.now
			if h, _ := dst.m.HistoryChainHead(); h != head || dst.digest() != digest {
				t.Fatalf("%s: the restored store's head or digest differ", v.name)
			}
			if _, err := dst.m.VerifyHistory(); err != nil {
				t.Fatalf("%s: verify the restored store: %v", v.name, err)
			}
			// It goes on as a store that never left.
			historyLog(dst, v.raises, batches, batches+3)
			h1, _ := dst.m.HistoryChainHead()
			h2, _ := further.m.HistoryChainHead()
			if h1 != h2 || dst.digest() != further.digest() {
				t.Fatalf("%s: restored store diverged", v.name)
			}
		}
	}
}

// A record in the history store, changed or removed, is named by VerifyHistory, as one in the
// state store is.
func TestVerifyHistoryReadsTheHistoryStore(t *testing.T) {
	for _, c := range []struct {
		name, want string
		tamper     func(db *pebble.DB, v []byte) error
	}{
		{"changed", "log index 6: previous hash", func(db *pebble.DB, v []byte) error {
			v[len(v)-1] ^= 1
			return db.Set(chainKey(5), v, pebble.NoSync)
		}},
		{"removed", "log index 6: previous hash", func(db *pebble.DB, _ []byte) error {
			return db.Delete(chainKey(5), pebble.NoSync)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			tm := newTestMachine(t, historyRegistry())
			historyLog(tm, [2]uint32{RulesHistoryStore, RulesHistoryStore}, 0, 8)
			if _, err := tm.m.VerifyHistory(); err != nil {
				t.Fatal(err)
			}
			v, closer, err := tm.m.store.history.Get(chainKey(5))
			if err != nil {
				t.Fatal(err)
			}
			v = append([]byte(nil), v...)
			closer.Close()
			if err := c.tamper(tm.m.store.history, v); err != nil {
				t.Fatal(err)
			}
			_, err = tm.m.VerifyHistory()
			var mismatch *HistoryMismatch
			if !errors.As(err, &mismatch) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want a mismatch containing %q", err, c.want)
			}
		})
	}
}

// A history store that lost its newest records (they never reached the disk before the state
// store's flush: a bug or a disk that lies) would fork this replica's chain from the others'.
// The head the state store recorded catches it, and the store refuses to open.
func TestAHistoryStoreBehindTheStateStoreIsRefused(t *testing.T) {
	reg := historyRegistry()
	tm := newTestMachine(t, reg)
	historyLog(tm, [2]uint32{RulesHistoryStore, RulesHistoryStore}, 0, 8)
	dir := tm.m.store.dir
	if err := tm.m.Close(); err != nil {
		t.Fatal(err)
	}
	history, merger, err := openHistory(filepath.Join(dir, storeDirName), false, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := history.Delete(chainKey(8), pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	if err := closeHistory(history, merger, true); err != nil {
		t.Fatal(err)
	}
	m, err := Open(dir, nil, reg)
	if err == nil {
		m.Close()
		t.Fatal("opened a store whose history store lost its newest record")
	}
	if !strings.Contains(err.Error(), "names the head at log index 8") || !strings.Contains(err.Error(), "lost records") {
		t.Fatalf("error %q", err)
	}
}

// A store at rules 4 must not be run by a release from before the history store: it would not
// see the history store's records, go on from an old head and fork (probe of session 16, with
// the release before). Such a release refuses a clock record of a version it does not know, so
// from rules 4 on the clock record is version 3. And a store such a release has written to
// anyway (a chain record in the state store after the history store's first) is refused at
// open, as is one whose history store went missing, each with what it found.
func TestReleasesBeforeTheHistoryStoreCannotRunOnIt(t *testing.T) {
	reg := historyRegistry()
	clockVersionOf := func(tm *testMachine) byte {
		v, err := tm.m.store.Get(keyClock)
		if err != nil || len(v) == 0 {
			t.Fatalf("clock record %x: %v", v, err)
		}
		return v[0]
	}
	before := newTestMachine(t, reg)
	historyLog(before, [2]uint32{RulesHistoryStore - 1, RulesHistoryStore - 1}, 0, 8)
	if got := clockVersionOf(before); got != clockVersion {
		t.Fatalf("clock record version %d at rules %d, want %d", got, RulesHistoryStore-1, clockVersion)
	}
	tm := newTestMachine(t, reg)
	historyLog(tm, [2]uint32{RulesHistoryStore - 1, RulesHistoryStore}, 0, 16)
	if got := clockVersionOf(tm); got != clockVersionHistoryStore {
		t.Fatalf("clock record version %d at rules %d, want %d", got, RulesHistoryStore, clockVersionHistoryStore)
	}
	dir := tm.m.store.dir
	if err := tm.m.Close(); err != nil {
		t.Fatal(err)
	}
	backup := t.TempDir()
	if err := os.CopyFS(backup, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	reopen := func(t *testing.T, dir, want string) {
		t.Helper()
		m, err := Open(dir, nil, reg)
		if err == nil {
			m.Close()
			t.Fatalf("opened; want an error containing %q", want)
		}
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q, want it to contain %q", err, want)
		}
	}
	t.Run("state store written after the history store", func(t *testing.T) {
		// What the release before did: a record after the history store's, in the state store.
		db, err := openPebble(filepath.Join(dir, storeDirName), false, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Set(chainKey(17), []byte{chainRecordVersion}, pebble.NoSync); err != nil {
			t.Fatal(err)
		}
		if err := db.Flush(); err != nil {
			t.Fatal(err)
		}
		db.Close()
		reopen(t, dir, "the state store holds a chain record at log index 17, after the history store's first at 12 (a release from before the history store ran on this store")
	})
	t.Run("history store gone", func(t *testing.T) {
		if err := os.RemoveAll(filepath.Join(backup, storeDirName, historyDirName)); err != nil {
			t.Fatal(err)
		}
		reopen(t, backup, "names the head at log index 16, and the history store's newest record up to it is missing (the history store holds no record)")
		// The refused open leaves the directory as it found it: no empty history store in the
		// way of one an operator puts back.
		if _, err := os.Stat(filepath.Join(backup, storeDirName, historyDirName)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("history store after a refused open: %v, want none", err)
		}
	})
}

// TestTheHistoryStoreMergesItsFlushedFiles writes records as apply does (growing keys, no log)
// and flushes every MiB, as state flushes do, until the history store has flushed many times:
// the merger folds the flushed files into larger ones below L0, every record stays readable in
// order, and closing while it may be merging is clean.
func TestTheHistoryStoreMergesItsFlushedFiles(t *testing.T) {
	saved := historyMergeFiles
	historyMergeFiles = 8
	t.Cleanup(func() { historyMergeFiles = saved })
	db, merger, err := openHistory(t.TempDir(), false, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	value := make([]byte, 64<<10)
	random := rand.New(rand.NewPCG(1, 2))
	for i := range value[:len(value)/2] {
		value[i] = byte(random.Uint32()) // half of it does not compress
	}
	const perFlush = (1 << 20) / (64 << 10)
	const records = 40 * perFlush // 40 flushes
	for i := uint64(1); i <= records; i++ {
		if err := db.Set(chainKey(i), value, pebble.NoSync); err != nil {
			t.Fatal(err)
		}
		if i%perFlush == 0 {
			if err := db.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	flushes := db.Metrics().Flush.Count
	if flushes < 30 {
		t.Fatalf("%d flushes, want at least 30 for the test to mean anything", flushes)
	}
	// The last flush woke the merger; wait until it has left fewer than a merge's worth in L0.
	deadline := time.Now().Add(time.Minute)
	for {
		m := db.Metrics()
		if m.Levels[0].NumFiles < int64(historyMergeFiles) && m.Compact.Count > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %d flushes, L0 holds %d files and %d compactions ran", flushes, m.Levels[0].NumFiles, m.Compact.Count)
		}
		time.Sleep(10 * time.Millisecond)
	}
	tables, err := db.SSTables()
	if err != nil {
		t.Fatal(err)
	}
	files, largest := 0, uint64(0)
	for _, level := range tables {
		for _, table := range level {
			files++
			largest = max(largest, table.Size)
		}
	}
	if files > int(flushes)/4 {
		t.Errorf("%d flushes left %d files", flushes, files)
	}
	if flushed := db.Metrics().Levels[0].BytesFlushed / uint64(flushes); largest < 4*flushed {
		t.Errorf("the largest file holds %d bytes, a flush wrote %d: nothing was merged", largest, flushed)
	}
	it, err := db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	next := uint64(1)
	for it.First(); it.Valid(); it.Next() {
		if !bytes.Equal(it.Key(), chainKey(next)) || !bytes.Equal(it.Value(), value) {
			t.Fatalf("record %d: key %x", next, it.Key())
		}
		next++
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	if next != records+1 {
		t.Fatalf("%d records read back, %d written", next-1, records)
	}
	// Close while the merger may be busy: one more flush wakes it.
	for i := uint64(records + 1); i <= records+perFlush; i++ {
		if err := db.Set(chainKey(i), value, pebble.NoSync); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.AsyncFlush(); err != nil {
		t.Fatal(err)
	}
	merger.stop()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// The release before wrote the history store with a log and synced it at state flushes; this
// one has none. A log it left (a crash, or a clean stop's memtable) is replayed at open.
func TestAHistoryLogFromTheReleaseBeforeIsReplayed(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, historyDirName)
	before, err := pebble.Open(path, &pebble.Options{Logger: quietPebbleLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= 100; i++ {
		if err := before.Set(chainKey(i), []byte("record"), pebble.NoSync); err != nil {
			t.Fatal(err)
		}
	}
	if err := before.LogData(nil, pebble.Sync); err != nil { // as a state flush began
		t.Fatal(err)
	}
	if err := before.Close(); err != nil { // no flush: the records are only in the log
		t.Fatal(err)
	}
	history, merger, err := openHistory(dir, false, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	last, _, err := lastChainRecord(nil, history, math.MaxUint64)
	if err := closeHistory(history, merger, true); err != nil {
		t.Fatal(err)
	}
	if err != nil || last == nil || binary.BigEndian.Uint64(last[1:]) != 100 {
		t.Fatalf("the history store ends at %x (%v), want log index 100", last, err)
	}
}
