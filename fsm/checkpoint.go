package fsm

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Checkpoints make a snapshot cost O(1) of history. A checkpoint is a Pebble checkpoint of the
// store (hard links to the immutable SSTs, taken right after a flush, and a copy of the MANIFEST,
// whose size is bounded by storeManifestMaxBytes, not by history) in
// <dir>/checkpoints/<applied index>. Raft's local snapshot is only its descriptor; the full
// stream is produced from the checkpoint's files when a follower needs InstallSnapshot
// (OpenCheckpoint), and read back by Restore.
//
// Checkpoint stream format: a magic line, uvarint applied index, uvarint file count, then per
// file in name order (uvarint name length, name, uvarint size, the bytes, SHA-256 of the bytes),
// then the SHA-256 of everything before it. Its length is known before it is read, as raft's
// InstallSnapshot needs. Version 2 is the same, with the history store's files (history.go)
// named "history/<name>"; a checkpoint without a history store is streamed as version 1, which
// every release reads.
var (
	checkpointMagic   = []byte("GIGALEDGER-CHECKPOINT-1\n")
	checkpointMagicV2 = []byte("GIGALEDGER-CHECKPOINT-2\n")
)

// historyFilePrefix names the history store's files in a version 2 checkpoint stream.
const historyFilePrefix = historyDirName + "/"

// checkpointDescriptorMagic starts a descriptor: the bytes that name a checkpoint.
var checkpointDescriptorMagic = []byte("GIGALEDGER-CHECKPOINT-REF-1\n")

const (
	checkpointsDirName = "checkpoints"
	// checkpointFileMaxCount bounds the files of one checkpoint stream (a store of 1 TiB in
	// 16 MiB SSTs has 65536).
	checkpointFileMaxCount = 1 << 20
	// checkpointFileNameMaxBytes bounds a file name in a checkpoint stream.
	checkpointFileNameMaxBytes = 255
	// checkpointFileMaxBytes bounds one file in a checkpoint stream.
	checkpointFileMaxBytes = 1 << 40
	// checkpointDescriptorMaxBytes bounds a descriptor.
	checkpointDescriptorMaxBytes = 64
)

// restoreCrashHook, when set by a test, is called at each step of a restore's swap; an error
// stops the restore there as a crash would (nothing after the step runs, nothing is undone).
var restoreCrashHook func(step string) error

// Checkpoint makes a checkpoint of the store as of the applied index and returns its descriptor
// (a few bytes). It runs on the apply goroutine, so the checkpoint holds exactly the applied
// index; its cost is a flush of the memtables, a hard link per SST and a copy of the MANIFEST,
// none of which grows with history. The flush makes the live store durable at the applied index
// too, as raft may compact its log once the snapshot exists. A checkpoint of the same applied index is reused: the state at
// an index is the same on every replica and at every time.
func (m *Machine) Checkpoint() ([]byte, error) {
	m.checkpointMu.Lock()
	defer m.checkpointMu.Unlock()
	applied := m.applied.Load()
	root := filepath.Join(m.store.dir, checkpointsDirName)
	path := filepath.Join(root, checkpointName(applied))
	if err := os.MkdirAll(root, 0o750); err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	if _, err := os.Stat(path); err == nil {
		if err := m.store.db.Flush(); err != nil {
			return nil, fmt.Errorf("checkpoint: flush store: %w", err)
		}
		return encodeCheckpointDescriptor(applied), nil
	}
	building := path + ".tmp"
	if err := os.RemoveAll(building); err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	// The store has no write-ahead log: flushing makes the live store durable at the applied
	// index (raft may compact its log once the snapshot exists) and puts all of it in the SSTs
	// the checkpoint links. Pebble syncs what it links and copies, and the directory.
	if err := m.store.db.Flush(); err != nil {
		return nil, fmt.Errorf("checkpoint: flush store: %w", err)
	}
	if err := m.store.db.Checkpoint(building); err != nil {
		os.RemoveAll(building)
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	// The history store, when it holds records: a record above the applied index cannot be in
	// it (apply is this goroutine). It has no log either, so it is flushed first (the state
	// flush above did, unless the state memtable was empty: then so is the history's).
	if holds, err := m.store.historyHoldsRecords(); err != nil {
		os.RemoveAll(building)
		return nil, fmt.Errorf("checkpoint: %w", err)
	} else if holds {
		if err := m.store.history.Flush(); err != nil {
			os.RemoveAll(building)
			return nil, fmt.Errorf("checkpoint: flush history store: %w", err)
		}
		if err := m.store.history.Checkpoint(filepath.Join(building, historyDirName)); err != nil {
			os.RemoveAll(building)
			return nil, fmt.Errorf("checkpoint: history store: %w", err)
		}
	}
	if err := os.Rename(building, path); err != nil {
		os.RemoveAll(building)
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	if err := syncDir(root); err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	return encodeCheckpointDescriptor(applied), nil
}

// RetainCheckpoints deletes every checkpoint (and every unfinished one) that no descriptor in
// keep names. The shard calls it with the descriptors raft's snapshot store still holds.
func (m *Machine) RetainCheckpoints(keep [][]byte) error {
	m.checkpointMu.Lock()
	defer m.checkpointMu.Unlock()
	kept := make(map[string]bool, len(keep))
	for _, descriptor := range keep {
		applied, err := decodeCheckpointDescriptor(descriptor)
		if err != nil {
			return fmt.Errorf("retain checkpoints: %w", err)
		}
		kept[checkpointName(applied)] = true
	}
	root := filepath.Join(m.store.dir, checkpointsDirName)
	entries, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("retain checkpoints: %w", err)
	}
	var errs []error
	for _, entry := range entries {
		if kept[entry.Name()] {
			continue
		}
		if err := os.RemoveAll(filepath.Join(root, entry.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("retain checkpoints: %w", errors.Join(errs...))
	}
	return nil
}

// OpenCheckpoint opens the checkpoint a descriptor names as a checkpoint stream (the format
// Restore reads) and returns its exact length. It opens every file before it returns, so a
// checkpoint deleted meanwhile (RetainCheckpoints) still streams whole. Any goroutine.
func (m *Machine) OpenCheckpoint(descriptor []byte) (io.ReadCloser, int64, error) {
	applied, err := decodeCheckpointDescriptor(descriptor)
	if err != nil {
		return nil, 0, fmt.Errorf("open checkpoint: %w", err)
	}
	m.checkpointMu.Lock()
	defer m.checkpointMu.Unlock()
	path := filepath.Join(m.store.dir, checkpointsDirName, checkpointName(applied))
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, 0, fmt.Errorf("open checkpoint %d: %w", applied, err)
	}
	// The state store's files, and the history store's under historyFilePrefix, in name order.
	var names []string
	magic := checkpointMagic
	for _, entry := range entries {
		if entry.IsDir() && entry.Name() == historyDirName {
			historyEntries, err := os.ReadDir(filepath.Join(path, historyDirName))
			if err != nil {
				return nil, 0, fmt.Errorf("open checkpoint %d: %w", applied, err)
			}
			for _, h := range historyEntries {
				if !h.Type().IsRegular() || !validCheckpointFileName(h.Name()) {
					return nil, 0, fmt.Errorf("open checkpoint %d: unexpected entry %q", applied, historyFilePrefix+h.Name())
				}
				names = append(names, historyFilePrefix+h.Name())
			}
			magic = checkpointMagicV2
			continue
		}
		if !entry.Type().IsRegular() || !validCheckpointFileName(entry.Name()) {
			return nil, 0, fmt.Errorf("open checkpoint %d: unexpected entry %q", applied, entry.Name())
		}
		names = append(names, entry.Name())
	}
	slices.Sort(names)
	stream := &checkpointStream{current: -1, fileHash: sha256.New(), streamHash: sha256.New()}
	header := append(append([]byte(nil), magic...), binary.AppendUvarint(nil, applied)...)
	header = binary.AppendUvarint(header, uint64(len(names)))
	size := int64(len(header)) + sha256.Size
	for _, name := range names {
		f, err := os.Open(filepath.Join(path, filepath.FromSlash(name)))
		if err != nil {
			stream.Close()
			return nil, 0, fmt.Errorf("open checkpoint %d: %w", applied, err)
		}
		info, err := f.Stat()
		if err != nil {
			f.Close()
			stream.Close()
			return nil, 0, fmt.Errorf("open checkpoint %d: %w", applied, err)
		}
		stream.files = append(stream.files, checkpointFile{name: name, size: info.Size(), file: f})
		size += int64(uvarintLen(uint64(len(name)))+len(name)+uvarintLen(uint64(info.Size()))) +
			info.Size() + sha256.Size
	}
	stream.emit(header)
	stream.next()
	return stream, size, nil
}

// checkpointStream reads a checkpoint's files as a checkpoint stream, hashing as it goes.
type checkpointStream struct {
	files      []checkpointFile
	current    int    // the file being read; len(files) once the trailer is out
	remaining  int64  // bytes of the current file not read yet
	pending    []byte // framing bytes ready to hand out
	fileHash   hash.Hash
	streamHash hash.Hash
	done       bool
}

type checkpointFile struct {
	name string
	size int64
	file *os.File
}

// emit queues framing bytes, which the stream hash covers.
func (s *checkpointStream) emit(b []byte) {
	s.pending = append(s.pending, b...)
	s.streamHash.Write(b)
}

// next finishes the current file (its hash) and queues the next file's header, or the trailer.
func (s *checkpointStream) next() {
	if s.current >= 0 {
		s.emit(s.fileHash.Sum(nil))
		s.fileHash.Reset()
		s.files[s.current].file.Close()
		s.files[s.current].file = nil
	}
	s.current++
	if s.current == len(s.files) {
		s.pending = append(s.pending, s.streamHash.Sum(nil)...) // the trailer: not hashed
		s.done = true
		return
	}
	f := s.files[s.current]
	header := binary.AppendUvarint(nil, uint64(len(f.name)))
	header = append(header, f.name...)
	s.emit(binary.AppendUvarint(header, uint64(f.size)))
	s.remaining = f.size
}

func (s *checkpointStream) Read(p []byte) (int, error) {
	for {
		if len(s.pending) > 0 {
			n := copy(p, s.pending)
			s.pending = s.pending[n:]
			return n, nil
		}
		if s.done {
			return 0, io.EOF
		}
		if s.remaining == 0 {
			s.next()
			continue
		}
		f := s.files[s.current]
		n, err := f.file.Read(p[:min(int64(len(p)), s.remaining)])
		s.remaining -= int64(n)
		s.fileHash.Write(p[:n])
		s.streamHash.Write(p[:n])
		if n > 0 {
			return n, nil
		}
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF // the file shrank: a checkpoint is never written to
		}
		return 0, fmt.Errorf("checkpoint file %s: %w", f.name, err)
	}
}

// Close closes the files not streamed yet.
func (s *checkpointStream) Close() error {
	for i := range s.files {
		if s.files[i].file != nil {
			s.files[i].file.Close()
			s.files[i].file = nil
		}
	}
	return nil
}

// readCheckpointStream writes the files of a checkpoint stream into dir (created), verifying
// every file's hash and the trailer, and syncs them. It returns the applied index the header
// claims, which the caller checks against the store it opens.
func readCheckpointStream(r *bufio.Reader, dir string) (uint64, error) {
	h := sha256.New()
	tr := &hashingReader{r: r, h: h}
	magic := make([]byte, len(checkpointMagic))
	if _, err := io.ReadFull(tr, magic); err != nil || string(magic) != string(checkpointMagic) && string(magic) != string(checkpointMagicV2) {
		return 0, errors.New("not a checkpoint stream")
	}
	withHistory := string(magic) == string(checkpointMagicV2)
	applied, err := binary.ReadUvarint(tr)
	if err != nil {
		return 0, fmt.Errorf("read applied index: %w", err)
	}
	count, err := binary.ReadUvarint(tr)
	if err != nil {
		return 0, fmt.Errorf("read file count: %w", err)
	}
	if count == 0 || count > checkpointFileMaxCount {
		return 0, fmt.Errorf("checkpoint of %d files", count)
	}
	if err := os.Mkdir(dir, 0o750); err != nil {
		return 0, err
	}
	previous := ""
	historyMade := false
	for i := uint64(0); i < count; i++ {
		nameLength, err := binary.ReadUvarint(tr)
		if err != nil {
			return 0, fmt.Errorf("read file name: %w", err)
		}
		if nameLength == 0 || nameLength > checkpointFileNameMaxBytes {
			return 0, fmt.Errorf("file name of %d bytes", nameLength)
		}
		name := make([]byte, nameLength)
		if _, err := io.ReadFull(tr, name); err != nil {
			return 0, fmt.Errorf("read file name: %w", err)
		}
		// Names in strictly increasing order: no duplicates, one encoding per checkpoint.
		base, inHistory := strings.CutPrefix(string(name), historyFilePrefix)
		if !validCheckpointFileName(base) || inHistory && !withHistory || string(name) <= previous {
			return 0, fmt.Errorf("bad or misordered file name %q", name)
		}
		previous = string(name)
		if inHistory && !historyMade {
			if err := os.Mkdir(filepath.Join(dir, historyDirName), 0o750); err != nil {
				return 0, err
			}
			historyMade = true
		}
		size, err := binary.ReadUvarint(tr)
		if err != nil {
			return 0, fmt.Errorf("read size of %s: %w", name, err)
		}
		if size > checkpointFileMaxBytes {
			return 0, fmt.Errorf("file %s of %d bytes", name, size)
		}
		if err := readCheckpointFile(tr, filepath.Join(dir, filepath.FromSlash(string(name))), int64(size)); err != nil {
			return 0, fmt.Errorf("file %s: %w", name, err)
		}
	}
	sum := h.Sum(nil)
	got := make([]byte, sha256.Size)
	if _, err := io.ReadFull(r, got); err != nil {
		return 0, fmt.Errorf("read checksum: %w", err)
	}
	if string(got) != string(sum) {
		return 0, errors.New("checkpoint stream checksum mismatch")
	}
	if _, err := r.ReadByte(); !errors.Is(err, io.EOF) {
		return 0, errors.New("bytes after the checkpoint stream")
	}
	if withHistory && !historyMade {
		return 0, errors.New("a version 2 checkpoint stream without history store files")
	}
	if historyMade {
		if err := syncDir(filepath.Join(dir, historyDirName)); err != nil {
			return 0, err
		}
	}
	if err := syncDir(dir); err != nil {
		return 0, err
	}
	return applied, nil
}

// readCheckpointFile copies one file of a stream to path and checks its hash (which the
// stream hash covers too).
func readCheckpointFile(tr *hashingReader, path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return err
	}
	fileHash := sha256.New()
	_, err = io.CopyN(io.MultiWriter(f, fileHash), tr, size)
	if err == nil {
		err = f.Sync()
	}
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return err
	}
	want := make([]byte, sha256.Size)
	if _, err := io.ReadFull(tr, want); err != nil {
		return fmt.Errorf("read checksum: %w", err)
	}
	if string(want) != string(fileHash.Sum(nil)) {
		return errors.New("checksum mismatch")
	}
	return nil
}

// validCheckpointFileName accepts the names Pebble gives its files (000123.sst, MANIFEST-000001,
// OPTIONS-000003, marker.manifest.000001.MANIFEST-000001, 000042.log): no separators, no
// "." or "..", nothing a path could climb out with.
func validCheckpointFileName(name string) bool {
	if name == "" || len(name) > checkpointFileNameMaxBytes || strings.Trim(name, ".") == "" {
		return false
	}
	for _, c := range []byte(name) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_'
		if !ok {
			return false
		}
	}
	return true
}

func checkpointName(applied uint64) string { return fmt.Sprintf("%020d", applied) }

func encodeCheckpointDescriptor(applied uint64) []byte {
	return binary.AppendUvarint(append([]byte(nil), checkpointDescriptorMagic...), applied)
}

// decodeCheckpointDescriptor is strict: the magic, one minimal uvarint, nothing after it.
func decodeCheckpointDescriptor(descriptor []byte) (uint64, error) {
	rest, ok := strings.CutPrefix(string(descriptor), string(checkpointDescriptorMagic))
	if !ok || len(descriptor) > checkpointDescriptorMaxBytes {
		return 0, errors.New("not a checkpoint descriptor")
	}
	applied, n := binary.Uvarint([]byte(rest))
	if n <= 0 || n != len(rest) || n != uvarintLen(applied) {
		return 0, errors.New("bad checkpoint descriptor")
	}
	return applied, nil
}

// CheckpointIndexes lists the applied indexes of the checkpoints on disk, ascending (tests,
// admin).
func (m *Machine) CheckpointIndexes() ([]uint64, error) {
	entries, err := os.ReadDir(filepath.Join(m.store.dir, checkpointsDirName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var indexes []uint64
	for _, entry := range entries {
		if index, err := strconv.ParseUint(entry.Name(), 10, 64); err == nil {
			indexes = append(indexes, index)
		}
	}
	slices.Sort(indexes)
	return indexes, nil
}

func uvarintLen(v uint64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], v)
}

// syncDir makes a directory's entries (creations, renames) durable.
func syncDir(path string) error {
	dir, err := os.Open(path)
	if err != nil {
		return err
	}
	err = dir.Sync()
	if closeErr := dir.Close(); err == nil {
		err = closeErr
	}
	return err
}
