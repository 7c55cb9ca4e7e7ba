package dogecoin

import (
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
)

// The DogeConnect signing key: one secp256k1 key per cluster that signs the DogeConnect payment
// envelopes of every invoice (BIP-340 Schnorr). Wallets find its public key's hash in the QR
// code (the URI's h= parameter) and check each envelope's signature against it.
//
// It derives from the seed at ConnectSigningPath, all levels hardened, outside BIP-44's tree:
// m/44'/... is where every address and account key lives, and a path with another purpose can
// never be one of them. Being hardened, the key cannot be derived from any extended public key
// GigaLedger publishes (the accounts'), and leaks none of their keys. Purpose 7477 is not a purpose of any BIP-43 scheme we know of; coin type 3' says whose
// key it is, as in m/44'/3'; the last level numbers the key, so that a rotation, if it is ever
// needed, takes the next index rather than a new scheme.
//
// The path must never change: QR codes already printed carry the hash of the key it gives.
// Like the address keys (m/44'/3' on every network), the key is the same on every network for a
// given seed.
const (
	connectSigningPurpose uint32 = 7477
	connectSigningIndex   uint32 = 0
	// ConnectSigningPath is the BIP32 path of the DogeConnect signing key.
	ConnectSigningPath = "m/7477'/3'/0'"
	// ConnectPublicKeyBytes is the size of a BIP-340 x-only public key.
	ConnectPublicKeyBytes = 32
	// ConnectSignatureBytes is the size of a BIP-340 Schnorr signature.
	ConnectSignatureBytes = 64
)

// ErrConnectSignature: a signature the signer just made does not verify against its own public
// key. It means broken arithmetic or a fault while signing; the signature is not returned, since
// a faulty Schnorr signature can reveal the private key.
var ErrConnectSignature = errors.New("DogeConnect signature does not verify")

// ConnectSigner signs DogeConnect envelopes with the cluster's DogeConnect key. It hands out the
// public key and signatures, never the private key: it prints as "[redacted]" like Keychain, and
// holds the key in a closure for the reason Seed does. It is immutable and safe for concurrent
// use.
type ConnectSigner struct {
	privateKey func() *btcec.PrivateKey
	publicKey  *btcec.PublicKey
	// xOnly is publicKey as BIP-340 serialises it (its x coordinate).
	xOnly [ConnectPublicKeyBytes]byte
}

// deriveConnectKey returns the private key at ConnectSigningPath below master.
func deriveConnectKey(master *hdkeychain.ExtendedKey) (*btcec.PrivateKey, error) {
	key, err := deriveChildren(master,
		hdkeychain.HardenedKeyStart+connectSigningPurpose,
		hdkeychain.HardenedKeyStart+CoinType,
		hdkeychain.HardenedKeyStart+connectSigningIndex)
	if err != nil {
		return nil, fmt.Errorf("DogeConnect signing key %s: %w", ConnectSigningPath, err)
	}
	privateKey, err := key.ECPrivKey()
	if err != nil {
		return nil, fmt.Errorf("DogeConnect signing key %s: %w", ConnectSigningPath, err)
	}
	return privateKey, nil
}

// ConnectSigner returns the signer of the cluster's DogeConnect envelopes: the key at
// ConnectSigningPath.
func (k *Keychain) ConnectSigner() (*ConnectSigner, error) {
	privateKey := k.connectKey()
	if privateKey == nil {
		return nil, errors.New("DogeConnect signing key: keychain not made by NewKeychain")
	}
	publicKey := privateKey.PubKey()
	signer := &ConnectSigner{
		privateKey: func() *btcec.PrivateKey { return privateKey },
		publicKey:  publicKey,
	}
	copy(signer.xOnly[:], schnorr.SerializePubKey(publicKey))
	return signer, nil
}

// PublicKey returns the signing key's BIP-340 x-only public key (32 bytes), a fresh copy: the
// envelope's pubkey, and what the QR code's h= parameter hashes.
func (s *ConnectSigner) PublicKey() []byte {
	return append([]byte(nil), s.xOnly[:]...)
}

// Sign returns the BIP-340 Schnorr signature of hash, a 32-byte message digest (DogeConnect
// signs SHA-256(SHA-256(payload))). The nonce is derived deterministically from the key and
// hash (btcec's RFC 6979 variant), so the same hash always gives the same signature and no
// randomness source can weaken it. Every signature is verified before it is returned.
func (s *ConnectSigner) Sign(hash [32]byte) ([ConnectSignatureBytes]byte, error) {
	var out [ConnectSignatureBytes]byte
	// FastSign skips btcec's own check at the end of signing: the check below is the same, done
	// here so that it holds whatever btcec's defaults become.
	signature, err := schnorr.Sign(s.privateKey(), hash[:], schnorr.FastSign())
	if err != nil {
		// Say nothing of the key.
		return out, fmt.Errorf("DogeConnect sign: %w", err)
	}
	if !signature.Verify(hash[:], s.publicKey) {
		return out, ErrConnectSignature
	}
	copy(out[:], signature.Serialize())
	return out, nil
}

// String returns "[redacted]": a ConnectSigner holds a private key.
func (*ConnectSigner) String() string { return redacted }

// GoString returns "[redacted]".
func (*ConnectSigner) GoString() string { return redacted }

// Format writes "[redacted]" for every verb and flag.
func (*ConnectSigner) Format(state fmt.State, _ rune) { _, _ = io.WriteString(state, redacted) }

// LogValue makes log/slog write "[redacted]".
func (*ConnectSigner) LogValue() slog.Value { return slog.StringValue(redacted) }
