package mode6

import (
	"errors"
	"strings"
	"time"
)

// ErrTimestamp reports text that is not an NTP timestamp.
var ErrTimestamp = errors.New("mode6: malformed NTP timestamp")

// Timestamp is a 64-bit NTP timestamp as ntpd prints it,
// "0xdfb39d2d.8598591b": 32 bits of seconds since 1900 (modulo 2^32, the
// era is not sent) and 32 bits of fraction.
type Timestamp uint64

// ntpEpochOffset is the number of seconds from 1900-01-01 to 1970-01-01.
const ntpEpochOffset = 2208988800

// ParseTimestamp parses "0xSSSSSSSS.FFFFFFFF" as ntpd prints it; it also
// takes the form without "0x" that ntpq shows, and either letter case.
func ParseTimestamp(s string) (Timestamp, error) {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	secs, frac, ok := strings.Cut(s, ".")
	if !ok || len(secs) == 0 || len(secs) > 8 || len(frac) == 0 || len(frac) > 8 {
		return 0, ErrTimestamp
	}
	hi, ok1 := parseHex32(secs)
	lo, ok2 := parseHex32(frac)
	if !ok1 || !ok2 {
		return 0, ErrTimestamp
	}
	return Timestamp(uint64(hi)<<32 | uint64(lo)), nil
}

// parseHex32 parses one to eight hexadecimal digits.
func parseHex32(s string) (uint32, bool) {
	var v uint32
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		v = v<<4 | uint32(c)
	}
	return v, true
}

// String returns t as ntpd prints it, "0xdfb39d2d.8598591b".
func (t Timestamp) String() string {
	var b [19]byte
	return string(t.AppendText(b[:0]))
}

// AppendText appends t as ntpd prints it.
func (t Timestamp) AppendText(b []byte) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '0', 'x')
	for i := 60; i >= 32; i -= 4 {
		b = append(b, hex[t>>uint(i)&0xf])
	}
	b = append(b, '.')
	for i := 28; i >= 0; i -= 4 {
		b = append(b, hex[t>>uint(i)&0xf])
	}
	return b
}

// Seconds returns the seconds field.
func (t Timestamp) Seconds() uint32 { return uint32(t >> 32) }

// Fraction returns the fraction field, in units of 2^-32 s.
func (t Timestamp) Fraction() uint32 { return uint32(t) }

// IsZero reports whether t is 0, which ntpd prints for "never"
// (reftime of an unsynchronised server).
func (t Timestamp) IsZero() bool { return t == 0 }

// Time returns t as a UTC time, taking the era by the RFC 4330 rule:
// seconds with the top bit set are in era 0 (1968–2036), the others in era
// 1 (2036–2104). The zero Timestamp gives the zero time.Time.
func (t Timestamp) Time() time.Time {
	if t == 0 {
		return time.Time{}
	}
	era := int64(0)
	if t.Seconds()&0x80000000 == 0 {
		era = 1
	}
	return t.inEra(era)
}

// TimeNear returns t in the era that puts it closest to ref, for
// timestamps that may lie far from today (reftime of a server whose clock
// is years off).
func (t Timestamp) TimeNear(ref time.Time) time.Time {
	if t == 0 {
		return time.Time{}
	}
	refSecs := ref.Unix() + ntpEpochOffset
	era := refSecs >> 32
	best := t.inEra(era)
	for _, e := range []int64{era - 1, era + 1} {
		c := t.inEra(e)
		if absDur(c.Sub(ref)) < absDur(best.Sub(ref)) {
			best = c
		}
	}
	return best
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

func (t Timestamp) inEra(era int64) time.Time {
	secs := era<<32 + int64(t.Seconds()) - ntpEpochOffset
	nanos := (int64(t.Fraction())*1e9 + 1<<31) >> 32
	return time.Unix(secs, nanos).UTC()
}

// TimestampOf returns the NTP timestamp of tm (the era is dropped).
func TimestampOf(tm time.Time) Timestamp {
	if tm.IsZero() {
		return 0
	}
	secs := uint64(tm.Unix() + ntpEpochOffset)
	frac := (uint64(tm.Nanosecond())<<32 + 5e8) / 1e9
	return Timestamp(secs<<32 + frac)
}
