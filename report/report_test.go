package report

import (
	"bytes"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestColumns(t *testing.T) {
	wantV := map[Layout]int{LayoutCurrent: 41, Layout20231125: 41, Layout20231118: 39, Layout202208: 40, Layout2022: 38, Layout2019: 37, Layout2014: 34}
	wantM := map[Layout]int{LayoutCurrent: 17, Layout20231125: 16, Layout20231118: 14, Layout202208: 15, Layout2022: 14, Layout2019: 14, Layout2014: 13}
	for _, l := range Layouts() {
		assert.Len(t, VersionColumns(l), wantV[l], "version %v", l)
		assert.Len(t, MonitorColumns(l), wantM[l], "monitor %v", l)
		p, err := ParseLayout(l.String())
		assert.NoError(t, err)
		assert.Equal(t, l, p)
	}
	assert.Nil(t, VersionColumns(numLayouts))
	_, err := ParseLayout("2020")
	assert.ErrorIs(t, err, ErrLayoutName)
	assert.Equal(t, "Layout(9)", Layout(9).String())
}

func TestHeaderGolden(t *testing.T) {
	golden(t, "scan_ntp.header.golden", writeRows[VersionRow](t, nil, WriterOptions{}))
	golden(t, "scan_ntpmonitor.header.golden", writeRows[MonitorRow](t, nil, WriterOptions{}))
	// The header as report-schemas.md §0 prints it.
	assert.Equal(t, `"timestamp","severity","ip","protocol","port","hostname","tag","asn","geo","region","city","naics","hostname_source","sector","packets","response_size","amplification"`+"\n",
		string(writeRows[MonitorRow](t, nil, WriterOptions{})))
}

func TestRowsGolden(t *testing.T) {
	v := writeRows(t, versionRows(), WriterOptions{})
	golden(t, "scan_ntp.golden", v)
	m := writeRows(t, monitorRows(), WriterOptions{})
	golden(t, "scan_ntpmonitor.golden", m)

	// Every row is one line: hostile values never break a row.
	assert.Equal(t, 1+len(versionRows()), bytes.Count(v, []byte("\n")))
	assert.Equal(t, 1+len(monitorRows()), bytes.Count(m, []byte("\n")))
	assert.NotContains(t, string(v), "\r")
	assert.NotContains(t, string(v), "\x00")
}

// Write → read gives the rows back (as cleaned); read → write of a
// current-layout file reproduces it byte for byte.
func TestRoundTrip(t *testing.T) {
	t.Run("version", func(t *testing.T) { roundTrip(t, versionRows(), "scan_ntp.golden") })
	t.Run("monitor", func(t *testing.T) { roundTrip(t, monitorRows(), "scan_ntpmonitor.golden") })
}

func roundTrip[T Row](t *testing.T, rows []T, goldenName string) {
	b := writeRows(t, rows, WriterOptions{})
	got, err := ReadAll[T](bytes.NewReader(b), ReaderOptions{})
	require.NoError(t, err)
	require.Len(t, got, len(rows))
	for i := range rows {
		assert.Equal(t, i+2, *schemaOf[T]().line(&got[i]))
		assert.Equal(t, cleaned(rows[i]), bare(got[i]))
	}

	file, err := os.ReadFile("testdata/" + goldenName)
	require.NoError(t, err)
	got, err = ReadAll[T](bytes.NewReader(file), ReaderOptions{})
	require.NoError(t, err)
	assert.Equal(t, string(file), string(writeRows(t, got, WriterOptions{})))
}

func TestQuoting(t *testing.T) {
	row := MonitorRow{
		Common: Common{
			Timestamp: "2026-01-02 03:04:05", IP: "192.0.2.1", Port: "123", Protocol: "udp", ASN: "0",
			Sector: `say "hi", bye`,
		},
		Packets: "-1", ResponseSize: "007", Amplification: "18.49",
	}
	b := writeRows(t, []MonitorRow{row}, WriterOptions{})
	line := strings.Split(string(b), "\n")[1]
	assert.Equal(t, `"2026-01-02 03:04:05",,"192.0.2.1","udp",123,,,0,,,,,,"say ""hi"", bye","-1",007,"18.49"`, line)
	assert.True(t, bytes.HasSuffix(b, []byte("\n")))
	assert.False(t, bytes.HasPrefix(b, []byte("\uFEFF")))
}

func TestClean(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain", "plain"},
		{"a\r\nb\nc\rd", "a|b|c|d"},
		{"a\r\n\r\nb", "a||b"},
		{"nul\x00here", "nulhere"},
		{"tab\there", "tab here"},
		{"esc\x1b[31mred\x7f", "esc[31mred"},
		{"caf\xe9", "caf\uFFFD"},
		{"c1\u0085\u009f.", "c1."},
		{"ls\u2028ps\u2029", "ls|ps|"},
		{"ünïcødé ✓", "ünïcødé ✓"},
		{"", ""},
	} {
		assert.Equal(t, tc.want, clean(tc.in), "%q", tc.in)
	}
}

func TestNeutralizeFormulas(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"=1+1", "'=1+1"}, {"+cmd", "'+cmd"}, {"-cmd", "'-cmd"}, {"@SUM(A1)", "'@SUM(A1)"},
		{"-1.5", "-1.5"}, {"+3", "+3"}, {"-22", "-22"}, {"-", "'-"}, {"-.", "'-."}, {"a=b", "a=b"}, {"", ""},
	} {
		assert.Equal(t, tc.want, neutralize(tc.in), "%q", tc.in)
	}
	row := VersionRow{Common: Common{Timestamp: "2026-01-02 03:04:05", IP: "192.0.2.1", Port: "123"}, System: "=cmd|' /C calc'!A0", Precision: "-22"}
	plain := string(writeRows(t, []VersionRow{row}, WriterOptions{}))
	safe := string(writeRows(t, []VersionRow{row}, WriterOptions{NeutralizeFormulas: true}))
	assert.Contains(t, plain, `"=cmd|' /C calc'!A0"`)
	assert.Contains(t, safe, `"'=cmd|' /C calc'!A0"`)
	assert.Contains(t, safe, `"-22"`)
}

func TestOldLayouts(t *testing.T) {
	rows := monitorRows()
	rows[0].Extra = map[string]string{"sic": "4813"}
	for _, l := range Layouts() {
		b := writeRows(t, rows, WriterOptions{Layout: l})
		r := NewReader[MonitorRow](bytes.NewReader(b), ReaderOptions{})
		h, err := r.Header()
		require.NoError(t, err)
		assert.Equal(t, MonitorColumns(l), h, "%v", l)
		got, err := ReadAll[MonitorRow](bytes.NewReader(b), ReaderOptions{})
		require.NoError(t, err, "%v", l)
		require.Len(t, got, len(rows))
		cols := MonitorColumns(l)
		hasSIC := slices.Contains(cols, "sic")
		for i := range rows {
			for _, c := range cols {
				want, _ := rows[i].Get(c)
				want = clean(want)
				if want == "" && hasSIC && (c == "naics" || c == "sic") {
					want = "0" // unknown codes before 2023-11
				}
				v, _ := got[i].Get(c)
				assert.Equal(t, want, v, "%v row %d column %s", l, i, c)
			}
		}
		if strings.Contains(string(b), `"size"`) {
			assert.Equal(t, "44000", got[0].ResponseSize, "size is read as response_size")
		}
		if l == Layout202208 {
			assert.Equal(t, "4813", got[0].Extra["sic"])
			assert.Equal(t, "0", got[1].Extra["sic"])
		}
	}
	vrows := versionRows()
	for _, l := range Layouts() {
		b := writeRows(t, vrows, WriterOptions{Layout: l})
		got, err := ReadAll[VersionRow](bytes.NewReader(b), ReaderOptions{})
		require.NoError(t, err, "%v", l)
		dl, ok := DetectLayout(ScanNTP, strings.Split(strings.ReplaceAll(strings.SplitN(string(b), "\n", 2)[0], `"`, ""), ","))
		assert.True(t, ok)
		assert.Equal(t, l, dl)
		assert.Equal(t, clean(vrows[1].Version), got[1].Version)
	}
	err := NewWriter[VersionRow](&bytes.Buffer{}, WriterOptions{Layout: numLayouts}).Write()
	assert.True(t, errors.Is(err, ErrLayout))
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriterError(t *testing.T) {
	w := NewWriter[MonitorRow](failWriter{}, WriterOptions{})
	require.NoError(t, w.Write(monitorRows()...)) // buffered
	require.Error(t, w.Flush())
	require.Error(t, w.Write(monitorRows()...))
}

// DetectLayout took any type but the two monitor ones for NTP Version.
func TestDetectLayoutUnknownType(t *testing.T) {
	_, ok := DetectLayout("scan_ssh", VersionColumns(Layout2019))
	assert.False(t, ok)
	_, ok = DetectLayout("", VersionColumns(LayoutCurrent))
	assert.False(t, ok)
	l, ok := DetectLayout(Scan6NTP, VersionColumns(Layout2019))
	assert.True(t, ok)
	assert.Equal(t, Layout2019, l)
}

// Layouts that still have sic write an unknown naics or sic as 0, as
// Shadowserver did before 2023-11 (report-schemas.md §2.3); the later
// ones leave them empty.
func TestOldLayoutUnknownCodes(t *testing.T) {
	row := MonitorRow{
		Common: Common{
			Timestamp: "2016-07-01 00:00:02", IP: "198.51.100.200", Protocol: "udp", Port: "123",
			ASN: "64512", Geo: "ZZ",
		},
		Packets: "100",
	}
	line := func(l Layout) string {
		return strings.Split(string(writeRows(t, []MonitorRow{row}, WriterOptions{Layout: l})), "\n")[1]
	}
	assert.Equal(t, `"2016-07-01 00:00:02","198.51.100.200","udp",123,,100,,64512,"ZZ",,,0,0,`, line(Layout2019))
	assert.Equal(t, `"2016-07-01 00:00:02","198.51.100.200","udp",123,,100,,64512,"ZZ",,,0,0`, line(Layout2014))
	assert.Equal(t, `"2016-07-01 00:00:02","198.51.100.200","udp",123,,100,,64512,"ZZ",,,0,0,,`, line(Layout202208))
	assert.Equal(t, `"2016-07-01 00:00:02","198.51.100.200","udp",123,,100,,64512,"ZZ",,,,,`, line(Layout20231118))
	// A value that cleans to nothing is unknown too; a known one stays.
	row.NAICS, row.Extra = "\x00", map[string]string{"sic": "4813"}
	assert.Equal(t, `"2016-07-01 00:00:02","198.51.100.200","udp",123,,100,,64512,"ZZ",,,0,4813,`, line(Layout2019))
	vrow := VersionRow{Common: Common{Timestamp: "2019-09-01 10:11:13", IP: "203.0.113.9", Protocol: "udp", Port: "123"}}
	v := strings.Split(string(writeRows(t, []VersionRow{vrow}, WriterOptions{Layout: Layout2019})), "\n")[1]
	assert.True(t, strings.HasSuffix(v, ",0,0,"), v)
}
