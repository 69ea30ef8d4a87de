package report

import (
	"bytes"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// TerminalSafe returns s as it can be printed on a terminal: whatever a
// server sent in it, no octet of the result is a control character or
// outside printable ASCII. It escapes the way cat -v (and tcpdump) do: a
// control character as '^' and a letter ("^[" for ESC, "^?" for DEL),
// an octet with the high bit set as "M-" and the escape of its low seven
// bits ("M-^[" for 0x9b, a C1 CSI; a right-to-left override, U+202E,
// shows as "M-bM-^@M-."). NTP's text is ASCII, so ordinary values are
// printed as they are. Summaries and statistics texts that show server
// values go through it.
func TerminalSafe(s string) string {
	i := 0
	for i < len(s) && s[i] >= ' ' && s[i] <= '~' {
		i++
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	b.WriteString(s[:i])
	for ; i < len(s); i++ {
		c := s[i]
		if c > 0x7f {
			b.WriteString("M-")
			c &= 0x7f
		}
		if c < ' ' || c == 0x7f {
			b.WriteByte('^')
			c ^= 0x40
		}
		b.WriteByte(c)
	}
	return b.String()
}

// EscapeJSON escapes, in JSON that encoding/json produced, the
// characters it leaves as they are and a terminal would act on: DEL, the
// C1 controls (U+0080 to U+009F, CSI among them) and format characters
// such as the bidirectional overrides (U+202E) and U+2028, U+2029. They
// are written as \uXXXX escapes, which decode to the same string; they
// can only occur inside strings, so the JSON stays valid. encoding/json
// has already escaped the C0 controls and replaced invalid UTF-8.
// JSONWriter and every program of the project write their JSON through
// it; js is returned as it is when there is nothing to escape.
func EscapeJSON(js []byte) []byte {
	if !bytes.ContainsFunc(js, unsafeRune) {
		return js
	}
	out := make([]byte, 0, len(js)+32)
	for len(js) > 0 {
		r, n := utf8.DecodeRune(js)
		if !unsafeRune(r) {
			out = append(out, js[:n]...)
		} else if r1, r2 := utf16.EncodeRune(r); r1 != utf8.RuneError {
			out = appendU(appendU(out, r1), r2)
		} else {
			out = appendU(out, r)
		}
		js = js[n:]
	}
	return out
}

func unsafeRune(r rune) bool {
	return r == 0x7f || (r >= 0x80 && r <= 0x9f) || unicode.Is(unicode.Cf, r) ||
		r == '\u2028' || r == '\u2029'
}

func appendU(b []byte, r rune) []byte {
	const hex = "0123456789abcdef"
	return append(b, '\\', 'u', hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
}
