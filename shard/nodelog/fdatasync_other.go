//go:build !linux

package nodelog

import "os"

// fdatasync falls back to a full fsync where fdatasync is not available.
func fdatasync(file *os.File) error {
	return file.Sync()
}
