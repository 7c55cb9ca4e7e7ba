package main

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/gigaledger/gigaledger/cluster/relay"
)

// Webhook subscribers from the configuration (GigaWallet's [callbacks.NAME] path, types,
// hmacsecret), beside those made through POST /subscriptions. They are not replicated: every
// node of a cluster must be given the same ones (each shard's leader delivers them). Each is
// named "callbacks.NAME" (its TOML path), so it cannot take the name, and so the cursors, of
// a subscription made through the API; it starts with the oldest event each shard keeps.

// callbackFlagSpec is the text of one --callback: a JSON object.
type callbackFlagSpec struct {
	Name      string   `json:"name"`
	URL       string   `json:"url"`
	Types     []string `json:"types"`
	Secret    string   `json:"secret"`
	SecretEnv string   `json:"secretEnv"`
}

// callbackFlags is the repeatable --callback flag.
type callbackFlags struct{ list *[]relay.Subscription }

// callbackNamePrefix names configured subscribers apart from the API's.
const callbackNamePrefix = "callbacks."

// String implements flag.Value: the names, never a secret.
func (f callbackFlags) String() string { return subscriberNames(f.list) }

// subscriberNames lists configured subscribers by name (a flag's String: never a secret).
func subscriberNames(list *[]relay.Subscription) string {
	if list == nil {
		return ""
	}
	names := make([]string, 0, len(*list))
	for _, s := range *list {
		names = append(names, s.Name)
	}
	return strings.Join(names, ",")
}

// decodeFlagSpec decodes a repeatable flag's JSON object into spec: valid UTF-8, bounded, no key
// twice, no unknown key, nothing after it.
func decodeFlagSpec(text string, spec any) bool {
	if !utf8.ValidString(text) || len(text) > callbackSpecMaxBytes || duplicateTopLevelKey(text) {
		return false
	}
	decoder := json.NewDecoder(strings.NewReader(text))
	decoder.DisallowUnknownFields()
	return decoder.Decode(spec) == nil && !decoder.More()
}

// secretFromEnv resolves a secret given by environment variable name: one of the two, and a
// named variable must not be empty.
func secretFromEnv(flagName, subscriber, field, inline, env string) (string, error) {
	if env == "" {
		return inline, nil
	}
	if inline != "" {
		return "", fmt.Errorf("--%s %q: %s or %sEnv, not both", flagName, subscriber, field, field)
	}
	if value := os.Getenv(env); value != "" {
		return value, nil
	}
	return "", fmt.Errorf("--%s %q: environment variable %s is empty", flagName, subscriber, env)
}

// addSubscriber appends a validated subscriber, once per name.
func addSubscriber(list *[]relay.Subscription, flagName string, sub relay.Subscription) error {
	if err := sub.Validate(nil); err != nil {
		return fmt.Errorf("--%s: %w", flagName, err)
	}
	for _, s := range *list {
		if s.Name == sub.Name {
			return fmt.Errorf("--%s %q given twice", flagName, sub.Name)
		}
	}
	*list = append(*list, sub)
	return nil
}

// repeatable marks a flag that a config file may set more than once.
func (callbackFlags) repeatable() {}

// Set implements flag.Value: one webhook, `{"name":"shop","url":"https://…","types":["INV"],
// "secretEnv":"SHOP_HOOK_SECRET"}` ("secret" inline is for config files; on a command line it
// shows in the process list). Errors never quote the text: it may hold the secret.
func (f callbackFlags) Set(text string) error {
	var spec callbackFlagSpec
	if !decodeFlagSpec(text, &spec) {
		return errors.New("--callback: not one JSON object of name, url, types and secret or secretEnv, each once")
	}
	if spec.Name == "" {
		return errors.New("--callback: name is required")
	}
	var err error
	if spec.Secret, err = secretFromEnv("callback", spec.Name, "secret", spec.Secret, spec.SecretEnv); err != nil {
		return err
	}
	name := spec.Name
	if !strings.HasPrefix(name, callbackNamePrefix) {
		name = callbackNamePrefix + name
	}
	filter, err := relay.ParseFilter(spec.Types)
	if err != nil {
		return fmt.Errorf("--callback %q: types: %w", spec.Name, err)
	}
	return addSubscriber(f.list, "callback", relay.Subscription{Name: name, Kind: relay.KindWebhook, URL: spec.URL, Secret: spec.Secret, Filter: filter})
}

// callbackSpecMaxBytes bounds one --callback's text.
const callbackSpecMaxBytes = 8 << 10

// duplicateTopLevelKey reports whether a JSON object names a key twice (or is not an object).
func duplicateTopLevelKey(text string) bool {
	decoder := json.NewDecoder(strings.NewReader(text))
	if token, err := decoder.Token(); err != nil || token != json.Delim('{') {
		return true
	}
	seen := map[string]bool{}
	for decoder.More() {
		token, err := decoder.Token()
		key, ok := token.(string)
		if err != nil || !ok || seen[key] {
			return true
		}
		seen[key] = true
		var skip json.RawMessage
		if err := decoder.Decode(&skip); err != nil {
			return true
		}
	}
	return false
}

// MQTT queues from the configuration: GigaWallet's [mqtt] address, username, password, clientid
// with one [mqtt.queues.NAME] topicfilter, types per queue, or --mqtt-queue. Each is a
// subscriber named "mqtt.NAME" that publishes to its topic at QoS 1.

// mqttQueueSpec is the text of one --mqtt-queue: a JSON object.
type mqttQueueSpec struct {
	Name        string   `json:"name"`
	Broker      string   `json:"broker"`
	Topic       string   `json:"topic"`
	Types       []string `json:"types"`
	Username    string   `json:"username"`
	Password    string   `json:"password"`
	PasswordEnv string   `json:"passwordEnv"`
	ClientID    string   `json:"clientId"`
	CAFile      string   `json:"caFile"`
}

// mqttQueueNamePrefix names configured MQTT subscribers apart from the others.
const mqttQueueNamePrefix = "mqtt."

// mqttQueueFlags is the repeatable --mqtt-queue flag.
type mqttQueueFlags struct{ list *[]relay.Subscription }

// String implements flag.Value: the names, never a password.
func (f mqttQueueFlags) String() string { return subscriberNames(f.list) }

func (mqttQueueFlags) repeatable() {}

// Set implements flag.Value: one queue, `{"name":"invoices","broker":"tcp://127.0.0.1:1883",
// "topic":"gigawallet/{type}","types":["INV"],"username":"relay","passwordEnv":"MQTT_PASSWORD"}`.
// A broker given as host:port is tcp://host:port. Errors never quote the text.
func (f mqttQueueFlags) Set(text string) error {
	var spec mqttQueueSpec
	if !decodeFlagSpec(text, &spec) {
		return errors.New("--mqtt-queue: not one JSON object of name, broker, topic, types and optional username, password or passwordEnv, clientId, caFile, each once")
	}
	if spec.Name == "" {
		return errors.New("--mqtt-queue: name is required")
	}
	var err error
	if spec.Password, err = secretFromEnv("mqtt-queue", spec.Name, "password", spec.Password, spec.PasswordEnv); err != nil {
		return err
	}
	if spec.CAFile != "" {
		// Read now: a CA file that is missing or holds no certificate would otherwise show only
		// at the first event, and every event would end as a dead letter (found by a probe).
		pem, err := os.ReadFile(spec.CAFile)
		if err == nil && !x509.NewCertPool().AppendCertsFromPEM(pem) {
			err = errors.New("no PEM certificate in it")
		}
		if err != nil {
			return fmt.Errorf("--mqtt-queue %q: caFile: %w", spec.Name, err)
		}
	}
	if spec.Broker != "" && !strings.Contains(spec.Broker, "://") {
		spec.Broker = "tcp://" + spec.Broker // GigaWallet's address is host:port
	}
	name := spec.Name
	if !strings.HasPrefix(name, mqttQueueNamePrefix) {
		name = mqttQueueNamePrefix + name
	}
	filter, err := relay.ParseFilter(spec.Types)
	if err != nil {
		return fmt.Errorf("--mqtt-queue %q: types: %w", spec.Name, err)
	}
	return addSubscriber(f.list, "mqtt-queue", relay.Subscription{Name: name, Kind: relay.KindMQTT, URL: spec.Broker, Filter: filter,
		MQTT: &relay.MQTTOptions{Topic: spec.Topic, Username: spec.Username, Password: spec.Password, ClientID: spec.ClientID, CAFile: spec.CAFile}})
}
