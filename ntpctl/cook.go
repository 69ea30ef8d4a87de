package main

import (
	"fmt"
	"io"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ntpctl/ntpctl/mode6"
)

// The facts below are those of ntpsec 1.2.2's ntpq (Debian's package), as
// it prints `ntpq -c rv` in its default (cooked) mode: learnt from its
// output against ntpsec's ntpd and from its Python sources (ntp/util.py
// cook, ntp/packet.py's variable list parser, ntp/ntpc.prettydate).

// ntpqWidth is where ntpq folds a variable list: the terminal's width less
// 2, with 80 columns when its output is not a terminal (ntpctl always
// folds as ntpq does into a pipe or an 80-column terminal).
const ntpqWidth = 80 - 2

// ntpqSpecials are the peer variables ntpq prints right-aligned in 10
// columns before " =", their blank-separated values joined by tabs.
var ntpqSpecials = map[string]bool{"filtdelay": true, "filtoffset": true, "filtdisp": true, "filterror": true}

// ntpqDates are the variables ntpq prints as a timestamp and its date.
var ntpqDates = map[string]bool{"reftime": true, "clock": true, "org": true, "rec": true, "xmt": true}

// ntpqVerbatim are the variables ntpq prints as the server sent them.
var ntpqVerbatim = map[string]bool{"srcadr": true, "peeradr": true, "dstadr": true, "refid": true}

// flashNames are the peer flash bits, bit 0 first (TEST1..TEST13), as
// ntpq names them.
var flashNames = [...]string{"pkt_dup", "pkt_bogus", "pkt_unsync", "pkt_denied", "pkt_auth",
	"pkt_stratum", "pkt_header", "pkt_autokey", "pkt_crypto", "peer_stratum", "peer_dist",
	"peer_loop", "peer_unreach"}

// pyInt and pyFloat are the texts ntpq's parser takes as numbers: Python's
// int(value, 0) (decimal without leading zeros, 0x, 0o and 0b) and
// float(value). Underscores, which Python also accepts, are not matched:
// such a value prints as a string.
var (
	pyInt   = regexp.MustCompile(`^[+-]?(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|[1-9][0-9]*|0+)$`)
	pyFloat = regexp.MustCompile(`^[+-]?(([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|(?i:inf|infinity|nan))$`)
)

// parseInt parses a value ntpq takes for an integer.
func parseInt(s string) (*big.Int, bool) {
	if !pyInt.MatchString(s) {
		return nil, false
	}
	neg := s[0] == '-'
	s = strings.TrimLeft(s, "+-")
	base := 10
	if len(s) > 1 && s[0] == '0' {
		switch s[1] {
		case 'x', 'X':
			base = 16
		case 'o', 'O':
			base = 8
		case 'b', 'B':
			base = 2
		}
		if base != 10 {
			s = s[2:]
		}
	}
	n, ok := new(big.Int).SetString(s, base)
	if ok && neg {
		n.Neg(n)
	}
	return n, ok
}

// parseFloat parses a value ntpq takes for a float.
func parseFloat(s string) (float64, bool) {
	if !pyFloat.MatchString(s) {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !math.IsInf(f, 0) { // out of range is ±inf, as in Python
		return 0, false
	}
	return f, true
}

// pyRepr prints f as Python's repr does: the shortest digits that read
// back as f, in positional notation from 1e-4 up to 1e16 (with ".0" when
// there is no fraction), else as 1e-05 and 1.5e+16.
func pyRepr(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	e := strconv.FormatFloat(f, 'e', -1, 64)
	exp, _ := strconv.Atoi(e[strings.IndexByte(e, 'e')+1:])
	if f != 0 && (exp < -4 || exp >= 16) {
		return e
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

// writeVars prints the association line and the variables as ntpq -c rv
// does. Without the status line (quiet: ntpq omits it when the request
// named variables) only the variables are printed; with no variables
// ntpq's "No system variables returned" or "No information returned for
// association N".
func writeVars(w io.Writer, assoc, status uint16, vs mode6.Vars, statusText string, quiet bool) {
	if len(vs) == 0 {
		if assoc == 0 {
			fmt.Fprintln(w, "No system variables returned")
		} else {
			fmt.Fprintf(w, "No information returned for association %d\n", assoc)
		}
		return
	}
	if !quiet {
		fmt.Fprintf(w, "associd=%d status=%04x %s,\n", assoc, status, statusText)
	}
	items := make([]string, len(vs))
	for i, v := range vs {
		items[i] = cookVar(v)
	}
	io.WriteString(w, foldItems(items))
}

// foldItems joins cooked variables as ntpq does: each item followed by
// ", ", and where the current line and the next item with its separator
// would pass ntpqWidth, the line ends after the comma. The last separator
// gives way to a newline.
func foldItems(items []string) string {
	if len(items) == 0 {
		return ""
	}
	var b strings.Builder
	line := 0
	for _, item := range items {
		item += ", "
		if line+len(item) > ntpqWidth && line > 0 {
			s := b.String()
			b.Reset()
			b.WriteString(s[:len(s)-1])
			b.WriteByte('\n')
			line = 0
		}
		b.WriteString(item)
		line += len(item)
	}
	s := b.String()
	return s[:len(s)-2] + "\n"
}

// cookVar formats one variable as ntpq's cooked mode does, by its name and
// by whether the value reads as an integer, a float or a string: leap in
// two binary digits, reach in three octal digits, flash in hexadecimal
// with the names of its bits ("00 ok"), integers in decimal, floats as
// Python prints them (0.000 is 0.0, 0.000060 is 6e-05), reftime, clock,
// org, rec and xmt as the timestamp and its date, srcadr, peeradr, dstadr
// and refid as sent, every other string in double quotes. Where ntpq
// would fail (leap=7, reach=1.5) the value is printed as sent. Names and
// values come from the network: what a terminal would act on is escaped
// as cat -v does (termSafe), so "^[" stands for ESC.
func cookVar(v mode6.Var) string {
	name := termSafe(v.Name)
	val := strings.TrimSpace(v.Value)
	if ntpqSpecials[v.Name] {
		f := strings.Fields(val)
		for i := range f {
			f[i] = termSafe(f[i])
		}
		return fmt.Sprintf("%10s =", name) + strings.Join(f, "\t")
	}
	item := name + "="
	if v.Quoted || val == "" {
		return item + `"` + termSafe(v.Value) + `"`
	}
	if ntpqVerbatim[v.Name] {
		return item + termSafe(val)
	}
	if ntpqDates[v.Name] {
		if d, ok := prettyDate(val); ok {
			return item + d
		}
		return item + termSafe(val)
	}
	if n, ok := parseInt(val); ok {
		switch v.Name {
		case "leap":
			if n.IsInt64() && n.Int64() >= 0 && n.Int64() <= 3 {
				return item + fmt.Sprintf("%02b", n.Int64())
			}
			return item + termSafe(val)
		case "reach":
			return item + fmt.Sprintf("%03o", n)
		case "flash":
			return item + flash(n)
		}
		return item + n.String()
	}
	if f, ok := parseFloat(val); ok && v.Name != "leap" && v.Name != "reach" && v.Name != "flash" {
		return item + pyRepr(f)
	}
	if v.Name == "leap" || v.Name == "reach" || v.Name == "flash" {
		return item + termSafe(val)
	}
	return item + `"` + termSafe(val) + `"`
}

// flash prints the flash bits as ntpq does: two hexadecimal digits, then
// "ok" for none or the names of the bits set.
func flash(n *big.Int) string {
	s := fmt.Sprintf("%02x", n)
	if n.Sign() == 0 {
		return s + " ok"
	}
	for i, name := range flashNames {
		if n.Bit(i) == 1 && n.Sign() > 0 {
			s += " " + name
		}
	}
	return s
}

// ntpqPivot is the middle of the 2^32-second window into which ntpsec
// 1.2.2's ntpq (Debian's build) places an NTP timestamp's era: its build
// epoch, 2022-12-14T08:32:40Z (0x674408a8 is dated 1954-11-26, 0x674408a7
// 2091-01-01).
const ntpqPivot = 1671006760

// prettyDate prints an NTP timestamp ("0xSSSSSSSS.FFFFFFFF") as ntpq's
// prettydate does: the hexadecimal timestamp without "0x", a space and the
// UTC date with milliseconds, the fraction divided by 4294967 (so a
// fraction of 0xffffffff is the next second).
func prettyDate(s string) (string, bool) {
	if len(s) != 19 || (s[:2] != "0x" && s[:2] != "0X") || s[10] != '.' {
		return "", false
	}
	ts, err := mode6.ParseTimestamp(s)
	if err != nil {
		return "", false
	}
	const unixFromNTP = 2208988800 // seconds from 1900 to 1970
	sec := int64(ts.Seconds()) - unixFromNTP
	for sec < ntpqPivot-1<<31 {
		sec += 1 << 32
	}
	ms := int64(ts.Fraction() / 4294967)
	date := time.Unix(sec, 0).Add(time.Duration(ms) * time.Millisecond).UTC()
	return strings.ToLower(s[2:]) + " " + date.Format("2006-01-02T15:04:05.000Z"), true
}
