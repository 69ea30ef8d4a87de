//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ntpctl/ntpctl/report"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDiskFullStats: on a small file system that fills up, the
// statistics count only the rows the reports hold, and say the scan
// failed. (A loop-mounted tmpfs needs root; without it the test skips.)
func TestDiskFullStats(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	defer syscall.Unmount(dir, 0)
	out := filepath.Join(dir, "out")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"-out", out, "-id", "x", "-progress", "none", "-lab-hosts", "2000",
		"-seed", "4", "-json-all", "-probes", "both"}, &stdout, &stderr, nil)
	assert.Equal(t, exitError, code, "a failed write fails the run: %s", stderr.String())
	inFiles := map[string]int{}
	for _, suffix := range []string{"-scan_ntpmonitor-x.csv", "-scan_ntp-x.csv", "-scan6_ntpmonitor-x.csv", "-scan6_ntp-x.csv"} {
		path := files(t, out)[suffix]
		if path == "" {
			continue
		}
		if strings.Contains(suffix, "monitor") {
			inFiles["monitor"] += len(readCSV[report.MonitorRow](t, path))
		} else {
			inFiles["version"] += len(readCSV[report.VersionRow](t, path))
		}
	}
	b, err := os.ReadFile(files(t, out)["-ntpctl-x-stats.json"])
	if err != nil {
		t.Skipf("not even the statistics fit: %v", err)
	}
	var st report.JSONScanStats
	require.NoError(t, json.Unmarshal(b, &st))
	assert.NotEmpty(t, st.Failed)
	assert.Equal(t, inFiles["monitor"], st.Monitor.Report.Rows)
	assert.Equal(t, inFiles["version"], st.Version.Report.Rows)
}
