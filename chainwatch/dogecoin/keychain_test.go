package dogecoin_test

import (
	"crypto/pbkdf2"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/btcsuite/btcd/btcutil"

	"github.com/gigaledger/gigaledger/chainwatch/dogecoin"
)

// bip39Seed is BIP39's mnemonic-to-seed function: PBKDF2-HMAC-SHA512 of the (ASCII, so already
// NFKD) sentence, salted with "mnemonic" and the passphrase, 2048 rounds, 64 bytes.
func bip39Seed(t testing.TB, mnemonic, passphrase string) dogecoin.Seed {
	t.Helper()
	raw, err := pbkdf2.Key(sha512.New, mnemonic, []byte("mnemonic"+passphrase), 2048, 64)
	if err != nil {
		t.Fatal(err)
	}
	seed, err := dogecoin.NewSeed(raw)
	if err != nil {
		t.Fatal(err)
	}
	return seed
}

func newKeychain(t testing.TB, seed dogecoin.Seed, network dogecoin.Network) *dogecoin.Keychain {
	t.Helper()
	keychain, err := dogecoin.NewKeychain(seed, network)
	if err != nil {
		t.Fatal(err)
	}
	return keychain
}

func account(t testing.TB, keychain *dogecoin.Keychain, n uint32) *dogecoin.AccountKeys {
	t.Helper()
	keys, err := keychain.Account(n)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func address(t testing.TB, keys *dogecoin.AccountKeys, branch dogecoin.Branch, index uint32) dogecoin.DerivedAddress {
	t.Helper()
	derived, err := keys.Address(branch, index)
	if err != nil {
		t.Fatal(err)
	}
	return derived
}

// TestTrustWalletVector derives from a seed through the public API and compares with Trust
// Wallet Core's Dogecoin tests (tests/HDWallet/HDWalletTests.cpp DeriveDoge and
// swift/Tests/Blockchains/DogecoinTests.swift): the mnemonic "ripple scissors … fatal" with
// passphrase "TREZOR" gives, at m/44'/3'/0', the dgpv/dgub below; the public key of
// m/44'/3'/0'/0/0 is 039fc134…; m/44'/3'/0'/0/8 is DLrjRgrVqbbpGrSQUtSYgsiWWMvRz5skQE.
func TestTrustWalletVector(t *testing.T) {
	seed := bip39Seed(t, "ripple scissors kick mammal hire column oak again sun offer wealth tomorrow wagon turn fatal", "TREZOR")
	keychain := newKeychain(t, seed, dogecoin.Mainnet)
	keys := account(t, keychain, 0)
	const wantXpub = "dgub8rjvUmFc6cqR6NRBEj2FBZCHUDUrykPyv24Vea6bCsPex5PzNFrRtr4KN37XgwuVzzC2MikJRW2Ddcp99Ehsqp2iaU4eerNCJVruKxz6Gci"
	if got := keys.ExtendedPublicKey(); got != wantXpub {
		t.Errorf("account 0 extended public key = %s, want %s", got, wantXpub)
	}
	first := address(t, keys, dogecoin.External, 0)
	if got := hex.EncodeToString(first.PublicKey); got != "039fc134623a37c8ee44881f088a599cc44ba8a95f91f860b99d9d3b11f487e4c0" {
		t.Errorf("m/44'/3'/0'/0/0 public key = %s", got)
	}
	if got := address(t, keys, dogecoin.External, 8); got.Address != "DLrjRgrVqbbpGrSQUtSYgsiWWMvRz5skQE" ||
		got.Path.String() != "m/44'/3'/0'/0/8" {
		t.Errorf("m/44'/3'/0'/0/8 = %+v, want DLrjRgrVqbbpGrSQUtSYgsiWWMvRz5skQE", got)
	}
	// The published extended private key of the account matches the signing key's path.
	privateKey, err := keychain.DerivePrivateKeyForSigning(dogecoin.Path{Account: 0, Branch: dogecoin.External, Index: 0})
	if err != nil {
		t.Fatal(err)
	}
	if got := privateKey.PubKey().SerializeCompressed(); hex.EncodeToString(got) != hex.EncodeToString(first.PublicKey) {
		t.Errorf("signing key of m/44'/3'/0'/0/0 has public key %x, want %x", got, first.PublicKey)
	}
}

// TestAccountKeysFromStoredXpub derives from an extended public key alone, as a node without
// the seed does, and compares with Ledger's xpub-scan tests (tests/derivation.test.ts and
// tests/search.test.ts, "derive Dogecoin mainnet addresses").
func TestAccountKeysFromStoredXpub(t *testing.T) {
	const xpub = "dgub8rDzyFqzw35B8zSqrW9sHDivXL2YmcGEVKyRMhPh8SoeUmkGozD5YzNyEkSH1T9zhvy9iQzns7igxrhQkg4jETWna4X1AUC4MT3YgHenTMB"
	keys, err := dogecoin.ParseAccountKeys(xpub, dogecoin.Mainnet)
	if err != nil {
		t.Fatal(err)
	}
	if keys.ExtendedPublicKey() != xpub {
		t.Errorf("ExtendedPublicKey() = %s, want %s back", keys.ExtendedPublicKey(), xpub)
	}
	tests := []struct {
		branch  dogecoin.Branch
		index   uint32
		address string
	}{
		{dogecoin.External, 0, "DNoFXKQVgbYU5pnpJEoiJjoWs1yH74KcvC"},
		{dogecoin.External, 1, "DNKtLJKxfYascpVyVHyQ73S65ssKQtH95A"},
		{dogecoin.Change, 0, "DLnAvdtK2DDGeakaQUf2BUvZVUJw7KRgTg"},
		{dogecoin.Change, 1, "DC6Pmh6eGENRC8T2cu5roTXPPQXBMk8b2o"},
		{dogecoin.Change, 640, "DSZsASgFRbGVhRnPE9bmeyd8s9izatDRXL"},
		{dogecoin.Change, 10000000, "D6Yf9DRNY8VSTtorybWJzJbDBugExnMTsg"},
	}
	for _, test := range tests {
		if got := address(t, keys, test.branch, test.index); got.Address != test.address {
			t.Errorf("%d/%d = %s, want %s", test.branch, test.index, got.Address, test.address)
		}
	}
	invoice, _ := keys.InvoiceAddress(1)
	change, _ := keys.ChangeAddress(1)
	if invoice.Address != tests[1].address || change.Address != tests[3].address {
		t.Errorf("InvoiceAddress(1), ChangeAddress(1) = %s, %s", invoice.Address, change.Address)
	}
}

// TestPublicPathMatchesPrivatePath checks, for several networks, accounts and indexes, that the
// addresses derived from the account's stored extended public key, those of the AccountKeys the
// keychain returns and those of the private keys for signing are the same, and that each
// address is the base58check (written in this test) of its public key's HASH160.
func TestPublicPathMatchesPrivatePath(t *testing.T) {
	seed, err := dogecoin.NewSeed(mustHex(t, "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, network := range dogecoin.Networks() {
		keychain := newKeychain(t, seed, network)
		for _, n := range []uint32{0, 1, 7, dogecoin.IndexMax} {
			keys := account(t, keychain, n)
			stored, err := dogecoin.ParseAccountKeys(keys.ExtendedPublicKey(), network)
			if err != nil {
				t.Fatalf("%s account %d: %v", network, n, err)
			}
			if stored.Account() != n || stored.ID() != keys.ID() || keys.Account() != n {
				t.Errorf("%s account %d: stored account %d id %s, derived id %s", network, n, stored.Account(), stored.ID(), keys.ID())
			}
			for _, branch := range []dogecoin.Branch{dogecoin.External, dogecoin.Change} {
				for _, index := range []uint32{0, 1, 2, 19, dogecoin.IndexMax} {
					path := dogecoin.Path{Account: n, Branch: branch, Index: index}
					derived := address(t, keys, branch, index)
					fromStored := address(t, stored, branch, index)
					privateKey, err := keychain.DerivePrivateKeyForSigning(path)
					if err != nil {
						t.Fatal(err)
					}
					fromPrivate, _ := dogecoin.P2PKHAddress(privateKey.PubKey().SerializeCompressed(), network)
					want := base58CheckEncode([]byte{network.P2PKHVersion}, btcutil.Hash160(derived.PublicKey))
					if derived.Path != path || fromStored.Address != want || derived.Address != want || fromPrivate != want {
						t.Errorf("%s %s: derived %+v, from stored xpub %s, from private key %s, want %s",
							network, path, derived, fromStored.Address, fromPrivate, want)
					}
					if other, dup := seen[derived.Address]; dup {
						t.Errorf("%s and %s share address %s", other, path, derived.Address)
					}
					seen[derived.Address] = network.Name + " " + path.String()
				}
			}
		}
	}
}

// TestAccountID checks that the account ID is the P2PKH address of the public key inside the
// account's extended public key (m/44'/3'/N', issue 10), decoded here from its serialization.
func TestAccountID(t *testing.T) {
	seed := bip39Seed(t, "ripple scissors kick mammal hire column oak again sun offer wealth tomorrow wagon turn fatal", "TREZOR")
	for _, network := range dogecoin.Networks() {
		keys := account(t, newKeychain(t, seed, network), 5)
		if keys.Path() != "m/44'/3'/5'" {
			t.Errorf("%s: Path() = %s", network, keys.Path())
		}
		serialized, ok := base58CheckDecode(keys.ExtendedPublicKey())
		if !ok || len(serialized) != 78 {
			t.Fatalf("%s: extended public key does not decode: %x", network, serialized)
		}
		// version(4) depth(1) parent fingerprint(4) child number(4) chain code(32) key(33)
		if [4]byte(serialized[:4]) != network.HDPublicVersion || serialized[4] != 3 ||
			hex.EncodeToString(serialized[9:13]) != fmt.Sprintf("%08x", uint32(1<<31+5)) {
			t.Errorf("%s: extended public key header %x", network, serialized[:13])
		}
		want := base58CheckEncode([]byte{network.P2PKHVersion}, btcutil.Hash160(serialized[45:78]))
		if keys.ID() != want {
			t.Errorf("%s: ID() = %s, want %s", network, keys.ID(), want)
		}
		// The ID is the account key's address, not one of its invoice addresses.
		if first := address(t, keys, dogecoin.External, 0); first.Address == keys.ID() {
			t.Errorf("%s: ID equals the first invoice address", network)
		}
	}
}

func TestParseAccountKeysRefuses(t *testing.T) {
	seed := bip39Seed(t, "ripple scissors kick mammal hire column oak again sun offer wealth tomorrow wagon turn fatal", "TREZOR")
	testnetXpub := account(t, newKeychain(t, seed, dogecoin.Testnet), 0).ExtendedPublicKey()
	const mainnetXpub = "dgub8rjvUmFc6cqR6NRBEj2FBZCHUDUrykPyv24Vea6bCsPex5PzNFrRtr4KN37XgwuVzzC2MikJRW2Ddcp99Ehsqp2iaU4eerNCJVruKxz6Gci"
	tests := []struct{ name, key string }{
		// Trust Wallet Core's m/44'/3'/0' extended private key: a private key must never be stored.
		{"account xprv", "dgpv57ru95KiYUB5oWm2CVQH4heh1f7E9dNGdRHHVThcQkLeQ2HHxVJfFYefnpKrWZ6L6EDKJHUVq4Yyd5kPZKnRePfkCz3EzkySTydXKbgjcxN"},
		{"testnet xpub", testnetXpub},
		// libdogecoin test/bip32_tests.c: a master (depth 0) and an m/0'/0 (depth 2) dgub.
		{"master xpub", "dgub8kXBZ7ymNWy2RFka3DmJD1hn1TJ4cMJZD32XgyMyW4N5cicrhZb9VZha9vghubutjw72kayz7p38Q56ZiFvbiVvME8rwCSF6gChmQt4RgLZ"},
		{"depth 2 xpub", "dgub8pY7G7y6SDHa5xDEqo4ZkkBWf5m2j1VcToTGNqoe6e17Wrq9Any8FjJxE2hnwdBYM19gxkaA7VWqE2Vw6hGHTeac2neLCHzLR8VojVsdqnA"},
		{"bad checksum", mainnetXpub[:len(mainnetXpub)-1] + "j"},
		{"garbage", "xyz"},
		{"empty", ""},
		{"too long", mainnetXpub + mainnetXpub},
	}
	for _, test := range tests {
		if _, err := dogecoin.ParseAccountKeys(test.key, dogecoin.Mainnet); !errors.Is(err, dogecoin.ErrInvalidAccountKey) {
			t.Errorf("%s: ParseAccountKeys error = %v, want ErrInvalidAccountKey", test.name, err)
		}
	}
	if _, err := dogecoin.ParseAccountKeys(testnetXpub, dogecoin.Testnet); err != nil {
		t.Errorf("testnet xpub on testnet: %v", err)
	}
}

func TestIndexLimits(t *testing.T) {
	seed, err := dogecoin.NewSeed(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	keychain := newKeychain(t, seed, dogecoin.Testnet)
	if _, err := keychain.Account(dogecoin.IndexMax + 1); !errors.Is(err, dogecoin.ErrIndexOutOfRange) {
		t.Errorf("Account(2^31) error = %v", err)
	}
	keys := account(t, keychain, 0)
	if _, err := keys.InvoiceAddress(dogecoin.IndexMax + 1); !errors.Is(err, dogecoin.ErrIndexOutOfRange) {
		t.Errorf("InvoiceAddress(2^31) error = %v", err)
	}
	if _, err := keys.Address(2, 0); !errors.Is(err, dogecoin.ErrIndexOutOfRange) {
		t.Errorf("Address(branch 2) error = %v", err)
	}
	for _, path := range []dogecoin.Path{{Account: dogecoin.IndexMax + 1}, {Index: dogecoin.IndexMax + 1}, {Branch: 2}} {
		if _, err := keychain.DerivePrivateKeyForSigning(path); !errors.Is(err, dogecoin.ErrIndexOutOfRange) {
			t.Errorf("DerivePrivateKeyForSigning(%s) error = %v", path, err)
		}
	}
	if _, err := dogecoin.NewKeychain(dogecoin.Seed{}, dogecoin.Mainnet); !errors.Is(err, dogecoin.ErrSeedInvalid) {
		t.Errorf("NewKeychain(zero Seed) error = %v", err)
	}
}

// TestConcurrentDerivation runs derivations of one Keychain and one AccountKeys from several
// goroutines (meaningful under -race) and checks they agree.
func TestConcurrentDerivation(t *testing.T) {
	seed, err := dogecoin.NewSeed(mustHex(t, "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"))
	if err != nil {
		t.Fatal(err)
	}
	keychain := newKeychain(t, seed, dogecoin.Mainnet)
	keys := account(t, keychain, 3)
	want := address(t, keys, dogecoin.External, 4).Address
	var wg sync.WaitGroup
	results := make([]string, 8)
	for worker := range results {
		wg.Go(func() {
			again, err := keychain.Account(3)
			if err != nil {
				return
			}
			derived, _ := again.InvoiceAddress(4)
			shared, _ := keys.InvoiceAddress(4)
			privateKey, err := keychain.DerivePrivateKeyForSigning(dogecoin.Path{Account: 3, Index: 4})
			if err != nil || derived.Address != shared.Address {
				return
			}
			fromPrivate, _ := dogecoin.P2PKHAddress(privateKey.PubKey().SerializeCompressed(), dogecoin.Mainnet)
			if fromPrivate == shared.Address {
				results[worker] = shared.Address
			}
		})
	}
	wg.Wait()
	for worker, got := range results {
		if got != want {
			t.Errorf("worker %d derived %q, want %q", worker, got, want)
		}
	}
}

func TestKeychainNeverPrints(t *testing.T) {
	seed, err := dogecoin.NewSeed(make([]byte, 64))
	if err != nil {
		t.Fatal(err)
	}
	keychain := newKeychain(t, seed, dogecoin.Mainnet)
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q", "%d"} {
		if got := fmt.Sprintf(format, keychain); got != "[redacted]" {
			t.Errorf("Sprintf(%q, keychain) = %q", format, got)
		}
	}
}

func BenchmarkInvoiceAddress(b *testing.B) {
	seed, err := dogecoin.NewSeed(make([]byte, 64))
	if err != nil {
		b.Fatal(err)
	}
	keys := account(b, newKeychain(b, seed, dogecoin.Mainnet), 0)
	for i := 0; b.Loop(); i++ {
		if _, err := keys.InvoiceAddress(uint32(i) & dogecoin.IndexMax); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAccount(b *testing.B) {
	seed, err := dogecoin.NewSeed(make([]byte, 64))
	if err != nil {
		b.Fatal(err)
	}
	keychain := newKeychain(b, seed, dogecoin.Mainnet)
	for i := 0; b.Loop(); i++ {
		if _, err := keychain.Account(uint32(i) & dogecoin.IndexMax); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzParseAccountKeys(f *testing.F) {
	f.Add("dgub8rDzyFqzw35B8zSqrW9sHDivXL2YmcGEVKyRMhPh8SoeUmkGozD5YzNyEkSH1T9zhvy9iQzns7igxrhQkg4jETWna4X1AUC4MT3YgHenTMB")
	f.Add("dgpv57ru95KiYUB5oWm2CVQH4heh1f7E9dNGdRHHVThcQkLeQ2HHxVJfFYefnpKrWZ6L6EDKJHUVq4Yyd5kPZKnRePfkCz3EzkySTydXKbgjcxN")
	f.Add("xyz")
	f.Fuzz(func(t *testing.T, text string) {
		keys, err := dogecoin.ParseAccountKeys(text, dogecoin.Mainnet)
		if err != nil {
			return
		}
		// Accepted: a public account key of the network that reads back as given.
		serialized, ok := base58CheckDecode(text)
		if !ok || len(serialized) != 78 || [4]byte(serialized[:4]) != dogecoin.Mainnet.HDPublicVersion ||
			serialized[4] != 3 || serialized[45] == 0 || keys.ExtendedPublicKey() != text {
			t.Fatalf("accepted %q", text)
		}
		if _, err := keys.InvoiceAddress(0); err != nil {
			t.Fatalf("%q: %v", text, err)
		}
	})
}
