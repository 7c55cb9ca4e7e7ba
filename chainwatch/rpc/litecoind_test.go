package rpc

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/wire"

	"github.com/gigaledger/gigaledger/cluster/testutil"
)

// LitecoindRequiredEnv, set to 1 (as `make chain-test` does), turns a missing litecoind from
// a skipped test into a failed one.
const LitecoindRequiredEnv = "GIGALEDGER_TEST_LITECOIND"

const (
	// litecoindStartTimeout bounds how long a fresh regtest node may take to answer RPC.
	litecoindStartTimeout = 30 * time.Second
	// litecoindStopTimeout bounds the wait for a killed node to exit.
	litecoindStopTimeout = 10 * time.Second
	// litecoindPollInterval spaces the start-up probes.
	litecoindPollInterval = 50 * time.Millisecond
	litecoindUser         = "gigaledger"
	litecoindPassword     = "regtest-only-password"
)

// litecoindBinary finds Debian's litecoind (in PATH or /usr/bin), or skips the test — fails it
// when LitecoindRequiredEnv is set.
func litecoindBinary(t *testing.T) string {
	t.Helper()
	if path, err := exec.LookPath("litecoind"); err == nil {
		return path
	}
	if _, err := os.Stat("/usr/bin/litecoind"); err == nil {
		return "/usr/bin/litecoind"
	}
	if os.Getenv(LitecoindRequiredEnv) == "1" {
		t.Fatalf("litecoind not found in PATH or /usr/bin, and %s=1 requires it", LitecoindRequiredEnv)
	}
	t.Skip("litecoind not found in PATH or /usr/bin; `make chain-test` installs it and runs these tests")
	return ""
}

// lockedBuffer collects a process's output for the test log.
type lockedBuffer struct {
	mu     sync.Mutex
	buffer bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buffer.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buffer.String()
}

// startLitecoind starts a regtest litecoind on loopback with a fresh data directory, waits
// until it answers getblockchaininfo, and kills it by PID when the test ends. Its chain is
// empty but for genesis; mining stops at height 431 (MWEB), so keep each test's chain short.
func startLitecoind(t *testing.T) *Client {
	t.Helper()
	binary := litecoindBinary(t)
	dataDir := t.TempDir()
	rpcAddr := testutil.FreeAddr(t)
	_, rpcPort, _ := net.SplitHostPort(rpcAddr)
	_, p2pPort, _ := net.SplitHostPort(testutil.FreeAddr(t))
	output := &lockedBuffer{}
	command := exec.Command(binary,
		"-regtest", "-datadir="+dataDir, "-rpcport="+rpcPort, "-port="+p2pPort,
		"-rpcbind=127.0.0.1", "-rpcallowip=127.0.0.1",
		"-rpcuser="+litecoindUser, "-rpcpassword="+litecoindPassword,
		"-listen=0", "-server", "-daemon=0", "-fallbackfee=0.0001",
		"-dnsseed=0", "-discover=0", "-upnp=0", "-printtoconsole=0",
	)
	command.Stdout = output
	command.Stderr = output
	if err := command.Start(); err != nil {
		t.Fatalf("start litecoind: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		command.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		command.Process.Kill()
		select {
		case <-exited:
		case <-time.After(litecoindStopTimeout):
			t.Errorf("litecoind (pid %d) did not exit %s after SIGKILL", command.Process.Pid, litecoindStopTimeout)
		}
	})
	client, err := New(Config{URL: "http://" + rpcAddr, User: litecoindUser, Password: litecoindPassword, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(litecoindStartTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		info, err := client.GetBlockchainInfo(ctx)
		cancel()
		if err == nil {
			if info.Chain != "regtest" {
				t.Fatalf("litecoind runs chain %q, want regtest", info.Chain)
			}
			return client
		}
		select {
		case <-exited:
			t.Fatalf("litecoind exited before answering RPC: %s\n%s", output, debugLogTail(dataDir))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("litecoind did not answer getblockchaininfo within %s (last: %v): %s\n%s", litecoindStartTimeout, err, output, debugLogTail(dataDir))
		}
		time.Sleep(litecoindPollInterval)
	}
}

// debugLogTail is the end of the node's debug.log, for a failure message.
func debugLogTail(dataDir string) string {
	content, err := os.ReadFile(filepath.Join(dataDir, "regtest", "debug.log"))
	if err != nil {
		return "(no debug.log: " + err.Error() + ")"
	}
	const tailMaxBytes = 4000
	if len(content) > tailMaxBytes {
		content = content[len(content)-tailMaxBytes:]
	}
	return string(content)
}

// call is Call for the test's wallet and mining helpers, failing the test on an error.
func call[T any](t *testing.T, client *Client, method string, params ...any) T {
	t.Helper()
	var result T
	if err := client.Call(testutil.Context(t, time.Minute), method, params, &result); err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	return result
}

func TestLitecoindFollowsBroadcastsAndReorgs(t *testing.T) {
	client := startLitecoind(t)
	ctx := testutil.Context(t, 2*time.Minute)

	call[map[string]any](t, client, "createwallet", "test")
	address := call[string](t, client, "getnewaddress", "", "legacy")
	if !strings.HasPrefix(address, "m") && !strings.HasPrefix(address, "n") {
		t.Fatalf("legacy regtest address %q does not start with m or n (version byte 0x6f)", address)
	}
	mined := call[[]string](t, client, "generatetoaddress", 101, address)
	if len(mined) != 101 {
		t.Fatalf("generatetoaddress mined %d blocks, want 101", len(mined))
	}

	// The follower's view: count, hashes by height, headers and raw blocks agree.
	count, err := client.GetBlockCount(ctx)
	if err != nil || count != 101 {
		t.Fatalf("GetBlockCount = %d, %v; want 101", count, err)
	}
	best, err := client.GetBestBlockHash(ctx)
	if err != nil || best != mined[100] {
		t.Fatalf("GetBestBlockHash = %s, %v; want %s", best, err, mined[100])
	}
	info, err := client.GetBlockchainInfo(ctx)
	if err != nil || info.Blocks != 101 || info.BestBlockHash != best {
		t.Fatalf("GetBlockchainInfo = %+v, %v", info, err)
	}
	for _, height := range []int64{1, 50, 100, 101} {
		hash, err := client.GetBlockHash(ctx, height)
		if err != nil || hash != mined[height-1] {
			t.Fatalf("GetBlockHash(%d) = %s, %v; want %s", height, hash, err, mined[height-1])
		}
		header, err := client.GetBlockHeader(ctx, hash)
		if err != nil {
			t.Fatal(err)
		}
		if header.Height != height || header.Confirmations != 102-height {
			t.Fatalf("header at %d: height %d, confirmations %d", height, header.Height, header.Confirmations)
		}
		if height < 101 && header.NextBlockHash != mined[height] {
			t.Fatalf("header at %d: next %q, want %s", height, header.NextBlockHash, mined[height])
		}
		if height > 1 && header.PreviousBlockHash != mined[height-2] {
			t.Fatalf("header at %d: previous %q, want %s", height, header.PreviousBlockHash, mined[height-2])
		}
		headerHex, err := client.GetBlockHeaderHex(ctx, hash)
		if err != nil {
			t.Fatal(err)
		}
		var wireHeader wire.BlockHeader
		if err := wireHeader.Deserialize(hexReader(t, headerHex)); err != nil {
			t.Fatalf("header hex at %d: %v", height, err)
		}
		if wireHeader.BlockHash().String() != hash || wireHeader.Timestamp.Unix() != header.Time {
			t.Fatalf("header hex at %d hashes to %s (time %d), want %s (time %d)", height, wireHeader.BlockHash(), wireHeader.Timestamp.Unix(), hash, header.Time)
		}
		blockHex, err := client.GetBlockHex(ctx, hash)
		if err != nil {
			t.Fatal(err)
		}
		var block wire.MsgBlock
		if err := block.Deserialize(hexReader(t, blockHex)); err != nil {
			t.Fatalf("block hex at %d: %v", height, err)
		}
		if block.BlockHash().String() != hash || len(block.Transactions) == 0 {
			t.Fatalf("block hex at %d: hash %s with %d transactions, want %s", height, block.BlockHash(), len(block.Transactions), hash)
		}
	}

	// Broadcast: a transaction the wallet funds and signs goes out through SendRawTransaction
	// and comes back through the getrawtransaction and decoderawtransaction calls.
	recipient := call[string](t, client, "getnewaddress", "", "legacy")
	unfunded := call[string](t, client, "createrawtransaction", []any{}, map[string]any{recipient: "0.5"})
	funded := call[struct{ Hex string }](t, client, "fundrawtransaction", unfunded)
	signed := call[struct {
		Hex      string
		Complete bool
	}](t, client, "signrawtransactionwithwallet", funded.Hex)
	if !signed.Complete {
		t.Fatal("the wallet did not sign the whole transaction")
	}
	var msgTx wire.MsgTx
	if err := msgTx.Deserialize(hexReader(t, signed.Hex)); err != nil {
		t.Fatal(err)
	}
	decoded, err := client.DecodeRawTransaction(ctx, signed.Hex)
	if err != nil || decoded.TxID != msgTx.TxHash().String() {
		t.Fatalf("DecodeRawTransaction = %s, %v; want %s", decoded.TxID, err, msgTx.TxHash())
	}
	txid, err := client.SendRawTransaction(ctx, signed.Hex)
	if err != nil || txid != msgTx.TxHash().String() {
		t.Fatalf("SendRawTransaction = %s, %v; want %s", txid, err, msgTx.TxHash())
	}
	transaction, err := client.GetRawTransaction(ctx, txid)
	if err != nil {
		t.Fatal(err)
	}
	if !paysTo(transaction, recipient, 5000_0000) || transaction.Hex != signed.Hex {
		t.Fatalf("GetRawTransaction(%s) = %+v; want 0.5 to %s", txid, transaction, recipient)
	}
	if rawHex, err := client.GetRawTransactionHex(ctx, txid); err != nil || rawHex != signed.Hex {
		t.Fatalf("GetRawTransactionHex = %.20s…, %v", rawHex, err)
	}
	// A wallet payment too, as a node operator's sendtoaddress would make.
	walletTxID := call[string](t, client, "sendtoaddress", recipient, "1.25")
	if walletTransaction, err := client.GetRawTransaction(ctx, walletTxID); err != nil || !paysTo(walletTransaction, recipient, 1_2500_0000) {
		t.Fatalf("GetRawTransaction(%s) = %+v, %v; want 1.25 to %s", walletTxID, walletTransaction, err, recipient)
	}
	// Both wait in the mempool until a block takes them.
	mempool, err := client.GetRawMempool(ctx)
	if err != nil || !slices.Contains(mempool, txid) || !slices.Contains(mempool, walletTxID) {
		t.Fatalf("GetRawMempool = %v, %v; want %s and %s", mempool, err, txid, walletTxID)
	}
	tip := call[[]string](t, client, "generatetoaddress", 1, address)[0]
	if mempool, err := client.GetRawMempool(ctx); err != nil || len(mempool) != 0 {
		t.Fatalf("GetRawMempool after a block = %v, %v; want empty", mempool, err)
	}

	// Reorg: an invalidated tip's header reports -1 confirmations and the chain steps back;
	// reconsidering it restores it.
	call[any](t, client, "invalidateblock", tip)
	header, err := client.GetBlockHeader(ctx, tip)
	if err != nil || header.Confirmations != -1 {
		t.Fatalf("invalidated tip's header = %+v, %v; want confirmations -1", header, err)
	}
	if count, err := client.GetBlockCount(ctx); err != nil || count != 101 {
		t.Fatalf("GetBlockCount after invalidateblock = %d, %v; want 101", count, err)
	}
	if parent, err := client.GetBlockHeader(ctx, header.PreviousBlockHash); err != nil || parent.Confirmations != 1 || parent.NextBlockHash != "" {
		t.Fatalf("new tip's header = %+v, %v; want the tip with no next", parent, err)
	}
	call[any](t, client, "reconsiderblock", tip)
	if header, err := client.GetBlockHeader(ctx, tip); err != nil || header.Confirmations != 1 || header.Height != 102 {
		t.Fatalf("reconsidered tip's header = %+v, %v; want confirmations 1 at 102", header, err)
	}

	// litecoind has no estimatefee: the typed error lets the caller fall back.
	if _, err := client.EstimateFee(ctx, 6); !errors.Is(err, ErrMethodNotFound) {
		t.Fatalf("EstimateFee = %v, want ErrMethodNotFound", err)
	}
	// A node error keeps its code.
	var nodeError *Error
	if _, err := client.GetBlockHash(ctx, 1000); !errors.As(err, &nodeError) || nodeError.Code != -8 {
		t.Fatalf("GetBlockHash(1000) = %v, want node error -8 (out of range)", err)
	}
}

func TestLitecoindRefusesAWrongPassword(t *testing.T) {
	client := startLitecoind(t)
	wrong, err := New(Config{URL: client.url, User: litecoindUser, Password: "wrong-" + litecoindPassword})
	if err != nil {
		t.Fatal(err)
	}
	_, err = wrong.GetBlockCount(testutil.Context(t, time.Minute))
	var statusError *HTTPStatusError
	if !errors.As(err, &statusError) || statusError.StatusCode != 401 || strings.Contains(err.Error(), litecoindPassword) {
		t.Fatalf("err = %v, want HTTP 401 without the password", err)
	}
}

func hexReader(t *testing.T, text string) *bytes.Reader {
	t.Helper()
	raw, err := hex.DecodeString(text)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(raw)
}

// paysTo reports whether transaction has an output of exactly amount to address.
func paysTo(transaction Transaction, address string, amount Amount) bool {
	for _, output := range transaction.Vout {
		if output.Value != amount {
			continue
		}
		if output.ScriptPubKey.Address == address || (len(output.ScriptPubKey.Addresses) == 1 && output.ScriptPubKey.Addresses[0] == address) {
			return true
		}
	}
	return false
}
