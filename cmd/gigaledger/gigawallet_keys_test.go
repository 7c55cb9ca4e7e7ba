package main

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil/base58"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/cockroachdb/pebble"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"

	"github.com/gigaledger/gigaledger/chainwatch/dogecoin"
	"github.com/gigaledger/gigaledger/cluster/testutil"
)

// TestGigaWalletKeysNeverStored: three nodes share a seed file kept outside their data
// directories; accounts and invoices are created, read, and refused in a dozen ways a client can
// provoke; every replica of every shard is snapshotted, more is written, and the nodes stop (the
// store has no WAL: Close flushes its memtables into compressed tables), start and stop again.
// Then neither the seed nor any private key derived from it (raw, hex, WIF, extended) is in any
// byte the nodes wrote: every file of every data directory as it lies on disk, and, because
// Pebble compresses its blocks, every key and value of every replica's store read back through
// Pebble, every Raft log entry read back through raft-boltdb, and every snapshot (an uncompressed
// stream, checked by its magic). Nor in the nodes' debug log, their /metrics, or any answer they
// gave. Positive controls: the accounts' extended public keys and the invoice addresses are found
// by the same search in each of those places (the answers show no xpub), so the search reads what
// the nodes stored.
func TestGigaWalletKeysNeverStored(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test")
	}
	const nodeCount, shardCount, accountCount, invoicesPerAccount = 3, 2, 4, 3
	var logs syncBuffer
	// The nodes follow a simulated chain, so payouts are signed (keys derived on demand) and
	// reserved through the log as well.
	sim := startSimNode(t)
	t.Cleanup(func() {
		if t.Failed() {
			for _, line := range strings.Split(logs.String(), "\n") {
				if strings.Contains(line, "chain") && !strings.Contains(line, `"level":"DEBUG"`) {
					t.Log(line)
				}
			}
		}
	})
	g := newConfiguredGigaWalletCluster(t, nodeCount, shardCount, slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}),
		func(cfg *serveConfig) {
			sim.configure(cfg, 50*time.Millisecond)
			cfg.ConfirmationsNeeded = 1
		})

	// At least accountCount accounts with payout settings, in every shard; invoices through
	// rotating nodes.
	var foreignIDs []string
	shardsUsed := map[int]bool{}
	for k := 0; len(foreignIDs) < accountCount || len(shardsUsed) < shardCount; k++ {
		if k == 1000 {
			t.Fatal("1000 foreign IDs do not cover every shard")
		}
		id := fmt.Sprintf("merchant-%d", k)
		shardsUsed[gigaWalletShardOf(id, shardCount)] = true
		foreignIDs = append(foreignIDs, id)
	}
	settings := `{"payout_address":"` + sim.chain.FaucetAddress() + `","payout_threshold":"100","payout_frequency":"3600"}`
	for a, id := range foreignIDs {
		g.expect(a%nodeCount, false, http.MethodPost, "/account/"+id, settings, http.StatusOK)
	}
	request := 0
	createInvoices := func(count int) {
		for range count {
			for _, id := range foreignIDs {
				g.createInvoice(request%nodeCount, id, `{"items":[{"type":"item","name":"tea","value":"0.5","quantity":3}]}`)
				request++
			}
		}
	}
	createInvoices(invoicesPerAccount - 1)

	// Two accounts are paid on the chain and pay out through the API (signed on the node that
	// takes the request), mined and confirmed.
	for a, id := range foreignIDs[:2] {
		address, err := mustAccountKeys(t, g.keys, g.fsmAccount(0, id).Index).InvoiceAddress(0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sim.chain.Pay(address.Address, 5*100_000_000); err != nil {
			t.Fatal(err)
		}
		sim.chain.Mine(2)
		testutil.EventuallyWithin(t, clusterWaitMax, "the deposit of "+id+" confirmed", func() bool {
			return strings.Contains(string(g.expect(a%nodeCount, false, http.MethodGet, "/account/"+id+"/balance", "", http.StatusOK)), `"CurrentBalance":"5"`)
		})
		g.expect((a+1)%nodeCount, false, http.MethodPost, "/account/"+id+"/pay", `{"amount":"1","to":"`+sim.chain.FaucetAddress()+`"}`, http.StatusOK)
	}
	sim.chain.Mine(2)

	// A snapshot of every replica of every shard; then more entries after it.
	g.waitConverged(clusterWaitMax)
	for i := 0; i < nodeCount; i++ {
		for _, k := range g.node(i).cluster.HostedShards() {
			if err := g.node(i).cluster.Shard(k).Snapshot(); err != nil {
				t.Fatalf("%s shard %d: %v", g.configs[i].NodeID, k, err)
			}
		}
	}
	createInvoices(1)
	g.waitConverged(clusterWaitMax)

	// Read everything back on every node, and provoke the errors a client can.
	accounts := map[string]gigaWalletAccountKeys{}
	for _, id := range foreignIDs {
		a := g.fsmAccount(0, id)
		keys := gigaWalletAccountKeys{number: a.Index, xpub: a.XPub}
		for i := 0; i < nodeCount; i++ {
			g.expect(i, false, http.MethodGet, "/account/"+id, "", http.StatusOK)
			g.expect(i, false, http.MethodGet, "/account/"+id+"/balance", "", http.StatusOK)
			list := g.expect(i, false, http.MethodGet, "/account/"+id+"/invoices", "", http.StatusOK)
			if i == 0 {
				for index := uint32(0); index < a.NextExternal; index++ {
					derived, err := mustAccountKeys(t, g.keys, a.Index).InvoiceAddress(index)
					if err != nil {
						t.Fatal(err)
					}
					if !strings.Contains(string(list), `"id":"`+derived.Address+`"`) {
						t.Fatalf("list of %s lacks invoice %d %s: %s", id, index, derived.Address, list)
					}
					keys.invoices = append(keys.invoices, derived.Address)
				}
			}
			for _, address := range keys.invoices {
				g.expect(i, false, http.MethodGet, "/account/"+id+"/invoice/"+address, "", http.StatusOK)
				g.expect(i, true, http.MethodGet, "/invoice/"+address, "", http.StatusOK)
				// The signed envelope and the QR code use the DogeConnect key.
				g.expect(i, true, http.MethodGet, "/invoice/"+address+"/connect", "", http.StatusOK)
				g.expect(i, true, http.MethodGet, "/invoice/"+address+"/qr.png", "", http.StatusOK)
			}
		}
		if len(keys.invoices) != invoicesPerAccount {
			t.Fatalf("%s has %d invoices, want %d", id, len(keys.invoices), invoicesPerAccount)
		}
		accounts[id] = keys
	}
	someInvoice := accounts[foreignIDs[0]].invoices[0]
	provoked := []struct {
		public       bool
		method, path string
		body         string
		want         int
	}{
		{false, http.MethodPost, "/account/" + foreignIDs[0], `{"payout_address":"xyz"}`, http.StatusBadRequest},
		{false, http.MethodPost, "/account/" + foreignIDs[0], `{"payout_threshold":"-1"}`, http.StatusBadRequest},
		{false, http.MethodPost, "/account/" + foreignIDs[0], ``, http.StatusUnsupportedMediaType}, // no body, no Content-Type
		{false, http.MethodGet, "/account/nobody", "", http.StatusNotFound},
		{false, http.MethodPost, "/account/nobody/invoice", `{"items":[{"type":"item","name":"x","value":"1","quantity":1}]}`, http.StatusNotFound},
		{false, http.MethodPost, "/account/" + foreignIDs[0] + "/invoice", `{"items":[]}`, http.StatusBadRequest},
		{false, http.MethodPost, "/account/" + foreignIDs[0] + "/invoice", `{"items":[{"type":"item","name":"x","value":"-1","quantity":1}]}`, http.StatusBadRequest},
		{false, http.MethodPost, "/account/" + foreignIDs[0] + "/invoice", `{"items":`, http.StatusBadRequest},
		{false, http.MethodGet, "/account/" + foreignIDs[1] + "/invoice/" + someInvoice, "", http.StatusNotFound},
		{false, http.MethodGet, "/account/" + foreignIDs[0] + "/invoices?limit=0", "", http.StatusBadRequest},
		{true, http.MethodGet, "/invoice/" + strings.Repeat("z", 34), "", http.StatusNotFound},
		{true, http.MethodGet, "/invoice/0OIl", "", http.StatusNotFound},
		{true, http.MethodPost, "/account/" + foreignIDs[0], `{}`, http.StatusNotFound},
	}
	var answers [][]byte
	for i := 0; i < nodeCount; i++ {
		for _, p := range provoked {
			answer := g.expect(i, p.public, p.method, p.path, p.body, p.want)
			if !bytes.Contains(answer, []byte(`"error"`)) {
				t.Fatalf("%s %s: %d without an error envelope: %s", p.method, p.path, p.want, answer)
			}
			answers = append(answers, answer)
		}
		metrics := g.expect(i, false, http.MethodGet, "/metrics", "", http.StatusOK)
		if !bytes.Contains(metrics, []byte("go_goroutines")) {
			t.Fatalf("%s /metrics: %.200s", g.configs[i].NodeID, metrics)
		}
		answers = append(answers, metrics)
	}

	// Stop every node (Close flushes the memtables into tables, compressed: the store has no
	// WAL), start them again, and stop them again: everything is on disk, in every form.
	for i := range g.nodes {
		g.stop(i)
	}
	for i := range g.nodes {
		g.start(i)
	}
	for i := range g.nodes {
		testutil.EventuallyWithin(t, clusterWaitMax, "every shard led on "+g.configs[i].NodeID,
			func() bool { return g.node(i).ready() == nil })
	}
	for i := range g.nodes {
		g.stop(i)
	}

	secrets := newNeedleSet(gigaWalletSecrets(t, g.seedHex, g.keys, accounts))
	var controlNeedles []needle
	for _, id := range foreignIDs {
		controlNeedles = append(controlNeedles, needle{name: "the xpub of " + id, value: []byte(accounts[id].xpub)})
		for j, address := range accounts[id].invoices {
			controlNeedles = append(controlNeedles, needle{name: fmt.Sprintf("invoice %d of %s", j, id), value: []byte(address)})
		}
	}
	controls := newNeedleSet(controlNeedles)

	// leak reports every secret found in data; seen collects the controls found.
	leak := func(where string, data []byte, seen map[string]bool) {
		t.Helper()
		for _, name := range secrets.find(data) {
			t.Errorf("LEAK: %s holds %s", where, name)
		}
		for _, name := range controls.find(data) {
			seen[name] = true
		}
	}
	requireControls := func(where string, seen map[string]bool, want []string) {
		t.Helper()
		for _, name := range want {
			if !seen[name] {
				t.Errorf("the search did not find %s in %s: it may not read what is stored there", name, where)
			}
		}
	}
	var everyControl, everyXPub, everyInvoice []string
	for _, n := range controlNeedles {
		everyControl = append(everyControl, n.name)
		if strings.HasPrefix(n.name, "the xpub of ") {
			everyXPub = append(everyXPub, n.name)
		} else {
			everyInvoice = append(everyInvoice, n.name)
		}
	}

	// Outside the data directories: the log, /metrics, every answer.
	seen := map[string]bool{}
	if !strings.Contains(logs.String(), "GigaWallet API on") || !strings.Contains(logs.String(), `"level":"DEBUG"`) {
		t.Fatalf("the nodes logged too little for this test to mean anything:\n%.2000s", logs.String())
	}
	leak("the nodes' log", []byte(logs.String()), map[string]bool{})
	for k, answer := range answers {
		leak(fmt.Sprintf("provoked answer %d", k), answer, seen)
	}
	g.mu.Lock()
	for k, body := range g.bodies {
		leak(fmt.Sprintf("answer %d", k), body, seen)
	}
	g.mu.Unlock()

	for _, cfg := range g.configs {
		node := cfg.NodeID
		// Every file as it lies on disk.
		onDisk, inPebble, inRaft, inSnapshots := map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}
		var stores, checkpoints, raftLogs, snapshots []string
		tables := 0 // Pebble's tables, whose blocks are compressed
		err := filepath.WalkDir(cfg.DataDir, func(path string, entry fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			switch {
			case entry.IsDir() && entry.Name() == "ledger":
				stores = append(stores, path)
			case entry.IsDir() && filepath.Base(filepath.Dir(path)) == "checkpoints":
				checkpoints = append(checkpoints, path) // a snapshot: a Pebble checkpoint
			case entry.IsDir():
			case entry.Name() == "raft.db":
				raftLogs = append(raftLogs, path)
			case entry.Name() == "state.bin":
				snapshots = append(snapshots, path)
			}
			if entry.IsDir() || !entry.Type().IsRegular() {
				return nil
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			leak(path, data, onDisk)
			if strings.HasSuffix(path, ".sst") {
				tables++
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(stores) != shardCount || len(raftLogs) != shardCount || len(snapshots) < shardCount || len(checkpoints) < shardCount ||
			tables < shardCount {
			t.Fatalf("%s: %d stores, %d raft logs, %d snapshots, %d checkpoints, %d tables; want %d, %d and at least %d, %d and %d",
				node, len(stores), len(raftLogs), len(snapshots), len(checkpoints), tables, shardCount, shardCount, shardCount, shardCount, shardCount)
		}
		requireControls(node+"'s files", onDisk, everyControl)

		// Pebble's keys and values, decompressed by Pebble itself (read-only: replays the WAL
		// in memory, writes nothing): the live stores, and the checkpoints that are the
		// snapshots' state.
		for _, dir := range append(append([]string(nil), stores...), checkpoints...) {
			found := inPebble
			if slices.Contains(checkpoints, dir) {
				found = inSnapshots
			}
			db, err := pebble.Open(dir, &pebble.Options{ReadOnly: true, Logger: quietPebbleTestLogger{}})
			if err != nil {
				t.Fatalf("open %s read-only: %v", dir, err)
			}
			it, err := db.NewIter(nil)
			if err != nil {
				t.Fatal(err)
			}
			records := 0
			for it.First(); it.Valid(); it.Next() {
				leak(dir+" key", it.Key(), found)
				leak(dir+" value of "+fmt.Sprintf("%q", it.Key()), it.Value(), found)
				records++
			}
			if err := errors.Join(it.Error(), it.Close(), db.Close()); err != nil {
				t.Fatal(err)
			}
			if records == 0 {
				t.Fatalf("%s: no records", dir)
			}
		}
		requireControls(node+"'s Pebble records", inPebble, everyControl)

		// Every Raft log entry, through raft-boltdb (read-only).
		for _, path := range raftLogs {
			store, err := raftboltdb.New(raftboltdb.Options{Path: path, BoltOptions: &bbolt.Options{ReadOnly: true}})
			if err != nil {
				t.Fatalf("open %s read-only: %v", path, err)
			}
			first, errFirst := store.FirstIndex()
			last, errLast := store.LastIndex()
			if err := errors.Join(errFirst, errLast); err != nil || last == 0 {
				t.Fatalf("%s: log [%d, %d]: %v", path, first, last, err)
			}
			for index := first; index <= last; index++ {
				var entry raft.Log
				if err := store.GetLog(index, &entry); err != nil {
					t.Fatalf("%s entry %d: %v", path, index, err)
				}
				where := fmt.Sprintf("%s entry %d", path, index)
				leak(where, entry.Data, inRaft)
				leak(where+" extensions", entry.Extensions, inRaft)
			}
			if err := store.Close(); err != nil {
				t.Fatal(err)
			}
		}
		requireControls(node+"'s Raft log entries", inRaft, everyControl)

		// Raft's snapshots are references to the checkpoints searched above (shard/checkpointstore.go);
		// the magic says the format is still that one, so nothing else holds state.
		for _, path := range snapshots {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(data, []byte("GIGALEDGER-RAFT-CHECKPOINT-1\n")) || len(data) > 100 {
				t.Fatalf("%s: not a checkpoint reference: %.40q", path, data)
			}
			leak(path, data, inSnapshots)
		}
		// The snapshots were taken before the last invoices: every account is in them.
		requireControls(node+"'s snapshots", inSnapshots, everyXPub)
	}
	requireControls("the answers", seen, everyInvoice) // no route shows an xpub
	t.Logf("searched %d secrets in %d answers, the log (%d bytes) and %d data directories",
		len(secrets.names()), len(g.bodies), len(logs.String()), len(g.configs))
}

// gigaWalletAccountKeys is what the leak test knows of an account: its N, its extended public
// key and its invoices' addresses, in key order.
type gigaWalletAccountKeys struct {
	number   uint32
	xpub     string
	invoices []string
}

func mustAccountKeys(t *testing.T, keys *dogecoin.Keychain, number uint32) *dogecoin.AccountKeys {
	t.Helper()
	account, err := keys.Account(number)
	if err != nil {
		t.Fatal(err)
	}
	return account
}

// gigaWalletSecrets lists every encoding of the seed and of every private key derived from it
// that the accounts use: the master, m/44' and m/44'/3' (the key the Keychain keeps), each
// account m/44'/3'/N' and its branches, the invoice keys /0/i (one beyond the last used) and
// the change keys /1/0../1/5. The derivation is the test's own (hdkeychain), checked against
// the Keychain's public keys and DerivePrivateKeyForSigning.
func gigaWalletSecrets(t *testing.T, seedHex string, keys *dogecoin.Keychain, accounts map[string]gigaWalletAccountKeys) []needle {
	t.Helper()
	network := keys.Network()
	seed, err := hex.DecodeString(seedHex)
	if err != nil {
		t.Fatal(err)
	}
	needles := []needle{
		{"the seed (raw)", seed},
		{"the seed (hex)", []byte(strings.ToLower(seedHex))},
		{"the seed (HEX)", []byte(strings.ToUpper(seedHex))},
	}
	master, err := hdkeychain.NewMaster(seed, &chaincfg.Params{HDPrivateKeyID: network.HDPrivateVersion})
	if err != nil {
		t.Fatal(err)
	}
	derive := func(key *hdkeychain.ExtendedKey, indexes ...uint32) *hdkeychain.ExtendedKey {
		t.Helper()
		for _, index := range indexes {
			if key, err = key.Derive(index); err != nil {
				t.Fatal(err)
			}
		}
		return key
	}
	// addKey adds the extended private key and its private key in every encoding.
	addKey := func(path string, key *hdkeychain.ExtendedKey) {
		t.Helper()
		private, err := key.ECPrivKey()
		if err != nil {
			t.Fatal(err)
		}
		raw := private.Serialize()
		needles = append(needles,
			needle{path + " extended private key", []byte(key.String())},
			needle{path + " private key (raw)", raw},
			needle{path + " private key (hex)", []byte(hex.EncodeToString(raw))},
			needle{path + " private key (HEX)", []byte(strings.ToUpper(hex.EncodeToString(raw)))},
			needle{path + " private key (WIF, compressed)", []byte(dogecoin.EncodeWIF(private, network))},
			needle{path + " private key (WIF, uncompressed)", []byte(base58.CheckEncode(raw, network.WIFVersion))},
		)
	}
	const hardened = hdkeychain.HardenedKeyStart
	addKey("m", master)
	addKey("m/44'", derive(master, hardened+44))
	coin := derive(master, hardened+44, hardened+dogecoin.CoinType)
	addKey("m/44'/3'", coin)
	// The DogeConnect signing key, outside the account space.
	addKey(dogecoin.ConnectSigningPath, derive(master, hardened+7477, hardened+dogecoin.CoinType, hardened))
	numbers := make([]uint32, 0, len(accounts))
	invoiceCounts := map[uint32]int{}
	for _, a := range accounts {
		numbers = append(numbers, a.number)
		invoiceCounts[a.number] = len(a.invoices)
	}
	slices.Sort(numbers)
	for _, number := range numbers {
		account := derive(coin, hardened+number)
		accountPath := fmt.Sprintf("m/44'/3'/%d'", number)
		public := mustAccountKeys(t, keys, number)
		publicKey, err := account.ECPubKey()
		if err != nil {
			t.Fatal(err)
		}
		if id, err := dogecoin.P2PKHAddress(publicKey.SerializeCompressed(), network); err != nil || id != public.ID() {
			t.Fatalf("%s: the test derives %s, the keychain %s (%v)", accountPath, id, public.ID(), err)
		}
		addKey(accountPath, account)
		for _, branch := range []dogecoin.Branch{dogecoin.External, dogecoin.Change} {
			branchKey := derive(account, uint32(branch))
			addKey(fmt.Sprintf("%s/%d", accountPath, branch), branchKey)
			last := 5 // change keys /1/0../1/5
			if branch == dogecoin.External {
				last = invoiceCounts[number] // the invoices' keys and the next one
			}
			for index := 0; index <= last; index++ {
				leaf := derive(branchKey, uint32(index))
				path := dogecoin.Path{Account: number, Branch: branch, Index: uint32(index)}
				signing, err := keys.DerivePrivateKeyForSigning(path)
				if err != nil {
					t.Fatal(err)
				}
				mine, err := leaf.ECPrivKey()
				if err != nil || !bytes.Equal(mine.Serialize(), signing.Serialize()) {
					t.Fatalf("%s: the test's private key is not the keychain's (%v)", path, err)
				}
				addKey(path.String(), leaf)
			}
		}
	}
	return needles
}

// needle is one byte string the leak search looks for, and what it is.
type needle struct {
	name  string
	value []byte
}

// needleSetPrefixBytes is how much of each needle the search indexes: every needle is longer.
const needleSetPrefixBytes = 8

// needleSet finds many needles in one pass over the data: it indexes them by their first bytes
// and compares the full needle only where those match.
type needleSet struct {
	byPrefix map[[needleSetPrefixBytes]byte][]needle
}

func newNeedleSet(needles []needle) *needleSet {
	s := &needleSet{byPrefix: map[[needleSetPrefixBytes]byte][]needle{}}
	for _, n := range needles {
		if len(n.value) < needleSetPrefixBytes {
			panic(fmt.Sprintf("needle %s is shorter than %d bytes", n.name, needleSetPrefixBytes))
		}
		prefix := [needleSetPrefixBytes]byte(n.value)
		s.byPrefix[prefix] = append(s.byPrefix[prefix], n)
	}
	return s
}

// find returns the names of the needles in data, each once, in the order first found.
func (s *needleSet) find(data []byte) []string {
	var found []string
	for i := 0; i+needleSetPrefixBytes <= len(data); i++ {
		candidates, ok := s.byPrefix[[needleSetPrefixBytes]byte(data[i:])]
		if !ok {
			continue
		}
		for _, n := range candidates {
			if bytes.HasPrefix(data[i:], n.value) && !slices.Contains(found, n.name) {
				found = append(found, n.name)
			}
		}
	}
	return found
}

func (s *needleSet) names() []string {
	var names []string
	for _, needles := range s.byPrefix {
		for _, n := range needles {
			names = append(names, n.name)
		}
	}
	return names
}

// quietPebbleTestLogger drops Pebble's chatter while the test reads a store.
type quietPebbleTestLogger struct{}

func (quietPebbleTestLogger) Infof(string, ...interface{})  {}
func (quietPebbleTestLogger) Errorf(string, ...interface{}) {}
func (quietPebbleTestLogger) Fatalf(format string, args ...interface{}) {
	panic(fmt.Sprintf("pebble: "+format, args...))
}
