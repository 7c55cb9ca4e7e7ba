package payout_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/gigaledger/gigaledger/chainwatch/dogecoin"
	"github.com/gigaledger/gigaledger/chainwatch/payout"
)

// DOGE amounts in koinu, for readable tables.
const (
	doge      = payout.KoinuPerDoge
	centiDoge = doge / 100
	milliDoge = doge / 1000
)

// fixture is a keychain of a fixed test seed on one network: account 0 pays, account 1's
// addresses receive.
type fixture struct {
	network  dogecoin.Network
	keychain *dogecoin.Keychain
	payer    *dogecoin.AccountKeys
	payee    *dogecoin.AccountKeys
}

var (
	fixturesOnce sync.Once
	fixtures     map[string]*fixture
	fixturesErr  error
)

// newFixture returns the network's fixture, built once per test binary (derivation is slow
// enough to matter to the fuzz target).
func newFixture(tb testing.TB, network dogecoin.Network) *fixture {
	tb.Helper()
	fixturesOnce.Do(func() {
		raw := make([]byte, dogecoin.SeedMinBytes)
		for i := range raw {
			raw[i] = byte(i + 1)
		}
		seed, err := dogecoin.NewSeed(raw)
		if err != nil {
			fixturesErr = err
			return
		}
		fixtures = map[string]*fixture{}
		for _, network := range dogecoin.Networks() {
			f := &fixture{network: network}
			if f.keychain, fixturesErr = dogecoin.NewKeychain(seed, network); fixturesErr != nil {
				return
			}
			if f.payer, fixturesErr = f.keychain.Account(0); fixturesErr != nil {
				return
			}
			if f.payee, fixturesErr = f.keychain.Account(1); fixturesErr != nil {
				return
			}
			fixtures[network.Name] = f
		}
	})
	if fixturesErr != nil {
		tb.Fatal(fixturesErr)
	}
	return fixtures[network.Name]
}

// address returns the address of account's branch/index.
func address(tb testing.TB, account *dogecoin.AccountKeys, branch dogecoin.Branch, index uint32) string {
	tb.Helper()
	derived, err := account.Address(branch, index)
	if err != nil {
		tb.Fatal(err)
	}
	return derived.Address
}

// payTo is the address of the payee's invoice index.
func (f *fixture) payTo(tb testing.TB, index uint32) string {
	return address(tb, f.payee, dogecoin.External, index)
}

// keys is the payer's key source.
func (f *fixture) keys() payout.AccountKeySource {
	return payout.AccountKeySource{Keychain: f.keychain, Account: f.payer.Account()}
}

// utxo is an unspent output of the payer's branch/index, in a transaction whose id is txNumber
// written as 64 hex digits.
func (f *fixture) utxo(tb testing.TB, txNumber int, branch dogecoin.Branch, index uint32, koinu uint64, height int64) payout.UTXO {
	tb.Helper()
	return payout.UTXO{
		TxID:    fmt.Sprintf("%064x", txNumber),
		Vout:    uint32(txNumber % 3),
		Koinu:   koinu,
		Address: address(tb, f.payer, branch, index),
		Branch:  branch,
		Index:   index,
		Height:  height,
	}
}
