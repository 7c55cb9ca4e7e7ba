package cluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"testing"

	"github.com/gigaledger/gigaledger/shard"
)

func TestErrorCodesRoundTrip(t *testing.T) {
	sentinels := []error{shard.ErrNotLeader, shard.ErrClosed, shard.ErrOutcomeUnknown, shard.ErrOverloaded,
		shard.ErrCommandTooLarge, ErrNoLeader, ErrNotHosted, context.DeadlineExceeded, context.Canceled}
	for _, sentinel := range sentinels {
		wrapped := fmt.Errorf("somewhere: %w", sentinel)
		back := errorForCode(codeForError(wrapped))
		if !errors.Is(back, sentinel) {
			t.Errorf("%v came back as %v", sentinel, back)
		}
	}
	// A timeout after the command reached raft stays unknown, never a plain deadline.
	unknownTimeout := errors.Join(shard.ErrOutcomeUnknown, context.DeadlineExceeded)
	if codeForError(unknownTimeout) != codeOutcomeUnknown {
		t.Errorf("unknown outcome with deadline mapped to %d", codeForError(unknownTimeout))
	}
}

func TestResponseFrameRoundTrip(t *testing.T) {
	resp := rpcResponse{id: 7, code: codeNotLeader, leaderHint: "127.0.0.1:1234", payload: []byte("msg")}
	frame := append(encodeResponseHeader(resp), resp.payload...)
	got, err := decodeResponse(frame)
	if err != nil || got.id != 7 || got.code != codeNotLeader || got.leaderHint != resp.leaderHint || string(got.payload) != "msg" {
		t.Fatalf("decoded %+v, %v", got, err)
	}
	if _, err := decodeResponse(frame[:5]); err == nil {
		t.Fatal("short frame decoded")
	}
}

func TestRequestFrameRoundTrip(t *testing.T) {
	req := rpcRequest{kind: rpcKindReadIndex, shardID: 513, id: 9, timeoutMs: 1500}
	frame := append(encodeRequestHeader(req), "payload"...)
	got, err := decodeRequest(frame)
	if err != nil || got.kind != req.kind || got.shardID != 513 || got.id != 9 || got.timeoutMs != 1500 || string(got.payload) != "payload" {
		t.Fatalf("decoded %+v, %v", got, err)
	}
	if _, err := decodeRequest(frame[:rpcRequestHeaderBytes-1]); err == nil {
		t.Fatal("short frame decoded")
	}
}

// TestReadFrameAllocatesWhatArrives: a frame's length prefix alone does not allocate the frame.
// A peer that declares the largest frame and sends 100 bytes costs about the read buffer, not
// 64 MiB (before, each such connection took 64 MiB for as long as it stayed open).
func TestReadFrameAllocatesWhatArrives(t *testing.T) {
	var input bytes.Buffer
	_ = binary.Write(&input, binary.BigEndian, uint32(rpcFrameMaxBytes))
	input.Write(make([]byte, 100))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := readFrame(bufio.NewReaderSize(&input, rpcConnBufferBytes))
	runtime.ReadMemStats(&after)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("a cut frame read as %v, want io.ErrUnexpectedEOF", err)
	}
	if allocated := after.TotalAlloc - before.TotalAlloc; allocated > 4*rpcConnBufferBytes {
		t.Fatalf("reading 104 bytes of a frame that declares %d allocated %d bytes", rpcFrameMaxBytes, allocated)
	}

	// Whole frames of every size still read back exactly.
	for _, size := range []int{0, 1, rpcConnBufferBytes - 1, rpcConnBufferBytes, rpcConnBufferBytes + 1, 5*rpcConnBufferBytes + 7} {
		payload := make([]byte, size)
		for i := range payload {
			payload[i] = byte(i * 7)
		}
		var wire bytes.Buffer
		writer := bufio.NewWriter(&wire)
		if err := writeFrame(writer, payload); err != nil {
			t.Fatal(err)
		}
		frame, err := readFrame(bufio.NewReader(&wire))
		if err != nil || !bytes.Equal(frame, payload) {
			t.Fatalf("frame of %d bytes read back as %d bytes, %v", size, len(frame), err)
		}
	}
}

// TestReadPointWire: a read-index answer round-trips with and without the term, an 8-byte
// answer (a node that predates the term) reads as "no term", and any other length is refused.
func TestReadPointWire(t *testing.T) {
	point := shard.ReadPoint{Index: 1<<40 + 7, Term: 9}
	for _, withTerm := range []bool{false, true} {
		got, err := decodeReadPoint(encodeReadPoint(point, withTerm))
		want := point
		if !withTerm {
			want.Term = 0
		}
		if err != nil || got != want {
			t.Fatalf("withTerm %v: %+v %v, want %+v", withTerm, got, err, want)
		}
	}
	for _, size := range []int{0, 7, 9, 15, 17, 24} {
		if _, err := decodeReadPoint(make([]byte, size)); err == nil {
			t.Fatalf("a %d-byte read index decoded", size)
		}
	}
}
