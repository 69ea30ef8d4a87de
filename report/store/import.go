package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
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
		// Grouping a run's findings to open their episodes hashes them
		// all: in memory, not in spilled batches.
		if _, err := tx.ExecContext(ctx, `SET LOCAL work_mem = '256MB'`); err != nil {
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

	// The rows: read, checked, hashed for the UID and mapped to
	// constituencies on one goroutine (read), written on this one, a
	// batch at a time.
	h := sha256.New()
	h.Write([]byte(run.Started.UTC().Format(time.RFC3339Nano) + " " + typeNames(run.Types) + "\n"))
	h.Write(run.Stats)
	rd := &reader{rows: rows, cs: opt.Constituencies, h: h, res: &res}
	batches, stop := rd.start(ctx)
	if s.engine == Postgres {
		err = s.copyRows(ctx, conn, run.ID, batches)
	} else {
		err = s.insertRows(ctx, conn, run.ID, batches)
	}
	stop() // and wait: the reader's counts are final after it
	if err == nil {
		err = rd.abort
	}
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return res, fmt.Errorf("store: import: %w", err)
	}
	n := rd.n
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
	for k, n := range rd.runCounts() {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO run_counts (run_id, constituency, type, n_rows) VALUES (?, ?, ?, ?)`),
			run.ID, k[0], k[1], n); err != nil {
			return res, fmt.Errorf("store: import: %w", err)
		}
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

// memberSet is a set of constituencies rows of a run belong to,
// numbered from 1 in the order the run first meets them (0: none).
type memberSet struct {
	no    int64
	names []string
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
var rowColumns = []string{"run_id", "row_no", "type", "ip", "ip_bin", "port", "protocol", "asn", "geo", "daemon", "amplification", "ts", "hash", "line", "extra", "mset"}

func appendRowValues(dst []any, runID, no int64, r *Row, mset int64) []any {
	return append(dst, runID, no, string(r.Type), r.IP, ipBin(r.Key.IP), int64(r.Port), r.Protocol, int64(r.Key.ASN),
		r.Key.Country, r.Daemon, r.Amplification, r.Timestamp, r.Hash[:], r.Line, r.Extra, mset)
}

// batchSize is the number of rows the reader hands over at a time.
const batchSize = 512

// batch is a run of rows, the constituency set of each, and the sets
// first met in it.
type batch struct {
	rows  []Row
	msets []int64
	first int64 // the row number of rows[0]
	sets  []memberSet
}

// reader reads an import's rows on a goroutine of its own: it skips and
// counts the malformed ones, hashes the others for the run's UID, maps
// them to constituencies and hands them over in batches.
type reader struct {
	rows  iter.Seq2[Row, error]
	cs    *Constituencies
	h     hash.Hash
	res   *ImportResult
	n     int64 // rows read
	abort error // what stopped the rows, other than a malformed row
	// counts tallies the rows by type and constituency set; setNames[i]
	// are the constituencies of set i+1.
	counts   map[tally]int64
	setNames [][]string
}

type tally struct {
	t    report.Type
	mset int64
}

// runCounts returns the rows per constituency ("" for all) and type.
func (rd *reader) runCounts() map[[2]string]int64 {
	out := map[[2]string]int64{}
	for k, n := range rd.counts {
		out[[2]string{"", string(k.t)}] += n
		if k.mset > 0 {
			for _, c := range rd.setNames[k.mset-1] {
				out[[2]string{c, string(k.t)}] += n
			}
		}
	}
	return out
}

// start starts the reader. next returns the batches in order until the
// rows end; stop ends the reader early if need be and waits for it.
func (rd *reader) start(ctx context.Context) (next func() (*batch, bool), stop func()) {
	out := make(chan *batch, 4)
	// The writer is done with a batch when it asks for the next one: the
	// reader fills it again.
	free := make(chan *batch, cap(out)+2)
	fresh := func(first int64) *batch {
		select {
		case b := <-free:
			clear(b.sets)
			b.rows, b.msets, b.sets, b.first = b.rows[:0], b.msets[:0], b.sets[:0], first
			return b
		default:
			return &batch{rows: make([]Row, 0, batchSize), msets: make([]int64, 0, batchSize), first: first}
		}
	}
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(out)
		var idx []int
		var key []byte
		sets := map[string]int64{}
		b := fresh(0)
		send := func() bool {
			select {
			case out <- b:
				b = fresh(rd.n)
				return true
			case <-quit:
				return false
			case <-ctx.Done():
				return false
			}
		}
		for row, err := range rd.rows {
			if err != nil {
				var re *report.RowError
				if !errors.As(err, &re) {
					rd.abort = err
					return
				}
				rd.res.Skipped++
				if len(rd.res.RowErrors) < MaxRowErrors {
					rd.res.RowErrors = append(rd.res.RowErrors, err)
				}
				continue
			}
			rd.h.Write([]byte(row.Type))
			rd.h.Write([]byte{'\n'})
			rd.h.Write([]byte(row.Line))
			rd.h.Write([]byte{'\n'})
			var mset int64
			if rd.cs != nil {
				if idx = rd.cs.Match(idx[:0], row.Key); len(idx) > 0 {
					key = key[:0]
					for _, i := range idx {
						key = binary.AppendUvarint(key, uint64(i))
					}
					if mset = sets[string(key)]; mset == 0 {
						mset = int64(len(sets) + 1)
						sets[string(key)] = mset
						names := make([]string, len(idx))
						for j, i := range idx {
							names[j] = rd.cs.List[i].Name
						}
						b.sets = append(b.sets, memberSet{mset, names})
						rd.setNames = append(rd.setNames, names)
					}
				}
			}
			if rd.counts == nil {
				rd.counts = map[tally]int64{}
			}
			rd.counts[tally{row.Type, mset}]++
			b.rows = append(b.rows, row)
			b.msets = append(b.msets, mset)
			rd.n++
			if len(b.rows) == batchSize && !send() {
				return
			}
		}
		if len(b.rows) > 0 {
			send()
		}
	}()
	var prev *batch
	next = func() (*batch, bool) {
		if prev != nil {
			select {
			case free <- prev:
			default:
			}
		}
		b, ok := <-out
		prev = b
		return b, ok
	}
	stop = func() {
		close(quit)
		<-done
	}
	return next, stop
}

// insertRows is SQLite's bulk path: prepared statements in the import's
// transaction, several rows per statement, executed on the driver's
// connection itself (the same one) with one reused argument list.
func (s *Store) insertRows(ctx context.Context, conn *sql.Conn, runID int64, next func() (*batch, bool)) error {
	const per = 64 // rows per statement: 64 × 16 parameters, well under SQLite's limit (32,766)
	return conn.Raw(func(dc any) error {
		c, ok := dc.(interface {
			driver.ConnPrepareContext
			driver.ExecerContext
		})
		if !ok {
			return fmt.Errorf("driver connection %T cannot prepare statements", dc)
		}
		one := "(" + placeholders(len(rowColumns)) + ")"
		stmts := map[int]driver.StmtExecContext{}
		defer func() {
			for _, st := range stmts {
				st.(driver.Stmt).Close()
			}
		}()
		prepare := func(k int) (driver.StmtExecContext, error) {
			if st, ok := stmts[k]; ok {
				return st, nil
			}
			st, err := c.PrepareContext(ctx, "INSERT INTO rows ("+join(rowColumns)+") VALUES "+repeat(one, k))
			if err != nil {
				return nil, err
			}
			se, ok := st.(driver.StmtExecContext)
			if !ok {
				st.Close()
				return nil, fmt.Errorf("driver statement %T cannot execute with a context", st)
			}
			stmts[k] = se
			return se, nil
		}
		args := make([]driver.NamedValue, per*len(rowColumns))
		for i := range args {
			args[i].Ordinal = i + 1
		}
		var vals []any
		for {
			b, ok := next()
			if !ok {
				return nil
			}
			for _, set := range b.sets {
				for _, name := range set.names {
					_, err := c.ExecContext(ctx, `INSERT INTO member_sets (run_id, set_no, constituency) VALUES (?, ?, ?)`,
						[]driver.NamedValue{{Ordinal: 1, Value: runID}, {Ordinal: 2, Value: set.no}, {Ordinal: 3, Value: name}})
					if err != nil {
						return err
					}
				}
			}
			for i := 0; i < len(b.rows); i += per {
				k := min(per, len(b.rows)-i)
				st, err := prepare(k)
				if err != nil {
					return err
				}
				vals = vals[:0]
				for j := i; j < i+k; j++ {
					vals = appendRowValues(vals, runID, b.first+int64(j), &b.rows[j], b.msets[j])
				}
				for j, v := range vals {
					args[j].Value = v
				}
				if _, err := st.ExecContext(ctx, args[:len(vals)]); err != nil {
					return err
				}
			}
		}
	})
}

// copyRows is PostgreSQL's bulk path: COPY, inside the import's
// transaction (the same connection), one COPY of rows per copyChunk rows
// (so that memory stays flat), then one of the constituency sets they
// brought.
func (s *Store) copyRows(ctx context.Context, conn *sql.Conn, runID int64, next func() (*batch, bool)) error {
	return conn.Raw(func(dc any) error {
		pc := dc.(*stdlib.Conn).Conn()
		src := &rowSource{next: next, runID: runID}
		for !src.done {
			src.left = copyChunk
			if _, err := pc.CopyFrom(ctx, pgx.Identifier{"rows"}, rowColumns, src); err != nil {
				return err
			}
			var sets [][]any
			for _, set := range src.sets {
				for _, name := range set.names {
					sets = append(sets, []any{runID, set.no, name})
				}
			}
			if len(sets) > 0 {
				if _, err := pc.CopyFrom(ctx, pgx.Identifier{"member_sets"}, []string{"run_id", "set_no", "constituency"}, pgx.CopyFromRows(sets)); err != nil {
					return err
				}
			}
			src.sets = src.sets[:0]
		}
		return nil
	})
}

// copyChunk is about the number of rows per COPY (whole batches).
const copyChunk = 50000

// rowSource feeds COPY from the reader's batches, about left rows at a
// time, gathering the constituency sets they bring.
type rowSource struct {
	next  func() (*batch, bool)
	runID int64
	left  int
	done  bool
	cur   *batch
	i     int
	sets  []memberSet
	vals  []any
}

func (r *rowSource) Next() bool {
	if r.cur != nil && r.i+1 < len(r.cur.rows) {
		r.i++
		return true
	}
	if r.left <= 0 || r.done {
		return false
	}
	b, ok := r.next()
	if !ok {
		r.done = true
		return false
	}
	r.cur, r.i = b, 0
	r.left -= len(b.rows)
	r.sets = append(r.sets, b.sets...)
	return len(b.rows) > 0 || r.Next()
}

func (r *rowSource) Values() ([]any, error) {
	r.vals = appendRowValues(r.vals[:0], r.runID, r.cur.first+int64(r.i), &r.cur.rows[r.i], r.cur.msets[r.i])
	return r.vals, nil
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
