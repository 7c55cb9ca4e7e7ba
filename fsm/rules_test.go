package fsm

import (
	"strings"
	"testing"
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
