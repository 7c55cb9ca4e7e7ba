//go:build !linux

package fsm

import "errors"

// lowerBackgroundPriority needs per-thread priorities (Linux); elsewhere background work runs
// at the process's priority.
func lowerBackgroundPriority() {}

func threadNice() (int, error) { return 0, errors.New("per-thread priority needs Linux") }
