package report

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzReader reads arbitrary input as both reports, with the default
// limits and with small ones: the reader must never panic; rows and row
// errors must come in file order, on lines the input has; every row it
// returns, written and read again, must come back as the writer wrote it
// (its values cleaned), on line 2, and writing it again must give the
// same bytes; written in an older layout and read back, it must keep the
// values of that layout's columns.
func FuzzReader(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.golden")
	more, _ := filepath.Glob("testdata/layouts/*.csv")
	for _, p := range append(seeds, more...) {
		b, err := os.ReadFile(p)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Add([]byte("\"timestamp\",\"ip\",\"port\"\n,\"192.0.2.1\",123\n\"x,\"192.0.2.2\",123\n,\"a\"\"b\",1\r\n"))
	f.Add([]byte("ip,port,timestamp,sic\n::1,1,\"2020-01-01 00:00:00\",\"multi\nline\"\n"))
	f.Add([]byte("timestamp,ip,port,ip,size,response_size,sic,sic\n,192.0.2.1,1,192.0.2.9,5,6,a,b\n,\"fe80::1%\x00\",1,,,,,\n"))
	f.Add([]byte("timestamp,ip,port,naics\n,\"192.0.2.1,1,\n,192.0.2.2,1," + strings.Repeat("y", 80) + "\n,192.0.2.3,1,0\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, opt := range []ReaderOptions{{MaxRecordLines: 4}, {MaxRecordLines: 2, MaxLineBytes: 64}} {
			fuzzRows[VersionRow](t, data, opt)
			fuzzRows[MonitorRow](t, data, opt)
		}
	})
}

func fuzzRows[T Row](t *testing.T, data []byte, opt ReaderOptions) {
	r := NewReader[T](bytes.NewReader(data), opt)
	lines := bytes.Count(data, []byte("\n")) + 1
	layout := Layout(len(data) % int(numLayouts))
	n, last := 0, 1
	for row, err := range r.All() {
		if err != nil {
			if re, ok := err.(*RowError); ok { // not a final error wrapping one
				require.Greater(t, re.Line, last, "row errors in file order, after the header")
				require.LessOrEqual(t, re.Line, lines)
				last = re.Line
			}
			continue
		}
		line := *access(&row).line()
		require.Greater(t, line, last, "rows in file order, after the header")
		require.LessOrEqual(t, line, lines)
		last = line
		n++
		if n > 50 {
			return
		}
		var buf bytes.Buffer
		require.NoError(t, WriteAll(&buf, []T{row}, WriterOptions{}))
		back, err := ReadAll[T](bytes.NewReader(buf.Bytes()), ReaderOptions{})
		require.NoError(t, err, "%q", buf.String())
		require.Len(t, back, 1, "%q", buf.String())
		want := cleaned(row)
		*access(&want).line() = 2
		require.Equal(t, want, back[0], "%q", buf.String())
		// A second pass changes nothing.
		var again bytes.Buffer
		require.NoError(t, WriteAll(&again, back, WriterOptions{}))
		require.Equal(t, buf.String(), again.String())

		// An older layout keeps the values of its columns, and is
		// stable too.
		var old bytes.Buffer
		require.NoError(t, WriteAll(&old, []T{row}, WriterOptions{Layout: layout}))
		oback, err := ReadAll[T](bytes.NewReader(old.Bytes()), ReaderOptions{})
		require.NoError(t, err, "%v %q", layout, old.String())
		require.Len(t, oback, 1, "%v %q", layout, old.String())
		p, q := access(&row), access(&oback[0])
		for _, c := range p.schema().layouts[layout] {
			if c == "naics" || c == "sic" {
				continue // 0 for unknown in layouts with sic
			}
			v, _ := get(p, c)
			w, _ := get(q, c)
			require.Equal(t, clean(v), w, "%v column %s", layout, c)
		}
		var oagain bytes.Buffer
		require.NoError(t, WriteAll(&oagain, oback, WriterOptions{Layout: layout}))
		require.Equal(t, old.String(), oagain.String())
	}
}
