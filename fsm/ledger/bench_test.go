package ledger

import (
	"fmt"
	"testing"

	"github.com/gigaledger/gigaledger/fsm"
)

// BenchmarkApplyTransfers measures apply throughput on one goroutine: single-transfer
// transactions among 10,000 wallets, batched per log entry as group commit would, with every
// entry, transaction and balance written to the store; with the history chain (every replica's
// default, fsm/chain.go) and without it.
//
//	go test ./fsm -run '^$' -bench ApplyTransfers -benchtime 200000x -cpu 1
func BenchmarkApplyTransfers(b *testing.B) {
	for _, batchSize := range []int{1, 64, 512} {
		for _, chain := range []bool{false, true} {
			name := fmt.Sprintf("batch=%d/chain=%v", batchSize, map[bool]string{false: "off", true: "on"}[chain])
			b.Run(name, func(b *testing.B) { benchmarkApplyTransfers(b, batchSize, chain) })
		}
	}
}

func benchmarkApplyTransfers(b *testing.B, batchSize int, chain bool) {
	l, err := openTest(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	const walletCount = 10_000
	index := uint64(0)
	now := int64(1_700_000_000_000)
	apply := func(cmds [][]byte) {
		index++
		now++
		for _, r := range l.ApplyBatch(index, now, cmds) {
			if r.(*fsm.Result).Err != nil {
				b.Fatal(r.(*fsm.Result).Err)
			}
		}
	}
	if chain {
		apply([][]byte{fsm.EncodeCommand(&fsm.StartHistoryChain{})})
	}
	apply([][]byte{
		(&Command{Op: OpCreateProject, ProjectID: "p", Name: "bench"}).Encode(nil),
		(&Command{Op: OpCreateAsset, ProjectID: "p", AssetID: "usd", Name: "USD", Code: "USD", Fractions: 100}).Encode(nil),
	})
	var setup [][]byte
	for i := 0; i < walletCount; i++ {
		id := fmt.Sprintf("w%05d", i)
		setup = append(setup,
			(&Command{Op: OpCreateWallet, ProjectID: "p", WalletID: id, AssetID: "usd"}).Encode(nil),
			(&Command{Op: OpTransact, ProjectID: "p", IDPrefix: "f", ReferenceID: "fund" + id,
				Operations: []Operation{{Type: OperationIssue, To: id, Amount: AmountFromUint64(1 << 40)}}}).Encode(nil))
		if len(setup) >= 1000 {
			apply(setup)
			setup = nil
		}
	}
	apply(setup)

	// Pre-encode the commands so the benchmark measures apply, not the proposer.
	cmds := make([][]byte, b.N)
	for i := range cmds {
		from, to := (i*7919)%walletCount, (i*104729+1)%walletCount
		if from == to {
			to = (to + 1) % walletCount
		}
		id := fmt.Sprintf("t%09d", i)
		cmds[i] = (&Command{Op: OpTransact, ProjectID: "p", IDPrefix: "t", ReferenceID: id,
			Operations: []Operation{{Type: OperationTransfer, From: fmt.Sprintf("w%05d", from), To: fmt.Sprintf("w%05d", to), Amount: AmountFromUint64(1)}}}).Encode(nil)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += batchSize {
		apply(cmds[i:min(i+batchSize, b.N)])
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "transfers/s")
}
