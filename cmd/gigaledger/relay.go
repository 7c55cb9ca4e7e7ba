package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/gigaledger/gigaledger/backend"
	"github.com/gigaledger/gigaledger/cluster"
	"github.com/gigaledger/gigaledger/cluster/relay"
	"github.com/gigaledger/gigaledger/cluster/routing"
	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/httpapi"
	"github.com/prometheus/client_golang/prometheus"
)

// The event relay's wiring (cluster/relay has the engine; its DESIGN.md the protocol): the
// shards this node leads deliver their outboxes to the cluster's subscriptions. Cursors and dead
// letters are replicated through the shard's log; subscriptions are read from the metadata
// shard, wherever it is hosted.

// relayShards gives the relay a node's shards: cursors, acks, dead letters and leadership.
type relayShards struct {
	node *cluster.Node
	subs *relaySubscriptions
}

func (r relayShards) machine(shardID int) (*fsm.Machine, error) {
	m, ok := r.node.StateMachine(shardID).(*fsm.Machine)
	if !ok || m == nil {
		return nil, fmt.Errorf("relay: shard %d is not hosted here", shardID)
	}
	return m, nil
}

// Cursor implements relay.Cursors: the replicated cursor, or the subscription's start on the
// shard when that is further (a subscription "from now" skips what came before it).
func (r relayShards) Cursor(shardID int, subscriber string) (uint64, error) {
	m, err := r.machine(shardID)
	if err != nil {
		return 0, err
	}
	cursor, err := m.OutboxCursor(subscriber)
	if err != nil {
		return 0, err
	}
	return max(cursor, r.subs.startAfter(subscriber, shardID)), nil
}

// Ack implements relay.Cursors.
func (r relayShards) Ack(ctx context.Context, shardID int, subscriber string, sequence uint64) error {
	return r.propose(ctx, shardID, &fsm.OutboxAck{Subscriber: subscriber, Sequence: sequence})
}

// Add implements relay.DeadLetters: the dead letter and the cursor past it, in one proposal.
func (r relayShards) Add(ctx context.Context, shardID int, subscriber string, env relay.Envelope, reason string) error {
	if len(reason) > fsm.DeadLetterReasonMaxBytes {
		reason = reason[:fsm.DeadLetterReasonMaxBytes]
	}
	return r.propose(ctx, shardID, &fsm.OutboxDeadLetter{Subscriber: subscriber, Sequence: env.Sequence, EventType: env.Type, Reason: reason})
}

// Redrives implements relay.Redrives.
func (r relayShards) Redrives(shardID int, subscriber string, limit int) ([]uint64, error) {
	m, err := r.machine(shardID)
	if err != nil {
		return nil, err
	}
	return m.Redrives(subscriber, limit)
}

// Redriven implements relay.Redrives.
func (r relayShards) Redriven(ctx context.Context, shardID int, subscriber string, sequence uint64, delivered bool, reason string) error {
	if len(reason) > fsm.DeadLetterReasonMaxBytes {
		reason = reason[:fsm.DeadLetterReasonMaxBytes]
	}
	return r.propose(ctx, shardID, &fsm.OutboxRedriven{Subscriber: subscriber, Sequence: sequence, Delivered: delivered, Reason: reason})
}

func (r relayShards) propose(ctx context.Context, shardID int, cmd fsm.Command) error {
	_, err := proposeToShard(ctx, r.node, shardID, cmd)
	return err
}

// proposeToShard proposes a kernel command that names its shard (fsm.Route.Pinned) through
// the shard's leader, and returns its result's value.
func proposeToShard(ctx context.Context, node *cluster.Node, shardID int, cmd fsm.Command) (fsm.Value, error) {
	out, err := node.Propose(ctx, shardID, fsm.EncodeCommand(cmd))
	if err != nil {
		return nil, err
	}
	result, ok := out.(*fsm.Result)
	if !ok {
		return nil, fmt.Errorf("shard %d answered %T", shardID, out)
	}
	if result.Err != nil {
		return nil, result.Err
	}
	return result.Value, nil
}

// deadLetterRedriver marks dead letters for re-delivery (httpapi.DeadLetterRedriver); the relay
// of each shard's leader delivers them.
type deadLetterRedriver struct {
	node *cluster.Node
}

// redrivePagesMax bounds the OpOutboxRedrive proposals of one request per shard: each looks at
// fsm.RedriveScanMaxCount dead letters, of at most fsm.OutboxRetention events for each of at
// most relay.SubscriptionMaxCount subscribers.
const redrivePagesMax = fsm.OutboxRetention / fsm.RedriveScanMaxCount * relay.SubscriptionMaxCount

// RedriveDeadLetters implements httpapi.DeadLetterRedriver.
func (r deadLetterRedriver) RedriveDeadLetters(ctx context.Context, subscriber string) (uint64, error) {
	var marked uint64
	for shardID := range r.node.ShardCount() {
		after := uint64(0)
		for page := 0; ; page++ {
			if page == redrivePagesMax {
				return marked, fmt.Errorf("shard %d: dead letters beyond %d pages", shardID, redrivePagesMax)
			}
			value, err := proposeToShard(ctx, r.node, shardID, &fsm.OutboxRedrive{Subscriber: subscriber, After: after})
			if err != nil {
				return marked, fmt.Errorf("mark the dead letters of shard %d: %w", shardID, err)
			}
			result, ok := value.(*fsm.RedriveMarked)
			if !ok {
				return marked, fmt.Errorf("shard %d answered %T", shardID, value)
			}
			marked += result.Marked
			if result.Done {
				break
			}
			after = result.Last
		}
	}
	return marked, nil
}

// LedShards implements relay.Leadership.
func (r relayShards) LedShards() []int {
	var led []int
	for _, k := range r.node.HostedShards() {
		if s := r.node.Shard(k); s != nil && s.LeaderReady() {
			led = append(led, k)
		}
	}
	return led
}

// relaySubscriptions keeps the cluster's subscriptions in memory for the relay (which must not
// wait on a read when it reconciles): a goroutine reads them from the metadata shard every
// relaySubscriptionsRefresh, through read (a linearizable read wherever shard 0 is hosted).
type relaySubscriptions struct {
	read   func(ctx context.Context) ([]fsm.Subscription, error)
	logger *slog.Logger
	// configured are the node's own (--callback), delivered beside the stored ones.
	configured []relay.Subscription

	now func() time.Time // time.Now, or a test's clock

	mu      sync.Mutex
	current []relay.Subscription
	starts  map[string][]uint64
	// readOnce says a read has succeeded since the node started; failingSince is when the
	// current run of failed reads began (zero: the last read succeeded), and warned whether
	// that run was logged.
	readOnce     bool
	failingSince time.Time
	warned       bool
}

// relaySubscriptionsRefresh is how often the subscriptions are read again: a new or deleted
// subscription takes effect within about this long.
const relaySubscriptionsRefresh = time.Second

// relaySubscriptionsStartupGrace is how long reads may fail after the node starts before it
// says so: until the metadata shard has elected its first leader every read fails, which is
// not worth a warning on every start (a new user's first screen showed one).
const relaySubscriptionsStartupGrace = 15 * time.Second

// run refreshes the subscriptions until ctx ends; onChange is called after each read.
func (s *relaySubscriptions) run(ctx context.Context, onChange func()) {
	ticker := time.NewTicker(relaySubscriptionsRefresh)
	defer ticker.Stop()
	for {
		s.refresh(ctx)
		onChange()
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

func (s *relaySubscriptions) refresh(ctx context.Context) {
	readCtx, cancel := context.WithTimeout(ctx, relaySubscriptionsRefresh)
	stored, err := s.read(readCtx)
	cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		if s.current == nil {
			s.current = append(s.current, s.configured...) // deliver the configured ones meanwhile
		}
		now := s.now()
		if s.failingSince.IsZero() {
			s.failingSince = now
		}
		// Once per run of failures: at once when reads worked before, after the startup grace
		// when none has yet.
		if !s.warned && ctx.Err() == nil && (s.readOnce || now.Sub(s.failingSince) >= relaySubscriptionsStartupGrace) {
			s.logger.Warn("relay: cannot read the subscriptions; delivering the last ones read", "err", err,
				"failing_for", now.Sub(s.failingSince).Round(time.Second).String())
			s.warned = true
		}
		return
	}
	s.readOnce, s.failingSince, s.warned = true, time.Time{}, false
	s.current = append(s.current[:0], s.configured...)
	s.starts = make(map[string][]uint64, len(stored))
	for _, st := range stored {
		sub, err := relaySubscription(st)
		if err != nil {
			s.logger.Error("relay: a stored subscription is not deliverable; skipped", "subscription", st.Name, "err", err)
			continue
		}
		s.current = append(s.current, sub)
		s.starts[st.Name] = st.StartAfter
	}
}

// Subscriptions implements relay.Subscriptions.
func (s *relaySubscriptions) Subscriptions() ([]relay.Subscription, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]relay.Subscription(nil), s.current...), nil
}

func (s *relaySubscriptions) startAfter(name string, shardID int) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if starts := s.starts[name]; shardID < len(starts) {
		return starts[shardID]
	}
	return 0
}

// relaySubscription is a stored subscription as the relay delivers it.
func relaySubscription(st fsm.Subscription) (relay.Subscription, error) {
	filter, err := relay.ParseFilter(st.Types)
	if err != nil {
		return relay.Subscription{}, err
	}
	return relay.Subscription{Name: st.Name, Kind: relay.Kind(st.Kind), URL: st.Target, Secret: st.Secret, Filter: filter}, nil
}

// relaySource reads a shard's events through the router (a local linearizable read on the
// leader that delivers them) and renders each as GET /events does.
type relaySource struct {
	router *routing.Router
	// gigPayEnv names the wallet app's environment in GigPay token links (--gigpay-env).
	gigPayEnv string
}

// Events implements relay.Source.
func (s relaySource) Events(ctx context.Context, shardID int, after uint64, limit int) ([]relay.Envelope, uint64, error) {
	reader, err := s.router.Read(ctx)
	if err != nil {
		return nil, 0, err
	}
	part, err := reader.ListEvents(shardID, after, min(limit, backend.EventsMaxCount))
	if err != nil {
		return nil, 0, err
	}
	batch := make([]relay.Envelope, 0, len(part.Events))
	for _, ev := range part.Events {
		envelope := httpapi.RenderEventIn(shardID, ev, s.gigPayEnv)
		body, err := json.Marshal(envelope)
		if err != nil {
			return nil, 0, fmt.Errorf("relay: render event %d of shard %d: %w", ev.Sequence, shardID, err)
		}
		batch = append(batch, relay.Envelope{Shard: shardID, Sequence: ev.Sequence, EventID: envelope.EventID, Type: ev.Type,
			Time: time.UnixMilli(ev.TimeMs), Body: body})
	}
	return batch, part.First, nil
}

// Newest implements relay.Source.
func (s relaySource) Newest(shardID int) (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), relaySubscriptionsRefresh)
	defer cancel()
	reader, err := s.router.Read(ctx)
	if err != nil {
		return 0, err
	}
	part, err := reader.ListEvents(shardID, 0, 0)
	if err != nil {
		return 0, err
	}
	return part.Last, nil
}

// configuredSubscriberNames are the names of the configuration's subscribers
// (callbacks.NAME, mqtt.NAME), for the admin API's re-drive.
func configuredSubscriberNames(cfg *serveConfig) []string {
	var names []string
	for _, sub := range slices.Concat(cfg.Callbacks, cfg.MQTTQueues) {
		names = append(names, sub.Name)
	}
	return names
}

// eventRelay is the running relay of a node.
type eventRelay struct {
	cancel context.CancelFunc
	done   sync.WaitGroup
	mqtt   *relay.MQTTTransport
}

// startRelay starts delivering the outboxes of the shards this node leads.
func startRelay(node *cluster.Node, router *routing.Router, registry prometheus.Registerer, cfg *serveConfig, logger *slog.Logger) (*eventRelay, error) {
	ownListeners := ownListeners(cfg)
	configured := slices.Concat(cfg.Callbacks, cfg.MQTTQueues)
	for _, sub := range configured {
		if err := sub.Validate(ownListeners); err != nil {
			return nil, fmt.Errorf("--callback: %w", err)
		}
	}
	subs := &relaySubscriptions{logger: logger, configured: configured, now: time.Now, read: func(ctx context.Context) ([]fsm.Subscription, error) {
		reader, err := router.Read(ctx)
		if err != nil {
			return nil, err
		}
		return reader.ListSubscriptions()
	}}
	shards := relayShards{node: node, subs: subs}
	mqtt := relay.NewMQTT(relay.MQTTTransportOptions{ClientIDSuffix: cfg.NodeID})
	var retry relay.RetryPolicy // zero: the relay's default
	if cfg.relayRetry != nil {
		retry = *cfg.relayRetry
	}
	engine, err := relay.New(relay.Config{Source: relaySource{router: router, gigPayEnv: cfg.GigPayEnv}, Cursors: shards, DeadLetters: shards,
		Leadership: shards, Subscriptions: subs, Metrics: relay.NewMetrics(registry), Logger: logger.With("component", "relay"),
		OwnListeners: ownListeners, Retry: retry, Redrives: shards,
		Transports: map[relay.Kind]relay.Transport{relay.KindWebhook: relay.NewWebhook(relay.WebhookOptions{}), relay.KindMQTT: mqtt}})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &eventRelay{cancel: cancel, mqtt: mqtt}
	r.done.Add(3)
	go func() { defer r.done.Done(); engine.Run(ctx) }()
	go func() { defer r.done.Done(); subs.run(ctx, engine.Refresh) }()
	go func() {
		defer r.done.Done()
		wakeDeliveries(ctx, func() map[int]eventSource {
			machines := map[int]eventSource{}
			for _, k := range node.HostedShards() {
				if m, ok := node.StateMachine(k).(*fsm.Machine); ok && m != nil {
					machines[k] = m
				}
			}
			return machines
		}, engine.Notify)
	}()
	return r, nil
}

// relayHostedRefresh is how often the relay looks for shards the node came to host (a replica
// moved to it) or stopped hosting, to wake their deliveries on events; until then a delivery
// still polls every relay.PollIntervalDefault.
const relayHostedRefresh = time.Second

// eventSource is a shard replica's outbox as the relay's waker sees it (*fsm.Machine).
type eventSource interface{ EventsChanged() <-chan struct{} }

// wakeDeliveries notifies a shard's deliveries as soon as a batch with events commits on the
// node's replica of it, for every shard hosted() names: those hosted at start, and every
// replica opened later (a move, a reopen), checked every relayHostedRefresh. It returns when
// ctx ends, after its waiters.
func wakeDeliveries(ctx context.Context, hosted func() map[int]eventSource, notify func(shard int)) {
	type waiter struct {
		machine eventSource
		stop    context.CancelFunc
	}
	var wg sync.WaitGroup
	waiters := map[int]waiter{}
	defer func() {
		for _, w := range waiters {
			w.stop()
		}
		wg.Wait()
	}()
	ticker := time.NewTicker(relayHostedRefresh)
	defer ticker.Stop()
	for {
		machines := hosted()
		for k, w := range waiters {
			if machines[k] != w.machine {
				w.stop()
				delete(waiters, k)
			}
		}
		for k, m := range machines {
			if _, ok := waiters[k]; ok {
				continue
			}
			wctx, stop := context.WithCancel(ctx)
			waiters[k] = waiter{machine: m, stop: stop}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-wctx.Done():
						return
					case <-m.EventsChanged():
						notify(k)
					}
				}
			}()
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// Close stops every delivery and waits for them.
func (r *eventRelay) Close() {
	r.cancel()
	r.done.Wait()
	r.mqtt.Close()
}
