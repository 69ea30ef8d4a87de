package report

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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

// Writing a row allocates nothing, in every layout, with hostile values
// that need cleaning and with formulas neutralised: the writer appends
// each field's bytes itself.
func TestWriteAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	vrows, mrows := versionRows(), monitorRows()
	mrows[0].Extra = map[string]string{"sic": "4813"}
	for _, l := range Layouts() {
		for _, opt := range []WriterOptions{{Layout: l}, {Layout: l, NeutralizeFormulas: true}} {
			vw := NewWriter[VersionRow](discard{}, opt)
			mw := NewWriter[MonitorRow](discard{}, opt)
			require.NoError(t, vw.WriteHeader())
			require.NoError(t, vw.Write(vrows...)) // buffers grown
			require.NoError(t, mw.Write(mrows...))
			allocs := testing.AllocsPerRun(100, func() {
				for i := range vrows {
					if err := vw.Write(vrows[i]); err != nil {
						t.Fatal(err)
					}
				}
				for i := range mrows {
					if err := mw.Write(mrows[i]); err != nil {
						t.Fatal(err)
					}
				}
				if err := mw.Write(mrows...); err != nil {
					t.Fatal(err)
				}
			})
			assert.Zero(t, allocs, "%+v", opt)
		}
	}
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }

// A Splitter writing to a file it has open allocates nothing per row.
func TestSplitterWriteAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	for _, by := range []SplitBy{SplitByASN, SplitByCountry} {
		s, err := NewSplitter[VersionRow](t.TempDir(), by, SplitOptions{IDPrefix: "cert-"})
		require.NoError(t, err)
		rows := versionRows()
		for _, r := range rows {
			require.NoError(t, s.Write(r))
		}
		allocs := testing.AllocsPerRun(100, func() {
			for i := range rows {
				if err := s.Write(rows[i]); err != nil {
					t.Fatal(err)
				}
			}
		})
		assert.Zero(t, allocs, "by %d", by)
		require.NoError(t, s.Close())
	}
}

// AppendValues is Values into a buffer of one's own: the same fields
// after what dst held, and no allocation once dst has room.
func TestAppendValues(t *testing.T) {
	v := versionRows()[0]
	got := v.AppendValues([]string{"before"})
	assert.Equal(t, append([]string{"before"}, v.Values()...), got)
	m := MonitorRow{Common: v.Common, Packets: "100"}
	assert.Equal(t, m.Values(), m.AppendValues(nil))
	if raceEnabled {
		return
	}
	buf := make([]string, 0, 64)
	allocs := testing.AllocsPerRun(100, func() {
		buf = v.AppendValues(buf[:0])
		buf = m.AppendValues(buf[:0])
	})
	assert.Zero(t, allocs)
}
