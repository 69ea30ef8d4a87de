package report

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/gocarina/gocsv"
)

// Errors of the Writer.
var (
	// ErrLayout is returned for a Layout this package does not know.
	ErrLayout = errors.New("report: unknown layout")
	// ErrFields is returned when gocsv hands the writer a row with the
	// wrong number of fields, which happens only when another package has
	// changed gocsv's global settings.
	ErrFields = errors.New("report: row has the wrong number of fields")
)

// WriterOptions configures a Writer. The zero value writes the current
// layout exactly as real Shadowserver reports look.
type WriterOptions struct {
	// Layout selects the column list; the zero value is LayoutCurrent.
	// Columns of an older layout that the current one lacks (sic) take
	// their value from the row's Extra. The layouts that still have sic
	// (2022-08 and older) write an empty naics or sic as 0, as
	// Shadowserver wrote an unknown code before 2023-11
	// (report-schemas.md §2.3).
	Layout Layout
	// NeutralizeFormulas prefixes ' to values a spreadsheet would run as
	// formulas (starting with =, +, - or @, except plain numbers such as
	// -1.5), for files meant for people. Off by default: it changes
	// values, so the output is no longer what Shadowserver writes.
	NeutralizeFormulas bool
}

// Writer writes rows of one report as CSV in the quoting style of real
// Shadowserver reports (see the package documentation). It writes the
// header before the first row. Writes are buffered: call Flush at the end.
// A Writer is not safe for concurrent use.
type Writer[T Row] struct {
	out         csvOut
	wroteHeader bool
}

// NewWriter returns a Writer of rows of type T to w.
func NewWriter[T Row](w io.Writer, opt WriterOptions) *Writer[T] {
	wr := &Writer[T]{}
	wr.out.bw = bufio.NewWriterSize(w, 64<<10)
	wr.out.neutralize = opt.NeutralizeFormulas
	s := schemaOf[T]()
	if opt.Layout >= numLayouts {
		wr.out.err = fmt.Errorf("%w: %d", ErrLayout, opt.Layout)
		return wr
	}
	wr.out.width = len(s.current())
	wr.out.names = s.layouts[opt.Layout]
	if opt.Layout != LayoutCurrent {
		cols := s.layouts[opt.Layout]
		wr.out.idx = make([]int, len(cols))
		zero := slices.Contains(cols, "sic")
		if zero {
			wr.out.zero = make([]bool, len(cols))
		}
		for j, c := range cols {
			if zero && (c == "naics" || c == "sic") {
				wr.out.zero[j] = true
			}
			if i, ok := s.index[c]; ok {
				wr.out.idx[j] = i
			} else {
				wr.out.idx[j] = -1
				wr.out.needExtra = true
			}
		}
	}
	return wr
}

// WriteHeader writes the header unless it was written already; Write
// calls it. A report without rows still has its header.
func (w *Writer[T]) WriteHeader() error {
	if w.wroteHeader {
		return w.out.err
	}
	return w.Write()
}

// Write writes rows, after the header if it was not written yet.
func (w *Writer[T]) Write(rows ...T) error {
	if w.out.err != nil {
		return w.out.err
	}
	if rows == nil {
		rows = []T{}
	}
	w.out.n = 0
	if w.out.needExtra {
		w.out.extra = func(i int) map[string]string { return *access(&rows[i]).extra() }
	}
	var err error
	if !w.wroteHeader {
		w.out.header = true
		w.wroteHeader = true
		err = gocsv.MarshalCSV(rows, &w.out)
	} else {
		err = gocsv.MarshalCSVWithoutHeaders(rows, &w.out)
	}
	w.out.extra = nil
	if err != nil && w.out.err == nil {
		w.out.err = err
	}
	return w.out.err
}

// Flush writes any buffered data to the underlying io.Writer.
func (w *Writer[T]) Flush() error {
	if w.out.err != nil {
		return w.out.err
	}
	if err := w.out.bw.Flush(); err != nil {
		w.out.err = err
	}
	return w.out.err
}

// WriteAll writes a whole report of rows (the header even when rows is
// empty) to w and flushes it.
func WriteAll[T Row](w io.Writer, rows []T, opt WriterOptions) error {
	wr := NewWriter[T](w, opt)
	if err := wr.Write(rows...); err != nil {
		return err
	}
	return wr.Flush()
}

// csvOut is the gocsv.CSVWriter behind a Writer: gocsv hands it each row
// as strings in the current layout's order (the struct's csv tags), and
// it reorders them for the chosen layout and quotes them.
type csvOut struct {
	bw         *bufio.Writer
	width      int      // columns of the current layout, the struct's fields
	names      []string // the layout's column names
	idx        []int    // per layout column, the current column index, or -1; nil for the current layout
	zero       []bool   // per layout column: write "" as "0"; nil for none
	needExtra  bool
	extra      func(i int) map[string]string
	n          int // rows written in this Marshal call
	header     bool
	neutralize bool
	buf        []byte
	err        error
}

var _ gocsv.CSVWriter = (*csvOut)(nil)

// Write implements gocsv.CSVWriter.
func (o *csvOut) Write(rec []string) error {
	if o.err != nil {
		return o.err
	}
	if len(rec) != o.width {
		// Only if gocsv's global settings were changed (TagName, …).
		o.err = fmt.Errorf("%w: gocsv gave %d fields, the layout has %d", ErrFields, len(rec), o.width)
		return o.err
	}
	b := o.buf[:0]
	if o.header {
		// The names come from the layout, not from gocsv, whose tag
		// handling follows its global settings.
		o.header = false
		for j, name := range o.names {
			if j > 0 {
				b = append(b, ',')
			}
			b = appendQuoted(b, name)
		}
	} else {
		var ex map[string]string
		if o.extra != nil {
			ex = o.extra(o.n)
		}
		o.n++
		if o.idx == nil {
			for j, v := range rec {
				if j > 0 {
					b = append(b, ',')
				}
				b = appendField(b, o.value(v))
			}
		} else {
			for j, i := range o.idx {
				if j > 0 {
					b = append(b, ',')
				}
				v := ""
				if i >= 0 {
					v = rec[i]
				} else {
					v = ex[o.names[j]]
				}
				v = o.value(v)
				if v == "" && o.zero != nil && o.zero[j] {
					v = "0"
				}
				b = appendField(b, v)
			}
		}
	}
	b = append(b, '\n')
	o.buf = b
	if _, err := o.bw.Write(b); err != nil {
		o.err = err
	}
	return o.err
}

// value returns v as it is written: cleaned and, if asked, neutralised.
func (o *csvOut) value(v string) string {
	v = clean(v)
	if o.neutralize {
		v = neutralize(v)
	}
	return v
}

// Flush implements gocsv.CSVWriter. gocsv calls it after every Marshal;
// the Writer flushes its buffer only when asked, so this does nothing.
func (o *csvOut) Flush() {}

// Error implements gocsv.CSVWriter.
func (o *csvOut) Error() error { return o.err }
