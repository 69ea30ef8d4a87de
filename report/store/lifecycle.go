package store

import (
	"context"
	"database/sql"
	"fmt"
)

// FixAfter is the number of complete runs covering a finding that must
// miss it before it is called fixed: a single lost reply is not a fix.
const FixAfter = 2

// A finding's life is kept as episodes: each runs from the run that saw
// it first (opened_at, the run's start) to the run that confirmed it
// fixed (fixed_at and fixed_run), or is still open. A finding has at most
// one open episode; one seen again after a fix opens a new one.

// key joins an episode (e) to a row (r): the same finding.
const keyJoin = `e.ip_bin = r.ip_bin AND e.type = r.type AND e.port = r.port AND e.protocol = r.protocol`

// memberJoin joins a row (r) to the constituencies of its set (m).
const memberJoin = `member_sets m ON m.run_id = r.run_id AND m.set_no = r.mset`

// opened are the statements that open an episode for each finding of a
// run without an open one.
var opened = map[Engine]string{
	SQLite: `INSERT INTO episodes (ip_bin, type, port, protocol, opened_at, ip, last_seen, misses, fixed_at, fixed_run)
		SELECT r.ip_bin, r.type, r.port, r.protocol, CAST(? AS BIGINT), r.ip, CAST(? AS BIGINT), 0, CAST(NULL AS BIGINT), CAST(NULL AS BIGINT)
		FROM rows r WHERE r.run_id = ? AND NOT EXISTS (SELECT 1 FROM episodes e WHERE ` + keyJoin + ` AND e.fixed_at IS NULL)
		ON CONFLICT DO NOTHING`,
	Postgres: `INSERT INTO episodes (ip_bin, type, port, protocol, opened_at, ip, last_seen, misses, fixed_at, fixed_run)
		SELECT r.ip_bin, r.type, r.port, r.protocol, CAST(? AS BIGINT), MIN(r.ip), CAST(? AS BIGINT), 0, CAST(NULL AS BIGINT), CAST(NULL AS BIGINT)
		FROM rows r WHERE r.run_id = ? AND NOT EXISTS (SELECT 1 FROM episodes e WHERE ` + keyJoin + ` AND e.fixed_at IS NULL)
		GROUP BY r.ip_bin, r.type, r.port, r.protocol`,
}

// apply updates the findings with one run, the newest in the store: each
// finding it saw keeps its open episode or opens one; when the run is
// complete, each open episode of its report types that it covered and
// did not see counts a miss, and the FixAfter-th miss fixes it.
func (s *Store) apply(ctx context.Context, tx *sql.Tx, runID int64) error {
	var started int64
	var complete int
	if err := tx.QueryRowContext(ctx, s.q(`SELECT started, complete FROM runs WHERE id = ?`), runID).Scan(&started, &complete); err != nil {
		return err
	}
	steps := []struct {
		what  string
		query string
		args  []any
		if_   bool
	}{
		{"seen", `UPDATE episodes SET last_seen = CAST(? AS BIGINT), misses = 0
			WHERE fixed_at IS NULL AND EXISTS (SELECT 1 FROM rows r WHERE r.run_id = ? AND r.ip_bin = episodes.ip_bin
				AND r.type = episodes.type AND r.port = episodes.port AND r.protocol = episodes.protocol)`,
			[]any{started, runID}, true},
		// A finding twice in one run (an address written two ways, a
		// repeated row) opens one episode: SQLite ignores the second
		// insert faster than it groups, PostgreSQL groups faster than its
		// speculative inserts.
		{"opened", opened[s.engine], []any{started, started, runID}, true},
		{"missed", `UPDATE episodes SET
				misses = misses + 1,
				fixed_at = CASE WHEN misses + 1 >= CAST(? AS INTEGER) THEN CAST(? AS BIGINT) ELSE NULL END,
				fixed_run = CASE WHEN misses + 1 >= CAST(? AS INTEGER) THEN CAST(? AS BIGINT) ELSE NULL END
			WHERE fixed_at IS NULL AND last_seen < ?
				AND type IN (SELECT type FROM run_types WHERE run_id = ?)
				AND EXISTS (SELECT 1 FROM run_space sp WHERE sp.run_id = ? AND episodes.ip_bin >= sp.first AND episodes.ip_bin <= sp.last)`,
			[]any{FixAfter, started, FixAfter, runID, started, runID, runID}, complete != 0},
	}
	for _, st := range steps {
		if !st.if_ {
			continue
		}
		if _, err := tx.ExecContext(ctx, s.q(st.query), st.args...); err != nil {
			return fmt.Errorf("%s: %w", st.what, err)
		}
	}
	return nil
}

// rebuild recomputes every finding by applying every run in time order,
// after a run older than the newest was imported.
func (s *Store) rebuild(ctx context.Context, tx *sql.Tx) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM episodes`); err != nil {
		return err
	}
	rows, err := tx.QueryContext(ctx, `SELECT id FROM runs ORDER BY started, id`)
	if err != nil {
		return err
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, id := range ids {
		if err := s.apply(ctx, tx, id); err != nil {
			return err
		}
	}
	return nil
}
