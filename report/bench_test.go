package report

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"
)

const benchRows = 100_000

func benchVersionRows() []VersionRow {
	base := versionRows()
	rows := make([]VersionRow, benchRows)
	for i := range rows {
		rows[i] = base[i%len(base)]
		rows[i].IP = fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
	}
	return rows
}

// BenchmarkWriteRead writes and reads a 100,000-row NTP Version report
// (the wider of the two); rows/s and allocs/row are per row.
func BenchmarkWriteRead(b *testing.B) {
	rows := benchVersionRows()
	var file bytes.Buffer
	if err := WriteAll(&file, rows, WriterOptions{}); err != nil {
		b.Fatal(err)
	}
	report := func(b *testing.B, run func()) {
		b.ReportAllocs()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		n := 0
		for b.Loop() {
			run()
			n++
		}
		runtime.ReadMemStats(&m1)
		b.ReportMetric(float64(n*benchRows)/b.Elapsed().Seconds(), "rows/s")
		b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/float64(n*benchRows), "allocs/row")
		b.SetBytes(int64(file.Len()))
	}
	b.Run("write", func(b *testing.B) {
		var buf bytes.Buffer
		report(b, func() {
			buf.Reset()
			w := NewWriter[VersionRow](&buf, WriterOptions{})
			for i := range rows {
				if err := w.Write(rows[i]); err != nil {
					b.Fatal(err)
				}
			}
			if err := w.Flush(); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("write-batch", func(b *testing.B) {
		var buf bytes.Buffer
		report(b, func() {
			buf.Reset()
			if err := WriteAll(&buf, rows, WriterOptions{}); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("read", func(b *testing.B) {
		report(b, func() {
			r := NewReader[VersionRow](bytes.NewReader(file.Bytes()), ReaderOptions{})
			n := 0
			for _, err := range r.All() {
				if err != nil {
					b.Fatal(err)
				}
				n++
			}
			if n != benchRows {
				b.Fatal(n)
			}
		})
	})
}
