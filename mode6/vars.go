package mode6

import (
	"iter"
	"strings"
)

// Var is one item of a variable list, in wire order.
type Var struct {
	// Name is the variable name.
	Name string
	// Value is the value as the server printed it, without the quotes of
	// a quoted string and without leading and trailing blanks.
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
	// Dropped counts octets that are not printable ASCII, CR, LF or tab
	// (NULs, binary junk), which the parser removes first, as ntpsec's
	// client does.
	Dropped int
	// Repaired counts items that ran into the next one without a comma
	// ("0.24filtoffset= 0.17"), which the parser splits.
	Repaired int
	// Unterminated counts quoted values without a closing quote; the
	// value then runs to the end of the text.
	Unterminated int
	// Skipped counts items without a name ("=5").
	Skipped int
}

// Clean reports whether the text needed no repair.
func (s ParseStats) Clean() bool { return s == ParseStats{} }

func isJunk(c byte) bool { return c > '~' || (c < ' ' && c != '\r' && c != '\n' && c != '\t') }

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

func isNameChar(c byte) bool { return c == '_' || (c|0x20 >= 'a' && c|0x20 <= 'z') }

// ParseVars parses variable text (the reassembled data of a READVAR,
// READCLOCK or peer READSTAT reply) the way ntpq's nextvar does, with
// ntpsec's tolerance for junk:
//
//   - items are "name" or "name=value", separated by commas, blanks, CR
//     and LF in any mix;
//   - a name runs to the first ',', '=', CR or LF;
//   - after '=', blanks are skipped; a value starting with '"' runs to the
//     next '"' (no escapes; commas and '=' inside are kept); any other
//     value runs to the next ',', CR or LF;
//   - octets that are not printable ASCII, CR, LF or tab are dropped
//     first and counted;
//   - an unquoted value that contains "name=" (letters and '_' before an
//     '=') has lost the comma before that item, and is split there.
//
// It never fails: what it repaired is in the returned stats. Names and
// values slice one string holding the cleaned text, so a whole reply costs
// two allocations.
func ParseVars(data []byte) (Vars, ParseStats) {
	var st ParseStats
	items := 1
	for _, c := range data {
		if c == ',' {
			items++
		} else if isJunk(c) {
			st.Dropped++
		}
	}
	var text string
	if st.Dropped == 0 {
		text = string(data)
	} else {
		var sb strings.Builder
		sb.Grow(len(data) - st.Dropped)
		for len(data) > 0 {
			i := 0
			for i < len(data) && !isJunk(data[i]) {
				i++
			}
			sb.Write(data[:i])
			for i < len(data) && isJunk(data[i]) {
				i++
			}
			data = data[i:]
		}
		text = sb.String()
	}
	vs := Vars(nil)
	pos := 0
	for {
		for pos < len(text) && (text[pos] == ',' || isBlank(text[pos]) || text[pos] == '\r' || text[pos] == '\n') {
			pos++
		}
		if pos >= len(text) {
			break
		}
		if vs == nil {
			vs = make(Vars, 0, items)
		}
		start := pos
		for pos < len(text) && text[pos] != ',' && text[pos] != '=' && text[pos] != '\r' && text[pos] != '\n' {
			pos++
		}
		name := trimBlanks(text[start:pos])
		if name == "" {
			st.Skipped++
			for pos < len(text) && text[pos] != ',' && text[pos] != '\r' && text[pos] != '\n' {
				pos++
			}
			continue
		}
		if pos >= len(text) || text[pos] != '=' {
			vs = append(vs, Var{Name: name, Bare: true})
			continue
		}
		pos++ // '='
		for pos < len(text) && isBlank(text[pos]) {
			pos++
		}
		if pos < len(text) && text[pos] == '"' {
			end := strings.IndexByte(text[pos+1:], '"')
			if end < 0 {
				st.Unterminated++
				vs = append(vs, Var{Name: name, Value: text[pos+1:], Quoted: true})
				break
			}
			vs = append(vs, Var{Name: name, Value: text[pos+1 : pos+1+end], Quoted: true})
			pos += end + 2
			// ntpq expects a separator next; skip anything else up to one.
			for pos < len(text) && text[pos] != ',' && text[pos] != '\r' && text[pos] != '\n' {
				pos++
			}
			continue
		}
		start = pos
		for pos < len(text) && text[pos] != ',' && text[pos] != '\r' && text[pos] != '\n' {
			if text[pos] == '=' {
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

// trimBlanks removes trailing spaces and tabs.
func trimBlanks(s string) string {
	for len(s) > 0 && isBlank(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

// nameBefore returns where the name that ends at eq (an '=' inside a
// value starting at start) begins: the run of letters and '_' before it.
// It returns start when there is no such name, or it would take the whole
// value.
func nameBefore(text string, start, eq int) int {
	n := eq
	for n > start && isNameChar(text[n-1]) {
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
// the reply; see [ReplyBuilder]). It is the inverse of [ParseVars] for
// variables whose names and values it can carry.
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
