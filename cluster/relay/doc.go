// Package relay delivers a shard's outbox to its subscribers while this node leads the shard.
//
// It owns the delivery engine (one goroutine per led shard and subscriber: read the replicated
// cursor, fetch the events after it, deliver the ones the subscriber's filter matches in
// sequence order, acknowledge progress through a replicated ack), the webhook transport with
// GigaWallet's signature headers, the MQTT transport (QoS 1 publishes through Eclipse Paho),
// retries with exponential backoff and full jitter, dead
// letters after the last attempt, subscriber filters and URL and topic validation, and the
// delivery metrics. Everything else reaches it through small interfaces (Source, Cursors, DeadLetters,
// Leadership, Subscriptions, Transport), which the node wires to the shard's state machine and
// Raft.
//
// What it must never do:
//   - hold events only in memory as the record of delivery: the replicated cursor (Cursors.Ack)
//     and the replicated dead-letter list are the only record; a new leader resumes from them,
//     so delivery is at least once and events are redelivered, never lost, on a leader change;
//   - block the apply loop: Engine.Notify never waits, and a slow or dead receiver holds only
//     its own (shard, subscriber) goroutine;
//   - emit events about its own deliveries: an ack changes a cursor and nothing else, so
//     delivering to a subscriber of ALL cannot feed itself (GigaWallet's SYS_MSG loop).
package relay
