package report

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// SplitBy says how Split and Splitter group rows.
type SplitBy uint8

// The groupings of Split.
const (
	// SplitByASN makes one file per AS; the file's id is "as<number>",
	// "asunknown" for rows without an AS.
	SplitByASN SplitBy = iota + 1
	// SplitByCountry makes one file per country; the id is the lower-case
	// country code, "unknown" for rows without one.
	SplitByCountry
)

// Errors of Split and Splitter.
var (
	// ErrSplitBy is returned for an unknown SplitBy.
	ErrSplitBy = errors.New("report: unknown split")
	// ErrSplitterClosed is returned by Splitter.Write after Close.
	ErrSplitterClosed = errors.New("report: splitter closed")
)

// SplitOptions configures Split and Splitter. The zero value works.
type SplitOptions struct {
	// Date is the date in the file names; the zero value means the date
	// (UTC) of the earliest timestamp among the rows (0001-01-01 if no
	// row has a timestamp).
	Date time.Time
	// Type is the report type in the file names; "" means that each
	// group is split once more by address family, as Shadowserver
	// reports the two apart: its IPv4 rows go to a file of the row
	// type's IPv4 report (scan_ntp or scan_ntpmonitor), its IPv6 rows to
	// one of the IPv6 report (scan6_ntp or scan6_ntpmonitor). Rows whose
	// ip does not parse go with the IPv4 ones.
	Type Type
	// IDPrefix is put before each group's id, e.g. "cert-" gives
	// 2024-07-04-scan_ntp-cert-as64496.csv.
	IDPrefix string
	// Writer configures the CSV written.
	Writer WriterOptions
	// MaxOpenFiles caps the files a Splitter keeps open at once; 0 means
	// 64. When a row is for a file that is not open and the cap is
	// reached, the file written longest ago is flushed and closed, and
	// reopened for appending when its next row comes.
	MaxOpenFiles int
}

// Split writes rows into one report file per AS or per country (and per
// address family, unless opt.Type is set), in dir (created if needed),
// keeping their order, named in Shadowserver's convention (FileName) so
// that IntelMQ and other consumers recognise them. Existing files of the
// same names are replaced. It returns the paths written, sorted, and the
// errors of the files that could not be written, joined: one file failing
// does not keep the others from being written. It is a Splitter fed with
// rows; a Splitter does the same without holding the rows in memory.
func Split[T Row](dir string, rows []T, by SplitBy, opt SplitOptions) ([]string, error) {
	s, err := NewSplitter[T](dir, by, opt)
	if err != nil {
		return nil, err
	}
	for i := range rows {
		_ = s.Write(rows[i]) // Close reports each file's error
	}
	err = s.Close()
	return s.Files(), err
}

// Splitter writes rows, as they arrive, into one report file per AS or
// per country (and per address family, unless SplitOptions.Type is set),
// with the names and contents Split gives the same rows. Its memory grows
// with the number of files, not of rows: it keeps at most
// SplitOptions.MaxOpenFiles files open, each with a small buffer, and
// reopens a closed one for appending, so a scan over 60,000 ASes needs
// neither the rows in memory nor 60,000 descriptors.
//
// The files are written under temporary names in dir (hidden:
// ".<type>-<id>.csv.<n>.part") and get their final names in Close, when
// the date of the earliest row is known; an existing file of a final
// name is replaced then. A Splitter is not safe for concurrent use.
type Splitter[T Row] struct {
	dir      string
	by       SplitBy
	opt      SplitOptions
	v4       Type // the row type's IPv4 report type
	enc      encoder[T]
	files    map[string]*splitFile // by name without the date
	lru      splitFile             // sentinel of the ring of open files, most recent first
	open     int
	free     []*bufio.Writer // buffers of closed files, for reuse
	date     time.Time       // the earliest timestamp, if opt.Date is zero
	madeDir  bool
	dirErr   error // dir could not be created: nothing can be written
	cur      T     // the row being written (see Writer.Write)
	buf      []byte
	key, id  []byte
	closed   bool
	paths    []string
	closeErr error
}

// splitFile is one output file of a Splitter.
type splitFile struct {
	tail       string // the file name without its date: -<type>-<id>.csv
	tmp        string // where it is written until Close; "" before it is created
	f          *os.File
	bw         *bufio.Writer
	prev, next *splitFile // in the ring of open files
	err        error      // set when the file failed; its rows are dropped
}

// splitBufSize is the buffer of each open file.
const splitBufSize = 16 << 10

// NewSplitter returns a Splitter of rows of type T into files in dir,
// grouped by by. dir is created with the first file.
func NewSplitter[T Row](dir string, by SplitBy, opt SplitOptions) (*Splitter[T], error) {
	if by != SplitByASN && by != SplitByCountry {
		return nil, fmt.Errorf("%w: %d", ErrSplitBy, by)
	}
	enc, err := newEncoder[T](opt.Writer)
	if err != nil {
		return nil, err
	}
	if opt.MaxOpenFiles <= 0 {
		opt.MaxOpenFiles = 64
	}
	s := &Splitter[T]{dir: dir, by: by, opt: opt, v4: schemaOf[T]().typ, enc: enc, files: map[string]*splitFile{}}
	s.lru.next, s.lru.prev = &s.lru, &s.lru
	return s, nil
}

// Write writes row to the end of its file. An error is the row's file's:
// it could not be created or written, so it and its later rows are given
// up while the other files go on (Close reports each failed file again);
// or dir could not be created, and nothing can be written. After Close,
// Write returns ErrSplitterClosed.
func (s *Splitter[T]) Write(row T) error {
	if s.closed {
		return ErrSplitterClosed
	}
	s.cur = row
	err := s.write()
	var zero T
	s.cur = zero // keep no row's strings alive
	return err
}

func (s *Splitter[T]) write() error {
	c := s.enc.s.common(&s.cur)
	if s.opt.Date.IsZero() && c.Timestamp != "" { // time.Parse's error allocates
		if t, err := time.Parse(TimeFormat, c.Timestamp); err == nil && (s.date.IsZero() || t.Before(s.date)) {
			s.date = t
		}
	}
	s.key = s.appendTail(s.key[:0], keyOf(c))
	f := s.files[string(s.key)]
	if f == nil {
		f = &splitFile{tail: string(s.key)}
		s.files[f.tail] = f
	}
	if f.err != nil {
		return f.err
	}
	if f.f == nil {
		if !s.madeDir {
			if s.dirErr == nil {
				if err := os.MkdirAll(s.dir, 0o755); err != nil {
					s.dirErr = fmt.Errorf("report: split directory: %w", err)
				}
			}
			if s.dirErr != nil {
				return s.dirErr
			}
			s.madeDir = true
		}
		if err := s.openFile(f); err != nil {
			s.fail(f, err)
			return f.err
		}
	} else {
		f.unlink()
		s.push(f)
	}
	s.buf = s.enc.appendRow(s.buf[:0], &s.cur)
	if _, err := f.bw.Write(s.buf); err != nil {
		s.fail(f, err)
		return f.err
	}
	return nil
}

// appendTail appends the name, without the date, of the file of a row
// whose Key is k: the grouping of Split, by file name, so that two ids
// FileName makes alike share a file rather than one replacing the other.
func (s *Splitter[T]) appendTail(b []byte, k Key) []byte {
	typ := s.opt.Type
	if typ == "" {
		typ = s.v4
		if k.IP.Is6() {
			typ = ipv6Type(s.v4)
		}
	}
	id := append(s.id[:0], s.opt.IDPrefix...)
	switch s.by {
	case SplitByASN:
		if k.ASN != 0 {
			id = strconv.AppendUint(append(id, "as"...), uint64(k.ASN), 10)
		} else {
			id = append(id, "asunknown"...)
		}
	case SplitByCountry:
		if k.Country != "" {
			id = appendLower(id, k.Country)
		} else {
			id = append(id, "unknown"...)
		}
	}
	s.id = id
	return appendNameTail(b, typ, id)
}

// appendLower appends strings.ToLower(v), without allocating for ASCII.
func appendLower(b []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		if v[i] >= 0x80 {
			return append(b, strings.ToLower(v)...)
		}
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return b
}

// openFile opens f, creating it with its header the first time, after
// closing the least recently written file if the cap is reached, or if
// the process is out of descriptors while others are open.
func (s *Splitter[T]) openFile(f *splitFile) error {
	if s.open >= s.opt.MaxOpenFiles {
		s.closeFile(s.lru.prev)
	}
	header := f.tmp == ""
	for {
		var err error
		if header {
			f.f, f.tmp, err = createTemp(s.dir, f.tail)
		} else {
			f.f, err = os.OpenFile(f.tmp, os.O_WRONLY|os.O_APPEND, 0)
		}
		if err == nil {
			break
		}
		if s.open == 0 || !(errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)) {
			return err
		}
		s.closeFile(s.lru.prev)
	}
	if n := len(s.free); n > 0 {
		f.bw, s.free = s.free[n-1], s.free[:n-1]
		f.bw.Reset(f.f)
	} else {
		f.bw = bufio.NewWriterSize(f.f, splitBufSize)
	}
	s.push(f)
	s.open++
	if header {
		if _, err := f.bw.Write(s.enc.header); err != nil {
			return err
		}
	}
	return nil
}

// createTemp creates the temporary file of the file named ….tail, as
// os.Create would (mode 0666 before the umask), under a new name of the
// form .<tail>.<random>.part: temporary files a killed run left behind
// never stand in the way.
func createTemp(dir, tail string) (*os.File, string, error) {
	var rnd [6]byte
	for try := 0; ; try++ {
		_, _ = rand.Read(rnd[:])
		path := filepath.Join(dir, "."+strings.TrimPrefix(tail, "-")+"."+hex.EncodeToString(rnd[:])+".part")
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
		if err == nil {
			return f, path, nil
		}
		if !errors.Is(err, os.ErrExist) || try == 100 {
			return nil, "", err
		}
	}
}

// closeFile flushes and closes an open file, keeping its buffer for reuse.
func (s *Splitter[T]) closeFile(f *splitFile) {
	err := f.bw.Flush()
	if cerr := f.f.Close(); err == nil {
		err = cerr
	}
	f.bw.Reset(nil)
	s.free = append(s.free, f.bw)
	f.f, f.bw = nil, nil
	f.unlink()
	s.open--
	if err != nil {
		s.fail(f, err)
	}
}

// fail gives f up: its error is kept, its temporary file removed.
func (s *Splitter[T]) fail(f *splitFile, err error) {
	if f.f != nil {
		f.bw.Reset(nil)
		s.free = append(s.free, f.bw)
		f.f.Close()
		f.f, f.bw = nil, nil
		f.unlink()
		s.open--
	}
	if f.tmp != "" {
		os.Remove(f.tmp)
	}
	f.err = fmt.Errorf("report: split file %s: %w", filepath.Join(s.dir, strings.TrimPrefix(f.tail, "-")), err)
}

// push puts f at the front of the ring of open files.
func (s *Splitter[T]) push(f *splitFile) {
	f.prev, f.next = &s.lru, s.lru.next
	s.lru.next.prev = f
	s.lru.next = f
}

func (f *splitFile) unlink() {
	f.prev.next, f.next.prev = f.next, f.prev
	f.prev, f.next = nil, nil
}

// Flush writes what the open files have buffered, so that their rows are
// on disk should the process die; a file that fails is given up, as in
// Write. The files keep their temporary names until Close.
func (s *Splitter[T]) Flush() error {
	var errs []error
	for f := s.lru.next; f != &s.lru; {
		next := f.next
		if err := f.bw.Flush(); err != nil {
			s.fail(f, err)
			errs = append(errs, f.err)
		}
		f = next
	}
	return errors.Join(errs...)
}

// Close flushes and closes every file and gives it its final name, with
// the date of SplitOptions.Date or of the earliest row. The error joins
// those of every file that failed (the others are written all the same).
// Files then lists the files written. Close after Close does nothing more.
func (s *Splitter[T]) Close() error {
	if s.closed {
		return s.closeErr
	}
	s.closed = true
	for s.lru.next != &s.lru {
		s.closeFile(s.lru.next)
	}
	var errs []error
	if s.dirErr != nil {
		errs = append(errs, s.dirErr)
	}
	prefix := s.datePrefix()
	for _, f := range s.sortedFiles() {
		if f.tmp == "" && f.err == nil {
			continue // never made: dir could not be
		}
		if f.err == nil {
			path := filepath.Join(s.dir, prefix+f.tail)
			if err := os.Rename(f.tmp, path); err != nil {
				s.fail(f, err)
			} else {
				s.paths = append(s.paths, path)
			}
		}
		if f.err != nil {
			errs = append(errs, f.err)
		}
	}
	s.closeErr = errors.Join(errs...)
	return s.closeErr
}

// datePrefix returns the date of the file names, or a placeholder before
// Close when it is the earliest row's.
func (s *Splitter[T]) datePrefix() string {
	date := s.opt.Date
	if date.IsZero() {
		if !s.closed {
			return "YYYY-MM-DD"
		}
		date = s.date
	}
	return date.UTC().Format("2006-01-02")
}

func (s *Splitter[T]) sortedFiles() []*splitFile {
	out := make([]*splitFile, 0, len(s.files))
	for _, f := range s.files {
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b *splitFile) int { return strings.Compare(a.tail, b.tail) })
	return out
}

// Files returns the paths of the files Close wrote, sorted; nil before
// Close.
func (s *Splitter[T]) Files() []string { return slices.Clone(s.paths) }

// ipv6Type returns the IPv6 variant of an IPv4 report type.
func ipv6Type(t Type) Type {
	switch t {
	case ScanNTP:
		return Scan6NTP
	case ScanNTPMRU:
		return Scan6NTPMRU
	case ScanNTPAccessible:
		return Scan6NTPAccessible
	}
	return Scan6NTPMonitor
}
