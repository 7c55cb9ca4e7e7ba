package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/cluster/testutil"
	"github.com/gigaledger/gigaledger/fsm"
)

// compatFixtureDir holds a data directory written by the main before the state machine's
// restructuring (commit ae529fa), and every Cloud Wallet GET that version answered over it;
// scripts/make-compat-datadir.sh wrote both, and its README.md says how. Never regenerate it
// to make this test pass: it is the old version's data, which the current one must serve.
const compatFixtureDir = "testdata/compat-ae529fa"

// compatShardCount is the shard count the fixture was written with (its cluster.json says so
// too, and wins over the flag; the flag only keeps the config honest).
const compatShardCount = 2

// compatAppliedIndexes is, per shard, the last log index the fixture's ledger stores had
// applied when the old version stopped: the last entry of each shard's log.
var compatAppliedIndexes = []uint64{78, 25}

// goldenGet is one entry of golden.json: a GET and the old version's answer to it.
type goldenGet struct {
	Path   string          `json:"path"`
	Status int             `json:"status"`
	Body   json.RawMessage `json:"body"`
}

// Issue 9: a data directory written by the previous main starts and serves the same state,
// and stays writable across a restart. Two ways in:
//   - as written: the old ledger stores are opened as they are;
//   - replayed: the ledger stores are removed, so the node rebuilds every shard's state by
//     applying the old Raft log from its first entry; old commands must still decode and apply
//     to the same state.
//
// Both must answer every GET exactly as the old version did. No field is exempt: timestamps,
// IDs and sequence numbers all come from the log, so none may differ.
func TestCompatDataDirAe529fa(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node")
	}
	golden := loadGolden(t)
	digests := map[string]string{}
	for _, variant := range []struct {
		name      string
		replayLog bool
	}{{"as-written", false}, {"replayed-from-log", true}} {
		t.Run(variant.name, func(t *testing.T) {
			dataDir := extractFixture(t, filepath.Join(compatFixtureDir, "datadir.tar.gz"))
			requireWholeLog(t, dataDir)
			if variant.replayLog {
				removeLedgerStores(t, dataDir)
			} else {
				requireStoresRead(t, dataDir)
			}
			node := startCompatNode(t, dataDir)
			for _, g := range golden {
				node.expect(g.Path, g.Status, g.Body)
			}
			digests[variant.name] = node.digest()

			node.write()
			// Everything the node now serves, old state and new, must survive a restart.
			after := node.getAll(golden)
			node.restart()
			for _, g := range after {
				node.expect(g.Path, g.Status, g.Body)
			}
		})
	}
	// The replayed ledger must be the stored one, key for key: nodes that kept their store and
	// nodes that caught up from the log must agree (GET /debug/digest compares them). A store
	// format change needs a migration on open that makes them agree again.
	if len(digests) == 2 && digests["as-written"] != digests["replayed-from-log"] {
		t.Fatalf("the ledger replayed from the old log differs from the stored one: digest %s, stored %s",
			digests["replayed-from-log"], digests["as-written"])
	}
}

func loadGolden(t *testing.T) []goldenGet {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(compatFixtureDir, "golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var golden []goldenGet
	if err := json.Unmarshal(raw, &golden); err != nil {
		t.Fatalf("golden.json: %v", err)
	}
	if len(golden) < 100 {
		t.Fatalf("golden.json holds %d GETs; the fixture has more than 100", len(golden))
	}
	for path, fix := range compatCorrections {
		found := false
		for i := range golden {
			if golden[i].Path != path {
				continue
			}
			found = true
			for _, r := range fix.replace {
				if !bytes.Contains(golden[i].Body, []byte(r[0])) {
					t.Fatalf("correction of %s (%s): %q is not in the old answer", path, fix.why, r[0])
				}
				golden[i].Body = bytes.Replace(golden[i].Body, []byte(r[0]), []byte(r[1]), 1)
			}
		}
		if !found {
			t.Fatalf("correction of %s: no such GET in golden.json", path)
		}
	}
	return golden
}

// compatCorrections are the old version's answers that were wrong, and what the current code
// answers instead: each a bug fixed on purpose, named here so that the fixture itself stays the
// old version's data. Every other answer must be the same, byte for byte.
var compatCorrections = map[string]struct {
	why     string
	replace [][2]string // old text, new text, in the old answer's body
}{
	"/projects/acme": {
		why: "its assets' supply is summed over every shard, as GET /projects/acme/assets has it (the old answer showed shard 0's part)",
		replace: [][2]string{
			{`"id":"pts","name":"Loyalty points","code":"PTS","fractions":1,"used":true,"supply":480,`, `"id":"pts","name":"Loyalty points","code":"PTS","fractions":1,"used":true,"supply":520,`},
			{`"id":"usd","name":"US dollar","code":"USD","fractions":100,"used":true,"supply":999001,`, `"id":"usd","name":"US dollar","code":"USD","fractions":100,"used":true,"supply":1008301,`},
		},
	},
}

// extractFixture unpacks the archive's data/ folder into a temporary directory and returns
// the path of that data directory.
func extractFixture(t *testing.T, archive string) string {
	t.Helper()
	file, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	unzipped, err := gzip.NewReader(file)
	if err != nil {
		t.Fatalf("%s: %v", archive, err)
	}
	root := t.TempDir()
	reader := tar.NewReader(unzipped)
	for {
		header, err := reader.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", archive, err)
		}
		if !filepath.IsLocal(header.Name) {
			t.Fatalf("%s: entry %q leaves the directory", archive, header.Name)
		}
		target := filepath.Join(root, header.Name)
		switch header.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(target, 0o750)
		case tar.TypeReg:
			err = writeFile(target, reader, header.FileInfo().Mode().Perm())
		default:
			err = fmt.Errorf("entry %q of type %c", header.Name, header.Typeflag)
		}
		if err != nil {
			t.Fatalf("%s: %v", archive, err)
		}
	}
	dataDir := filepath.Join(root, "data")
	if _, err := os.Stat(filepath.Join(dataDir, "cluster.json")); err != nil {
		t.Fatalf("%s holds no data/cluster.json: %v", archive, err)
	}
	return dataDir
}

func writeFile(path string, content io.Reader, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	file, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(file, content); err != nil {
		file.Close()
		return err
	}
	return file.Close()
}

// shardDirs lists the fixture's shard folders, each with raft/ and ledger/.
func shardDirs(t *testing.T, dataDir string) []string {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(dataDir, "shard-*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) != compatShardCount {
		t.Fatalf("the fixture has shard folders %v, want %d", dirs, compatShardCount)
	}
	return dirs
}

// requireWholeLog fails unless every shard's Raft log starts at its first entry: no snapshot
// was taken, so raft has compacted nothing and replaying the log rebuilds the whole state.
// (The old version snapshots every 8192 entries; the fixture has about a hundred.)
func requireWholeLog(t *testing.T, dataDir string) {
	t.Helper()
	for _, dir := range shardDirs(t, dataDir) {
		snapshots, err := os.ReadDir(filepath.Join(dir, "raft", "snapshots"))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		if len(snapshots) > 0 {
			t.Fatalf("%s holds a raft snapshot: the log may not start at its first entry", dir)
		}
	}
}

// requireStoresRead fails unless the current code opens every old ledger store at the index the
// old version left it at: the node then starts from the stores, and replays nothing it already
// applied (a store it could not find would be rebuilt from the log, and this variant would
// test nothing the other does not). Opening a store is the node's own first step on it.
func requireStoresRead(t *testing.T, dataDir string) {
	t.Helper()
	for k, dir := range shardDirs(t, dataDir) {
		machine, err := fsm.Open(dir, testutil.Logger(t), newFamilies().registry)
		if err != nil {
			t.Fatalf("open the old ledger store of %s: %v", dir, err)
		}
		applied := machine.AppliedIndex()
		if err := machine.Close(); err != nil {
			t.Fatal(err)
		}
		if applied != compatAppliedIndexes[k] {
			t.Fatalf("the old ledger store of %s opens at applied index %d, want %d", dir, applied, compatAppliedIndexes[k])
		}
	}
}

// removeLedgerStores deletes every shard's ledger store (fsm.Open's dir/ledger), keeping the
// Raft log: the node starts with empty ledgers at applied index 0.
func removeLedgerStores(t *testing.T, dataDir string) {
	t.Helper()
	for _, dir := range shardDirs(t, dataDir) {
		store := filepath.Join(dir, "ledger")
		if _, err := os.Stat(store); err != nil {
			t.Fatalf("no ledger store to remove: %v", err)
		}
		if err := os.RemoveAll(store); err != nil {
			t.Fatal(err)
		}
	}
}

// compatNode is one node running in this process on the fixture's data directory.
type compatNode struct {
	t       *testing.T
	dataDir string
	client  *http.Client
	base    string
	node    *node
}

// startCompatNode starts node n1 on dataDir. The ports are new ones, not those the fixture
// was written with (a fixed port could be taken): the raft configuration in the log names the
// old raft address, which a node alone in its group never dials.
func startCompatNode(t *testing.T, dataDir string) *compatNode {
	t.Helper()
	c := &compatNode{t: t, dataDir: dataDir, client: &http.Client{Timeout: 10 * time.Second}}
	c.start()
	t.Cleanup(c.stop)
	return c
}

func (c *compatNode) start() {
	c.t.Helper()
	cfg := &serveConfig{NodeID: "n1", DataDir: c.dataDir, AdminAddr: testutil.FreeAddr(c.t),
		PublicAddr: testutil.FreeAddr(c.t), RaftAddr: testutil.FreeAddr(c.t), LogLevel: "error",
		ShutdownMax: 5 * time.Second, Shards: compatShardCount, Replicas: 1, raftTiming: testRaftTiming}
	if err := cfg.validate(); err != nil {
		c.t.Fatal(err)
	}
	n, err := startNode(cfg, testutil.Logger(c.t))
	if err != nil {
		c.t.Fatalf("start on the fixture: %v", err)
	}
	c.node, c.base = n, "http://"+cfg.AdminAddr
	waitReady(c.t, c.base, nil)
	// Ready means every shard has a leader; a leader still applying the log it inherited may
	// answer 503 for a moment before its first read.
	var status int
	var body []byte
	if !testutil.Wait(clusterWaitMax, func() bool {
		status, body = c.get("/projects")
		return status != http.StatusServiceUnavailable
	}) {
		c.t.Fatalf("GET /projects still answers %d %s", status, body)
	}
}

func (c *compatNode) stop() {
	if c.node != nil {
		if err := c.node.Close(); err != nil {
			c.t.Errorf("stop: %v", err)
		}
		c.node = nil
	}
}

func (c *compatNode) restart() {
	c.t.Helper()
	c.stop()
	c.start()
}

// get sends one GET and returns the status and the body.
func (c *compatNode) get(path string) (int, []byte) {
	c.t.Helper()
	resp, err := c.client.Get(c.base + path)
	if err != nil {
		c.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, body
}

// expect checks that GET path answers status and a body equal, as JSON, to want.
func (c *compatNode) expect(path string, status int, want []byte) {
	c.t.Helper()
	gotStatus, got := c.get(path)
	if gotStatus != status || !jsonEqual(c.t, got, want) {
		c.t.Errorf("GET %s:\n got %d %s\nwant %d %s", path, gotStatus, got, status, want)
	}
}

// getAll answers every golden path, and the lists the new writes changed, as they are now.
func (c *compatNode) getAll(golden []goldenGet) []goldenGet {
	c.t.Helper()
	var now []goldenGet
	for _, g := range golden {
		status, body := c.get(g.Path)
		now = append(now, goldenGet{Path: g.Path, Status: status, Body: body})
	}
	for _, path := range []string{"/projects/acme/customers/alice/wallets", "/projects/acme/transactions?page=1&pageSize=1000"} {
		status, body := c.get(path)
		now = append(now, goldenGet{Path: path, Status: status, Body: body})
	}
	return now
}

// digest is the node's ledger digest: every shard's stored state, leaving out the history
// chain, which each run's leader starts after the old log in a batch of its own time (the
// old state is what both ways in must agree on).
func (c *compatNode) digest() string {
	c.t.Helper()
	h := sha256.New()
	for _, k := range c.node.cluster.HostedShards() {
		sum, err := c.node.cluster.StateMachine(k).(*fsm.Machine).DigestWithoutHistoryChain()
		if err != nil {
			c.t.Fatal(err)
		}
		fmt.Fprintf(h, "%d:%x\n", k, sum)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// write proves the node writable on the old state: a new wallet for an old customer, and a
// transaction that moves value into it from an old system wallet.
func (c *compatNode) write() {
	c.t.Helper()
	treasury := c.findTreasury()
	wallet := c.post("/projects/acme/wallets", `{"customerId":"alice","assetId":"usd","name":"After upgrade"}`, http.StatusCreated)
	walletID, _ := wallet["id"].(string)
	transaction := c.post("/projects/acme/transactions", `{"referenceId":"after-upgrade","operations":[`+
		`{"type":"transfer","from":"`+treasury+`","to":"`+walletID+`","amount":250}]}`, http.StatusCreated)
	if transaction["status"] != "completed" {
		c.t.Fatalf("the new transaction: %v", transaction)
	}
	status, body := c.get("/projects/acme/wallets/" + url.PathEscape(walletID))
	if status != http.StatusOK || !jsonEqual(c.t, fieldOf(c.t, body, "balance"), []byte("250")) {
		c.t.Fatalf("the new wallet after the transaction: %d %s", status, body)
	}
}

// findTreasury is the ID of acme's system wallet named Treasury.
func (c *compatNode) findTreasury() string {
	c.t.Helper()
	status, body := c.get("/projects/acme/system-wallets")
	var list struct {
		Items []struct{ ID, Name string }
	}
	if err := json.Unmarshal(body, &list); status != http.StatusOK || err != nil {
		c.t.Fatalf("system wallets: %d %s %v", status, body, err)
	}
	for _, w := range list.Items {
		if w.Name == "Treasury" {
			return w.ID
		}
	}
	c.t.Fatalf("no Treasury among the system wallets: %s", body)
	return ""
}

func (c *compatNode) post(path, body string, want int) map[string]any {
	c.t.Helper()
	resp, err := c.client.Post(c.base+path, "application/json", strings.NewReader(body))
	if err != nil {
		c.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != want {
		c.t.Fatalf("POST %s %s: %d %v (%v), want %d", path, body, resp.StatusCode, out, err, want)
	}
	return out
}

// jsonEqual compares two JSON documents as values: key order and spacing aside, they must be
// the same, numbers digit for digit (amounts go up to 2^128-1, beyond float64).
func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	return reflect.DeepEqual(decodeJSON(t, a), decodeJSON(t, b))
}

func decodeJSON(t *testing.T, raw []byte) any {
	t.Helper()
	decoder := json.NewDecoder(bytes.NewReader(raw))
	decoder.UseNumber()
	var value any
	if err := decoder.Decode(&value); err != nil {
		return fmt.Sprintf("not JSON (%v): %s", err, raw)
	}
	return value
}

// fieldOf is one top-level field of a JSON object, as JSON.
func fieldOf(t *testing.T, raw []byte, name string) []byte {
	t.Helper()
	var object map[string]json.RawMessage
	if err := json.Unmarshal(raw, &object); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	return object[name]
}
