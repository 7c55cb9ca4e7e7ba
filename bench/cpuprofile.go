package bench

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"time"
)

// cpuProfile writes the harness's own CPU profile over the measured phase (--cpuprofile): the
// harness shares the machine with the system it measures, and past a few tens of thousands of
// requests per second its own CPU is part of every figure.
type cpuProfile struct {
	file    *os.File
	running bool
}

func newCPUProfile(path string) (*cpuProfile, error) {
	file, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return &cpuProfile{file: file}, nil
}

// BeforeMeasure implements MeasureHooks: the profile starts as the load does (this hook runs
// last).
func (p *cpuProfile) BeforeMeasure(context.Context, Driver, RunConfig) error {
	if err := pprof.StartCPUProfile(p.file); err != nil {
		return fmt.Errorf("--cpuprofile: %w", err)
	}
	p.running = true
	return nil
}

// MeasureStarted implements MeasureHooks.
func (p *cpuProfile) MeasureStarted(time.Time) {}

// AfterMeasure implements MeasureHooks.
func (p *cpuProfile) AfterMeasure(context.Context, *Result, time.Time) error {
	p.stop()
	return nil
}

// Close stops the profile if a run ended before AfterMeasure, and closes the file.
func (p *cpuProfile) Close() error {
	p.stop()
	return p.file.Close()
}

func (p *cpuProfile) stop() {
	if p.running {
		pprof.StopCPUProfile()
		p.running = false
	}
}
