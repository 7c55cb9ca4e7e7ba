package fsm

import (
	"encoding/binary"
	"fmt"
)

// Subscriptions: who receives the outbox's events (the delivery side, cluster/relay, reads them
// and sends). They are cluster-wide, so they live in the metadata shard (shard 0); each shard
// keeps every subscriber's cursor itself (OpOutboxAck). The kernel stores a subscription's
// fields and bounds their sizes; what they mean (a URL, a filter's categories) is checked by the
// API that accepts them and again by the relay that uses them.
//
//	S {name} → the subscription
//	s {name} → (batch time of its deletion) a retired name
//
// A name is never reused: every shard keeps the subscriber's cursor and dead letters under it,
// and deleting the subscription (a write to the metadata shard) does not touch them, so a new
// subscription of the same name would start from the old cursor and show the old dead letters.
const (
	prefixSubscription        = 'S'
	prefixRetiredSubscription = 's'

	// OpPutSubscription creates a subscription (a name is taken once: SubscriptionExists).
	OpPutSubscription Op = 103
	// OpDeleteSubscription deletes one (SubscriptionNotFound when there is none).
	OpDeleteSubscription Op = 104

	// SubscriptionsMax bounds the subscriptions of a cluster.
	SubscriptionsMax = 256
	// Bounds of a subscription's fields.
	SubscriptionTargetMaxBytes  = 2048
	SubscriptionTopicMaxBytes   = 512
	SubscriptionSecretMaxBytes  = 1024
	SubscriptionTypesMaxCount   = 64
	SubscriptionTypeMaxBytes    = 64
	SubscriptionShardsMaxCount  = 256
	subscriptionRecordVersion   = 1
	CodeSubscriptionExists      = ErrorCode("SubscriptionExists")
	CodeSubscriptionNameRetired = ErrorCode("SubscriptionNameRetired")
	CodeSubscriptionNotFound    = ErrorCode("SubscriptionNotFound")
	CodeSubscriptionsLimitReach = ErrorCode("SubscriptionLimitReached")
)

// Subscription is a subscriber as stored. Kind, Target (a webhook URL, a broker address),
// Topic (MQTT) and Types (a filter's categories and event types) are the relay's to read.
// StartAfter[k] is the last event of shard k the subscriber does not want (the shard's newest
// when it subscribed "from now"; 0 for "from the oldest kept"): its delivery starts after it.
type Subscription struct {
	Name       string
	Kind       uint8
	Target     string
	Topic      string
	Secret     string
	Types      []string
	StartAfter []uint64
	CreatedAt  int64
}

// Encode implements Value; it is also the stored record.
func (s *Subscription) Encode(e *Encoder) {
	e.Byte(subscriptionRecordVersion)
	e.String(s.Name)
	e.Byte(s.Kind)
	e.String(s.Target)
	e.String(s.Topic)
	e.String(s.Secret)
	e.Uvarint(uint64(len(s.Types)))
	for _, t := range s.Types {
		e.String(t)
	}
	e.Uvarint(uint64(len(s.StartAfter)))
	for _, seq := range s.StartAfter {
		e.Uvarint(seq)
	}
	e.Varint(s.CreatedAt)
}

// ReadSubscription reads what Encode wrote.
func ReadSubscription(d *Decoder) *Subscription {
	if v := d.Byte(); d.Err() == nil && v != subscriptionRecordVersion {
		d.Fail(fmt.Errorf("unknown subscription record version %d", v))
	}
	s := &Subscription{Name: d.String(), Kind: d.Byte(), Target: d.String(), Topic: d.String(), Secret: d.String()}
	n := d.Count("subscription types")
	for i := 0; i < n && d.Err() == nil; i++ {
		s.Types = append(s.Types, d.String())
	}
	n = d.Count("subscription shards")
	for i := 0; i < n && d.Err() == nil; i++ {
		s.StartAfter = append(s.StartAfter, d.Uvarint())
	}
	s.CreatedAt = d.Varint()
	return s
}

// PutSubscription is the command of OpPutSubscription. CreatedAt is the batch time.
type PutSubscription struct{ Subscription Subscription }

// Op implements Command.
func (PutSubscription) Op() Op { return OpPutSubscription }

// Encode implements Command.
func (c *PutSubscription) Encode(e *Encoder) { c.Subscription.Encode(e) }

// Route implements Command: subscriptions live in the metadata shard.
func (*PutSubscription) Route() Route { return Route{Metadata: true} }

// DeleteSubscription is the command of OpDeleteSubscription.
type DeleteSubscription struct{ Name string }

// Op implements Command.
func (DeleteSubscription) Op() Op { return OpDeleteSubscription }

// Encode implements Command.
func (c *DeleteSubscription) Encode(e *Encoder) { e.String(c.Name) }

// Route implements Command.
func (*DeleteSubscription) Route() Route { return Route{Metadata: true} }

func validSubscription(s *Subscription) *Error {
	switch {
	case s.Name == "" || !ValidText(s.Name, SubscriberMaxLength):
		return Rejectf(CodeInvalidArgument, "a subscription name is 1..%d printable characters", SubscriberMaxLength)
	case s.Kind == 0:
		return Rejectf(CodeInvalidArgument, "a subscription needs a kind")
	case s.Target == "" || !ValidText(s.Target, SubscriptionTargetMaxBytes):
		return Rejectf(CodeInvalidArgument, "a subscription's target is 1..%d printable characters", SubscriptionTargetMaxBytes)
	case s.Topic != "" && !ValidText(s.Topic, SubscriptionTopicMaxBytes):
		return Rejectf(CodeInvalidArgument, "a subscription's topic is at most %d printable characters", SubscriptionTopicMaxBytes)
	case len(s.Secret) > SubscriptionSecretMaxBytes:
		return Rejectf(CodeInvalidArgument, "a subscription's secret is at most %d bytes", SubscriptionSecretMaxBytes)
	case len(s.Types) == 0 || len(s.Types) > SubscriptionTypesMaxCount:
		return Rejectf(CodeInvalidArgument, "a subscription names 1..%d categories or event types", SubscriptionTypesMaxCount)
	case len(s.StartAfter) > SubscriptionShardsMaxCount:
		return Rejectf(CodeInvalidArgument, "a subscription starts on at most %d shards", SubscriptionShardsMaxCount)
	}
	for _, t := range s.Types {
		if t == "" || !ValidID(t, SubscriptionTypeMaxBytes) {
			return Rejectf(CodeInvalidArgument, "event type or category %q is not 1..%d letters, digits, '_', '.' or '-'", t, SubscriptionTypeMaxBytes)
		}
	}
	return nil
}

func registerSubscriptions(r *Registry) {
	r.ClaimPrefix(prefixSubscription, "kernel: event subscriptions")
	r.ClaimPrefix(prefixRetiredSubscription, "kernel: retired subscription names")
	r.Add(OpSpec{
		Op:      OpPutSubscription,
		Name:    "PutSubscription",
		Example: &PutSubscription{Subscription: Subscription{Name: "shop", Kind: 1, Target: "https://shop.example/hook", Types: []string{"INV"}, StartAfter: []uint64{7, 0}}},
		Decode:  func(d *Decoder) Command { return &PutSubscription{Subscription: *ReadSubscription(d)} },
		Apply: func(b *Batch, c Command) *Result {
			s := c.(*PutSubscription).Subscription
			if rejection := validSubscription(&s); rejection != nil {
				return Fail(rejection)
			}
			k := Key(prefixSubscription, s.Name)
			switch subscriptionState(b, s.Name) {
			case subscriptionLive:
				return Fail(Rejectf(CodeSubscriptionExists, "subscription %q exists", s.Name))
			case subscriptionRetired:
				return Fail(Rejectf(CodeSubscriptionNameRetired,
					"subscription %q was deleted; a name is never reused (the shards keep its cursors and dead letters): choose another", s.Name))
			}
			count := b.m.outbox.subscriptionsAdded
			if err := b.Scan([]byte{prefixSubscription}, func(_, _ []byte) error { count++; return nil }); err != nil {
				panic(fmt.Sprintf("fsm: count subscriptions: %v", err))
			}
			if count >= SubscriptionsMax {
				return Fail(Rejectf(CodeSubscriptionsLimitReach, "a cluster has at most %d subscriptions", SubscriptionsMax))
			}
			s.CreatedAt = b.Now
			e := Encoder{}
			s.Encode(&e)
			b.Set(k, e.Buf)
			noteSubscription(b, s.Name, subscriptionLive)
			return &Result{Value: &s}
		},
		DecodeValue: func(d *Decoder) Value { return ReadSubscription(d) },
	})
	r.Add(OpSpec{
		Op:      OpDeleteSubscription,
		Name:    "DeleteSubscription",
		Example: &DeleteSubscription{Name: "shop"},
		Decode:  func(d *Decoder) Command { return &DeleteSubscription{Name: d.String()} },
		Apply: func(b *Batch, c Command) *Result {
			name := c.(*DeleteSubscription).Name
			if subscriptionState(b, name) != subscriptionLive {
				return Fail(Rejectf(CodeSubscriptionNotFound, "no subscription %q", name))
			}
			b.Delete(Key(prefixSubscription, name))
			b.Set(Key(prefixRetiredSubscription, name), binary.AppendVarint(nil, b.Now))
			noteSubscription(b, name, subscriptionRetired)
			return &Result{}
		},
	})
}

// A subscription name is unused, live or retired.
const (
	subscriptionUnused uint8 = iota
	subscriptionLive
	subscriptionRetired
)

// subscriptionState is a name's state as the batch left it.
func subscriptionState(b *Batch, name string) uint8 {
	if state, ok := b.m.outbox.subscriptions[name]; ok {
		return state
	}
	for _, probe := range []struct {
		prefix byte
		state  uint8
	}{{prefixSubscription, subscriptionLive}, {prefixRetiredSubscription, subscriptionRetired}} {
		v, err := b.Get(Key(probe.prefix, name))
		if err != nil {
			panic(fmt.Sprintf("fsm: read subscription: %v", err)) // the store failed
		}
		if v != nil {
			return probe.state
		}
	}
	return subscriptionUnused
}

// noteSubscription records a creation (live) or deletion (retired) for the rest of the batch.
func noteSubscription(b *Batch, name string, state uint8) {
	o := &b.m.outbox
	if o.subscriptions == nil {
		o.subscriptions = map[string]uint8{}
	}
	o.subscriptions[name] = state
	if state == subscriptionLive {
		o.subscriptionsAdded++
	} else {
		o.subscriptionsAdded--
	}
}

// Subscriptions returns every subscription, by name. It reads the store: call it on the
// metadata shard's machine.
func (m *Machine) Subscriptions() ([]Subscription, error) {
	var subs []Subscription
	err := m.store.Read(func() error {
		return m.store.Scan([]byte{prefixSubscription}, func(_, v []byte) error {
			d := NewDecoder(v)
			s := ReadSubscription(d)
			if err := d.Finish("subscription"); err != nil {
				return err
			}
			subs = append(subs, *s)
			return nil
		})
	})
	return subs, err
}
