package cluster

import (
	"bufio"
	"encoding/binary"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/cluster/testutil"
)

// Frames written by many goroutines at once arrive whole, each once, whatever bursts the
// flusher makes of them; close writes what is pending first, and later writes fail.
func TestFrameWriterDeliversConcurrentFramesWhole(t *testing.T) {
	local, remote := net.Pipe()
	defer remote.Close()
	writer := newFrameWriter(local, func(err error) { t.Errorf("write failed: %v", err) })
	const writerCount, framesEach = 8, 200
	received := make(chan map[uint64]int, 1)
	go func() {
		seen := make(map[uint64]int)
		reader := bufio.NewReader(remote)
		for range writerCount * framesEach {
			frame, err := readFrame(reader)
			if err != nil {
				t.Errorf("read frame: %v", err)
				break
			}
			id := binary.BigEndian.Uint64(frame)
			if len(frame) != 8+int(id%300) {
				t.Errorf("frame %d of %d bytes", id, len(frame))
			}
			seen[id]++
		}
		received <- seen
	}()
	var wg sync.WaitGroup
	for w := range writerCount {
		wg.Go(func() {
			for k := range framesEach {
				id := uint64(w*framesEach + k)
				if err := writer.write(binary.BigEndian.AppendUint64(nil, id), make([]byte, id%300)); err != nil {
					t.Errorf("write %d: %v", id, err)
				}
			}
		})
	}
	wg.Wait()
	writer.close()
	seen := <-received
	if len(seen) != writerCount*framesEach {
		t.Fatalf("%d distinct frames arrived, want %d", len(seen), writerCount*framesEach)
	}
	for id, count := range seen {
		if count != 1 {
			t.Fatalf("frame %d arrived %d times", id, count)
		}
	}
	if err := writer.write([]byte("late")); err == nil {
		t.Fatal("a write after close was accepted")
	}
}

// A connection that fails to take a write fails the writer once (onFail), and writes after it
// are refused.
func TestFrameWriterFailsWithItsConnection(t *testing.T) {
	local, remote := net.Pipe()
	_ = remote.Close()
	failed := make(chan error, 2)
	writer := newFrameWriter(local, func(err error) { failed <- err })
	defer writer.close()
	if err := writer.write([]byte("frame")); err != nil {
		t.Fatalf("first write not queued: %v", err)
	}
	select {
	case err := <-failed:
		if err == nil {
			t.Fatal("onFail with a nil error")
		}
	case <-time.After(testutil.WaitMax):
		t.Fatal("the writer did not report the failed connection")
	}
	testutil.Eventually(t, "writes refused after the failure", func() bool {
		return writer.write([]byte("more")) != nil
	})
	if len(failed) != 0 {
		t.Fatal("onFail called twice")
	}
}
