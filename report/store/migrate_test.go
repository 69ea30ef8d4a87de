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
			dsn := "sqlite:" + filepath.Join(t.TempDir(), "v1.db")
			if engine == "postgres" {
				dsn = pgtest.DSN(t)
			}
			st, err := open(ctx, dsn, 1)
			require.NoError(t, err)
			started := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
			exec := func(q string, args ...any) {
				t.Helper()
				_, err := st.db.ExecContext(ctx, st.q(q), args...)
				require.NoError(t, err, q)
			}
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
