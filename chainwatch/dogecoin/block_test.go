package dogecoin_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil/base58"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"github.com/gigaledger/gigaledger/chainwatch/dogecoin"
)

// Blocks here are built with btcd's wire types and serialized by hand in the order Dogecoin
// Core writes them (header, CAuxPow, transactions), independently of the parser.

// p2pkhScript is OP_DUP OP_HASH160 <hash> OP_EQUALVERIFY OP_CHECKSIG.
func p2pkhScript(hash []byte) []byte {
	return append(append([]byte{0x76, 0xa9, 0x14}, hash...), 0x88, 0xac)
}

func wrongPush(script []byte) []byte {
	script[2] = 0x15
	return script
}

func hash20(seed byte) []byte {
	return bytes.Repeat([]byte{seed}, 20)
}

func hashOf(seed byte) chainhash.Hash {
	return chainhash.DoubleHashH([]byte{seed})
}

func coinbaseTransaction(script []byte, outputs ...*wire.TxOut) *wire.MsgTx {
	transaction := wire.NewMsgTx(1)
	transaction.AddTxIn(&wire.TxIn{
		PreviousOutPoint: wire.OutPoint{Index: wire.MaxPrevOutIndex},
		SignatureScript:  script,
		Sequence:         wire.MaxTxInSequenceNum,
	})
	for _, output := range outputs {
		transaction.AddTxOut(output)
	}
	return transaction
}

func spendTransaction(previous chainhash.Hash, outputs ...*wire.TxOut) *wire.MsgTx {
	transaction := wire.NewMsgTx(1)
	transaction.AddTxIn(&wire.TxIn{
		PreviousOutPoint: wire.OutPoint{Hash: previous, Index: 1},
		SignatureScript:  []byte{0x01, 0x02},
		Sequence:         wire.MaxTxInSequenceNum - 1,
	})
	for _, output := range outputs {
		transaction.AddTxOut(output)
	}
	return transaction
}

// testMerkleRoot computes Bitcoin's merkle root recursively (the parser's is iterative).
func testMerkleRoot(hashes []chainhash.Hash) chainhash.Hash {
	if len(hashes) == 1 {
		return hashes[0]
	}
	if len(hashes)%2 == 1 {
		hashes = append(slices.Clone(hashes), hashes[len(hashes)-1])
	}
	var parents []chainhash.Hash
	for i := 0; i < len(hashes); i += 2 {
		parents = append(parents, chainhash.DoubleHashH(append(hashes[i][:], hashes[i+1][:]...)))
	}
	return testMerkleRoot(parents)
}

func transactionsRoot(transactions []*wire.MsgTx) chainhash.Hash {
	var hashes []chainhash.Hash
	for _, transaction := range transactions {
		hashes = append(hashes, transaction.TxHash())
	}
	return testMerkleRoot(hashes)
}

func writeBranch(t testing.TB, buffer *bytes.Buffer, branch dogecoin.MerkleBranch) {
	if err := wire.WriteVarInt(buffer, 0, uint64(len(branch.Hashes))); err != nil {
		t.Fatal(err)
	}
	for _, hash := range branch.Hashes {
		buffer.Write(hash[:])
	}
	_ = binary.Write(buffer, binary.LittleEndian, branch.Index)
}

// serializeBlock writes header, the AuxPoW proof when given, and the transactions.
func serializeBlock(t testing.TB, header wire.BlockHeader, auxPoW *dogecoin.AuxPoW, transactions []*wire.MsgTx) []byte {
	var buffer bytes.Buffer
	if err := header.Serialize(&buffer); err != nil {
		t.Fatal(err)
	}
	if auxPoW != nil {
		if err := auxPoW.CoinbaseTransaction.Serialize(&buffer); err != nil {
			t.Fatal(err)
		}
		buffer.Write(auxPoW.ParentHash[:])
		writeBranch(t, &buffer, auxPoW.CoinbaseBranch)
		writeBranch(t, &buffer, auxPoW.ChainBranch)
		if err := auxPoW.ParentHeader.Serialize(&buffer); err != nil {
			t.Fatal(err)
		}
	}
	if err := wire.WriteVarInt(&buffer, 0, uint64(len(transactions))); err != nil {
		t.Fatal(err)
	}
	for _, transaction := range transactions {
		if err := transaction.Serialize(&buffer); err != nil {
			t.Fatal(err)
		}
	}
	return buffer.Bytes()
}

// testBlock is a block's parts, serialized with serializeBlock.
type testBlock struct {
	header       wire.BlockHeader
	auxPoW       *dogecoin.AuxPoW
	transactions []*wire.MsgTx
}

func (b testBlock) raw(t testing.TB) []byte {
	return serializeBlock(t, b.header, b.auxPoW, b.transactions)
}

// newTestBlock builds a block whose header commits to transactions.
func newTestBlock(version int32, auxPoW *dogecoin.AuxPoW, transactions ...*wire.MsgTx) testBlock {
	header := wire.BlockHeader{
		Version:    version,
		PrevBlock:  hashOf(1),
		MerkleRoot: transactionsRoot(transactions),
		Timestamp:  time.Unix(1731651546, 0),
		Bits:       0x1a0101d9,
		Nonce:      0,
	}
	return testBlock{header: header, auxPoW: auxPoW, transactions: transactions}
}

// dogecoinAuxPoWVersion is a merge-mined Dogecoin block's version: chain ID 0x62, the AuxPoW flag,
// base version 4 (as mainnet's blocks today: 0x00620104).
const dogecoinAuxPoWVersion int32 = 0x62<<16 | 0x100 | 4

func testAuxPoW() *dogecoin.AuxPoW {
	parentCoinbase := coinbaseTransaction(
		append([]byte{0x03, 0xf6, 0x99, 0x2a, 0xfa, 0xbe, 'm', 'm'}, bytes.Repeat([]byte{0x42}, 40)...),
		&wire.TxOut{Value: 630140582, PkScript: p2pkhScript(hash20(0xf2))},
		&wire.TxOut{Value: 0, PkScript: []byte{0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed}},
	)
	parentCoinbase.LockTime = 1109022509
	return &dogecoin.AuxPoW{
		CoinbaseTransaction: parentCoinbase,
		ParentHash:          hashOf(9),
		CoinbaseBranch:      dogecoin.MerkleBranch{Hashes: []chainhash.Hash{hashOf(10), hashOf(11)}, Index: 0},
		ChainBranch:         dogecoin.MerkleBranch{Hashes: []chainhash.Hash{hashOf(20), hashOf(21), hashOf(22)}, Index: -7},
		ParentHeader: wire.BlockHeader{
			Version:    0x20000014,
			PrevBlock:  hashOf(30),
			MerkleRoot: hashOf(31),
			Timestamp:  time.Unix(1731651601, 0),
			Bits:       0x195c55db,
			Nonce:      4289283417,
		},
	}
}

func testTransactions() []*wire.MsgTx {
	coinbase := coinbaseTransaction([]byte{0x03, 0xf7, 0x99, 0x2a},
		&wire.TxOut{Value: 1_000_000_000_000, PkScript: p2pkhScript(hash20(0x11))})
	payment := spendTransaction(hashOf(40),
		&wire.TxOut{Value: 250_000_000, PkScript: p2pkhScript(hash20(0x22))},
		&wire.TxOut{Value: 100, PkScript: append([]byte{0xa9, 0x14}, append(hash20(0x33), 0x87)...)})
	other := spendTransaction(hashOf(41), &wire.TxOut{Value: 7, PkScript: p2pkhScript(hash20(0x44))})
	return []*wire.MsgTx{coinbase, payment, other}
}

func mustParse(t *testing.T, raw []byte) *dogecoin.Block {
	t.Helper()
	block, err := dogecoin.ParseBlock(raw)
	if err != nil {
		t.Fatalf("ParseBlock: %v", err)
	}
	return block
}

func serialized(t testing.TB, transaction *wire.MsgTx) []byte {
	var buffer bytes.Buffer
	if err := transaction.Serialize(&buffer); err != nil {
		t.Fatal(err)
	}
	return buffer.Bytes()
}

func TestParseBlockWithAuxPoW(t *testing.T) {
	built := newTestBlock(dogecoinAuxPoWVersion, testAuxPoW(), testTransactions()...)
	raw := built.raw(t)
	block := mustParse(t, raw)

	if want := chainhash.DoubleHashH(raw[:dogecoin.BlockHeaderBytes]); block.Hash != want {
		t.Fatalf("hash %s, want double SHA-256 of the header %s", block.Hash, want)
	}
	if block.Hash != built.header.BlockHash() {
		t.Fatalf("hash %s, want %s", block.Hash, built.header.BlockHash())
	}
	if block.Header != built.header {
		t.Fatalf("header %+v, want %+v", block.Header, built.header)
	}
	if block.AuxPoW == nil {
		t.Fatal("AuxPoW is nil for a version with the AuxPoW flag")
	}
	want := testAuxPoW()
	if !bytes.Equal(serialized(t, block.AuxPoW.CoinbaseTransaction), serialized(t, want.CoinbaseTransaction)) {
		t.Fatal("parent coinbase differs")
	}
	if block.AuxPoW.CoinbaseTransaction.LockTime != 1109022509 {
		t.Fatalf("parent coinbase lock time %d", block.AuxPoW.CoinbaseTransaction.LockTime)
	}
	if block.AuxPoW.ParentHash != want.ParentHash {
		t.Fatalf("parent hash %s, want %s", block.AuxPoW.ParentHash, want.ParentHash)
	}
	if !slices.Equal(block.AuxPoW.CoinbaseBranch.Hashes, want.CoinbaseBranch.Hashes) ||
		block.AuxPoW.CoinbaseBranch.Index != want.CoinbaseBranch.Index {
		t.Fatalf("coinbase branch %+v, want %+v", block.AuxPoW.CoinbaseBranch, want.CoinbaseBranch)
	}
	if !slices.Equal(block.AuxPoW.ChainBranch.Hashes, want.ChainBranch.Hashes) ||
		block.AuxPoW.ChainBranch.Index != -7 {
		t.Fatalf("chain branch %+v, want %+v", block.AuxPoW.ChainBranch, want.ChainBranch)
	}
	if block.AuxPoW.ParentHeader != want.ParentHeader {
		t.Fatalf("parent header %+v, want %+v", block.AuxPoW.ParentHeader, want.ParentHeader)
	}
	if len(block.Transactions) != 3 {
		t.Fatalf("%d transactions, want 3", len(block.Transactions))
	}
	for i, transaction := range block.Transactions {
		if transaction.TxHash() != built.transactions[i].TxHash() {
			t.Fatalf("transaction %d: %s, want %s", i, transaction.TxHash(), built.transactions[i].TxHash())
		}
	}
	if !blockchainIsCoinbase(block.Transactions[0]) {
		t.Fatal("first transaction is not a coinbase")
	}
	// Serializing what was parsed gives back the block's bytes.
	if again := serializeBlock(t, block.Header, block.AuxPoW, block.Transactions); !bytes.Equal(again, raw) {
		t.Fatal("re-serialized block differs from the input")
	}
}

func blockchainIsCoinbase(transaction *wire.MsgTx) bool {
	return len(transaction.TxIn) == 1 && transaction.TxIn[0].PreviousOutPoint.Index == wire.MaxPrevOutIndex &&
		transaction.TxIn[0].PreviousOutPoint.Hash == chainhash.Hash{}
}

func TestParseBlockWithoutAuxPoW(t *testing.T) {
	// Dogecoin's blocks before height 371,337 (and testnet/regtest blocks mined by the node
	// itself) are plain: an 80-byte header and the transactions.
	for _, version := range []int32{1, 2, 0x62<<16 | 4} {
		built := newTestBlock(version, nil, testTransactions()...)
		raw := built.raw(t)
		block := mustParse(t, raw)
		if block.AuxPoW != nil {
			t.Fatalf("version %#x: AuxPoW %+v, want nil", version, block.AuxPoW)
		}
		if block.Hash != built.header.BlockHash() || len(block.Transactions) != 3 {
			t.Fatalf("version %#x: hash %s, %d transactions", version, block.Hash, len(block.Transactions))
		}
	}
	// A block of the coinbase alone: its merkle root is the coinbase's ID.
	coinbase := testTransactions()[0]
	block := mustParse(t, newTestBlock(1, nil, coinbase).raw(t))
	if block.Header.MerkleRoot != coinbase.TxHash() || len(block.Transactions) != 1 {
		t.Fatalf("one-transaction block: root %s, %d transactions", block.Header.MerkleRoot, len(block.Transactions))
	}
}

func TestParseBlockWithWitnessTransactions(t *testing.T) {
	// litecoind's regtest blocks (and any BIP144 serialization) carry witness data: marker 0x00,
	// flag 0x01, and a witness stack per input after the outputs.
	transactions := testTransactions()
	transactions[1].TxIn[0].Witness = wire.TxWitness{bytes.Repeat([]byte{0x30}, 71), bytes.Repeat([]byte{0x02}, 33)}
	transactions[0].TxIn[0].Witness = wire.TxWitness{make([]byte, 32)}
	built := newTestBlock(2, nil, transactions...)
	raw := built.raw(t)
	if !bytes.Contains(raw, []byte{0x01, 0x00, 0x00, 0x00, 0x00, 0x01}) {
		t.Fatal("test block lacks a BIP144 marker and flag")
	}
	block := mustParse(t, raw)
	payment := block.Transactions[1]
	if !payment.HasWitness() || len(payment.TxIn[0].Witness) != 2 || len(payment.TxIn[0].Witness[0]) != 71 {
		t.Fatalf("witness not kept: %v", payment.TxIn[0].Witness)
	}
	if payment.TxHash() == payment.WitnessHash() {
		t.Fatal("txid equals wtxid for a witness transaction")
	}
	if payment.TxHash() != transactions[1].TxHash() {
		t.Fatalf("txid %s, want %s", payment.TxHash(), transactions[1].TxHash())
	}
	// The same with an AuxPoW header.
	built = newTestBlock(dogecoinAuxPoWVersion, testAuxPoW(), transactions...)
	if block := mustParse(t, built.raw(t)); block.AuxPoW == nil || !block.Transactions[1].HasWitness() {
		t.Fatal("AuxPoW block with witness transactions not parsed")
	}
}

func TestParseBlockRejects(t *testing.T) {
	valid := newTestBlock(dogecoinAuxPoWVersion, testAuxPoW(), testTransactions()...)
	validRaw := valid.raw(t)

	// Every strict prefix of a valid block is refused (bounded: the block is a few hundred bytes).
	for n := 0; n < len(validRaw); n++ {
		if _, err := dogecoin.ParseBlock(validRaw[:n]); !errors.Is(err, dogecoin.ErrInvalidBlock) {
			t.Fatalf("prefix of %d bytes: err %v, want ErrInvalidBlock", n, err)
		}
	}

	longBranch := testAuxPoW()
	for range dogecoin.MerkleBranchMaxHashes + 1 {
		longBranch.ChainBranch.Hashes = append(longBranch.ChainBranch.Hashes, hashOf(50))
	}
	negative := testTransactions()
	negative[2].TxOut[0].Value = -1
	tooMuch := testTransactions()
	tooMuch[2].TxOut[0].Value = 10_000_000_000*100_000_000 + 1
	withoutAuxPoW := newTestBlock(dogecoinAuxPoWVersion, nil, testTransactions()...)
	unannounced := newTestBlock(2, testAuxPoW(), testTransactions()...)
	badRoot := newTestBlock(1, nil, testTransactions()...)
	badRoot.header.MerkleRoot = hashOf(99)
	zeroTransactions := serializeBlock(t, newTestBlock(1, nil, testTransactions()...).header, nil, nil)
	hugeCount := append(slices.Clone(zeroTransactions[:dogecoin.BlockHeaderBytes]),
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	hugeBranchCount := slices.Clone(validRaw)
	branchAt := dogecoin.BlockHeaderBytes + len(serialized(t, testAuxPoW().CoinbaseTransaction)) + 32
	hugeBranchCount[branchAt] = 0xfe // a 4-byte count follows: 0x??????.. far above 32

	cases := map[string]struct {
		raw  []byte
		says string
	}{
		"empty":                             {nil, "header"},
		"trailing byte":                     {append(slices.Clone(validRaw), 0x00), "after the last transaction"},
		"chain branch of 33 hashes":         {newTestBlock(dogecoinAuxPoWVersion, longBranch, testTransactions()...).raw(t), "at most 32"},
		"coinbase branch count 0xfe":        {hugeBranchCount, "coinbase merkle branch"},
		"no transactions":                   {zeroTransactions, "no transactions"},
		"count beyond the bytes":            {hugeCount, "hold at most"},
		"negative output":                   {newTestBlock(1, nil, negative...).raw(t), "outside"},
		"output above MAX_MONEY":            {newTestBlock(1, nil, tooMuch...).raw(t), "outside"},
		"AuxPoW flag without AuxPoW":        {withoutAuxPoW.raw(t), "AuxPoW"},
		"AuxPoW without the flag":           {unannounced.raw(t), "transactions"},
		"merkle root not the transactions'": {badRoot.raw(t), "merkle root"},
		"above the size limit":              {make([]byte, dogecoin.BlockMaxBytes+1), "at most"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			block, err := dogecoin.ParseBlock(c.raw)
			if !errors.Is(err, dogecoin.ErrInvalidBlock) {
				t.Fatalf("block %v, err %v; want ErrInvalidBlock", block, err)
			}
			if !strings.Contains(err.Error(), c.says) {
				t.Fatalf("error %q does not say %q", err, c.says)
			}
		})
	}
}

func TestP2PKHOutputs(t *testing.T) {
	transaction := wire.NewMsgTx(1)
	transaction.AddTxIn(&wire.TxIn{PreviousOutPoint: wire.OutPoint{Hash: hashOf(1)}})
	scripts := [][]byte{
		p2pkhScript(hash20(0x01)),                                             // 0: P2PKH
		append([]byte{0xa9, 0x14}, append(hash20(0x02), 0x87)...),             // 1: P2SH
		{0x6a, 0x04, 'd', 'o', 'g', 'e'},                                      // 2: OP_RETURN
		append(p2pkhScript(hash20(0x03)), 0x00),                               // 3: P2PKH with a trailing byte
		append([]byte{0x21}, append(bytes.Repeat([]byte{0x02}, 33), 0xac)...), // 4: P2PK
		append([]byte{0x00, 0x14}, hash20(0x04)...),                           // 5: P2WPKH
		{},                                   // 6: empty
		p2pkhScript(hash20(0x05)),            // 7: P2PKH
		wrongPush(p2pkhScript(hash20(0x06))), // 8: a 21-byte push where the hash belongs
	}
	for i, script := range scripts {
		transaction.AddTxOut(&wire.TxOut{Value: int64(1000 + i), PkScript: script})
	}

	for _, network := range dogecoin.Networks() {
		outputs := dogecoin.P2PKHOutputs(transaction, network)
		want := []dogecoin.P2PKHOutput{
			{Index: 0, Address: base58.CheckEncode(hash20(0x01), network.P2PKHVersion), ValueKoinu: 1000},
			{Index: 7, Address: base58.CheckEncode(hash20(0x05), network.P2PKHVersion), ValueKoinu: 1007},
		}
		if !slices.Equal(outputs, want) {
			t.Fatalf("%s: outputs %+v, want %+v", network, outputs, want)
		}
		for _, output := range outputs {
			if err := dogecoin.ValidateP2PKH(output.Address, network); err != nil {
				t.Fatalf("%s: %s: %v", network, output.Address, err)
			}
		}
	}
	if outputs := dogecoin.P2PKHOutputs(wire.NewMsgTx(1), dogecoin.Mainnet); len(outputs) != 0 {
		t.Fatalf("no outputs: got %+v", outputs)
	}
}

func FuzzParseBlock(f *testing.F) {
	f.Add(newTestBlock(dogecoinAuxPoWVersion, testAuxPoW(), testTransactions()...).raw(f))
	f.Add(newTestBlock(1, nil, testTransactions()...).raw(f))
	witness := testTransactions()
	witness[1].TxIn[0].Witness = wire.TxWitness{{0x30, 0x01}, {0x02}}
	f.Add(newTestBlock(dogecoinAuxPoWVersion, testAuxPoW(), witness...).raw(f))
	f.Add(newTestBlock(1, nil, testTransactions()[0]).raw(f))
	f.Add([]byte{})
	// A real block: regtest's genesis (see block_internal_test.go).
	text, err := os.ReadFile("testdata/regtest_genesis_block.hex")
	if err != nil {
		f.Fatal(err)
	}
	var digits strings.Builder
	for line := range strings.Lines(string(text)) {
		if !strings.HasPrefix(line, "#") {
			digits.WriteString(strings.TrimSpace(line))
		}
	}
	genesis, err := hex.DecodeString(digits.String())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(genesis)
	f.Fuzz(func(t *testing.T, raw []byte) {
		block, err := dogecoin.ParseBlock(raw)
		if err != nil {
			if !errors.Is(err, dogecoin.ErrInvalidBlock) {
				t.Fatalf("error %v does not wrap ErrInvalidBlock", err)
			}
			return
		}
		// Accepted: the hash is the header's, the parts account for every byte, and what was
		// parsed serializes to a block that parses to the same thing.
		if block.Hash != chainhash.DoubleHashH(raw[:dogecoin.BlockHeaderBytes]) {
			t.Fatalf("hash %s is not the header's", block.Hash)
		}
		if len(block.Transactions) == 0 {
			t.Fatal("accepted a block without transactions")
		}
		if (block.AuxPoW != nil) != dogecoin.HasAuxPoW(block.Header.Version) {
			t.Fatalf("AuxPoW %v for version %#x", block.AuxPoW != nil, block.Header.Version)
		}
		again, err := dogecoin.ParseBlock(serializeBlock(t, block.Header, block.AuxPoW, block.Transactions))
		if err != nil {
			t.Fatalf("re-serialized block refused: %v", err)
		}
		if again.Hash != block.Hash || len(again.Transactions) != len(block.Transactions) {
			t.Fatal("re-serialized block differs")
		}
		for i := range block.Transactions {
			if again.Transactions[i].TxHash() != block.Transactions[i].TxHash() {
				t.Fatalf("transaction %d differs after re-serializing", i)
			}
			_ = dogecoin.P2PKHOutputs(block.Transactions[i], dogecoin.Mainnet)
		}
	})
}
