package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/internal/lab"
	"github.com/ntpctl/ntpctl/report"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// discoverScan is one scan of a sparse space on loopback: the lab's
// IPv4 hosts among every address of its /16, which the lab's wildcard
// socket receives and leaves unanswered (silent, as most of the Internet
// is), with every probe, with or without -discover. It returns the
// statistics and the addresses each report lists, by probe.
func discoverScan(tb testing.TB, l *lab.Lab, discover bool) (report.JSONScanStats, map[string]map[netip.Addr]bool) {
	tb.Helper()
	dir := tb.TempDir()
	out := filepath.Join(dir, "out")
	// Without -discover the control queries go to every address, and no
	// Mode 3 request is sent; with it, Mode 3 goes to every address and
	// the control queries only to the servers it found.
	probes := "monitor,version,mru"
	if discover {
		probes = "all"
	}
	args := []string{l.Prefix().String(), "-allow-loopback", "-port", fmt.Sprint(l.Port()), "-probes", probes,
		"-timeout", "1s", "-quiet", "300ms", "-retries", "0", "-rate", "40000", "-seed", "5",
		"-out", out, "-id", "d", "-progress", "none"}
	if discover {
		args = append(args, "-discover")
	}
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr, nil)
	require.Equal(tb, exitOK, code, "stderr: %s", stderr.String())
	statsFiles, _ := filepath.Glob(filepath.Join(out, "*-stats.json"))
	require.Len(tb, statsFiles, 1)
	raw, err := os.ReadFile(statsFiles[0])
	require.NoError(tb, err)
	var st report.JSONScanStats
	require.NoError(tb, json.Unmarshal(raw, &st))
	listed := map[string]map[netip.Addr]bool{}
	jsonl, _ := filepath.Glob(filepath.Join(out, "*-ntpctl-d.jsonl"))
	require.Len(tb, jsonl, 1)
	for _, rec := range readJSON(tb, jsonl[0]) {
		if rec.Reportable {
			if listed[string(rec.Report)] == nil {
				listed[string(rec.Report)] = map[netip.Addr]bool{}
			}
			listed[string(rec.Report)][rec.IP] = true
		}
	}
	return st, listed
}

// TestDiscover: on a sparse space (0.5 % of the addresses answer), the
// Mode 3 pass first roughly halves the requests, and the control
// reports it writes list every finding of the scan without it except
// the hosts that refuse Mode 3 (the lab has some), which is why the
// README says when not to use it. The MRU list goes only to READVAR's
// responders either way.
func TestDiscover(t *testing.T) {
	if testing.Short() {
		t.Skip("scans 65,536 loopback addresses twice")
	}
	noLeaks(t)
	l, err := lab.Start(context.Background(), lab.Config{})
	require.NoError(t, err)
	defer l.Close()
	plain, plainListed := discoverScan(t, l, false)
	disc, discListed := discoverScan(t, l, true)
	t.Logf("requests: %d without -discover, %d with (%.0f %%)", plain.Sent, disc.Sent, 100*float64(disc.Sent)/float64(plain.Sent))

	assert.False(t, plain.Discover)
	assert.Nil(t, plain.Accessible)
	assert.NotEmpty(t, plain.Space)
	assert.Empty(t, disc.Space, "a -discover run covers no space: the store closes nothing it did not ask")
	assert.True(t, disc.Discover)
	require.NotNil(t, disc.Accessible)
	require.NotNil(t, disc.Monitor)
	require.NotNil(t, disc.MRU)
	assert.Equal(t, uint64(1<<16), disc.Accessible.Prober.Targets, "Mode 3 to every address")
	assert.Equal(t, uint64(disc.Accessible.Replied), disc.Monitor.Prober.Targets, "monlist only to those that answered")
	assert.Equal(t, uint64(disc.Accessible.Replied), disc.Version.Prober.Targets)
	assert.Equal(t, uint64(1<<16), plain.Monitor.Prober.Targets)
	assert.Equal(t, uint64(plain.Version.Replied), plain.MRU.Prober.Targets, "the MRU list only to READVAR's responders")
	assert.Less(t, float64(disc.Sent), 0.6*float64(plain.Sent), "the discovery pass saves requests on a sparse space")

	// What -discover misses: exactly the listed hosts that refuse Mode 3.
	refuses := map[netip.Addr]bool{}
	for _, h := range l.Hosts() {
		if h.Time.Status == ntpctl.StatusNoAnswer && h.Sim != nil && h.Sim.NoTime {
			refuses[h.Addr.Addr()] = true
		}
	}
	require.NotEmpty(t, refuses, "the lab has hosts that refuse Mode 3")
	for _, typ := range []report.Type{report.ScanNTPMonitor, report.ScanNTP, report.ScanNTPMRU} {
		missed := 0
		for a := range plainListed[string(typ)] {
			if !discListed[string(typ)][a] {
				assert.True(t, refuses[a], "%s: %s missed by -discover but answers Mode 3", typ, a)
				missed++
			}
		}
		for a := range discListed[string(typ)] {
			assert.True(t, plainListed[string(typ)][a], "%s: %s listed only with -discover", typ, a)
		}
		assert.Less(t, missed, len(plainListed[string(typ)])/4, "%s", typ)
		t.Logf("%s: %d rows without -discover, %d with", typ, len(plainListed[string(typ)]), len(discListed[string(typ)]))
	}
	assert.NotEqual(t, len(plainListed[string(report.ScanNTPMonitor)]), len(discListed[string(report.ScanNTPMonitor)]),
		"some monlist amplifiers refuse Mode 3")
	assert.Empty(t, plainListed[string(report.ScanNTPAccessible)], "no Mode 3 without -discover and time")
	assert.Len(t, discListed[string(report.ScanNTPAccessible)], disc.Accessible.Report.Rows)
}

// BenchmarkDiscover measures the requests a scan of a sparse space
// sends with and without -discover (the lab's hosts among the 65,536
// addresses of its /16), and the share of the control findings the
// discovery pass keeps.
func BenchmarkDiscover(b *testing.B) {
	l, err := lab.Start(context.Background(), lab.Config{})
	require.NoError(b, err)
	defer l.Close()
	var plainSent, discSent, plainRows, discRows float64
	for b.Loop() {
		plain, pl := discoverScan(b, l, false)
		disc, dl := discoverScan(b, l, true)
		plainSent += float64(plain.Sent)
		discSent += float64(disc.Sent)
		for _, typ := range []report.Type{report.ScanNTPMonitor, report.ScanNTP, report.ScanNTPMRU} {
			plainRows += float64(len(pl[string(typ)]))
			discRows += float64(len(dl[string(typ)]))
		}
	}
	b.ReportMetric(plainSent/float64(b.N), "requests-plain")
	b.ReportMetric(discSent/float64(b.N), "requests-discover")
	b.ReportMetric(discSent/plainSent, "x-requests")
	b.ReportMetric(discRows/plainRows, "findings-kept")
}
