package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/internal/lab"
	"github.com/ntpctl/ntpctl/internal/schematest"
	"github.com/ntpctl/ntpctl/report"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mruRows returns the table rows of mrulist's (or ntpq -c mrulist's)
// output, split into their columns.
func mruRows(t *testing.T, out string) [][]string {
	t.Helper()
	var rows [][]string
	in := false
	for line := range strings.SplitSeq(out, "\n") {
		switch {
		case strings.HasPrefix(line, "====="):
			in = true
		case in && (strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#")): // ntpq ends with "# Collected …"
			in = false
		case in:
			f := strings.Fields(line)
			require.Len(t, f, 11, "row %q", line)
			rows = append(rows, f)
		}
	}
	return rows
}

// TestMRUList fetches the MRU list of lab hosts: the whole list of an
// ntpsec or ntpd 4.2.8 host, newest first in ntpq's columns; refused by
// an older daemon; no answer from a silent host; --json valid against
// its schema.
func TestMRUList(t *testing.T) {
	h := hostWhere(t, func(h lab.Host) bool {
		return h.MRU.Status == ntpctl.StatusOK && h.MRU.Entries > 40 && strings.HasPrefix(h.Daemon, "ntpsec")
	})
	out, errOut, code := runCmd(t, env{}, "mrulist", h.Addr.String())
	require.Equal(t, exitOK, code, "%s%s", out, errOut)
	assert.Contains(t, out, " lstint avgint rstr r m v  count    score   drop rport remote address\n"+strings.Repeat("=", 69)+"\n")
	rows := mruRows(t, out)
	assert.Len(t, rows, h.MRU.Entries)
	assert.Equal(t, "127.0.0.1", rows[0][10], "the asker is the newest")
	assert.Equal(t, "0", rows[0][0])
	for i := 1; i < len(rows); i++ {
		assert.LessOrEqual(t, len(rows[i-1][0]), len(rows[i][0])+1, "lstint grows down the table")
	}
	assert.Contains(t, out, "MRU list answered: "+plural(h.MRU.Entries, "client"))
	assert.Contains(t, out, "the whole list")

	out, errOut, code = runCmd(t, env{}, "mrulist", "--json", h.Addr.String())
	require.Equal(t, exitOK, code, errOut)
	schematest.Validate(t, "ntpctl_mrulist", []byte(out))
	var j report.JSONMRUList
	require.NoError(t, json.Unmarshal([]byte(out), &j))
	assert.Equal(t, "ok", j.Status)
	assert.True(t, j.Complete)
	assert.Len(t, j.Entries, h.MRU.Entries)
	assert.Equal(t, "127.0.0.1", j.Entries[0].IP)

	old := hostWhere(t, func(h lab.Host) bool { return h.MRU.Status == ntpctl.StatusServerError && h.Kind == lab.Amplifier })
	out, _, code = runCmd(t, env{}, "mrulist", old.Addr.String())
	assert.Equal(t, exitRefused, code, out)
	assert.Contains(t, out, "REQ_NONCE refused: server error 3 (CERR_BADOP)")

	silent := hostWhere(t, kind(lab.Silent))
	out, _, code = runCmd(t, env{}, append([]string{"mrulist"}, append(fastArgs, silent.Addr.String())...)...)
	assert.Equal(t, exitNoAnswer, code, out)
	assert.Contains(t, out, "no answer to REQ_NONCE")
	out, _, code = runCmd(t, env{}, append([]string{"mrulist", "--json"}, append(fastArgs, silent.Addr.String())...)...)
	assert.Equal(t, exitNoAnswer, code, out)
	schematest.Validate(t, "ntpctl_mrulist", []byte(out))

	_, errOut, code = runCmd(t, env{}, "mrulist", "--frags", "200", h.Addr.String())
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "--frags is 1 to 128")
}
