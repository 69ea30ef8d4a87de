package mode6

import (
	"encoding/binary"
	"iter"
	"strings"
	"unsafe"
)

// Var is one item of a variable list, in wire order.
type Var struct {
	// Name is the variable name.
	Name string
	// Value is the value as the server printed it, without the quotes of
	// a quoted string and without trailing blanks. Blanks after '=' are
	// kept: ntpd prints array elements as " %.2f", so "filtdelay= 0.33
	// 0.16" has the value " 0.33 0.16" (ntpq skips them; use
	// strings.TrimSpace for that view).
	Value string
	// Quoted reports that the value was a quoted string on the wire.
	Quoted bool
	// Bare reports an item without "=": a name and no value.
	Bare bool
}

// Vars is a variable list in wire order; duplicates are kept.
type Vars []Var

// Lookup returns the value of the first variable called name.
func (vs Vars) Lookup(name string) (string, bool) {
	for i := range vs {
		if vs[i].Name == name {
			return vs[i].Value, true
		}
	}
	return "", false
}

// Get returns the first variable called name.
func (vs Vars) Get(name string) (Var, bool) {
	for i := range vs {
		if vs[i].Name == name {
			return vs[i], true
		}
	}
	return Var{}, false
}

// All yields every name and value in wire order, duplicates included.
func (vs Vars) All() iter.Seq2[string, string] {
	return func(yield func(string, string) bool) {
		for i := range vs {
			if !yield(vs[i].Name, vs[i].Value) {
				return
			}
		}
	}
}

// ParseStats reports what [ParseVars] had to repair.
type ParseStats struct {
	// Dropped counts octets removed before parsing: NULs and other control
	// characters anywhere (CR, LF and tab excepted), and octets outside
	// printable ASCII outside quoted strings (binary junk, which ntpsec
	// 1.2.2 prints inside its filt* peer variables). Quoted strings keep
	// their non-ASCII octets.
	Dropped int
	// Repaired counts items that ran into the next one without a comma
	// ("0.24filtoffset= 0.17", `version="x"stratum=2`), which the parser
	// splits.
	Repaired int
	// Unterminated counts quoted values without a closing quote; the
	// value then runs to the end of the text.
	Unterminated int
	// Skipped counts items without a name ("=5").
	Skipped int
}

// Clean reports whether the text needed no repair.
func (s ParseStats) Clean() bool { return s == ParseStats{} }

// isControl reports octets dropped everywhere.
func isControl(c byte) bool { return (c < ' ' && c != '\r' && c != '\n' && c != '\t') || c == 0x7f }

// isJunk reports octets dropped outside quoted strings.
func isJunk(c byte) bool { return c > '~' || isControl(c) }

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

// isNameTail reports the octets a variable name is made of when it is
// found glued to the end of a value: ntpd's names are lower case.
func isNameTail(c byte) bool { return c == '_' || (c >= 'a' && c <= 'z') }

// maxPrealloc bounds the variables ParseVars allocates room for up front.
const maxPrealloc = 64

// ParseVars parses variable text (the reassembled data of a READVAR,
// READCLOCK or peer READSTAT reply) the way ntpq's nextvar does, with
// ntpsec's tolerance for junk:
//
//   - items are "name" or "name=value"; commas, CR and LF separate them,
//     and blanks around those are skipped;
//   - a name runs to the first ',', '=', CR or LF (trailing blanks
//     trimmed), so it may contain blanks;
//   - after '=', a value starting with '"' (after blanks) runs to the next
//     '"' (no escapes; commas and '=' inside are kept); any other value
//     runs to the next ',', CR or LF;
//   - control octets are dropped first, and so are octets outside
//     printable ASCII that are not inside quotes (see ParseStats.Dropped);
//   - an item that runs into the next without a comma is split: an
//     unquoted value containing "name=" (lower-case letters and '_' right
//     before an '='), or anything but a separator after a closing quote.
//
// It never fails: what it repaired is in the returned stats. Names and
// values slice one string holding the cleaned text, so a reply of up to
// 64 variables costs two allocations.
func ParseVars(data []byte) (Vars, ParseStats) { return parseVars(data, nil, nil) }

// parseVars is ParseVars, with the text kept in into when nothing is
// dropped and into has room for it (see ownText), and the variables
// appended to dst[:0] when dst is not nil (the result is still nil
// without any).
func parseVars(data, into []byte, dst Vars) (Vars, ParseStats) {
	var st ParseStats
	var text string
	items := 0
	if printable(data) {
		// Nothing to drop (the common case): no need to follow the
		// grammar to tell quoted octets from the others.
		text = ownText(data, into)
		if dst == nil { // the count only sizes a new slice
			items = strings.Count(text, ",") + 1
		}
	} else {
		st.Dropped, items = clean(data, nil)
		if st.Dropped == 0 {
			text = ownText(data, into)
		} else {
			var sb strings.Builder
			sb.Grow(len(data) - st.Dropped)
			clean(data, &sb)
			text = sb.String()
		}
	}
	vs := Vars(nil)
	pos := 0
	for {
		for pos < len(text) && class[text[pos]]&(cSep|cBlank) != 0 {
			pos++
		}
		if pos >= len(text) {
			break
		}
		if vs == nil {
			vs = dst[:0]
		}
		if vs == nil {
			vs = make(Vars, 0, min(items, maxPrealloc))
		}
		start := pos
		for pos < len(text) && class[text[pos]]&(cSep|cEq) == 0 {
			pos++
		}
		name := trimBlanks(text[start:pos])
		if name == "" {
			st.Skipped++
			for pos < len(text) && class[text[pos]]&cSep == 0 {
				pos++
			}
			continue
		}
		if pos >= len(text) || text[pos] != '=' {
			vs = append(vs, Var{Name: name, Bare: true})
			continue
		}
		pos++ // '='
		q := pos
		for q < len(text) && class[text[q]]&cBlank != 0 {
			q++
		}
		if q < len(text) && text[q] == '"' {
			end := strings.IndexByte(text[q+1:], '"')
			if end < 0 {
				st.Unterminated++
				vs = append(vs, Var{Name: name, Value: text[q+1:], Quoted: true})
				break
			}
			vs = append(vs, Var{Name: name, Value: text[q+1 : q+1+end], Quoted: true})
			pos = q + end + 2
			for pos < len(text) && class[text[pos]]&cBlank != 0 {
				pos++
			}
			if pos < len(text) && class[text[pos]]&cSep == 0 {
				st.Repaired++ // the next item follows the closing quote
			}
			continue
		}
		start = pos
		for pos < len(text) {
			k := class[text[pos]]
			if k&(cSep|cEq) != 0 {
				if k&cSep != 0 {
					break
				}
				if n := nameBefore(text, start, pos); n > start {
					// The comma before the next item is missing.
					st.Repaired++
					pos = n
					break
				}
			}
			pos++
		}
		vs = append(vs, Var{Name: name, Value: trimBlanks(text[start:pos])})
	}
	return vs, st
}

// Octet classes for ParseVars, one bit each.
const (
	cSep   = 1 << iota // ',', CR, LF: between items
	cBlank             // ' ', tab
	cEq                // '='
	cName              // what a glued name is made of (isNameTail)
)

// class maps each octet to its classes. It is never written after
// package initialisation.
var class = func() (t [256]uint8) {
	t[','], t['\r'], t['\n'] = cSep, cSep, cSep
	t[' '], t['\t'] = cBlank, cBlank
	t['='] = cEq
	t['_'] = cName
	for c := 'a'; c <= 'z'; c++ {
		t[c] = cName
	}
	return t
}()

// printable reports that data holds only printable ASCII, CR, LF and
// tab: nothing that ParseVars drops. It looks at eight octets at a time.
func printable(data []byte) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(data); i += 8 {
		x := binary.LittleEndian.Uint64(data[i:])
		// A high bit for an octet below ' ' (x - 0x20 borrows) or above
		// '~' (x + 1 reaches 0x80, or it was set already); a borrow or
		// carry may mark a neighbour too, which the slow check clears.
		if ((x-ones*' ')&^x|(x+ones*1)|x)&highs != 0 {
			for _, c := range data[i : i+8] {
				if isJunk(c) {
					return false
				}
			}
		}
	}
	for _, c := range data[i:] {
		if isJunk(c) {
			return false
		}
	}
	return true
}

// Where clean is in the grammar ParseVars reads.
const (
	inSep      = iota // between items
	inName            // a name, or a value-less item
	inAfterEq         // blanks after '='
	inQuoted          // inside a quoted value
	inUnquoted        // an unquoted value
	inAfterQuote
	inSkip // an item without a name, skipped to the next separator
)

// clean removes the octets ParseVars drops (control octets anywhere,
// octets outside printable ASCII except inside quoted values), following
// the same grammar as the parser so both agree on what is quoted. It
// writes what it keeps to sb when sb is not nil, and returns how many
// octets it dropped and an upper bound on the number of items.
func clean(data []byte, sb *strings.Builder) (dropped, items int) {
	state := inSep
	items = 1
	valueStart := 0 // in data, for the glued-name check
	for i, c := range data {
		if isControl(c) || (c > '~' && state != inQuoted) {
			dropped++
			continue
		}
		sep := c == ',' || c == '\r' || c == '\n'
		switch state {
		case inSep:
			switch {
			case c == '=':
				state = inSkip
			case !sep && !isBlank(c):
				state = inName
			}
		case inSkip:
			if sep {
				state = inSep
			}
		case inName:
			switch {
			case sep:
				state = inSep
			case c == '=':
				state, valueStart = inAfterEq, i+1
			}
		case inAfterEq:
			switch {
			case c == '"':
				state = inQuoted
			case sep:
				state = inSep
			case !isBlank(c):
				state = inUnquoted
			}
		case inQuoted:
			if c == '"' {
				state = inAfterQuote
			}
		case inAfterQuote:
			switch {
			case sep:
				state = inSep
			case c == '=':
				state = inSkip
			case !isBlank(c):
				state = inName
			}
		case inUnquoted:
			switch {
			case sep:
				state = inSep
			case c == '=':
				// A name glued to the value, as ParseVars splits it: the
				// run of letters before '=' (junk in it is dropped, so
				// skipped here) cannot be all of the value.
				n, letters := i, false
				for n > valueStart && (isNameTail(data[n-1]) || isJunk(data[n-1])) {
					letters = letters || isNameTail(data[n-1])
					n--
				}
				if letters && n > valueStart {
					state, valueStart = inAfterEq, i+1
				}
			}
		}
		if c == ',' && state != inQuoted {
			items++
		}
		if sb != nil {
			sb.WriteByte(c)
		}
	}
	return dropped, items
}

// ownText returns data as a string. When into has room for it, the
// octets are copied there and the string is made over them without
// another allocation: the caller hands over into, and nothing may write
// to it afterwards (Reassembler.Reply gives the spare half of the buffer
// that also holds Reply.Data, capped so that appending to Data cannot
// reach it).
func ownText(data, into []byte) string {
	if len(data) == 0 || len(into) < len(data) {
		return string(data)
	}
	n := copy(into, data)
	return unsafe.String(&into[0], n)
}

// trimBlanks removes trailing spaces and tabs.
func trimBlanks(s string) string {
	for len(s) > 0 && isBlank(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

// nameBefore returns where the name that ends at eq (an '=' inside a
// value starting at start) begins: the run of lower-case letters and '_'
// before it. It returns start when there is no such name, or it would
// take the whole value.
func nameBefore(text string, start, eq int) int {
	n := eq
	for n > start && isNameTail(text[n-1]) {
		n--
	}
	if n == eq || n == start {
		return start
	}
	return n
}

// itemLen is the length of the encoded item.
func (v *Var) itemLen() int {
	n := len(v.Name)
	if !v.Bare {
		n += 1 + len(v.Value)
		if v.Quoted {
			n += 2
		}
	}
	return n
}

func (v *Var) appendItem(b []byte) []byte {
	b = append(b, v.Name...)
	if v.Bare {
		return b
	}
	b = append(b, '=')
	if v.Quoted {
		b = append(b, '"')
		b = append(b, v.Value...)
		return append(b, '"')
	}
	return append(b, v.Value...)
}

// separator appends what ntpd's ctl_putdata writes before an item of
// length n after the first: a comma, then a space, or CR LF when the line
// would reach MaxLineLen characters. lineLen is the length of the current
// line and is updated.
func separator(b []byte, n int, lineLen *int) []byte {
	b = append(b, ',')
	*lineLen++
	if n+*lineLen+1 >= MaxLineLen {
		*lineLen = 0
		return append(b, '\r', '\n')
	}
	*lineLen++
	return append(b, ' ')
}

// AppendVars appends vs as ntpd writes a variable list: items separated
// by ", ", or by ",\r\n" where the line would otherwise reach 72
// characters (ntpd's ctl_putdata). It writes values as they are, in quotes
// when Quoted, and adds no trailing CR LF (ntpd adds one when it closes
// the reply; see [ReplyBuilder]). ParseVars gives back vs for every list
// ntpd could have printed: names without separators, '=' or blanks at
// their ends, values without separators (or '"' when quoted), without
// trailing blanks and, unquoted, starting with no '"'.
func AppendVars(b []byte, vs Vars) []byte {
	lineLen := 0
	for i := range vs {
		n := vs[i].itemLen()
		if i > 0 {
			b = separator(b, n, &lineLen)
		}
		b = vs[i].appendItem(b)
		lineLen += n
	}
	return b
}
