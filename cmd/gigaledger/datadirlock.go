package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// dataDirLockName is the file a serving node (and verify) holds locked in its data directory.
const dataDirLockName = "LOCK"

// errDataDirInUse means another process holds the data directory: a node serving it, or a
// verify reading it.
var errDataDirInUse = errors.New("the data directory is in use by another process")

// lockDataDir takes the data directory's lock, creating the directory and the lock file when
// missing, before anything else touches the directory. A second process on a live node's data
// directory (a second `serve` started by mistake) is refused at once: one was refused only
// after it had added write-ahead log segments to the live node's raftlog, and the live node
// then refused to start until someone deleted them by hand. The lock is the kernel's (flock),
// so it ends with the process however it ends; closing the file releases it.
func lockDataDir(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	path := filepath.Join(dir, dataDirLockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data directory lock: %w", err)
	}
	if err := flockExclusive(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w (%v); stop the other process first", dir, errDataDirInUse, err)
	}
	return f, nil
}
