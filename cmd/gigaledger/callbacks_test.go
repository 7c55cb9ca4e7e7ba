package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gigaledger/gigaledger/cluster/relay"
)

// --callback takes one strict JSON object per webhook; a bad one is refused without quoting it
// (it may hold the secret).
func TestCallbackFlag(t *testing.T) {
	t.Setenv("HOOK_SECRET", "from-env")
	var list []relay.Subscription
	f := callbackFlags{list: &list}
	for _, ok := range []string{
		`{"name":"shop","url":"https://shop.example/hook","types":["INV","ACC"],"secret":"s3cret"}`,
		`{"name":"ops","url":"http://127.0.0.1:9000/x","types":["ALL"],"secretEnv":"HOOK_SECRET"}`,
	} {
		if err := f.Set(ok); err != nil {
			t.Fatalf("%s: %v", ok, err)
		}
	}
	if len(list) != 2 || list[0].Name != "callbacks.shop" || list[1].Secret != "from-env" || f.String() != "callbacks.shop,callbacks.ops" {
		t.Fatalf("list %+v, String %q", list, f.String())
	}
	for name, bad := range map[string]string{
		"not JSON":          `name=shop s3cret`,
		"unknown key":       `{"name":"x","url":"https://a.example","types":["ALL"],"hmac":"s3cret"}`,
		"duplicate key":     `{"name":"x","url":"https://a.example","types":["ALL"],"secret":"s3cret","secret":"s3cret"}`,
		"trailing":          `{"name":"x","url":"https://a.example","types":["ALL"]} {"secret":"s3cret"}`,
		"bad scheme":        `{"name":"x","url":"ftp://a.example","types":["ALL"],"secret":"s3cret"}`,
		"unknown category":  `{"name":"x","url":"https://a.example","types":["NOPE"],"secret":"s3cret"}`,
		"no types":          `{"name":"x","url":"https://a.example","secret":"s3cret"}`,
		"both secrets":      `{"name":"x","url":"https://a.example","types":["ALL"],"secret":"s3cret","secretEnv":"HOOK_SECRET"}`,
		"empty env":         `{"name":"x","url":"https://a.example","types":["ALL"],"secretEnv":"NO_SUCH_VARIABLE_s3cret"}`,
		"twice":             `{"name":"shop","url":"https://shop.example/hook","types":["INV"],"secret":"s3cret"}`,
		"invalid UTF-8":     "{\"name\":\"x\xff\",\"url\":\"https://a.example\",\"types\":[\"ALL\"],\"secret\":\"s3cret\"}",
		"array, not object": `[{"name":"x","url":"https://a.example","types":["ALL"],"secret":"s3cret"}]`,
	} {
		err := f.Set(bad)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") && name != "empty env" {
			t.Errorf("%s: the error quotes the secret: %v", name, err)
		}
	}
	if len(list) != 2 {
		t.Fatalf("refused values were added: %+v", list)
	}
}

// A refused --callback, --mqtt-queue or --dogecoind value may hold a secret inline: neither the
// error nor anything printed quotes it (the flag package quoted the whole value, secret
// included, on stderr; found by a probe).
func TestRefusedSecretFlagsNeverPrintTheirValue(t *testing.T) {
	for _, args := range [][]string{
		{"--callback", `{"name":"shop","url":"file:///x","types":["INV"],"secret":"TOPSECRET-cb-123"}`},
		{"--callback", `{"name":"shop","url":"https://shop.example/h","types":["NOPE"],"secret":"TOPSECRET-cb-123"}`},
		{"--callback", `{"url":"https://shop.example/h","types":["INV"],"secret":"TOPSECRET-cb-123","junk":1}`},
		{"--mqtt-queue", `{"name":"q","broker":"file:///x","topic":"gw/{type}","types":["INV"],"username":"u","password":"TOPSECRET-mq-777"}`},
		{"--dogecoind", `{"network":"nonet","rpchost":"127.0.0.1","rpcport":1,"rpcuser":"u","rpcpass":"TOPSECRET-rpc-9"}`},
	} {
		var printed bytes.Buffer
		_, err := parseServeFlags(args, &printed)
		if err == nil {
			t.Fatalf("%s accepted", args[1])
		}
		if strings.Contains(err.Error(), "TOPSECRET") || strings.Contains(printed.String(), "TOPSECRET") {
			t.Fatalf("%s: the secret is printed: error %q, output %q", args[0], err, printed.String())
		}
	}
	// The usage the flag package prints for another mistake shows these flags without a panic
	// (it calls String on their zero value).
	var printed bytes.Buffer
	if _, err := parseServeFlags([]string{"--no-such-flag"}, &printed); err == nil || strings.Contains(printed.String(), "panic") ||
		!strings.Contains(printed.String(), "-callback value") {
		t.Fatalf("usage: %v\n%s", err, printed.String())
	}
}

// A subscriber of the configuration is refused at start, not half-configured: without a name
// (it became "callbacks."), with '/' in its name (a path segment of the admin API), or with an
// MQTT CA file that is missing or holds no certificate (every event ended as a dead letter).
// Found by a probe.
func TestConfiguredSubscribersRefusedAtStart(t *testing.T) {
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ flag, value, want string }{
		{"--callback", `{"url":"https://shop.example/h","types":["INV"]}`, "name is required"},
		{"--callback", `{"name":"a b/c","url":"https://shop.example/h","types":["INV"]}`, "without '/'"},
		{"--mqtt-queue", `{"broker":"tcp://127.0.0.1:1883","topic":"gw/{type}","types":["INV"]}`, "name is required"},
		{"--mqtt-queue", `{"name":"q","broker":"ssl://127.0.0.1:8883","topic":"gw/{type}","types":["INV"],"caFile":"/nonexistent.pem"}`, "caFile"},
		{"--mqtt-queue", `{"name":"q","broker":"ssl://127.0.0.1:8883","topic":"gw/{type}","types":["INV"],"caFile":"` + notPEM + `"}`, "no PEM certificate"},
	} {
		var printed bytes.Buffer
		_, err := parseServeFlags([]string{tc.flag, tc.value}, &printed)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %s: %v, want an error about %q", tc.flag, tc.value, err, tc.want)
		}
	}
}
