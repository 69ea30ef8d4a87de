package mode6

import (
	"math"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/ntpctl/ntpctl/internal/hexcap"
)

// seedReplies adds every datagram of the captures in testdata, and its
// data, to f, with text that takes the slow paths.
func seedReplies(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.hex.txt"))
	if err != nil || len(files) == 0 {
		f.Fatal("no captures", err)
	}
	for _, file := range files {
		pkts, err := hexcap.Load(file)
		if err != nil {
			f.Fatal(err)
		}
		for _, p := range pkts {
			f.Add(p.Payload)
			if len(p.Payload) > 12 {
				f.Add(p.Payload[12:])
			}
		}
	}
	f.Add([]byte(`a="x, y=z", b, c=, d=1 2filtoffset=3,` + "\r\n\x00\xff" + `e="unterminated`))
	f.Add([]byte("version=\"\xc3\xa9\x7f\", x\x01y=1\tz,=5,\"q\"r=2,leap=11,refid=::1,precision=-200"))
}

// FuzzParseVarsRef: ParseVars gives what the reference implementation
// (ParseVars before its fast paths, in ref_test.go) gives, stats
// included.
func FuzzParseVarsRef(f *testing.F) {
	seedReplies(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		got, gst := ParseVars(data)
		want, wst := refParseVars(data)
		if gst != wst {
			t.Fatalf("stats %+v, want %+v", gst, wst)
		}
		if len(got) != len(want) {
			t.Fatalf("%d vars, want %d", len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("var %d: %+v, want %+v", i, got[i], want[i])
			}
		}
	})
}

// FuzzSystemVarsRef: ParseSystemVars gives what the reference
// implementation gives: every field, Has bit and error.
func FuzzSystemVarsRef(f *testing.F) {
	seedReplies(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		got, gerr := ParseSystemVars(data)
		want, werr := refParseSystemVars(data)
		if (gerr == nil) != (werr == nil) || (gerr != nil && gerr.Error() != werr.Error()) {
			t.Fatalf("error %v, want %v", gerr, werr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%+v\nwant %+v", got, want)
		}
	})
}

// TestSysFieldIndex: the name switch and the table agree.
func TestSysFieldIndex(t *testing.T) {
	for i, n := range sysFields {
		if got := sysField(n); got != i {
			t.Errorf("sysField(%q) = %d, want %d", n, got, i)
		}
		if got, want := sysGroup(i), refSysGroup(i); got != want {
			t.Errorf("sysGroup(%d) = %d, want %d", i, got, want)
		}
	}
	for _, n := range []string{"", "x", "versio", "versions", "Version"} {
		if sysField(n) != -1 {
			t.Errorf("sysField(%q) found", n)
		}
	}
}

// FuzzNumbersRef: the number and timestamp parsers give what strconv
// gives (values and whether they fail; float64s bit for bit).
func FuzzNumbersRef(f *testing.F) {
	for _, s := range []string{"0.000", "-0.000", "+1.5", "16", "255", "256", "007", "-24",
		"0.123456789012345", "1234567890123456", "1e5", ".5", "5.", ".", "-", "", "inf", "NaN",
		"0x1p-2", "1_000", "0xdfb39d2d.8598591b", "eeb2d8bb.4c50ec8d", "0X0.0", "0x.1", "0xg.0",
		"-128", "-129", "127", "128", "-0", "+5", "--5", "-+5", "201701010000", "202602290000", "202402290000",
		"190002290000", "200002292359", "202512312400", "202512310060", "000001010000", "202513010000", "20250101000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		gf, gerr := parseFloat(s)
		wf, werr := refParseFloat(s)
		if (gerr == nil) != (werr == nil) || math.Float64bits(gf) != math.Float64bits(wf) {
			t.Fatalf("parseFloat(%q) = %v, %v; want %v, %v", s, gf, gerr, wf, werr)
		}
		if gerr != nil && gerr.Error() != werr.Error() {
			t.Fatalf("parseFloat(%q): %v, want %v", s, gerr, werr)
		}
		gu, gerr := parseUint8(s)
		wu, werr := refParseUint8(s)
		if gu != wu || (gerr == nil) != (werr == nil) || (gerr != nil && gerr.Error() != werr.Error()) {
			t.Fatalf("parseUint8(%q) = %v, %v; want %v, %v", s, gu, gerr, wu, werr)
		}
		gi, gerr := parseInt8(s)
		wi, werr := strconv.ParseInt(s, 10, 8)
		if (gerr == nil) != (werr == nil) || (gerr != nil && gerr.Error() != werr.Error()) || (gerr == nil && int64(gi) != wi) {
			t.Fatalf("parseInt8(%q) = %v, %v; want %v, %v", s, gi, gerr, wi, werr)
		}
		gs, gerr := parseFileStamp(s)
		ws, werr := time.Parse("200601021504", s)
		if !reflect.DeepEqual(gs, ws) || (gerr == nil) != (werr == nil) || (gerr != nil && gerr.Error() != werr.Error()) {
			t.Fatalf("parseFileStamp(%q) = %v, %v; want %v, %v", s, gs, gerr, ws, werr)
		}
		gt, gerr := ParseTimestamp(s)
		wt, werr := refParseTimestamp(s)
		if gt != wt || gerr != werr {
			t.Fatalf("ParseTimestamp(%q) = %v, %v; want %v, %v", s, gt, gerr, wt, werr)
		}
	})
}

// FuzzBannerDateRef: the banner's date is what time.Parse makes of it.
func FuzzBannerDateRef(f *testing.F) {
	for _, s := range []string{"Thu Nov 26 14:04:21 UTC 2026", "Wed Sep 23 11:46:38 UTC 2020",
		"Sun Feb 29 00:00:00 UTC 2024", "Sun Feb 29 00:00:00 UTC 2023", "Mon Apr 31 23:59:59 UTC 2021",
		"Tue Jan  6 09:08:07 UTC 1999", "Tue Jan 06 24:08:07 UTC 1999", "Tue Jan 6 9:08:07 UTC 1999",
		"tue jan 06 09:08:07 UTC 1999", "Fri Dec 31 23:59:60 UTC 2027", "Wed Sep 23 11:46:38 CEST 2020",
		"Wed Sep 23 11:46:38 GMT 2020", "Xyz Sep 23 11:46:38 UTC 2020", "Wed Spe 23 11:46:38 UTC 2020",
		"Wed Sep 00 11:46:38 UTC 2020", "Wed Sep 23 11:46:38 UTC 0000", "2020-09-23T11:46:38Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, want := bannerDate(s), refBannerDate(s)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: %v, want %v", s, got, want)
		}
	})
}

// FuzzPrintable: the eight-at-a-time test agrees with isJunk octet by
// octet.
func FuzzPrintable(f *testing.F) {
	f.Add([]byte("leap=3, stratum=16,\r\n\tprecision=-24"))
	f.Add([]byte("\x00\x08\x0b\x1f\x7f\x80\xff ~!"))
	f.Fuzz(func(t *testing.T, data []byte) {
		want := true
		for _, c := range data {
			want = want && !isJunk(c)
		}
		for off := range min(len(data), 8) { // every alignment of the tail
			w := true
			for _, c := range data[off:] {
				w = w && !isJunk(c)
			}
			if got := printable(data[off:]); got != w {
				t.Fatalf("printable(%q) = %v", data[off:], got)
			}
		}
		if printable(data) != want {
			t.Fatalf("printable(%q) = %v", data, !want)
		}
	})
}

// TestPrintableOctets: each octet, alone and at each position of a word.
func TestPrintableOctets(t *testing.T) {
	for c := range 256 {
		for pos := range 9 {
			b := []byte("abcdefgh_")
			b[pos] = byte(c)
			if got, want := printable(b), !isJunk(byte(c)); got != want {
				t.Fatalf("octet %#x at %d: %v, want %v", c, pos, got, want)
			}
		}
	}
}
