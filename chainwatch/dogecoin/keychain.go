package dogecoin

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg"
)

// purposeBIP44 is the first level of every path: BIP44's purpose.
const purposeBIP44 uint32 = 44

// IndexMax is the largest account number and the largest address index: BIP32 child numbers
// from 2^31 up are hardened, so an account N is child N + 2^31 and an address index must stay
// below 2^31 to be derivable from the account's extended public key.
const IndexMax = hdkeychain.HardenedKeyStart - 1

// extendedKeyMaxChars bounds the extended-key text ParseAccountKeys decodes (a serialized key
// is 111 base58 characters).
const extendedKeyMaxChars = 128

// ErrIndexOutOfRange: an account number or address index above IndexMax.
var ErrIndexOutOfRange = errors.New("BIP32 index out of range")

// ErrInvalidAccountKey: text that is not an account-level extended public key of the network.
var ErrInvalidAccountKey = errors.New("invalid account extended public key")

// Branch is the fourth level of a BIP44 path. Its values are BIP44's numbers, not an enum
// counted from one: they are part of every path.
type Branch uint32

const (
	// External addresses receive payments: GigaWallet's invoice addresses.
	External Branch = 0
	// Change addresses receive the change of our own payouts.
	Change Branch = 1
)

// Path names one address key: m/44'/3'/Account'/Branch/Index.
type Path struct {
	Account uint32
	Branch  Branch
	Index   uint32
}

// String returns the path in BIP32 notation, hardened levels marked with an apostrophe.
func (p Path) String() string {
	return fmt.Sprintf("m/%d'/%d'/%d'/%d/%d", purposeBIP44, CoinType, p.Account, p.Branch, p.Index)
}

func (p Path) validate() error {
	if p.Account > IndexMax || p.Index > IndexMax {
		return fmt.Errorf("%w: %s (account and index must be at most %d)", ErrIndexOutOfRange, p, IndexMax)
	}
	if p.Branch != External && p.Branch != Change {
		return fmt.Errorf("%w: %s (branch must be 0 or 1)", ErrIndexOutOfRange, p)
	}
	return nil
}

// DerivedAddress is the public result of a derivation: safe to store, replicate and show.
type DerivedAddress struct {
	Path Path
	// PublicKey is the compressed secp256k1 public key (33 bytes).
	PublicKey []byte
	// Address is the P2PKH address of PublicKey on the keys' network.
	Address string
}

// Keychain derives the cluster's keys from its seed on one network. It keeps the private
// extended key of m/44'/3' (every address and account path starts there) and the DogeConnect
// signing key (ConnectSigningPath), not the seed nor the master key. It prints as "[redacted]"
// like Seed, and holds its keys in closures for the reason Seed does. It is safe for concurrent
// use.
type Keychain struct {
	network Network
	// coinKey returns the private extended key of m/44'/3', only read after NewKeychain.
	coinKey func() *hdkeychain.ExtendedKey
	// connectKey returns the private key at ConnectSigningPath, only read after NewKeychain.
	connectKey func() *btcec.PrivateKey
}

// NewKeychain derives the keychain of seed on network.
func NewKeychain(seed Seed, network Network) (*Keychain, error) {
	if seed.bytes() == nil {
		return nil, fmt.Errorf("new keychain: %w: empty seed", ErrSeedInvalid)
	}
	master, err := newMasterKey(seed.bytes(), network)
	if err != nil {
		return nil, fmt.Errorf("new keychain: %w", err)
	}
	coinKey, err := deriveChildren(master, hdkeychain.HardenedKeyStart+purposeBIP44, hdkeychain.HardenedKeyStart+CoinType)
	if err != nil {
		return nil, fmt.Errorf("new keychain: %w", err)
	}
	// hdkeychain computes and memoizes a private key's public key on first use; do it now, so
	// that concurrent derivations afterwards only read coinKey.
	if _, err := coinKey.ECPubKey(); err != nil {
		return nil, fmt.Errorf("new keychain: %w", err)
	}
	// The master key is dropped after NewKeychain: the DogeConnect key, outside m/44'/3', is
	// derived now.
	connectKey, err := deriveConnectKey(master)
	if err != nil {
		return nil, fmt.Errorf("new keychain: %w", err)
	}
	return &Keychain{
		network:    network,
		coinKey:    func() *hdkeychain.ExtendedKey { return coinKey },
		connectKey: func() *btcec.PrivateKey { return connectKey },
	}, nil
}

// newMasterKey returns the BIP32 master key of seed, serialized with network's versions.
func newMasterKey(seed []byte, network Network) (*hdkeychain.ExtendedKey, error) {
	// NewMaster reads only HDPrivateKeyID of the params; a local value keeps Dogecoin's versions
	// out of chaincfg's process-wide registry.
	return hdkeychain.NewMaster(seed, &chaincfg.Params{HDPrivateKeyID: network.HDPrivateVersion})
}

// deriveChildren derives the children of key at each index in turn (standard BIP32, not the
// pre-2021 btcutil derivation that dropped leading zero bytes: see hdkeychain.Derive).
func deriveChildren(key *hdkeychain.ExtendedKey, indexes ...uint32) (*hdkeychain.ExtendedKey, error) {
	for _, index := range indexes {
		child, err := key.Derive(index)
		if err != nil {
			// ErrInvalidChild has a chance below 2^-127 per derivation; it is an error, not
			// a skip, because paths are assigned by the state machine and must not move.
			return nil, fmt.Errorf("derive child %d: %w", index, err)
		}
		key = child
	}
	return key, nil
}

// Network returns the keychain's network.
func (k *Keychain) Network() Network { return k.network }

// Account derives the keys of account m/44'/3'/account' and returns their public half, which
// derives every invoice and change address of the account. Keep the result rather than calling
// Account per address: it costs one hardened derivation and two more for the branches.
func (k *Keychain) Account(account uint32) (*AccountKeys, error) {
	if account > IndexMax {
		return nil, fmt.Errorf("%w: account %d above %d", ErrIndexOutOfRange, account, IndexMax)
	}
	private, err := deriveChildren(k.coinKey(), hdkeychain.HardenedKeyStart+account)
	if err != nil {
		return nil, fmt.Errorf("account %d: %w", account, err)
	}
	public, err := publicExtendedKey(private, k.network)
	if err != nil {
		return nil, fmt.Errorf("account %d: %w", account, err)
	}
	return newAccountKeys(public, k.network)
}

// DerivePrivateKeyForSigning returns the private key of path, to sign a payout on the leader.
// Use it and drop it: never store it, log it, put it in a command, a result or an error.
func (k *Keychain) DerivePrivateKeyForSigning(path Path) (*btcec.PrivateKey, error) {
	if err := path.validate(); err != nil {
		return nil, err
	}
	key, err := deriveChildren(k.coinKey(), hdkeychain.HardenedKeyStart+path.Account, uint32(path.Branch), path.Index)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return key.ECPrivKey()
}

// String returns "[redacted]": a Keychain holds private keys.
func (*Keychain) String() string { return redacted }

// GoString returns "[redacted]".
func (*Keychain) GoString() string { return redacted }

// Format writes "[redacted]" for every verb and flag.
func (*Keychain) Format(state fmt.State, _ rune) { _, _ = io.WriteString(state, redacted) }

// LogValue makes log/slog write "[redacted]".
func (*Keychain) LogValue() slog.Value { return slog.StringValue(redacted) }

// publicExtendedKey returns the extended public key of a private one, with network's public
// version (hdkeychain's Neuter would look the version up in chaincfg's registry).
func publicExtendedKey(private *hdkeychain.ExtendedKey, network Network) (*hdkeychain.ExtendedKey, error) {
	publicKey, err := private.ECPubKey()
	if err != nil {
		return nil, err
	}
	parentFingerprint := binary.BigEndian.AppendUint32(nil, private.ParentFingerprint())
	return hdkeychain.NewExtendedKey(network.HDPublicVersion[:], publicKey.SerializeCompressed(),
		private.ChainCode(), parentFingerprint, private.Depth(), private.ChildIndex(), false), nil
}

// AccountKeys is the public half of one account's keys: the extended public key of
// m/44'/3'/N' and, cached, those of its two branches /0 and /1, so an address costs one public
// child derivation. It holds nothing secret: any node may build it from the stored extended
// public key (ParseAccountKeys) and derive the account's addresses without the seed. It is
// immutable and safe for concurrent use.
type AccountKeys struct {
	network   Network
	account   uint32
	accountID string
	key       *hdkeychain.ExtendedKey
	branches  [2]*hdkeychain.ExtendedKey
}

// ParseAccountKeys returns the account keys of an extended public key as ExtendedPublicKey
// writes it. It refuses an extended private key, a key of another network, and a key that is
// not at the account level (depth 3, hardened child number). It cannot check the rest of the
// path (m/44'/3'): an extended key does not carry it.
func ParseAccountKeys(extendedPublicKey string, network Network) (*AccountKeys, error) {
	if len(extendedPublicKey) > extendedKeyMaxChars {
		return nil, fmt.Errorf("%w: longer than %d characters", ErrInvalidAccountKey, extendedKeyMaxChars)
	}
	key, err := hdkeychain.NewKeyFromString(extendedPublicKey)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidAccountKey, err)
	}
	switch {
	case key.IsPrivate():
		// Say nothing of the key: it is private.
		return nil, fmt.Errorf("%w: an extended private key", ErrInvalidAccountKey)
	case [4]byte(key.Version()) != network.HDPublicVersion:
		return nil, fmt.Errorf("%w: version %x is not %s's extended public key version %x",
			ErrInvalidAccountKey, key.Version(), network, network.HDPublicVersion)
	case key.Depth() != 3 || key.ChildIndex() < hdkeychain.HardenedKeyStart:
		return nil, fmt.Errorf("%w: depth %d, child %d: not an account key m/44'/3'/N'",
			ErrInvalidAccountKey, key.Depth(), key.ChildIndex())
	}
	return newAccountKeys(key, network)
}

func newAccountKeys(key *hdkeychain.ExtendedKey, network Network) (*AccountKeys, error) {
	account := key.ChildIndex() - hdkeychain.HardenedKeyStart
	publicKey, err := key.ECPubKey()
	if err != nil {
		return nil, fmt.Errorf("account %d: %w", account, err)
	}
	keys := &AccountKeys{
		network:   network,
		account:   account,
		accountID: p2pkhAddress(publicKey.SerializeCompressed(), network),
		key:       key,
	}
	for _, branch := range []Branch{External, Change} {
		keys.branches[branch], err = deriveChildren(key, uint32(branch))
		if err != nil {
			return nil, fmt.Errorf("account %d branch %d: %w", account, branch, err)
		}
	}
	return keys, nil
}

// Network returns the network of the account's keys.
func (a *AccountKeys) Network() Network { return a.network }

// Account returns the account number N of m/44'/3'/N'.
func (a *AccountKeys) Account() uint32 { return a.account }

// Path returns the account key's path m/44'/3'/N' in BIP32 notation.
func (a *AccountKeys) Path() string {
	return fmt.Sprintf("m/%d'/%d'/%d'", purposeBIP44, CoinType, a.account)
}

// ID returns the account's GigaWallet ID: the P2PKH address of the account key m/44'/3'/N'
// (GigaWallet's is that of its per-account master key). It is none of the account's invoice or
// change addresses.
func (a *AccountKeys) ID() string { return a.accountID }

// ExtendedPublicKey returns the account's extended public key (dgub… on mainnet, tpub… on the
// test networks). It is public: it reveals the account's addresses, never a private key, and is
// what the state machine stores so that any node can derive the account's addresses.
func (a *AccountKeys) ExtendedPublicKey() string { return a.key.String() }

// InvoiceAddress returns the external address m/44'/3'/N'/0/index.
func (a *AccountKeys) InvoiceAddress(index uint32) (DerivedAddress, error) {
	return a.Address(External, index)
}

// ChangeAddress returns the change address m/44'/3'/N'/1/index.
func (a *AccountKeys) ChangeAddress(index uint32) (DerivedAddress, error) {
	return a.Address(Change, index)
}

// Address returns the address m/44'/3'/N'/branch/index.
func (a *AccountKeys) Address(branch Branch, index uint32) (DerivedAddress, error) {
	path := Path{Account: a.account, Branch: branch, Index: index}
	if err := path.validate(); err != nil {
		return DerivedAddress{}, err
	}
	child, err := deriveChildren(a.branches[branch], index)
	if err != nil {
		return DerivedAddress{}, fmt.Errorf("%s: %w", path, err)
	}
	publicKey, err := child.ECPubKey()
	if err != nil {
		return DerivedAddress{}, fmt.Errorf("%s: %w", path, err)
	}
	compressed := publicKey.SerializeCompressed()
	return DerivedAddress{Path: path, PublicKey: compressed, Address: p2pkhAddress(compressed, a.network)}, nil
}
