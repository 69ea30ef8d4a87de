package report

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzReader reads arbitrary input as both reports: the reader must never
// panic, and every row it returns, written and read again, must come back
// as the writer wrote it (its values cleaned), on line 2.
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
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzRows[VersionRow](t, data)
		fuzzRows[MonitorRow](t, data)
	})
}

func fuzzRows[T Row](t *testing.T, data []byte) {
	r := NewReader[T](bytes.NewReader(data), ReaderOptions{MaxRecordLines: 4})
	n := 0
	for row, err := range r.All() {
		if err != nil {
			continue
		}
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
	}
}
