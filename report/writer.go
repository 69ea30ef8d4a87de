package report

import (
	"errors"
	"fmt"
	"io"
	"slices"
)

// ErrLayout is returned for a Layout this package does not know.
var ErrLayout = errors.New("report: unknown layout")

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
	enc         encoder[T]
	w           io.Writer
	buf         []byte // lines not written yet
	cur         T      // the row being written (see Write)
	wroteHeader bool
	err         error // sticky
}

// writeBufSize is how much a Writer buffers before it writes.
const writeBufSize = 64 << 10

// NewWriter returns a Writer of rows of type T to w.
func NewWriter[T Row](w io.Writer, opt WriterOptions) *Writer[T] {
	wr := &Writer[T]{w: w}
	wr.enc, wr.err = newEncoder[T](opt)
	return wr
}

// WriteHeader writes the header unless it was written already; Write
// calls it. A report without rows still has its header.
func (w *Writer[T]) WriteHeader() error {
	if w.err == nil && !w.wroteHeader {
		w.wroteHeader = true
		w.buf = append(w.buf, w.enc.header...)
	}
	return w.err
}

// Write writes rows, after the header if it was not written yet.
func (w *Writer[T]) Write(rows ...T) error {
	if w.WriteHeader() != nil {
		return w.err
	}
	for i := range rows {
		// A copy: a pointer into rows would make every call's
		// argument slice escape to the heap.
		w.cur = rows[i]
		w.buf = w.enc.appendRow(w.buf, &w.cur)
		if len(w.buf) >= writeBufSize && w.flush() != nil {
			break
		}
	}
	var zero T
	w.cur = zero // keep no row's strings alive
	return w.err
}

// flush writes the buffer out.
func (w *Writer[T]) flush() error {
	if w.err == nil && len(w.buf) > 0 {
		n, err := w.w.Write(w.buf)
		if err == nil && n < len(w.buf) {
			err = io.ErrShortWrite
		}
		w.err = err
		w.buf = w.buf[:0]
	}
	return w.err
}

// Flush writes any buffered data to the underlying io.Writer.
func (w *Writer[T]) Flush() error { return w.flush() }

// WriteAll writes a whole report of rows (the header even when rows is
// empty) to w and flushes it.
func WriteAll[T Row](w io.Writer, rows []T, opt WriterOptions) error {
	wr := NewWriter[T](w, opt)
	if err := wr.Write(rows...); err != nil {
		return err
	}
	return wr.Flush()
}

// encoder turns rows of type T into the CSV lines of one layout, driven
// by the column table: it is the whole of the writing but the I/O, shared
// by Writer and Splitter.
type encoder[T Row] struct {
	s          *schema[T]
	plan       []planColumn[T] // the layout's columns, in order
	header     []byte          // the header line
	neutralize bool
	scratch    []byte // a value being cleaned
}

// planColumn is one column of a layout, as the writer writes it.
type planColumn[T any] struct {
	name  string
	field func(*T) *string // nil for a retired column, taken from Extra
	zero  bool             // write an empty value as 0
}

// layoutPlan is how a layout is written: its columns and header line.
type layoutPlan[T any] struct {
	cols   []planColumn[T]
	header []byte
}

// newPlan resolves the names of a layout against the table.
func newPlan[T any](s *schema[T], names []string) layoutPlan[T] {
	// The layouts that still have sic write an unknown naics or sic as
	// 0, as Shadowserver did before 2023-11.
	hasSIC := slices.Contains(names, "sic")
	p := layoutPlan[T]{cols: make([]planColumn[T], len(names))}
	for j, name := range names {
		p.cols[j] = planColumn[T]{name: name, zero: hasSIC && (name == "naics" || name == "sic")}
		if c := s.col(name); c != nil {
			p.cols[j].field = c.field
		}
		if j > 0 {
			p.header = append(p.header, ',')
		}
		p.header = appendQuoted(p.header, name)
	}
	p.header = append(p.header, '\n')
	return p
}

func newEncoder[T Row](opt WriterOptions) (encoder[T], error) {
	if opt.Layout >= numLayouts {
		return encoder[T]{}, fmt.Errorf("%w: %d", ErrLayout, opt.Layout)
	}
	s := schemaOf[T]()
	p := &s.plans[opt.Layout]
	return encoder[T]{s: s, plan: p.cols, header: p.header, neutralize: opt.NeutralizeFormulas}, nil
}

// appendRow appends the line of r, LF included.
func (e *encoder[T]) appendRow(b []byte, r *T) []byte {
	for j := range e.plan {
		c := &e.plan[j]
		if j > 0 {
			b = append(b, ',')
		}
		var v string
		if c.field != nil {
			v = *c.field(r)
		} else {
			v = (*e.s.extra(r))[c.name]
		}
		b = e.appendValue(b, v, c.zero)
	}
	return append(b, '\n')
}

// appendValue appends one field: v cleaned and, if asked, neutralised,
// then quoted as real reports quote.
func (e *encoder[T]) appendValue(b []byte, v string, zero bool) []byte {
	// One pass tells the common cases apart: a clean value, digits only
	// or without a quote, is appended whole.
	var class uint8
	for i := 0; i < len(v); i++ {
		class |= byteClass[v[i]]
	}
	digits, quote, dirty := len(v) > 0 && class&classNonDigit == 0, class&classQuote != 0, class&classDirty != 0
	switch {
	case dirty || (e.neutralize && isFormula(v)):
		// cleaned below
	case v == "":
		if zero {
			return append(b, '0')
		}
		return b
	case digits:
		return append(b, v...)
	case !quote:
		return append(append(append(b, '"'), v...), '"')
	default:
		return appendQuoted(b, v)
	}
	s := appendClean(e.scratch[:0], v)
	if e.neutralize && isFormula(s) {
		s = append(s, 0)
		copy(s[1:], s)
		s[0] = '\''
	}
	e.scratch = s
	if len(s) == 0 && zero {
		return append(b, '0')
	}
	return appendField(b, s)
}

// The classes of byteClass.
const (
	classNonDigit = 1 << iota // not an ASCII digit
	classQuote                // '"'
	classDirty                // a byte clean may change (needsClean)
)

// byteClass classifies each byte value for appendValue; read-only.
var byteClass = func() (t [256]uint8) {
	for c := range t {
		if c < '0' || c > '9' {
			t[c] |= classNonDigit
		}
		if c == '"' {
			t[c] |= classQuote
		}
		if c < ' ' || c >= 0x7f {
			t[c] |= classDirty
		}
	}
	return t
}()

// AppendRecord appends one CSV line of any fields (LF included), quoted
// and cleaned as the Writer writes a row: empty fields bare, digits bare,
// everything else in quotes, characters that could break a row or a
// terminal replaced. With neutralize, values a spreadsheet would run as
// formulas are prefixed with '. It writes rows of other layouts, such as
// a report's rows with columns of a program's own added.
func AppendRecord(b []byte, fields []string, neutralize bool) []byte {
	for j, v := range fields {
		if j > 0 {
			b = append(b, ',')
		}
		if needsClean(v) {
			v = clean(v)
		}
		if neutralize && isFormula(v) {
			v = "'" + v
		}
		b = appendField(b, v)
	}
	return append(b, '\n')
}
