package dogecoin_test

import (
	"errors"
	"testing"

	"github.com/gigaledger/gigaledger/chainwatch/dogecoin"
)

func TestParseNetwork(t *testing.T) {
	for _, network := range []dogecoin.Network{dogecoin.Mainnet, dogecoin.Testnet, dogecoin.Regtest} {
		got, err := dogecoin.ParseNetwork(network.Name)
		if err != nil || got != network {
			t.Errorf("ParseNetwork(%q) = %v, %v; want %v", network.Name, got, err, network)
		}
	}
	// GigaWallet maps every name but "testnet" to mainnet; we refuse what we do not know.
	for _, name := range []string{"", "main", "Mainnet", "TESTNET", "testnet3", "signet", " regtest"} {
		if _, err := dogecoin.ParseNetwork(name); !errors.Is(err, dogecoin.ErrUnknownNetwork) {
			t.Errorf("ParseNetwork(%q) error = %v, want ErrUnknownNetwork", name, err)
		}
	}
}

// TestNetworkParameters pins the version bytes to the values of shared/DESIGN.md ("Keys and
// money on chain"), Dogecoin Core 1.14's chainparams.cpp and libdogecoin's chainparams.c.
func TestNetworkParameters(t *testing.T) {
	tests := []struct {
		network             dogecoin.Network
		p2pkh, p2sh, wif    byte
		hdPrivate, hdPublic [4]byte
	}{
		{dogecoin.Mainnet, 0x1e, 0x16, 0x9e, [4]byte{0x02, 0xfa, 0xc3, 0x98}, [4]byte{0x02, 0xfa, 0xca, 0xfd}},
		{dogecoin.Testnet, 0x71, 0xc4, 0xf1, [4]byte{0x04, 0x35, 0x83, 0x94}, [4]byte{0x04, 0x35, 0x87, 0xcf}},
		{dogecoin.Regtest, 0x6f, 0xc4, 0xef, [4]byte{0x04, 0x35, 0x83, 0x94}, [4]byte{0x04, 0x35, 0x87, 0xcf}},
	}
	for _, test := range tests {
		n := test.network
		if n.P2PKHVersion != test.p2pkh || n.P2SHVersion != test.p2sh || n.WIFVersion != test.wif ||
			n.HDPrivateVersion != test.hdPrivate || n.HDPublicVersion != test.hdPublic {
			t.Errorf("%s parameters = %+v", n, n)
		}
	}
	if dogecoin.CoinType != 3 {
		t.Errorf("CoinType = %d, want 3", dogecoin.CoinType)
	}
}
