package main

import (
	"reflect"
	"testing"

	"github.com/gigaledger/gigaledger/fsm"
)

// TestEveryOpOfTheComposedRegistry: every op of every family, as the node composes them,
// round-trips through the envelope and names a routing key; an op without one fails here.
func TestEveryOpOfTheComposedRegistry(t *testing.T) {
	reg := newFamilies().registry
	specs := reg.Specs()
	if len(specs) < 20 {
		t.Fatalf("only %d ops registered", len(specs))
	}
	for _, spec := range specs {
		got, err := reg.DecodeCommand(fsm.EncodeCommand(spec.Example))
		if err != nil || !reflect.DeepEqual(got, spec.Example) {
			t.Errorf("%s: round trip %+v %v", spec.Name, got, err)
		}
		if spec.Example.Route().IsZero() {
			t.Errorf("%s has no routing key", spec.Name)
		}
	}
}
