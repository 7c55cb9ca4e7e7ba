package faults

import (
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// Summary renders the table a person reads after a run: what was attempted, what the client
// learned, which faults ran, what the checker found, and how to replay an anomaly.
func Summary(record *RunRecord, report *Report, dir string) string {
	var b strings.Builder
	row := func(name string, value any) { fmt.Fprintf(&b, "  %-40s %v\n", name, value) }
	fmt.Fprintf(&b, "GigaLedger fault run: seed %d, %s network, %s of workload (%s in all), %d shards, %d wallets, %d clients, %d readers, %d verifiers\n",
		record.Seed, record.Network, record.Duration, record.Elapsed, max(record.Shards, 1), record.Wallets, record.Clients, record.Readers, record.Verifiers)
	if record.NetworkNote != "" {
		fmt.Fprintf(&b, "  note: %s\n", record.NetworkNote)
	}
	b.WriteString("operations\n")
	row("transactions attempted", record.Attempted)
	row("  across shards (share)", fmt.Sprintf("%d (%s; asked %.0f%% of single transfers)", record.CrossAttempted, percent(record.CrossAttempted, record.Attempted), 100*record.CrossShare))
	row("  of two transfers A→B, B→C", record.MultiAttempted)
	row("acknowledged (201 / 409 completed)", record.Acknowledged)
	row("  across shards", record.CrossAcked)
	row("failed, recorded (422)", record.Failed)
	row("failed, not applied (503 Unavailable)", record.Rejected)
	row("outcome unknown on some attempt", record.OutcomeUnknown)
	row("still unknown after healing", record.Unresolved)
	row("requests sent for transfers", record.Attempts)
	row("balance reads (errors)", fmt.Sprintf("%d (%d)", record.Reads, record.ReadErrors))
	row("quiescent snapshots (unsettled)", fmt.Sprintf("%d (%d)", record.Snapshots, record.SnapshotsLost))
	row("verify reads (errors, not verified)", fmt.Sprintf("%d (%d, %d)", record.Verified, record.VerifyFails, record.VerifySkipped))
	b.WriteString("faults\n")
	total := 0
	for _, kind := range append(slices.Clone(AllFaultKinds), FaultKillMoving) {
		if n, ok := record.Faults[string(kind)]; ok {
			row(string(kind), n)
			total += n
		}
	}
	row("total", total)
	if len(record.SkippedFaults) > 0 {
		row("skipped (network cannot partition)", strings.Join(record.SkippedFaults, ", "))
	}
	if m := record.Moves; m != nil {
		row("replica moves done (spare nodes)", fmt.Sprintf("%d (%d)", m.Done, record.Spares))
		row("  of a leader's replica / taken back", fmt.Sprintf("%d / %d", m.LeaderMoves, m.MovesBack))
		row("  requests (refused)", fmt.Sprintf("%d (%d)", m.Attempts, m.Refused))
		if len(m.Unfinished) > 0 {
			row("  unfinished after the run", strings.Join(m.Unfinished, ", "))
		}
	}
	if record.LeaderUnknown > 0 {
		row("leader unknown, random node targeted", record.LeaderUnknown)
	}
	b.WriteString("checks\n")
	row("transactions in final history", report.TransactionsInFinal)
	row("unknown outcomes resolved by history", fmt.Sprintf("completed %d, failed %d, absent %d",
		report.Resolved["completed"], report.Resolved["failed"], report.Resolved["absent"]))
	row("quiescent snapshot totals checked", report.SnapshotsChecked)
	row("verify reads checked", report.VerifyReadsChecked)
	row("shard replicas equal (pairs)", report.ShardReplicasEqual)
	row("wallets checked with porcupine", fmt.Sprintf("%d (%d undecided in time)", report.WalletsChecked, report.WalletsUndecided))
	for _, note := range report.Notes {
		row("note", note)
	}
	if record.Error != "" {
		row("run error", record.Error)
	}
	count := report.AnomalyCount()
	fmt.Fprintf(&b, "anomalies: %d\n", count)
	var kinds []string
	for kind := range report.Anomalies {
		kinds = append(kinds, kind)
	}
	sort.Strings(kinds)
	for _, kind := range kinds {
		row(kind, report.Anomalies[kind])
		for _, d := range report.Details[kind] {
			fmt.Fprintf(&b, "      %s\n", d)
		}
	}
	if count > 0 {
		fmt.Fprintf(&b, "ANOMALY: seed %d, history %s\n", record.Seed, filepath.Join(dir, HistoryFile))
		fmt.Fprintf(&b, "  re-check: go run ./faults/cmd/faultrun check --out %s\n", dir)
		fmt.Fprintf(&b, "  replay:   go run ./faults/cmd/faultrun --seed %d --duration %s --wallets %d --clients %d --network %s --shards %d --cross %g --multi %g\n",
			record.Seed, record.Duration, record.Wallets, record.Clients, record.Network, max(record.Shards, 1), record.CrossShare, record.MultiShare)
	}
	return b.String()
}

// percent renders part/whole as a percentage.
func percent(part, whole int64) string {
	if whole == 0 {
		return "0%"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(part)/float64(whole))
}
