package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/report"
)

// File is one report handed out for download: a day's rows of one type
// for one constituency (or its delta), under a token.
type File struct {
	// Token is the file's download id: 32 hex digits (128 random bits),
	// the only credential a download carries.
	Token        string
	RunID        int64
	Day          string // YYYY-MM-DD
	Type         report.Type
	Constituency string
	// Delta marks the file of a delta day: only the rows that changed.
	Delta bool
	// Name is the file name (YYYY-MM-DD-<type>-<org>-<filter>.csv).
	Name    string
	Created time.Time
	// Revoked is when the token was revoked; zero while it is valid.
	Revoked time.Time
}

// TokenLen is the length of a download token.
const TokenLen = 32

// Publish returns the file of a run's rows of type t for a constituency,
// creating it with a new random token the first time it is asked for: a
// file keeps its token until it is revoked (and a revoked file is not
// published again).
func (s *Store) Publish(ctx context.Context, runID int64, t report.Type, constituency string, delta bool, name string) (File, error) {
	const where = `f.run_id = ? AND f.type = ? AND f.constituency = ? AND f.delta = ?`
	// Read first: listing files must not take the write lock each time.
	if f, err := s.file(ctx, where, runID, string(t), constituency, boolInt(delta)); !errors.Is(err, ErrNotFound) {
		return f, err
	}
	var raw [TokenLen / 2]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return File{}, fmt.Errorf("store: publish: %w", err)
	}
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO files (token, run_id, type, constituency, delta, name, created)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`),
		hex.EncodeToString(raw[:]), runID, string(t), constituency, boolInt(delta), name, time.Now().UnixMicro())
	if err != nil {
		return File{}, fmt.Errorf("store: publish: %w", err)
	}
	return s.file(ctx, where, runID, string(t), constituency, boolInt(delta))
}

// FileByToken returns the file of a download token; ErrNotFound when
// there is none or it was revoked.
func (s *Store) FileByToken(ctx context.Context, token string) (File, error) {
	if !isToken(token) {
		return File{}, ErrNotFound
	}
	f, err := s.file(ctx, `f.token = ?`, token)
	if err != nil {
		return File{}, err
	}
	if !f.Revoked.IsZero() {
		return File{}, ErrNotFound
	}
	return f, nil
}

// Revoke revokes a download token: the file is no longer served.
func (s *Store) Revoke(ctx context.Context, token string) error {
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE files SET revoked = ? WHERE token = ? AND revoked IS NULL`), time.Now().UnixMicro(), token)
	if err != nil {
		return fmt.Errorf("store: revoke: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

func (s *Store) file(ctx context.Context, where string, args ...any) (File, error) {
	var f File
	var typ string
	var delta int
	var created int64
	var revoked sql.NullInt64
	err := s.r.QueryRowContext(ctx, s.q(`SELECT f.token, f.run_id, u.day, f.type, f.constituency, f.delta, f.name, f.created, f.revoked
		FROM files f JOIN runs u ON u.id = f.run_id WHERE `+where), args...).
		Scan(&f.Token, &f.RunID, &f.Day, &typ, &f.Constituency, &delta, &f.Name, &created, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return File{}, ErrNotFound
	}
	if err != nil {
		return File{}, fmt.Errorf("store: file: %w", err)
	}
	f.Type, f.Delta, f.Created = report.Type(typ), delta != 0, time.UnixMicro(created).UTC()
	if revoked.Valid {
		f.Revoked = time.UnixMicro(revoked.Int64).UTC()
	}
	return f, nil
}

func isToken(s string) bool {
	if len(s) != TokenLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// RunsBetween returns the runs started on the days from to until
// (YYYY-MM-DD, UTC, both included), oldest first.
func (s *Store) RunsBetween(ctx context.Context, from, until string) ([]Run, error) {
	runs, err := s.Runs(ctx)
	if err != nil {
		return nil, err
	}
	var out []Run
	for _, r := range runs {
		if d := r.Day(); d >= from && d <= until {
			out = append(out, r)
		}
	}
	return out, nil
}

// RowCounts returns the number of rows of a run per report type, of one
// constituency ("": of all rows), as counted at import.
func (s *Store) RowCounts(ctx context.Context, runID int64, constituency string) (map[report.Type]int, error) {
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT type, n_rows FROM run_counts WHERE run_id = ? AND constituency = ?`), runID, constituency)
	if err != nil {
		return nil, fmt.Errorf("store: row counts: %w", err)
	}
	defer rows.Close()
	out := map[report.Type]int{}
	for rows.Next() {
		var t string
		var n int
		if err := rows.Scan(&t, &n); err != nil {
			return nil, err
		}
		out[report.Type(t)] = n
	}
	return out, rows.Err()
}

// RowFilter selects rows across runs for RowsWhere. Zero fields select
// everything.
type RowFilter struct {
	// From and Until bound the runs' days (YYYY-MM-DD, both included).
	From, Until string
	// Constituencies keeps the rows that belonged to any of these when
	// they were imported.
	Constituencies []string
	Types          []report.Type
	// Prefix keeps the rows whose address it holds.
	Prefix netip.Prefix
	ASN    uint32
	// Country is an ISO 3166-1 alpha-2 code.
	Country string
	// Descending returns the newest runs first.
	Descending bool
	// Reports, when not empty, keeps only the rows of these runs and
	// types (a day's report is the last run of the day for its type).
	Reports []RunType
}

// RunType names a run's rows of one report type.
type RunType struct {
	RunID int64
	Type  report.Type
}

// Record is a row as RowsWhere returns it: its run, day, type and CSV
// record in the current layout of its type.
type Record struct {
	RunID int64
	Day   string
	Type  report.Type
	Line  string
}

// RowsWhere calls f with each row the filter selects, in run order (the
// runs' start, then the rows' order in their report), until f returns
// an error, which it returns. The rows are read while f runs, on one
// of the store's connections.
func (s *Store) RowsWhere(ctx context.Context, rf RowFilter, f func(Record) error) error {
	q := `SELECT r.run_id, u.day, r.type, r.line FROM rows r JOIN runs u ON u.id = r.run_id WHERE 1 = 1`
	var args []any
	if rf.From != "" {
		q += ` AND u.day >= ?`
		args = append(args, rf.From)
	}
	if rf.Until != "" {
		q += ` AND u.day <= ?`
		args = append(args, rf.Until)
	}
	if len(rf.Types) > 0 {
		q += ` AND r.type IN (` + placeholders(len(rf.Types)) + `)`
		for _, t := range rf.Types {
			args = append(args, string(t))
		}
	}
	if len(rf.Reports) > 0 {
		var or []string
		for _, rt := range rf.Reports {
			or = append(or, `(r.run_id = ? AND r.type = ?)`)
			args = append(args, rt.RunID, string(rt.Type))
		}
		q += ` AND (` + strings.Join(or, ` OR `) + `)`
	}
	if rf.Prefix.IsValid() {
		r := ntpctl.RangeOf(rf.Prefix.Masked())
		first, last := rangeBins(r)
		q += ` AND r.ip_bin >= ? AND r.ip_bin <= ?`
		args = append(args, first, last)
	}
	if rf.ASN != 0 {
		q += ` AND r.asn = ?`
		args = append(args, int64(rf.ASN))
	}
	if rf.Country != "" {
		q += ` AND r.geo = ?`
		args = append(args, strings.ToUpper(rf.Country))
	}
	if len(rf.Constituencies) > 0 {
		q += ` AND EXISTS (SELECT 1 FROM member_sets m WHERE m.run_id = r.run_id AND m.set_no = r.mset AND m.constituency IN (` +
			placeholders(len(rf.Constituencies)) + `))`
		for _, c := range rf.Constituencies {
			args = append(args, c)
		}
	}
	order := ``
	if rf.Descending {
		order = ` DESC`
	}
	q += ` ORDER BY u.started` + order + `, u.id` + order + `, r.row_no`
	rows, err := s.r.QueryContext(ctx, s.q(q), args...)
	if err != nil {
		return fmt.Errorf("store: rows: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var rec Record
		var t string
		if err := rows.Scan(&rec.RunID, &rec.Day, &t, &rec.Line); err != nil {
			return fmt.Errorf("store: rows: %w", err)
		}
		rec.Type = report.Type(t)
		if err := f(rec); err != nil {
			return err
		}
	}
	return rows.Err()
}
