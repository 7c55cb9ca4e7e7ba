package dogecoin

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// Seed sizes. BIP32 allows 16 to 64 bytes; we ask for at least 32 (256 bits) because one seed
// holds every account of the cluster, and create 64 (BIP32's maximum, what BIP39 seeds are).
const (
	SeedMinBytes    = 32
	SeedMaxBytes    = 64
	SeedCreateBytes = 64
	// seedFileMaxBytes bounds what LoadSeed reads: the hex of the longest seed, a line end and
	// room for stray whitespace. A longer file is refused unread.
	seedFileMaxBytes = 2*SeedMaxBytes + 64
)

// SeedEnvVar is the environment variable that may carry the seed (as hex) instead of a file.
const SeedEnvVar = "GIGALEDGER_WALLET_SEED"

// redacted is what a Seed or a Keychain shows of itself anywhere.
const redacted = "[redacted]"

// Errors of seed handling, for callers that branch on them (errors.Is).
var (
	// ErrNoSeed: neither a seed file nor the environment variable was given.
	ErrNoSeed = errors.New("no wallet seed: give a seed file or set " + SeedEnvVar)
	// ErrSeedSourceConflict: both a seed file and the environment variable were given.
	ErrSeedSourceConflict = errors.New("wallet seed given twice: give a seed file or set " +
		SeedEnvVar + ", not both")
	// ErrSeedInvalid: the seed's text is not hex, or its length is out of range.
	ErrSeedInvalid = errors.New("invalid wallet seed")
	// ErrSeedFilePermissions: the seed file may be read by others than its owner.
	ErrSeedFilePermissions = errors.New("wallet seed file may be read by others")
)

// Seed is the cluster's master seed: every account key, address and private key derives from
// it. Its bytes never leave the package: a Seed prints, formats and encodes (fmt with any verb,
// encoding/json, encoding.TextMarshaler, log/slog) as "[redacted]". The bytes are held by a
// closure, not a field: fmt prints a struct's unexported fields by reflection without calling
// their methods (a Seed in an unexported field, or under a verb fmt finds bad), and reflection
// shows a func only as an address. The zero Seed is empty and NewKeychain refuses it.
type Seed struct {
	secret func() []byte
}

// NewSeed returns a seed of a copy of raw, which must be SeedMinBytes..SeedMaxBytes long.
func NewSeed(raw []byte) (Seed, error) {
	if len(raw) < SeedMinBytes || len(raw) > SeedMaxBytes {
		return Seed{}, fmt.Errorf("%w: %d bytes, want %d..%d", ErrSeedInvalid, len(raw), SeedMinBytes, SeedMaxBytes)
	}
	secret := append([]byte(nil), raw...)
	return Seed{secret: func() []byte { return secret }}, nil
}

// ParseSeed returns the seed written as hex in text (upper or lower case; white space around it
// is ignored). Both the seed file and the environment variable hold the seed this way: one text
// form that survives an environment variable, a terminal and a paper backup. The error never
// quotes the text.
func ParseSeed(text string) (Seed, error) {
	text = strings.TrimSpace(text)
	if len(text) < 2*SeedMinBytes || len(text) > 2*SeedMaxBytes || len(text)%2 != 0 {
		return Seed{}, fmt.Errorf("%w: %d characters, want an even number of hex digits from %d to %d",
			ErrSeedInvalid, len(text), 2*SeedMinBytes, 2*SeedMaxBytes)
	}
	raw := make([]byte, hex.DecodedLen(len(text)))
	// hex's own errors quote the offending character, which is part of the seed: say less.
	if _, err := hex.Decode(raw, []byte(text)); err != nil {
		return Seed{}, fmt.Errorf("%w: not hex", ErrSeedInvalid)
	}
	seed, err := NewSeed(raw)
	clear(raw)
	return seed, err
}

// LoadSeed returns the seed of the seed file at path or, when path is empty, the seed in env
// (the value of SeedEnvVar, which the caller reads: the package reads no environment). Giving
// both is refused (ErrSeedSourceConflict) rather than resolved: two seeds mean two wallets, and
// silently picking one would hand out addresses of a wallet the operator does not back up.
//
// The file holds the seed as hex (see ParseSeed) and must be a regular file that only its owner
// may read or write: any permission bit beyond 0600 is refused (ErrSeedFilePermissions), as
// ssh refuses a private key others may read.
func LoadSeed(path string, env string) (Seed, error) {
	switch {
	case path != "" && env != "":
		return Seed{}, ErrSeedSourceConflict
	case path != "":
		return loadSeedFile(path)
	case env != "":
		seed, err := ParseSeed(env)
		if err != nil {
			return Seed{}, fmt.Errorf("%s: %w", SeedEnvVar, err)
		}
		return seed, nil
	default:
		return Seed{}, ErrNoSeed
	}
}

func loadSeedFile(path string) (Seed, error) {
	file, err := os.Open(path)
	if err != nil {
		return Seed{}, fmt.Errorf("wallet seed file: %w", err)
	}
	defer file.Close()
	// Stat the opened file, not the path: the file read is the file checked.
	info, err := file.Stat()
	if err != nil {
		return Seed{}, fmt.Errorf("wallet seed file: %w", err)
	}
	if !info.Mode().IsRegular() {
		return Seed{}, fmt.Errorf("wallet seed file %s: %w: not a regular file", path, ErrSeedInvalid)
	}
	if perm := info.Mode().Perm(); perm&^0o600 != 0 {
		return Seed{}, fmt.Errorf("wallet seed file %s: %w: mode %04o, want 0600 or stricter (chmod 600 %s)",
			path, ErrSeedFilePermissions, perm, path)
	}
	text, err := io.ReadAll(io.LimitReader(file, seedFileMaxBytes+1))
	defer clear(text)
	if err != nil {
		return Seed{}, fmt.Errorf("wallet seed file %s: %w", path, err)
	}
	if len(text) > seedFileMaxBytes {
		return Seed{}, fmt.Errorf("wallet seed file %s: %w: longer than %d bytes", path, ErrSeedInvalid, seedFileMaxBytes)
	}
	seed, err := ParseSeed(string(text))
	if err != nil {
		return Seed{}, fmt.Errorf("wallet seed file %s: %w", path, err)
	}
	return seed, nil
}

// CreateSeedFile makes a new random seed of SeedCreateBytes, writes it as hex with mode 0600 to
// path and returns it. It never overwrites: if path exists, it fails with an error that
// errors.Is(err, fs.ErrExist). The file appears whole or not at all: the seed is written and
// synced to a temporary file in the same folder, which is then linked to path (a link, unlike a
// rename, fails when the target exists, so two nodes racing cannot replace each other's seed)
// and the folder synced. The folder must exist, on a file system with hard links.
func CreateSeedFile(path string) (Seed, error) {
	raw := make([]byte, SeedCreateBytes)
	defer clear(raw)
	if _, err := rand.Read(raw); err != nil {
		return Seed{}, fmt.Errorf("create wallet seed: %w", err)
	}
	seed, err := NewSeed(raw)
	if err != nil {
		return Seed{}, err
	}
	text := make([]byte, hex.EncodedLen(len(raw))+1)
	defer clear(text)
	hex.Encode(text, raw)
	text[len(text)-1] = '\n'
	if err := writeNewFile(path, text); err != nil {
		return Seed{}, fmt.Errorf("create wallet seed file %s: %w", path, err)
	}
	return seed, nil
}

// writeNewFile writes data to a new file at path with mode 0600, atomically and without
// replacing an existing file.
func writeNewFile(path string, data []byte) error {
	folder := filepath.Dir(path)
	// CreateTemp makes the file with mode 0600.
	temp, err := os.CreateTemp(folder, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tempPath := temp.Name()
	defer os.Remove(tempPath)
	if _, err := temp.Write(data); err != nil {
		temp.Close()
		return err
	}
	if err := temp.Sync(); err != nil {
		temp.Close()
		return err
	}
	if err := temp.Close(); err != nil {
		return err
	}
	if err := os.Link(tempPath, path); err != nil {
		return err
	}
	return syncFolder(folder)
}

// syncFolder makes a new directory entry in folder durable.
func syncFolder(folder string) error {
	dir, err := os.Open(folder)
	if err != nil {
		return err
	}
	defer dir.Close()
	if err := dir.Sync(); err != nil && !errors.Is(err, fs.ErrInvalid) {
		return err
	}
	return nil
}

// String returns "[redacted]".
func (Seed) String() string { return redacted }

// GoString returns "[redacted]", so %#v shows nothing either.
func (Seed) GoString() string { return redacted }

// Format writes "[redacted]" for every verb and flag.
func (Seed) Format(state fmt.State, _ rune) { _, _ = io.WriteString(state, redacted) }

// MarshalJSON returns the JSON string "[redacted]".
func (Seed) MarshalJSON() ([]byte, error) { return json.Marshal(redacted) }

// MarshalText returns "[redacted]".
func (Seed) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// LogValue makes log/slog write "[redacted]" with any handler.
func (Seed) LogValue() slog.Value { return slog.StringValue(redacted) }

// bytes returns the seed's bytes, nil for the zero Seed. Never let them out of the package.
func (s Seed) bytes() []byte {
	if s.secret == nil {
		return nil
	}
	return s.secret()
}
