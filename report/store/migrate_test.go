package store

import (
	"bytes"
	"context"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ntpctl/ntpctl/internal/pgtest"
	"github.com/ntpctl/ntpctl/report"
)

// TestMigration2 fills a store of schema version 1 (one membership row
// per constituency and row) and migrates it: every row keeps its
// constituencies, and the store goes on importing.
func TestMigration2(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			ctx := context.Background()
			dsn := engineDSN(t, engine, "v1.db")
			st, err := open(ctx, dsn, 1)
			require.NoError(t, err)
			started := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
			exec := execer(t, st)
			exec(`INSERT INTO runs (uid, source, day, started, finished, probes, complete, interrupted, scanner, stats, rows_total)
				VALUES ('u1', 'old', '2026-11-01', ?, ?, 'scan_ntp', 1, 0, 'v1', '{}', 4)`, started, started)
			exec(`INSERT INTO run_types (run_id, type) VALUES (1, 'scan_ntp')`)
			// Rows 0 to 3: in as64496 and nl, in nl, in none, in nl and as64496.
			members := [][]string{{"as64496", "nl"}, {"nl"}, nil, {"nl", "as64496"}}
			for i, ms := range members {
				ip := netip.AddrFrom4([4]byte{127, 0, 0, byte(i + 1)})
				exec(`INSERT INTO rows (run_id, row_no, type, ip, ip_bin, port, protocol, asn, geo, daemon, amplification, ts, hash, line, extra)
					VALUES (1, ?, 'scan_ntp', ?, ?, 123, 'udp', 64496, 'NL', '', 1.0, '', ?, ?, '')`,
					i, ip.String(), ipBin(ip), make([]byte, 16), "line "+ip.String())
				exec(`INSERT INTO episodes (ip_bin, type, port, protocol, opened_at, ip, last_seen, misses) VALUES (?, 'scan_ntp', 123, 'udp', ?, ?, ?, 0)`,
					ipBin(ip), started, ip.String(), started)
				for _, m := range ms {
					exec(`INSERT INTO row_members (run_id, constituency, row_no) VALUES (1, ?, ?)`, m, i)
				}
			}
			require.NoError(t, st.Close())

			st, err = Open(ctx, dsn)
			require.NoError(t, err)
			defer st.Close()
			v, err := st.SchemaVersion(ctx)
			require.NoError(t, err)
			assert.Equal(t, len(migrations), v)
			reportOf := func(c string) string {
				var b bytes.Buffer
				_, err := st.WriteReport(ctx, &b, ReportQuery{RunID: 1, Type: report.ScanNTP, Constituency: c})
				require.NoError(t, err)
				_, body, _ := strings.Cut(b.String(), "\n")
				return body
			}
			assert.Equal(t, "line 127.0.0.1\nline 127.0.0.4\n", reportOf("as64496"))
			assert.Equal(t, "line 127.0.0.1\nline 127.0.0.2\nline 127.0.0.4\n", reportOf("nl"))
			assert.Equal(t, "line 127.0.0.1\nline 127.0.0.2\nline 127.0.0.3\nline 127.0.0.4\n", reportOf(""))
			for c, want := range map[string]int{"as64496": 2, "nl": 3, "": 4, "lab_hi": 0} {
				counts, err := st.RowCounts(ctx, 1, c)
				require.NoError(t, err)
				assert.Equal(t, want, counts[report.ScanNTP], "rows of %q counted by migration 4", c)
			}
			open, err := st.OpenFindings(ctx, "nl")
			require.NoError(t, err)
			assert.Len(t, open, 3)

			// A new run after the migration: 127.0.0.2 seen again, in nl.
			ip := netip.MustParseAddr("127.0.0.2")
			row := Row{Type: report.ScanNTP, Key: report.Key{IP: ip, ASN: 64496, Country: "NL"}, IP: ip.String(), Port: 123, Protocol: "udp", Line: "new " + ip.String()}
			cs, err := ParseConstituencies([]byte("constituencies:\n  - name: nl\n    countries: [nl]\n"))
			require.NoError(t, err)
			res, err := st.Import(ctx, Run{Source: "new", Started: time.UnixMicro(started).Add(24 * time.Hour), Types: []report.Type{report.ScanNTP}},
				func(yield func(Row, error) bool) { yield(row, nil) }, ImportOptions{Constituencies: cs})
			require.NoError(t, err)
			var b bytes.Buffer
			_, err = st.WriteReport(ctx, &b, ReportQuery{RunID: res.Run.ID, Type: report.ScanNTP, Constituency: "nl"})
			require.NoError(t, err)
			assert.Contains(t, b.String(), "\nnew 127.0.0.2\n")
		})
	}
}

// TestMigration6 migrates a version-5 delivery log (one entry per
// report and contact) to parts and claims: each entry becomes part 0 of
// 1, unchanged, and a mail sent stays sent.
func TestMigration6(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			ctx := context.Background()
			dsn := engineDSN(t, engine, "v5.db")
			st, err := open(ctx, dsn, 5)
			require.NoError(t, err)
			started := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
			exec := execer(t, st)
			exec(`INSERT INTO runs (uid, source, day, started, finished, probes, complete, interrupted, scanner, stats, rows_total)
				VALUES ('u1', 'old', '2026-11-01', ?, ?, 'scan_ntp', 1, 0, 'v5', '{}', 0)`, started, started)
			exec(`INSERT INTO deliveries (run_id, type, constituency, contact, status, message_id, answer, attempts, updated)
				VALUES (1, 'scan_ntp', 'nl', 'noc@example.nl', 'sent', 'm1@x', '250 ok', 1, ?),
				       (1, 'scan_ntp', 'nl', 'cert@example.nl', 'failed', 'm2@x', '451 later', 2, ?)`, started, started)
			require.NoError(t, st.Close())

			st, err = Open(ctx, dsn)
			require.NoError(t, err)
			defer st.Close()
			ms, err := st.Mailings(ctx, "2026-11-01")
			require.NoError(t, err)
			require.Len(t, ms, 2)
			assert.Equal(t, Mailing{RunID: 1, Type: report.ScanNTP, Constituency: "nl", Contact: "cert@example.nl", Part: 0, Parts: 1,
				Status: Failed, MessageID: "m2@x", Answer: "451 later", Attempts: 2, Updated: time.UnixMicro(started).UTC()}, ms[0])
			assert.Equal(t, Sent, ms[1].Status)
			// The failed one can be claimed, the sent one cannot.
			ok, err := st.ClaimMailings(ctx, "run2", time.Minute, []Mailing{ms[0]})
			require.NoError(t, err)
			assert.True(t, ok)
			ok, err = st.ClaimMailings(ctx, "run2", time.Minute, []Mailing{ms[1]})
			require.NoError(t, err)
			assert.False(t, ok)
		})
	}
}

// TestClaimMailings: a mail is claimed by one run at a time, all of a
// mail's entries or none; an expired lease frees it; sent and rejected
// ones are never claimed again.
func TestClaimMailings(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			ctx := context.Background()
			dsn := engineDSN(t, engine, "c.db")
			st, err := Open(ctx, dsn)
			require.NoError(t, err)
			defer st.Close()
			_, err = st.db.ExecContext(ctx, st.q(`INSERT INTO runs (uid, source, day, started, finished, probes, complete, interrupted, scanner, stats, rows_total)
				VALUES ('u1', 'x', '2026-11-01', 0, 0, 'scan_ntp', 1, 0, 'v', '{}', 0)`))
			require.NoError(t, err)
			m := func(c string, part int) Mailing {
				return Mailing{RunID: 1, Type: report.ScanNTP, Constituency: c, Contact: "noc@example.net", Part: part, Parts: 2, MessageID: "id@x"}
			}
			claim := func(holder string, lease time.Duration, ms ...Mailing) bool {
				t.Helper()
				ok, err := st.ClaimMailings(ctx, holder, lease, ms)
				require.NoError(t, err)
				return ok
			}
			assert.True(t, claim("a", time.Hour, m("nl", 1)))
			assert.False(t, claim("b", time.Hour, m("nl", 1)), "held by a")
			assert.True(t, claim("a", time.Hour, m("nl", 1)), "a again (the next attempt)")
			// b claims part 2 and part 1 together: nothing is claimed.
			assert.False(t, claim("b", time.Hour, m("nl", 2), m("nl", 1)))
			assert.True(t, claim("c", time.Hour, m("nl", 2)), "part 2 was left free")
			// An expired lease: a run that stopped.
			assert.True(t, claim("d", -time.Second, m("de", 1)))
			assert.True(t, claim("e", time.Hour, m("de", 1)))
			// Answers end the claims; sent and rejected stay so.
			for _, s := range []MailStatus{Sent, Rejected} {
				d := m("nl", 1)
				if s == Rejected {
					d = m("nl", 2)
				}
				d.Status = s
				require.NoError(t, st.RecordMailing(ctx, d))
				assert.False(t, claim("a", time.Hour, d), s)
			}
			d := m("de", 1)
			d.Status = Sending // no answer after the data: free for the next run
			require.NoError(t, st.RecordMailing(ctx, d))
			assert.True(t, claim("f", time.Hour, d))
			d.Status = Sent
			require.NoError(t, st.RecordMailing(ctx, d))
			d.Status = Failed
			require.NoError(t, st.RecordMailing(ctx, d))
			got, err := st.MailingsOf(ctx, 1, report.ScanNTP, "de", "noc@example.net")
			require.NoError(t, err)
			require.Len(t, got, 1)
			assert.Equal(t, Sent, got[0].Status, "sent is never downgraded")
		})
	}
}

// engineDSN is a new store's DSN on engine: a file in the test's
// directory, or a database of the test's PostgreSQL.
func engineDSN(t *testing.T, engine, file string) string {
	if engine == "postgres" {
		return pgtest.DSN(t)
	}
	return "sqlite:" + filepath.Join(t.TempDir(), file)
}

// execer runs statements on a store's writer, failing the test on an
// error.
func execer(t *testing.T, st *Store) func(q string, args ...any) {
	return func(q string, args ...any) {
		t.Helper()
		_, err := st.db.ExecContext(context.Background(), st.q(q), args...)
		require.NoError(t, err, q)
	}
}
