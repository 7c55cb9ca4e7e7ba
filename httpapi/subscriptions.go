package httpapi

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gigaledger/gigaledger/backend"
	"github.com/gigaledger/gigaledger/cluster/keyspace"
	"github.com/gigaledger/gigaledger/cluster/relay"
	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gin-gonic/gin"
)

// Event subscriptions (issue 11): who receives the outbox's events. Stored in the metadata
// shard (fsm/subscription.go) and delivered by the leader of every shard (cluster/relay). A
// subscription starts "now" by default: its record holds every shard's newest event at
// creation, and delivery begins after it; "oldest" starts from the oldest event each shard
// keeps.

// subscriptionRequest is the body of POST /subscriptions.
type subscriptionRequest struct {
	Name   string   `json:"name"`
	Kind   string   `json:"kind"`
	URL    string   `json:"url"`
	Secret *string  `json:"secret"`
	Types  []string `json:"types"`
	From   *string  `json:"from"`
}

// Subscription is a subscription as the API shows it: never its secret.
type Subscription struct {
	Name      string   `json:"name"`
	Kind      string   `json:"kind"`
	URL       string   `json:"url"`
	Types     []string `json:"types"`
	SecretSet bool     `json:"secretSet"`
	CreatedAt int64    `json:"createdAt"`
}

// DeadLetter is an event a subscriber's delivery gave up on.
type DeadLetter struct {
	Subscriber string `json:"subscriber"`
	EventID    string `json:"eventId"`
	Shard      int    `json:"shard"`
	Sequence   uint64 `json:"sequence"`
	EventType  string `json:"eventType"`
	Reason     string `json:"reason"`
	CreatedAt  int64  `json:"createdAt"`
}

func subscriptionOf(s *fsm.Subscription) Subscription {
	return Subscription{Name: s.Name, Kind: relay.Kind(s.Kind).String(), URL: s.Target, Types: s.Types,
		SecretSet: s.Secret != "", CreatedAt: s.CreatedAt}
}

// decodeSubscription validates a new subscription as the relay will deliver it (ownListeners:
// this node's listeners, which a webhook must not target).
func decodeSubscription(body io.Reader, ownListeners []string) (*fsm.Subscription, bool, *apiError) {
	var request subscriptionRequest
	if apiErr := decodeBody(body, &request, true); apiErr != nil {
		return nil, false, apiErr
	}
	if request.Kind != "" && request.Kind != relay.KindWebhook.String() {
		return nil, false, invalidArgument("kind must be %q (MQTT queues are configured in the config file)", relay.KindWebhook.String())
	}
	if !fsm.Printable(request.Name) {
		// An identifier the client chooses, checked as customer IDs are (relay.Subscription's
		// Validate checks less: it runs again on every stored subscription).
		return nil, false, invalidArgument("name must be printable characters (no control, invisible, format or other space characters)")
	}
	for _, reserved := range []string{"callbacks.", "mqtt."} {
		if strings.HasPrefix(request.Name, reserved) {
			return nil, false, invalidArgument("names starting with %q belong to subscribers of the configuration", reserved)
		}
	}
	filter, err := relay.ParseFilter(request.Types)
	if err != nil {
		return nil, false, invalidArgument("types: %v", err)
	}
	sub := relay.Subscription{Name: request.Name, Kind: relay.KindWebhook, URL: request.URL, Filter: filter}
	if request.Secret != nil {
		sub.Secret = *request.Secret
	}
	if err := sub.Validate(ownListeners); err != nil {
		return nil, false, invalidArgument("%v", err)
	}
	fromNow := true
	if request.From != nil {
		switch *request.From {
		case "now":
		case "oldest":
			fromNow = false
		default:
			return nil, false, invalidArgument(`from must be "now" (the default) or "oldest"`)
		}
	}
	return &fsm.Subscription{Name: sub.Name, Kind: uint8(relay.KindWebhook), Target: sub.URL, Secret: sub.Secret,
		Types: filter.Entries()}, fromNow, nil
}

func (s *server) createSubscription(c *gin.Context) {
	sub, fromNow, apiErr := decodeSubscription(c.Request.Body, s.ownListeners)
	if apiErr != nil {
		s.fail(c, apiErr)
		return
	}
	if fromNow {
		ctx, cancel := s.withTimeout(c)
		reader, err := s.backend.Read(ctx)
		if err == nil {
			sub.StartAfter = make([]uint64, reader.ShardCount())
			for k := range sub.StartAfter {
				var part *backend.ShardEvents
				if part, err = reader.ListEvents(k, 0, 0); err != nil {
					break
				}
				sub.StartAfter[k] = part.Last
			}
		}
		cancel()
		if err != nil {
			s.fail(c, fromBackendError(err, false))
			return
		}
	}
	if result, ok := s.propose(c, &fsm.PutSubscription{Subscription: *sub}); ok {
		s.ok(c, http.StatusCreated, subscriptionOf(result.Value.(*fsm.Subscription)))
	}
}

func (s *server) listSubscriptions(c *gin.Context) {
	s.query(c, func(reader Reader) (any, error) {
		subs, err := reader.ListSubscriptions()
		views := make([]Subscription, 0, len(subs))
		for i := range subs {
			views = append(views, subscriptionOf(&subs[i]))
		}
		return itemsResponse[Subscription]{Items: views}, err
	})
}

func (s *server) getSubscription(c *gin.Context) {
	name := c.Param("name")
	s.query(c, func(reader Reader) (any, error) {
		subs, err := reader.ListSubscriptions()
		if err != nil {
			return nil, err
		}
		i := slices.IndexFunc(subs, func(sub fsm.Subscription) bool { return sub.Name == name })
		if i < 0 {
			return nil, fsm.Rejectf(fsm.CodeSubscriptionNotFound, "no subscription %q", name)
		}
		return subscriptionOf(&subs[i]), nil
	})
}

func (s *server) deleteSubscription(c *gin.Context) {
	if _, ok := s.propose(c, &fsm.DeleteSubscription{Name: c.Param("name")}); ok {
		c.Status(http.StatusNoContent)
	}
}

// pathDeadLetters is the dead-letter list's route.
const pathDeadLetters = "/subscriptions/:name/dead-letters"

// deadLettersPageMax bounds the dead letters one answer lists per shard.
const deadLettersPageMax = 1000

// listDeadLetters is GET /subscriptions/:name/dead-letters?shard=&afterSequence=&limit=: the events
// the subscriber's delivery gave up on, oldest first; of one shard from a sequence, or the first
// limit of every shard.
func (s *server) listDeadLetters(c *gin.Context) {
	name := c.Param("name")
	limit := 100
	if text, present := c.GetQuery("limit"); present {
		n, err := strconv.Atoi(text)
		if err != nil || n < 1 || n > deadLettersPageMax {
			s.fail(c, invalidArgument("limit must be 1..%d", deadLettersPageMax))
			return
		}
		limit = n
	}
	shard, after := -1, uint64(0)
	if text, present := c.GetQuery("shard"); present {
		n, err := strconv.Atoi(text)
		if err != nil || n < 0 || n >= keyspace.ShardCountMax {
			s.fail(c, invalidArgument("shard must be a shard number"))
			return
		}
		shard = n
	}
	if text, present := c.GetQuery("afterSequence"); present {
		n, err := strconv.ParseUint(text, 10, 64)
		if err != nil || shard < 0 {
			s.fail(c, invalidArgument("afterSequence must be a sequence number, with shard"))
			return
		}
		after = n
	}
	s.query(c, func(reader Reader) (any, error) {
		shards := []int{shard}
		if shard < 0 {
			shards = shards[:0]
			for k := range reader.ShardCount() {
				shards = append(shards, k)
			}
		} else if shard >= reader.ShardCount() {
			return nil, fsm.Rejectf(fsm.CodeInvalidArgument, "shard %d: the cluster has %d", shard, reader.ShardCount())
		}
		views := []DeadLetter{}
		for _, k := range shards {
			letters, err := reader.ListDeadLetters(k, name, after, limit)
			if err != nil {
				return nil, err
			}
			for _, dl := range letters {
				views = append(views, DeadLetter{Subscriber: dl.Subscriber, EventID: EventID(k, dl.Sequence), Shard: k,
					Sequence: dl.Sequence, EventType: dl.EventType, Reason: dl.Reason, CreatedAt: dl.Time})
			}
		}
		if len(views) == 0 {
			// No letters and, unless the subscription exists, no subscriber: 404 as the re-drive
			// answers (a deleted subscription's letters, while any remain, are still listed).
			subs, err := reader.ListSubscriptions()
			if err != nil {
				return nil, err
			}
			if !s.isSubscriber(subs, name) {
				return nil, fsm.Rejectf(fsm.CodeSubscriptionNotFound, "no subscription %q", name)
			}
		}
		return itemsResponse[DeadLetter]{Items: views}, nil
	})
}

// DeadLetterRedriver asks for a subscriber's dead letters to be delivered again: each shard's
// leader delivers the marked ones, and removes each dead letter that arrives (cluster/relay).
type DeadLetterRedriver interface {
	// RedriveDeadLetters marks every dead letter of subscriber, in every shard, and returns how
	// many are marked. Safe to repeat: a letter marked twice is delivered once more.
	RedriveDeadLetters(ctx context.Context, subscriber string) (marked uint64, err error)
}

// RedriveAnswer is the answer of POST /subscriptions/:name/dead-letters/redrive.
type RedriveAnswer struct {
	Subscriber string `json:"subscriber"`
	Marked     uint64 `json:"marked"`
}

// redriveDeadLetters is POST /subscriptions/:name/dead-letters/redrive: the subscriber's dead
// letters are delivered again, out of sequence order, within the retry budget; those that
// arrive leave the list, the others stay with the new reason.
// isSubscriber reports whether name is a subscriber: replicated (subs) or the configuration's.
func (s *server) isSubscriber(subs []fsm.Subscription, name string) bool {
	return slices.Contains(s.configured, name) || slices.ContainsFunc(subs, func(sub fsm.Subscription) bool { return sub.Name == name })
}

func (s *server) redriveDeadLetters(c *gin.Context) {
	if apiErr := decodeEmpty(c.Request.Body); apiErr != nil {
		s.fail(c, apiErr)
		return
	}
	name := c.Param("name")
	if s.redriver == nil {
		writeError(c, &apiError{status: http.StatusServiceUnavailable, code: CodeUnavailable, message: "no event relay here"})
		return
	}
	ctx, cancel := s.withTimeout(c)
	defer cancel()
	reader, err := s.backend.Read(ctx)
	if err != nil {
		s.fail(c, fromBackendError(err, false))
		return
	}
	subs, err := reader.ListSubscriptions()
	if err == nil && !s.isSubscriber(subs, name) {
		// Neither replicated nor the configuration's (whose dead letters could not be re-driven
		// before: a probe found callbacks.NAME's letters listed and every re-drive 404).
		err = fsm.Rejectf(fsm.CodeSubscriptionNotFound, "no subscription %q", name)
	}
	if err != nil {
		s.fail(c, fromBackendError(err, false))
		return
	}
	marked, err := s.redriver.RedriveDeadLetters(ctx, name)
	if err != nil {
		s.fail(c, &apiError{status: http.StatusServiceUnavailable, code: CodeUnavailable,
			message: "marking the dead letters did not finish; it is safe to repeat", retryAfter: true, cause: err})
		return
	}
	s.ok(c, http.StatusOK, RedriveAnswer{Subscriber: name, Marked: marked})
}
