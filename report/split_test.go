package report

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// splitInMemory is Split as it was before Splitter, kept as the oracle:
// every row held, grouped by file name, each group written by WriteAll.
func splitInMemory[T Row](dir string, rows []T, by SplitBy, opt SplitOptions) ([]string, error) {
	date := opt.Date
	if date.IsZero() {
		for i := range rows {
			if t, err := time.Parse(TimeFormat, schemaOf[T]().common(&rows[i]).Timestamp); err == nil && (date.IsZero() || t.Before(date)) {
				date = t
			}
		}
	}
	groups := map[string][]T{}
	for i := range rows {
		k := KeyOf(&rows[i])
		typ := opt.Type
		if typ == "" {
			typ = schemaOf[T]().typ
			if k.IP.Is6() {
				typ = ipv6Type(typ)
			}
		}
		id := "asunknown"
		if by == SplitByCountry {
			id = "unknown"
			if k.Country != "" {
				id = strings.ToLower(k.Country)
			}
		} else if k.ASN != 0 {
			id = "as" + strconv.FormatUint(uint64(k.ASN), 10)
		}
		name := FileName(date, typ, opt.IDPrefix+id)
		groups[name] = append(groups[name], rows[i])
	}
	if len(groups) == 0 {
		return nil, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var paths []string
	for _, name := range slices.Sorted(maps.Keys(groups)) {
		var buf bytes.Buffer
		if err := WriteAll(&buf, groups[name], opt.Writer); err != nil {
			return paths, err
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			return paths, err
		}
		paths = append(paths, path)
	}
	return paths, nil
}

// randomCommon makes the common columns of a row that tests the split:
// both families, unparsable addresses, ASNs and countries that are
// unknown, out of range, in either case, or hostile (ids FileName makes
// alike, letters whose case mapping leaves ASCII), and timestamps in no
// order, some missing or invalid.
func randomCommon(r *rand.Rand, i int) Common {
	ips := []string{"192.0.2." + strconv.Itoa(i%250), "2001:db8::" + strconv.FormatInt(int64(i%4000), 16), "::ffff:198.51.100.1", "", "bogus", "fe80::1%eth0"}
	asns := []string{"64496", "64497", "64500", "", "0", "abc", "4294967296", "0064496", strconv.Itoa(65000 + i%7)}
	geos := []string{"DE", "de", "FR", "", "D E", "D_E", "\u017Fe", "\u212Ae", "\u0130T", "ZZ", "n-l"}
	stamps := []string{"2026-03-24 01:02:03", "2026-03-23 23:59:59", "", "not a time", "2026-03-25 00:00:00", "2025-12-31 10:00:00"}
	return Common{
		Timestamp: stamps[r.IntN(len(stamps))], Severity: "medium", IP: ips[r.IntN(len(ips))], Protocol: "udp",
		Port: "123", ASN: asns[r.IntN(len(asns))], Geo: geos[r.IntN(len(geos))], Sector: "say \"hi\",\nbye",
	}
}

func randomMonitorRows(n int, seed uint64) []MonitorRow {
	r := rand.New(rand.NewPCG(seed, 1))
	rows := make([]MonitorRow, n)
	for i := range rows {
		rows[i] = MonitorRow{Common: randomCommon(r, i), Packets: strconv.Itoa(i), ResponseSize: strconv.Itoa(8 + 72*i)}
		if i%5 == 0 {
			rows[i].Extra = map[string]string{"sic": "4813"}
		}
	}
	return rows
}

func randomVersionRows(n int, seed uint64) []VersionRow {
	r := rand.New(rand.NewPCG(seed, 2))
	base := versionRows()
	rows := make([]VersionRow, n)
	for i := range rows {
		rows[i] = base[i%len(base)]
		rows[i].Common = randomCommon(r, i)
	}
	return rows
}

// readDir returns the files of dir by name.
func readDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return out
	}
	require.NoError(t, err)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		out[e.Name()] = string(b)
	}
	return out
}

// Splitter (and Split over it) writes the files the in-memory Split
// wrote, byte for byte, whatever the options, with few files open.
func TestSplitterMatchesSplit(t *testing.T) {
	opts := []SplitOptions{
		{},
		{IDPrefix: "cert-", MaxOpenFiles: 1},
		{Type: ScanNTPMonitor, MaxOpenFiles: 2, Writer: WriterOptions{Layout: Layout2019}},
		{Date: probeTime, IDPrefix: "-x--", MaxOpenFiles: 3, Writer: WriterOptions{NeutralizeFormulas: true}},
		{Type: Scan6NTP, Writer: WriterOptions{Layout: Layout202208}},
	}
	for i, opt := range opts {
		for _, by := range []SplitBy{SplitByASN, SplitByCountry} {
			name := fmt.Sprintf("%d-%d", i, by)
			t.Run("monitor-"+name, func(t *testing.T) { checkSplit(t, randomMonitorRows(500, uint64(i)), by, opt) })
			t.Run("version-"+name, func(t *testing.T) { checkSplit(t, randomVersionRows(300, uint64(i)), by, opt) })
		}
	}
	t.Run("empty", func(t *testing.T) { checkSplit[MonitorRow](t, nil, SplitByASN, SplitOptions{}) })
}

func checkSplit[T Row](t *testing.T, rows []T, by SplitBy, opt SplitOptions) {
	old, stream := filepath.Join(t.TempDir(), "old"), filepath.Join(t.TempDir(), "new")
	wantPaths, err := splitInMemory(old, rows, by, opt)
	require.NoError(t, err)
	paths, err := Split(stream, rows, by, opt)
	require.NoError(t, err)
	base := func(ps []string) []string {
		var out []string
		for _, p := range ps {
			out = append(out, filepath.Base(p))
		}
		return out
	}
	assert.Equal(t, base(wantPaths), base(paths))
	want, got := readDir(t, old), readDir(t, stream)
	require.Equal(t, slices.Sorted(maps.Keys(want)), slices.Sorted(maps.Keys(got)), "no temporary file is left")
	for name, b := range want {
		require.Equal(t, b, got[name], name)
	}
	if len(rows) > 0 {
		assert.Greater(t, len(want), 3, "the rows make several files")
	}
}

// 200,000 rows over 5,000 keys, at most 8 files open: the heap grows by
// far less than the rows would take, every file has its header once and
// its rows in order, and no descriptor is left behind.
func TestSplitterBoundedMemory(t *testing.T) {
	const rows, keys, maxOpen = 200_000, 5_000, 8
	dir := t.TempDir()
	fds := func() int { e, _ := os.ReadDir("/proc/self/fd"); return len(e) }
	fd0 := fds()
	s, err := NewSplitter[MonitorRow](dir, SplitByASN, SplitOptions{Type: ScanNTPMonitor, MaxOpenFiles: maxOpen})
	require.NoError(t, err)
	row := MonitorRow{Common: Common{Timestamp: "2026-03-24 02:00:00", Severity: "medium", Protocol: "udp", Port: "123",
		Geo: "FR", City: "PARIS"}, Packets: "100", Amplification: "916.67"}
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	for i := range rows {
		// Runs of 20 rows per key, the keys in turn: each file is
		// closed and reopened for appending ten times.
		k := (i / 20) % keys
		row.IP = "198.51." + strconv.Itoa(k/250) + "." + strconv.Itoa(k%250)
		row.ASN = strconv.Itoa(1 + k)
		row.ResponseSize = strconv.Itoa(i)
		if err := s.Write(row); err != nil {
			t.Fatal(err)
		}
		if i == rows/2 && fd0 > 0 {
			assert.LessOrEqual(t, fds()-fd0, maxOpen, "descriptors open")
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&m1)
	held := float64(rows) * float64(unsafe.Sizeof(row)) // the rows' structs alone, strings not counted
	grown := float64(m1.HeapAlloc) - float64(m0.HeapAlloc)
	t.Logf("heap grew %.1f MB; the rows would take more than %.1f MB", grown/1e6, held/1e6)
	assert.Less(t, grown, held/10)
	require.NoError(t, s.Close())
	if fd0 > 0 {
		assert.Equal(t, fd0, fds(), "every file closed")
	}
	paths := s.Files()
	require.Len(t, paths, keys)
	total := 0
	for _, p := range []string{paths[0], paths[keys/2], paths[keys-1]} {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		got, err := ReadAll[MonitorRow](bytes.NewReader(b), ReaderOptions{})
		require.NoError(t, err)
		require.Len(t, got, rows/keys, p)
		assert.Equal(t, 1, bytes.Count(b, []byte(`"timestamp"`)), "one header")
		for i := 1; i < len(got); i++ {
			a, _ := strconv.Atoi(got[i-1].ResponseSize)
			b, _ := strconv.Atoi(got[i].ResponseSize)
			require.Less(t, a, b, "rows in order")
		}
		total += len(got)
	}
	assert.Equal(t, 3*rows/keys, total)
}

// A file that cannot be written does not keep the others from being
// written; Close joins the failures.
func TestSplitterFailures(t *testing.T) {
	rows := monitorRows() // AS64496, AS64511, no AS
	dir := t.TempDir()
	// A non-empty directory where one file is to go: its rename fails.
	blocked := filepath.Join(dir, "2026-03-24-scan_ntpmonitor-as64511.csv")
	require.NoError(t, os.MkdirAll(filepath.Join(blocked, "x"), 0o755))
	// An existing file is replaced.
	replaced := filepath.Join(dir, "2026-03-24-scan_ntpmonitor-as64496.csv")
	require.NoError(t, os.WriteFile(replaced, []byte("old"), 0o644))
	paths, err := Split(dir, rows, SplitByASN, SplitOptions{Type: ScanNTPMonitor})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "as64511.csv")
	assert.Equal(t, []string{replaced, filepath.Join(dir, "2026-03-24-scan_ntpmonitor-asunknown.csv")}, paths)
	b, err := os.ReadFile(replaced)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(b), `"timestamp"`))
	left, _ := filepath.Glob(filepath.Join(dir, ".*.part"))
	assert.Empty(t, left, "the failed file's temporary file is removed")

	// A directory that cannot be made: every row fails, and Close says
	// so once.
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	s, err := NewSplitter[MonitorRow](filepath.Join(file, "sub"), SplitByCountry, SplitOptions{})
	require.NoError(t, err)
	for _, r := range rows {
		assert.Error(t, s.Write(r))
	}
	err = s.Close()
	require.Error(t, err)
	assert.Len(t, strings.Split(err.Error(), "\n"), 1, "%v", err)
	assert.Empty(t, s.Files())
	assert.ErrorIs(t, s.Write(rows[0]), ErrSplitterClosed)
	assert.Equal(t, err, s.Close(), "Close again")

	_, err = NewSplitter[VersionRow](dir, 0, SplitOptions{})
	assert.ErrorIs(t, err, ErrSplitBy)
	_, err = NewSplitter[VersionRow](dir, SplitByASN, SplitOptions{Writer: WriterOptions{Layout: numLayouts}})
	assert.ErrorIs(t, err, ErrLayout)
	_, err = Split(dir, rows, SplitByASN, SplitOptions{Writer: WriterOptions{Layout: numLayouts}})
	assert.ErrorIs(t, err, ErrLayout)
}

// TestSplitterAfterAKilledRun: temporary files a killed run left behind
// (however many) do not stand in the way, and Flush puts the rows on disk
// before Close.
func TestSplitterAfterAKilledRun(t *testing.T) {
	rows := monitorRows()
	dir := t.TempDir()
	for i := range 150 {
		name := filepath.Join(dir, ".scan_ntpmonitor-as64496.csv."+strconv.Itoa(i)+".part")
		require.NoError(t, os.WriteFile(name, nil, 0o644))
	}
	s, err := NewSplitter[MonitorRow](dir, SplitByASN, SplitOptions{Type: ScanNTPMonitor})
	require.NoError(t, err)
	for _, r := range rows {
		require.NoError(t, s.Write(r))
	}
	require.NoError(t, s.Flush())
	parts, _ := filepath.Glob(filepath.Join(dir, ".scan_ntpmonitor-as64496.csv.*.part"))
	var written int64
	for _, p := range parts {
		fi, err := os.Stat(p)
		require.NoError(t, err)
		written += fi.Size()
	}
	assert.Positive(t, written, "flushed before Close")
	require.NoError(t, s.Close())
	assert.Len(t, s.Files(), 3)
}
