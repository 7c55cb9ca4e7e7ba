package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// gigaWalletExampleConfig resembles the config.toml of GigaWallet's README: every table a
// GigaWallet operator may have, with GigaWallet's mixed-case keys and string ports.
const gigaWalletExampleConfig = `
[gigawallet]
  # Dogecoin network: mainnet or testnet
  network = "mainnet"
  # blocks after the payment's before an invoice is paid
  confirmationsneeded = 60
  servicename = "Such Store"
  servicedomain = "such.example"
  serviceiconurl = "https://such.example/icon.png"
  servicekeyhash = "00"
  servicekeysecret = "11"
  rejectionsneeded = 12

[WebAPI]
  adminbind = "localhost"
  adminport = "8181"
  adminbearertoken = "s3cret-admin-token"
  pubbind = "127.0.0.1"
  pubport = "8182"
  pubapirooturl = "https://pay.such.example"

[store]
  DBFile = "gigawallet.db"

[dogecoind.testnet]
  host    = "localhost"
  zmqport = 28332
  rpchost = "127.0.0.1"
  rpcport = 44555
  rpcpass = "gigawallet"
  rpcuser = "gigawallet"

[loggers.events]
  path = "events.log"
  types = ["ALL"]

[callbacks.example]
  path = "https://such.example/invoice/events"
  types = ["INV", "ACC"]
  hmacsecret = "22"

[mqtt]
  address = "tcp://mqtt.such.example:1883"
  clientid = "gigawallet"

[mqtt.queues.invoices]
  topicfilter = "invoice/{type}"
  types = ["INV"]
`

// writeTOML writes a config.toml into a test directory and returns its path.
func writeTOML(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// GigaWallet's example config sets our flags under GigaWallet's names and names the settings
// GigaLedger does not use.
func TestConfigTOMLGigaWalletExample(t *testing.T) {
	t.Setenv(adminTokenEnv, "")
	cfg, err := parseServeFlags([]string{"--config", writeTOML(t, gigaWalletExampleConfig)}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	type mapped struct {
		network, serviceName, serviceDomain, serviceIconURL string
		confirmationsNeeded                                 int
		adminAddr, publicAddr, adminToken, pubAPIRootURL    string
	}
	want := mapped{"mainnet", "Such Store", "such.example", "https://such.example/icon.png", 60,
		"localhost:8181", "127.0.0.1:8182", "s3cret-admin-token", "https://pay.such.example"}
	got := mapped{cfg.Network, cfg.ServiceName, cfg.ServiceDomain, cfg.ServiceIconURL, cfg.ConfirmationsNeeded,
		cfg.AdminAddr, cfg.PublicAddr, cfg.AdminToken, cfg.PubAPIRootURL}
	if got != want {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	wantIgnored := []string{
		"gigawallet.rejectionsneeded", "gigawallet.servicekeyhash", "gigawallet.servicekeysecret",
		"loggers.events.path", "loggers.events.types",
		"store.DBFile",
	}
	if !slices.Equal(cfg.ignoredSettings, wantIgnored) {
		t.Fatalf("ignored settings\ngot  %v\nwant %v", cfg.ignoredSettings, wantIgnored)
	}
	// [dogecoind.testnet] is a node to follow (when the network is testnet).
	wantNode := dogecoindSpec{Network: "testnet", Host: "localhost", ZMQPort: 28332, RPCHost: "127.0.0.1", RPCPort: 44555,
		RPCUser: "gigawallet", RPCPass: "gigawallet"}
	if len(cfg.Dogecoind) != 1 || cfg.Dogecoind[0] != wantNode {
		t.Fatalf("dogecoind %+v", cfg.Dogecoind)
	}
	// [callbacks.example] is a webhook subscriber.
	if len(cfg.Callbacks) != 1 || cfg.Callbacks[0].Name != "callbacks.example" || cfg.Callbacks[0].Secret == "" ||
		!strings.HasPrefix(cfg.Callbacks[0].URL, "http") {
		t.Fatalf("callbacks %+v", cfg.Callbacks)
	}
	// [mqtt] and [mqtt.queues.invoices] are an MQTT subscriber.
	if len(cfg.MQTTQueues) != 1 || cfg.MQTTQueues[0].Name != "mqtt.invoices" || cfg.MQTTQueues[0].MQTT.Topic != "invoice/{type}" ||
		!strings.Contains(cfg.MQTTQueues[0].URL, "://") {
		t.Fatalf("MQTT queues %+v", cfg.MQTTQueues)
	}
	// Untouched settings keep their defaults.
	if cfg.DataDir != defaultDataDir || cfg.Shards != 1 {
		t.Fatalf("defaults changed: data-dir %q shards %d", cfg.DataDir, cfg.Shards)
	}
}

// serve logs the unused GigaWallet settings in one warning line, before it starts the node.
func TestConfigTOMLServeWarnsOnce(t *testing.T) {
	t.Setenv(adminTokenEnv, "")
	path := writeTOML(t, "[store]\ndbfile = \"x.db\"\n[loggers.events]\npath = \"e.log\"\n")
	missing := filepath.Join(t.TempDir(), "missing.pem")
	var stderr bytes.Buffer
	// The HTTPS key pair does not exist: serve logs, then fails to start before opening anything.
	args := []string{"--config", path, "--data-dir", t.TempDir(), "--http-tls-cert", missing, "--http-tls-key", missing}
	if code := serve(t.Context(), args, &bytes.Buffer{}, &stderr); code != 1 {
		t.Fatalf("exit %d, stderr %s", code, stderr.String())
	}
	const want = "config: GigaWallet settings not used by GigaLedger: loggers.events.path, store.dbfile"
	if n := strings.Count(stderr.String(), "GigaWallet settings not used"); n != 1 || !strings.Contains(stderr.String(), want) {
		t.Fatalf("want one line with %q, got %d in:\n%s", want, n, stderr.String())
	}
}

// Table-driven: what each file sets, with and without command-line flags.
func TestConfigTOMLSettings(t *testing.T) {
	t.Setenv(adminTokenEnv, "")
	cases := []struct {
		name    string
		content string
		args    []string
		check   func(*serveConfig) bool
	}{
		{"ports as strings", "[webapi]\nadminport = \"9001\"\npubport = \"9002\"", nil,
			func(c *serveConfig) bool { return c.AdminAddr == "localhost:9001" && c.PublicAddr == "localhost:9002" }},
		{"ports as integers", "[webapi]\nadminport = 9001\npubport = 9002", nil,
			func(c *serveConfig) bool { return c.AdminAddr == "localhost:9001" && c.PublicAddr == "localhost:9002" }},
		{"bind alone takes GigaWallet's port", "[webapi]\nadminbind = \"127.0.0.1\"\npubbind = \"::1\"", nil,
			func(c *serveConfig) bool { return c.AdminAddr == "127.0.0.1:8081" && c.PublicAddr == "[::1]:8082" }},
		{"no webapi keeps our defaults", "[gigawallet]\nnetwork = \"regtest\"", nil,
			func(c *serveConfig) bool {
				return c.AdminAddr == defaultAdminAddr && c.PublicAddr == defaultPublicAddr && c.Network == "regtest"
			}},
		{"keys are case-insensitive", "[WebAPI]\nAdminPort = \"9001\"\nPubBind = \"127.0.0.2\"\n[GigaWallet]\nConfirmationsNeeded = 3\n[GigaLedger]\nData-Dir = \"d9\"", nil,
			func(c *serveConfig) bool {
				return c.AdminAddr == "localhost:9001" && c.PublicAddr == "127.0.0.2:8082" && c.ConfirmationsNeeded == 3 && c.DataDir == "d9"
			}},
		{"gigaledger table", "[gigaledger]\ndata-dir = \"d1\"\nshards = 4\npprof = true\nlog-level = \"debug\"", nil,
			func(c *serveConfig) bool {
				return c.DataDir == "d1" && c.Shards == 4 && c.Pprof && c.LogLevel == "debug"
			}},
		{"the command line wins", "[webapi]\nadminport = \"9001\"\n[gigawallet]\nnetwork = \"mainnet\"\n[gigaledger]\nshards = 4",
			[]string{"--admin-addr", "127.0.0.1:7777", "--network", "regtest", "--shards", "2"},
			func(c *serveConfig) bool {
				return c.AdminAddr == "127.0.0.1:7777" && c.Network == "regtest" && c.Shards == 2
			}},
		{"an empty file", "", nil,
			func(c *serveConfig) bool {
				return c.AdminAddr == defaultAdminAddr && len(c.ignoredSettings) == 0 && c.GigPayProject == "gigpay" && c.GigPayEnv == ""
			}},
		{"gigpay table", "[gigpay]\nproject = \"payments\"\nenv = \"staging\"", nil,
			func(c *serveConfig) bool { return c.GigPayProject == "payments" && c.GigPayEnv == "staging" }},
		{"gigpay keys are case-insensitive", "[GigPay]\nProject = \"pay-1\"\nENV = \"dev\"", nil,
			func(c *serveConfig) bool { return c.GigPayProject == "pay-1" && c.GigPayEnv == "dev" }},
		{"gigpay env alone", "[gigpay]\nenv = \"qa\"", nil,
			func(c *serveConfig) bool { return c.GigPayProject == "gigpay" && c.GigPayEnv == "qa" }},
		{"gigpay: the command line wins", "[gigpay]\nproject = \"payments\"\nenv = \"staging\"",
			[]string{"--gigpay-project", "other", "--gigpay-env", ""},
			func(c *serveConfig) bool { return c.GigPayProject == "other" && c.GigPayEnv == "" }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"--config", writeTOML(t, c.content)}, c.args...)
			cfg, err := parseServeFlags(args, &bytes.Buffer{})
			if err != nil {
				t.Fatal(err)
			}
			if !c.check(cfg) {
				t.Fatalf("%q: unexpected config %+v", c.content, cfg)
			}
		})
	}
}

// A config.toml means what it says: anything unclear is an error naming the key, never quoting
// a value.
func TestConfigTOMLRefusals(t *testing.T) {
	t.Setenv(adminTokenEnv, "")
	cases := []struct{ name, content, want string }{
		{"typo in a key", "[webapi]\nadminprot = \"8081\"",
			`unknown setting "webapi.adminprot"; valid settings of [webapi]: adminbearertoken, adminbind, adminport, pubapirooturl, pubbind, pubport`},
		{"typo in a gigawallet key", "[gigawallet]\nconfirmations = 6",
			`unknown setting "gigawallet.confirmations"; valid settings of [gigawallet]: confirmationsneeded,`},
		{"unknown table", "[webapp]\nadminport = \"8081\"",
			`unknown table "webapp"; valid tables: callbacks, dogecoind, gigaledger, gigawallet, gigpay, loggers, mqtt, store, webapi`},
		{"typo in a gigpay key", "[gigpay]\nprojet = \"p\"", `unknown setting "gigpay.projet"; valid settings of [gigpay]: env, project`},
		{"gigpay value not a table", "gigpay = \"p\"", `"gigpay": want a table, got a string`},
		{"integer gigpay project", "[gigpay]\nproject = 7", `"gigpay.project": want a string, got a whole number`},
		{"gigpay project twice", "[gigpay]\nproject = \"a\"\n[gigaledger]\ngigpay-project = \"b\"", `both set --gigpay-project`},
		{"invalid gigpay project", "[gigpay]\nproject = \"pay ments\"", `--gigpay-project "pay ments": want 1..30`},
		{"gigpay env not a label", "[gigpay]\nenv = \"Staging\"", `--gigpay-env "Staging": want empty (production) or a DNS label`},
		{"top-level key", "network = \"testnet\"", `unknown top-level setting "network"; valid tables:`},
		{"unknown gigaledger key", "[gigaledger]\nnodeid = \"n2\"", `unknown setting "gigaledger.nodeid"; valid settings: admin-addr, admin-token,`},
		{"config names another", "[gigaledger]\nconfig = \"x.toml\"", `cannot name another ("gigaledger.config")`},
		{"a table where a value belongs", "[webapi.adminport]\nx = 1", `"webapi.adminport": want a port as a string or whole number, got a table`},
		{"a value where a table belongs", "webapi = 3", `"webapi": want a table, got a whole number`},
		{"string for a count", "[gigawallet]\nconfirmationsneeded = \"6\"", `"gigawallet.confirmationsneeded": want a whole number, got a string`},
		{"float for a count", "[gigaledger]\nshards = 4.0", `"gigaledger.shards": want a whole number, got a fractional number`},
		{"integer for text", "[gigawallet]\nnetwork = 1", `"gigawallet.network": want a string, got a whole number`},
		{"array for text", "[webapi]\nadminbearertoken = [\"s3cret-value\"]", `"webapi.adminbearertoken": want a string, got an array`},
		{"date for text", "[gigawallet]\nservicename = 2024-01-01", `"gigawallet.servicename": want a string, got a date-time`},
		{"string for a switch", "[gigaledger]\npprof = \"true\"", `"gigaledger.pprof": want true or false, got a string`},
		{"number for a bind", "[webapi]\nadminbind = 127", `"webapi.adminbind": want a string, got a whole number`},
		{"boolean port", "[webapi]\npubport = true", `"webapi.pubport": want a port as a string or whole number, got a boolean`},
		{"port zero", "[webapi]\nadminport = 0", `"webapi.adminport": want a port from 1 to 65535`},
		{"port too large", "[webapi]\nadminport = \"65536\"", `"webapi.adminport": want a port from 1 to 65535`},
		{"port with a sign", "[webapi]\nadminport = \"+8081\"", `"webapi.adminport": want a port from 1 to 65535`},
		{"port not a number", "[webapi]\npubport = \"http\"", `"webapi.pubport": want a port from 1 to 65535`},
		{"negative port", "[webapi]\npubport = -1", `"webapi.pubport": want a port from 1 to 65535`},
		{"keys differing in case", "[webapi]\nadminport = \"1\"\nAdminPort = \"2\"", `"webapi.AdminPort" and "webapi.adminport" are one setting (keys are case-insensitive)`},
		{"tables differing in case", "[webapi]\nadminport = \"1\"\n[WebAPI]\npubport = \"2\"", `"WebAPI" and "webapi" are one setting`},
		{"one flag twice", "[webapi]\nadminport = \"9001\"\n[gigaledger]\nadmin-addr = \"127.0.0.1:1\"", `"gigaledger.admin-addr" and "webapi.adminport" both set --admin-addr`},
		{"duplicate key", "[webapi]\nadminport = \"1\"\nadminport = \"2\"", `Key 'webapi.adminport' has already been defined`},
		{"duplicate table", "[webapi]\nadminport = \"1\"\n[webapi]\npubport = \"2\"", `Key 'webapi' has already been defined`},
		{"invalid UTF-8", "[gigawallet]\nservicename = \"n\xff\"", `not valid UTF-8`},
		{"not TOML", "[webapi\nadminport = 1", `not TOML at line 2, column 8 (the parser's message is left out`},
		{"the flag's own validation", "[gigawallet]\nconfirmationsneeded = -1", `--confirmations-needed -1 outside`},
		{"a non-loopback bind needs a token", "[webapi]\nadminbind = \"0.0.0.0\"", `no admin token: refusing to listen on 0.0.0.0:8081`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseServeFlags([]string{"--config", writeTOML(t, c.content)}, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("%q: got %v, want an error containing %q", c.content, err, c.want)
			}
		})
	}
}

// A refused value is never echoed, however it fails: the file may hold the admin token.
func TestConfigTOMLErrorsKeepValuesOut(t *testing.T) {
	t.Setenv(adminTokenEnv, "")
	for _, content := range []string{
		"[webapi]\nadminbearertoken = s3cretvalue",                          // unquoted: a syntax error at the value
		"[webapi]\nadminbearertoken = \"s3cretvalue",                        // unterminated string
		"[webapi]\nadminbearertoken = 5s3cretvalue",                         // a bad number
		"[webapi]\nadminbearertoken = 2024-13-45Ts3cretvalue",               // a bad date
		"[webapi]\nadminbearertoken = [\"s3cretvalue\"]",                    // wrong type
		"[webapi]\nadminport = \"s3cretvalue\"",                             // a bad port
		"[gigaledger]\nshards = \"s3cretvalue\"",                            // wrong type for a flag
		"[webapi]\nadminbearertoken = \"x\"\n[webapi]\nx = \"s3cretvalue\"", // duplicate table
	} {
		_, err := parseServeFlags([]string{"--config", writeTOML(t, content)}, &bytes.Buffer{})
		if err == nil {
			t.Fatalf("%q accepted", content)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("value in error: %v", err)
		}
	}
}

// Every flag type takes its TOML type in [gigaledger], durations as strings.
func TestConfigTOMLEveryFlagType(t *testing.T) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(&bytes.Buffer{})
	var (
		text  string
		count int
		big   uint64
		on    bool
		wait  time.Duration
		ratio float64
	)
	fs.StringVar(&text, "text", "", "")
	fs.IntVar(&count, "count", 0, "")
	fs.Uint64Var(&big, "big", 0, "")
	fs.BoolVar(&on, "on", false, "")
	fs.DurationVar(&wait, "wait", 0, "")
	fs.Float64Var(&ratio, "ratio", 0, "")
	path := writeTOML(t, "[gigaledger]\ntext = \"é x\"\ncount = -3\nbig = 9223372036854775807\non = true\nwait = \"1m30s\"\nratio = 0.25\n")
	if _, err := mergeConfigFile(fs, path); err != nil {
		t.Fatal(err)
	}
	if text != "é x" || count != -3 || big != 1<<63-1 || !on || wait != 90*time.Second || ratio != 0.25 {
		t.Fatalf("got text %q count %d big %d on %v wait %v ratio %v", text, count, big, on, wait, ratio)
	}
	for _, c := range []struct{ content, want string }{
		{"[gigaledger]\nwait = 90", `"gigaledger.wait": want a duration string like "5s", got a whole number`},
		{"[gigaledger]\nwait = \"s3cret\"", `"gigaledger.wait": invalid value: parse error`},
		{"[gigaledger]\nratio = \"0.5\"", `"gigaledger.ratio": want a number, got a string`},
	} {
		content, want := c.content, c.want
		_, err := mergeConfigFile(fs, writeTOML(t, content))
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%q: got %v, want %q", content, err, want)
		}
	}
}

// A file not named *.toml stays JSON, whatever it holds.
func TestConfigTOMLOnlyByName(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.conf")
	if err := os.WriteFile(path, []byte("[gigaledger]\nshards = 4\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := parseServeFlags([]string{"--config", path}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "want one JSON object") {
		t.Fatalf("non-.toml file read as: %v", err)
	}
}

// Any bytes: an error or settings, never a panic, and never a value in the error.
func FuzzConfigTOML(f *testing.F) {
	f.Add([]byte(gigaWalletExampleConfig))
	f.Add([]byte("[webapi]\nadminport = 8081\n[gigaledger]\nshards = 4"))
	f.Add([]byte("a = [{b = 1}, {c = 2}]\n[[x.y]]\nz = 1979-05-27T07:32:00Z"))
	f.Fuzz(func(t *testing.T, data []byte) {
		settings, ignored, err := tomlSettings(data)
		if err != nil && (len(settings) > 0 || len(ignored) > 0) {
			t.Fatalf("error %v with results", err)
		}
	})
}
