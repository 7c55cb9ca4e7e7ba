package cluster

import (
	"context"
	"errors"
	"fmt"
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
