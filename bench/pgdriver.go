package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PostgreSQL baseline limits and names.
const (
	// pgSchema holds the baseline's tables, apart from anything else in
	// the database.
	pgSchema = "gigaledger_bench"
	// pgRetryMax bounds retries of one transfer on serialization failure or
	// deadlock (ordered locking should make both impossible; they are
	// counted if they happen anyway).
	pgRetryMax = 5
	// pgRetryDelay is the pause before a retry.
	pgRetryDelay = time.Millisecond
	// pgRollbackTimeout bounds the ROLLBACK after a failed transaction.
	pgRollbackTimeout = 5 * time.Second
	// pgCodeSerialization and pgCodeDeadlock are the SQLSTATEs retried.
	pgCodeSerialization = "40001"
	pgCodeDeadlock      = "40P01"
)

// pgSchemaStatements create the baseline's model: the same rules as
// GigaLedger's ledger, written the way an experienced engineer would for a
// production PostgreSQL ledger. Balances are bigint (GigaLedger counts in 128
// bits; bigint favours PostgreSQL and is what most integrators use).
var pgSchemaStatements = []string{
	`CREATE SCHEMA IF NOT EXISTS ` + pgSchema,
	`CREATE TABLE IF NOT EXISTS projects (
		id text PRIMARY KEY,
		name text NOT NULL,
		created_at timestamptz NOT NULL DEFAULT now())`,
	`CREATE TABLE IF NOT EXISTS assets (
		project_id text NOT NULL REFERENCES projects (id),
		id text NOT NULL,
		name text NOT NULL,
		code text NOT NULL,
		fractions bigint NOT NULL CHECK (fractions > 0),
		created_at timestamptz NOT NULL DEFAULT now(),
		PRIMARY KEY (project_id, id))`,
	`CREATE TABLE IF NOT EXISTS customers (
		project_id text NOT NULL REFERENCES projects (id),
		id text NOT NULL,
		name text NOT NULL,
		status text NOT NULL DEFAULT 'active',
		created_at timestamptz NOT NULL DEFAULT now(),
		PRIMARY KEY (project_id, id))`,
	`CREATE TABLE IF NOT EXISTS wallets (
		id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		project_id text NOT NULL,
		customer_id text NOT NULL,
		asset_id text NOT NULL,
		status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'suspended', 'closed')),
		balance bigint NOT NULL DEFAULT 0 CHECK (balance >= 0),
		created_at timestamptz NOT NULL DEFAULT now(),
		updated_at timestamptz NOT NULL DEFAULT now(),
		FOREIGN KEY (project_id, customer_id) REFERENCES customers (project_id, id),
		FOREIGN KEY (project_id, asset_id) REFERENCES assets (project_id, id))`,
	`CREATE TABLE IF NOT EXISTS transactions (
		id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		project_id text NOT NULL REFERENCES projects (id),
		reference_id text NOT NULL,
		status text NOT NULL CHECK (status IN ('completed', 'failed')),
		operations jsonb NOT NULL,
		failed_operation_index int,
		failure_reason text,
		created_at timestamptz NOT NULL DEFAULT now(),
		UNIQUE (project_id, reference_id))`,
	`CREATE TABLE IF NOT EXISTS entries (
		id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		wallet_id bigint NOT NULL REFERENCES wallets (id),
		transaction_id bigint NOT NULL REFERENCES transactions (id),
		operation_index int NOT NULL,
		type text NOT NULL CHECK (type IN ('issue', 'redeem', 'debit', 'credit')),
		amount bigint NOT NULL CHECK (amount > 0),
		balance_after bigint NOT NULL CHECK (balance_after >= 0),
		created_at timestamptz NOT NULL DEFAULT now())`,
	`CREATE INDEX IF NOT EXISTS entries_wallet_time ON entries (wallet_id, created_at, id)`,
	pgApplyFunction,
}

// pgApplyFunction applies one ledger transaction in one statement (one
// round trip, one database transaction in autocommit): claim the reference
// ID, lock the touched wallets in ID order, run the operations in order
// checking the non-negative rule after each, then write the balances and
// entries, or record the failure. Operation arrays are parallel; wallet ID
// 0 means "none" (issue has no source, redeem no destination).
const pgApplyFunction = `CREATE OR REPLACE FUNCTION apply_transaction(
	p_project text, p_reference text, p_operations jsonb,
	p_types text[], p_from bigint[], p_to bigint[], p_amounts bigint[],
	OUT result text, OUT failed_index int)
LANGUAGE plpgsql AS $$
DECLARE
	v_transaction bigint;
	v_ids bigint[];
	v_balances bigint[];
	v_statuses text[];
	v_deltas bigint[];
	v_entry_wallets bigint[] := '{}';
	v_entry_indexes int[] := '{}';
	v_entry_types text[] := '{}';
	v_entry_amounts bigint[] := '{}';
	v_entry_after bigint[] := '{}';
	v_from int;
	v_to int;
	v_amount bigint;
BEGIN
	INSERT INTO transactions (project_id, reference_id, status, operations)
	VALUES (p_project, p_reference, 'completed', p_operations)
	ON CONFLICT (project_id, reference_id) DO NOTHING
	RETURNING id INTO v_transaction;
	IF v_transaction IS NULL THEN
		result := 'DuplicateReferenceId';
		RETURN;
	END IF;
	SELECT array_agg(id ORDER BY id), array_agg(balance ORDER BY id), array_agg(status ORDER BY id)
	INTO v_ids, v_balances, v_statuses
	FROM (SELECT id, balance, status FROM wallets
		WHERE id = ANY (p_from || p_to) AND project_id = p_project
		ORDER BY id FOR UPDATE) AS locked;
	v_deltas := array_fill(0::bigint, ARRAY[coalesce(cardinality(v_ids), 0)]);
	FOR i IN 1 .. cardinality(p_types) LOOP
		v_amount := p_amounts[i];
		v_from := NULL;
		v_to := NULL;
		IF p_from[i] <> 0 THEN
			v_from := array_position(v_ids, p_from[i]);
			IF v_from IS NULL THEN RAISE EXCEPTION 'WalletNotFound' USING ERRCODE = 'P0002'; END IF;
		END IF;
		IF p_to[i] <> 0 THEN
			v_to := array_position(v_ids, p_to[i]);
			IF v_to IS NULL THEN RAISE EXCEPTION 'WalletNotFound' USING ERRCODE = 'P0002'; END IF;
		END IF;
		IF (v_from IS NOT NULL AND v_statuses[v_from] <> 'open') OR (v_to IS NOT NULL AND v_statuses[v_to] <> 'open') THEN
			result := 'WalletSuspended';
		ELSIF v_from IS NOT NULL AND v_balances[v_from] < v_amount THEN
			result := 'InsufficientFunds';
		ELSIF v_to IS NOT NULL AND v_balances[v_to] > 9223372036854775807 - v_amount THEN
			result := 'BalanceOverflow';
		END IF;
		IF result IS NOT NULL THEN
			failed_index := i - 1;
			UPDATE transactions SET status = 'failed', failed_operation_index = failed_index, failure_reason = result
			WHERE id = v_transaction;
			RETURN;
		END IF;
		IF v_from IS NOT NULL THEN
			v_balances[v_from] := v_balances[v_from] - v_amount;
			v_deltas[v_from] := v_deltas[v_from] - v_amount;
			v_entry_wallets := v_entry_wallets || p_from[i];
			v_entry_indexes := v_entry_indexes || (i - 1);
			v_entry_types := v_entry_types || CASE WHEN v_to IS NULL THEN 'redeem' ELSE 'debit' END;
			v_entry_amounts := v_entry_amounts || v_amount;
			v_entry_after := v_entry_after || v_balances[v_from];
		END IF;
		IF v_to IS NOT NULL THEN
			v_balances[v_to] := v_balances[v_to] + v_amount;
			v_deltas[v_to] := v_deltas[v_to] + v_amount;
			v_entry_wallets := v_entry_wallets || p_to[i];
			v_entry_indexes := v_entry_indexes || (i - 1);
			v_entry_types := v_entry_types || CASE WHEN v_from IS NULL THEN 'issue' ELSE 'credit' END;
			v_entry_amounts := v_entry_amounts || v_amount;
			v_entry_after := v_entry_after || v_balances[v_to];
		END IF;
	END LOOP;
	UPDATE wallets SET balance = balance + change.delta, updated_at = now()
	FROM unnest(v_ids, v_deltas) AS change (id, delta)
	WHERE wallets.id = change.id AND change.delta <> 0;
	INSERT INTO entries (wallet_id, transaction_id, operation_index, type, amount, balance_after)
	SELECT wallet_id, v_transaction, operation_index, type, amount, balance_after
	FROM unnest(v_entry_wallets, v_entry_indexes, v_entry_types, v_entry_amounts, v_entry_after)
		AS entry (wallet_id, operation_index, type, amount, balance_after);
	result := 'completed';
END
$$`

// The per-transaction SQL. A transaction is two round trips: (1) BEGIN,
// claim the reference ID, lock every touched wallet in ID order (so two
// transfers never deadlock) and read their balances; (2) apply the net
// balance changes, insert the entries, COMMIT. The CHECK (balance >= 0)
// constraint backs up the check made under the row locks.
const (
	pgInsertTransaction = `INSERT INTO transactions (project_id, reference_id, status, operations)
		VALUES ($1, $2, 'completed', $3)
		ON CONFLICT (project_id, reference_id) DO NOTHING
		RETURNING id`
	pgLockWallets = `SELECT id, project_id, asset_id, status, balance FROM wallets
		WHERE id = ANY($1) ORDER BY id FOR UPDATE`
	pgUpdateBalance = `UPDATE wallets SET balance = balance + $2, updated_at = now() WHERE id = $1`
	pgInsertEntries = `INSERT INTO entries (wallet_id, transaction_id, operation_index, type, amount, balance_after)
		SELECT wallet_id, $1, operation_index, type, amount, balance_after
		FROM unnest($2::bigint[], $3::int[], $4::text[], $5::bigint[], $6::bigint[])
			AS entry (wallet_id, operation_index, type, amount, balance_after)`
	pgInsertFailed = `INSERT INTO transactions (project_id, reference_id, status, operations, failed_operation_index, failure_reason)
		VALUES ($1, $2, 'failed', $3, $4, $5)
		ON CONFLICT (project_id, reference_id) DO NOTHING`
	pgSelectWallet = `SELECT id, project_id, customer_id, asset_id, status, balance, created_at, updated_at
		FROM wallets WHERE id = $1 AND project_id = $2`
	pgSelectEntries = `SELECT wallet_id, transaction_id, operation_index, type, amount, balance_after, created_at
		FROM entries WHERE wallet_id = $1 AND created_at BETWEEN $2 AND $3
		ORDER BY created_at, id LIMIT $4`
)

// pgDriver runs the scenarios against PostgreSQL through a pgx pool of one
// connection per client.
type pgDriver struct {
	pool      *pgxpool.Pool
	projectID string
	// walletIDs maps wallet indexes to database IDs; written by Setup only.
	walletIDs []int64
	settings  string
	// useFunction selects apply_transaction (one round trip) over the
	// interactive two-round-trip transaction.
	useFunction bool
}

// newPGDriver parses dsn, refuses a non-loopback host unless allowRemote,
// and opens a pool of clients connections with synchronous_commit on.
// It returns the host for the report.
func newPGDriver(ctx context.Context, dsn string, clients int, allowRemote, useFunction bool) (*pgDriver, string, error) {
	config, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, "", fmt.Errorf("--pg: %w", err)
	}
	host := net.JoinHostPort(config.ConnConfig.Host, strconv.Itoa(int(config.ConnConfig.Port)))
	if !allowRemote {
		hosts := []string{config.ConnConfig.Host}
		for _, fallback := range config.ConnConfig.Fallbacks {
			hosts = append(hosts, fallback.Host)
		}
		for _, candidate := range hosts {
			if err := checkLoopbackHost(ctx, net.DefaultResolver, candidate); err != nil {
				return nil, "", fmt.Errorf("--pg: %w", err)
			}
		}
	}
	config.MaxConns = int32(clients)
	config.MinConns = int32(clients)
	config.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	config.ConnConfig.RuntimeParams["search_path"] = pgSchema
	config.ConnConfig.RuntimeParams["application_name"] = "gigaledger-bench"
	pool, err := pgxpool.NewWithConfig(ctx, config)
	if err != nil {
		return nil, "", fmt.Errorf("--pg: %w", err)
	}
	return &pgDriver{pool: pool, useFunction: useFunction}, host, nil
}

// System implements Driver.
func (d *pgDriver) System() string { return "postgresql" }

// Describe reports the server's durability settings, read during Setup.
func (d *pgDriver) Describe() string { return d.settings }

// Close implements Driver.
func (d *pgDriver) Close() error {
	d.pool.Close()
	return nil
}

// Setup implements Driver: schema, project, asset, customers and wallets in
// a few set-based statements.
func (d *pgDriver) Setup(ctx context.Context, plan SetupPlan) error {
	d.projectID = "bench-" + plan.RunID
	connection, err := d.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer connection.Release()
	var version, fsync, synchronousCommit string
	err = connection.QueryRow(ctx, `SELECT current_setting('server_version'), current_setting('fsync'), current_setting('synchronous_commit')`).
		Scan(&version, &fsync, &synchronousCommit)
	if err != nil {
		return fmt.Errorf("read settings: %w", err)
	}
	if synchronousCommit != "on" {
		return fmt.Errorf("synchronous_commit is %q, the baseline needs on", synchronousCommit)
	}
	d.settings = fmt.Sprintf("PostgreSQL %s, fsync %s, synchronous_commit %s", version, fsync, synchronousCommit)
	// Serialize concurrent bench setups on one database (CREATE ... IF NOT
	// EXISTS races otherwise).
	if _, err := connection.Exec(ctx, `SELECT pg_advisory_lock(4242)`); err != nil {
		return fmt.Errorf("lock schema: %w", err)
	}
	defer func() { _, _ = connection.Exec(context.Background(), `SELECT pg_advisory_unlock(4242)`) }()
	for _, statement := range pgSchemaStatements {
		if _, err := connection.Exec(ctx, statement); err != nil {
			return fmt.Errorf("create schema: %w", err)
		}
	}
	steps := []struct {
		what string
		sql  string
		args []any
	}{
		{"project", `INSERT INTO projects (id, name) VALUES ($1, $2)`, []any{d.projectID, "GigaLedger bench " + plan.RunID}},
		{"asset", `INSERT INTO assets (project_id, id, name, code, fractions) VALUES ($1, $2, 'Bench dollar', 'BUSD', $3)`,
			[]any{d.projectID, assetID, assetFractions}},
		{"customers", `INSERT INTO customers (project_id, id, name)
			SELECT $1, 'c-' || i, 'Bench customer ' || i FROM generate_series(0, $2 - 1) AS i`, []any{d.projectID, plan.Wallets}},
	}
	for _, step := range steps {
		if _, err := connection.Exec(ctx, step.sql, step.args...); err != nil {
			return fmt.Errorf("create %s: %w", step.what, err)
		}
	}
	rows, err := connection.Query(ctx, `INSERT INTO wallets (project_id, customer_id, asset_id)
		SELECT $1, 'c-' || i, $2 FROM generate_series(0, $3 - 1) AS i
		RETURNING id, customer_id`, d.projectID, assetID, plan.Wallets)
	if err != nil {
		return fmt.Errorf("create wallets: %w", err)
	}
	d.walletIDs = make([]int64, plan.Wallets)
	created := 0
	for rows.Next() {
		var walletID int64
		var customerID string
		if err := rows.Scan(&walletID, &customerID); err != nil {
			return fmt.Errorf("create wallets: %w", err)
		}
		index, err := strconv.Atoi(customerID[len("c-"):])
		if err != nil || index < 0 || index >= plan.Wallets {
			return fmt.Errorf("create wallets: unexpected customer %q", customerID)
		}
		d.walletIDs[index] = walletID
		created++
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("create wallets: %w", err)
	}
	if created != plan.Wallets {
		return fmt.Errorf("create wallets: created %d of %d", created, plan.Wallets)
	}
	return nil
}

// Do implements Driver.
func (d *pgDriver) Do(ctx context.Context, request *Request) Outcome {
	switch request.Kind {
	case RequestTransaction:
		return d.transactionWithRetries(ctx, request)
	case RequestWalletBalance:
		return d.readWallet(ctx, request.Wallet)
	case RequestWalletEntries:
		return d.readEntries(ctx, request.Wallet)
	}
	return Outcome{Class: OutcomeError, Kind: "bad request kind"}
}

func (d *pgDriver) transactionWithRetries(ctx context.Context, request *Request) Outcome {
	retries := 0
	retryKind := ""
	for attempt := 0; ; attempt++ {
		transact := d.transaction
		if d.useFunction {
			transact = d.transactionFunction
		}
		outcome, err := transact(ctx, request)
		if err == nil {
			outcome.Retries, outcome.RetryKind = retries, retryKind
			return outcome
		}
		code := pgErrorCode(err)
		if (code == pgCodeSerialization || code == pgCodeDeadlock) && attempt < pgRetryMax && ctx.Err() == nil {
			retries++
			retryKind = "pg " + code
			time.Sleep(pgRetryDelay)
			continue
		}
		outcome = pgErrorOutcome(err)
		outcome.Retries, outcome.RetryKind = retries, retryKind
		return outcome
	}
}

// pgErrorCode returns err's SQLSTATE, or "" when it has none.
func pgErrorCode(err error) string {
	var pgError *pgconn.PgError
	if errors.As(err, &pgError) {
		return pgError.Code
	}
	return ""
}

// pgErrorOutcome classifies an error from PostgreSQL.
func pgErrorOutcome(err error) Outcome {
	if code := pgErrorCode(err); code != "" {
		return Outcome{Class: OutcomeError, Kind: "pg " + code}
	}
	outcome := transportOutcome(err)
	if outcome.Kind == "transport other" {
		outcome.Kind = "pg client error"
	}
	return outcome
}

// lockedWallet is a wallet row read under FOR UPDATE.
type lockedWallet struct {
	id        int64
	projectID string
	assetID   string
	status    string
	balance   int64
	delta     int64
}

// entryRows are the entries of one transaction, column-wise for unnest.
type entryRows struct {
	walletIDs        []int64
	operationIndexes []int32
	types            []string
	amounts          []int64
	balancesAfter    []int64
}

func (e *entryRows) add(walletID int64, operationIndex int, entryType string, amount, balanceAfter int64) {
	e.walletIDs = append(e.walletIDs, walletID)
	e.operationIndexes = append(e.operationIndexes, int32(operationIndex))
	e.types = append(e.types, entryType)
	e.amounts = append(e.amounts, amount)
	e.balancesAfter = append(e.balancesAfter, balanceAfter)
}

// rollback ends a failed transaction on connection; if that fails too, the
// pool discards the connection on Release (it is not idle).
func rollback(connection *pgxpool.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), pgRollbackTimeout)
	defer cancel()
	_, _ = connection.Exec(ctx, "ROLLBACK")
}

// transaction runs one ledger transaction as one database transaction. It
// returns an error only for database errors; business rejections are
// outcomes.
func (d *pgDriver) transaction(ctx context.Context, request *Request) (Outcome, error) {
	connection, err := d.pool.Acquire(ctx)
	if err != nil {
		return Outcome{}, err
	}
	defer connection.Release()

	walletIDs := make([]int64, 0, 2*len(request.Operations))
	for _, operation := range request.Operations {
		if operation.Type != OperationIssue {
			walletIDs = append(walletIDs, d.walletIDs[operation.FromWallet])
		}
		if operation.Type != OperationRedeem {
			walletIDs = append(walletIDs, d.walletIDs[operation.ToWallet])
		}
	}
	slices.Sort(walletIDs)
	walletIDs = slices.Compact(walletIDs)
	operationsJSON := d.operationsJSON(request)

	// Round trip 1: begin, claim the reference, lock and read the wallets.
	batch := &pgx.Batch{}
	batch.Queue("BEGIN")
	batch.Queue(pgInsertTransaction, d.projectID, request.ReferenceID, operationsJSON)
	batch.Queue(pgLockWallets, walletIDs)
	results := connection.SendBatch(ctx, batch)
	var transactionID int64
	locked := make([]lockedWallet, 0, len(walletIDs))
	duplicate := false
	err = func() error {
		if _, err := results.Exec(); err != nil {
			return err
		}
		if err := results.QueryRow().Scan(&transactionID); errors.Is(err, pgx.ErrNoRows) {
			duplicate = true
		} else if err != nil {
			return err
		}
		rows, err := results.Query()
		if err != nil {
			return err
		}
		for rows.Next() {
			var wallet lockedWallet
			if err := rows.Scan(&wallet.id, &wallet.projectID, &wallet.assetID, &wallet.status, &wallet.balance); err != nil {
				rows.Close()
				return err
			}
			locked = append(locked, wallet)
		}
		return rows.Err()
	}()
	if closeError := results.Close(); err == nil {
		err = closeError
	}
	if err != nil {
		rollback(connection)
		return Outcome{}, err
	}
	if duplicate {
		rollback(connection)
		return Outcome{Class: OutcomeError, Kind: "409 DuplicateReferenceId"}, nil
	}
	if len(locked) != len(walletIDs) {
		rollback(connection)
		return Outcome{Class: OutcomeError, Kind: "404 WalletNotFound"}, nil
	}
	for _, wallet := range locked {
		if wallet.projectID != d.projectID {
			rollback(connection)
			return Outcome{Class: OutcomeBusiness, Kind: "422 CrossProjectWallet"}, nil
		}
	}

	// Apply the operations in order under the locks, checking the
	// non-negative rule after each one, exactly like GigaLedger's FSM.
	var entries entryRows
	failedIndex, failureReason := -1, ""
	find := func(walletID int64) *lockedWallet {
		index, _ := slices.BinarySearchFunc(locked, walletID, func(wallet lockedWallet, id int64) int {
			return compareInt64(wallet.id, id)
		})
		return &locked[index]
	}
	for index, operation := range request.Operations {
		var from, to *lockedWallet
		if operation.Type != OperationIssue {
			from = find(d.walletIDs[operation.FromWallet])
		}
		if operation.Type != OperationRedeem {
			to = find(d.walletIDs[operation.ToWallet])
		}
		failureReason = checkOperation(from, to, operation.Amount)
		if failureReason != "" {
			failedIndex = index
			break
		}
		if from != nil {
			from.balance -= operation.Amount
			from.delta -= operation.Amount
			entryType := "debit"
			if to == nil {
				entryType = "redeem"
			}
			entries.add(from.id, index, entryType, operation.Amount, from.balance)
		}
		if to != nil {
			to.balance += operation.Amount
			to.delta += operation.Amount
			entryType := "credit"
			if from == nil {
				entryType = "issue"
			}
			entries.add(to.id, index, entryType, operation.Amount, to.balance)
		}
	}
	if failedIndex >= 0 {
		// The failure consumes the reference ID, as in GigaLedger.
		rollback(connection)
		_, err := connection.Exec(ctx, pgInsertFailed, d.projectID, request.ReferenceID, operationsJSON, failedIndex, failureReason)
		if err != nil {
			return Outcome{}, err
		}
		return Outcome{Class: OutcomeBusiness, Kind: "422 " + failureReason}, nil
	}

	// Round trip 2: write balances and entries, commit.
	batch = &pgx.Batch{}
	for _, wallet := range locked {
		if wallet.delta != 0 {
			batch.Queue(pgUpdateBalance, wallet.id, wallet.delta)
		}
	}
	batch.Queue(pgInsertEntries, transactionID, entries.walletIDs, entries.operationIndexes, entries.types, entries.amounts, entries.balancesAfter)
	batch.Queue("COMMIT")
	results = connection.SendBatch(ctx, batch)
	for range batch.Len() {
		if _, err = results.Exec(); err != nil {
			break
		}
	}
	if closeError := results.Close(); err == nil {
		err = closeError
	}
	if err != nil {
		rollback(connection)
		return Outcome{}, err
	}
	return Outcome{Class: OutcomeOK, Kind: "committed"}, nil
}

func compareInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// checkOperation returns the failure reason of moving amount out of from
// and into to (either may be nil), or "" when the operation may apply.
func checkOperation(from, to *lockedWallet, amount int64) string {
	for _, wallet := range []*lockedWallet{from, to} {
		if wallet == nil {
			continue
		}
		switch wallet.status {
		case "suspended":
			return "WalletSuspended"
		case "closed":
			return "WalletClosed"
		}
	}
	if from != nil && to != nil && from.assetID != to.assetID {
		return "AssetMismatch"
	}
	if from != nil && from.balance < amount {
		return "InsufficientFunds"
	}
	if to != nil && to.balance > math.MaxInt64-amount {
		return "BalanceOverflow"
	}
	return ""
}

// operationsJSON encodes the request's operations as stored in the
// transaction row (the body GigaLedger keeps for idempotent retries).
func (d *pgDriver) operationsJSON(request *Request) string {
	body := make([]byte, 0, 8+len(request.Operations)*72)
	body = append(body, '[')
	for index, operation := range request.Operations {
		if index > 0 {
			body = append(body, ',')
		}
		body = append(body, `{"type":"`...)
		body = append(body, operation.Type.String()...)
		body = append(body, '"')
		if operation.Type != OperationIssue {
			body = append(body, `,"from":`...)
			body = strconv.AppendInt(body, d.walletIDs[operation.FromWallet], 10)
		}
		if operation.Type != OperationRedeem {
			body = append(body, `,"to":`...)
			body = strconv.AppendInt(body, d.walletIDs[operation.ToWallet], 10)
		}
		body = append(body, `,"amount":`...)
		body = strconv.AppendInt(body, operation.Amount, 10)
		body = append(body, '}')
	}
	return string(append(body, ']'))
}

// readWallet is the baseline of GET /projects/{p}/wallets/{w}.
func (d *pgDriver) readWallet(ctx context.Context, wallet int) Outcome {
	var id, balance int64
	var projectID, customerID, assetID, status string
	var createdAt, updatedAt time.Time
	err := d.pool.QueryRow(ctx, pgSelectWallet, d.walletIDs[wallet], d.projectID).
		Scan(&id, &projectID, &customerID, &assetID, &status, &balance, &createdAt, &updatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Outcome{Class: OutcomeError, Kind: "404 WalletNotFound"}
	}
	if err != nil {
		return pgErrorOutcome(err)
	}
	return Outcome{Class: OutcomeOK, Kind: "read"}
}

// readEntries is the baseline of the first entries page of a wallet.
func (d *pgDriver) readEntries(ctx context.Context, wallet int) Outcome {
	to := time.Now().Add(time.Hour)
	rows, err := d.pool.Query(ctx, pgSelectEntries, d.walletIDs[wallet], time.UnixMilli(0), to, entriesPageSize+1)
	if err != nil {
		return pgErrorOutcome(err)
	}
	defer rows.Close()
	for rows.Next() {
		var walletID, transactionID, amount, balanceAfter int64
		var operationIndex int32
		var entryType string
		var createdAt time.Time
		if err := rows.Scan(&walletID, &transactionID, &operationIndex, &entryType, &amount, &balanceAfter, &createdAt); err != nil {
			return pgErrorOutcome(err)
		}
	}
	if err := rows.Err(); err != nil {
		return pgErrorOutcome(err)
	}
	return Outcome{Class: OutcomeOK, Kind: "read"}
}

// transactionFunction runs one ledger transaction through apply_transaction
// in one round trip.
func (d *pgDriver) transactionFunction(ctx context.Context, request *Request) (Outcome, error) {
	count := len(request.Operations)
	types := make([]string, count)
	froms := make([]int64, count)
	tos := make([]int64, count)
	amounts := make([]int64, count)
	for index, operation := range request.Operations {
		types[index] = operation.Type.String()
		amounts[index] = operation.Amount
		if operation.Type != OperationIssue {
			froms[index] = d.walletIDs[operation.FromWallet]
		}
		if operation.Type != OperationRedeem {
			tos[index] = d.walletIDs[operation.ToWallet]
		}
	}
	var result string
	var failedIndex *int32
	err := d.pool.QueryRow(ctx, `SELECT result, failed_index FROM apply_transaction($1, $2, $3, $4, $5, $6, $7)`,
		d.projectID, request.ReferenceID, d.operationsJSON(request), types, froms, tos, amounts).Scan(&result, &failedIndex)
	if err != nil {
		if pgErrorCode(err) == "P0002" {
			return Outcome{Class: OutcomeError, Kind: "404 WalletNotFound"}, nil
		}
		return Outcome{}, err
	}
	switch result {
	case "completed":
		return Outcome{Class: OutcomeOK, Kind: "committed"}, nil
	case "DuplicateReferenceId":
		return Outcome{Class: OutcomeError, Kind: "409 DuplicateReferenceId"}, nil
	}
	return Outcome{Class: OutcomeBusiness, Kind: "422 " + result}, nil
}
