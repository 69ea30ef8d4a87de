package store

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/report"
)

// querier is what *sql.DB and *sql.Tx share.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

const runColumns = `id, uid, source, started, finished, probes, complete, interrupted, scanner, stats, rows_total`

func scanRun(sc interface{ Scan(...any) error }) (Run, error) {
	var r Run
	var started, finished int64
	var types, stats string
	var complete, interrupted int
	if err := sc.Scan(&r.ID, &r.UID, &r.Source, &started, &finished, &types, &complete, &interrupted, &r.Scanner, &stats, &r.Rows); err != nil {
		return r, err
	}
	r.Started, r.Finished = time.UnixMicro(started).UTC(), time.UnixMicro(finished).UTC()
	for _, t := range strings.Split(types, ",") {
		if t != "" {
			r.Types = append(r.Types, report.Type(t))
		}
	}
	r.Complete, r.Interrupted = complete != 0, interrupted != 0
	if stats != "{}" {
		r.Stats = []byte(stats)
	}
	return r, nil
}

func (s *Store) runByUID(ctx context.Context, uid string) (Run, error) {
	return s.runByUIDTx(ctx, s.r, uid)
}

func (s *Store) runByUIDTx(ctx context.Context, q querier, uid string) (Run, error) {
	return s.loadRun(ctx, q, q.QueryRowContext(ctx, s.q(`SELECT `+runColumns+` FROM runs WHERE uid = ?`), uid))
}

func (s *Store) loadRun(ctx context.Context, q querier, row *sql.Row) (Run, error) {
	r, err := scanRun(row)
	if errors.Is(err, sql.ErrNoRows) {
		return r, ErrNotFound
	}
	if err != nil {
		return r, err
	}
	return r, s.loadSpace(ctx, q, &r)
}

func (s *Store) loadSpace(ctx context.Context, q querier, r *Run) error {
	rows, err := q.QueryContext(ctx, s.q(`SELECT first, last FROM run_space WHERE run_id = ?`), r.ID)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var first, last []byte
		if err := rows.Scan(&first, &last); err != nil {
			return err
		}
		a, _ := netip.AddrFromSlice(first)
		b, _ := netip.AddrFromSlice(last)
		r.Space = append(r.Space, ntpctl.Range{First: a.Unmap(), Last: b.Unmap()})
	}
	return rows.Err()
}

// Run returns the run with the given ID, or ErrNotFound.
func (s *Store) Run(ctx context.Context, id int64) (Run, error) {
	return s.loadRun(ctx, s.r, s.r.QueryRowContext(ctx, s.q(`SELECT `+runColumns+` FROM runs WHERE id = ?`), id))
}

// Runs returns every run, oldest first.
func (s *Store) Runs(ctx context.Context) ([]Run, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+runColumns+` FROM runs ORDER BY started, id`)
	if err != nil {
		return nil, err
	}
	var runs []Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		runs = append(runs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range runs {
		if err := s.loadSpace(ctx, s.r, &runs[i]); err != nil {
			return nil, err
		}
	}
	return runs, nil
}

// RunOf returns the run that holds a day's report of type t: the last
// run started on day (YYYY-MM-DD, UTC) that scanned for t.
func (s *Store) RunOf(ctx context.Context, day string, t report.Type) (Run, error) {
	return s.loadRun(ctx, s.r, s.r.QueryRowContext(ctx, s.q(`SELECT `+runColumns+` FROM runs
		WHERE day = ? AND id IN (SELECT run_id FROM run_types WHERE type = ?)
		ORDER BY started DESC, id DESC LIMIT 1`), day, string(t)))
}

// PreviousRun returns the last run of type t started before run.
func (s *Store) PreviousRun(ctx context.Context, run Run, t report.Type) (Run, error) {
	return s.loadRun(ctx, s.r, s.r.QueryRowContext(ctx, s.q(`SELECT `+runColumns+` FROM runs
		WHERE (started < ? OR (started = ? AND id < ?)) AND id IN (SELECT run_id FROM run_types WHERE type = ?)
		ORDER BY started DESC, id DESC LIMIT 1`), run.Started.UnixMicro(), run.Started.UnixMicro(), run.ID, string(t)))
}

// Header returns the header line of a report type's CSV in the current
// layout, without its line end.
func Header(t report.Type) string {
	cols := report.MonitorColumns(report.LayoutCurrent)
	if t.IsVersion() {
		cols = report.VersionColumns(report.LayoutCurrent)
	}
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = `"` + c + `"`
	}
	return strings.Join(quoted, ",")
}

// ReportQuery selects the rows of one run's report.
type ReportQuery struct {
	RunID int64
	Type  report.Type
	// Constituency limits the rows to those that belonged to it when they
	// were imported; "" means every row.
	Constituency string
	// Delta leaves out the rows whose values (all but timestamp and port)
	// are the same as in the previous run of the type for that address:
	// Shadowserver's delta mode on the days that are not the full one.
	Delta bool
}

// WriteReport writes a report as the scanner writes it: the header and
// the selected rows in the order of the scan. It returns the number of
// rows written.
func (s *Store) WriteReport(ctx context.Context, w io.Writer, rq ReportQuery) (int, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	if _, err := bw.WriteString(Header(rq.Type) + "\n"); err != nil {
		return 0, err
	}
	n := 0
	err := s.eachLine(ctx, rq, func(line string) error {
		n++
		_, err := bw.WriteString(line + "\n")
		return err
	})
	if err != nil {
		return n, err
	}
	return n, bw.Flush()
}

// eachLine calls f with each selected row's CSV line.
func (s *Store) eachLine(ctx context.Context, rq ReportQuery, f func(string) error) error {
	q := `SELECT r.line FROM rows r`
	where := ` WHERE r.run_id = ? AND r.type = ?`
	args := []any{rq.RunID, string(rq.Type)}
	if rq.Constituency != "" {
		// By the run's constituency sets (rows_sets): a small
		// constituency's report of a large run reads its rows only.
		// SQLite, without statistics, would rather read the run in its
		// primary key's order than sort.
		if s.engine == SQLite {
			q += ` INDEXED BY rows_sets`
		}
		where += ` AND r.mset IN (SELECT m.set_no FROM member_sets m WHERE m.run_id = ? AND m.constituency = ?)`
		args = append(args, rq.RunID, rq.Constituency)
	}
	if rq.Delta {
		run, err := s.Run(ctx, rq.RunID)
		if err != nil {
			return err
		}
		prev, err := s.PreviousRun(ctx, run, rq.Type)
		switch {
		case errors.Is(err, ErrNotFound):
			// No previous run: every row is a change.
		case err != nil:
			return err
		default:
			where += ` AND NOT EXISTS (SELECT 1 FROM rows p WHERE p.run_id = ? AND p.type = r.type AND p.ip_bin = r.ip_bin AND p.protocol = r.protocol AND p.hash = r.hash)`
			args = append(args, prev.ID)
		}
	}
	rows, err := s.r.QueryContext(ctx, s.q(q+where+` ORDER BY r.row_no`), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return err
		}
		if err := f(line); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Finding is one finding as a diff or a history shows it.
type Finding struct {
	Type     report.Type
	IP       string
	Port     int
	Protocol string
	// OpenSince is when the finding's current episode began (as of the
	// later run of a diff).
	OpenSince time.Time
}

// Diff is what changed between two runs for one constituency.
type Diff struct {
	From, To Run
	// New are in To and not in From; Persisting in both, with the time
	// they have been open since.
	New, Persisting []Finding
	// Fixed were confirmed fixed by a run after From, up to To: FixAfter
	// complete runs that covered them missed them.
	Fixed []Finding
	// Absent were in From, and To, a complete run that covered them, did
	// not see them, but they are not (yet) fixed: one lost reply is not a
	// fix.
	Absent []Finding
	// Unknown were in From and not in To, which did not cover them (an
	// interrupted run, a shard, a smaller target space, another report
	// type).
	Unknown []Finding
}

// Diff compares two runs for one constituency ("" for all rows).
func (s *Store) Diff(ctx context.Context, fromID, toID int64, constituency string) (Diff, error) {
	var d Diff
	var err error
	if d.From, err = s.Run(ctx, fromID); err != nil {
		return d, err
	}
	if d.To, err = s.Run(ctx, toID); err != nil {
		return d, err
	}
	from, err := s.findingsOf(ctx, fromID, constituency)
	if err != nil {
		return d, err
	}
	to, err := s.findingsOf(ctx, toID, constituency)
	if err != nil {
		return d, err
	}
	fixed, err := s.fixedBetween(ctx, d.From, d.To, constituency)
	if err != nil {
		return d, err
	}
	for k, f := range to {
		if _, ok := from[k]; ok {
			d.Persisting = append(d.Persisting, f)
		} else {
			d.New = append(d.New, f)
		}
	}
	for k, f := range fixed {
		if _, seen := to[k]; !seen {
			d.Fixed = append(d.Fixed, f)
		}
	}
	for k, f := range from {
		_, seen := to[k]
		_, fix := fixed[k]
		switch {
		case seen || fix:
		case covers(&d.To, f):
			d.Absent = append(d.Absent, f)
		default:
			d.Unknown = append(d.Unknown, f)
		}
	}
	for _, l := range []*[]Finding{&d.New, &d.Persisting, &d.Fixed, &d.Absent, &d.Unknown} {
		slices.SortFunc(*l, compareFindings)
	}
	return d, nil
}

// fixedBetween returns the findings of a constituency fixed by a run
// after from, up to to, with the open-since of their last row.
func (s *Store) fixedBetween(ctx context.Context, from, to Run, constituency string) (map[findingKey]Finding, error) {
	q := `SELECT e.type, e.ip, e.port, e.protocol, e.opened_at FROM episodes e JOIN runs u ON u.id = e.fixed_run
		WHERE (u.started > ? OR (u.started = ? AND u.id > ?)) AND (u.started < ? OR (u.started = ? AND u.id <= ?))`
	args := []any{from.Started.UnixMicro(), from.Started.UnixMicro(), from.ID, to.Started.UnixMicro(), to.Started.UnixMicro(), to.ID}
	if constituency != "" {
		q += ` AND EXISTS (SELECT 1 FROM rows r JOIN ` + memberJoin + `
			JOIN runs ru ON ru.id = r.run_id
			WHERE ` + keyJoin + ` AND ru.started >= e.opened_at AND ru.started < e.fixed_at AND m.constituency = ?)`
		args = append(args, constituency)
	}
	return s.queryFindings(ctx, q, args)
}

// queryFindings runs a query of (type, ip, port, protocol, open_since)
// and returns its findings by key.
func (s *Store) queryFindings(ctx context.Context, q string, args []any) (map[findingKey]Finding, error) {
	rows, err := s.r.QueryContext(ctx, s.q(q), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[findingKey]Finding{}
	for rows.Next() {
		var f Finding
		var t string
		var open sql.NullInt64
		if err := rows.Scan(&t, &f.IP, &f.Port, &f.Protocol, &open); err != nil {
			return nil, err
		}
		f.Type = report.Type(t)
		if a, err := netip.ParseAddr(f.IP); err == nil {
			f.IP = a.Unmap().String() // one key per address, however written
		}
		if open.Valid {
			f.OpenSince = time.UnixMicro(open.Int64).UTC()
		}
		out[findingKey{f.Type, f.IP, f.Protocol, f.Port}] = f
	}
	return out, rows.Err()
}

// covers reports whether run, if complete, scanned f's address for f's
// report type.
func covers(run *Run, f Finding) bool {
	if !run.Complete || !slices.Contains(run.Types, f.Type) {
		return false
	}
	a, err := netip.ParseAddr(f.IP)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, r := range run.Space {
		if r.Contains(a) {
			return true
		}
	}
	return false
}

func compareFindings(a, b Finding) int {
	return strings.Compare(fmt.Sprint(a.Type, " ", padIP(a.IP), " ", a.Port, a.Protocol),
		fmt.Sprint(b.Type, " ", padIP(b.IP), " ", b.Port, b.Protocol))
}

// padIP orders addresses numerically when compared as strings.
func padIP(s string) string {
	if a, err := netip.ParseAddr(s); err == nil {
		b := a.Unmap().As16()
		return fmt.Sprintf("%x", b)
	}
	return s
}

type findingKey struct {
	t         report.Type
	ip, proto string
	port      int
}

// findingsOf returns a run's findings for a constituency, with their
// open-since as of that run.
func (s *Store) findingsOf(ctx context.Context, runID int64, constituency string) (map[findingKey]Finding, error) {
	q := `SELECT r.type, r.ip, r.port, r.protocol,
			(SELECT MAX(e.opened_at) FROM episodes e WHERE ` + keyJoin + ` AND e.opened_at <= u.started)
		FROM rows r JOIN runs u ON u.id = r.run_id`
	var args []any
	if constituency != "" {
		q += ` JOIN ` + memberJoin + ` AND m.constituency = ?`
		args = append(args, constituency)
	}
	q += ` WHERE r.run_id = ?`
	args = append(args, runID)
	return s.queryFindings(ctx, q, args)
}

// State is a finding's life as the store knows it now: its current
// episode (the last one), from OpenSince to Fixed or still open.
type State struct {
	Finding
	// FirstSeen is when its first episode opened; LastSeen the last run
	// that saw it.
	FirstSeen, LastSeen time.Time
	// Fixed is when it was fixed (the run that confirmed it, the
	// FixAfter-th covering run that missed it), zero while open.
	Fixed time.Time
	// Misses counts the complete covering runs that missed it since
	// LastSeen.
	Misses int
	// Episodes counts its episodes: more than one when it was fixed and
	// came back.
	Episodes int
}

// Open reports whether the finding is open.
func (st *State) Open() bool { return st.Fixed.IsZero() }

// Sighting is one row of an address in one run.
type Sighting struct {
	RunID     int64
	Day       string
	Type      report.Type
	Port      int
	Timestamp string
	Line      string
	// Extra is the row's columns that the current layout lacks, as its
	// report had them (JSON object), or "".
	Extra string
}

// History is everything the store holds about one address.
type History struct {
	IP        string
	Findings  []State
	Sightings []Sighting
}

// History returns the findings and rows of one address, oldest first.
func (s *Store) History(ctx context.Context, ip netip.Addr) (History, error) {
	h := History{IP: ip.Unmap().String()}
	bin := ipBin(ip)
	states, err := s.states(ctx, `WHERE e.ip_bin = ?`, []any{bin})
	if err != nil {
		return h, err
	}
	h.Findings = states
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT r.run_id, u.day, r.type, r.port, r.ts, r.line, r.extra FROM rows r
		JOIN runs u ON u.id = r.run_id WHERE r.ip_bin = ? ORDER BY u.started, u.id, r.row_no`), bin)
	if err != nil {
		return h, err
	}
	defer rows.Close()
	for rows.Next() {
		var sg Sighting
		var t string
		if err := rows.Scan(&sg.RunID, &sg.Day, &t, &sg.Port, &sg.Timestamp, &sg.Line, &sg.Extra); err != nil {
			return h, err
		}
		sg.Type = report.Type(t)
		h.Sightings = append(h.Sightings, sg)
	}
	return h, rows.Err()
}

// states returns the State of each finding whose episodes the condition
// on e (an episode) selects, in finding order.
func (s *Store) states(ctx context.Context, where string, args []any) ([]State, error) {
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT e.type, e.ip, e.port, e.protocol, e.opened_at, e.last_seen, e.fixed_at, e.misses,
			(SELECT MIN(x.opened_at) FROM episodes x WHERE x.ip_bin = e.ip_bin AND x.type = e.type AND x.port = e.port AND x.protocol = e.protocol),
			(SELECT COUNT(*) FROM episodes x WHERE x.ip_bin = e.ip_bin AND x.type = e.type AND x.port = e.port AND x.protocol = e.protocol)
		FROM episodes e `+where+` AND e.opened_at = (SELECT MAX(x.opened_at) FROM episodes x
			WHERE x.ip_bin = e.ip_bin AND x.type = e.type AND x.port = e.port AND x.protocol = e.protocol)`), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []State
	for rows.Next() {
		var st State
		var t string
		var open, last, first int64
		var fixed sql.NullInt64
		if err := rows.Scan(&t, &st.IP, &st.Port, &st.Protocol, &open, &last, &fixed, &st.Misses, &first, &st.Episodes); err != nil {
			return nil, err
		}
		st.Type = report.Type(t)
		st.OpenSince, st.LastSeen, st.FirstSeen = time.UnixMicro(open).UTC(), time.UnixMicro(last).UTC(), time.UnixMicro(first).UTC()
		if fixed.Valid {
			st.Fixed = time.UnixMicro(fixed.Int64).UTC()
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b State) int { return compareFindings(a.Finding, b.Finding) })
	return out, rows.Err()
}

// OpenFindings returns the findings open now, for one constituency (as of
// the run that last saw each) or all ("").
func (s *Store) OpenFindings(ctx context.Context, constituency string) ([]State, error) {
	where := `WHERE e.fixed_at IS NULL`
	var args []any
	if constituency != "" {
		where += ` AND EXISTS (SELECT 1 FROM rows r JOIN ` + memberJoin + `
			JOIN runs u ON u.id = r.run_id
			WHERE ` + keyJoin + ` AND u.started = e.last_seen AND m.constituency = ?)`
		args = append(args, constituency)
	}
	return s.states(ctx, where, args)
}
