package ledger

import (
	"fmt"
	"testing"

	"github.com/gigaledger/gigaledger/fsm"
)

// BenchmarkReads measures the reads the bench harness makes (the first entries page of a wallet,
// 20 entries) and GET transaction, on a store of 200,000 single-transfer transactions among
// 10,000 wallets applied in batches of 64 (a loaded cluster's batches), with the history chain.
// (It measured the pointers-into-the-chain experiment of docs/design-notes.md §3: entries pages
// 2.2× slower.)
//
//	go test ./fsm/ledger -run '^$' -bench Reads -benchtime 20000x -cpu 1
func BenchmarkReads(b *testing.B) {
	for _, batch := range []int{64} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			l, err := openTest(b.TempDir(), nil)
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			apply := benchApplier(b, l)
			apply([][]byte{fsm.EncodeCommand(&fsm.StartHistoryChain{})})
			apply([][]byte{fsm.EncodeCommand(&fsm.RaiseRules{Version: fsm.RulesVersion})}) // as a leader does
			benchSetup(apply)
			const transfers = 200_000
			for i := 0; i < transfers; i += batch {
				apply(benchTransfers(i, batch))
			}
			entriesOf := func(i, size int) []Entry {
				entries, _, err := l.ListEntries("p", fmt.Sprintf("w%05d", (i*7919)%benchWalletCount), TimeRange{FromMs: 0, ToMs: 1 << 62}, PageRequest{Page: 1, PageSize: size})
				if err != nil || len(entries) != size {
					b.Fatal(len(entries), err)
				}
				return entries
			}
			b.Run("entries-page", func(b *testing.B) {
				b.ReportAllocs()
				for i := range b.N {
					entriesOf(i, 20)
				}
			})
			var txIDs []string
			for i := range 1000 {
				txIDs = append(txIDs, entriesOf(i, 1)[0].TransactionID)
			}
			b.Run("get-transaction", func(b *testing.B) {
				b.ReportAllocs()
				for i := range b.N {
					if _, err := l.GetTransaction("p", txIDs[i%len(txIDs)]); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
