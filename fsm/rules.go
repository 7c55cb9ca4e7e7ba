package fsm

import (
	"encoding/binary"
	"fmt"
)

// Rules versions: how a release changes what an existing command does without replicas of two
// releases diverging. Apply must compute the same result on every replica from the same log,
// also while a cluster is upgraded node by node, and also when a new release replays a log an
// older one wrote. A rule that changes the outcome of a command (a new refusal, a new check)
// therefore never switches on with the binary: it switches on at a log index, by a command.
//
//   - RulesVersion is the newest rule set this binary implements; each rule that changed an
//     outcome names the version from which it holds (e.g. gigawallet.RulesPayFromOnce).
//   - A shard's rules version is replicated state (key m\x00rules, 0 on a store that never had
//     one). Apply asks Batch.Rules() >= the rule's version.
//   - RaiseRules{Version} (op 109) raises it; lower or equal changes nothing. The shard's leader
//     proposes it (cmd/gigaledger duties) once every voter of the shard says its binary
//     implements the version (the replica stats carry RulesVersion), so an upgrade raises the
//     rules only when the last old node is gone.
//   - A replica whose binary is older than a RaiseRules it meets stops at it (as at an op it
//     does not know) instead of applying old rules to the commands after it.
//
// New ops need none of this: an old replica cannot decode them and stops. Nor do new fields
// whose absence means the old behaviour.
// 4: RulesHistoryStore (history.go); 5: ledger.RulesCaptureReferenceMismatch,
// gigpay.RulesPaymentRetry; 6: gigawallet.RulesSettleShortfallOnRelease; 7:
// ledger.RulesEntriesAppended; 8: ledger.RulesTransactionsAppended.
const RulesVersion uint32 = 8

// OpRaiseRules raises the shard's rules version.
const OpRaiseRules Op = 109

// RaiseRules is the command of OpRaiseRules.
type RaiseRules struct {
	Version uint32
}

// Op implements Command.
func (RaiseRules) Op() Op { return OpRaiseRules }

// Encode implements Command.
func (c *RaiseRules) Encode(e *Encoder) { e.Uvarint(uint64(c.Version)) }

// Route implements Command: the leader proposes it to the shard it leads.
func (*RaiseRules) Route() Route { return Route{Pinned: true} }

var keyRules = []byte("m\x00rules")

func registerRules(r *Registry) {
	r.Add(OpSpec{Op: OpRaiseRules, Name: "RaiseRules", Example: &RaiseRules{Version: 1},
		Decode: func(d *Decoder) Command {
			v := d.Uvarint()
			if v > 1<<32-1 {
				d.Fail(fmt.Errorf("rules version %d", v))
			}
			return &RaiseRules{Version: uint32(v)}
		},
		Apply: func(b *Batch, c Command) *Result {
			version := c.(*RaiseRules).Version
			if version > RulesVersion {
				// This binary does not know what the commands after it mean: stop here, as at an
				// unknown op, rather than apply old rules where the other replicas apply new ones.
				// The leader proposes it only once every voter's binary implements it, so only a
				// replica downgraded or restored onto an old binary meets this.
				panic(fmt.Sprintf("fsm: log entry %d raises the rules to version %d; this binary implements up to %d: upgrade it", b.Index, version, RulesVersion))
			}
			if version > b.m.rules {
				b.m.logger.Info("rules version raised", "from", b.m.rules, "to", version, "log_index", b.Index)
				b.m.rules = version
				b.Set(keyRules, binary.BigEndian.AppendUint32(nil, version))
			}
			return &Result{}
		}})
}

// loadRules reads the shard's rules version (0 when none was ever raised).
func (m *Machine) loadRules() error {
	v, err := m.store.Get(keyRules)
	switch {
	case err != nil:
		return err
	case v == nil:
		m.rules = 0
	case len(v) == 4:
		m.rules = binary.BigEndian.Uint32(v)
		if m.rules > RulesVersion {
			// A store a newer binary wrote under rules this one does not implement (a
			// downgrade): it may keep records where this binary does not look (the history
			// store of rules 4 for a binary before it), and applying on would diverge.
			return fmt.Errorf("the store is at rules version %d; this binary implements up to %d: run a binary that implements it", m.rules, RulesVersion)
		}
	default:
		return fmt.Errorf("rules version record of %d bytes", len(v))
	}
	return nil
}

// RulesImplemented is RulesVersion (shard.RulesImplementer: the replica stats carry it).
func (m *Machine) RulesImplemented() uint32 { return RulesVersion }

// Rules is the shard's rules version as of the last applied batch (for the leader's duties).
func (m *Machine) Rules() uint32 { return m.rulesSeen.Load() }

// Rules is the shard's rules version for the command being applied: a rule introduced at
// version v holds when Rules() >= v.
func (b *Batch) Rules() uint32 { return b.m.rules }
