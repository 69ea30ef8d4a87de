package main

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/ntpctl/ntpctl/report"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ntpctl/ntpctl/internal/schematest"
)

// TestLab: the no-argument lab runs the whole cycle and shows what the
// lab's history makes of it.
func TestLab(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), nil, &out, &out))
	s := out.String()
	root := s[strings.Index(s, "stay in ")+len("stay in "):]
	t.Cleanup(func() { os.RemoveAll(strings.TrimSpace(root)) })
	for _, want := range []string{
		"run 7 (2026-11-07",
		"    4  2026-11-04  06:00:00         3  no ",
		"as64496, run 6 (2026-11-06) → run 7 (2026-11-07)\n  new: 0\n  fixed: 1\n    scan_ntp         127.42.0.3 ",
		"first seen 2026-11-01, last seen 2026-11-03, fixed 2026-11-06",
	} {
		assert.Contains(t, s, want)
	}
}

// TestImportScannerOutput: a directory the scanner wrote (its own lab)
// imports with every row of its reports, and a second import changes
// nothing.
func TestImportScannerOutput(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the scanner")
	}
	dir := filepath.Join(t.TempDir(), "scan")
	cmd := exec.Command("go", "run", "../scanner", "-lab", "-out", dir)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	db := filepath.Join(t.TempDir(), "s.db")
	var buf bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"import", "-db", db, dir}, &buf, &buf))
	assert.Contains(t, buf.String(), "imported")
	csvs, err := filepath.Glob(filepath.Join(dir, "*-scan*.csv"))
	require.NoError(t, err)
	lines := 0
	for _, f := range csvs {
		if _, err := report.TypeFromFileName(f); err != nil {
			continue // the NTP MRU and Accessible NTP reports stay in the directory
		}
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		lines += bytes.Count(b, []byte("\n")) - 1
	}
	assert.Contains(t, buf.String(), " "+strconv.Itoa(lines)+" rows")
	buf.Reset()
	require.NoError(t, run(context.Background(), []string{"import", "-db", db, dir}, &buf, &buf))
	assert.Contains(t, buf.String(), "already in the store")
	buf.Reset()
	require.NoError(t, run(context.Background(), []string{"runs", "-db", db}, &buf, &buf))
	assert.Contains(t, buf.String(), " yes ")
}

// TestJSONOutputs: stats and series print documents of the project's
// JSON Schema.
func TestJSONOutputs(t *testing.T) {
	root := t.TempDir()
	db := filepath.Join(root, "s.db")
	var dirs []string
	for day := 1; day <= 3; day++ {
		dir, err := writeLabDay(root, day)
		require.NoError(t, err)
		dirs = append(dirs, dir)
	}
	var buf bytes.Buffer
	require.NoError(t, run(context.Background(), append([]string{"import", "-db", db}, dirs...), &buf, &buf))
	buf.Reset()
	require.NoError(t, run(context.Background(), []string{"stats", "-db", db, "-run", "3"}, &buf, &buf))
	schematest.Validate(t, "store_run_stats", buf.Bytes())
	buf.Reset()
	require.NoError(t, run(context.Background(), []string{"series", "-db", db}, &buf, &buf))
	var points []json.RawMessage
	require.NoError(t, json.Unmarshal(buf.Bytes(), &points))
	require.Len(t, points, 3)
	for _, p := range points {
		schematest.Validate(t, "store_point", p)
	}
}
