package nodelog

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// crash stops l as a killed process would: no flush, no cleared binding, no final commit
// (callers crash only when no append is in flight). Files are closed only so that the same
// process can open them again; closing writes nothing.
func (l *Log) crash(t *testing.T) {
	t.Helper()
	// Stop the goroutines first: nothing may run (flush, delete segments) after a crash.
	l.closeOnce.Do(func() {
		close(l.closing)
		<-l.commitDone
		<-l.flushDone
		_ = l.file.Close()
		l.metrics.unregister()
	})
	l.mu.Lock()
	stores := make([]*Store, 0, len(l.stores))
	for _, s := range l.stores {
		stores = append(stores, s)
	}
	l.stores = map[string]*Store{}
	l.closed = true
	pending := len(l.current.buf)
	l.mu.Unlock()
	if pending != 0 {
		t.Fatalf("crash with %d bytes pending", pending)
	}
	for _, s := range stores {
		s.flushMu.Lock()
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.flushMu.Unlock()
		if err := s.bolt.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func openLog(t *testing.T, dir string, tune func(*Options)) *Log {
	t.Helper()
	opts := Options{Dir: dir, Mode: ModeShared, FlushInterval: time.Hour, Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))}
	if tune != nil {
		tune(&opts)
	}
	l, err := Open(opts)
	if err != nil {
		t.Fatalf("open log: %v", err)
	}
	return l
}

func openStore(t *testing.T, l *Log, key, dir string) *Store {
	t.Helper()
	s, err := l.OpenStore(key, filepath.Join(dir, key+".db"))
	if err != nil {
		t.Fatalf("open store %s: %v", key, err)
	}
	return s
}

func entries(first, last, term uint64) []*raft.Log {
	var logs []*raft.Log
	for i := first; i <= last; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: term, Type: raft.LogCommand,
			Data: []byte(fmt.Sprintf("entry %d term %d", i, term)), AppendedAt: time.Unix(1_700_000_000, int64(i))})
	}
	return logs
}

// checkRange asserts the store holds exactly [first, last], each entry with term.
func checkRange(t *testing.T, s raft.LogStore, first, last uint64, termOf func(uint64) uint64) {
	t.Helper()
	gotFirst, err := s.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	gotLast, err := s.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	if gotFirst != first || gotLast != last {
		t.Fatalf("range [%d, %d], want [%d, %d]", gotFirst, gotLast, first, last)
	}
	for i := first; i <= last && last != 0; i++ {
		var l raft.Log
		if err := s.GetLog(i, &l); err != nil {
			t.Fatalf("get %d: %v", i, err)
		}
		term := termOf(i)
		if l.Index != i || l.Term != term || string(l.Data) != fmt.Sprintf("entry %d term %d", i, term) ||
			!l.AppendedAt.Equal(time.Unix(1_700_000_000, int64(i))) {
			t.Fatalf("entry %d = %+v, want term %d", i, l, term)
		}
	}
}

func term1(uint64) uint64 { return 1 }

func TestStoreLogsReadableAfterCrashAndReplayedIntoBolt(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, nil)
	s := openStore(t, l, "7", dir)
	for first := uint64(1); first <= 100; first += 10 {
		if err := s.StoreLogs(entries(first, first+9, 1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 3); err != nil {
		t.Fatal(err)
	}
	checkRange(t, s, 1, 100, term1)
	l.crash(t)

	// The bolt file alone does not have them (they were only in the node log) ...
	bolt, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "7.db")})
	if err != nil {
		t.Fatal(err)
	}
	if last, _ := bolt.LastIndex(); last != 0 {
		t.Fatalf("bolt last index %d before replay, want 0", last)
	}
	if err := bolt.Close(); err != nil {
		t.Fatal(err)
	}
	// ... and refuses to be opened without it.
	perShard, err := Open(Options{Mode: ModePerShardSync})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := perShard.OpenStore("7", filepath.Join(dir, "7.db")); !errors.Is(err, ErrBoundToNodeLog) {
		t.Fatalf("per-shard open of a bound bolt file: %v, want ErrBoundToNodeLog", err)
	}

	l = openLog(t, dir, nil)
	s = openStore(t, l, "7", dir)
	checkRange(t, s, 1, 100, term1)
	if term, err := s.GetUint64([]byte("CurrentTerm")); err != nil || term != 3 {
		t.Fatalf("CurrentTerm %d, %v", term, err)
	}
	s.mu.RLock()
	inMemory := len(s.mem)
	s.mu.RUnlock()
	if inMemory != 0 {
		t.Fatalf("%d entries still in memory after the replay, want all in bolt", inMemory)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	// Closed cleanly: the bolt file holds everything and opens in per-shard sync mode.
	ps, err := perShard.OpenStore("7", filepath.Join(dir, "7.db"))
	if err != nil {
		t.Fatal(err)
	}
	checkRange(t, ps, 1, 100, term1)
	if err := ps.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestDeleteRangeSurvivesCrash(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, nil)
	s := openStore(t, l, "1", dir)
	if err := s.StoreLogs(entries(1, 60, 1)); err != nil {
		t.Fatal(err)
	}
	if err := s.flush(); err != nil { // 1-60 in bolt, the rest only in the log
		t.Fatal(err)
	}
	if err := s.StoreLogs(entries(61, 100, 1)); err != nil {
		t.Fatal(err)
	}
	// Snapshot compaction across bolt and memory, then a follower's conflict: the tail of
	// term 1 replaced by term 2 entries, shorter than it was.
	if err := s.DeleteRange(1, 70); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRange(90, 100); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLogs(entries(90, 95, 2)); err != nil {
		t.Fatal(err)
	}
	termOf := func(i uint64) uint64 {
		if i >= 90 {
			return 2
		}
		return 1
	}
	checkRange(t, s, 71, 95, termOf)
	l.crash(t)

	l = openLog(t, dir, nil)
	s = openStore(t, l, "1", dir)
	checkRange(t, s, 71, 95, termOf)
	var gone raft.Log
	for _, i := range []uint64{1, 60, 70, 96, 100} {
		if err := s.GetLog(i, &gone); !errors.Is(err, raft.ErrLogNotFound) {
			t.Fatalf("entry %d after delete: %v, want ErrLogNotFound", i, err)
		}
	}
	if err := l.Close(); err != nil { // closes the store too
		t.Fatal(err)
	}
}

func TestConcurrentStoresShareGroupCommits(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, func(o *Options) { o.SegmentMaxBytes = 64 << 10; o.FlushBytes = 16 << 10 })
	const (
		storeCount = 8
		batchCount = 100
		batchSize  = 5
	)
	stores := make([]*Store, storeCount)
	for k := range stores {
		stores[k] = openStore(t, l, strconv.Itoa(k), dir)
	}
	fsyncsBefore := l.FsyncCount()
	var wg sync.WaitGroup
	errs := make(chan error, storeCount)
	for k := range stores {
		wg.Go(func() {
			for b := range uint64(batchCount) {
				first := b*batchSize + 1
				if err := stores[k].StoreLogs(entries(first, first+batchSize-1, 1)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	walFsyncs := l.FsyncCount() - fsyncsBefore
	t.Logf("%d appends, %d fsyncs (log and bolt flushes)", storeCount*batchCount, walFsyncs)
	for _, s := range stores {
		checkRange(t, s, 1, batchCount*batchSize, term1)
	}
	l.crash(t)

	l = openLog(t, dir, nil)
	for k := range stores {
		s := openStore(t, l, strconv.Itoa(k), dir)
		checkRange(t, s, 1, batchCount*batchSize, term1)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestFlushedSegmentsAreDeleted(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, func(o *Options) { o.SegmentMaxBytes = 4 << 10 })
	l.flushPaused.Store(true)
	busy := openStore(t, l, "busy", dir)
	quiet := openStore(t, l, "quiet", dir)
	if err := quiet.StoreLogs(entries(1, 1, 1)); err != nil {
		t.Fatal(err)
	}
	for first := uint64(1); first <= 200; first += 10 {
		if err := busy.StoreLogs(entries(first, first+9, 1)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(l.segmentNames()); n < 3 {
		t.Fatalf("%d segments, want several", n)
	}
	// quiet's one record pins the first segment until quiet flushes too.
	if err := busy.flush(); err != nil {
		t.Fatal(err)
	}
	if err := l.deleteFlushedSegments(); err != nil {
		t.Fatal(err)
	}
	if n := len(l.segmentNames()); n < 3 {
		t.Fatalf("%d segments after busy flushed, want the pinned ones kept", n)
	}
	if err := quiet.flush(); err != nil {
		t.Fatal(err)
	}
	if err := l.deleteFlushedSegments(); err != nil {
		t.Fatal(err)
	}
	if names := l.segmentNames(); len(names) != 1 {
		t.Fatalf("segments %v after every store flushed, want only the one being written", names)
	}
	l.crash(t)

	// The surviving segment's header carries the seq, so seqs keep rising.
	l = openLog(t, dir, nil)
	if l.nextSeq < 22 {
		t.Fatalf("next seq %d after reopen, want above the 21 records written", l.nextSeq)
	}
	busy = openStore(t, l, "busy", dir)
	quiet = openStore(t, l, "quiet", dir)
	checkRange(t, busy, 1, 200, term1)
	checkRange(t, quiet, 1, 1, term1)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestTornTailIsTruncated cuts or corrupts the last record of the last segment: Open keeps
// every record before it and truncates the file there.
func TestTornTailIsTruncated(t *testing.T) {
	for _, damage := range []string{"cut", "flip", "garbage"} {
		t.Run(damage, func(t *testing.T) {
			dir := t.TempDir()
			l := openLog(t, dir, nil)
			s := openStore(t, l, "1", dir)
			for first := uint64(1); first <= 30; first += 10 {
				if err := s.StoreLogs(entries(first, first+9, 1)); err != nil {
					t.Fatal(err)
				}
			}
			segment := filepath.Join(dir, l.segmentNames()[0])
			l.crash(t)
			info, err := os.Stat(segment)
			if err != nil {
				t.Fatal(err)
			}
			size := info.Size()
			file, err := os.OpenFile(segment, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			switch damage {
			case "cut":
				err = file.Truncate(size - 7)
			case "flip":
				_, err = file.WriteAt([]byte{0xff}, size-20)
			case "garbage": // a whole record's worth of zeros and noise after the last record
				_, err = file.WriteAt(append(make([]byte, 40), 1, 2, 3), size)
			}
			if err != nil {
				t.Fatal(err)
			}
			_ = file.Close()

			l = openLog(t, dir, nil)
			s = openStore(t, l, "1", dir)
			last := uint64(20)
			if damage == "garbage" {
				last = 30
			}
			checkRange(t, s, 1, last, term1)
			info, err = os.Stat(segment)
			if err != nil {
				t.Fatal(err)
			}
			if damage != "garbage" && info.Size() >= size-7 {
				t.Fatalf("segment %d bytes, was %d: the torn record was not truncated", info.Size(), size)
			}
			// New records continue after the truncation and survive another crash.
			if err := s.StoreLogs(entries(last+1, last+5, 1)); err != nil {
				t.Fatal(err)
			}
			l.crash(t)
			l = openLog(t, dir, nil)
			s = openStore(t, l, "1", dir)
			checkRange(t, s, 1, last+5, term1)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestCorruptionBeforeTheLastSegmentFailsOpen(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, func(o *Options) { o.SegmentMaxBytes = 1 << 10 })
	l.flushPaused.Store(true)
	s := openStore(t, l, "1", dir)
	for first := uint64(1); first <= 50; first += 10 {
		if err := s.StoreLogs(entries(first, first+9, 1)); err != nil {
			t.Fatal(err)
		}
	}
	first := filepath.Join(dir, l.segmentNames()[0])
	l.crash(t)
	file, err := os.OpenFile(first, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := file.WriteAt([]byte{0xff, 0xff}, segmentHeaderBytes+30); err != nil {
		t.Fatal(err)
	}
	_ = file.Close()
	if _, err := Open(Options{Dir: dir}); err == nil {
		t.Fatal("open succeeded over a corrupt record in a synced segment")
	}
}

func TestRecordDecodeRejectsDamage(t *testing.T) {
	whole := appendEntriesRecord(nil, 9, "shard", entries(1, 3, 4))
	r, err := decodeRecord(whole)
	if err != nil || r.seq != 9 || r.key != "shard" || len(r.entries) != 3 || r.entries[2].Term != 4 {
		t.Fatalf("round trip: %+v, %v", r, err)
	}
	for i := range whole {
		damaged := append([]byte(nil), whole...)
		damaged[i] ^= 0x40
		if _, err := decodeRecord(damaged); !errors.Is(err, errBadRecord) {
			t.Fatalf("byte %d flipped: %v, want errBadRecord", i, err)
		}
	}
	for n := range len(whole) {
		if _, err := decodeRecord(whole[:n]); err == nil {
			t.Fatalf("record cut to %d bytes decoded", n)
		}
	}
}

// TestKillNine runs a child process that appends through the node log and prints each
// index it was acknowledged, kills it with SIGKILL mid-stream, and checks that every
// acknowledged entry is there after reopening.
func TestKillNine(t *testing.T) {
	if dir := os.Getenv("NODELOG_KILL_CHILD_DIR"); dir != "" {
		killChild(dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run", "^TestKillNine$", "-test.count=1")
	cmd.Env = append(os.Environ(), "NODELOG_KILL_CHILD_DIR="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := make(map[string]uint64)
	lines := bufio.NewScanner(stdout)
	for count := 0; count < 400 && lines.Scan(); count++ {
		var key string
		var index uint64
		if _, err := fmt.Sscanf(lines.Text(), "acked %s %d", &key, &index); err == nil {
			acked[key] = index
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if len(acked) == 0 {
		t.Fatal("the child acknowledged nothing")
	}
	l := openLog(t, dir, nil)
	for key, last := range acked {
		s := openStore(t, l, key, dir)
		gotLast, err := s.LastIndex()
		if err != nil || gotLast < last {
			t.Fatalf("store %s: last index %d (%v) after kill -9, acknowledged %d", key, gotLast, err, last)
		}
		first, err := s.FirstIndex()
		if err != nil || first > gotLast-7 {
			t.Fatalf("store %s: first index %d (%v), last %d", key, first, err, gotLast)
		}
		checkRange(t, s, first, gotLast, term1)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// killChild appends to three stores from three goroutines until it is killed.
func killChild(dir string) {
	l, err := Open(Options{Dir: dir, SegmentMaxBytes: 32 << 10, FlushBytes: 8 << 10, FlushInterval: 5 * time.Millisecond})
	if err != nil {
		panic(err)
	}
	var out sync.Mutex
	var wg sync.WaitGroup
	for k := range 3 {
		s, err := l.OpenStore(strconv.Itoa(k), filepath.Join(dir, strconv.Itoa(k)+".db"))
		if err != nil {
			panic(err)
		}
		wg.Go(func() {
			for first := uint64(1); ; first += 4 {
				if err := s.StoreLogs(entries(first, first+3, 1)); err != nil {
					panic(err)
				}
				if first > 8 && first%40 == 1 { // compaction, as after a snapshot
					if err := s.DeleteRange(1, first-8); err != nil {
						panic(err)
					}
				}
				out.Lock()
				fmt.Printf("acked %d %d\n", k, first+3)
				out.Unlock()
			}
		})
	}
	wg.Wait()
}

// testWriter sends log lines to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// TestFreshStoreIgnoresOldRecordsOfItsKey: a replica whose folder was wiped and that is added
// again (ReplaceNode) under the same key must start empty, not from its previous life's records.
func TestFreshStoreIgnoresOldRecordsOfItsKey(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, nil)
	s := openStore(t, l, "3", dir)
	if err := s.StoreLogs(entries(1, 10, 1)); err != nil {
		t.Fatal(err)
	}
	l.crash(t)
	if err := os.Remove(filepath.Join(dir, "3.db")); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, dir, nil)
	s = openStore(t, l, "3", dir)
	checkRange(t, s, 0, 0, term1)
	if err := s.StoreLogs(entries(1, 2, 5)); err != nil {
		t.Fatal(err)
	}
	l.crash(t)
	l = openLog(t, dir, nil)
	s = openStore(t, l, "3", dir)
	checkRange(t, s, 1, 2, func(uint64) uint64 { return 5 })
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestBoundStoreRefusesAnotherLog: a bolt file bound to one node log does not open behind a
// new one (its newest entries were in the lost log).
func TestBoundStoreRefusesAnotherLog(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, filepath.Join(dir, "log1"), nil)
	s := openStore(t, l, "1", dir)
	if err := s.StoreLogs(entries(1, 3, 1)); err != nil {
		t.Fatal(err)
	}
	l.crash(t)
	other := openLog(t, filepath.Join(dir, "log2"), nil)
	if _, err := other.OpenStore("1", filepath.Join(dir, "1.db")); err == nil {
		t.Fatal("a bolt file bound to a lost log opened behind another")
	}
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestMemoryBoundFlushesInline: with the flusher stopped, stores that write while the node is
// over MemoryMaxBytes flush themselves, so memory stays within the bound plus one write.
func TestMemoryBoundFlushesInline(t *testing.T) {
	dir := t.TempDir()
	const boundBytes = 4 << 10
	l := openLog(t, dir, func(o *Options) { o.MemoryMaxBytes = boundBytes })
	l.flushPaused.Store(true)
	stores := []*Store{openStore(t, l, "a", dir), openStore(t, l, "b", dir)}
	var writeMaxBytes int64
	for first := uint64(1); first <= 400; first += 10 {
		for _, s := range stores {
			logs := entries(first, first+9, 1)
			if err := s.StoreLogs(logs); err != nil {
				t.Fatal(err)
			}
			var written int64
			for _, entry := range logs {
				written += int64(entryBytes(entry))
			}
			writeMaxBytes = max(writeMaxBytes, written)
			if held := l.memBytes.Load(); held > boundBytes+2*writeMaxBytes {
				t.Fatalf("node holds %d bytes in memory, bound %d", held, boundBytes)
			}
		}
	}
	for _, s := range stores {
		checkRange(t, s, 1, 400, term1)
		if last, err := s.bolt.LastIndex(); err != nil || last < 300 {
			t.Fatalf("bolt last index %d (%v): inline flushes did not happen", last, err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if held := l.memBytes.Load(); held != 0 {
		t.Fatalf("%d bytes counted in memory after close", held)
	}
}

// Every group commit is timed: the histogram counts as many commits as the log fsynced its
// segment for them, and registers beside the fsync counter.
func TestCommitsAreTimed(t *testing.T) {
	dir := t.TempDir()
	registry := prometheus.NewRegistry()
	l := openLog(t, dir, func(o *Options) { o.Registerer = registry })
	s := openStore(t, l, "0", dir)
	for b := range uint64(5) {
		if err := s.StoreLogs(entries(b*2+1, b*2+2, 1)); err != nil {
			t.Fatal(err)
		}
	}
	families, err := registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var commits uint64
	var walFsyncs float64
	for _, f := range families {
		switch f.GetName() {
		case "gigaledger_raftlog_commit_seconds":
			commits = f.GetMetric()[0].GetHistogram().GetSampleCount()
		case "gigaledger_raftlog_fsyncs_total":
			for _, m := range f.GetMetric() {
				for _, label := range m.GetLabel() {
					if label.GetName() == "kind" && label.GetValue() == "wal" {
						walFsyncs = m.GetCounter().GetValue()
					}
				}
			}
		}
	}
	// Five appends, each its own group commit (nothing else writes); the segment's creation
	// fsyncs its header and the directory without a commit.
	if commits < 5 || float64(commits) > walFsyncs {
		t.Fatalf("%d timed commits, %v wal fsyncs; want at least 5 commits, each one fsync", commits, walFsyncs)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}
