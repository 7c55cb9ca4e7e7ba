package fsm

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble"
)

// The rules version is replicated state: raised by RaiseRules (never lowered), kept across a
// restart, and a RaiseRules beyond what this binary implements stops the replica rather than
// letting it apply older rules than its peers.
func TestRaiseRules(t *testing.T) {
	reg := testRegistry()
	tm := newTestMachine(t, reg)
	if tm.m.Rules() != 0 || tm.m.RulesImplemented() != RulesVersion {
		t.Fatalf("fresh store: rules %d, implemented %d", tm.m.Rules(), tm.m.RulesImplemented())
	}
	tm.apply(Envelope{Command: &RaiseRules{Version: RulesVersion}})
	tm.apply(Envelope{Command: &RaiseRules{Version: 0}})
	if tm.m.Rules() != RulesVersion {
		t.Fatalf("rules %d, want %d", tm.m.Rules(), RulesVersion)
	}
	dir := tm.m.store.dir
	if err := tm.m.Close(); err != nil {
		t.Fatal(err)
	}
	m, err := Open(dir, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	tm.m = m
	t.Cleanup(func() { m.Close() })
	if m.Rules() != RulesVersion {
		t.Fatalf("rules %d after a restart", m.Rules())
	}
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "upgrade it") {
			t.Fatalf("RaiseRules beyond this binary: recovered %v", r)
		}
	}()
	tm.apply(Envelope{Command: &RaiseRules{Version: RulesVersion + 1}})
}

// A store that a newer binary raised past this binary's rules is refused at open (a
// downgrade), rather than applied on under rules it does not know.
func TestAStoreAtNewerRulesIsRefused(t *testing.T) {
	tm := newTestMachine(t, testRegistry())
	tm.apply(Envelope{Command: &bump{Name: "a", By: 1}})
	dir := tm.m.store.dir
	// As a newer binary would have stored it.
	if err := tm.m.store.db.Set(keyRules, binary.BigEndian.AppendUint32(nil, RulesVersion+1), pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	if err := tm.m.Close(); err != nil {
		t.Fatal(err)
	}
	for _, open := range []func(string, *slog.Logger, *Registry) (*Machine, error){Open, OpenReadOnly} {
		m, err := open(dir, nil, testRegistry())
		if err == nil {
			m.Close()
			t.Fatal("opened a store at a rules version this binary does not implement")
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("rules version %d", RulesVersion+1)) {
			t.Fatalf("error %q", err)
		}
	}
}
