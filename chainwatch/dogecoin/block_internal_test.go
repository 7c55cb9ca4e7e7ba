package dogecoin

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

// readHexFixture reads a hex file of testdata, skipping lines that start with '#'.
func readHexFixture(t *testing.T, name string) []byte {
	t.Helper()
	text, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var digits strings.Builder
	for line := range strings.Lines(string(text)) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			digits.WriteString(line)
		}
	}
	raw, err := hex.DecodeString(digits.String())
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return raw
}

func mustHash(t *testing.T, text string) chainhash.Hash {
	t.Helper()
	hash, err := chainhash.NewHashFromStr(text)
	if err != nil {
		t.Fatal(err)
	}
	return *hash
}

// TestRealMainnetAuxPoWHeader reads the header and AuxPoW proof of a real merge-mined mainnet
// block (5,462,519) and checks every field against the values its source asserts. The fixture
// has no transactions, so ParseBlock itself must refuse it.
func TestRealMainnetAuxPoWHeader(t *testing.T) {
	raw := readHexFixture(t, "mainnet_5462519_header_auxpow.hex")
	reader := bytes.NewReader(raw)
	block := &Block{}
	if err := readHeader(reader, &block.Header); err != nil {
		t.Fatal(err)
	}
	header := block.Header
	if got, want := header.BlockHash(), mustHash(t, "26e1a3ef7e6e34ece7bb9e09324dca34678af1bcfcdb7a810e53cb12249c0a6a"); got != want {
		t.Fatalf("block hash %s, want %s", got, want)
	}
	if header.Version != 0x00620104 || !HasAuxPoW(header.Version) {
		t.Fatalf("version %#x", header.Version)
	}
	if header.PrevBlock != mustHash(t, "e61d4f9f7a35f2b5dba0488bfd3089eaa2f6929c8e4c630d7d77ec3fdf0c845e") ||
		header.MerkleRoot != mustHash(t, "e28852d1f784b86c2ddd8ea27ea2f17b4ce34dc4dc077c9d699ef8d18b35c157") ||
		header.Timestamp.Unix() != 1731651546 || header.Bits != 0x1a0101d9 || header.Nonce != 0 {
		t.Fatalf("header %+v", header)
	}

	auxPoW, err := readAuxPoW(reader)
	if err != nil {
		t.Fatal(err)
	}
	if reader.Len() != 0 {
		t.Fatalf("%d bytes left after the AuxPoW proof", reader.Len())
	}
	coinbase := auxPoW.CoinbaseTransaction
	if coinbase.Version != 1 || coinbase.LockTime != 1109022509 || len(coinbase.TxIn) != 1 ||
		coinbase.TxIn[0].Sequence != 0 || len(coinbase.TxOut) != 2 ||
		coinbase.TxOut[0].Value != 630140582 || coinbase.TxOut[1].Value != 0 {
		t.Fatalf("parent coinbase %+v", coinbase)
	}
	wantScript, _ := hex.DecodeString("03f6992a2cfabe6d6dd81f3988043c35815286caf34112119f102a40f5254b38ccd8a26034e20a5b0208000000f09f909f092f4632506f6f6c2f6100000000000000000000000000000000000000000000000000000000000000000000000500db378401")
	if !bytes.Equal(coinbase.TxIn[0].SignatureScript, wantScript) {
		t.Fatalf("parent coinbase script %x", coinbase.TxIn[0].SignatureScript)
	}
	outputs := P2PKHOutputs(coinbase, Mainnet)
	if len(outputs) != 1 || outputs[0].Index != 0 || outputs[0].ValueKoinu != 630140582 {
		t.Fatalf("parent coinbase P2PKH outputs %+v", outputs)
	}
	if hash, _ := p2pkhScriptHash(coinbase.TxOut[0].PkScript); hex.EncodeToString(hash) != "f2910ecaf7bb8d18ed71f0904e0e7456f29ce182" {
		t.Fatalf("parent coinbase pays %x", hash)
	}
	if auxPoW.ParentHash != mustHash(t, "00000000000000e3649eb730e74609c5bb7fd23c40fef695ed996c1b481e1f60") {
		t.Fatalf("parent hash %s", auxPoW.ParentHash)
	}
	wantCoinbaseBranch := []string{
		"156f8ef6048bc3889d935b440ad808249b9cd50cbc46e3fdf22f3451422564b4",
		"f6118521374d725ece85d097a4bd10364da97a62f92b296417581d5f3a8d896f",
		"71c2b4f14a525c634ce3b50ae858330399bc12689f3c6eb12b223d0d41d5af77",
		"07c3a6a03fbe2e88e21cf9cf6c4626dc500e8414c0e090fc94795a5510bef436",
		"cabbffad4d24c07be8ec884838a838addd548ba162d6c4f5f9ceffd94c3b2a09",
		"b1e7152061ce6a8767f73ad4662945231a34d8adaf933c9ba25e15a1092df0d0",
		"267e81e608cd006491dfc13653b4822fff9bbcbbdee98f1b6f4d870ff82f57ef",
		"8e117224a7fd56ee7b28f20c760549c470def4d41d7a786a850b179a623f6512",
	}
	wantChainBranch := []string{
		"2f1938b8df064b7097a778442af52e1f8385c4f90f60ac77c26e717eb9dfe01f",
		"d1bb34ce429d1eb5e6fc9bc739dab9963e8bf34e757f216a33191eabf37ed14b",
		"dfe36359b087457f06c55e4a2ee17ceaed02a72c37e848f7ac33051ec200c1e8",
	}
	for name, check := range map[string]struct {
		branch MerkleBranch
		want   []string
	}{"coinbase": {auxPoW.CoinbaseBranch, wantCoinbaseBranch}, "chain": {auxPoW.ChainBranch, wantChainBranch}} {
		if len(check.branch.Hashes) != len(check.want) || check.branch.Index != 0 {
			t.Fatalf("%s branch: %d hashes, index %d", name, len(check.branch.Hashes), check.branch.Index)
		}
		for i, want := range check.want {
			if check.branch.Hashes[i] != mustHash(t, want) {
				t.Fatalf("%s branch hash %d: %s, want %s", name, i, check.branch.Hashes[i], want)
			}
		}
	}
	parent := auxPoW.ParentHeader
	if parent.Version != 0x20000014 ||
		parent.PrevBlock != mustHash(t, "eaa6326e879f0be636187ae8f79010e4ba5f193e767981340a46bd7df5474f91") ||
		parent.MerkleRoot != mustHash(t, "cb35bef3cab7f3b920407c8ece6afaf7efbb71ea97b8dc2179e7cc5756049340") ||
		parent.Timestamp.Unix() != 1731651601 || parent.Bits != 0x195c55db || parent.Nonce != 4289283417 {
		t.Fatalf("parent header %+v", parent)
	}

	// Without transactions this is not a block.
	if _, err := ParseBlock(raw); !errors.Is(err, ErrInvalidBlock) {
		t.Fatalf("header and AuxPoW alone: err %v, want ErrInvalidBlock", err)
	}
	if _, err := ParseBlock(append(raw, 0x00)); err == nil || !strings.Contains(err.Error(), "no transactions") {
		t.Fatalf("zero transactions: err %v", err)
	}
}

// TestRealHeaderHashes checks the block hash (double SHA-256 of the 80 bytes) of real headers:
// mainnet's genesis, block 371,337 (the first merge-mined block; its version carries the AuxPoW
// flag) and testnet block 158,391. Source: github.com/dogecoinfoundation/libdogecoin,
// test/block_tests.c, commit 08eb3c773b1535c3fc7434866fc5d3774612e139.
func TestRealHeaderHashes(t *testing.T) {
	for _, c := range []struct{ header, hash string }{
		{"010000000000000000000000000000000000000000000000000000000000000000000000696ad20e2dd4365c7459b4a4a5af743d5e92c6da3229e6532cd605f6533f2a5b24a6a152f0ff0f1e67860100", "1a91e3dace36e2be3bf030a65679fe821aa1d6ef92e7c9902eb318182c355691"},
		{"020162000d6f03470d329026cd1fc720c0609cd378ca8691a117bd1aa46f01fb09b1a8468a15bf6f0b0e83f2e5036684169eafb9406468d4f075c999fb5b2a78fbb827ee41fb11548441361b00000000", "60323982f9c5ff1b5a954eac9dc1269352835f47c2c5222691d80f0d50dcf053"},
		{"020162002770a8b89647bbb542f044754a07dc6e56545793f5dcecdf43826ae0cb7192a12466d048e51b0f8a3cbaaf8a624b9aa1212ce4c2a4feba0750f7ad14feb75f54c69de053837b091e00000000", "8afc65a42c47b5ed5862194fb846171ba4afb999a1b4cce149f56c328d8a90e4"},
	} {
		raw, err := hex.DecodeString(c.header)
		if err != nil {
			t.Fatal(err)
		}
		block := &Block{}
		if err := readHeader(bytes.NewReader(raw), &block.Header); err != nil {
			t.Fatal(err)
		}
		if got := block.Header.BlockHash(); got != mustHash(t, c.hash) {
			t.Fatalf("header %s…: hash %s, want %s", c.header[:16], got, c.hash)
		}
	}
}

// TestRealGenesisBlocks parses whole real blocks: regtest's genesis as checked in, and mainnet's
// genesis, which is the real mainnet header (libdogecoin's test vector above) followed by the
// same genesis coinbase. Their hashes are the ones GigaWallet identifies the chains by.
func TestRealGenesisBlocks(t *testing.T) {
	regtest := readHexFixture(t, "regtest_genesis_block.hex")
	mainnetHeader, err := hex.DecodeString("010000000000000000000000000000000000000000000000000000000000000000000000696ad20e2dd4365c7459b4a4a5af743d5e92c6da3229e6532cd605f6533f2a5b24a6a152f0ff0f1e67860100")
	if err != nil {
		t.Fatal(err)
	}
	mainnet := append(mainnetHeader, regtest[BlockHeaderBytes:]...)

	for _, c := range []struct {
		name string
		raw  []byte
		hash string
	}{
		{"regtest", regtest, "3d2160a3b5dc4a9d62e7e66a295f70313ac808440ef7400d6c0772171ce973a5"},
		{"mainnet", mainnet, "1a91e3dace36e2be3bf030a65679fe821aa1d6ef92e7c9902eb318182c355691"},
	} {
		block, err := ParseBlock(c.raw)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if block.Hash != mustHash(t, c.hash) {
			t.Fatalf("%s: hash %s, want %s", c.name, block.Hash, c.hash)
		}
		if block.AuxPoW != nil || len(block.Transactions) != 1 {
			t.Fatalf("%s: AuxPoW %v, %d transactions", c.name, block.AuxPoW, len(block.Transactions))
		}
		coinbase := block.Transactions[0]
		if coinbase.TxHash() != mustHash(t, "5b2a3f53f605d62c53e62932dac6925e3d74afa5a4b459745c36d42d0ed26a69") {
			t.Fatalf("%s: coinbase %s", c.name, coinbase.TxHash())
		}
		if !bytes.Contains(coinbase.TxIn[0].SignatureScript, []byte("Nintondo")) ||
			len(coinbase.TxOut) != 1 || coinbase.TxOut[0].Value != 88*100_000_000 {
			t.Fatalf("%s: coinbase %+v", c.name, coinbase)
		}
		// The genesis output pays a public key (P2PK), not a P2PKH address.
		if outputs := P2PKHOutputs(coinbase, Mainnet); len(outputs) != 0 {
			t.Fatalf("%s: P2PKH outputs %+v", c.name, outputs)
		}
	}
}
