package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// bumpMany applies count bumps of distinct names in batches of 500: count keys of history.
func (tm *testMachine) bumpMany(prefix string, count int) {
	tm.t.Helper()
	var envs []Envelope
	for i := range count {
		envs = append(envs, Envelope{Command: &bump{Name: fmt.Sprintf("%s-%08d", prefix, i), By: uint64(i + 1)}})
		if len(envs) == 500 || i == count-1 {
			for _, r := range tm.apply(envs...) {
				if r.Err != nil {
					tm.t.Fatalf("bump: %v", r.Err)
				}
			}
			envs = nil
		}
	}
}

func (tm *testMachine) digest() [32]byte {
	tm.t.Helper()
	d, err := tm.m.Digest()
	if err != nil {
		tm.t.Fatal(err)
	}
	return d
}

// checkpointBytes reads the whole checkpoint stream of descriptor and checks its announced
// length.
func checkpointBytes(t *testing.T, m *Machine, descriptor []byte) []byte {
	t.Helper()
	stream, size, err := m.OpenCheckpoint(descriptor)
	if err != nil {
		t.Fatalf("open checkpoint: %v", err)
	}
	defer stream.Close()
	data, err := io.ReadAll(stream)
	if err != nil {
		t.Fatalf("read checkpoint: %v", err)
	}
	if int64(len(data)) != size {
		t.Fatalf("checkpoint stream is %d bytes, announced %d", len(data), size)
	}
	return data
}

// liveStoreFiles stats the live store's files.
func liveStoreFiles(t *testing.T, m *Machine) []os.FileInfo {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(m.store.dir, storeDirName))
	if err != nil {
		t.Fatal(err)
	}
	var infos []os.FileInfo
	for _, entry := range entries {
		if info, err := entry.Info(); err == nil {
			infos = append(infos, info)
		}
	}
	return infos
}

func restoreBytes(m *Machine, data []byte) error {
	return m.Restore(io.NopCloser(bytes.NewReader(data)))
}

// TestCheckpointRestoreCatchesUp: a checkpoint streams into another machine, which then has
// the source's state at the checkpoint's index and, after the same log, the same digest.
func TestCheckpointRestoreCatchesUp(t *testing.T) {
	src := newTestMachine(t, testRegistry())
	src.bumpMany("a", 3000)
	descriptor, err := src.m.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	atCheckpoint, checkpointIndex := src.digest(), src.index
	src.bumpMany("b", 1000) // applies continue after the checkpoint; it does not move

	dst := newTestMachine(t, testRegistry())
	dst.bumpMany("other", 10)
	if err := restoreBytes(dst.m, checkpointBytes(t, src.m, descriptor)); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if dst.m.AppliedIndex() != checkpointIndex || dst.digest() != atCheckpoint {
		t.Fatalf("restored machine at %d, want %d with the checkpoint's digest", dst.m.AppliedIndex(), checkpointIndex)
	}
	dst.index = checkpointIndex
	dst.now = src.now - int64(src.index-checkpointIndex)*1000
	dst.bumpMany("b", 1000)
	if dst.digest() != src.digest() {
		t.Fatal("restored machine diverged after the same log")
	}
	if _, err := os.Stat(filepath.Join(dst.m.store.dir, storeDirName+".restore")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("restore left its build directory: %v", err)
	}
}

// TestCheckpointCostsNoHistory: a checkpoint hard-links every SST of the store (no data is
// copied), what it copies (the MANIFEST) does not grow with the history, and the descriptor
// is the same few bytes for 2,000 and 20,000 keys of history.
func TestCheckpointCostsNoHistory(t *testing.T) {
	tm := newTestMachine(t, testRegistry())
	var descriptorLengths []int
	var copiedBytes []int64
	for round, count := range []int{2000, 20000} {
		tm.bumpMany(fmt.Sprintf("r%d", round), count)
		if err := tm.m.store.db.Flush(); err != nil { // history into SSTs, as a long-running store has it
			t.Fatal(err)
		}
		// And some in the memtable, which the checkpoint flushes first (the store has no WAL).
		// A compaction may delete a live SST right after the checkpoint linked it, and one the
		// checkpoint's flush wrote: compare with the live files as they were before, after the
		// same flush, and after.
		tm.bumpMany(fmt.Sprintf("tail%d", round), 100)
		liveFiles := liveStoreFiles(t, tm.m)
		if err := tm.m.store.db.Flush(); err != nil {
			t.Fatal(err)
		}
		liveFiles = append(liveFiles, liveStoreFiles(t, tm.m)...)
		descriptor, err := tm.m.Checkpoint()
		if err != nil {
			t.Fatal(err)
		}
		liveFiles = append(liveFiles, liveStoreFiles(t, tm.m)...)
		descriptorLengths = append(descriptorLengths, len(descriptor))
		dir := filepath.Join(tm.m.store.dir, checkpointsDirName, checkpointName(tm.index))
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var linked, copied int64
		for _, entry := range entries {
			info, err := entry.Info()
			if err != nil {
				t.Fatal(err)
			}
			if slices.ContainsFunc(liveFiles, func(live os.FileInfo) bool { return os.SameFile(info, live) }) {
				linked += info.Size()
				continue
			}
			if strings.HasSuffix(entry.Name(), ".sst") {
				t.Fatalf("checkpoint copied %s instead of linking it", entry.Name())
			}
			copied += info.Size()
		}
		if linked == 0 {
			t.Fatalf("round %d: no SST linked", round)
		}
		copiedBytes = append(copiedBytes, copied)
		t.Logf("round %d: %d keys of history, %d bytes linked, %d copied, descriptor %d bytes",
			round, count, linked, copied, len(descriptor))
	}
	if descriptorLengths[0] != descriptorLengths[1] || descriptorLengths[0] > 64 {
		t.Fatalf("descriptor lengths %v, want equal and small", descriptorLengths)
	}
	// What is copied is the WAL of the last 100 bumps and the MANIFEST: the same size in both
	// rounds, within a page or two of version edits, while the history grew tenfold.
	if copiedBytes[1] > copiedBytes[0]+16<<10 {
		t.Fatalf("copied bytes grew with history: %v", copiedBytes)
	}
}

// TestCheckpointStreamCorruptionRefused: any flipped byte, a truncation or a trailing byte is
// refused, and the store is left as it was with nothing beside it.
func TestCheckpointStreamCorruptionRefused(t *testing.T) {
	src := newTestMachine(t, testRegistry())
	src.bumpMany("a", 2000)
	descriptor, err := src.m.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	good := checkpointBytes(t, src.m, descriptor)
	dst := newTestMachine(t, testRegistry())
	dst.bumpMany("other", 10)
	before, applied := dst.digest(), dst.m.AppliedIndex()

	corrupt := map[string][]byte{
		"truncated":     good[:len(good)-1],
		"trailing byte": append(append([]byte(nil), good...), 0),
		"empty":         nil,
	}
	for _, at := range []int{0, len(checkpointMagic) + 1, len(good) / 3, len(good) / 2, len(good) - 40, len(good) - 1} {
		bad := append([]byte(nil), good...)
		bad[at] ^= 0x01
		corrupt[fmt.Sprintf("byte %d of %d flipped", at, len(good))] = bad
	}
	for name, bad := range corrupt {
		if err := restoreBytes(dst.m, bad); err == nil {
			t.Fatalf("%s: corrupt stream accepted", name)
		}
		if dst.digest() != before || dst.m.AppliedIndex() != applied {
			t.Fatalf("%s: a refused restore changed the store", name)
		}
		if _, err := os.Stat(filepath.Join(dst.m.store.dir, storeDirName+".restore")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s: refused restore left its build directory", name)
		}
	}
}

// TestRestoreNeverGoesBack: a verified snapshot that is not ahead of the store is dropped.
func TestRestoreNeverGoesBack(t *testing.T) {
	tm := newTestMachine(t, testRegistry())
	tm.bumpMany("a", 1000)
	descriptor, err := tm.m.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	old := checkpointBytes(t, tm.m, descriptor)
	tm.bumpMany("b", 1000)
	want, applied := tm.digest(), tm.m.AppliedIndex()
	if err := restoreBytes(tm.m, old); err != nil {
		t.Fatalf("restore of an older snapshot: %v", err)
	}
	if tm.digest() != want || tm.m.AppliedIndex() != applied {
		t.Fatal("restoring an older snapshot rolled the store back")
	}
}

// TestRestoreInterruptedAtEveryStep stops a restore at each step of its swap, as a crash
// would, and reopens the directory: the store is usable, holds either the old state or the
// new one (never a mix), and goes on applying.
func TestRestoreInterruptedAtEveryStep(t *testing.T) {
	src := newTestMachine(t, testRegistry())
	src.bumpMany("a", 2000)
	descriptor, err := src.m.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	stream := checkpointBytes(t, src.m, descriptor)
	newDigest := src.digest()

	for _, step := range []struct {
		name    string
		wantNew bool
	}{{"built", false}, {"live moved aside", true}, {"swapped", true}} {
		t.Run(step.name, func(t *testing.T) {
			dir := t.TempDir()
			m, err := Open(dir, nil, testRegistry())
			if err != nil {
				t.Fatal(err)
			}
			tm := &testMachine{t: t, m: m, now: 1_700_000_000_000}
			tm.bumpMany("old", 50)
			oldDigest := tm.digest()

			crash := errors.New("crash")
			restoreCrashHook = func(at string) error {
				if at == step.name {
					return crash
				}
				return nil
			}
			err = restoreBytes(m, stream)
			restoreCrashHook = nil
			if !errors.Is(err, crash) {
				t.Fatalf("restore = %v, want the crash", err)
			}
			m.Close() // the process dies: whatever it held open goes

			reopened, err := Open(dir, nil, testRegistry())
			if err != nil {
				t.Fatalf("reopen after a crash at %q: %v", step.name, err)
			}
			defer reopened.Close()
			got, err := reopened.Digest()
			if err != nil {
				t.Fatal(err)
			}
			want := oldDigest
			if step.wantNew {
				want = newDigest
			}
			if got != want {
				t.Fatalf("after a crash at %q: digest is neither the %v state", step.name, map[bool]string{true: "new", false: "old"}[step.wantNew])
			}
			after := &testMachine{t: t, m: reopened, index: reopened.AppliedIndex(), now: 1_800_000_000_000}
			after.bumpMany("more", 10)
			for _, leftover := range []string{".restore", ".old"} {
				if _, err := os.Stat(filepath.Join(dir, storeDirName+leftover)); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("%s left after reopening", leftover)
				}
			}
		})
	}
}

// TestRetainCheckpoints: unreferenced checkpoints go; a stream opened before its checkpoint
// was deleted still reads whole.
func TestRetainCheckpoints(t *testing.T) {
	tm := newTestMachine(t, testRegistry())
	var descriptors [][]byte
	for round := range 3 {
		tm.bumpMany(fmt.Sprintf("r%d", round), 600)
		descriptor, err := tm.m.Checkpoint()
		if err != nil {
			t.Fatal(err)
		}
		descriptors = append(descriptors, descriptor)
	}
	again, err := tm.m.Checkpoint() // nothing applied since: the same checkpoint
	if err != nil || !bytes.Equal(again, descriptors[2]) {
		t.Fatalf("checkpoint at the same index: %q, %v; want %q", again, err, descriptors[2])
	}
	stream, size, err := tm.m.OpenCheckpoint(descriptors[0])
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	if err := tm.m.RetainCheckpoints(descriptors[1:]); err != nil {
		t.Fatal(err)
	}
	indexes, err := tm.m.CheckpointIndexes()
	if err != nil || len(indexes) != 2 {
		t.Fatalf("checkpoints after retention: %v, %v; want 2", indexes, err)
	}
	if _, _, err := tm.m.OpenCheckpoint(descriptors[0]); err == nil {
		t.Fatal("a deleted checkpoint opened")
	}
	data, err := io.ReadAll(stream)
	if err != nil || int64(len(data)) != size {
		t.Fatalf("stream of a checkpoint deleted while open: %d of %d bytes, %v", len(data), size, err)
	}
	other := newTestMachine(t, testRegistry())
	if err := restoreBytes(other.m, data); err != nil {
		t.Fatalf("restore from a checkpoint deleted while streaming: %v", err)
	}
}

func TestCheckpointDescriptorIsStrict(t *testing.T) {
	good := encodeCheckpointDescriptor(300)
	if applied, err := decodeCheckpointDescriptor(good); err != nil || applied != 300 {
		t.Fatalf("decode %q = %d, %v", good, applied, err)
	}
	for _, bad := range [][]byte{
		nil,
		checkpointDescriptorMagic,
		append(append([]byte(nil), good...), 0),
		append(append([]byte(nil), checkpointDescriptorMagic...), 0x80, 0x00), // not minimal
		[]byte("GIGALEDGER-SNAPSHOT-1\n\x01"),
	} {
		if _, err := decodeCheckpointDescriptor(bad); err == nil {
			t.Fatalf("descriptor %q accepted", bad)
		}
	}
	for _, name := range []string{"", ".", "..", "...", "a/b", "../x", "x\x00"} {
		if validCheckpointFileName(name) {
			t.Fatalf("file name %q accepted", name)
		}
	}
}

// FuzzRestoreCheckpointStream: no stream makes Restore panic; one that is refused leaves the
// store as it was.
func FuzzRestoreCheckpointStream(f *testing.F) {
	src, err := Open(f.TempDir(), nil, testRegistry())
	if err != nil {
		f.Fatal(err)
	}
	defer src.Close()
	tm := &testMachine{m: src, now: 1_700_000_000_000}
	for i := range 20 {
		tm.index++
		tm.now += 1000
		src.ApplyBatch(tm.index, tm.now, [][]byte{EncodeEnvelope(Envelope{Command: &bump{Name: fmt.Sprint(i), By: 1}})})
	}
	descriptor, err := src.Checkpoint()
	if err != nil {
		f.Fatal(err)
	}
	stream, _, err := src.OpenCheckpoint(descriptor)
	if err != nil {
		f.Fatal(err)
	}
	good, err := io.ReadAll(stream)
	stream.Close()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	// A version 2 stream: the chain's records in the history store.
	withHistory, err := Open(f.TempDir(), nil, historyRegistry())
	if err != nil {
		f.Fatal(err)
	}
	defer withHistory.Close()
	htm := &testMachine{m: withHistory, now: 1_700_000_000_000}
	for i, env := range []Envelope{{Command: &RaiseRules{Version: RulesHistoryStore}}, {Command: &StartHistoryChain{}},
		{Command: &bump{Name: "a", By: 1}}, {Command: &bump{Name: "b", By: 2}}} {
		htm.index, htm.now = uint64(i+1), htm.now+1000
		withHistory.ApplyBatch(htm.index, htm.now, [][]byte{EncodeEnvelope(env)})
	}
	if descriptor, err = withHistory.Checkpoint(); err != nil {
		f.Fatal(err)
	}
	if stream, _, err = withHistory.OpenCheckpoint(descriptor); err != nil {
		f.Fatal(err)
	}
	goodV2, err := io.ReadAll(stream)
	stream.Close()
	if err != nil || !bytes.HasPrefix(goodV2, checkpointMagicV2) {
		f.Fatalf("version 2 stream: %v", err)
	}
	f.Add(goodV2)
	f.Add(append([]byte(nil), checkpointMagic...))
	f.Add([]byte("GIGALEDGER-SNAPSHOT-1\n\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Open(t.TempDir(), nil, testRegistry())
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		before, err := m.Digest()
		if err != nil {
			t.Fatal(err)
		}
		if err := restoreBytes(m, data); err != nil {
			if after, _ := m.Digest(); after != before || m.AppliedIndex() != 0 {
				t.Fatalf("a refused stream changed the store: %v", err)
			}
		}
	})
}
