package fsm

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble"
	bolt "go.etcd.io/bbolt"
)

// BenchmarkStoreChoice compares the two embedded stores on the ledger's write pattern: per
// transfer, two wallet records rewritten at random keys, two entries (keyed by wallet) and three transaction
// records appended, one missing-key lookup (the reference check); 512 transfers per batch,
// no fsync (the Raft log is the durable record). It is why fsm uses Pebble.
//
//	go test ./fsm -run '^$' -bench StoreChoice -benchtime 200000x -cpu 1
func BenchmarkStoreChoice(b *testing.B) {
	const walletCount = 10_000
	const batchSize = 512
	value := make([]byte, 60)
	walletKey := func(i int) []byte { return []byte(fmt.Sprintf("w%05d", i%walletCount)) }
	appendKey := func(prefix byte, i, part int) []byte {
		k := []byte{prefix}
		k = binary.BigEndian.AppendUint64(k, uint64(i))
		return append(k, byte(part))
	}
	// Entries are keyed by wallet, then sequence: random inserts across the key space.
	entryKey := func(wallet, sequence int) []byte {
		k := append([]byte{'e'}, walletKey(wallet)...)
		return binary.BigEndian.AppendUint64(k, uint64(sequence))
	}
	b.Run("pebble", func(b *testing.B) {
		db, err := openPebble(filepath.Join(b.TempDir(), "p"), false, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		b.ResetTimer()
		for i := 0; i < b.N; i += batchSize {
			batch := db.NewBatch()
			for j := i; j < min(i+batchSize, b.N); j++ {
				if _, closer, err := db.Get(appendKey('r', j, 0)); err == nil {
					closer.Close()
				}
				batch.Set(walletKey(j*7919), value, nil)
				batch.Set(walletKey(j*104729+1), value, nil)
				batch.Set(entryKey(j*7919, j), value, nil)
				batch.Set(entryKey(j*104729+1, j), value, nil)
				for part := 0; part < 3; part++ {
					batch.Set(appendKey('t', j, part), value, nil)
				}
			}
			if err := batch.Commit(pebble.NoSync); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "transfers/s")
	})
	b.Run("bbolt", func(b *testing.B) {
		db, err := bolt.Open(filepath.Join(b.TempDir(), "b"), 0o600, &bolt.Options{NoSync: true, NoFreelistSync: true})
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		bucket := []byte("ledger")
		b.ResetTimer()
		for i := 0; i < b.N; i += batchSize {
			err := db.Update(func(tx *bolt.Tx) error {
				bk, err := tx.CreateBucketIfNotExists(bucket)
				if err != nil {
					return err
				}
				for j := i; j < min(i+batchSize, b.N); j++ {
					_ = bk.Get(appendKey('r', j, 0))
					bk.Put(walletKey(j*7919), value)
					bk.Put(walletKey(j*104729+1), value)
					bk.Put(entryKey(j*7919, j), value)
					bk.Put(entryKey(j*104729+1, j), value)
					for part := 0; part < 3; part++ {
						bk.Put(appendKey('t', j, part), value)
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "transfers/s")
	})
}
