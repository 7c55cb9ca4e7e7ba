package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// A GigaWallet operator's config.toml (GigaWallet's pkg/config.go) read as GigaLedger flags.
// Keys are case-insensitive, as GigaWallet's decoder matches them. Our own settings live in a
// [gigaledger] table keyed by flag name.

// tomlKey says what one key of a GigaWallet table sets.
type tomlKey struct {
	flag string // the flag it sets; "" for a GigaWallet setting GigaLedger does not use
	part addrPart
}

// addrPart marks a key that is one half of a listener flag's host:port; zero is the whole value.
type addrPart int

const (
	addrHost addrPart = iota + 1
	addrPort
)

// gigaWalletTables are the GigaWallet tables whose keys GigaLedger knows one by one, lowercase.
var gigaWalletTables = map[string]map[string]tomlKey{
	"gigawallet": {
		"network":             {flag: "network"},
		"confirmationsneeded": {flag: "confirmations-needed"},
		"servicename":         {flag: "service-name"},
		"servicedomain":       {flag: "service-domain"},
		"serviceiconurl":      {flag: "service-icon-url"},
		"servicekeyhash":      {},
		"servicekeysecret":    {},
		"rejectionsneeded":    {},
	},
	"webapi": {
		"adminbind":        {flag: "admin-addr", part: addrHost},
		"adminport":        {flag: "admin-addr", part: addrPort},
		"adminbearertoken": {flag: "admin-token"},
		"pubbind":          {flag: "public-addr", part: addrHost},
		"pubport":          {flag: "public-addr", part: addrPort},
		"pubapirooturl":    {flag: "pub-api-root-url"},
	},
	"store": {"dbfile": {}},
}

// gigaWalletUnusedTables are GigaWallet tables GigaLedger does not use, whatever they hold
// (dogecoind.<network>, loggers.<name>, callbacks.<name>, mqtt and mqtt.queues.<name>).
var gigaWalletUnusedTables = []string{"loggers"}

// dogecoindTable holds GigaWallet's nodes, [dogecoind.<network>] host, zmqport, rpchost,
// rpcport, rpcuser, rpcpass: each becomes a --dogecoind.
const dogecoindTable = "dogecoind"

// mqttTable holds GigaWallet's MQTT broker ([mqtt] address, username, password, clientid) and
// its queues ([mqtt.queues.NAME] topicfilter, types): each queue becomes an --mqtt-queue.
const mqttTable = "mqtt"

// callbacksTable holds GigaWallet's webhooks, [callbacks.NAME] path, types, hmacsecret: each
// becomes a --callback.
const callbacksTable = "callbacks"

// gigaLedgerTable is the table of our own settings, keyed by flag name.
const gigaLedgerTable = "gigaledger"

// gigPayTable holds the GigPay API's settings, [gigpay] project and env (GigaLedger's own: no
// GigaWallet file has it).
const gigPayTable = "gigpay"

// gigPayKeys are the keys of [gigpay], lowercase.
var gigPayKeys = map[string]tomlKey{
	"project": {flag: "gigpay-project"},
	"env":     {flag: "gigpay-env"},
}

// listenerFlags are the flags GigaWallet splits into a bind and a port, in the order they are
// set, with GigaWallet's defaults for the half a file leaves out.
var listenerFlags = []struct{ flag, defaultHost, defaultPort string }{
	{"admin-addr", "localhost", "8081"},
	{"public-addr", "localhost", "8082"},
}

// tomlSettings reads a GigaWallet config.toml into settings, in a fixed order (tables and keys
// sorted), and names the GigaWallet settings it holds that GigaLedger does not use. BurntSushi
// TOML parses it, as GigaWallet does, so a file GigaWallet accepts parses here the same way
// (duplicate keys are its error too).
func tomlSettings(data []byte) (settings []configSetting, ignored []string, err error) {
	file, err := decodeTOML(data)
	if err != nil {
		return nil, nil, err
	}
	tables, err := foldKeys("", file)
	if err != nil {
		return nil, nil, err
	}
	for _, table := range tables {
		switch {
		case table.folded == gigaLedgerTable:
			entries, err := tableEntries(table)
			if err != nil {
				return nil, nil, err
			}
			for _, e := range entries {
				settings = append(settings, configSetting{key: e.name, flag: e.folded, value: tomlValue(e.value)})
			}
		case table.folded == mqttTable:
			queues, err := mqttSettings(table)
			if err != nil {
				return nil, nil, err
			}
			settings = append(settings, queues...)
		case table.folded == dogecoindTable:
			nodes, err := dogecoindSettings(table)
			if err != nil {
				return nil, nil, err
			}
			settings = append(settings, nodes...)
		case table.folded == callbacksTable:
			callbacks, err := callbackSettings(table)
			if err != nil {
				return nil, nil, err
			}
			settings = append(settings, callbacks...)
		case table.folded == gigPayTable:
			gigPay, _, err := gigaWalletSettings(table, gigPayKeys)
			if err != nil {
				return nil, nil, err
			}
			settings = append(settings, gigPay...)
		case slices.Contains(gigaWalletUnusedTables, table.folded):
			ignored = append(ignored, leafNames(table.name, table.value)...)
		case gigaWalletTables[table.folded] != nil:
			tableSettings, tableIgnored, err := gigaWalletSettings(table, gigaWalletTables[table.folded])
			if err != nil {
				return nil, nil, err
			}
			settings = append(settings, tableSettings...)
			ignored = append(ignored, tableIgnored...)
		default:
			valid := slices.Concat(slices.Collect(maps.Keys(gigaWalletTables)), gigaWalletUnusedTables, []string{gigaLedgerTable, gigPayTable, callbacksTable, mqttTable, dogecoindTable})
			slices.Sort(valid)
			what := "table"
			if _, ok := table.value.(map[string]any); !ok {
				what = "top-level setting"
			}
			return nil, nil, fmt.Errorf("unknown %s %q; valid tables: %s", what, table.name, strings.Join(valid, ", "))
		}
	}
	return settings, ignored, nil
}

// decodeTOML parses the file into tables and values. The parser panics on its own bugs ("BUG:
// ..."); such a file fails as an error, and never crashes the node.
func decodeTOML(data []byte) (file map[string]any, err error) {
	defer func() {
		if r := recover(); r != nil {
			file, err = nil, errors.New("not TOML (the parser failed)")
		}
	}()
	if _, err := toml.Decode(string(data), &file); err != nil {
		return nil, tomlSyntaxError(err)
	}
	return file, nil
}

// gigaWalletSettings reads one GigaWallet table whose keys are known one by one. A listener's
// bind and port become one host:port setting, the missing half taking GigaWallet's default.
func gigaWalletSettings(table tomlEntry, keys map[string]tomlKey) (settings []configSetting, ignored []string, err error) {
	entries, err := tableEntries(table)
	if err != nil {
		return nil, nil, err
	}
	type listener struct {
		host, port       string
		hostSet, portSet bool
		keys             []string // as the file names them, for errors
	}
	listeners := map[string]*listener{}
	for _, e := range entries {
		key, ok := keys[e.folded]
		if !ok {
			valid := slices.Sorted(maps.Keys(keys))
			return nil, nil, fmt.Errorf("unknown setting %q; valid settings of [%s]: %s", e.name, table.folded, strings.Join(valid, ", "))
		}
		if key.flag == "" {
			ignored = append(ignored, e.name)
			continue
		}
		if key.part == 0 {
			settings = append(settings, configSetting{key: e.name, flag: key.flag, value: tomlValue(e.value)})
			continue
		}
		l := listeners[key.flag]
		if l == nil {
			l = &listener{}
			listeners[key.flag] = l
		}
		l.keys = append(l.keys, e.name)
		switch key.part {
		case addrHost:
			host, ok := e.value.(string)
			if !ok {
				return nil, nil, fmt.Errorf("%q: want a string, got %s", e.name, tomlValue(e.value).describe)
			}
			l.host, l.hostSet = host, true
		case addrPort:
			if l.port, err = tomlPort(e.value); err != nil {
				return nil, nil, fmt.Errorf("%q: %w", e.name, err)
			}
			l.portSet = true
		}
	}
	for _, lf := range listenerFlags { // a slice, not the map: settings keep a fixed order
		l := listeners[lf.flag]
		if l == nil {
			continue
		}
		if !l.hostSet {
			l.host = lf.defaultHost
		}
		if !l.portSet {
			l.port = lf.defaultPort
		}
		addr := net.JoinHostPort(l.host, l.port)
		settings = append(settings, configSetting{key: strings.Join(l.keys, ", "), flag: lf.flag, value: scalarValue(kindString, addr)})
	}
	return settings, ignored, nil
}

// tomlPort reads a listener's port: a TOML string, as GigaWallet requires, or an integer.
func tomlPort(value any) (string, error) {
	var port int64
	switch v := value.(type) {
	case string:
		if v == "" || len(v) > len("65535") || strings.Trim(v, "0123456789") != "" {
			return "", errors.New("want a port from 1 to 65535")
		}
		port, _ = strconv.ParseInt(v, 10, 64) // at most five digits
	case int64:
		port = v
	default:
		return "", fmt.Errorf("want a port as a string or whole number, got %s", tomlValue(value).describe)
	}
	if port < 1 || port > 65535 {
		return "", errors.New("want a port from 1 to 65535")
	}
	return strconv.FormatInt(port, 10), nil
}

// tomlEntry is one key of a TOML table: its dotted name as the file writes it, its last part
// lowercased (keys are case-insensitive) and its decoded value.
type tomlEntry struct {
	name   string
	folded string
	value  any
}

// foldKeys lists a table's keys sorted by their lowercase form, refusing two keys that differ
// only in case: GigaWallet would take either, silently.
func foldKeys(prefix string, table map[string]any) ([]tomlEntry, error) {
	entries := make([]tomlEntry, 0, len(table))
	for _, key := range slices.Sorted(maps.Keys(table)) {
		entries = append(entries, tomlEntry{name: prefix + key, folded: strings.ToLower(key), value: table[key]})
	}
	slices.SortStableFunc(entries, func(a, b tomlEntry) int { return strings.Compare(a.folded, b.folded) })
	for i := 1; i < len(entries); i++ {
		if entries[i].folded == entries[i-1].folded {
			return nil, fmt.Errorf("%q and %q are one setting (keys are case-insensitive)", entries[i-1].name, entries[i].name)
		}
	}
	return entries, nil
}

// tableEntries lists the keys of a top-level entry that must be a table.
func tableEntries(e tomlEntry) ([]tomlEntry, error) {
	table, ok := e.value.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%q: want a table, got %s", e.name, tomlValue(e.value).describe)
	}
	return foldKeys(e.name+".", table)
}

// leafNames names, sorted, every key under an unused table; an empty table names itself.
func leafNames(name string, value any) []string {
	table, ok := value.(map[string]any)
	if !ok || len(table) == 0 {
		return []string{name}
	}
	var names []string
	for _, key := range slices.Sorted(maps.Keys(table)) {
		names = append(names, leafNames(name+"."+key, table[key])...)
	}
	return names
}

// tomlValue turns a decoded TOML value into a configValue.
func tomlValue(value any) configValue {
	switch v := value.(type) {
	case string:
		return scalarValue(kindString, v)
	case int64:
		return scalarValue(kindWholeNumber, strconv.FormatInt(v, 10))
	case float64:
		return scalarValue(kindFractionalNumber, strconv.FormatFloat(v, 'g', -1, 64))
	case bool:
		return scalarValue(kindBoolean, strconv.FormatBool(v))
	case map[string]any:
		return configValue{kind: kindOther, describe: "a table"}
	case []map[string]any:
		return configValue{kind: kindOther, describe: "an array of tables"}
	case []any:
		return configValue{kind: kindOther, describe: "an array"}
	case time.Time:
		return configValue{kind: kindOther, describe: "a date-time"}
	}
	return configValue{kind: kindOther, describe: fmt.Sprintf("%T", value)}
}

// tomlSyntaxError says where the file stops being TOML. The parser's own message is passed on
// only when it is about keys ("Key 'x' has already been defined."): the others may quote the
// text that failed, such as an admin token written without quotes.
func tomlSyntaxError(err error) error {
	var parseErr toml.ParseError
	if !errors.As(err, &parseErr) {
		return errors.New("not TOML")
	}
	where := fmt.Sprintf("line %d, column %d", parseErr.Position.Line, parseErr.Position.Col)
	if parseErr.LastKey != "" {
		where += fmt.Sprintf(" (last key %q)", parseErr.LastKey)
	}
	if strings.HasPrefix(parseErr.Message, "Key '") {
		return fmt.Errorf("not TOML at %s: %s", where, parseErr.Message)
	}
	return fmt.Errorf("not TOML at %s (the parser's message is left out: it may quote a value)", where)
}

// callbackSettings turns [callbacks.NAME] tables into --callback settings: path (the URL),
// types (an array of categories and event types) and hmacsecret (optional).
func callbackSettings(table tomlEntry) ([]configSetting, error) {
	callbacks, err := tableEntries(table)
	if err != nil {
		return nil, err
	}
	var settings []configSetting
	for _, callback := range callbacks {
		keys, err := tableEntries(callback)
		if err != nil {
			return nil, err
		}
		spec := callbackFlagSpec{Name: callbackNamePrefix + strings.TrimPrefix(callback.name, table.name+".")}
		for _, key := range keys {
			var ok bool
			switch key.folded {
			case "path":
				spec.URL, ok = key.value.(string)
			case "hmacsecret":
				spec.Secret, ok = key.value.(string)
			case "types":
				var list []any
				if list, ok = key.value.([]any); ok {
					for _, item := range list {
						text, isText := item.(string)
						ok = ok && isText
						spec.Types = append(spec.Types, text)
					}
				}
			default:
				return nil, fmt.Errorf("unknown setting %q; valid settings of %s: path, types, hmacsecret", key.name, callback.name)
			}
			if !ok {
				want := "a string"
				if key.folded == "types" {
					want = "an array of strings"
				}
				return nil, fmt.Errorf("%q: want %s, got %s", key.name, want, tomlValue(key.value).describe)
			}
		}
		text, err := json.Marshal(spec)
		if err != nil {
			return nil, err
		}
		settings = append(settings, configSetting{key: callback.name, flag: "callback", value: scalarValue(kindString, string(text))})
	}
	return settings, nil
}

// tomlStrings reads an array of strings.
func tomlStrings(value any) ([]string, bool) {
	list, ok := value.([]any)
	var out []string
	for _, item := range list {
		text, isText := item.(string)
		ok = ok && isText
		out = append(out, text)
	}
	return out, ok
}

// mqttSettings turns [mqtt] and its [mqtt.queues.NAME] tables into --mqtt-queue settings.
func mqttSettings(table tomlEntry) ([]configSetting, error) {
	keys, err := tableEntries(table)
	if err != nil {
		return nil, err
	}
	var broker mqttQueueSpec
	var queues []tomlEntry
	for _, key := range keys {
		var ok bool
		switch key.folded {
		case "address":
			broker.Broker, ok = key.value.(string)
		case "username":
			broker.Username, ok = key.value.(string)
		case "password":
			broker.Password, ok = key.value.(string)
		case "clientid":
			broker.ClientID, ok = key.value.(string)
		case "queues":
			if queues, err = tableEntries(key); err != nil {
				return nil, err
			}
			ok = true
		default:
			return nil, fmt.Errorf("unknown setting %q; valid settings of mqtt: address, username, password, clientid, queues", key.name)
		}
		if !ok {
			return nil, fmt.Errorf("%q: want a string, got %s", key.name, tomlValue(key.value).describe)
		}
	}
	var settings []configSetting
	for _, queue := range queues {
		entries, err := tableEntries(queue)
		if err != nil {
			return nil, err
		}
		spec := broker
		spec.Name = mqttQueueNamePrefix + queue.name[strings.LastIndex(queue.name, ".")+1:]
		for _, e := range entries {
			var ok bool
			switch e.folded {
			case "topicfilter":
				spec.Topic, ok = e.value.(string)
			case "types":
				spec.Types, ok = tomlStrings(e.value)
			default:
				return nil, fmt.Errorf("unknown setting %q; valid settings of %s: topicfilter, types", e.name, queue.name)
			}
			if !ok {
				return nil, fmt.Errorf("%q: want %s, got %s", e.name, map[bool]string{true: "an array of strings", false: "a string"}[e.folded == "types"], tomlValue(e.value).describe)
			}
		}
		text, err := json.Marshal(spec)
		if err != nil {
			return nil, err
		}
		settings = append(settings, configSetting{key: queue.name, flag: "mqtt-queue", value: scalarValue(kindString, string(text))})
	}
	return settings, nil
}

// dogecoindSettings turns [dogecoind.<network>] tables into --dogecoind settings. Ports are
// integers (GigaWallet's config reads them as int); the rest strings.
func dogecoindSettings(table tomlEntry) ([]configSetting, error) {
	networks, err := tableEntries(table)
	if err != nil {
		return nil, err
	}
	var settings []configSetting
	for _, network := range networks {
		keys, err := tableEntries(network)
		if err != nil {
			return nil, err
		}
		spec := dogecoindSpec{Network: strings.TrimPrefix(network.name, table.name+".")}
		for _, key := range keys {
			var ok bool
			switch key.folded {
			case "host":
				spec.Host, ok = key.value.(string)
			case "rpchost":
				spec.RPCHost, ok = key.value.(string)
			case "rpcuser":
				spec.RPCUser, ok = key.value.(string)
			case "rpcpass":
				spec.RPCPass, ok = key.value.(string)
			case "zmqport", "rpcport":
				var port int64
				if port, ok = key.value.(int64); ok && (port < 0 || port > 65535) {
					return nil, fmt.Errorf("%q: want a port, 0..65535", key.name)
				}
				if key.folded == "zmqport" {
					spec.ZMQPort = int(port)
				} else {
					spec.RPCPort = int(port)
				}
			default:
				return nil, fmt.Errorf("unknown setting %q; valid settings of %s: host, zmqport, rpchost, rpcport, rpcuser, rpcpass", key.name, network.name)
			}
			if !ok {
				want := "a string"
				if key.folded == "zmqport" || key.folded == "rpcport" {
					want = "an integer"
				}
				return nil, fmt.Errorf("%q: want %s, got %s", key.name, want, tomlValue(key.value).describe)
			}
		}
		text, err := json.Marshal(spec)
		if err != nil {
			return nil, err
		}
		settings = append(settings, configSetting{key: network.name, flag: "dogecoind", value: scalarValue(kindString, string(text))})
	}
	return settings, nil
}
