package relay

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/gigaledger/gigaledger/fsm"
)

// Kind is how a subscriber receives events.
type Kind int

// Kinds of subscriber. Only add to the end: a Kind may be stored.
const (
	KindWebhook Kind = iota + 1
	KindMQTT
)

func (k Kind) String() string {
	switch k {
	case KindWebhook:
		return "webhook"
	case KindMQTT:
		return "mqtt"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Subscription is one subscriber: who it is, where its events go and which it wants.
type Subscription struct {
	// Name identifies the subscriber and its replicated cursor on every shard
	// (1..fsm.SubscriberMaxLength printable characters).
	Name string
	Kind Kind
	// URL is where a webhook POSTs (ValidateWebhookURL), or the broker an MQTT subscriber's
	// events are published to (ValidateBrokerURL).
	URL string
	// Secret signs each webhook request (X-Giga-Signature); empty: requests are not signed.
	// MQTT subscriptions have none (the broker authenticates with MQTT.Password).
	Secret string
	Filter Filter
	// MQTT is the rest of an MQTT subscriber's settings; nil for every other kind.
	MQTT *MQTTOptions
}

// Validate checks what the engine relies on, the URL against ownListeners (this node's
// listeners, see ValidateWebhookURL). The API checks a new subscription on the node that
// receives it; the engine checks again on every node that delivers it, since a subscription is
// replicated to nodes whose own listeners the first node did not know.
func (s *Subscription) Validate(ownListeners []string) error { return s.validate(ownListeners, true) }

// ValidateStored is Validate for a subscription already stored (the engine's check on every
// node), without the rule that a host be no number (checkHostForm): a subscription an earlier
// release stored with such a host kept being tried and dead-lettered; refused here, it was
// skipped, and its events were neither delivered nor dead-lettered (a probe's rolling upgrade).
func (s *Subscription) ValidateStored(ownListeners []string) error {
	return s.validate(ownListeners, false)
}

func (s *Subscription) validate(ownListeners []string, hostForm bool) error {
	if s.Name == "" || !fsm.ValidText(s.Name, fsm.SubscriberMaxLength) || strings.ContainsRune(s.Name, '/') {
		// No '/': the name is a path segment (/subscriptions/{name}); one with '/' was created
		// and could never be read, deleted or re-driven (found by a probe).
		return fmt.Errorf("subscriber name must be 1..%d printable characters without '/'", fsm.SubscriberMaxLength)
	}
	if s.Kind != KindWebhook && s.Kind != KindMQTT {
		return fmt.Errorf("subscriber %q: unknown kind %v", s.Name, s.Kind)
	}
	if len(s.Secret) > SecretMaxBytes {
		return fmt.Errorf("subscriber %q: secret longer than %d bytes", s.Name, SecretMaxBytes)
	}
	if s.Filter.IsZero() {
		return fmt.Errorf("subscriber %q: empty filter (use ALL for every event)", s.Name)
	}
	if s.Kind == KindMQTT {
		if s.Secret != "" {
			return fmt.Errorf("subscriber %q: an MQTT subscriber has no HMAC secret (the broker's password is MQTT.Password)", s.Name)
		}
		if s.MQTT == nil {
			return fmt.Errorf("subscriber %q: MQTT settings missing", s.Name)
		}
		if err := validateBrokerURL(s.URL, ownListeners, hostForm); err != nil {
			return fmt.Errorf("subscriber %q: %w", s.Name, err)
		}
		if err := s.MQTT.validate(s.URL); err != nil {
			return fmt.Errorf("subscriber %q: %w", s.Name, err)
		}
		return nil
	}
	if s.MQTT != nil {
		return fmt.Errorf("subscriber %q: MQTT settings on a %v subscriber", s.Name, s.Kind)
	}
	return validateWebhookURL(s.URL, ownListeners, hostForm)
}

// equal reports whether a change from s to o needs the deliveries restarted.
func (s *Subscription) equal(o *Subscription) bool {
	sameMQTT := (s.MQTT == nil) == (o.MQTT == nil) && (s.MQTT == nil || *s.MQTT == *o.MQTT)
	return s.Name == o.Name && s.Kind == o.Kind && s.URL == o.URL && s.Secret == o.Secret &&
		slices.Equal(s.Filter.entries, o.Filter.entries) && sameMQTT
}

// Limits of a subscription.
const (
	// FilterMaxEntries bounds the categories and types of one filter.
	FilterMaxEntries = 64
	// EventTypeMaxLength bounds an event type named in a filter.
	EventTypeMaxLength = 64
	// URLMaxLength bounds a webhook URL.
	URLMaxLength = 2048
	// SecretMaxBytes bounds a webhook's HMAC secret.
	SecretMaxBytes = 1024
)

// Categories a filter may name. An event's category is its type's prefix before the first '_'
// (INV_TOTAL_PAYMENT_CONFIRMED is INV); ALL matches every event. NET is accepted so that
// GigaWallet's filters keep working (it declared NET_* events and never sent one; neither does
// this node). GIGPAY is the GigPay family's (GIGPAY_TOKEN_*, GIGPAY_PAYMENT_*). GET /events
// takes the same list.
var Categories = []string{"ALL", "SYS", "ACC", "INV", "PAYMENT", "LEDGER", "TOKEN", "NET", "GIGPAY"}

// Filter selects the events a subscriber receives: by category, by exact type, or ALL. The
// zero Filter matches nothing.
type Filter struct {
	// entries are upper-case categories and types, sorted and without duplicates, so two
	// filters that select the same entries compare equal.
	entries []string
}

// ErrUnknownCategory is wrapped by ParseFilter's error for a category (or a type's prefix)
// outside Categories.
var ErrUnknownCategory = errors.New("unknown event category")

// ParseFilter parses a subscriber's types list (GigaWallet's `types`): each entry is a
// category (ALL, SYS, ACC, INV, PAYMENT, LEDGER, TOKEN, GIGPAY) or an exact event type whose category
// is one of them (PAYMENT_SENT). Entries are case-insensitive. It refuses an empty list, an
// unknown category and a malformed type.
func ParseFilter(types []string) (Filter, error) {
	if len(types) == 0 {
		return Filter{}, errors.New("filter: no types (use ALL for every event)")
	}
	if len(types) > FilterMaxEntries {
		return Filter{}, fmt.Errorf("filter: %d types, at most %d", len(types), FilterMaxEntries)
	}
	entries := make([]string, 0, len(types))
	for _, t := range types {
		entry := strings.ToUpper(strings.TrimSpace(t))
		if entry == "" || len(entry) > EventTypeMaxLength {
			return Filter{}, fmt.Errorf("filter: type %q must be 1..%d characters", t, EventTypeMaxLength)
		}
		for _, r := range entry {
			if (r < 'A' || r > 'Z') && (r < '0' || r > '9') && r != '_' {
				return Filter{}, fmt.Errorf("filter: type %q: only letters, digits and '_'", t)
			}
		}
		if category := Category(entry); !slices.Contains(Categories, category) {
			return Filter{}, fmt.Errorf("filter: %q: %w %q (known: %s)", t, ErrUnknownCategory, category, strings.Join(Categories, ", "))
		}
		if entry == "ALL" || strings.HasPrefix(entry, "ALL_") {
			entry = "ALL" // ALL_ is no type of anything; read it as ALL rather than match nothing
		}
		entries = append(entries, entry)
	}
	slices.Sort(entries)
	return Filter{entries: slices.Compact(entries)}, nil
}

// Category is an event type's category: its prefix before the first '_' (the whole type when
// it has none).
func Category(eventType string) string {
	category, _, _ := strings.Cut(eventType, "_")
	return category
}

// Matches reports whether the filter selects an event of eventType.
func (f Filter) Matches(eventType string) bool {
	category := Category(eventType)
	for _, e := range f.entries {
		if e == "ALL" || e == category || e == eventType {
			return true
		}
	}
	return false
}

// IsZero reports whether the filter selects nothing (it was not parsed).
func (f Filter) IsZero() bool { return len(f.entries) == 0 }

// Entries returns the filter's categories and types, upper case and sorted.
func (f Filter) Entries() []string { return slices.Clone(f.entries) }

// String returns the entries joined by commas.
func (f Filter) String() string { return strings.Join(f.entries, ",") }

// ValidateWebhookURL checks a webhook URL at configuration time: http or https, a host, no
// user information (credentials would be logged and sent in the clear), no fragment, at most
// URLMaxLength bytes, and not one of the node's own listeners (host:port as the node binds
// them, e.g. "127.0.0.1:8081" or ":8081"), so a node never posts events to its own API. Host
// names are compared literally, except that "localhost" is loopback: a DNS name that resolves
// to the node is not caught here (the engine does not follow redirects, so a receiver cannot
// bounce a request there either).
func ValidateWebhookURL(raw string, ownListeners []string) error {
	return validateWebhookURL(raw, ownListeners, true)
}

func validateWebhookURL(raw string, ownListeners []string, hostForm bool) error {
	if raw == "" {
		return errors.New("webhook URL: empty")
	}
	if len(raw) > URLMaxLength {
		return fmt.Errorf("webhook URL: %d bytes, at most %d", len(raw), URLMaxLength)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("webhook URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("webhook URL: scheme %q, want http or https", u.Scheme)
	}
	if u.User != nil {
		return errors.New("webhook URL: user information is not allowed (use the HMAC secret)")
	}
	if u.Hostname() == "" {
		return errors.New("webhook URL: no host")
	}
	if u.Fragment != "" {
		return errors.New("webhook URL: a fragment is not sent to the server; remove it")
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("webhook URL: port %q, want 1..65535", port)
	}
	if err := checkHostForm(u.Hostname()); hostForm && err != nil {
		return fmt.Errorf("webhook URL: %w", err)
	}
	if addr, isIP := hostAddr(u.Hostname()); isIP {
		if err := checkReceiverAddr(addr); err != nil {
			return fmt.Errorf("webhook URL: %w", err)
		}
	}
	for _, listener := range ownListeners {
		if sameListener(u.Hostname(), port, listener) {
			return fmt.Errorf("webhook URL: %s is this node's own listener %s", u.Host, listener)
		}
	}
	return nil
}

// sameListener reports whether host:port reaches listener (host:port as bound).
func sameListener(host, port, listener string) bool {
	listenHost, listenPort, err := net.SplitHostPort(listener)
	if err != nil || !samePort(listenPort, port) {
		return false
	}
	target, targetIsIP := hostAddr(host)
	bound, boundIsIP := hostAddr(listenHost)
	if listenHost == "" || (boundIsIP && bound.IsUnspecified()) {
		// Bound on every address: any loopback or unspecified host reaches it, and so does any
		// address of this machine.
		if !targetIsIP {
			return false
		}
		if target.IsLoopback() || target.IsUnspecified() {
			return true
		}
		return isLocalAddress(target)
	}
	if targetIsIP && boundIsIP {
		return target == bound || (target.IsLoopback() && bound.IsLoopback())
	}
	return strings.EqualFold(host, listenHost)
}

// samePort compares ports as numbers: a URL may write its port with leading zeros (":020081"),
// which dialing reads as 20081; compared as text, that passed the own-listener check (a probe's
// webhook then posted to the node's own admin API).
func samePort(a, b string) bool {
	x, errA := strconv.ParseUint(a, 10, 16)
	y, errB := strconv.ParseUint(b, 10, 16)
	return errA == nil && errB == nil && x == y
}

// checkReceiverAddr refuses addresses no receiver should have: the unspecified address, which
// reaches every listener of the node's own machine (the own-listener check could be passed with
// 0.0.0.0), and link-local ones, where clouds serve instance metadata and credentials
// (169.254.169.254). Private and loopback addresses stay allowed: a ledger inside a company's
// network delivers to its services there. Checked on the URL and again on every address a
// delivery dials (WebhookDialControl), so a name resolving there is refused too.
func checkReceiverAddr(addr netip.Addr) error {
	addr = addr.Unmap()
	switch {
	case addr.IsUnspecified():
		return fmt.Errorf("%s is the unspecified address (it reaches this machine's own listeners)", addr)
	case addr.IsLinkLocalUnicast() || addr.IsLinkLocalMulticast():
		return fmt.Errorf("%s is a link-local address (cloud instance metadata lives there)", addr)
	}
	return nil
}

// WebhookDialControl is a net.Dialer Control that refuses a connection to an address
// checkReceiverAddr refuses, whatever name or redirect led there.
func WebhookDialControl(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	if addr, err := netip.ParseAddr(host); err == nil {
		if err := checkReceiverAddr(addr.WithZone("")); err != nil {
			return fmt.Errorf("webhook receiver refused: %w", err)
		}
	}
	return nil
}

// checkHostForm refuses a host that is neither an IP address in its usual form nor a DNS name:
// one whose last label is a number ("2130706433", "0x7f000001", "127.1", "0177.0.0.1"). Browsers
// and C resolvers read those as IPv4 addresses in other notations, Go's resolver cannot look
// them up, so such a receiver would pass the checks here and then fail at every delivery; and
// an address written so is one this package's own-listener check cannot compare.
func checkHostForm(host string) error {
	if _, isIP := hostAddr(host); isIP {
		return nil
	}
	labels := strings.Split(strings.TrimSuffix(host, "."), ".")
	last := strings.ToLower(labels[len(labels)-1])
	if last == "" {
		return fmt.Errorf("host %q has an empty label", host)
	}
	digits := strings.TrimPrefix(last, "0x")
	if strings.Trim(digits, "0123456789abcdef") == "" && (digits != last || strings.Trim(last, "0123456789") == "") {
		return fmt.Errorf("host %q is a number, not a DNS name; write an IP address as dotted decimal (192.0.2.1) or [IPv6]", host)
	}
	return nil
}

// hostAddr parses an IP literal host; "localhost" (with or without the root's dot) is the
// loopback address.
func hostAddr(host string) (netip.Addr, bool) {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return netip.IPv6Loopback(), true
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return addr.Unmap().WithZone(""), true
}

func isLocalAddress(target netip.Addr) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if prefix, err := netip.ParsePrefix(a.String()); err == nil && prefix.Addr().Unmap() == target {
			return true
		}
	}
	return false
}
