package chainsim

// regtestGenesisBlockHex is Dogecoin's regtest genesis block (height 0, hash
// 3d2160a3b5dc4a9d62e7e66a295f70313ac808440ef7400d6c0772171ce973a5), the bytes of
// chainwatch/dogecoin/testdata/regtest_genesis_block.hex: an 80-byte header and the genesis
// coinbase, which Dogecoin Core never adds to the UTXO set.
const regtestGenesisBlockHex = "0100000000000000000000000000000000000000000000000000000000000000" +
	"00000000696ad20e2dd4365c7459b4a4a5af743d5e92c6da3229e6532cd605f6533f2a5bdae5494dffff7f2002" +
	"0000000101000000010000000000000000000000000000000000000000000000000000000000000000ffffffff" +
	"1004ffff001d0104084e696e746f6e646fffffffff010058850c020000004341040184710fa689ad5023690c80" +
	"f3a49c8f13f8d45b8c857fbcbc8bc4a8e4d3eb4b10f4d4604fa08dce601aaf0f470216fe1b51850b4acf21b179" +
	"c45070ac7b03a9ac00000000"

// RegtestGenesisHash is the hash of Dogecoin's regtest genesis block, by which GigaWallet
// identifies the regtest chain.
const RegtestGenesisHash = "3d2160a3b5dc4a9d62e7e66a295f70313ac808440ef7400d6c0772171ce973a5"
