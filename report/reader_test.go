package report

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The hand-made files in testdata/layouts have every historical layout of
// report-schemas.md §6; the 2022 ones are in the website samples' quoting
// style, the others in real reports' style.
func TestReadHistoricalLayouts(t *testing.T) {
	for _, tc := range []struct {
		file   string
		layout Layout
	}{
		{"scan_ntp-2014.csv", Layout2014},
		{"scan_ntp-2019.csv", Layout2019},
		{"scan_ntp-2022-01.csv", Layout2022},
		{"scan_ntp-2022-08.csv", Layout202208},
		{"scan_ntp-2023-11-18.csv", Layout20231118},
		{"scan_ntp-2023-11-25.csv", Layout20231125},
	} {
		t.Run(tc.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", "layouts", tc.file))
			require.NoError(t, err)
			r := NewReader[VersionRow](bytes.NewReader(b), ReaderOptions{})
			h, err := r.Header()
			require.NoError(t, err)
			l, ok := DetectLayout(ScanNTP, h)
			require.True(t, ok)
			assert.Equal(t, tc.layout, l)
			rows, err := ReadAll[VersionRow](bytes.NewReader(b), ReaderOptions{})
			require.NoError(t, err)
			require.Len(t, rows, 2)
			r0, r1 := rows[0], rows[1]
			assert.Equal(t, "198.51.100.4", r0.IP)
			assert.Equal(t, "123", r0.Port)
			assert.Equal(t, "2019-09-01 10:11:12", r0.Timestamp)
			assert.Equal(t, "ntpd 4.2.6p5@1.2349-o Fri Jul 22 17:30:51 UTC 2016 (1)", r0.Version)
			assert.Equal(t, "-22", r0.Precision)
			assert.Equal(t, "-11.962", r0.Frequency)
			assert.Equal(t, "10", r0.TC)
			assert.Equal(t, "cisco", r1.System)
			assert.Equal(t, "16", r1.Stratum)
			assert.Equal(t, 2, r0.Line)
			assert.Equal(t, 3, r1.Line)
			cols := strings.Join(h, ",")
			if strings.Contains(cols, "sector") {
				assert.Equal(t, "Communications, Service Provider, and Hosting Service", r0.Sector)
			}
			if strings.Contains(cols, "sic") {
				assert.Equal(t, map[string]string{"sic": "0"}, r0.Extra)
			} else {
				assert.Nil(t, r0.Extra)
			}
			if strings.Contains(cols, "response_size") {
				assert.Equal(t, "468", r0.ResponseSize)
				assert.Equal(t, "27.00", r1.Amplification)
			}
			if strings.Contains(cols, "tag") {
				assert.Equal(t, "ntpversion", r0.Tag)
			}
			if strings.Contains(cols, "severity") {
				assert.Equal(t, "medium", r0.Severity)
				assert.Equal(t, "ptr", r0.HostnameSource)
			}
			// Written again in the same layout, a real-style file comes
			// back byte for byte.
			if !strings.Contains(tc.file, "2022") {
				assert.Equal(t, string(b), string(writeRows(t, rows, WriterOptions{Layout: tc.layout})))
			}
		})
	}
	for _, tc := range []struct {
		file   string
		layout Layout
	}{
		{"scan_ntpmonitor-2015.csv", Layout2014},
		{"scan_ntpmonitor-2016.csv", Layout2019}, // 2016 and 2022 share one list; the older is reported
		{"scan_ntpmonitor-2022-08.csv", Layout202208},
		{"scan_ntpmonitor-2023-11-18.csv", Layout20231118},
		{"scan_ntpmonitor-2023-11-25.csv", Layout20231125},
	} {
		t.Run(tc.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", "layouts", tc.file))
			require.NoError(t, err)
			r := NewReader[MonitorRow](bytes.NewReader(b), ReaderOptions{})
			h, err := r.Header()
			require.NoError(t, err)
			l, ok := DetectLayout(ScanNTPMonitor, h)
			require.True(t, ok)
			assert.Equal(t, tc.layout, l)
			rows, err := ReadAll[MonitorRow](bytes.NewReader(b), ReaderOptions{})
			require.NoError(t, err)
			require.Len(t, rows, 2)
			assert.Equal(t, "192.0.2.44", rows[0].IP)
			assert.Equal(t, "2", rows[0].Packets)
			assert.Equal(t, "520", rows[0].ResponseSize, "size → response_size")
			assert.Equal(t, "100", rows[1].Packets)
			assert.Equal(t, "", rows[1].ResponseSize)
			assert.Equal(t, "LOS ANGELES", rows[0].City)
			assert.Equal(t, "520", rows[0].Values()[15])
			v, ok := rows[0].Get("size")
			assert.True(t, ok)
			assert.Equal(t, "520", v)
			if !strings.Contains(tc.file, "2022") {
				assert.Equal(t, string(b), string(writeRows(t, rows, WriterOptions{Layout: tc.layout})))
			}
		})
	}
}

func TestReadWebsiteStyle(t *testing.T) {
	// Everything quoted, as in some exports, and the website's minimal
	// quoting, mixed; CR LF line ends; a BOM; blank lines; columns in an
	// order no layout has, plus an unknown one.
	in := "\uFEFF\"port\",\"ip\",\"timestamp\",\"packets\",\"size\",\"x-extra\"\r\n" +
		"\"123\",\"192.0.2.1\",\"2022-01-01 00:00:00\",\"3\",\"1184\",\"a \"\"b\"\"\"\r\n" +
		"\r\n" +
		"123,192.0.2.2,\"2022-01-01 00:00:01\",1,80,\r\n"
	rows, err := ReadAll[MonitorRow](strings.NewReader(in), ReaderOptions{})
	require.NoError(t, err)
	require.Len(t, rows, 2)
	assert.Equal(t, MonitorRow{
		Common: Common{
			Port: "123", IP: "192.0.2.1", Timestamp: "2022-01-01 00:00:00",
		},
		Packets: "3", ResponseSize: "1184", Extra: map[string]string{"x-extra": `a "b"`}, Line: 2,
	}, rows[0])
	assert.Equal(t, 4, rows[1].Line)
	assert.Equal(t, "", rows[1].Extra["x-extra"])
}

func TestReadQuotedLineBreak(t *testing.T) {
	in := `"timestamp","ip","port","hostname"` + "\n" +
		`"2022-01-01 00:00:00","192.0.2.1",123,"two` + "\n" + `lines"` + "\n" +
		`"2022-01-01 00:00:01","192.0.2.2",123,"x"` + "\n"
	rows, err := ReadAll[MonitorRow](strings.NewReader(in), ReaderOptions{})
	require.NoError(t, err)
	require.Len(t, rows, 2)
	assert.Equal(t, "two\nlines", rows[0].Hostname)
	assert.Equal(t, 4, rows[1].Line)
	// Written, the line break is flattened.
	assert.Contains(t, string(writeRows(t, rows, WriterOptions{})), `"two|lines"`)
}

func TestReadMalformed(t *testing.T) {
	in := strings.Join([]string{
		`"timestamp","ip","port","packets"`,
		`"2022-01-01 00:00:00","192.0.2.1",123,1`,   // 2 ok
		`"2022-01-01 00:00:00","192.0.2.2",123`,     // 3 too few fields
		`"2022-01-01 00:00:00","192.0.2.3",123,1,5`, // 4 too many
		`"2022-01-01 00:00:00","192.0.2.4"x,123,1`,  // 5 text after quote
		`"2022-01-01 00:00:00","192.0.2.5",123,1`,   // 6 ok
		`"2022-01-01 00:00:00","192.0.2.6,123,1`,    // 7 unclosed quote
		`"2022-01-01 00:00:00","192.0.2.7",123,2`,   // 8 ok
		`"2022-01-01 00:00:00","not an ip",123,1`,   // 9 bad ip
		`"2022-01-01 00:00:00","192.0.2.9",65536,1`, // 10 bad port
		`"2022-01-01T00:00:00Z","192.0.2.10",123,1`, // 11 bad timestamp
		`,,,`, // 12 ok: all empty
		`"2022-01-01 00:00:00","192.0.2.12",123,"a"b"`, // 13 text after quote
		`"2022-01-01 00:00:00","192.0.2.13",123,3`,     // 14 ok
	}, "\n") + "\n"
	r := NewReader[MonitorRow](strings.NewReader(in), ReaderOptions{})
	var ips []string
	bad := map[int]error{}
	for row, err := range r.All() {
		if err != nil {
			var re *RowError
			require.True(t, errors.As(err, &re), "%v", err)
			bad[re.Line] = re.Err
			continue
		}
		ips = append(ips, row.IP)
	}
	assert.Equal(t, []string{"192.0.2.1", "192.0.2.5", "192.0.2.7", "", "192.0.2.13"}, ips)
	want := map[int]error{3: ErrFieldCount, 4: ErrFieldCount, 5: ErrQuote, 7: ErrQuote, 9: ErrInvalidValue, 10: ErrInvalidValue, 11: ErrInvalidValue, 13: ErrQuote}
	require.Len(t, bad, len(want))
	for line, e := range want {
		assert.ErrorIs(t, bad[line], e, "line %d", line)
	}
	_, err := r.Next()
	assert.Equal(t, io.EOF, err)

	// ReadAll keeps the good rows and joins the errors.
	rows, err := ReadAll[MonitorRow](strings.NewReader(in), ReaderOptions{})
	assert.Len(t, rows, 5)
	var re *RowError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, 3, re.Line)
	assert.Contains(t, err.Error(), "line 13")
}

func TestReadUnclosedQuoteAtEnd(t *testing.T) {
	in := "\"timestamp\",\"ip\",\"port\"\n,\"192.0.2.1\",123\n,\"192.0.2.2,123\n,\"192.0.2.3\",123\n,\"192.0.2.4\",123"
	rows, err := ReadAll[MonitorRow](strings.NewReader(in), ReaderOptions{MaxRecordLines: 2})
	var re *RowError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, 3, re.Line)
	require.Len(t, rows, 3)
	assert.Equal(t, "192.0.2.4", rows[2].IP)
	assert.Equal(t, 5, rows[2].Line)
}

func TestReadLongLine(t *testing.T) {
	in := "\"timestamp\",\"ip\",\"port\",\"hostname\"\n" +
		",\"192.0.2.1\",123,\"" + strings.Repeat("x", 200<<10) + "\"\n" +
		",\"192.0.2.2\",123,\n"
	rows, err := ReadAll[MonitorRow](strings.NewReader(in), ReaderOptions{MaxLineBytes: 100 << 10})
	require.ErrorIs(t, err, ErrLineTooLong)
	var re *RowError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, 2, re.Line)
	require.Len(t, rows, 1)
	assert.Equal(t, 3, rows[0].Line)

	rows, err = ReadAll[MonitorRow](strings.NewReader(in), ReaderOptions{})
	require.NoError(t, err)
	assert.Len(t, rows, 2)
}

func TestReadHeaderErrors(t *testing.T) {
	_, err := ReadAll[VersionRow](strings.NewReader(""), ReaderOptions{})
	assert.ErrorIs(t, err, ErrNoHeader)
	_, err = ReadAll[VersionRow](strings.NewReader("\n\n"), ReaderOptions{})
	assert.ErrorIs(t, err, ErrNoHeader)
	_, err = ReadAll[VersionRow](strings.NewReader("\"timestamp\",\"ip\"\n\"2022-01-01 00:00:00\",\"192.0.2.1\"\n"), ReaderOptions{})
	assert.ErrorIs(t, err, ErrMissingColumn)
	r := NewReader[VersionRow](strings.NewReader("\"a\n"), ReaderOptions{})
	_, err = r.Header()
	assert.ErrorIs(t, err, ErrNoHeader)
	_, err = r.Next()
	assert.ErrorIs(t, err, ErrNoHeader, "final errors stick")

	_, err = ReadAll[VersionRow](io.MultiReader(strings.NewReader("\"timestamp\",\"ip\",\"port\"\n"), errReader{}), ReaderOptions{})
	assert.ErrorIs(t, err, errBroken)
}

var errBroken = errors.New("broken")

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errBroken }

// An address with a zone is no responding host's; a zone could also hold
// octets the writer drops, so that the row written would not read back
// ("fe80::1%\x00" would be written as the invalid "fe80::1%").
func TestReadIPZoneRejected(t *testing.T) {
	in := "\"timestamp\",\"ip\",\"port\"\n" +
		",\"fe80::1%\x00\",123\n" +
		",\"fe80::1%eth0\",123\n" +
		",\"fe80::1\",123\n"
	rows, err := ReadAll[MonitorRow](strings.NewReader(in), ReaderOptions{})
	require.ErrorIs(t, err, ErrInvalidValue)
	require.Len(t, rows, 1)
	assert.Equal(t, "fe80::1", rows[0].IP)
	assert.Equal(t, 4, rows[0].Line)
	var re *RowError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, 2, re.Line)
	assert.Contains(t, err.Error(), "line 3")
}

// A too long line met while gathering the lines of a record with an
// unclosed quote was dropped without a word; it is reported in its turn.
func TestReadLongLineInsideOpenQuote(t *testing.T) {
	in := "\"timestamp\",\"ip\",\"port\",\"hostname\"\n" +
		",\"192.0.2.1,123,x\n" + // 2: unclosed quote
		",\"192.0.2.2\",123,\"" + strings.Repeat("y", 300) + "\"\n" + // 3: too long
		",\"192.0.2.3\",123,z\n" // 4
	r := NewReader[MonitorRow](strings.NewReader(in), ReaderOptions{MaxLineBytes: 100})
	var lines []int
	var errs []error
	for row, err := range r.All() {
		if err != nil {
			var re *RowError
			require.ErrorAs(t, err, &re)
			lines = append(lines, re.Line)
			errs = append(errs, re.Err)
			continue
		}
		lines = append(lines, row.Line)
	}
	assert.Equal(t, []int{2, 3, 4}, lines)
	require.Len(t, errs, 2)
	assert.ErrorIs(t, errs[0], ErrQuote)
	assert.ErrorIs(t, errs[1], ErrLineTooLong)
}

// A too long last line without a line end, whose length ended it on a
// buffer boundary, was lost silently.
func TestReadLongLastLine(t *testing.T) {
	hdr := "\"timestamp\",\"ip\",\"port\",\"hostname\"\n,\"192.0.2.1\",123,x\n"
	for _, n := range []int{64<<10 - 1, 64 << 10, 64<<10 + 1, 128<<10 - len(hdr), 128 << 10} {
		in := hdr + strings.Repeat("y", n)
		rows, err := ReadAll[MonitorRow](strings.NewReader(in), ReaderOptions{MaxLineBytes: 1000})
		require.Len(t, rows, 1, "%d", n)
		var re *RowError
		require.ErrorAs(t, err, &re, "%d", n)
		assert.Equal(t, 3, re.Line, "%d", n)
		assert.ErrorIs(t, err, ErrLineTooLong, "%d", n)
	}
}

// A name repeated in the header: the first column wins, the others are
// dropped, for known and unknown names alike (unknown ones used to keep
// the last, known ones the first, and a repeated known name landed in
// Extra under the name of a field). A current name wins over its old
// name whatever the order.
func TestReadDuplicateHeader(t *testing.T) {
	in := "timestamp,ip,port,ip,size,response_size,sic,sic,x,x\n" +
		",192.0.2.1,123,192.0.2.9,5,6,a,b,c,d\n"
	rows, err := ReadAll[MonitorRow](strings.NewReader(in), ReaderOptions{})
	require.NoError(t, err)
	require.Len(t, rows, 1)
	assert.Equal(t, "192.0.2.1", rows[0].IP)
	assert.Equal(t, "6", rows[0].ResponseSize, "response_size wins over size")
	assert.Equal(t, map[string]string{"size": "5", "sic": "a", "x": "c"}, rows[0].Extra)

	rows, err = ReadAll[MonitorRow](strings.NewReader("timestamp,ip,port,size\n,192.0.2.1,123,5\n"), ReaderOptions{})
	require.NoError(t, err)
	assert.Equal(t, "5", rows[0].ResponseSize, "size alone is response_size")
	assert.Nil(t, rows[0].Extra)
}

// Hostile octets are read as they are and written cleaned; a header-only
// file is an empty report, a BOM alone no report.
func TestReadHostileBytes(t *testing.T) {
	in := "\"timestamp\",\"ip\",\"port\",\"hostname\",\"tag\"\n" +
		",\"192.0.2.1\",123,\"a\x00b\",\"caf\xe9\"\n"
	rows, err := ReadAll[MonitorRow](strings.NewReader(in), ReaderOptions{})
	require.NoError(t, err)
	require.Len(t, rows, 1)
	assert.Equal(t, "a\x00b", rows[0].Hostname)
	assert.Equal(t, "caf\xe9", rows[0].Tag)
	out := string(writeRows(t, rows, WriterOptions{}))
	assert.Contains(t, out, `,"ab","caf`+"\uFFFD"+`",`)

	for _, hdr := range []string{
		"\"timestamp\",\"ip\",\"port\"\n",
		"\uFEFF\"timestamp\",\"ip\",\"port\"\r\n",
		"\"timestamp\",\"ip\",\"port\"",
	} {
		rows, err := ReadAll[VersionRow](strings.NewReader(hdr), ReaderOptions{})
		assert.NoError(t, err, "%q", hdr)
		assert.Empty(t, rows, "%q", hdr)
	}
	_, err = ReadAll[VersionRow](strings.NewReader("\uFEFF"), ReaderOptions{})
	assert.ErrorIs(t, err, ErrNoHeader)
}

// TestRecordCopiesThrough: Record gives a row's fields as the file has
// them, and AppendRecord writes them (with a column added) so that they
// read back the same, in the quoting of real reports.
func TestRecordCopiesThrough(t *testing.T) {
	in := "\"timestamp\",\"ip\",\"port\",\"tag\",\"packets\",\"size\"\n" +
		"\"2026-11-30 01:02:03\",\"192.0.2.1\",123,\"a,\"\"b\"\"\",100,44000\n" +
		"bad row\n" +
		"\"2026-11-30 01:02:04\",\"192.0.2.2\",123,\"=HYPERLINK(1)\",,\n"
	r := NewReader[MonitorRow](strings.NewReader(in), ReaderOptions{})
	h, err := r.Header()
	require.NoError(t, err)
	assert.Nil(t, r.Record(), "no row yet")
	out := AppendRecord(nil, append(h, "verified"), false)
	var recs [][]string
	for {
		_, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			assert.Nil(t, r.Record(), "no record for a bad row")
			continue
		}
		rec := slices.Clone(r.Record())
		recs = append(recs, rec)
		out = AppendRecord(out, append(rec, "open"), false)
	}
	require.Len(t, recs, 2)
	assert.Equal(t, []string{"2026-11-30 01:02:03", "192.0.2.1", "123", `a,"b"`, "100", "44000"}, recs[0])
	assert.Equal(t, "\"timestamp\",\"ip\",\"port\",\"tag\",\"packets\",\"size\",\"verified\"\n"+
		"\"2026-11-30 01:02:03\",\"192.0.2.1\",123,\"a,\"\"b\"\"\",100,44000,\"open\"\n"+
		"\"2026-11-30 01:02:04\",\"192.0.2.2\",123,\"=HYPERLINK(1)\",,,\"open\"\n", string(out))
	back := NewReader[MonitorRow](bytes.NewReader(out), ReaderOptions{})
	for i := range recs {
		_, err := back.Next()
		require.NoError(t, err)
		assert.Equal(t, append(recs[i], "open"), back.Record())
	}
	assert.Equal(t, "\"'=HYPERLINK(1)\",\"'-x\",\"-1.5\",\"a|b\"\n",
		string(AppendRecord(nil, []string{"=HYPERLINK(1)", "-x", "-1.5", "a\nb"}, true)))
}
