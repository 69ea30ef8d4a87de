package report

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
)

// Reading costs one allocation per row (its text) when no value has
// escaped quotes and the file has no unknown columns.
func TestReadAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	const n = 1000
	rows := make([]VersionRow, n)
	for i := range rows {
		rows[i] = versionRows()[0]
	}
	file := writeRows(t, rows, WriterOptions{})
	allocs := testing.AllocsPerRun(10, func() {
		r := NewReader[VersionRow](bytes.NewReader(file), ReaderOptions{})
		for _, err := range r.All() {
			if err != nil {
				t.Fatal(err)
			}
		}
	})
	assert.LessOrEqual(t, allocs, float64(n+20), "allocations for %d rows", n)
}

// Writing goes through gocsv's reflection, which boxes each field: about
// one allocation per column. The budget keeps it from growing.
func TestWriteAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	rows := versionRows()
	w := NewWriter[VersionRow](discard{}, WriterOptions{})
	allocs := testing.AllocsPerRun(100, func() {
		if err := w.Write(rows[0]); err != nil {
			t.Fatal(err)
		}
	})
	assert.LessOrEqual(t, allocs, float64(len(versionLayouts[LayoutCurrent])+8))
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }
