package dogecoin_test

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"

	"github.com/gigaledger/gigaledger/chainwatch/dogecoin"
)

func mustHex(t testing.TB, text string) []byte {
	t.Helper()
	b, err := hex.DecodeString(text)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestP2PKHAddressVectors(t *testing.T) {
	// Public keys and their mainnet addresses from libdogecoin's test/bip32_tests.c (the BIP32
	// test vector 1 chain, serialized for Dogecoin): the library GigaWallet derives with.
	tests := []struct{ publicKey, address string }{
		{"0339a36013301597daef41fbe593a02cc513d0b55527ec2df1050e2e8ff49c85c2", "D9uQrqyJ7Guz3aHVTTcxVhNnthobME3o4w"},
		{"035a784662a4a20a65bf6aab9ae98a6c068a81c52e4b032c0fb5400c706cfccc56", "DDY844NizrLNz8TLRu7t76XHeeK8MwFJ9Z"},
		{"0229aada88e20faf9f3034fe585ea890927d606b58d5260e76052dae2ca34212ac", "DFi6KKPPxybRccEte1vU81k84bLVUDiA1A"},
		{"02b833646327a7fc33aea8bcbe80e18593826ff3a8676acfd531768d634b9812f5", "DTtvgptdaV3hh2vshVx7oBYXZQFVmUMBgV"},
	}
	for _, test := range tests {
		publicKey := mustHex(t, test.publicKey)
		got, err := dogecoin.P2PKHAddress(publicKey, dogecoin.Mainnet)
		if err != nil || got != test.address {
			t.Errorf("P2PKHAddress(%s) = %q, %v; want %q", test.publicKey, got, err, test.address)
		}
		// The same from first principles, for every network.
		for _, network := range dogecoin.Networks() {
			got, _ := dogecoin.P2PKHAddress(publicKey, network)
			if want := base58CheckEncode([]byte{network.P2PKHVersion}, btcutil.Hash160(publicKey)); got != want {
				t.Errorf("%s: P2PKHAddress(%s) = %q, want %q", network, test.publicKey, got, want)
			}
		}
	}
	uncompressed := make([]byte, 65)
	uncompressed[0] = 0x04
	for _, bad := range [][]byte{nil, make([]byte, 33), uncompressed, mustHex(t, tests[0].publicKey)[:32]} {
		if _, err := dogecoin.P2PKHAddress(bad, dogecoin.Mainnet); !errors.Is(err, dogecoin.ErrInvalidPublicKey) {
			t.Errorf("P2PKHAddress(%x) error = %v, want ErrInvalidPublicKey", bad, err)
		}
	}
}

func TestValidateP2PKH(t *testing.T) {
	hash := btcutil.Hash160(mustHex(t, "0339a36013301597daef41fbe593a02cc513d0b55527ec2df1050e2e8ff49c85c2"))
	addressOf := func(version byte) string { return base58CheckEncode([]byte{version}, hash) }
	for _, network := range dogecoin.Networks() {
		if err := dogecoin.ValidateP2PKH(addressOf(network.P2PKHVersion), network); err != nil {
			t.Errorf("%s: own address refused: %v", network, err)
		}
	}
	// A real mainnet address (Trust Wallet Core's DogeTests).
	if err := dogecoin.ValidateP2PKH("DLrjRgrVqbbpGrSQUtSYgsiWWMvRz5skQE", dogecoin.Mainnet); err != nil {
		t.Errorf("DLrjRgrVqbbpGrSQUtSYgsiWWMvRz5skQE refused: %v", err)
	}

	valid := addressOf(dogecoin.Mainnet.P2PKHVersion)
	// Another last digit changes only the checksum bytes.
	lastDigit := byte('2')
	if valid[len(valid)-1] == lastDigit {
		lastDigit = '3'
	}
	badChecksum := valid[:len(valid)-1] + string(lastDigit)
	tests := []struct {
		name, address string
		network       dogecoin.Network
		reason        string
	}{
		{"testnet address on mainnet", addressOf(dogecoin.Testnet.P2PKHVersion), dogecoin.Mainnet, "testnet"},
		{"regtest address on mainnet", addressOf(dogecoin.Regtest.P2PKHVersion), dogecoin.Mainnet, "regtest"},
		{"mainnet address on testnet", valid, dogecoin.Testnet, "mainnet"},
		{"mainnet address on regtest", valid, dogecoin.Regtest, "mainnet"},
		{"regtest address on testnet", addressOf(dogecoin.Regtest.P2PKHVersion), dogecoin.Testnet, "regtest"},
		{"testnet address on regtest", addressOf(dogecoin.Testnet.P2PKHVersion), dogecoin.Regtest, "testnet"},
		{"mainnet P2SH", addressOf(dogecoin.Mainnet.P2SHVersion), dogecoin.Mainnet, "P2SH"},
		{"testnet P2SH", addressOf(dogecoin.Testnet.P2SHVersion), dogecoin.Testnet, "P2SH"},
		{"Bitcoin address", addressOf(0x00), dogecoin.Mainnet, "version byte 0x00"},
		{"bad checksum", badChecksum, dogecoin.Mainnet, "checksum"},
		{"21-byte payload", base58CheckEncode([]byte{0x1e}, append(hash, 0)), dogecoin.Mainnet, "26 bytes"},
		{"19-byte payload", base58CheckEncode([]byte{0x1e}, hash[:19]), dogecoin.Mainnet, "24 bytes"},
		{"GigaWallet test's payout address", "xyz", dogecoin.Mainnet, "base58"},
		{"empty", "", dogecoin.Mainnet, "0 characters"},
		{"not base58", "D0OIl" + valid[5:], dogecoin.Mainnet, "base58"},
		{"too long", valid + valid, dogecoin.Mainnet, "characters"},
		{"space", " " + valid, dogecoin.Mainnet, "base58"},
	}
	for _, test := range tests {
		err := dogecoin.ValidateP2PKH(test.address, test.network)
		if !errors.Is(err, dogecoin.ErrInvalidAddress) || !strings.Contains(err.Error(), test.reason) {
			t.Errorf("%s: ValidateP2PKH(%q, %s) = %v; want ErrInvalidAddress saying %q",
				test.name, test.address, test.network, err, test.reason)
		}
	}
}

func TestEncodeWIF(t *testing.T) {
	// A mainnet key pair from libdogecoin's test/address_tests.c (verifyPrivPubKeypair).
	const wif, address = "QWgNKvA5LPD1HpopRFghjz6jPipHRAUrLjqTt7paxYX8cTbu5eRs", "D7AM5jDQ7xRRK7bMCZ87e4BsFxHxCdDbXd"
	decoded, ok := base58CheckDecode(wif)
	if !ok || len(decoded) != 34 || decoded[0] != dogecoin.Mainnet.WIFVersion || decoded[33] != 0x01 {
		t.Fatalf("vector %s does not decode as a compressed mainnet WIF: %x", wif, decoded)
	}
	privateKey, publicKey := btcec.PrivKeyFromBytes(decoded[1:33])
	if got := dogecoin.EncodeWIF(privateKey, dogecoin.Mainnet); got != wif {
		t.Errorf("EncodeWIF = %q, want %q", got, wif)
	}
	if got, _ := dogecoin.P2PKHAddress(publicKey.SerializeCompressed(), dogecoin.Mainnet); got != address {
		t.Errorf("address of the WIF's key = %q, want %q", got, address)
	}
	for _, network := range dogecoin.Networks() {
		want := base58CheckEncode([]byte{network.WIFVersion}, append(decoded[1:33:33], 0x01))
		if got := dogecoin.EncodeWIF(privateKey, network); got != want {
			t.Errorf("%s: EncodeWIF = %q, want %q", network, got, want)
		}
	}
}

func FuzzValidateP2PKH(f *testing.F) {
	f.Add("DLrjRgrVqbbpGrSQUtSYgsiWWMvRz5skQE")
	f.Add("nZVmfmUtKPmskB9Ds4P9GUJy9eYFqPKHqH")
	f.Add("xyz")
	f.Add("")
	f.Fuzz(func(t *testing.T, address string) {
		for _, network := range dogecoin.Networks() {
			if dogecoin.ValidateP2PKH(address, network) != nil {
				continue
			}
			// Accepted: it must be exactly a P2PKH address of the network.
			payload, ok := base58CheckDecode(address)
			if !ok || len(payload) != 21 || payload[0] != network.P2PKHVersion ||
				base58CheckEncode(payload[:1], payload[1:]) != address {
				t.Fatalf("%s accepted %q", network, address)
			}
		}
	})
}
