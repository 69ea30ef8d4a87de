package enrich

import (
	"math"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Every value a provider gives comes from a file or a server someone else
// controls: an MMDB file, a DNS answer, an RDAP server, a table. It is
// validated where it enters a Result (Result.Merge, through which every
// provider's answer goes, and the providers' own Lookup methods), so that
// what reaches a report, a file name or a terminal is bounded and of the
// expected form; a value that is not is dropped, never passed on.

// Bounds of the text values, in runes (characters).
const (
	maxNameRunes   = 128 // AS names, organisations, sectors
	maxPlaceRunes  = 100 // regions and cities
	maxHandleRunes = 64  // abuse contact handles
	maxSourceLen   = 512 // where a contact came from (a URL), in octets
	maxEmailLen    = 254 // RFC 5321's path limit
	maxHostLen     = 253 // a DNS name in text form, without the final dot
)

// validCountry returns s as an upper-case ISO 3166-1 alpha-2 code, or ""
// when it is not two ASCII letters.
func validCountry(s string) string {
	if !isAlpha2(s) {
		return ""
	}
	return strings.ToUpper(s)
}

// validASNumber returns n if it is an AS number that can originate a
// route (RFC 7607: not 0; RFC 7300: not 4294967295), else 0.
func validASNumber(n uint32) uint32 {
	if n == 0 || n == math.MaxUint32 {
		return 0
	}
	return n
}

// boundedText returns s as one line of printable text: octets that are
// not UTF-8 and control, format and bidirectional-override characters
// (C0, C1, U+200E, U+202A–U+202E, U+2066–U+2069, …) dropped, spaces
// folded, cut at max runes. An empty result means nothing usable.
func boundedText(s string, max int) string {
	clean := true
	n := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || !keepRune(r) || (r == ' ' && (i == 0 || s[i-1] == ' ')) {
			clean = false
			break
		}
		n++
		i += size
	}
	if clean && n <= max && !strings.HasSuffix(s, " ") {
		return s
	}
	var b strings.Builder
	n = 0
	space := false
	for i := 0; i < len(s) && n < max; {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == utf8.RuneError && size == 1, !keepRune(r) && !unicode.IsSpace(r):
			continue
		case unicode.IsSpace(r):
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			n++
			space = false
			if n == max {
				break
			}
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// keepRune reports whether r may stand in a bounded text: a printable
// character or a plain space, but no bidirectional control.
func keepRune(r rune) bool {
	if r == ' ' {
		return true
	}
	switch {
	case r >= 0x200b && r <= 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0xfeff:
		return false // zero-width and bidirectional controls
	}
	return unicode.IsPrint(r)
}

// validEmail returns s if it looks like one mailbox: one "@" with text
// on both sides, no space or control character, within RFC 5321's
// length; else "".
func validEmail(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "mailto:")
	at := strings.IndexByte(s, '@')
	if len(s) > maxEmailLen || at <= 0 || at != strings.LastIndexByte(s, '@') || at == len(s)-1 {
		return ""
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f || c == '<' || c == '>' || c == ',' || c == ';' || c == '"' {
			return ""
		}
	}
	if !utf8.ValidString(s) {
		return ""
	}
	return s
}

// validHost returns a reverse DNS name if it is one: letters, digits,
// hyphens, underscores and dots, labels of 1 to 63 octets, at most 253
// octets (a final dot kept); else "".
func validHost(s string) string {
	name := strings.TrimSuffix(s, ".")
	if name == "" || len(name) > maxHostLen {
		return ""
	}
	label := 0
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '.':
			if label == 0 {
				return ""
			}
			label = 0
			continue
		case isLetter(c), c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return ""
		}
		label++
		if label > 63 {
			return ""
		}
	}
	if label == 0 {
		return ""
	}
	return s
}

// sanitize validates every value of r in place (see the top of this
// file): what is malformed is dropped.
func (r *Result) sanitize() {
	for i, n := range r.Names {
		if validHost(n) == "" {
			// Copied without the bad ones: the slice may be shared.
			names := slices.Clone(r.Names[:i])
			for _, n := range r.Names[i+1:] {
				if validHost(n) != "" {
					names = append(names, n)
				}
			}
			r.Names = names
			break
		}
	}
	r.ASN.sanitize()
	r.Geo.sanitize()
	r.Abuse.Email = validEmail(r.Abuse.Email)
	r.Abuse.Handle = boundedText(r.Abuse.Handle, maxHandleRunes)
	if len(r.Abuse.Source) > maxSourceLen || boundedText(r.Abuse.Source, maxSourceLen) != r.Abuse.Source {
		r.Abuse.Source = ""
	}
	if r.NAICS < 0 || r.NAICS > 999999 { // NAICS codes have 2 to 6 digits
		r.NAICS = 0
	}
	r.Sector = boundedText(r.Sector, maxNameRunes)
}

func (a *ASN) sanitize() {
	a.Number = validASNumber(a.Number)
	a.Name = boundedText(a.Name, maxNameRunes)
	a.Country = validCountry(a.Country)
	reg := strings.ToLower(a.Registry)
	if len(reg) > 16 || strings.IndexFunc(reg, func(r rune) bool { return r < 'a' || r > 'z' }) >= 0 {
		reg = ""
	}
	a.Registry = reg
}

func (g *Geo) sanitize() {
	g.Country = validCountry(g.Country)
	g.Region = boundedText(g.Region, maxPlaceRunes)
	g.City = boundedText(g.City, maxPlaceRunes)
	if g.HasCoordinates && !(finite(g.Latitude) && finite(g.Longitude) &&
		math.Abs(g.Latitude) <= 90 && math.Abs(g.Longitude) <= 180) {
		g.Latitude, g.Longitude, g.HasCoordinates = 0, 0, false
	}
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
