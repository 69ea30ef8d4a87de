package report

import (
	"time"
	"unicode/utf8"
)

// TimeFormat is the layout of the timestamp column: UTC, no zone, no
// fraction (report-schemas.md §2.3).
const TimeFormat = "2006-01-02 15:04:05"

// FormatTime formats t as the timestamp column does, in UTC; the zero time
// gives "".
func FormatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(TimeFormat)
}

// isDigits reports whether s is non-empty and only ASCII digits: the
// values real reports write without quotes (report-schemas.md §2.3).
func isDigits[S ~string | ~[]byte](s S) bool {
	if len(s) == 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// needsClean reports whether s has an octet that clean may change.
func needsClean(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c >= 0x7f {
			return true
		}
	}
	return false
}

// clean applies the writer's rule for characters that could break a row
// or a terminal (appendClean); it returns s itself when nothing changes.
func clean(s string) string {
	if !needsClean(s) {
		return s
	}
	return string(appendClean(make([]byte, 0, len(s)), s))
}

// appendClean appends s to b with the writer's rule for characters that
// could break a row or a terminal: a line break (CR, LF or CR LF) becomes
// '|', as Shadowserver flattens multi-line banners (report-schemas.md
// §2.3), and so do the Unicode line and paragraph separators U+2028 and
// U+2029; a tab becomes a space; NUL, the other C0 controls, DEL and the
// C1 controls (U+0080–U+009F) are dropped; octets that are not UTF-8
// become U+FFFD.
func appendClean(b []byte, s string) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\r':
			b = append(b, '|')
			i++
			if i < len(s) && s[i] == '\n' {
				i++
			}
			continue
		case c == '\n':
			b = append(b, '|')
		case c == '\t':
			b = append(b, ' ')
		case c < ' ' || c == 0x7f:
		case c < utf8.RuneSelf:
			b = append(b, c)
		default:
			r, n := utf8.DecodeRuneInString(s[i:])
			switch {
			case r == utf8.RuneError && n == 1:
				b = utf8.AppendRune(b, utf8.RuneError)
			case r >= 0x80 && r <= 0x9f:
			case r == '\u2028' || r == '\u2029':
				b = append(b, '|')
			default:
				b = append(b, s[i:i+n]...)
			}
			i += n
			continue
		}
		i++
	}
	return b
}

// isPlainNumber reports a decimal number with an optional sign, such as
// -1.5 or +3: not a formula.
func isPlainNumber[S ~string | ~[]byte](s S) bool {
	if len(s) != 0 && (s[0] == '-' || s[0] == '+') {
		s = s[1:]
	}
	digits, dot := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !dot:
			dot = true
		default:
			return false
		}
	}
	return digits > 0
}

// isFormula reports a value a spreadsheet would take for a formula: one
// starting with =, +, - or @ that is not a plain number.
func isFormula[S ~string | ~[]byte](s S) bool {
	if len(s) == 0 {
		return false
	}
	switch s[0] {
	case '=', '+', '-', '@':
		return !isPlainNumber(s)
	}
	return false
}

// neutralize prefixes ' to a value a spreadsheet would take for a
// formula (isFormula).
func neutralize(s string) string {
	if isFormula(s) {
		return "'" + s
	}
	return s
}

// appendField appends v as real reports write it: nothing when empty,
// bare when all ASCII digits, otherwise quoted with quotes doubled.
// v must already be clean.
func appendField[S ~string | ~[]byte](b []byte, v S) []byte {
	if len(v) == 0 {
		return b
	}
	if isDigits(v) {
		return append(b, v...)
	}
	return appendQuoted(b, v)
}

// appendQuoted appends v in quotes, with quotes doubled.
func appendQuoted[S ~string | ~[]byte](b []byte, v S) []byte {
	b = append(b, '"')
	for i := 0; i < len(v); i++ {
		if v[i] == '"' {
			b = append(b, '"')
		}
		b = append(b, v[i])
	}
	return append(b, '"')
}
