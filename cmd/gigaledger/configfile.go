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

// mergeConfigFile sets, from the config file at path, every flag of fs that was not given on the
// command line. A file whose name ends in ".toml" is a GigaWallet config.toml (tomlSettings);
// any other holds one JSON object whose keys are flag names (jsonSettings). Either way each
// value has the flag's type: a string for text and durations ("5s"), a whole number for counts,
// true/false for switches. The value reaches the flag through flag.Value.Set, so a file is
// validated exactly as the command line is. The file is strict: an unknown key (named with the
// list of valid ones), a duplicate key, two keys setting one flag, a value of the wrong type,
// invalid UTF-8 or anything but the settings is an error. Values are never quoted in errors: a
// file may hold the admin token.
//
// It returns the GigaWallet settings the file holds that GigaLedger does not use, by their
// dotted names, for serve to log.
func mergeConfigFile(fs *flag.FlagSet, path string) (ignored []string, err error) {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	data, err := readConfigFile(path)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	var settings []configSetting
	if strings.HasSuffix(path, ".toml") {
		settings, ignored, err = tomlSettings(data)
	} else {
		settings, err = jsonSettings(data)
	}
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	setBy := map[string]string{} // flag name → the key of the file that set it
	for _, s := range settings {
		if s.flag == "config" {
			return nil, fmt.Errorf("config %s: a config file cannot name another (%q)", path, s.key)
		}
		f := fs.Lookup(s.flag)
		if f == nil {
			return nil, fmt.Errorf("config %s: unknown setting %q; valid settings: %s", path, s.key, strings.Join(configKeys(fs), ", "))
		}
		if _, repeatable := f.Value.(interface{ repeatable() }); repeatable {
			// each key of the file adds one value
		} else if earlier, ok := setBy[s.flag]; ok {
			return nil, fmt.Errorf("config %s: %q and %q both set --%s", path, earlier, s.key, s.flag)
		}
		setBy[s.flag] = s.key
		text, err := flagText(f, s.value)
		if err != nil {
			return nil, fmt.Errorf("config %s: %q: %w", path, s.key, err)
		}
		if given[s.flag] {
			continue // the command line wins
		}
		if err := f.Value.Set(text); err != nil {
			return nil, fmt.Errorf("config %s: %q: invalid value: %w", path, s.key, err)
		}
	}
	return ignored, nil
}

// configSetting is one setting of the config file, in file order.
type configSetting struct {
	key   string // as the file names it, for errors: "shards", "webapi.adminport"
	flag  string // the flag it sets
	value configValue
}

// configValue is a setting's decoded value, whatever the file's format.
type configValue struct {
	kind valueKind
	text string // what flag.Value.Set parses; empty for kindOther
	// describe names the value's type for errors ("a string", "an array"), never its content.
	describe string
}

// valueKind is what a config value can be to a flag.
type valueKind int

const (
	kindString valueKind = iota + 1
	kindWholeNumber
	kindFractionalNumber
	kindBoolean
	kindOther // null, an array, an object or table, a date: never a flag's value
)

// scalarValue is a string, number or boolean setting with its text.
func scalarValue(kind valueKind, text string) configValue {
	var describe string
	switch kind {
	case kindString:
		describe = "a string"
	case kindWholeNumber:
		describe = "a whole number"
	case kindFractionalNumber:
		describe = "a fractional number"
	case kindBoolean:
		describe = "a boolean"
	default:
		panic(fmt.Sprintf("scalarValue: kind %d is not a scalar", kind))
	}
	return configValue{kind: kind, text: text, describe: describe}
}

// readConfigFile reads the whole file, refusing one larger than configFileBytesMax and invalid
// UTF-8 (a decoder would make it U+FFFD silently).
func readConfigFile(path string) ([]byte, error) {
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
	return data, nil
}

// jsonSettings reads the file's one top-level JSON object, refusing duplicate keys
// (encoding/json would keep the last one silently). Each key is a flag's name.
func jsonSettings(data []byte) ([]configSetting, error) {
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
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("%q: not JSON: %w", key, err)
		}
		value, err := jsonValue(raw)
		if err != nil {
			return nil, fmt.Errorf("%q: not JSON: %w", key, err)
		}
		settings = append(settings, configSetting{key: key, flag: key, value: value})
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the settings object")
	}
	return settings, nil
}

// jsonValue decodes one JSON value into a configValue; a number keeps its text as written.
func jsonValue(raw json.RawMessage) (configValue, error) {
	var decoded any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&decoded); err != nil {
		return configValue{}, err
	}
	switch v := decoded.(type) {
	case string:
		return scalarValue(kindString, v), nil
	case json.Number:
		if isWholeNumber(string(v)) {
			return scalarValue(kindWholeNumber, string(v)), nil
		}
		return scalarValue(kindFractionalNumber, string(v)), nil
	case bool:
		return scalarValue(kindBoolean, fmt.Sprint(v)), nil
	case nil:
		return configValue{kind: kindOther, describe: "null"}, nil
	case []any:
		return configValue{kind: kindOther, describe: "an array"}, nil
	case map[string]any:
		return configValue{kind: kindOther, describe: "an object"}, nil
	}
	return configValue{kind: kindOther, describe: fmt.Sprintf("%T", decoded)}, nil
}

// flagText returns the text flag.Value.Set parses, if the value's type fits the flag: a switch
// takes true/false, a count a whole number, a duration or text a string. A flag whose value
// type is unknown here takes a string, number or boolean as text.
func flagText(f *flag.Flag, v configValue) (string, error) {
	var current any
	if getter, ok := f.Value.(flag.Getter); ok {
		current = getter.Get()
	}
	switch current.(type) {
	case bool:
		if v.kind == kindBoolean {
			return v.text, nil
		}
		return "", fmt.Errorf("want true or false, got %s", v.describe)
	case int, int64, uint, uint64:
		if v.kind == kindWholeNumber {
			return v.text, nil
		}
		return "", fmt.Errorf("want a whole number, got %s", v.describe)
	case float64:
		if v.kind == kindWholeNumber || v.kind == kindFractionalNumber {
			return v.text, nil
		}
		return "", fmt.Errorf("want a number, got %s", v.describe)
	case string, time.Duration:
		if v.kind == kindString {
			return v.text, nil
		}
		want := "a string"
		if _, ok := current.(time.Duration); ok {
			want = `a duration string like "5s"`
		}
		return "", fmt.Errorf("want %s, got %s", want, v.describe)
	}
	if v.kind != kindOther {
		return v.text, nil
	}
	return "", fmt.Errorf("want a string, number or boolean, got %s", v.describe)
}

// isWholeNumber reports whether a JSON number is written as an integer: no fraction, no
// exponent ("4", "-1"; not "4.0", "4e0").
func isWholeNumber(n string) bool {
	return n != "" && !strings.ContainsAny(n, ".eE")
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
