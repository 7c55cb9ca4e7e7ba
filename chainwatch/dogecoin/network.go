package dogecoin

import (
	"errors"
	"fmt"
)

// CoinType is the BIP44 coin type of every key GigaLedger derives (SLIP-44 registers 3 for
// Dogecoin). Testnet and regtest use 3 as well, as GigaWallet and libdogecoin's
// getDerivedHDAddress do, rather than SLIP-44's 1 for test networks: the same seed then gives
// the same derivation paths on every network.
const CoinType uint32 = 3

// Network holds the parameters that make keys and addresses of one Dogecoin network. The values
// are those of Dogecoin Core 1.14 (src/chainparams.cpp) and libdogecoin (src/chainparams.c).
// Compare networks with ==.
type Network struct {
	// Name is the network's name as GigaWallet's config spells it ([gigawallet] network).
	Name string
	// P2PKHVersion is the version byte of a pay-to-public-key-hash address.
	P2PKHVersion byte
	// P2SHVersion is the version byte of a pay-to-script-hash address.
	P2SHVersion byte
	// WIFVersion is the version byte of a private key in wallet import format.
	WIFVersion byte
	// HDPrivateVersion and HDPublicVersion start a serialized BIP32 extended private and public
	// key ("dgpv"/"dgub" on mainnet, "tprv"/"tpub" on the test networks).
	HDPrivateVersion [4]byte
	HDPublicVersion  [4]byte
}

// Mainnet is Dogecoin's main network: addresses start with D, extended keys with dgpv/dgub.
var Mainnet = Network{
	Name:             "mainnet",
	P2PKHVersion:     0x1e,
	P2SHVersion:      0x16,
	WIFVersion:       0x9e,
	HDPrivateVersion: [4]byte{0x02, 0xfa, 0xc3, 0x98},
	HDPublicVersion:  [4]byte{0x02, 0xfa, 0xca, 0xfd},
}

// Testnet is Dogecoin's public test network (testnet3): addresses start with n, extended keys
// with tprv/tpub (Dogecoin Core kept Bitcoin's testnet BIP32 versions).
var Testnet = Network{
	Name:             "testnet",
	P2PKHVersion:     0x71,
	P2SHVersion:      0xc4,
	WIFVersion:       0xf1,
	HDPrivateVersion: [4]byte{0x04, 0x35, 0x83, 0x94},
	HDPublicVersion:  [4]byte{0x04, 0x35, 0x87, 0xcf},
}

// Regtest is Dogecoin's local regression-test network: Dogecoin Core 1.14 and libdogecoin kept
// Bitcoin's regtest address and WIF versions (addresses start with m or n) and the testnet BIP32
// versions. Dogecoin Core's unreleased 1.21 development branch gives regtest testnet's bytes
// (0x71, 0xc4, 0xf1) instead; a regtest node built from it would need those.
var Regtest = Network{
	Name:             "regtest",
	P2PKHVersion:     0x6f,
	P2SHVersion:      0xc4,
	WIFVersion:       0xef,
	HDPrivateVersion: [4]byte{0x04, 0x35, 0x83, 0x94},
	HDPublicVersion:  [4]byte{0x04, 0x35, 0x87, 0xcf},
}

// Networks lists every network ParseNetwork accepts, in a fixed order.
func Networks() []Network {
	return []Network{Mainnet, Testnet, Regtest}
}

// ErrUnknownNetwork is returned by ParseNetwork for a name that is not a network's.
var ErrUnknownNetwork = errors.New("unknown Dogecoin network")

// ParseNetwork returns the network of a name as GigaWallet's config spells it: "mainnet",
// "testnet" or "regtest" (exactly, lower case). GigaWallet treats any name but "testnet" as
// mainnet; we refuse what we do not know, because keys of the wrong network would receive
// payments nobody watches.
func ParseNetwork(name string) (Network, error) {
	for _, network := range Networks() {
		if network.Name == name {
			return network, nil
		}
	}
	return Network{}, fmt.Errorf("%w %q (want mainnet, testnet or regtest)", ErrUnknownNetwork, name)
}

// String returns the network's name.
func (n Network) String() string {
	return n.Name
}
