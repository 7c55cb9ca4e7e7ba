package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeConfig writes a config file into a test directory and returns its path.
func writeConfig(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "node.json")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Typed values reach every kind of serve flag; flags given on the command line win.
func TestConfigFileTypedValues(t *testing.T) {
	t.Setenv(adminTokenEnv, "")
	path := writeConfig(t, `{"shards":4,"replicas":3,"pprof":true,"data-dir":"d2","log-level":"debug",
		"node-id":"n2","peers":"n1=127.0.0.1:7001,n2=127.0.0.1:7002","raft-addr":"127.0.0.1:7002",
		"gossip-addr":"","bootstrap-expect":0,"admin-token":"file-token"}`)
	cfg, err := parseServeFlags([]string{"--config", path, "--data-dir", "override", "--shards", "2"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Shards != 2 || cfg.DataDir != "override" {
		t.Fatalf("flags must win over the file: shards %d data-dir %q", cfg.Shards, cfg.DataDir)
	}
	if cfg.Replicas != 3 || !cfg.Pprof || cfg.LogLevel != "debug" || cfg.NodeID != "n2" || cfg.RaftAddr != "127.0.0.1:7002" || cfg.AdminToken != "file-token" {
		t.Fatalf("file settings not applied: %+v", cfg)
	}
	// Without the flags, the file's values hold; a switch can be turned off by the file too.
	path = writeConfig(t, `{"shards":4,"pprof":false}`)
	cfg, err = parseServeFlags([]string{"--config", path}, &bytes.Buffer{})
	if err != nil || cfg.Shards != 4 || cfg.Pprof {
		t.Fatalf("shards from file: %v %+v", err, cfg)
	}
}

// Every flag defined by serve can be set from the file: the file is generic over the FlagSet,
// so a flag added later needs nothing here.
func TestConfigFileEveryFlagSettable(t *testing.T) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(&bytes.Buffer{})
	var (
		text   string
		count  int
		big    uint64
		on     bool
		wait   time.Duration
		ratio  float64
		config string
	)
	fs.StringVar(&config, "config", "", "")
	fs.StringVar(&text, "text", "", "")
	fs.IntVar(&count, "count", 0, "")
	fs.Uint64Var(&big, "big", 0, "")
	fs.BoolVar(&on, "on", false, "")
	fs.DurationVar(&wait, "wait", 0, "")
	fs.Float64Var(&ratio, "ratio", 0, "")
	var custom []string
	fs.Func("custom", "", func(s string) error { custom = append(custom, s); return nil })
	path := writeConfig(t, `{"text":"é x","count":-3,"big":18446744073709551615,"on":true,"wait":"1m30s","ratio":0.25,"custom":7}`)
	if err := fs.Parse([]string{"--config", path}); err != nil {
		t.Fatal(err)
	}
	if _, err := mergeConfigFile(fs, path); err != nil {
		t.Fatal(err)
	}
	if text != "é x" || count != -3 || big != 1<<64-1 || !on || wait != 90*time.Second || ratio != 0.25 || len(custom) != 1 || custom[0] != "7" {
		t.Fatalf("got text %q count %d big %d on %v wait %v ratio %v custom %v", text, count, big, on, wait, ratio, custom)
	}

	// The real serve FlagSet: every flag but --config appears in the list of valid keys.
	_, err := parseServeFlags([]string{"--config", writeConfig(t, `{"nope":1}`)}, &bytes.Buffer{})
	if err == nil {
		t.Fatal("unknown key accepted")
	}
	for _, name := range []string{"data-dir", "admin-addr", "public-addr", "raft-addr", "node-id", "peers",
		"admin-token", "log-level", "shards", "replicas", "gossip-addr", "join", "bootstrap-expect", "pprof",
		"gigpay-project", "gigpay-env"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("valid keys in %q lack %q", err, name)
		}
	}
}

// A config file means exactly what it says: anything unclear is an error naming the key.
func TestConfigFileRefusals(t *testing.T) {
	t.Setenv(adminTokenEnv, "")
	cases := []struct{ name, content, want string }{
		{"unknown key", `{"nodeid":"n2"}`, `unknown setting "nodeid"; valid settings: admin-addr, admin-token,`},
		{"config key", `{"config":"other.json"}`, `cannot name another`},
		{"string for a count", `{"shards":"4"}`, `"shards": want a whole number, got a string`},
		{"fraction", `{"shards":4.5}`, `"shards": want a whole number, got a fractional number`},
		{"exponent", `{"shards":4e0}`, `"shards": want a whole number`},
		{"null", `{"shards":null}`, `"shards": want a whole number, got null`},
		{"array", `{"peers":["n1=127.0.0.1:7001"]}`, `"peers": want a string, got an array`},
		{"object", `{"data-dir":{"path":"x"}}`, `"data-dir": want a string, got an object`},
		{"number for a switch", `{"pprof":1}`, `"pprof": want true or false, got a whole number`},
		{"string for a switch", `{"pprof":"true"}`, `"pprof": want true or false, got a string`},
		{"bool for text", `{"node-id":true}`, `"node-id": want a string, got a boolean`},
		{"out of range", `{"shards":99999999999999999999999}`, `"shards": invalid value`},
		{"duplicate key", `{"shards":2,"shards":4}`, `setting "shards" given twice`},
		{"invalid UTF-8", "{\"node-id\":\"n\xff\"}", `not valid UTF-8`},
		{"not an object", `["shards",4]`, `want one JSON object`},
		{"trailing data", `{"shards":2} {"shards":4}`, `data after the settings object`},
		{"truncated", `{"shards":2`, `not JSON`},
		{"the flag's own validation", `{"shards":0}`, `--shards 0 outside`},
		{"gigpay env not a label", `{"gigpay-env":"wallet.eu"}`, `--gigpay-env "wallet.eu": want empty (production) or a DNS label`},
		{"gigpay project not an ID", `{"gigpay-project":"a/b"}`, `--gigpay-project "a/b": want 1..30`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseServeFlags([]string{"--config", writeConfig(t, c.content)}, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("%s: got %v, want an error containing %q", c.content, err, c.want)
			}
		})
	}
	// A refused value is never echoed: the file may hold the admin token.
	_, err := parseServeFlags([]string{"--config", writeConfig(t, `{"admin-token":["s3cret-value"]}`)}, &bytes.Buffer{})
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("admin token in error: %v", err)
	}
	// A missing file names itself.
	if _, err := parseServeFlags([]string{"--config", filepath.Join(t.TempDir(), "missing.json")}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Fatalf("missing file: %v", err)
	}
}
