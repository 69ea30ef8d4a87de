package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // the "sqlite" database/sql driver
)

// Engine names a database engine.
type Engine string

// The engines a Store runs on.
const (
	SQLite   Engine = "sqlite"
	Postgres Engine = "postgres"
)

// Errors of the store.
var (
	// ErrDSN: a data source name that names no engine.
	ErrDSN = errors.New("store: unknown data source name")
	// ErrSchema: the database holds a schema newer than this package.
	ErrSchema = errors.New("store: database schema is newer than this program")
	// ErrNotFound: no such run, or no such file (or a revoked one).
	ErrNotFound = errors.New("store: not found")
)

// Store is the history of scans: runs, the rows of each, which
// constituencies each row belonged to when it was imported, and the life
// of each finding. It is safe for concurrent use.
type Store struct {
	db     *sql.DB // writes (and SQLite's one writer)
	r      *sql.DB // reads: on SQLite a pool of read-only connections
	engine Engine
}

// Open opens (creating it if needed) the store named by dsn and applies
// the schema migrations it lacks:
//
//   - "postgres://…" or "postgresql://…" (or "postgres:" followed by
//     pgx's key=value form): PostgreSQL through jackc/pgx;
//   - "sqlite:PATH", "file:PATH…", or a plain path: an SQLite file, opened
//     in WAL mode with foreign keys on.
func Open(ctx context.Context, dsn string) (*Store, error) {
	return open(ctx, dsn, len(migrations))
}

// open opens a store and migrates it up to version.
func open(ctx context.Context, dsn string, version int) (*Store, error) {
	engine, driver, src, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open(driver, src)
	if err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	s := &Store{db: db, engine: engine}
	if engine == SQLite {
		// One writer at a time is SQLite's model; one connection keeps
		// transactions from waiting on each other's locks.
		db.SetMaxOpenConns(1)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open: %w", err)
	}
	if engine == SQLite {
		// The page size holds from the database's first table on, and
		// only until WAL mode is set (which the file then keeps): set both
		// here, in this order. 16 KiB pages hold a report row's line
		// several times over, and a bulk import writes a quarter of the
		// pages.
		for _, p := range []string{"PRAGMA page_size = 16384", "PRAGMA journal_mode = WAL"} {
			if _, err := db.ExecContext(ctx, p); err != nil {
				db.Close()
				return nil, fmt.Errorf("store: open: %w", err)
			}
		}
	}
	if err := s.migrate(ctx, version); err != nil {
		db.Close()
		return nil, err
	}
	s.r = db
	if engine == SQLite {
		// Readers of a WAL database do not wait for the writer nor for
		// each other: queries get connections of their own.
		r, err := sql.Open(driver, src+"&_pragma=query_only(1)")
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("store: open: %w", err)
		}
		r.SetMaxOpenConns(max(4, 2*runtime.GOMAXPROCS(0)))
		s.r = r
	} else {
		// A bounded pool: many concurrent callers wait for a connection
		// rather than exhaust the server's.
		db.SetMaxOpenConns(max(8, 4*runtime.GOMAXPROCS(0)))
	}
	return s, nil
}

func parseDSN(dsn string) (engine Engine, driver, src string, err error) {
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return Postgres, "pgx", dsn, nil
	case strings.HasPrefix(dsn, "postgres:"):
		return Postgres, "pgx", strings.TrimPrefix(dsn, "postgres:"), nil
	case strings.HasPrefix(dsn, "sqlite:"):
		dsn = strings.TrimPrefix(dsn, "sqlite:")
	case strings.Contains(dsn, "://"), dsn == "":
		return "", "", "", fmt.Errorf("%w: %q", ErrDSN, dsn)
	}
	path, query, _ := strings.Cut(strings.TrimPrefix(dsn, "file:"), "?")
	if path == "" || path == ":memory:" || strings.Contains(query, "mode=memory") {
		// (An in-memory database would be a new one on each connection.)
		return "", "", "", fmt.Errorf("%w: %q", ErrDSN, dsn)
	}
	// The page cache is 8 MiB: a bulk import appends, and a larger cache
	// bought it nothing measurable while the process's peak memory grew
	// with it (2.5 times the nominal size, with the C heap's overhead).
	params := []string{"_pragma=foreign_keys(1)", "_pragma=busy_timeout(10000)", "_pragma=synchronous(NORMAL)", "_pragma=cache_size(-8192)", "_txlock=immediate"}
	if query != "" {
		params = append(params, query)
	}
	return SQLite, "sqlite", "file:" + path + "?" + strings.Join(params, "&"), nil
}

// Engine returns the engine the store runs on.
func (s *Store) Engine() Engine { return s.engine }

// DB returns the database handle, for queries of one's own.
func (s *Store) DB() *sql.DB { return s.db }

// Close closes the store.
func (s *Store) Close() error {
	err := s.db.Close()
	if s.r != s.db {
		err = errors.Join(err, s.r.Close())
	}
	return err
}

// q adapts a query written with ? placeholders and the type words BLOB,
// BIGINT, REAL and SERIAL to the engine.
func (s *Store) q(query string) string { return adapt(s.engine, query) }

func adapt(e Engine, query string) string {
	if e != Postgres {
		query = strings.ReplaceAll(query, "SERIAL PRIMARY KEY", "INTEGER PRIMARY KEY")
		query = strings.ReplaceAll(query, ` COLLATE "C"`, "")
		return query
	}
	query = strings.ReplaceAll(query, " WITHOUT ROWID", "")
	query = strings.ReplaceAll(query, "GROUP_CONCAT(", "STRING_AGG(")
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	out := b.String()
	for _, r := range [][2]string{{"BLOB", "BYTEA"}, {"REAL", "DOUBLE PRECISION"}, {"SERIAL PRIMARY KEY", "BIGSERIAL PRIMARY KEY"}} {
		out = strings.ReplaceAll(out, r[0], r[1])
	}
	return out
}

// migrations are the schema's versions, applied in order, each once.
// Times are Unix microseconds (UTC); addresses are kept as text (as in
// the report) and as 16 octets (IPv4 mapped) so ranges compare. The bulk
// tables (rows, member_sets) carry no foreign key: they are written only
// by an import, in the transaction that inserts their run, and a
// per-row reference check would cost PostgreSQL's COPY half its speed.
var migrations = []string{
	// 1: runs, their target space, rows, memberships, findings.
	`CREATE TABLE runs (
		id SERIAL PRIMARY KEY,
		uid TEXT NOT NULL UNIQUE,
		source TEXT NOT NULL,
		day TEXT NOT NULL,
		started BIGINT NOT NULL,
		finished BIGINT NOT NULL,
		probes TEXT NOT NULL,
		complete INTEGER NOT NULL,
		interrupted INTEGER NOT NULL,
		scanner TEXT NOT NULL,
		stats TEXT NOT NULL,
		rows_total BIGINT NOT NULL
	);
	CREATE TABLE run_space (
		run_id BIGINT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
		first BLOB NOT NULL,
		last BLOB NOT NULL
	);
	CREATE INDEX run_space_run ON run_space(run_id);
	CREATE TABLE run_types (
		run_id BIGINT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
		type TEXT NOT NULL,
		PRIMARY KEY (run_id, type)
	);
	CREATE TABLE rows (
		run_id BIGINT NOT NULL,
		row_no BIGINT NOT NULL,
		type TEXT NOT NULL,
		ip TEXT NOT NULL,
		ip_bin BLOB NOT NULL,
		port INTEGER NOT NULL,
		protocol TEXT NOT NULL,
		asn BIGINT NOT NULL,
		geo TEXT NOT NULL,
		daemon TEXT NOT NULL,
		amplification REAL NOT NULL,
		ts TEXT NOT NULL,
		hash BLOB NOT NULL,
		line TEXT NOT NULL,
		extra TEXT NOT NULL,
		PRIMARY KEY (run_id, row_no)
	);
	CREATE INDEX rows_addr ON rows(ip_bin, type, port, protocol, run_id);
	CREATE TABLE row_members (
		run_id BIGINT NOT NULL,
		constituency TEXT NOT NULL,
		row_no BIGINT NOT NULL,
		PRIMARY KEY (run_id, constituency, row_no)
	);
	CREATE TABLE episodes (
		ip_bin BLOB NOT NULL,
		type TEXT NOT NULL,
		port INTEGER NOT NULL,
		protocol TEXT NOT NULL,
		opened_at BIGINT NOT NULL,
		ip TEXT NOT NULL,
		last_seen BIGINT NOT NULL,
		misses INTEGER NOT NULL,
		fixed_at BIGINT,
		fixed_run BIGINT,
		PRIMARY KEY (ip_bin, type, port, protocol, opened_at)
	);
	CREATE INDEX episodes_fixed_run ON episodes(fixed_run)`,

	// 2: a row names its set of constituencies (member_sets, a handful
	// per run) instead of one membership row per constituency; rows and
	// episodes are kept in their primary keys' order (SQLite's WITHOUT
	// ROWID: one B-tree, not a table and an index), only fixed episodes
	// are indexed by the run that fixed them, and the text columns that
	// are compared or sorted compare by their bytes on both engines
	// (PostgreSQL's "C" collation is SQLite's BINARY): faster than a
	// locale's rules, and the same order everywhere.
	`CREATE TABLE member_sets (
		run_id BIGINT NOT NULL,
		set_no BIGINT NOT NULL,
		constituency TEXT COLLATE "C" NOT NULL,
		PRIMARY KEY (run_id, set_no, constituency)
	) WITHOUT ROWID;
	CREATE TABLE m2_keys AS SELECT run_id, row_no, GROUP_CONCAT(constituency, ' ') AS k FROM row_members GROUP BY run_id, row_no;
	CREATE TABLE m2_sets AS SELECT run_id, k, ROW_NUMBER() OVER (PARTITION BY run_id ORDER BY k) AS set_no
		FROM (SELECT DISTINCT run_id, k FROM m2_keys) d;
	INSERT INTO member_sets (run_id, set_no, constituency)
		SELECT DISTINCT m.run_id, n.set_no, m.constituency FROM row_members m
		JOIN m2_keys s ON s.run_id = m.run_id AND s.row_no = m.row_no
		JOIN m2_sets n ON n.run_id = s.run_id AND n.k = s.k;
	CREATE TABLE rows_v2 (
		run_id BIGINT NOT NULL,
		row_no BIGINT NOT NULL,
		type TEXT COLLATE "C" NOT NULL,
		ip TEXT COLLATE "C" NOT NULL,
		ip_bin BLOB NOT NULL,
		port INTEGER NOT NULL,
		protocol TEXT COLLATE "C" NOT NULL,
		asn BIGINT NOT NULL,
		geo TEXT COLLATE "C" NOT NULL,
		daemon TEXT COLLATE "C" NOT NULL,
		amplification REAL NOT NULL,
		ts TEXT NOT NULL,
		hash BLOB NOT NULL,
		line TEXT NOT NULL,
		extra TEXT NOT NULL,
		mset BIGINT NOT NULL,
		PRIMARY KEY (run_id, row_no)
	) WITHOUT ROWID;
	INSERT INTO rows_v2 SELECT r.run_id, r.row_no, r.type, r.ip, r.ip_bin, r.port, r.protocol, r.asn, r.geo, r.daemon,
			r.amplification, r.ts, r.hash, r.line, r.extra, COALESCE(n.set_no, 0)
		FROM rows r LEFT JOIN m2_keys s ON s.run_id = r.run_id AND s.row_no = r.row_no
		LEFT JOIN m2_sets n ON n.run_id = s.run_id AND n.k = s.k;
	DROP TABLE rows;
	DROP TABLE row_members;
	DROP TABLE m2_keys;
	DROP TABLE m2_sets;
	ALTER TABLE rows_v2 RENAME TO rows;
	CREATE INDEX rows_addr ON rows(ip_bin, type, port, protocol, run_id);
	CREATE TABLE episodes_v2 (
		ip_bin BLOB NOT NULL,
		type TEXT COLLATE "C" NOT NULL,
		port INTEGER NOT NULL,
		protocol TEXT COLLATE "C" NOT NULL,
		opened_at BIGINT NOT NULL,
		ip TEXT COLLATE "C" NOT NULL,
		last_seen BIGINT NOT NULL,
		misses INTEGER NOT NULL,
		fixed_at BIGINT,
		fixed_run BIGINT,
		PRIMARY KEY (ip_bin, type, port, protocol, opened_at)
	) WITHOUT ROWID;
	INSERT INTO episodes_v2 SELECT ip_bin, type, port, protocol, opened_at, ip, last_seen, misses, fixed_at, fixed_run FROM episodes;
	DROP TABLE episodes;
	ALTER TABLE episodes_v2 RENAME TO episodes;
	CREATE INDEX episodes_fixed_run ON episodes(fixed_run) WHERE fixed_run IS NOT NULL`,

	// 3: the report files handed out for download, each under an
	// unguessable token (the only credential a download carries).
	`CREATE TABLE files (
		token TEXT COLLATE "C" PRIMARY KEY,
		run_id BIGINT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
		type TEXT COLLATE "C" NOT NULL,
		constituency TEXT COLLATE "C" NOT NULL,
		delta INTEGER NOT NULL,
		name TEXT NOT NULL,
		created BIGINT NOT NULL,
		revoked BIGINT,
		UNIQUE (run_id, type, constituency, delta)
	)`,

	// 4: each run's number of rows per constituency ('' for all) and
	// report type, counted at import: what lists of reports ask for; and
	// the rows by their constituency set, for one constituency's report.
	`CREATE INDEX rows_sets ON rows(run_id, mset, row_no);
	CREATE TABLE run_counts (
		run_id BIGINT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
		constituency TEXT COLLATE "C" NOT NULL,
		type TEXT COLLATE "C" NOT NULL,
		n_rows BIGINT NOT NULL,
		PRIMARY KEY (run_id, constituency, type)
	);
	INSERT INTO run_counts (run_id, constituency, type, n_rows)
		SELECT r.run_id, '', r.type, COUNT(*) FROM rows r GROUP BY r.run_id, r.type;
	INSERT INTO run_counts (run_id, constituency, type, n_rows)
		SELECT r.run_id, m.constituency, r.type, COUNT(*) FROM rows r JOIN member_sets m ON m.run_id = r.run_id AND m.set_no = r.mset
		GROUP BY r.run_id, m.constituency, r.type`,

	// 5: the mail delivery log: each report (run, type, constituency)
	// to each contact, its state, Message-ID and the relay's answer.
	`CREATE TABLE deliveries (
		run_id BIGINT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
		type TEXT COLLATE "C" NOT NULL,
		constituency TEXT COLLATE "C" NOT NULL,
		contact TEXT COLLATE "C" NOT NULL,
		status TEXT NOT NULL,
		message_id TEXT NOT NULL,
		answer TEXT NOT NULL,
		attempts INTEGER NOT NULL,
		updated BIGINT NOT NULL,
		PRIMARY KEY (run_id, type, constituency, contact)
	)`,

	// 6: a report too large for one mail goes in parts, each its own
	// mail (part k of parts; part 0 of 1 is the whole report); a run
	// claims a mail before sending it, holder and lease saying which run
	// and until when, so that two runs at once do not both send it.
	`CREATE TABLE deliveries6 (
		run_id BIGINT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
		type TEXT COLLATE "C" NOT NULL,
		constituency TEXT COLLATE "C" NOT NULL,
		contact TEXT COLLATE "C" NOT NULL,
		part INTEGER NOT NULL,
		parts INTEGER NOT NULL,
		status TEXT NOT NULL,
		message_id TEXT NOT NULL,
		answer TEXT NOT NULL,
		attempts INTEGER NOT NULL,
		updated BIGINT NOT NULL,
		holder TEXT NOT NULL,
		lease BIGINT NOT NULL,
		PRIMARY KEY (run_id, type, constituency, contact, part)
	);
	INSERT INTO deliveries6 (run_id, type, constituency, contact, part, parts, status, message_id, answer, attempts, updated, holder, lease)
		SELECT run_id, type, constituency, contact, 0, 1, status, message_id, answer, attempts, updated, '', 0 FROM deliveries;
	DROP TABLE deliveries;
	ALTER TABLE deliveries6 RENAME TO deliveries`,
}

// migrate applies the migrations the database lacks, in one transaction.
func (s *Store) migrate(ctx context.Context, version int) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	defer tx.Rollback()
	if s.engine == Postgres {
		// Two programs opening a new database at once: one migrates.
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(7236051)`); err != nil {
			return fmt.Errorf("store: migrate: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	var v int
	err = tx.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (0)`); err != nil {
			return fmt.Errorf("store: migrate: %w", err)
		}
	case err != nil:
		return fmt.Errorf("store: migrate: %w", err)
	}
	if v > len(migrations) {
		return fmt.Errorf("%w: version %d, this program knows %d", ErrSchema, v, len(migrations))
	}
	for i := v; i < version; i++ {
		for _, stmt := range strings.Split(migrations[i], ";") {
			if strings.TrimSpace(stmt) == "" {
				continue
			}
			if _, err := tx.ExecContext(ctx, s.q(stmt)); err != nil {
				return fmt.Errorf("store: migration %d: %w", i+1, err)
			}
		}
	}
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE schema_version SET version = ?`), max(v, version)); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	return tx.Commit()
}

// SchemaVersion returns the schema version of the database.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.db.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v)
	return v, err
}
