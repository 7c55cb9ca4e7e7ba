package dogecoin_test

import (
	"bytes"
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg"

	"github.com/gigaledger/gigaledger/chainwatch/dogecoin"
)

// The Trust Wallet test mnemonic of TestTrustWalletVector, and the x-only public key its seed
// gives at m/7477'/3'/0' (computed by this package, and checked below against hdkeychain used
// directly). Pinned: wallets compare its hash with QR codes already printed, so a change of path
// or derivation must fail here.
const (
	trustWalletMnemonic   = "ripple scissors kick mammal hire column oak again sun offer wealth tomorrow wagon turn fatal"
	trustWalletPassphrase = "TREZOR"
	trustWalletConnectKey = "db0b0d1cb06676f3f2fb750a783b004737c2cc5baac62ca843c211d79d23f9b7"
)

func connectSigner(t testing.TB, keychain *dogecoin.Keychain) *dogecoin.ConnectSigner {
	t.Helper()
	signer, err := keychain.ConnectSigner()
	if err != nil {
		t.Fatal(err)
	}
	return signer
}

// independentConnectKey derives m/7477'/3'/0' from the raw BIP39 seed with hdkeychain directly,
// sharing no code with the package's derivation.
func independentConnectKey(t testing.TB, mnemonic, passphrase string) *btcec.PrivateKey {
	t.Helper()
	raw, err := pbkdf2.Key(sha512.New, mnemonic, []byte("mnemonic"+passphrase), 2048, 64)
	if err != nil {
		t.Fatal(err)
	}
	key, err := hdkeychain.NewMaster(raw, &chaincfg.MainNetParams)
	if err != nil {
		t.Fatal(err)
	}
	for _, index := range []uint32{7477, 3, 0} {
		if key, err = key.Derive(hdkeychain.HardenedKeyStart + index); err != nil {
			t.Fatal(err)
		}
	}
	privateKey, err := key.ECPrivKey()
	if err != nil {
		t.Fatal(err)
	}
	return privateKey
}

// TestConnectSignerKey: the key is the one at m/7477'/3'/0', pinned for a fixed seed, the same
// on every network and every NewKeychain, and none of the BIP44 keys.
func TestConnectSignerKey(t *testing.T) {
	seed := bip39Seed(t, trustWalletMnemonic, trustWalletPassphrase)
	mainnet := connectSigner(t, newKeychain(t, seed, dogecoin.Mainnet))
	got := hex.EncodeToString(mainnet.PublicKey())
	if got != trustWalletConnectKey {
		t.Errorf("public key at %s = %s, want %s", dogecoin.ConnectSigningPath, got, trustWalletConnectKey)
	}
	want := schnorr.SerializePubKey(independentConnectKey(t, trustWalletMnemonic, trustWalletPassphrase).PubKey())
	if !bytes.Equal(mainnet.PublicKey(), want) {
		t.Errorf("public key %s, hdkeychain derives %x at m/7477'/3'/0'", got, want)
	}
	for _, network := range []dogecoin.Network{dogecoin.Mainnet, dogecoin.Testnet, dogecoin.Regtest} {
		if other := connectSigner(t, newKeychain(t, seed, network)).PublicKey(); !bytes.Equal(other, mainnet.PublicKey()) {
			t.Errorf("%s key %x differs from mainnet's %s", network, other, got)
		}
	}
	if len(mainnet.PublicKey()) != dogecoin.ConnectPublicKeyBytes {
		t.Errorf("public key of %d bytes", len(mainnet.PublicKey()))
	}

	// PublicKey hands out a copy.
	key := mainnet.PublicKey()
	key[0] ^= 0xff
	if bytes.Equal(key, mainnet.PublicKey()) {
		t.Error("PublicKey returned the signer's own array")
	}

	// Not the key of an account or of its first addresses.
	keys := account(t, newKeychain(t, seed, dogecoin.Mainnet), 0)
	for _, branch := range []dogecoin.Branch{dogecoin.External, dogecoin.Change} {
		for index := range uint32(4) {
			if derived := address(t, keys, branch, index); bytes.Equal(derived.PublicKey[1:], mainnet.PublicKey()) {
				t.Errorf("signing key equals %s", derived.Path)
			}
		}
	}

	other := bip39Seed(t, trustWalletMnemonic, "another passphrase")
	if bytes.Equal(connectSigner(t, newKeychain(t, other, dogecoin.Mainnet)).PublicKey(), mainnet.PublicKey()) {
		t.Error("two seeds give the same signing key")
	}
}

// TestConnectSignerSigns: signatures verify with btcec's BIP-340 verifier against the x-only
// key, are deterministic, and bind the hash.
func TestConnectSignerSigns(t *testing.T) {
	signer := connectSigner(t, newKeychain(t, bip39Seed(t, trustWalletMnemonic, trustWalletPassphrase), dogecoin.Mainnet))
	publicKey, err := schnorr.ParsePubKey(signer.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	first := sha256.Sum256([]byte(`{"type":"payment"}`))
	hash := sha256.Sum256(first[:])
	raw, err := signer.Sign(hash)
	if err != nil {
		t.Fatal(err)
	}
	signature, err := schnorr.ParseSignature(raw[:])
	if err != nil {
		t.Fatal(err)
	}
	if !signature.Verify(hash[:], publicKey) {
		t.Fatal("signature does not verify")
	}
	again, err := signer.Sign(hash)
	if err != nil || again != raw {
		t.Errorf("second signature %x (err %v), want the same %x", again, err, raw)
	}
	otherHash := sha256.Sum256(hash[:])
	if signature.Verify(otherHash[:], publicKey) {
		t.Error("signature verifies for another hash")
	}
	otherSignature, err := signer.Sign(otherHash)
	if err != nil || otherSignature == raw {
		t.Errorf("another hash gives %x (err %v)", otherSignature, err)
	}
}

// TestConnectSignerNeverPrints: no fmt verb, slog or JSON shows the private key, whether the
// signer is printed itself or inside another value.
func TestConnectSignerNeverPrints(t *testing.T) {
	signer := connectSigner(t, newKeychain(t, bip39Seed(t, trustWalletMnemonic, trustWalletPassphrase), dogecoin.Mainnet))
	privateKey := independentConnectKey(t, trustWalletMnemonic, trustWalletPassphrase).Serialize()
	secrets := []string{
		hex.EncodeToString(privateKey),
		strings.ToUpper(hex.EncodeToString(privateKey)),
		strings.Trim(fmt.Sprint(privateKey), "[]"),
		string(privateKey),
	}
	leaks := func(text string) bool {
		for _, secret := range secrets {
			if strings.Contains(text, secret) {
				return true
			}
		}
		return false
	}
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d"} {
		if got := fmt.Sprintf(format, signer); got != "[redacted]" {
			t.Errorf("Sprintf(%q, signer) = %q", format, got)
		}
		for _, wrapped := range []any{struct{ Signer *dogecoin.ConnectSigner }{signer}, struct{ Signer dogecoin.ConnectSigner }{*signer}} {
			if got := fmt.Sprintf(format, wrapped); leaks(got) {
				t.Errorf("Sprintf(%q, %T) shows the private key", format, wrapped)
			}
		}
	}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("signer", "signer", signer)
	if !strings.Contains(logged.String(), `"signer":"[redacted]"`) || leaks(logged.String()) {
		t.Errorf("slog wrote %s", logged.String())
	}
	encoded, err := json.Marshal(struct{ Signer dogecoin.ConnectSigner }{*signer})
	if err != nil || leaks(string(encoded)) {
		t.Errorf("json.Marshal = %s, %v", encoded, err)
	}
}
