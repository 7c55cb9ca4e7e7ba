// Package dogecoin owns what GigaLedger knows of Dogecoin itself: the parameters of its networks
// (mainnet, testnet, regtest: address, WIF and BIP32 version bytes, the BIP44 coin type), the
// cluster's master seed (loading it, creating it, never showing it), BIP32/BIP44 key derivation
// (account keys m/44'/3'/N', invoice addresses /0/i and change addresses /1/i), the DogeConnect
// signing key (m/7477'/3'/0', outside BIP44's tree) and the encoding and validation of P2PKH
// addresses and WIF private keys.
//
// Derivation hands out public data only (paths, compressed public keys, addresses, the account's
// extended public key, which other nodes and the state machine may store and derive addresses
// from without the seed). The one way to a private key is Keychain.DerivePrivateKeyForSigning,
// meant for the leader at payout time; the DogeConnect key never leaves its ConnectSigner, which
// hands out its public key and signatures only.
//
// It must never store, log, print or put into an error a seed or a private key: Seed, Keychain
// and ConnectSigner print as "[redacted]" whatever the verb or encoder, and errors about a seed
// name only its source and its length. It must never read a clock, talk to the network or a
// node, or know of Raft, the ledger or HTTP: the chain follower and the GigaWallet family build
// on it.
package dogecoin
