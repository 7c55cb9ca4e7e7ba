//go:build !linux

package fsm

// lowerBackgroundPriority needs per-thread priorities (Linux); elsewhere background work runs
// at the process's priority.
func lowerBackgroundPriority() {}
