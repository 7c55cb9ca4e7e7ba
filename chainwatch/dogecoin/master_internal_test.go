package dogecoin

import (
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcutil/hdkeychain"
)

// TestMasterKeySerialization checks the master key and a few children against libdogecoin's
// test/bip32_tests.c, which serializes BIP32's test vector 1 (seed 000102…0f, 16 bytes: below
// Seed's minimum, hence this test inside the package) and a 64-byte seed with Dogecoin's
// versions: dgpv/dgub on mainnet, tprv/tpub on testnet.
func TestMasterKeySerialization(t *testing.T) {
	tests := []struct {
		name    string
		seed    string
		network Network
		path    []uint32
		private string
		public  string
		address string // P2PKH of the key, "" where libdogecoin gives none
	}{
		{
			name: "vector 1 m", seed: "000102030405060708090a0b0c0d0e0f", network: Mainnet,
			private: "dgpv51eADS3spNJh9Gjth94XcPwAczvQaDJs9rqx11kvxKs6r3Ek8AgERHhjLs6mzXQFHRzQqGwqdeoDkZmr8jQMBfi43b7sT3sx3cCSk5fGeUR",
			public:  "dgub8kXBZ7ymNWy2S8Q3jNgVjFUm5ZJ3QLLaSTdAA89ukSv7Q6MSXwE14b7Nv6eDpE9JJXinTKc8LeLVu19uDPrm5uJuhpKNzV2kAgncwo6bNpP",
			address: "D9uQrqyJ7Guz3aHVTTcxVhNnthobME3o4w",
		},
		{
			name: "vector 1 m/0'", seed: "000102030405060708090a0b0c0d0e0f", network: Mainnet,
			path:    []uint32{hdkeychain.HardenedKeyStart},
			private: "dgpv53uaD9MLudRgHssbttwAVS3GwpUkxHnsqUGqy793vX4PDKXvYQDKYS4988T7QEnCzUt7CaGi21e6UKoZnKgXyjna7To1h1aqkcqJBDM65ur",
			public:  "dgub8nnbYqHETn61ajXkw8Z8cHasQNrPnQpb85448DY2ie7PmNecxAm6BjTnhNCvZY3qJk1MKZ9Z5HQasQ83ARb99nmduT7dunvxgcvBFVHuvrq",
			address: "DDY844NizrLNz8TLRu7t76XHeeK8MwFJ9Z",
		},
		{
			name: "vector 1 m/0'/3/2'/2/1000000000", seed: "000102030405060708090a0b0c0d0e0f", network: Mainnet,
			path:    []uint32{hdkeychain.HardenedKeyStart, 3, hdkeychain.HardenedKeyStart + 2, 2, 1000000000},
			private: "dgpv5BXJGu5DrBfYiR59ryD5vFsrHd2FUBgkCcYpk2VtXtbvbVdv7HduJhjciTh5w4E8X5FWNhMdiNm4NepsVpuwgwjC5tvoK3ZjEwq9ws2bdKm",
			public:  "dgub8vQKcb17QLKt1GjJuCq437RSkBPtJJiTVDL2u8tsL1ew9YkcX4Bfx19GHgANE597nwSs8ugp4qWRjbVa9fiHLL9ife3DkTSiz3x2QW22QpW",
			address: "DTtvgptdaV3hh2vshVx7oBYXZQFVmUMBgV",
		},
		{
			name: "64-byte seed m", network: Mainnet,
			seed:    "3779b041fab425e9c0fd55846b2a03e9a388fb12784067bd8ebdb464c2574a05bcc7a8eb54d7b2a2c8420ff60f630722ea5132d28605dbc996c8ca7d7a8311c0",
			private: "dgpv51eADS3spNJh8Q6Qzz9L6AABYtvRnEGqvSFKXrxzhwK54fWAHo3NrGHvagERrteHgWo6rifQ9GxswUAYR4Exh9zekTNz6FUhJFAjhae3ptn",
			public:  "dgub8kXBZ7ymNWy2RFka3DmJD1hn1TJ4cMJZD32XgyMyW4N5cicrhZb9VZha9vghubutjw72kayz7p38Q56ZiFvbiVvME8rwCSF6gChmQt4RgLZ",
		},
		{
			name: "64-byte seed m/0'/0", network: Mainnet,
			seed:    "3779b041fab425e9c0fd55846b2a03e9a388fb12784067bd8ebdb464c2574a05bcc7a8eb54d7b2a2c8420ff60f630722ea5132d28605dbc996c8ca7d7a8311c0",
			path:    []uint32{hdkeychain.HardenedKeyStart, 0},
			private: "dgpv55f5vS3Ct4dEo6Z5oZSbdtdvCXPPttTuBCg4DjQfJWx6xoiSm2RMcRuJendsxU5XZRcBCUTPLwKnydME4rWxLXxECUGrnVaHW2wHP53CfBG",
			public:  "dgub8pY7G7y6SDHa5xDEqo4ZkkBWf5m2j1VcToTGNqoe6e17Wrq9Any8FjJxE2hnwdBYM19gxkaA7VWqE2Vw6hGHTeac2neLCHzLR8VojVsdqnA",
		},
		{
			name: "64-byte seed testnet m", network: Testnet,
			seed:    "3779b041fab425e9c0fd55846b2a03e9a388fb12784067bd8ebdb464c2574a05bcc7a8eb54d7b2a2c8420ff60f630722ea5132d28605dbc996c8ca7d7a8311c0",
			private: "tprv8ZgxMBicQKsPdM3GJUGqaS67XFjHNqUC8upXBhNb7UXqyKdLCj6HnTfqrjoEo6x89neRY2DzmKXhjWbAkxYvnb1U7vf4cF4qDicyb7Y2mNa",
			public:  "tpubD6NzVbkrYhZ4Wp54C7wRyqkE6HFDYAf6iDRJUDQtXkLEoot6q7usxxHi2tGW48TfY783vGoZ3ufE5XH9YP86c7X6G3CjMh8Dua1ZTTWyjSa",
		},
		{
			name: "64-byte seed testnet m/44'/1'/0'/0", network: Testnet,
			seed:    "3779b041fab425e9c0fd55846b2a03e9a388fb12784067bd8ebdb464c2574a05bcc7a8eb54d7b2a2c8420ff60f630722ea5132d28605dbc996c8ca7d7a8311c0",
			path:    []uint32{hdkeychain.HardenedKeyStart + 44, hdkeychain.HardenedKeyStart + 1, hdkeychain.HardenedKeyStart, 0},
			private: "tprv8hJrzKEmbFfBx44tsRe1wHh25i5QGztsawJGmxeqryPwdXdKrgxMgJUWn35dY2nrYmomRWWL7Y9wJrA6EvKJ27BfQTX1tWzZVxAXrR2pLLn",
			public:  "tpubDDzu8jH1jdLrqX6gm5JcLhM8ejbLSL5nAEu44Uh9HFCLU1t6V5mwro6NxAXCfR2jUJ9vkYkUazKXQSU7WAaA9cbEkxdWmbLxHQnWqLyQ6uR",
		},
	}
	for _, test := range tests {
		seed, err := hex.DecodeString(test.seed)
		if err != nil {
			t.Fatal(err)
		}
		master, err := newMasterKey(seed, test.network)
		if err != nil {
			t.Fatalf("%s: %v", test.name, err)
		}
		key, err := deriveChildren(master, test.path...)
		if err != nil {
			t.Fatalf("%s: %v", test.name, err)
		}
		public, err := publicExtendedKey(key, test.network)
		if err != nil {
			t.Fatalf("%s: %v", test.name, err)
		}
		if got := key.String(); got != test.private {
			t.Errorf("%s: private = %s, want %s", test.name, got, test.private)
		}
		if got := public.String(); got != test.public {
			t.Errorf("%s: public = %s, want %s", test.name, got, test.public)
		}
		publicKey, err := public.ECPubKey()
		if err != nil {
			t.Fatal(err)
		}
		if got := p2pkhAddress(publicKey.SerializeCompressed(), test.network); test.address != "" && got != test.address {
			t.Errorf("%s: address = %s, want %s", test.name, got, test.address)
		}
	}
}

// TestKeychainNeverPrintsKeys prints a Keychain in the ways a careless log line might and looks
// for its private key, raw, hex and serialized.
func TestKeychainNeverPrintsKeys(t *testing.T) {
	seed, err := NewSeed(make([]byte, 64))
	if err != nil {
		t.Fatal(err)
	}
	keychain, err := NewKeychain(seed, Mainnet)
	if err != nil {
		t.Fatal(err)
	}
	privateKey, err := keychain.coinKey().ECPrivKey()
	if err != nil {
		t.Fatal(err)
	}
	raw := privateKey.Serialize()
	secrets := []string{keychain.coinKey().String(), hex.EncodeToString(raw), string(raw), fmt.Sprint(raw[:4])[1:10]}
	type exported struct{ Keychain *Keychain }
	type unexported struct{ keychain *Keychain }
	type value struct{ keychain Keychain }
	for name, v := range map[string]any{
		"*Keychain":        keychain,
		"Keychain":         *keychain,
		"exported field":   exported{keychain},
		"unexported field": unexported{keychain},
		"value field":      value{*keychain},
	} {
		for _, format := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q", "%d"} {
			text := fmt.Sprintf(format, v)
			for _, secret := range secrets {
				if strings.Contains(text, secret) {
					t.Errorf("Sprintf(%q, %s) reveals the private key: %q", format, name, text)
				}
			}
		}
	}
}
