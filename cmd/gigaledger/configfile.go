package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// configFileBytesMax bounds the config file: it holds a few dozen settings, never megabytes.
const configFileBytesMax = 1 << 20

// mergeConfigFile sets, from the JSON object in the file at path, every flag of fs that was not
// given on the command line. Each key is a flag's name and its value has the flag's type: a
// JSON string for text and durations ("5s"), a whole number for counts, true/false for
// switches. The value reaches the flag through flag.Value.Set, so a file is validated exactly
// as the command line is. The file is strict: an unknown key (named with the list of valid
// ones), a duplicate key, a value of the wrong type, null, an object or array, invalid UTF-8
// or trailing data is an error. Values are never quoted in errors: a file may hold the admin
// token.
func mergeConfigFile(fs *flag.FlagSet, path string) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	settings, err := readConfigFile(path)
	if err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	for _, s := range settings {
		if s.key == "config" {
			return fmt.Errorf("config %s: a config file cannot name another (\"config\")", path)
		}
		f := fs.Lookup(s.key)
		if f == nil {
			return fmt.Errorf("config %s: unknown setting %q; valid settings: %s", path, s.key, strings.Join(configKeys(fs), ", "))
		}
		text, err := flagText(f, s.value)
		if err != nil {
			return fmt.Errorf("config %s: %q: %w", path, s.key, err)
		}
		if given[s.key] {
			continue // the command line wins
		}
		if err := f.Value.Set(text); err != nil {
			return fmt.Errorf("config %s: %q: invalid value: %w", path, s.key, err)
		}
	}
	return nil
}

// configSetting is one key of the config file with its undecoded value, in file order.
type configSetting struct {
	key   string
	value json.RawMessage
}

// readConfigFile reads the file's one top-level object, refusing duplicate keys (encoding/json
// would keep the last one silently) and invalid UTF-8 (it would become U+FFFD silently).
func readConfigFile(path string) ([]configSetting, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	data, err := io.ReadAll(io.LimitReader(file, configFileBytesMax+1))
	if err != nil {
		return nil, err
	}
	if len(data) > configFileBytesMax {
		return nil, fmt.Errorf("larger than %d bytes", configFileBytesMax)
	}
	if !utf8.Valid(data) {
		return nil, errors.New("not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	} else if tok != json.Delim('{') {
		return nil, errors.New(`want one JSON object of settings, like {"shards":4}`)
	}
	var settings []configSetting
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("not JSON: %w", err)
		}
		key, _ := tok.(string) // inside an object the decoder yields only string keys
		if seen[key] {
			return nil, fmt.Errorf("setting %q given twice", key)
		}
		seen[key] = true
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil, fmt.Errorf("%q: not JSON: %w", key, err)
		}
		settings = append(settings, configSetting{key: key, value: value})
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the settings object")
	}
	return settings, nil
}

// flagText turns a typed JSON value into the text flag.Value.Set parses, if the JSON type
// fits the flag: a switch takes true/false, a count a whole number, a duration or text a
// string. A flag whose value type is unknown here takes a string, number or boolean as text.
func flagText(f *flag.Flag, value json.RawMessage) (string, error) {
	var decoded any
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.UseNumber()
	if err := dec.Decode(&decoded); err != nil {
		return "", err
	}
	var current any
	if getter, ok := f.Value.(flag.Getter); ok {
		current = getter.Get()
	}
	switch current.(type) {
	case bool:
		if b, ok := decoded.(bool); ok {
			return fmt.Sprint(b), nil
		}
		return "", fmt.Errorf("want true or false, got %s", jsonKind(decoded))
	case int, int64, uint, uint64:
		if n, ok := decoded.(json.Number); ok && isWholeNumber(string(n)) {
			return string(n), nil
		}
		return "", fmt.Errorf("want a whole number, got %s", jsonKind(decoded))
	case float64:
		if n, ok := decoded.(json.Number); ok {
			return string(n), nil
		}
		return "", fmt.Errorf("want a number, got %s", jsonKind(decoded))
	case string, time.Duration:
		if s, ok := decoded.(string); ok {
			return s, nil
		}
		want := "a string"
		if _, ok := current.(time.Duration); ok {
			want = `a duration string like "5s"`
		}
		return "", fmt.Errorf("want %s, got %s", want, jsonKind(decoded))
	}
	switch v := decoded.(type) {
	case string:
		return v, nil
	case json.Number:
		return string(v), nil
	case bool:
		return fmt.Sprint(v), nil
	}
	return "", fmt.Errorf("want a string, number or boolean, got %s", jsonKind(decoded))
}

// isWholeNumber reports whether a JSON number is written as an integer: no fraction, no
// exponent ("4", "-1"; not "4.0", "4e0").
func isWholeNumber(n string) bool {
	return n != "" && !strings.ContainsAny(n, ".eE")
}

// jsonKind names the JSON type of a decoded value for error messages, without its content.
func jsonKind(v any) string {
	switch n := v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case json.Number:
		if isWholeNumber(string(n)) {
			return "a whole number"
		}
		return "a fractional number"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// configKeys lists, sorted, the settings a config file may hold: every flag but --config.
func configKeys(fs *flag.FlagSet) []string {
	var keys []string
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name != "config" {
			keys = append(keys, f.Name)
		}
	})
	slices.Sort(keys)
	return keys
}
