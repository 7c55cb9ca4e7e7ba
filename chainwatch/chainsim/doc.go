// Package chainsim owns an in-memory Dogecoin chain for tests: blocks (with Dogecoin's AuxPoW
// proof when asked), a mempool, a faucet that pays with properly signed P2PKH transactions,
// reorgs with optional double spends, and the node's faces a chain follower talks to: a
// JSON-RPC server speaking what chainwatch/rpc's client speaks (Server) and a ZMQ publisher of
// Dogecoin Core's topics (Chain.ListenZMQ).
//
// It exists so that `make test` can drive the follower and the payout broadcaster without a
// real node: no Dogecoin node is packaged for this machine (contract gigawallet.md §13), and
// litecoind has neither AuxPoW, Dogecoin's address bytes, estimatefee nor ZMQ.
//
// What is real: block and transaction serialization, hashes, merkle roots, the AuxPoW proof's
// structure (the parent coinbase commits to the block hash as Dogecoin's merged mining does),
// UTXO accounting and script verification of every transaction handed to sendrawtransaction
// (btcd's script engine, standard flags). What is not: proof of work (no scrypt, no
// difficulty), fee policy beyond inputs ≥ outputs, chain work (Reorg and InvalidateBlock decide
// the active chain as a test asks, and the longest valid chain wins otherwise), and the
// regtest genesis is the chain's genesis whatever the Options.Network.
//
// A Chain is deterministic: the same calls in the same order make the same blocks, hashes and
// transactions (block times advance by BlockIntervalSeconds from genesis; signatures use
// RFC 6979 nonces). It is safe for concurrent use: one mutex guards all state, and ZMQ
// messages are queued under it, so subscribers see events in the order the chain made them.
//
// It must never be used outside tests and test tools: its faucet key is public.
package chainsim
