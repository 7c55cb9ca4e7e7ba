package dogecoin

import (
	"errors"
	"fmt"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/base58"
)

// Address sizes.
const (
	// CompressedPublicKeyBytes is the size of a compressed secp256k1 public key.
	CompressedPublicKeyBytes = 33
	// p2pkhPayloadBytes is a P2PKH address's payload: the HASH160 of a public key.
	p2pkhPayloadBytes = 20
	// addressMaxChars bounds the text ValidateP2PKH decodes (base58 decoding is quadratic).
	// A P2PKH address is 25 bytes, at most 35 base58 characters.
	addressMaxChars = 35
)

// ErrInvalidAddress: text that is not a P2PKH address of the network.
var ErrInvalidAddress = errors.New("invalid Dogecoin address")

// ErrInvalidPublicKey: bytes that are not a compressed public key.
var ErrInvalidPublicKey = errors.New("invalid compressed public key")

// P2PKHAddress returns the pay-to-public-key-hash address of a compressed public key on
// network: base58check of the network's P2PKH version byte and HASH160 (RIPEMD-160 of SHA-256)
// of the key.
func P2PKHAddress(compressedPublicKey []byte, network Network) (string, error) {
	if len(compressedPublicKey) != CompressedPublicKeyBytes ||
		(compressedPublicKey[0] != 0x02 && compressedPublicKey[0] != 0x03) {
		return "", fmt.Errorf("%w: %d bytes", ErrInvalidPublicKey, len(compressedPublicKey))
	}
	return p2pkhAddress(compressedPublicKey, network), nil
}

// p2pkhAddress is P2PKHAddress for a key known to be compressed.
func p2pkhAddress(compressedPublicKey []byte, network Network) string {
	return base58.CheckEncode(btcutil.Hash160(compressedPublicKey), network.P2PKHVersion)
}

// ValidateP2PKH returns nil if address is a P2PKH address of network: base58 with a valid
// checksum, 25 bytes, and network's P2PKH version byte. The error, wrapping ErrInvalidAddress,
// says which test failed; it names a P2SH address or another network's address as such, so a
// client learns what it sent.
func ValidateP2PKH(address string, network Network) error {
	if len(address) == 0 || len(address) > addressMaxChars {
		return fmt.Errorf("%w: %d characters", ErrInvalidAddress, len(address))
	}
	payload, version, err := base58.CheckDecode(address)
	switch {
	case errors.Is(err, base58.ErrChecksum):
		return fmt.Errorf("%w: bad checksum", ErrInvalidAddress)
	case err != nil:
		return fmt.Errorf("%w: not base58check", ErrInvalidAddress)
	case len(payload) != p2pkhPayloadBytes:
		return fmt.Errorf("%w: %d bytes, want %d", ErrInvalidAddress, len(payload)+5, p2pkhPayloadBytes+5)
	case version == network.P2PKHVersion:
		return nil
	case version == network.P2SHVersion:
		return fmt.Errorf("%w: a P2SH address; want a P2PKH address", ErrInvalidAddress)
	}
	for _, other := range Networks() {
		if version == other.P2PKHVersion || version == other.P2SHVersion {
			return fmt.Errorf("%w: an address of %s, not %s", ErrInvalidAddress, other, network)
		}
	}
	return fmt.Errorf("%w: version byte 0x%02x is not %s's P2PKH version 0x%02x",
		ErrInvalidAddress, version, network, network.P2PKHVersion)
}

// EncodeWIF returns privateKey in wallet import format for a compressed public key on network:
// base58check of the network's WIF version byte, the 32-byte key and 0x01. It exists for tests
// that scan storage for leaked keys and for an operator's explicit export, never for logs.
func EncodeWIF(privateKey *btcec.PrivateKey, network Network) string {
	payload := make([]byte, 32, 33)
	defer clear(payload)
	privateKey.Key.PutBytes((*[32]byte)(payload))
	return base58.CheckEncode(append(payload, 0x01), network.WIFVersion)
}
