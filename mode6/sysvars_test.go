package mode6_test

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/ntpctl/ntpctl/mode6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSystemVarsNTPsec(t *testing.T) {
	v := vectors(t)
	var p mode6.Packet
	require.NoError(t, p.DecodeFromBytes(v["R6-2"]))
	s, err := mode6.ParseSystemVars(p.Data)
	require.NoError(t, err)
	assert.Equal(t, "ntpd ntpsec-1.2.2", s.Version)
	assert.Equal(t, mode6.Banner{Raw: "ntpd ntpsec-1.2.2", Program: "ntpd", Version: "ntpsec-1.2.2"}, s.Banner)
	assert.Equal(t, "ntpsec", s.Banner.Implementation())
	assert.Equal(t, "x86_64", s.Processor)
	assert.Equal(t, "Linux/6.18.44-fc-v595", s.System)
	assert.Equal(t, uint8(3), s.Leap)
	assert.Equal(t, uint8(11), s.Stratum)
	assert.Equal(t, int8(-24), s.Precision)
	assert.Equal(t, 198.385, s.RootDisp)
	assert.Equal(t, mode6.RefID{Kind: mode6.RefIDIPv4, Addr: netip.MustParseAddr("127.127.1.0"), Raw: "127.127.1.0"}, s.RefID)
	assert.Equal(t, mode6.Timestamp(0xeeb2bcb5_f62c4c4f), s.RefTime)
	assert.Equal(t, uint16(17767), s.Peer)
	assert.Equal(t, uint8(6), s.TC)
	assert.Equal(t, 0.00006, s.ClkJitter)
	assert.True(t, s.Has("rootdisp"))
	assert.False(t, s.Has("rootdispersion"))
	assert.False(t, s.Has("tai"))
	assert.Empty(t, s.Unknown)
	assert.Len(t, s.Vars, 19)
	assert.Equal(t, time.Date(2026, 11, 26, 14, 12, 5, 0, time.UTC), s.RefTime.Time().Truncate(time.Second))
}

func TestSystemVarsClassic(t *testing.T) {
	s, err := mode6.ParseSystemVars(reassemble(t, "classic-rv-v4").Data)
	require.NoError(t, err)
	assert.Equal(t, mode6.Banner{Raw: "ntpd 4.2.8p18@1.4062-o Thu Nov 26 14:04:21 UTC 2026 (1)", Program: "ntpd",
		Version: "4.2.8p18", Build: "1.4062-o", DateText: "Thu Nov 26 14:04:21 UTC 2026",
		Date: time.Date(2026, 11, 26, 14, 4, 21, 0, time.UTC)}, s.Banner)
	assert.Equal(t, "ntp.org", s.Banner.Implementation())
	assert.Equal(t, mode6.RefID{Kind: mode6.RefIDCode, Code: "INIT", Raw: "INIT"}, s.RefID)
	assert.True(t, s.RefTime.IsZero())
	assert.True(t, s.RefTime.Time().IsZero())
	assert.Equal(t, uint8(16), s.Stratum)
	assert.Equal(t, uint8(3), s.MinTC)
}

// TestSystemVarsOldNames: 4.2.4/xntpd names fill the same fields, and a
// Cisco-style server's values parse.
func TestSystemVarsOldNames(t *testing.T) {
	text := `version="ntpd 4.2.4p8@1.1612-o Tue Apr 19 07:08:35 UTC 2011 (1)", processor="i686",` + "\r\n" +
		`system="UNIX", leap=0, stratum=2, precision=-20, rootdelay=31.227, rootdispersion=55.912,` + "\r\n" +
		`peer=33276, refid=192.0.2.7, reftime=0xd1f3a2b4.12345678, poll=10, clock=0xd1f3a5c1.9abcdef0,` + "\r\n" +
		`state=4, offset=-0.573, frequency=18.344, jitter=1.227, noise=0.417, stability=0.052,` + "\r\n" +
		`tai=37, leapsec=201701010000, expire=202706280000, hostname="gw"` + "\r\n"
	s, err := mode6.ParseSystemVars([]byte(text))
	require.NoError(t, err)
	assert.Equal(t, "4.2.4p8", s.Banner.Version)
	assert.Equal(t, 55.912, s.RootDisp)
	assert.Equal(t, uint8(10), s.TC)
	assert.Equal(t, 1.227, s.SysJitter)
	assert.Equal(t, 0.417, s.ClkJitter)
	assert.Equal(t, 0.052, s.ClkWander)
	assert.Equal(t, uint8(4), s.State)
	assert.Equal(t, 37, s.TAI)
	assert.Equal(t, time.Date(2017, 1, 1, 0, 0, 0, 0, time.UTC), s.LeapSec)
	assert.Equal(t, time.Date(2027, 6, 28, 0, 0, 0, 0, time.UTC), s.Expire)
	assert.Equal(t, mode6.Vars{{Name: "hostname", Value: "gw", Quoted: true}}, s.Unknown, "unknown variables are kept")
	assert.True(t, s.Has("rootdispersion"))
	assert.Equal(t, netip.MustParseAddr("192.0.2.7"), s.RefID.Addr)
	assert.Equal(t, time.Date(2011, 8, 15, 13, 50, 44, 0, time.UTC), s.RefTime.Time().Truncate(time.Second))
}

func TestSystemVarsMalformed(t *testing.T) {
	text := "leap=7, stratum=300, precision=x, rootdelay=NaN, reftime=0xzz.1, peer=-1, offset=1.5, tc=, leapsec=2017, " +
		"clock=0x1.2, stratum=3"
	s, err := mode6.ParseSystemVars([]byte(text))
	require.Error(t, err)
	var fes []*mode6.FieldError
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var fe *mode6.FieldError
		require.True(t, errors.As(e, &fe))
		fes = append(fes, fe)
	}
	got := map[string]bool{}
	for _, fe := range fes {
		got[fe.Name] = true
		if fe.Name == "reftime" {
			assert.ErrorIs(t, fe, mode6.ErrTimestamp)
		} else {
			assert.ErrorIs(t, fe, mode6.ErrValue, fe.Name)
		}
	}
	assert.Equal(t, map[string]bool{"leap": true, "stratum": true, "precision": true, "rootdelay": true,
		"reftime": true, "peer": true, "tc": true, "leapsec": true}, got)
	assert.Equal(t, 1.5, s.Offset, "good values survive bad neighbours")
	assert.Equal(t, mode6.Timestamp(1<<32|2), s.Clock)
	assert.Equal(t, uint8(0), s.Stratum, "the first stratum is malformed; the duplicate is ignored")
	assert.Contains(t, fes[0].Error(), `variable leap="7"`)
}

func TestParseLeapCooked(t *testing.T) {
	for text, want := range map[string]uint8{"leap=3": 3, "leap=11": 3, "leap=01": 1, "leap=00": 0} {
		s, err := mode6.ParseSystemVars([]byte(text))
		require.NoError(t, err, text)
		assert.Equal(t, want, s.Leap, text)
	}
}

func TestBanner(t *testing.T) {
	tests := []struct {
		in   string
		want mode6.Banner
		impl string
	}{
		{"ntpd 4.2.6p5@1.2349-o Fri Apr 13 12:52:27 UTC 2018 (1)", mode6.Banner{Program: "ntpd", Version: "4.2.6p5", Build: "1.2349-o",
			DateText: "Fri Apr 13 12:52:27 UTC 2018", Date: time.Date(2018, 4, 13, 12, 52, 27, 0, time.UTC)}, "ntp.org"},
		{"ntpd 4.2.8p10@1.3728-o Sun Sep 17 20:40:05 UTC 2017 (1)", mode6.Banner{Program: "ntpd", Version: "4.2.8p10", Build: "1.3728-o",
			DateText: "Sun Sep 17 20:40:05 UTC 2017", Date: time.Date(2017, 9, 17, 20, 40, 5, 0, time.UTC)}, "ntp.org"},
		// Zone abbreviations other than UTC are ambiguous: the date text
		// is kept, no instant is made up.
		{"ntpd 4.1.1c-rc1@1.836 Thu Feb  6 10:14:40 CET 2003 (1)", mode6.Banner{Program: "ntpd", Version: "4.1.1c-rc1", Build: "1.836",
			DateText: "Thu Feb  6 10:14:40 CET 2003"}, "ntp.org"},
		{"xntpd 3-5.93e Wed Apr 14 20:23:03 EDT 1999 (1)", mode6.Banner{Program: "xntpd", Version: "3-5.93e",
			DateText: "Wed Apr 14 20:23:03 EDT 1999"}, "xntpd"},
		{"ntpd 4.2.6p5@1.2349-o Fri Apr 13 12:52:27 GMT 2018 (1)", mode6.Banner{Program: "ntpd", Version: "4.2.6p5", Build: "1.2349-o",
			DateText: "Fri Apr 13 12:52:27 GMT 2018", Date: time.Date(2018, 4, 13, 12, 52, 27, 0, time.UTC)}, "ntp.org"},
		{"ntpd ntpsec-1.2.2", mode6.Banner{Program: "ntpd", Version: "ntpsec-1.2.2"}, "ntpsec"},
		{"ntpd ntpsec-1.2.3 2024-05-04T10:00:00Z", mode6.Banner{Program: "ntpd", Version: "ntpsec-1.2.3",
			DateText: "2024-05-04T10:00:00Z", Date: time.Date(2024, 5, 4, 10, 0, 0, 0, time.UTC)}, "ntpsec"},
		{"4", mode6.Banner{Version: "4"}, ""},
		{"", mode6.Banner{}, ""},
		{"weird banner (x", mode6.Banner{Program: "weird", Version: "banner", DateText: "(x"}, ""},
	}
	for _, tc := range tests {
		got := mode6.ParseBanner(tc.in)
		tc.want.Raw = tc.in
		// The date layouts keep the zone's name; compare instants.
		assert.True(t, tc.want.Date.Equal(got.Date), "%q: %v", tc.in, got.Date)
		got.Date, tc.want.Date = time.Time{}, time.Time{}
		assert.Equal(t, tc.want, got, tc.in)
		assert.Equal(t, tc.impl, mode6.ParseBanner(tc.in).Implementation(), tc.in)
	}
}

func TestRefID(t *testing.T) {
	assert.Equal(t, mode6.RefIDCode, mode6.ParseRefID("GPS").Kind)
	assert.Equal(t, "LOCL", mode6.ParseRefID("LOCL").Code)
	assert.Equal(t, mode6.RefIDIPv4, mode6.ParseRefID("192.0.2.1").Kind)
	r := mode6.ParseRefID("2001:db8::1")
	assert.Equal(t, mode6.RefIDIPv6, r.Kind)
	assert.Equal(t, "2001:db8::1", r.String())
	assert.Equal(t, mode6.RefIDNone, mode6.ParseRefID("").Kind)
}

func TestTimestamp(t *testing.T) {
	ts, err := mode6.ParseTimestamp("0xdfb39d2d.8598591b")
	require.NoError(t, err)
	assert.Equal(t, mode6.Timestamp(0xdfb39d2d_8598591b), ts)
	assert.Equal(t, "0xdfb39d2d.8598591b", ts.String())
	assert.Equal(t, time.Date(2018, 12, 6, 13, 5, 49, 521855897, time.UTC), ts.Time())
	assert.Equal(t, ts, mode6.TimestampOf(ts.Time()))

	cooked, err := mode6.ParseTimestamp("EEB2D8BB.4C50EC8D") // ntpq's display, upper case
	require.NoError(t, err)
	assert.Equal(t, time.Date(2026, 11, 26, 16, 11, 39, 298109803, time.UTC), cooked.Time())

	// Era 1: after 2036-02-07 the seconds wrap.
	later := time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC)
	assert.Equal(t, later, mode6.TimestampOf(later).Time())
	assert.Equal(t, later, mode6.TimestampOf(later).TimeNear(time.Date(2039, 1, 1, 0, 0, 0, 0, time.UTC)))
	// A 1970s clock (era 0) stays in era 0 when the reference is close.
	old := time.Date(1975, 5, 1, 0, 0, 0, 0, time.UTC)
	assert.Equal(t, old, mode6.TimestampOf(old).TimeNear(old.Add(24*time.Hour)))
	assert.True(t, mode6.Timestamp(0).TimeNear(later).IsZero())
	assert.Zero(t, mode6.TimestampOf(time.Time{}))

	for _, bad := range []string{"", "0x", "0x1", "0x.1", "0x1.", "0x123456789.0", "0xg.0", "1.2.3", "0x1.123456789"} {
		_, err := mode6.ParseTimestamp(bad)
		assert.ErrorIs(t, err, mode6.ErrTimestamp, bad)
	}
}

// Where a quantity has two names, the first in wire order wins.
func TestSystemVarsFirstNameWins(t *testing.T) {
	both := mode6.Vars{{Name: "rootdisp", Value: "1"}, {Name: "rootdispersion", Value: "2"}, {Name: "jitter", Value: "3"}, {Name: "sys_jitter", Value: "4"}}
	var sv mode6.SystemVars
	require.NoError(t, sv.UnmarshalVars(both))
	assert.Equal(t, 1.0, sv.RootDisp)
	assert.Equal(t, 3.0, sv.SysJitter)
}
