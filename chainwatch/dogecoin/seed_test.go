package dogecoin_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gigaledger/gigaledger/chainwatch/dogecoin"
)

// seedHex is a seed whose hex the tests look for in every output.
const seedHex = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90" +
	"0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"

// sameSeed reports whether two seeds make the same keys (Seed shows nothing of itself).
func sameSeed(t *testing.T, a, b dogecoin.Seed) bool {
	t.Helper()
	ka := account(t, newKeychain(t, a, dogecoin.Mainnet), 0)
	kb := account(t, newKeychain(t, b, dogecoin.Mainnet), 0)
	return ka.ExtendedPublicKey() == kb.ExtendedPublicKey()
}

// assertNoSeed fails if text holds the seed as hex (either case) or raw bytes.
func assertNoSeed(t *testing.T, what, text string) {
	t.Helper()
	raw, _ := hex.DecodeString(seedHex)
	for _, secret := range []string{seedHex, strings.ToUpper(seedHex), seedHex[:16], string(raw[:8])} {
		if strings.Contains(text, secret) {
			t.Errorf("%s reveals the seed: %q", what, text)
		}
	}
	// fmt's %v of a byte slice writes decimal numbers.
	if strings.Contains(text, fmt.Sprint(raw[:4])[1:10]) {
		t.Errorf("%s reveals the seed's bytes: %q", what, text)
	}
}

func TestSeedNeverPrints(t *testing.T) {
	seed, err := dogecoin.ParseSeed(seedHex)
	if err != nil {
		t.Fatal(err)
	}
	type exported struct{ Seed dogecoin.Seed }
	type unexported struct{ seed dogecoin.Seed }
	type pointer struct{ Seed *dogecoin.Seed }
	values := map[string]any{
		"Seed":             seed,
		"*Seed":            &seed,
		"exported field":   exported{seed},
		"unexported field": unexported{seed},
		"pointer field":    pointer{&seed},
		"slice":            []dogecoin.Seed{seed},
		"map":              map[string]dogecoin.Seed{"seed": seed},
	}
	for name, value := range values {
		for _, format := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d", "%T"} {
			assertNoSeed(t, fmt.Sprintf("Sprintf(%q, %s)", format, name), fmt.Sprintf(format, value))
		}
		encoded, err := json.Marshal(value)
		if err != nil {
			t.Errorf("json.Marshal(%s): %v", name, err)
		}
		assertNoSeed(t, "json.Marshal("+name+")", string(encoded))
		var logged bytes.Buffer
		slog.New(slog.NewTextHandler(&logged, nil)).Info("start", "value", value)
		slog.New(slog.NewJSONHandler(&logged, nil)).Info("start", "value", value)
		assertNoSeed(t, "slog("+name+")", logged.String())
	}
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q", "%d", "%10.3v"} {
		if got := fmt.Sprintf(format, seed); got != "[redacted]" {
			t.Errorf("Sprintf(%q, seed) = %q, want [redacted]", format, got)
		}
	}
	if text, _ := seed.MarshalText(); string(text) != "[redacted]" {
		t.Errorf("MarshalText = %q", text)
	}
	if got, _ := json.Marshal(seed); string(got) != `"[redacted]"` {
		t.Errorf("json.Marshal(seed) = %s", got)
	}
	if fmt.Errorf("load: %v", seed).Error() != "load: [redacted]" {
		t.Error("a seed in an error shows itself")
	}
}

func TestParseSeed(t *testing.T) {
	valid := []string{
		seedHex,
		strings.ToUpper(seedHex),
		"  " + seedHex + "\n",
		seedHex[:64],  // 32 bytes: the minimum
		seedHex[:100], // 50 bytes
	}
	for _, text := range valid {
		if _, err := dogecoin.ParseSeed(text); err != nil {
			t.Errorf("ParseSeed(%d characters) = %v", len(text), err)
		}
	}
	invalid := []string{
		"",
		seedHex[:62],   // 31 bytes: too short
		seedHex[:32],   // 16 bytes: BIP32's minimum, below ours
		seedHex + "00", // 65 bytes: too long
		seedHex[:63],   // odd number of digits
		seedHex[:60] + "zz" + seedHex[62:64],
		seedHex[:64] + " " + seedHex[64:126],
		"0x" + seedHex[:126],
	}
	for _, text := range invalid {
		_, err := dogecoin.ParseSeed(text)
		if !errors.Is(err, dogecoin.ErrSeedInvalid) {
			t.Errorf("ParseSeed(%q) error = %v, want ErrSeedInvalid", text, err)
			continue
		}
		assertNoSeed(t, "ParseSeed error", err.Error())
		if strings.Contains(err.Error(), "zz") {
			t.Errorf("ParseSeed error quotes the text: %v", err)
		}
	}
	if _, err := dogecoin.NewSeed(make([]byte, 31)); !errors.Is(err, dogecoin.ErrSeedInvalid) {
		t.Errorf("NewSeed(31 bytes) error = %v", err)
	}
	// NewSeed copies: changing the caller's bytes later changes nothing.
	raw, _ := hex.DecodeString(seedHex)
	seed, err := dogecoin.NewSeed(raw)
	if err != nil {
		t.Fatal(err)
	}
	parsed, _ := dogecoin.ParseSeed(seedHex)
	clear(raw)
	if !sameSeed(t, seed, parsed) {
		t.Error("NewSeed kept the caller's slice")
	}
}

func writeSeedFile(t *testing.T, text string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "wallet.seed")
	if err := os.WriteFile(path, []byte(text), mode); err != nil {
		t.Fatal(err)
	}
	// WriteFile's mode passes through the umask: set it exactly.
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadSeed(t *testing.T) {
	want, err := dogecoin.ParseSeed(seedHex)
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o600, 0o400, 0o200 | 0o400} {
		seed, err := dogecoin.LoadSeed(writeSeedFile(t, seedHex+"\n", mode), "")
		if err != nil || !sameSeed(t, seed, want) {
			t.Errorf("LoadSeed(mode %04o) = %v", mode, err)
		}
	}
	seed, err := dogecoin.LoadSeed("", seedHex)
	if err != nil || !sameSeed(t, seed, want) {
		t.Errorf("LoadSeed from the environment = %v", err)
	}

	tooLong := strings.Repeat(seedHex, 40)
	tests := []struct {
		name      string
		path, env string
		wantErr   error
	}{
		{"group and world readable", writeSeedFile(t, seedHex, 0o644), "", dogecoin.ErrSeedFilePermissions},
		{"group readable", writeSeedFile(t, seedHex, 0o640), "", dogecoin.ErrSeedFilePermissions},
		{"world readable", writeSeedFile(t, seedHex, 0o604), "", dogecoin.ErrSeedFilePermissions},
		{"owner executable", writeSeedFile(t, seedHex, 0o700), "", dogecoin.ErrSeedFilePermissions},
		{"short seed file", writeSeedFile(t, seedHex[:62], 0o600), "", dogecoin.ErrSeedInvalid},
		{"raw bytes file", writeSeedFile(t, string(mustHex(t, seedHex)), 0o600), "", dogecoin.ErrSeedInvalid},
		{"huge file", writeSeedFile(t, tooLong, 0o600), "", dogecoin.ErrSeedInvalid},
		{"empty file", writeSeedFile(t, "", 0o600), "", dogecoin.ErrSeedInvalid},
		{"folder", t.TempDir(), "", dogecoin.ErrSeedInvalid},
		{"missing file", filepath.Join(t.TempDir(), "none"), "", fs.ErrNotExist},
		{"short seed in env", "", seedHex[:62], dogecoin.ErrSeedInvalid},
		{"both sources", writeSeedFile(t, seedHex, 0o600), seedHex, dogecoin.ErrSeedSourceConflict},
		{"no source", "", "", dogecoin.ErrNoSeed},
	}
	for _, test := range tests {
		_, err := dogecoin.LoadSeed(test.path, test.env)
		if !errors.Is(err, test.wantErr) {
			t.Errorf("%s: LoadSeed error = %v, want %v", test.name, err, test.wantErr)
			continue
		}
		assertNoSeed(t, test.name+" error", err.Error())
	}
}

func TestCreateSeedFile(t *testing.T) {
	folder := t.TempDir()
	path := filepath.Join(folder, "wallet.seed")
	created, err := dogecoin.CreateSeedFile(path)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("seed file mode %04o, want 0600", info.Mode().Perm())
	}
	content, _ := os.ReadFile(path)
	if len(content) != 2*dogecoin.SeedCreateBytes+1 || content[len(content)-1] != '\n' {
		t.Errorf("seed file holds %d bytes, want %d hex digits and a line end", len(content), 2*dogecoin.SeedCreateBytes)
	}
	loaded, err := dogecoin.LoadSeed(path, "")
	if err != nil || !sameSeed(t, created, loaded) {
		t.Fatalf("LoadSeed of the created file = %v", err)
	}

	// Never overwrites: neither its own file nor one made otherwise.
	if _, err := dogecoin.CreateSeedFile(path); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second CreateSeedFile error = %v, want fs.ErrExist", err)
	}
	if again, _ := os.ReadFile(path); !bytes.Equal(again, content) {
		t.Error("second CreateSeedFile changed the seed file")
	}
	other := filepath.Join(folder, "other")
	if err := os.WriteFile(other, []byte("not a seed"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := dogecoin.CreateSeedFile(other); !errors.Is(err, fs.ErrExist) {
		t.Errorf("CreateSeedFile over another file error = %v, want fs.ErrExist", err)
	}
	if again, _ := os.ReadFile(other); string(again) != "not a seed" {
		t.Error("CreateSeedFile replaced another file")
	}
	// No temporary file is left behind.
	entries, _ := os.ReadDir(folder)
	if len(entries) != 2 {
		t.Errorf("folder holds %d entries, want the seed file and the other file: %v", len(entries), entries)
	}
	// Two seeds differ.
	second, err := dogecoin.CreateSeedFile(filepath.Join(folder, "second.seed"))
	if err != nil || sameSeed(t, created, second) {
		t.Errorf("second seed = %v, same as the first: %v", err, err == nil)
	}
	if _, err := dogecoin.CreateSeedFile(filepath.Join(folder, "missing", "wallet.seed")); err == nil {
		t.Error("CreateSeedFile in a missing folder succeeded")
	}
}

func FuzzParseSeed(f *testing.F) {
	f.Add(seedHex)
	f.Add(seedHex[:63] + "g")
	f.Fuzz(func(t *testing.T, text string) {
		_, err := dogecoin.ParseSeed(text)
		// An error may say how long the text was, never what it holds: no run of 8 of its hex
		// digits appears in the message.
		trimmed := strings.TrimSpace(text)
		if err == nil || len(trimmed) < 8 || strings.Trim(trimmed, "0123456789abcdefABCDEF") != "" {
			return
		}
		for i := 0; i+8 <= len(trimmed); i++ {
			if strings.Contains(err.Error(), trimmed[i:i+8]) {
				t.Fatalf("error %q quotes the text", err)
			}
		}
	})
}
