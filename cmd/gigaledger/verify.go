package main

import (
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/gigaledger/gigaledger/fsm"
)

// verifyCommand is `gigaledger verify --data-dir D`: offline, with the node stopped, check every
// shard replica under D against its history chain (fsm.VerifyHistory: the chain's links, the
// store's history equal to what the chain recorded) and recompute the balances from that history
// (ledger.CheckInvariants: every wallet's entries replay to its balance, supplies add up, holds
// match). It prints one line per shard with its chain head — compare it with a head written
// down earlier or read from another replica (GET /debug/digest) — and exits 0 when everything
// matches, 1 naming the first record that does not, 2 on usage errors.
func verifyCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "", "the stopped node's data directory (its --data-dir)")
	only := fs.Int("shard", -1, "verify only this shard's replica")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	shardGiven := false
	fs.Visit(func(f *flag.Flag) { shardGiven = shardGiven || f.Name == "shard" })
	if *dataDir == "" || fs.NArg() != 0 || (shardGiven && *only < 0) {
		// A --shard below 0 was "every shard" silently: say it is no shard number instead.
		fmt.Fprintln(stderr, "usage: gigaledger verify --data-dir D [--shard K] (K a shard number, 0 or more)")
		return 2
	}
	shards, err := replicaDirs(*dataDir)
	if err != nil {
		fmt.Fprintf(stderr, "verify: %v\n", err)
		return 1
	}
	if *only >= 0 {
		shards = slices.DeleteFunc(shards, func(r replicaDir) bool { return r.shard != *only })
	}
	if len(shards) == 0 {
		fmt.Fprintf(stderr, "verify: no shard replica under %s\n", *dataDir)
		return 1
	}
	failed := false
	for _, r := range shards {
		line, err := verifyReplica(r)
		if err != nil {
			failed = true
			fmt.Fprintf(stdout, "shard %d: FAILED: %v\n", r.shard, err)
			continue
		}
		fmt.Fprintf(stdout, "shard %d: ok: %s\n", r.shard, line)
	}
	if failed {
		return 1
	}
	return 0
}

type replicaDir struct {
	shard int
	dir   string
}

// replicaDirs lists the shard replicas of a data directory (cluster: shard-K), in shard order.
func replicaDirs(dataDir string) ([]replicaDir, error) {
	entries, err := os.ReadDir(dataDir)
	if err != nil {
		return nil, err
	}
	var out []replicaDir
	for _, e := range entries {
		n, ok := strings.CutPrefix(e.Name(), "shard-")
		k, err := strconv.Atoi(n)
		if !ok || err != nil || !e.IsDir() {
			continue
		}
		if _, err := os.Stat(filepath.Join(dataDir, e.Name(), "ledger")); err != nil {
			continue // a replica that never opened its store
		}
		out = append(out, replicaDir{shard: k, dir: filepath.Join(dataDir, e.Name())})
	}
	slices.SortFunc(out, func(a, b replicaDir) int { return a.shard - b.shard })
	return out, nil
}

func verifyReplica(r replicaDir) (string, error) {
	fams := newFamilies()
	m, err := fsm.OpenReadOnly(r.dir, nil, fams.registry)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return "", fmt.Errorf("open the store: a node still running on this data directory holds it; stop it first (%w)", err)
	}
	if err != nil {
		return "", fmt.Errorf("open the store: %w", err)
	}
	defer m.Close()
	report, err := m.VerifyHistory()
	if err != nil {
		var mismatch *fsm.HistoryMismatch
		if errors.As(err, &mismatch) {
			return "", fmt.Errorf("history does not match its chain: %w", err)
		}
		return "", err
	}
	if err := fams.ledger.Of(m).CheckInvariants(); err != nil {
		// The balances replayed from the history, and the indexes that find it (entry places,
		// transaction batch keys, references).
		return "", fmt.Errorf("the ledger's balances or indexes do not match its history: %w", err)
	}
	if m.AppliedIndex() == 0 {
		// Nothing was ever applied, or nothing reached the disk: the store has no write-ahead
		// log, so a copy of a running node's directory holds only what its last flush wrote.
		return "applied index 0: the store holds nothing, so nothing was checked (a copy of a running node's directory holds only what it last flushed: stop the node, then verify)", nil
	}
	if !report.Started {
		return fmt.Sprintf("applied index %d, no history chain yet (its leader starts it); balances replay from the stored entries", m.AppliedIndex()), nil
	}
	line := fmt.Sprintf("applied index %d, history chain from log index %d to %d (%d records, %d history writes), head %s; %d history records",
		m.AppliedIndex(), report.GenesisIndex, report.Head.Index, report.Records, report.Writes,
		hex.EncodeToString(report.Head.Hash[:]), report.HistoryKeys)
	if report.Fresh {
		line += ", all covered by the chain"
	} else {
		line += fmt.Sprintf(", %d written before the chain started (checked by the balance replay only)", report.Uncovered)
	}
	return line + "; balances replay from the history", nil
}
