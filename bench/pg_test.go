package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gigaledger/gigaledger/cluster/testutil"
)

// postgresBinaries returns the directory with initdb, pg_ctl and postgres,
// or "" when PostgreSQL is not installed.
func postgresBinaries() string {
	candidates, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Strings(candidates)
	if path, err := exec.LookPath("pg_ctl"); err == nil {
		if resolved, err := filepath.EvalSymlinks(path); err == nil {
			candidates = append(candidates, filepath.Dir(resolved))
		}
	}
	for index := len(candidates) - 1; index >= 0; index-- {
		directory := candidates[index]
		if _, err := os.Stat(filepath.Join(directory, "postgres")); err == nil {
			if _, err := os.Stat(filepath.Join(directory, "initdb")); err == nil {
				return directory
			}
		}
	}
	return ""
}

// startTestPostgres starts a throw-away PostgreSQL on a free loopback port
// and returns its DSN; it is stopped when the test ends. PostgreSQL refuses
// to run as root, so as root it runs as the postgres user.
func startTestPostgres(t *testing.T) string {
	t.Helper()
	binaries := postgresBinaries()
	if binaries == "" {
		t.Skip("PostgreSQL binaries not installed (bench/compare.sh installs and exercises them)")
	}
	run := func(name string, args ...string) *exec.Cmd {
		return exec.Command(filepath.Join(binaries, name), args...)
	}
	directory, err := os.MkdirTemp("", "bench-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(directory) })
	if os.Geteuid() == 0 {
		account, err := user.Lookup("postgres")
		if err != nil {
			t.Skip("running as root without a postgres user to run PostgreSQL as")
		}
		uid, _ := strconv.Atoi(account.Uid)
		gid, _ := strconv.Atoi(account.Gid)
		if err := os.Chown(directory, uid, gid); err != nil {
			t.Fatal(err)
		}
		plain := run
		run = func(name string, args ...string) *exec.Cmd {
			command := plain(name, args...)
			return exec.Command("runuser", append([]string{"-u", "postgres", "--", command.Path}, args...)...)
		}
	}
	_, port, _ := net.SplitHostPort(testutil.FreeAddr(t))
	data := filepath.Join(directory, "data")
	if output, err := run("initdb", "-D", data, "-U", "bench", "--auth=trust", "-E", "UTF8").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, output)
	}
	options := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %s -c unix_socket_directories=%s -c fsync=on -c synchronous_commit=on", port, directory)
	if output, err := run("pg_ctl", "-D", data, "-l", filepath.Join(directory, "log"), "-w", "-t", "30", "-o", options, "start").CombinedOutput(); err != nil {
		t.Fatalf("pg_ctl start: %v\n%s", err, output)
	}
	t.Cleanup(func() { _ = run("pg_ctl", "-D", data, "-m", "immediate", "stop").Run() })
	return fmt.Sprintf("postgres://bench@127.0.0.1:%s/postgres?sslmode=disable", port)
}

// TestPostgresBaselineKeepsTheLedgerInvariants runs every scenario against
// a real PostgreSQL and then checks, from the tables, that money was
// conserved and every committed transfer wrote its two entries.
func TestPostgresBaselineKeepsTheLedgerInvariants(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	dsn := startTestPostgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, mode := range []string{pgModeFunction, pgModeInteractive} {
		t.Run(mode, func(t *testing.T) {
			for _, scenario := range ScenarioNames {
				if !HasPostgresBaseline(scenario) {
					continue
				}
				var stdout, stderr bytes.Buffer
				args := []string{"--pg", dsn, "--scenario", scenario, "--clients", "8", "--wallets", "20",
					"--duration", "700ms", "--zipf-s", "1.5", "--json", "--progress", "off", "--pg-mode", mode}
				if code := Main(context.Background(), args, &stdout, &stderr); code != exitOK {
					t.Fatalf("%s %s: exit %d: %s", mode, scenario, code, stderr.String())
				}
				var result Result
				if err := json.Unmarshal(stdout.Bytes(), &result); err != nil {
					t.Fatal(err)
				}
				if result.OK == 0 || result.Errors != 0 || result.Transport != 0 {
					t.Fatalf("%s: %+v", scenario, result)
				}
			}

			// Business rejections: unfunded wallets cannot pay; the failure
			// consumes the reference ID, and a retry is a duplicate.
			driver, _, err := newPGDriver(ctx, dsn, 2, false, mode == pgModeFunction)
			if err != nil {
				t.Fatal(err)
			}
			defer driver.Close()
			if err := driver.Setup(ctx, SetupPlan{RunID: "unfunded-" + mode, Wallets: 2, Clients: 2}); err != nil {
				t.Fatal(err)
			}
			overdraft := Request{Kind: RequestTransaction, ReferenceID: "overdraft-" + mode, Operations: []Operation{
				{Type: OperationIssue, ToWallet: 0, Amount: 5},
				{Type: OperationTransfer, FromWallet: 0, ToWallet: 1, Amount: 11},
			}}
			if outcome := driver.Do(ctx, &overdraft); outcome.Class != OutcomeBusiness || outcome.Kind != "422 InsufficientFunds" {
				t.Errorf("overdraft: %+v", outcome)
			}
			if outcome := driver.Do(ctx, &overdraft); outcome.Kind != "409 DuplicateReferenceId" {
				t.Errorf("retried overdraft: %+v", outcome)
			}
			issueThenPay := Request{Kind: RequestTransaction, ReferenceID: "issue-then-pay-" + mode, Operations: []Operation{
				{Type: OperationIssue, ToWallet: 0, Amount: 11},
				{Type: OperationTransfer, FromWallet: 0, ToWallet: 1, Amount: 11},
				{Type: OperationRedeem, FromWallet: 1, Amount: 3},
			}}
			if outcome := driver.Do(ctx, &issueThenPay); outcome.Class != OutcomeOK {
				t.Errorf("issue then pay: %+v", outcome)
			}
			var failedIndex int
			var reason string
			err = driver.pool.QueryRow(ctx, `SELECT failed_operation_index, failure_reason FROM transactions
				WHERE project_id = $1 AND reference_id = 'overdraft-' || $2 AND status = 'failed'`, driver.projectID, mode).Scan(&failedIndex, &reason)
			if err != nil || failedIndex != 1 || reason != "InsufficientFunds" {
				t.Errorf("failed transaction row: %d %q %v", failedIndex, reason, err)
			}
			var balances [2]int64
			for index := range balances {
				if err := driver.pool.QueryRow(ctx, `SELECT balance FROM wallets WHERE id = $1`, driver.walletIDs[index]).Scan(&balances[index]); err != nil {
					t.Fatal(err)
				}
			}
			if balances != [2]int64{0, 8} {
				t.Errorf("balances %v, want [0 8]", balances)
			}
		})
	}
	connection, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer connection.Close(ctx)
	checks := []struct {
		what  string
		query string
	}{
		{"balance differs from its entries", `SELECT count(*) FROM gigaledger_bench.wallets w WHERE balance <>
			(SELECT coalesce(sum(CASE WHEN type IN ('issue', 'credit') THEN amount ELSE -amount END), 0)
			 FROM gigaledger_bench.entries e WHERE e.wallet_id = w.id)`},
		{"balance_after differs from the running sum", `SELECT count(*) FROM (
			SELECT balance_after, sum(CASE WHEN type IN ('issue', 'credit') THEN amount ELSE -amount END)
				OVER (PARTITION BY wallet_id ORDER BY id) AS running FROM gigaledger_bench.entries) s
			WHERE balance_after <> running`},
		{"transfers whose debits and credits differ", `SELECT count(*) FROM (
			SELECT transaction_id, operation_index FROM gigaledger_bench.entries WHERE type IN ('debit', 'credit')
			GROUP BY 1, 2 HAVING sum(CASE type WHEN 'debit' THEN amount ELSE -amount END) <> 0 OR count(*) <> 2) s`},
		{"completed transactions without entries", `SELECT count(*) FROM gigaledger_bench.transactions t
			WHERE status = 'completed' AND NOT EXISTS (SELECT 1 FROM gigaledger_bench.entries e WHERE e.transaction_id = t.id)`},
		{"projects where issued - redeemed differs from the balances", `SELECT count(*) FROM gigaledger_bench.projects p WHERE
			(SELECT coalesce(sum(balance), 0) FROM gigaledger_bench.wallets w WHERE w.project_id = p.id) <>
			(SELECT coalesce(sum(CASE type WHEN 'issue' THEN amount ELSE -amount END), 0) FROM gigaledger_bench.entries e
			 JOIN gigaledger_bench.wallets w ON w.id = e.wallet_id WHERE w.project_id = p.id AND type IN ('issue', 'redeem'))`},
	}
	for _, check := range checks {
		var count int64
		if err := connection.QueryRow(ctx, check.query).Scan(&count); err != nil {
			t.Fatalf("%s: %v", check.what, err)
		}
		if count != 0 {
			t.Errorf("%s: %d", check.what, count)
		}
	}
}
