package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/ntpctl/ntpctl/report"
)

// MaxRowErrors is how many skipped rows an ImportResult describes; the
// rest are only counted.
const MaxRowErrors = 1000

// ImportOptions configures an import. The zero value works: rows belong
// to no constituency.
type ImportOptions struct {
	// Constituencies maps each row to the constituencies it belongs to,
	// at import time: renumbering later does not rewrite history.
	Constituencies *Constituencies
}

// ImportResult says what an import did.
type ImportResult struct {
	// Run is the run imported, or the one already in the store with the
	// same content.
	Run Run
	// Created is false when the store already held the run.
	Created bool
	// Skipped counts the malformed rows left out; RowErrors describes the
	// first MaxRowErrors of them (each a *report.RowError with its line).
	Skipped   int
	RowErrors []error
}

// Import stores a run and its rows, maps each row to its constituencies,
// and updates the life of every finding the run's report types cover, all
// in one transaction: an import that fails or is cancelled leaves the
// store as it was. rows may yield *report.RowError values, which are
// counted and skipped; any other error aborts the import.
//
// A run whose content (its UID, derived from Stats and the rows when
// empty) is already stored is not stored again. Runs may be imported in
// any order: one older than the newest already stored makes the store
// replay every run's rows in time order to rebuild the findings.
func (s *Store) Import(ctx context.Context, run Run, rows iter.Seq2[Row, error], opt ImportOptions) (ImportResult, error) {
	if run.UID != "" {
		if r, err := s.runByUID(ctx, run.UID); err == nil {
			return ImportResult{Run: r}, nil
		} else if !errors.Is(err, ErrNotFound) {
			return ImportResult{}, err
		}
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return ImportResult{}, fmt.Errorf("store: import: %w", err)
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return ImportResult{}, fmt.Errorf("store: import: %w", err)
	}
	defer tx.Rollback()
	if s.engine == Postgres {
		// Imports are serialised: each replays the findings' life in
		// run order.
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(7236052)`); err != nil {
			return ImportResult{}, fmt.Errorf("store: import: %w", err)
		}
	}
	res, err := s.importTx(ctx, conn, tx, run, rows, opt)
	if err != nil {
		return ImportResult{}, err
	}
	if !res.Created {
		return res, nil
	}
	if err := tx.Commit(); err != nil {
		conn.Close() // SQLite has one connection: give it back first
		if r, err2 := s.runByUID(ctx, res.Run.UID); err2 == nil {
			// Another importer stored the same content first.
			return ImportResult{Run: r}, nil
		}
		return ImportResult{}, fmt.Errorf("store: import: %w", err)
	}
	return res, nil
}

func (s *Store) importTx(ctx context.Context, conn *sql.Conn, tx *sql.Tx, run Run, rows iter.Seq2[Row, error], opt ImportOptions) (ImportResult, error) {
	var res ImportResult
	pending := make([]byte, 16)
	_, _ = rand.Read(pending)
	stats := string(run.Stats)
	if stats == "" {
		stats = "{}"
	}
	err := tx.QueryRowContext(ctx, s.q(`INSERT INTO runs (uid, source, day, started, finished, probes, complete, interrupted, scanner, stats, rows_total)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0) RETURNING id`),
		"pending:"+hex.EncodeToString(pending), run.Source, run.Day(), run.Started.UnixMicro(), run.Finished.UnixMicro(),
		typeNames(run.Types), boolInt(run.Complete), boolInt(run.Interrupted), run.Scanner, stats).Scan(&run.ID)
	if err != nil {
		return res, fmt.Errorf("store: import: %w", err)
	}
	for _, t := range uniqueTypes(run.Types) {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO run_types (run_id, type) VALUES (?, ?)`), run.ID, string(t)); err != nil {
			return res, fmt.Errorf("store: import: %w", err)
		}
	}
	for _, r := range run.Space {
		first, last := rangeBins(r)
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO run_space (run_id, first, last) VALUES (?, ?, ?)`), run.ID, first, last); err != nil {
			return res, fmt.Errorf("store: import: %w", err)
		}
	}

	// The rows, through a filter that counts the bad ones, hashes the
	// good ones for the UID and maps them to constituencies.
	h := sha256.New()
	h.Write([]byte(run.Started.UTC().Format(time.RFC3339Nano) + " " + typeNames(run.Types) + "\n"))
	h.Write(run.Stats)
	var members []member
	var idx []int
	var n int64
	var abort error
	good := func(yield func(Row) bool) {
		for row, err := range rows {
			if err != nil {
				var re *report.RowError
				if !errors.As(err, &re) {
					abort = err
					return
				}
				res.Skipped++
				if len(res.RowErrors) < MaxRowErrors {
					res.RowErrors = append(res.RowErrors, err)
				}
				continue
			}
			h.Write([]byte(row.Type))
			h.Write([]byte{'\n'})
			h.Write([]byte(row.Line))
			h.Write([]byte{'\n'})
			if opt.Constituencies != nil {
				idx = opt.Constituencies.Match(idx[:0], row.Key)
				for _, i := range idx {
					members = append(members, member{opt.Constituencies.List[i].Name, n})
				}
			}
			n++
			if !yield(row) {
				return
			}
		}
	}
	if s.engine == Postgres {
		err = s.copyRows(ctx, conn, run.ID, good, &members)
	} else {
		err = s.insertRows(ctx, tx, run.ID, good, &members)
	}
	if err == nil {
		err = abort
	}
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return res, fmt.Errorf("store: import: %w", err)
	}
	if run.UID == "" {
		run.UID = hex.EncodeToString(h.Sum(nil))
	}
	if r, err := s.runByUIDTx(ctx, tx, run.UID); err == nil {
		return ImportResult{Run: r}, nil // the deferred rollback drops this copy
	}
	run.Rows = n
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE runs SET uid = ?, rows_total = ? WHERE id = ?`), run.UID, n, run.ID); err != nil {
		return res, fmt.Errorf("store: import: %w", err)
	}
	// The findings: apply this run if it is the newest, else replay all.
	var newer int
	if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM runs WHERE id <> ? AND (started > ? OR (started = ? AND id > ?))`),
		run.ID, run.Started.UnixMicro(), run.Started.UnixMicro(), run.ID).Scan(&newer); err != nil {
		return res, fmt.Errorf("store: import: %w", err)
	}
	if newer == 0 {
		err = s.apply(ctx, tx, run.ID)
	} else {
		err = s.rebuild(ctx, tx)
	}
	if err != nil {
		return res, fmt.Errorf("store: import: findings: %w", err)
	}
	res.Run, res.Created = run, true
	return res, nil
}

type member struct {
	name  string
	rowNo int64
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func uniqueTypes(ts []report.Type) []report.Type {
	var out []report.Type
	for _, t := range ts {
		if t.Known() && !contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

func contains[T comparable](s []T, v T) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// rowColumns are the columns of the rows table an import fills.
var rowColumns = []string{"run_id", "row_no", "type", "ip", "ip_bin", "port", "protocol", "asn", "geo", "daemon", "amplification", "ts", "hash", "line", "extra"}

func rowValues(runID, no int64, r *Row) []any {
	return []any{runID, no, string(r.Type), r.IP, ipBin(r.Key.IP), r.Port, r.Protocol, int64(r.Key.ASN),
		r.Key.Country, r.Daemon, r.Amplification, r.Timestamp, r.Hash[:], r.Line, r.Extra}
}

// insertRows is SQLite's bulk path: prepared statements in the import's
// transaction, several rows per statement.
func (s *Store) insertRows(ctx context.Context, tx *sql.Tx, runID int64, rows iter.Seq[Row], members *[]member) error {
	const batch = 32 // 32 × 15 parameters, well under SQLite's limit
	one := "(" + placeholders(len(rowColumns)) + ")"
	stmtFor := map[int]*sql.Stmt{}
	defer func() {
		for _, st := range stmtFor {
			st.Close()
		}
	}()
	prepare := func(k int) (*sql.Stmt, error) {
		if st, ok := stmtFor[k]; ok {
			return st, nil
		}
		q := "INSERT INTO rows (" + join(rowColumns) + ") VALUES " + repeat(one, k)
		st, err := tx.PrepareContext(ctx, q)
		if err == nil {
			stmtFor[k] = st
		}
		return st, err
	}
	args := make([]any, 0, batch*len(rowColumns))
	k := 0
	flush := func() error {
		if k == 0 {
			return nil
		}
		st, err := prepare(k)
		if err != nil {
			return err
		}
		_, err = st.ExecContext(ctx, args...)
		args, k = args[:0], 0
		if err != nil {
			return err
		}
		return s.flushMembers(ctx, tx, runID, members)
	}
	var no int64
	for r := range rows {
		args = append(args, rowValues(runID, no, &r)...)
		no++
		k++
		if k == batch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// flushMembers inserts the memberships gathered so far.
func (s *Store) flushMembers(ctx context.Context, tx *sql.Tx, runID int64, members *[]member) error {
	ms := *members
	for len(ms) > 0 {
		k := min(len(ms), 100)
		args := make([]any, 0, 3*k)
		for _, m := range ms[:k] {
			args = append(args, runID, m.name, m.rowNo)
		}
		q := "INSERT INTO row_members (run_id, constituency, row_no) VALUES " + repeat("(?, ?, ?)", k)
		if _, err := tx.ExecContext(ctx, s.q(q), args...); err != nil {
			return err
		}
		ms = ms[k:]
	}
	*members = (*members)[:0]
	return nil
}

// copyRows is PostgreSQL's bulk path: COPY, inside the import's
// transaction (the same connection), in chunks so that the memberships
// gathered for a chunk are written after it and memory stays flat.
func (s *Store) copyRows(ctx context.Context, conn *sql.Conn, runID int64, rows iter.Seq[Row], members *[]member) error {
	return conn.Raw(func(dc any) error {
		pc := dc.(*stdlib.Conn).Conn()
		next, stop := iter.Pull(rows)
		defer stop()
		src := &rowSource{next: next, runID: runID}
		for !src.done {
			src.left = copyChunk
			if _, err := pc.CopyFrom(ctx, pgx.Identifier{"rows"}, rowColumns, src); err != nil {
				return err
			}
			ms := *members
			if len(ms) > 0 {
				_, err := pc.CopyFrom(ctx, pgx.Identifier{"row_members"}, []string{"run_id", "constituency", "row_no"},
					pgx.CopyFromSlice(len(ms), func(i int) ([]any, error) { return []any{runID, ms[i].name, ms[i].rowNo}, nil }))
				if err != nil {
					return err
				}
			}
			*members = ms[:0]
		}
		return nil
	})
}

// copyChunk is the number of rows per COPY.
const copyChunk = 50000

// rowSource feeds COPY from a pull iterator, left rows at a time.
type rowSource struct {
	next  func() (Row, bool)
	runID int64
	no    int64
	left  int
	done  bool
	cur   Row
}

func (r *rowSource) Next() bool {
	if r.left == 0 || r.done {
		return false
	}
	row, ok := r.next()
	if !ok {
		r.done = true
		return false
	}
	r.cur = row
	r.left--
	return true
}

func (r *rowSource) Values() ([]any, error) {
	v := rowValues(r.runID, r.no, &r.cur)
	r.no++
	return v, nil
}

func (r *rowSource) Err() error { return nil }

func placeholders(n int) string { return repeatSep("?", n, ", ") }
func repeat(s string, n int) string {
	return repeatSep(s, n, ", ")
}
func repeatSep(s string, n int, sep string) string {
	b := make([]byte, 0, n*(len(s)+len(sep)))
	for i := range n {
		if i > 0 {
			b = append(b, sep...)
		}
		b = append(b, s...)
	}
	return string(b)
}
func join(cols []string) string { return repeatJoin(cols, ", ") }
func repeatJoin(cols []string, sep string) string {
	var b []byte
	for i, c := range cols {
		if i > 0 {
			b = append(b, sep...)
		}
		b = append(b, c...)
	}
	return string(b)
}
