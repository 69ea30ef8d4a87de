package store

import (
	"context"
	"database/sql"
	"fmt"
)

// FixAfter is the number of complete runs covering a finding that must
// miss it before it is called fixed: a single lost reply is not a fix.
const FixAfter = 2

// apply updates the findings with one run, the newest in the store: each
// of its rows opens a finding or keeps it open (reopening a fixed one);
// when the run is complete, each open finding of its report types that it
// covered and did not see counts a miss, and the FixAfter-th miss fixes
// it. Then each of the run's rows records the open-since of its finding.
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
		{"sightings", `INSERT INTO findings (type, ip, port, protocol, ip_bin, first_seen, last_seen, open_since, fixed_at, misses)
			SELECT type, MIN(ip), port, protocol, ip_bin, CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(NULL AS BIGINT), 0 FROM rows WHERE run_id = ?
			GROUP BY ip_bin, type, port, protocol
			ON CONFLICT (ip_bin, type, port, protocol) DO UPDATE SET
				ip = excluded.ip,
				last_seen = excluded.last_seen,
				misses = 0,
				open_since = CASE WHEN findings.fixed_at IS NULL THEN findings.open_since ELSE excluded.open_since END,
				fixed_at = NULL`,
			[]any{started, started, started, runID}, true},
		{"absences", `UPDATE findings SET
				misses = misses + 1,
				fixed_at = CASE WHEN misses + 1 >= CAST(? AS INTEGER) THEN CAST(? AS BIGINT) ELSE NULL END
			WHERE fixed_at IS NULL AND last_seen < ?
				AND type IN (SELECT type FROM run_types WHERE run_id = ?)
				AND EXISTS (SELECT 1 FROM run_space sp WHERE sp.run_id = ? AND findings.ip_bin >= sp.first AND findings.ip_bin <= sp.last)`,
			[]any{FixAfter, started, started, runID, runID}, complete != 0},
		{"fixes", `INSERT INTO fixes (type, ip, ip_bin, port, protocol, run_id, fixed_at)
			SELECT type, ip, ip_bin, port, protocol, CAST(? AS BIGINT), fixed_at FROM findings
			WHERE fixed_at = ? AND misses = ? AND type IN (SELECT type FROM run_types WHERE run_id = ?)`,
			[]any{runID, started, FixAfter, runID}, complete != 0},
		{"open since", `INSERT INTO row_open (run_id, row_no, open_since)
			SELECT r.run_id, r.row_no, f.open_since FROM rows r
			JOIN findings f ON f.type = r.type AND f.ip_bin = r.ip_bin AND f.port = r.port AND f.protocol = r.protocol
			WHERE r.run_id = ?`,
			[]any{runID}, true},
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
	for _, q := range []string{`DELETE FROM findings`, `DELETE FROM row_open`, `DELETE FROM fixes`} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return err
		}
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
