package nodelog

import (
	"os"
	"syscall"
)

// fdatasync flushes file's data and the metadata needed to read it back (its size), not its
// timestamps: all a log append needs.
func fdatasync(file *os.File) error {
	return syscall.Fdatasync(int(file.Fd()))
}
