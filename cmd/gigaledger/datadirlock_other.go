//go:build !unix

package main

import "os"

// flockExclusive is not available here: the data directory is not locked.
func flockExclusive(*os.File) error { return nil }
