package report

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
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
			fuzzRows[MRURow](t, data, opt)
			fuzzRows[AccessibleRow](t, data, opt)
		}
	})
}

// fuzzRows checks with plain comparisons, and testify only to report a
// failure: testify's assertions call t.Helper, whose stack walk would
// cost more than the code under test.
func fuzzRows[T Row](t *testing.T, data []byte, opt ReaderOptions) {
	r := NewReader[T](bytes.NewReader(data), opt)
	s := schemaOf[T]()
	lines := bytes.Count(data, []byte("\n")) + 1
	layout := Layout(len(data) % int(numLayouts))
	n, last := 0, 1
	inOrder := func(line int, what string) {
		if line <= last || line > lines {
			t.Fatalf("%s on line %d: after line %d, at most %d", what, line, last, lines)
		}
		last = line
	}
	for row, err := range r.All() {
		if err != nil {
			if re, ok := err.(*RowError); ok { // not a final error wrapping one
				inOrder(re.Line, "row error")
			}
			continue
		}
		inOrder(*s.line(&row), "row")
		n++
		if n > 50 {
			return
		}
		file := writeOne(t, row, LayoutCurrent)
		back := readOne[T](t, file)
		want := cleaned(row)
		*s.line(&want) = 2
		if !reflect.DeepEqual(want, back) {
			require.Equal(t, want, back, "%q", file)
		}
		// A second pass changes nothing.
		if again := writeOne(t, back, LayoutCurrent); again != file {
			require.Equal(t, file, again)
		}

		// An older layout keeps the values of its columns, and is
		// stable too.
		old := writeOne(t, row, layout)
		oback := readOne[T](t, old)
		for _, c := range s.layouts[layout] {
			if c == "naics" || c == "sic" {
				continue // 0 for unknown in layouts with sic
			}
			v, _ := s.get(&row, c)
			w, _ := s.get(&oback, c)
			if clean(v) != w {
				t.Fatalf("%v column %s: wrote %q, read %q from %q", layout, c, clean(v), w, old)
			}
		}
		if again := writeOne(t, oback, layout); again != old {
			require.Equal(t, old, again, "%v", layout)
		}
	}
}

func writeOne[T Row](t *testing.T, row T, l Layout) string {
	var buf bytes.Buffer
	if err := WriteAll(&buf, []T{row}, WriterOptions{Layout: l}); err != nil {
		t.Fatalf("%v: %v", l, err)
	}
	return buf.String()
}

func readOne[T Row](t *testing.T, file string) T {
	rows, err := ReadAll[T](strings.NewReader(file), ReaderOptions{})
	if err != nil || len(rows) != 1 {
		t.Fatalf("%d rows, %v, from %q", len(rows), err, file)
	}
	return rows[0]
}
