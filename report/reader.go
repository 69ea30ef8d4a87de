package report

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/netip"
	"strings"
	"time"
)

// Errors the Reader returns, matchable with errors.Is. Row errors come
// wrapped in a *RowError that carries the line number.
var (
	// ErrNoHeader: the input has no header line.
	ErrNoHeader = errors.New("report: no header")
	// ErrMissingColumn: the header lacks a column every row needs
	// (timestamp, ip or port, the columns IntelMQ requires).
	ErrMissingColumn = errors.New("report: missing required column")
	// ErrFieldCount: a row has more or fewer fields than the header.
	ErrFieldCount = errors.New("report: wrong number of fields")
	// ErrQuote: a quoted field is not closed, or has text after its
	// closing quote.
	ErrQuote = errors.New("report: bad quoting")
	// ErrLineTooLong: a line, or a record spanning lines, exceeds the
	// reader's limits.
	ErrLineTooLong = errors.New("report: line too long")
	// ErrInvalidValue: a required column has a value that does not parse
	// (a timestamp, an IP address, a port).
	ErrInvalidValue = errors.New("report: invalid value")
)

// RowError reports a row the Reader skipped. Line is the line of the
// file the row starts on (the header is line 1).
type RowError struct {
	// Line is the line the row starts on.
	Line int
	// Err says what is wrong: ErrFieldCount, ErrQuote, ErrLineTooLong or
	// ErrInvalidValue, possibly wrapped with details.
	Err error
}

// Error implements error.
func (e *RowError) Error() string { return fmt.Sprintf("report: line %d: %v", e.Line, e.Err) }

// Unwrap returns the cause.
func (e *RowError) Unwrap() error { return e.Err }

// ReaderOptions configures a Reader. The zero value works.
type ReaderOptions struct {
	// MaxLineBytes caps one line; 0 means 1 MiB. A longer line is skipped
	// with ErrLineTooLong.
	MaxLineBytes int
	// MaxRecordLines caps the lines one record may span through quoted
	// line breaks; 0 means 32. A quoted field still open after that many
	// lines (or at the end of the input) is a bad row: the Reader reports
	// it and resumes on the line after the row's first, so an unbalanced
	// quote costs one row, not the rest of the file.
	MaxRecordLines int
}

// Reader reads a report of rows of type T, mapping columns by header name:
// it accepts every layout of report-schemas.md §6 and any other order,
// quoted or bare values (real reports and Shadowserver's website samples),
// LF or CR LF line ends and a UTF-8 BOM. Old column names are mapped to
// the current ones (size → response_size); columns the current layout
// lacks are kept in the row's Extra; where a name appears twice in the
// header, its first column is read and the other dropped, and an old name
// yields to the current one (size goes to Extra when response_size is
// there too). A malformed row is reported as a
// *RowError and skipped, and reading goes on with the next row.
type Reader[T Row] struct {
	src      *bufio.Reader
	opt      ReaderOptions
	s        *schema[T]
	lineNo   int
	pending  []physLine // lines to read again after a failed multi-line record
	header   []string
	colIdx   []int  // per file column: the row field, colExtra or colIgnored
	nExtra   int    // file columns kept in Extra
	required [3]int // file columns of timestamp, ip, port (-1 if absent)
	fields   []string
	joined   []byte
	scratch  []byte   // unescaping quoted fields
	cur      T        // the row being filled
	last     []string // the fields of the row Next returned last
	err      error    // sticky: io.EOF or a fatal error
}

// Values of Reader.colIdx other than a field index.
const (
	colExtra   = -1 // kept in Extra
	colIgnored = -2 // a repeated column name: dropped
)

// physLine is a line read ahead, to be read again; err, when set, is the
// *RowError of a line that was too long, to be reported in its turn.
type physLine struct {
	b   []byte
	no  int
	err error
}

// NewReader returns a Reader of rows of type T from r.
func NewReader[T Row](r io.Reader, opt ReaderOptions) *Reader[T] {
	if opt.MaxLineBytes <= 0 {
		opt.MaxLineBytes = 1 << 20
	}
	if opt.MaxRecordLines <= 0 {
		opt.MaxRecordLines = 32
	}
	// A buffer of 64 KiB, or of the input's size if that is smaller and
	// known (bytes.Reader, strings.Reader, bytes.Buffer).
	size := 64 << 10
	if l, ok := r.(interface{ Len() int }); ok {
		size = min(size, max(l.Len(), 16))
	}
	return &Reader[T]{src: bufio.NewReaderSize(r, size), opt: opt, s: schemaOf[T]()}
}

// Header returns the file's column names as written, reading the header
// if no row was read yet.
func (r *Reader[T]) Header() ([]string, error) {
	if r.header == nil && r.err == nil {
		r.readHeader()
	}
	if r.header == nil {
		return nil, r.err
	}
	return append([]string(nil), r.header...), nil
}

// Next returns the next row. At the end of the input it returns io.EOF.
// For a malformed row it returns a *RowError, and the next call goes on
// with the following row. Any other error (a missing header or required
// column, a read error) is final.
func (r *Reader[T]) Next() (T, error) {
	var row T
	r.last = nil
	if r.header == nil && r.err == nil {
		r.readHeader()
	}
	for r.err == nil {
		fields, no, err := r.record(len(r.header))
		if err != nil {
			if _, ok := err.(*RowError); ok {
				return row, err
			}
			r.err = err
			break
		}
		if len(fields) == 1 && fields[0] == "" {
			continue // a blank line
		}
		if len(fields) != len(r.header) {
			return row, &RowError{Line: no, Err: fmt.Errorf("%w: %d, header has %d", ErrFieldCount, len(fields), len(r.header))}
		}
		if err := r.validate(fields); err != nil {
			return row, &RowError{Line: no, Err: err}
		}
		// Filled in place: r is on the heap already, a local row would
		// escape through the column accessors.
		var zero T
		r.cur = zero
		var extra map[string]string
		if r.nExtra > 0 {
			extra = make(map[string]string, r.nExtra)
			*r.s.extra(&r.cur) = extra
		}
		for j, v := range fields {
			switch i := r.colIdx[j]; {
			case i >= 0:
				*r.s.cols[i].field(&r.cur) = v
			case i == colExtra:
				extra[r.header[j]] = v
			}
		}
		*r.s.line(&r.cur) = no
		r.last = fields
		return r.cur, nil
	}
	return row, r.err
}

// Record returns the fields of the row Next returned last, as the file
// has them (unquoted), one per column of Header; nil after an error. The
// slice is valid until the next call to Next: it lets a program copy a
// row through with columns of its own added.
func (r *Reader[T]) Record() []string { return r.last }

// All returns an iterator over the rows and row errors, ending at the
// end of the input or after a final error (which it yields).
func (r *Reader[T]) All() iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for {
			row, err := r.Next()
			if err == io.EOF {
				return
			}
			if !yield(row, err) {
				return
			}
			if err != nil {
				if _, ok := err.(*RowError); !ok {
					return
				}
			}
		}
	}
}

// ReadAll reads every row of a report. The error joins every *RowError
// (errors.As finds them) and a final error if there was one; the rows
// read are returned in any case.
func ReadAll[T Row](r io.Reader, opt ReaderOptions) ([]T, error) {
	var rows []T
	var errs []error
	for row, err := range NewReader[T](r, opt).All() {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rows = append(rows, row)
	}
	return rows, errors.Join(errs...)
}

func (r *Reader[T]) readHeader() {
	for {
		fields, _, err := r.record(0)
		if err != nil {
			if err == io.EOF {
				err = ErrNoHeader
			}
			if _, ok := err.(*RowError); ok {
				err = fmt.Errorf("%w: %w", ErrNoHeader, err)
			}
			r.err = err
			return
		}
		if len(fields) == 1 && fields[0] == "" {
			continue
		}
		r.setHeader(fields)
		return
	}
}

func (r *Reader[T]) setHeader(fields []string) {
	h := make([]string, len(fields))
	r.colIdx = make([]int, len(fields))
	taken := make([]bool, len(r.s.cols))
	seen := make(map[string]bool, len(fields))
	// First the columns under their current names; a name repeated in
	// the header is dropped after its first column.
	for j, f := range fields {
		h[j] = strings.TrimSpace(f)
		r.colIdx[j] = colExtra
		if seen[h[j]] {
			r.colIdx[j] = colIgnored
			continue
		}
		seen[h[j]] = true
		if i, ok := r.s.index[h[j]]; ok && r.s.cols[i].name == h[j] {
			taken[i] = true
			r.colIdx[j] = i
		}
	}
	// Then old names (size): one fills its field only when the file
	// lacks the current name (response_size); otherwise it is kept in
	// Extra, as IntelMQ keeps it in extra.size.
	for j := range h {
		if r.colIdx[j] != colExtra {
			continue
		}
		if i, ok := r.s.index[h[j]]; ok && !taken[i] {
			taken[i] = true
			r.colIdx[j] = i
		} else {
			r.nExtra++
		}
	}
	r.header = h
	for k, name := range [...]string{"timestamp", "ip", "port"} {
		r.required[k] = -1
		for j, i := range r.colIdx {
			if i >= 0 && r.s.cols[i].name == name {
				r.required[k] = j
			}
		}
		if r.required[k] < 0 {
			r.err = fmt.Errorf("%w: %s", ErrMissingColumn, name)
		}
	}
}

// validate checks the values IntelMQ cannot do without: an empty value is
// fine (IntelMQ leaves the field out), a value that does not parse fails
// the row, as a failed conversion does in IntelMQ (report-schemas.md §5.2).
func (r *Reader[T]) validate(fields []string) error {
	if v := fields[r.required[0]]; v != "" {
		if _, err := time.Parse(TimeFormat, v); err != nil {
			return fmt.Errorf("%w: timestamp %q", ErrInvalidValue, v)
		}
	}
	if v := fields[r.required[1]]; v != "" {
		// A zone (fe80::1%eth0) names an interface of the reader's host,
		// not a responding host's address; it could also hold octets the
		// writer drops, making a row that does not read back.
		if a, err := netip.ParseAddr(v); err != nil || a.Zone() != "" {
			return fmt.Errorf("%w: ip %q", ErrInvalidValue, v)
		}
	}
	if v := fields[r.required[2]]; v != "" {
		if !isDigits(v) || len(v) > 5 || atoi(v) > 65535 {
			return fmt.Errorf("%w: port %q", ErrInvalidValue, v)
		}
	}
	return nil
}

func atoi(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}

// line returns the next physical line without its line end. The slice is
// valid until the next call.
func (r *Reader[T]) line() ([]byte, int, error) {
	if len(r.pending) > 0 {
		p := r.pending[0]
		r.pending = r.pending[1:]
		return p.b, p.no, p.err
	}
	b, err := r.src.ReadSlice('\n')
	var long []byte
	tooLong := false
	for err == bufio.ErrBufferFull {
		if !tooLong {
			long = append(long, b...)
			if len(long) > r.opt.MaxLineBytes {
				tooLong, long = true, nil
			}
		}
		b, err = r.src.ReadSlice('\n')
	}
	if long != nil {
		b = append(long, b...)
	}
	if len(b) == 0 && err != nil && !tooLong {
		return nil, 0, err
	}
	if err != nil && err != io.EOF {
		return nil, 0, err
	}
	r.lineNo++
	if r.lineNo == 1 {
		b = bytes.TrimPrefix(b, []byte("\uFEFF"))
	}
	if tooLong || len(b) > r.opt.MaxLineBytes+2 {
		return nil, r.lineNo, &RowError{Line: r.lineNo, Err: ErrLineTooLong}
	}
	b = bytes.TrimSuffix(b, []byte{'\n'})
	b = bytes.TrimSuffix(b, []byte{'\r'})
	return b, r.lineNo, nil
}

// record returns the fields of the next record, which may span lines
// through quoted line breaks, and its first line's number. The fields
// are valid until the next call. want is the number of fields a row
// needs (0 for the header): a record spanning lines that does not close
// cleanly with that many fields is taken for an unbalanced quote, and
// only its first line is given up.
func (r *Reader[T]) record(want int) ([]string, int, error) {
	b, no, err := r.line()
	if err != nil {
		return nil, no, err
	}
	fields, open, err := parseRecord(r.fields[:0], string(b), &r.scratch)
	r.fields = fields
	if !open {
		if err != nil {
			return nil, no, &RowError{Line: no, Err: err}
		}
		return fields, no, nil
	}
	// A quoted line break: gather lines until the record closes.
	var rest []physLine
	r.joined = append(r.joined[:0], b...)
	for len(rest)+1 < r.opt.MaxRecordLines && len(r.joined) <= r.opt.MaxLineBytes {
		nb, nno, nerr := r.line()
		if nerr != nil {
			if _, ok := nerr.(*RowError); ok {
				// A too long line: reported in its turn, after the
				// lines before it.
				rest = append(rest, physLine{no: nno, err: nerr})
				break
			}
			if nerr != io.EOF {
				return nil, no, nerr
			}
			break
		}
		rest = append(rest, physLine{b: bytes.Clone(nb), no: nno})
		r.joined = append(append(r.joined, '\n'), nb...)
		fields, open, err = parseRecord(r.fields[:0], string(r.joined), &r.scratch)
		r.fields = fields
		if !open {
			if err == nil && (want == 0 || len(fields) == want) {
				return fields, no, nil
			}
			break
		}
	}
	// Give up on the first line only, and read the others again.
	r.pending = append(rest, r.pending...)
	return nil, no, &RowError{Line: no, Err: fmt.Errorf("%w: quoted field not closed on its line", ErrQuote)}
}

// parseRecord splits one record into fields, RFC 4180 style: a field
// that starts with a quote runs to the matching quote, with "" standing
// for one quote; a quote inside an unquoted field is an ordinary
// character (as for Python's csv module, which IntelMQ uses). open
// reports that the text ended inside a quoted field. Fields share s's
// memory unless they contain "".
func parseRecord(dst []string, s string, scratch *[]byte) (fields []string, open bool, err error) {
	i := 0
	for {
		if i < len(s) && s[i] == '"' {
			// Quoted field.
			i++
			start := i
			sb := (*scratch)[:0]
			escaped := false
			for {
				q := strings.IndexByte(s[i:], '"')
				if q < 0 {
					return dst, true, nil
				}
				i += q
				if i+1 < len(s) && s[i+1] == '"' {
					sb = append(sb, s[start:i+1]...)
					escaped = true
					i += 2
					start = i
					continue
				}
				break
			}
			var v string
			if escaped {
				sb = append(sb, s[start:i]...)
				v = string(sb)
				*scratch = sb
			} else {
				v = s[start:i]
			}
			dst = append(dst, v)
			i++ // closing quote
			if i == len(s) {
				return dst, false, nil
			}
			if s[i] != ',' {
				return dst, false, fmt.Errorf("%w: text after a closing quote", ErrQuote)
			}
			i++
			if i == len(s) {
				return append(dst, ""), false, nil
			}
			continue
		}
		c := strings.IndexByte(s[i:], ',')
		if c < 0 {
			return append(dst, s[i:]), false, nil
		}
		dst = append(dst, s[i:i+c])
		i += c + 1
		if i == len(s) {
			return append(dst, ""), false, nil
		}
	}
}
