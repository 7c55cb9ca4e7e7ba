package relay

import (
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseFilter(t *testing.T) {
	for _, tc := range []struct {
		types   []string
		entries []string // nil: refused
		unknown bool     // refused for an unknown category
	}{
		{types: []string{"ALL"}, entries: []string{"ALL"}},
		{types: []string{"payment"}, entries: []string{"PAYMENT"}},
		{types: []string{" INV ", "inv", "PAYMENT_SENT"}, entries: []string{"INV", "PAYMENT_SENT"}},
		{types: []string{"LEDGER", "TOKEN", "SYS", "ACC"}, entries: []string{"ACC", "LEDGER", "SYS", "TOKEN"}},
		{types: []string{"NET"}, entries: []string{"NET"}}, // GigaWallet's; nothing here emits it, but its filters keep working
		{types: []string{"FOO_BAR"}, unknown: true},
		{types: []string{"PAYMENT", "BOGUS"}, unknown: true},
		{types: nil},
		{types: []string{""}},
		{types: []string{"INV-CREATED"}},
		{types: []string{"INV_" + strings.Repeat("X", EventTypeMaxLength)}},
		{types: slices.Repeat([]string{"ALL"}, FilterMaxEntries+1)},
	} {
		f, err := ParseFilter(tc.types)
		switch {
		case tc.entries == nil && err == nil:
			t.Errorf("%q: accepted as %v", tc.types, f)
		case tc.entries == nil && tc.unknown != errors.Is(err, ErrUnknownCategory):
			t.Errorf("%q: error %v, unknown category %v", tc.types, err, tc.unknown)
		case tc.entries != nil && (err != nil || !slices.Equal(f.Entries(), tc.entries)):
			t.Errorf("%q: %v, %v; want %v", tc.types, f.Entries(), err, tc.entries)
		}
	}
}

func TestFilterMatches(t *testing.T) {
	payments, _ := ParseFilter([]string{"PAYMENT", "INV_TOTAL_PAYMENT_CONFIRMED"})
	all, _ := ParseFilter([]string{"ALL"})
	for _, tc := range []struct {
		filter    Filter
		eventType string
		want      bool
	}{
		{payments, "PAYMENT_SENT", true},
		{payments, "PAYMENT_CONFIRMED", true},
		{payments, "INV_TOTAL_PAYMENT_CONFIRMED", true},
		{payments, "INV_TOTAL_PAYMENT_DETECTED", false},
		{payments, "PAYMENTS_X", false}, // a category is the whole prefix, not a string prefix
		{payments, "SYS_MSG", false},
		{all, "SYS_MSG", true},
		{all, "ANYTHING", true},
		{Filter{}, "SYS_MSG", false},
	} {
		if got := tc.filter.Matches(tc.eventType); got != tc.want {
			t.Errorf("%v matches %s: %v, want %v", tc.filter, tc.eventType, got, tc.want)
		}
	}
}

func TestValidateWebhookURL(t *testing.T) {
	listeners := []string{"127.0.0.1:8081", ":8443", "10.1.2.3:9000"}
	for _, tc := range []struct {
		url  string
		want string // "" accepted, else a substring of the error
	}{
		{"https://shop.example/hooks/giga?token=1", ""},
		{"http://127.0.0.1:9999/hook", ""},
		{"http://10.1.2.4:9000/", ""},
		{"ftp://shop.example/", "scheme"},
		{"javascript:alert(1)", "scheme"},
		{"shop.example/hook", "scheme"},
		{"https://user:pw@shop.example/", "user information"},
		{"https:///nohost", "no host"},
		{"https://shop.example/#frag", "fragment"},
		{"https://shop.example/" + strings.Repeat("a", URLMaxLength), "bytes"},
		{"", "empty"},
		{"http://127.0.0.1:8081/admin", "own listener"},
		{"http://localhost:8081/", "own listener"},
		{"http://127.0.0.1:08081/", "own listener"}, // the port as dialing reads it
		{"http://127.0.0.1:00000000000000000008081/", "own listener"},
		{"http://[::1]:8081/", "own listener"},
		{"https://127.0.0.2:8443/", "own listener"}, // :8443 is bound on every address
		{"https://0.0.0.0:8443/", "unspecified"},
		{"http://10.1.2.3:9000/", "own listener"},
		{"http://shop.example:8081/", ""}, // a name is compared literally
		// Found by a probe: 0.0.0.0 reached the admin API on any port, link-local reaches cloud
		// metadata, and ports outside 1..65535 dead-lettered every event.
		{"http://0.0.0.0:8081/projects", "unspecified"},
		{"http://0.0.0.0:9999/", "unspecified"},
		{"http://[::]:9999/", "unspecified"},
		{"http://[::ffff:0.0.0.0]:9999/", "unspecified"},
		{"http://169.254.169.254/latest/meta-data/", "link-local"},
		{"http://[fe80::1]/", "link-local"},
		{"http://localhost.:8081/", "own listener"},
		{"http://127.0.0.1:0/", "port"},
		{"http://127.0.0.1:99999/", "port"},
		{"http://10.0.0.9/", ""},       // a private receiver is normal for a ledger inside a company
		{"http://192.168.1.7:81/", ""}, // so is another private range
		// Numbers that C resolvers and browsers read as IPv4 addresses (0x7f000001 is 127.0.0.1);
		// Go's resolver cannot look them up, so they passed here and failed every delivery.
		{"http://2130706433:8081/", "not a DNS name"},
		{"http://0x7f000001:9999/", "not a DNS name"},
		{"http://127.1:9999/", "not a DNS name"},
		{"http://0177.0.0.1:9999/", "not a DNS name"},
		{"http://shop.0x10/", "not a DNS name"},
		{"http://cafe:9999/", ""},          // letters only: a name
		{"http://shop.123abc/", ""},        // not a number either
		{"http://3com.example.:9999/", ""}, // digits leading a label, a name ending in a root dot
		{"http://a.b.c.d.e.1x/", ""},       // 1x is no number
	} {
		err := ValidateWebhookURL(tc.url, listeners)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.url, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: error %v, want one about %q", tc.url, err, tc.want)
		}
	}
}

func TestSubscriptionValidate(t *testing.T) {
	good := webhook("shop", "https://shop.example/hook", "k", "ALL")
	if err := good.Validate(nil); err != nil {
		t.Fatal(err)
	}
	for name, change := range map[string]func(*Subscription){
		"empty name":   func(s *Subscription) { s.Name = "" },
		"control name": func(s *Subscription) { s.Name = "a\nb" },
		"slash name":   func(s *Subscription) { s.Name = "a/b" }, // a path segment of /subscriptions/{name}
		"long name":    func(s *Subscription) { s.Name = strings.Repeat("n", 129) },
		"unknown kind": func(s *Subscription) { s.Kind = 0 },
		"zero filter":  func(s *Subscription) { s.Filter = Filter{} },
		"long secret":  func(s *Subscription) { s.Secret = strings.Repeat("s", SecretMaxBytes+1) },
		"bad url":      func(s *Subscription) { s.URL = "ftp://x" },
		"own listener": func(s *Subscription) { s.URL = "http://127.0.0.1:8081/" },
	} {
		s := good
		change(&s)
		if err := s.Validate([]string{"127.0.0.1:8081"}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// ParseFilter takes input from the API and config files: it must not panic, and what it
// accepts must parse again to the same filter.
func FuzzParseFilter(f *testing.F) {
	f.Add("ALL")
	f.Add("payment,INV_TOTAL_PAYMENT_CONFIRMED")
	f.Add("ALL_X, ,sys")
	f.Fuzz(func(t *testing.T, list string) {
		filter, err := ParseFilter(strings.Split(list, ","))
		if err != nil {
			return
		}
		again, err := ParseFilter(filter.Entries())
		if err != nil || !slices.Equal(again.Entries(), filter.Entries()) {
			t.Fatalf("%q → %v → %v, %v", list, filter.Entries(), again.Entries(), err)
		}
		for _, e := range filter.Entries() {
			if !filter.Matches(e) {
				t.Fatalf("%v does not match its own entry %s", filter, e)
			}
		}
	})
}

// ValidateWebhookURL takes input from the API: it must not panic, and what it accepts is an
// http(s) URL without user information within the length bound.
func FuzzValidateWebhookURL(f *testing.F) {
	f.Add("https://shop.example/hook?x=1")
	f.Add("http://[::1]:8081/")
	f.Add("http://u@h/")
	f.Fuzz(func(t *testing.T, raw string) {
		if ValidateWebhookURL(raw, []string{"127.0.0.1:8081", ":9000"}) != nil {
			return
		}
		if len(raw) > URLMaxLength || !(strings.HasPrefix(strings.ToLower(raw), "http://") || strings.HasPrefix(strings.ToLower(raw), "https://")) {
			t.Fatalf("accepted %q", raw)
		}
	})
}

// A subscription an earlier release stored with a host that is a number is still delivered
// (and dead-lettered, as before): only a new one is refused.
func TestStoredSubscriptionWithANumberHostStaysDelivered(t *testing.T) {
	filter, err := ParseFilter([]string{"ALL"})
	if err != nil {
		t.Fatal(err)
	}
	sub := Subscription{Name: "numhost", Kind: KindWebhook, URL: "http://2130706433:9/", Filter: filter}
	if err := sub.Validate(nil); err == nil || !strings.Contains(err.Error(), "not a DNS name") {
		t.Fatalf("new: %v, want refused", err)
	}
	if err := sub.ValidateStored(nil); err != nil {
		t.Fatalf("stored: %v", err)
	}
	own := Subscription{Name: "own", Kind: KindWebhook, URL: "http://127.0.0.1:8081/", Filter: filter}
	if err := own.ValidateStored([]string{"127.0.0.1:8081"}); err == nil {
		t.Fatal("stored, aimed at the node's own listener: accepted")
	}
}

func TestValidateBrokerURL(t *testing.T) {
	listeners := []string{"127.0.0.1:8081", ":8443"}
	for _, tc := range []struct {
		url  string
		want string // "" accepted, else a substring of the error
	}{
		{"tcp://broker.example:1883", ""},
		{"mqtt://10.0.0.5:1883", ""},
		{"ssl://broker.example:8883", ""},
		{"tls://broker.example:8883/", ""},
		{"mqtts://[::1]:8883", ""},
		{"TCP://broker.example:1883", ""}, // a scheme is case-insensitive, as paho reads it
		{"ws://broker.example:80", "scheme"},
		{"http://broker.example:1883", "scheme"},
		{"broker.example:1883", "scheme"},
		{"tcp://broker.example", "host:port"},
		{"tcp://:1883", "host:port"},
		{"tcp://user:pw@broker.example:1883", "user information"},
		{"tcp://broker.example:1883/topic", "no path"},
		{"tcp://broker.example:1883?x=1", "no path"},
		{"tcp://broker.example:1883#f", "no path"},
		{"tcp://" + strings.Repeat("a", URLMaxLength) + ":1", "bytes"},
		{"", "empty"},
		{"tcp://127.0.0.1:8081", "own listener"},
		{"ssl://localhost:8443", "own listener"},
		{"tcp://127.0.0.1:008081", "own listener"},
		{"tcp://2130706433:1883", "not a DNS name"},
	} {
		err := ValidateBrokerURL(tc.url, listeners)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.url, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: error %v, want one about %q", tc.url, err, tc.want)
		}
	}
}

func TestValidateMQTTTopic(t *testing.T) {
	for _, tc := range []struct {
		topic string
		ok    bool
	}{
		{"gigaledger/events", true},
		{"gigaledger/events/{type}", true},
		{"shop/€/payments", true},
		{"/leading/slash", true},
		{"", false},
		{"events/+/x", false},
		{"events/#", false},
		{"#", false},
		{"$SYS/broker", false},
		{"a\x00b", false},
		{"a\nb", false},
		{"bad\xffutf8", false},
		{strings.Repeat("t", MQTTTopicMaxBytes), true},
		{strings.Repeat("t", MQTTTopicMaxBytes+1), false},
	} {
		if err := ValidateMQTTTopic(tc.topic); (err == nil) != tc.ok {
			t.Errorf("%q: %v, want accepted %v", tc.topic, err, tc.ok)
		}
	}
}

func TestMQTTSubscriptionValidate(t *testing.T) {
	good := Subscription{Name: "queue", Kind: KindMQTT, URL: "ssl://broker.example:8883", Filter: mustFilter("PAYMENT"),
		MQTT: &MQTTOptions{Topic: "gigaledger/{type}", Username: "relay", Password: "pw", ClientID: "gigaledger-1", CAFile: "/etc/ca.pem"}}
	if err := good.Validate(nil); err != nil {
		t.Fatal(err)
	}
	for name, change := range map[string]func(*Subscription){
		"no MQTT settings":           func(s *Subscription) { s.MQTT = nil },
		"HMAC secret":                func(s *Subscription) { s.Secret = "k" },
		"webhook URL":                func(s *Subscription) { s.URL = "https://broker.example/" },
		"own listener":               func(s *Subscription) { s.URL = "tcp://127.0.0.1:8081" },
		"wildcard topic":             func(s *Subscription) { s.MQTT.Topic = "gigaledger/+" },
		"empty topic":                func(s *Subscription) { s.MQTT.Topic = "" },
		"password without username":  func(s *Subscription) { s.MQTT.Username = "" },
		"long password":              func(s *Subscription) { s.MQTT.Password = strings.Repeat("p", SecretMaxBytes+1) },
		"long username":              func(s *Subscription) { s.MQTT.Username = strings.Repeat("u", MQTTUsernameMaxBytes+1) },
		"client ID with a space":     func(s *Subscription) { s.MQTT.ClientID = "a b" },
		"long client ID":             func(s *Subscription) { s.MQTT.ClientID = strings.Repeat("c", MQTTClientIDMaxBytes+1) },
		"CA file with a plain URL":   func(s *Subscription) { s.URL = "tcp://broker.example:1883" },
		"skip-verify with plain URL": func(s *Subscription) { s.URL, s.MQTT.CAFile, s.MQTT.InsecureSkipVerify = "tcp://b:1883", "", true },
		"webhook with MQTT settings": func(s *Subscription) { s.Kind, s.URL = KindWebhook, "https://shop.example/hook" },
	} {
		s := good
		options := *good.MQTT
		s.MQTT = &options
		change(&s)
		if err := s.Validate([]string{"127.0.0.1:8081"}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// A change of any MQTT setting restarts the deliveries; an equal copy does not.
	same, changed := good, good
	sameOptions, changedOptions := *good.MQTT, *good.MQTT
	same.MQTT, changed.MQTT = &sameOptions, &changedOptions
	changed.MQTT.Password = "rotated"
	if !good.equal(&same) || good.equal(&changed) {
		t.Fatalf("equal: copy %v, changed password %v", good.equal(&same), good.equal(&changed))
	}
	if topic := good.MQTT.topicFor("PAYMENT_SENT"); topic != "gigaledger/PAYMENT_SENT" {
		t.Fatalf("topic %q", topic)
	}
}

func mustFilter(types ...string) Filter {
	filter, err := ParseFilter(types)
	if err != nil {
		panic(err)
	}
	return filter
}

// ValidateBrokerURL and ValidateMQTTTopic take input from the API and config files: they
// must not panic; an accepted URL has an MQTT scheme and a port, an accepted topic no wildcard.
func FuzzValidateMQTT(f *testing.F) {
	f.Add("tcp://broker.example:1883", "gigaledger/{type}")
	f.Add("ssl://[::1]:8883/", "a/+/b")
	f.Add("mqtt://u@h:1", "$SYS/x")
	f.Fuzz(func(t *testing.T, broker, topic string) {
		if ValidateBrokerURL(broker, []string{"127.0.0.1:8081"}) == nil {
			u, err := url.Parse(broker)
			if err != nil || u.Port() == "" || u.User != nil || len(broker) > URLMaxLength {
				t.Fatalf("accepted broker %q", broker)
			}
			if _, ok := mqttSchemes[u.Scheme]; !ok {
				t.Fatalf("accepted scheme of %q", broker)
			}
		}
		if ValidateMQTTTopic(topic) == nil {
			if strings.ContainsAny(topic, "+#\x00") || !utf8.ValidString(topic) || len(topic) > MQTTTopicMaxBytes {
				t.Fatalf("accepted topic %q", topic)
			}
			if after := (&MQTTOptions{Topic: topic}).topicFor("INV_CREATED"); ValidateMQTTTopic(after) != nil && len(after) <= MQTTTopicMaxBytes {
				t.Fatalf("topic %q is invalid once the type is in it: %q", topic, after)
			}
		}
	})
}

// TestWebhookDialControl: a delivery never connects to an address the URL check refuses, even
// when a name resolved there.
func TestWebhookDialControl(t *testing.T) {
	for address, refused := range map[string]bool{
		"169.254.169.254:80": true, "[fe80::1%eth0]:80": true, "0.0.0.0:8081": true, "[::]:80": true,
		"127.0.0.1:9999": false, "10.0.0.9:443": false, "[2001:db8::1]:443": false,
	} {
		if err := WebhookDialControl("tcp", address, nil); (err != nil) != refused {
			t.Errorf("%s: %v, refused %v", address, err, refused)
		}
	}
}
