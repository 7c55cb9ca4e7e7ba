// Package gigawallet is the GigaWallet family of the state machine: Dogecoin accounts, keyed by
// the integrator's foreign ID, each a customer with a DOGE wallet of the accounting core
// (fsm/ledger), so money moves only through the core and the Cloud Wallet API sees the same
// balances. Invoices follow (issue 10).
//
// It stores only public key material: derivation indexes, extended public keys and addresses.
// The cluster's seed and every private key stay in the memory of the node that derives them
// (chainwatch/dogecoin); a command carries the public results, never a secret.
package gigawallet
