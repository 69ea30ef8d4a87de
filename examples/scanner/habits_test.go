package main

import (
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/ntpctl/ntpctl/internal/schematest"
	"github.com/ntpctl/ntpctl/report"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Tests of the flags and statistics zmap and zgrab2 users expect:
// -dryrun, -max-targets, -source-ip and -interface, -bandwidth, the send
// rate over the whole scan and the concurrency the rate needs.

// TestSendRateInStats: after a scan at -rate 1000 of about 1.5 s the
// statistics file and the summary give the rate over the sending time:
// the requests sent over the time from the first to the last, as the
// test sees them, and within the rate; not that of the last second (the
// scan waits a second for its silent hosts after the last request, and
// that rate is about 0 by then).
func TestSendRateInStats(t *testing.T) {
	s, dir, stdout, _ := labScan(t, "-rate", "1000", "-lab-hosts", "1500", "-probes", "monitor")
	// Watch the counter: when the first request went out and when the
	// last did.
	var first, last time.Time
	var sent uint64
	quit, watched := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-quit:
				return
			case <-time.After(5 * time.Millisecond):
			}
			n := s.probes[0].proberStats().Sent
			if n > 0 && first.IsZero() {
				first = time.Now()
			}
			if n > sent {
				sent, last = n, time.Now()
			}
		}
	}()
	_, err, _ := runFor(t, s, nil, 30*time.Second)
	close(quit)
	<-watched
	require.NoError(t, err)
	b, err := os.ReadFile(files(t, dir)["-ntpctl-x-stats.json"])
	require.NoError(t, err)
	schematest.Validate(t, "scan_stats", b)
	var st report.JSONScanStats
	require.NoError(t, json.Unmarshal(b, &st))
	require.GreaterOrEqual(t, st.Sent, uint64(1500))
	seen := float64(sent) / last.Sub(first).Seconds()
	t.Logf("send rate %.0f/s, %.0f/s as watched", st.SendRate, seen)
	assert.InEpsilon(t, seen, st.SendRate, 0.1, "the scan's requests per second")
	assert.LessOrEqual(t, st.SendRate, 1000*1.05, "within -rate")
	assert.Equal(t, st.SendRate, st.Monitor.Prober.SendRate, "one probe: the prober's")
	assert.Contains(t, stdout.String(), fmt.Sprintf("%d requests sent, %.0f requests/s over the sending time", st.Sent, st.SendRate))
}
