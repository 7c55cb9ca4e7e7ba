package fsm

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
)

// A batch's point writes reach Pebble sorted by key (batchwrites.go): the store must end up
// exactly as if they had been written in apply order — writes of one key in order, and a range
// deletion deleting exactly the writes made before it — within a command, across the commands
// of a batch, and across batches.

const opScript Op = 1001

type scriptStep struct {
	kind       byte // 's' set, 'd' delete, 'r' delete range [key, value)
	key, value string
}

type script struct{ Steps []scriptStep }

func (*script) Op() Op         { return opScript }
func (c *script) Route() Route { return Route{Pinned: true} }
func (c *script) Encode(e *Encoder) {
	e.Uvarint(uint64(len(c.Steps)))
	for _, s := range c.Steps {
		e.Byte(s.kind)
		e.String(s.key)
		e.String(s.value)
	}
}

func scriptRegistry() *Registry {
	reg := NewRegistry()
	reg.ClaimPrefix('x', "test: script")
	reg.Add(OpSpec{Op: opScript, Name: "Script", Example: &script{Steps: []scriptStep{{'s', "xa", "1"}}},
		Decode: func(d *Decoder) Command {
			c := &script{}
			for n := d.Count("steps"); n > 0 && d.Err() == nil; n-- {
				c.Steps = append(c.Steps, scriptStep{kind: d.Byte(), key: d.String(), value: d.String()})
			}
			return c
		},
		Apply: func(b *Batch, c Command) *Result {
			for _, s := range c.(*script).Steps {
				switch s.kind {
				case 's':
					b.Set([]byte(s.key), []byte(s.value))
				case 'd':
					b.Delete([]byte(s.key))
				case 'r':
					b.DeleteRange([]byte(s.key), []byte(s.value))
				}
			}
			return &Result{}
		}})
	return reg
}

func TestSortedBatchWritesKeepApplyOrder(t *testing.T) {
	tm := newTestMachine(t, scriptRegistry())
	rng := rand.New(rand.NewPCG(3, 4))
	model := map[string]string{}
	keyOf := func() string { return fmt.Sprintf("x%02d", rng.IntN(40)) }
	for batch := range 200 {
		var envs []Envelope
		for range 1 + rng.IntN(4) {
			c := &script{}
			for range rng.IntN(30) {
				s := scriptStep{key: keyOf()}
				switch p := rng.IntN(20); {
				case p < 13:
					s.kind, s.value = 's', fmt.Sprintf("v%d", rng.IntN(1000))
					model[s.key] = s.value
				case p < 18:
					s.kind = 'd'
					delete(model, s.key)
				default:
					s.kind, s.value = 'r', keyOf()
					for k := range model {
						if s.key <= k && k < s.value {
							delete(model, k)
						}
					}
				}
				c.Steps = append(c.Steps, s)
			}
			envs = append(envs, Envelope{Command: c})
		}
		for _, r := range tm.apply(envs...) {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
		}
		stored := map[string]string{}
		if err := tm.m.Store().Scan([]byte{'x'}, func(k, v []byte) error {
			stored[string(k)] = string(v)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(stored, model) {
			keys := slices.Sorted(maps.Keys(model))
			t.Fatalf("batch %d: store %v, want %v (keys %v)", batch, stored, model, keys)
		}
	}
}
