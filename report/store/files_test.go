package store_test

import (
	"context"
	"encoding/csv"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ntpctl/ntpctl/report"
	"github.com/ntpctl/ntpctl/report/store"
)

func TestPublish(t *testing.T) {
	engines(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		ids := importLab(t, st, []int{1, 2})
		f, err := st.Publish(ctx, ids[1], report.ScanNTP, "nl", false, "2026-11-01-scan_ntp-nl-geo.csv")
		require.NoError(t, err)
		assert.Len(t, f.Token, store.TokenLen)
		assert.Equal(t, "2026-11-01", f.Day)
		again, err := st.Publish(ctx, ids[1], report.ScanNTP, "nl", false, "2026-11-01-scan_ntp-nl-geo.csv")
		require.NoError(t, err)
		assert.Equal(t, f.Token, again.Token, "a file keeps its token")
		other, err := st.Publish(ctx, ids[2], report.ScanNTP, "nl", false, "2026-11-02-scan_ntp-nl-geo.csv")
		require.NoError(t, err)
		assert.NotEqual(t, f.Token, other.Token)

		got, err := st.FileByToken(ctx, f.Token)
		require.NoError(t, err)
		assert.Equal(t, f, got)
		for _, bad := range []string{"", "x", strings.Repeat("g", 32), strings.ToUpper(f.Token), f.Token + "0"} {
			_, err := st.FileByToken(ctx, bad)
			assert.ErrorIs(t, err, store.ErrNotFound, bad)
		}
		require.NoError(t, st.Revoke(ctx, f.Token))
		_, err = st.FileByToken(ctx, f.Token)
		assert.ErrorIs(t, err, store.ErrNotFound, "revoked")
		assert.ErrorIs(t, st.Revoke(ctx, f.Token), store.ErrNotFound, "revoked twice")
		revoked, err := st.Publish(ctx, ids[1], report.ScanNTP, "nl", false, "2026-11-01-scan_ntp-nl-geo.csv")
		require.NoError(t, err)
		assert.False(t, revoked.Revoked.IsZero(), "a revoked file stays revoked")
	})
}

func TestRowsWhere(t *testing.T) {
	engines(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		ids := importLab(t, st, []int{1, 2, 3})
		rows := func(rf store.RowFilter) string {
			var out []string
			require.NoError(t, st.RowsWhere(ctx, rf, func(r store.Record) error {
				rec, err := csv.NewReader(strings.NewReader(r.Line)).Read()
				require.NoError(t, err)
				ip := rec[2]
				for n, h := range labHosts {
					if h.ip == ip {
						ip = n
					}
				}
				out = append(out, r.Day[8:]+string(r.Type)[5:]+":"+ip)
				return nil
			}))
			return strings.Join(out, " ")
		}
		v := []report.Type{report.ScanNTP}
		assert.Equal(t, "01ntp:A 01ntp:B 01ntp:F 02ntp:A 02ntp:B 03ntp:A 03ntp:B 03ntp:F",
			rows(store.RowFilter{Types: v, Constituencies: []string{"nl"}}))
		assert.Equal(t, "03ntp:A 03ntp:B 03ntp:F 02ntp:A 02ntp:B",
			rows(store.RowFilter{Types: v, Constituencies: []string{"nl"}, From: "2026-11-02", Descending: true}))
		assert.Equal(t, "01ntpmonitor:A 02ntpmonitor:A",
			rows(store.RowFilter{Types: []report.Type{report.ScanNTPMonitor}, Until: "2026-11-02"}))
		assert.Equal(t, "02ntp:N 03ntp:F 03ntp:E 03ntp:N",
			rows(store.RowFilter{Types: v, From: "2026-11-02", Prefix: netip.MustParsePrefix("127.42.1.0/24")}))
		assert.Equal(t, "01ntp:C 02ntp:C",
			rows(store.RowFilter{Types: v, ASN: 64496, Country: "de"}))
		assert.Equal(t, "", rows(store.RowFilter{Constituencies: []string{"nobody"}}))
		// The counts kept at import are the rows' own.
		for _, id := range ids {
			for _, c := range []string{"", "nl", "as64496", "lab_hi"} {
				counts, err := st.RowCounts(ctx, id, c)
				require.NoError(t, err)
				want := map[report.Type]int{}
				var cs []string
				if c != "" {
					cs = []string{c}
				}
				require.NoError(t, st.RowsWhere(ctx, store.RowFilter{Constituencies: cs}, func(r store.Record) error {
					if r.RunID == id {
						want[r.Type]++
					}
					return nil
				}))
				assert.Equal(t, want, counts, "run %d, %q", id, c)
			}
		}
	})
}
