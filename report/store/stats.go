package store

import (
	"context"
	"strconv"

	"github.com/ntpctl/ntpctl/report"
)

// Count is one value of a breakdown and its number of rows.
type Count struct {
	Key   string `json:"key"`
	Count int64  `json:"count"`
}

// RunStats is a run's daily statistics for one constituency, as
// Shadowserver's scan pages break them down.
type RunStats struct {
	RunID int64  `json:"run_id"`
	Day   string `json:"day"`
	// Rows counts the rows per report type.
	Rows []Count `json:"rows"`
	// Countries, ASNs and Daemons break the rows down; Amplification
	// by decade (0-1, 1-10, 10-100, …).
	Countries     []Count `json:"countries"`
	ASNs          []Count `json:"asns"`
	Daemons       []Count `json:"daemons"`
	Amplification []Count `json:"amplification"`
}

// Stats returns a run's statistics for a constituency ("" for all rows).
func (s *Store) Stats(ctx context.Context, runID int64, constituency string) (RunStats, error) {
	return s.stats(ctx, runID, constituency, "")
}

// TypeStats is Stats of the rows of one report type.
func (s *Store) TypeStats(ctx context.Context, runID int64, t report.Type, constituency string) (RunStats, error) {
	return s.stats(ctx, runID, constituency, t)
}

func (s *Store) stats(ctx context.Context, runID int64, constituency string, t report.Type) (RunStats, error) {
	run, err := s.Run(ctx, runID)
	if err != nil {
		return RunStats{}, err
	}
	st := RunStats{RunID: runID, Day: run.Day()}
	from := ` FROM rows r`
	args := []any{}
	if constituency != "" {
		from += ` JOIN ` + memberJoin + ` AND m.constituency = ?`
		args = append(args, constituency)
	}
	from += ` WHERE r.run_id = ?`
	args = append(args, runID)
	if t != "" {
		from += ` AND r.type = ?`
		args = append(args, string(t))
	}
	bucket := `CASE WHEN r.amplification < 1 THEN 0 WHEN r.amplification < 10 THEN 1 WHEN r.amplification < 100 THEN 2
		WHEN r.amplification < 1000 THEN 3 ELSE 4 END`
	for _, b := range []struct {
		dst  *[]Count
		expr string
		cond string
	}{
		{&st.Rows, `r.type`, ``},
		{&st.Countries, `r.geo`, ``},
		{&st.ASNs, `r.asn`, ``},
		{&st.Daemons, `r.daemon`, ` AND r.type IN ('` + string(report.ScanNTP) + `', '` + string(report.Scan6NTP) + `')`},
		{&st.Amplification, bucket, ``},
	} {
		q := `SELECT ` + b.expr + `, COUNT(*)` + from + b.cond + ` GROUP BY ` + b.expr + ` ORDER BY COUNT(*) DESC, ` + b.expr
		rows, err := s.r.QueryContext(ctx, s.q(q), args...)
		if err != nil {
			return st, err
		}
		for rows.Next() {
			var key any
			var c Count
			if err := rows.Scan(&key, &c.Count); err != nil {
				rows.Close()
				return st, err
			}
			c.Key = keyString(key)
			*b.dst = append(*b.dst, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return st, err
		}
	}
	names := []string{"0-1", "1-10", "10-100", "100-1000", "1000+"}
	for i := range st.Amplification {
		if n, err := strconv.Atoi(st.Amplification[i].Key); err == nil && n >= 0 && n < len(names) {
			st.Amplification[i].Key = names[n]
		}
	}
	return st, nil
}

func keyString(v any) string {
	switch k := v.(type) {
	case string:
		return k
	case []byte:
		return string(k)
	case int64:
		return strconv.FormatInt(k, 10)
	case int32:
		return strconv.FormatInt(int64(k), 10)
	case int:
		return strconv.Itoa(k)
	case nil:
		return ""
	}
	return ""
}

// Point is one run in a time series of a constituency's statistics.
type Point struct {
	RunID    int64  `json:"run_id"`
	Day      string `json:"day"`
	Complete bool   `json:"complete"`
	// Rows counts the run's rows per report type.
	Rows []Count `json:"rows"`
	// New counts the rows whose finding opened with this run (first seen,
	// or reopened); Fixed the findings this run confirmed fixed.
	New   int64 `json:"new"`
	Fixed int64 `json:"fixed"`
}

// Series returns a constituency's statistics ("" for all rows) run by
// run, oldest first, for the runs started on the days from … to
// (YYYY-MM-DD, inclusive; "" for no bound).
func (s *Store) Series(ctx context.Context, constituency, from, to string) ([]Point, error) {
	runs, err := s.Runs(ctx)
	if err != nil {
		return nil, err
	}
	member, margs := ``, []any{}
	if constituency != "" {
		member = ` JOIN ` + memberJoin + ` AND m.constituency = ?`
		margs = []any{constituency}
	}
	var out []Point
	for _, run := range runs {
		if (from != "" && run.Day() < from) || (to != "" && run.Day() > to) {
			continue
		}
		p := Point{RunID: run.ID, Day: run.Day(), Complete: run.Complete}
		args := append(append([]any{}, margs...), run.ID)
		rows, err := s.r.QueryContext(ctx, s.q(`SELECT r.type, COUNT(*) FROM rows r`+member+` WHERE r.run_id = ? GROUP BY r.type ORDER BY r.type`), args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var c Count
			if err := rows.Scan(&c.Key, &c.Count); err != nil {
				rows.Close()
				return nil, err
			}
			p.Rows = append(p.Rows, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		err = s.r.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM rows r`+member+`
			WHERE r.run_id = ? AND EXISTS (SELECT 1 FROM episodes e WHERE `+keyJoin+` AND e.opened_at = ?)`),
			append(args, run.Started.UnixMicro())...).Scan(&p.New)
		if err != nil {
			return nil, err
		}
		fq := `SELECT COUNT(*) FROM episodes e WHERE e.fixed_run = ?`
		fargs := []any{run.ID}
		if constituency != "" {
			fq += ` AND EXISTS (SELECT 1 FROM rows r JOIN ` + memberJoin + `
				WHERE ` + keyJoin + ` AND m.constituency = ?)`
			fargs = append(fargs, constituency)
		}
		if err := s.r.QueryRowContext(ctx, s.q(fq), fargs...).Scan(&p.Fixed); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}
