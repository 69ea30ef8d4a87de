package main

import (
	"strings"
	"testing"

	"github.com/ntpctl/ntpctl/mode6"
	"github.com/stretchr/testify/assert"
)

// TestCookedAsNTPsec: a system variable list as ntpsec's ntpd sends it
// (its raw mode) prints as ntpsec 1.2.2's `ntpq -c rv` printed it, byte
// for byte: leap in binary, numbers as Python prints them, the
// timestamps with their dates, strings in quotes, folded at 78 columns.
func TestCookedAsNTPsec(t *testing.T) {
	raw := `leap=3, stratum=16, precision=-24, rootdelay=0.000, rootdisp=0.015,
refid=INIT, reftime=0x00000000.00000000, tc=0, peer=0, offset=0.000000,
frequency=0.000000, sys_jitter=0.000000, clk_jitter=0.000060,
clock=0xeeba13f0.da43d289, processor="x86_64",
system="Linux/6.18.44-fc-v669", version="ntpd ntpsec-1.2.2",
clk_wander=0.000000, mintc=0`
	vs, _ := mode6.ParseVars([]byte(raw))
	var b strings.Builder
	writeVars(&b, 0, 0xc016, vs, "leap_alarm, sync_unspec, 1 event, restart", false)
	// ntpq -n -c rv 127.0.0.1, ntpsec 1.2.2 (the clock as in the raw text)
	assert.Equal(t, `associd=0 status=c016 leap_alarm, sync_unspec, 1 event, restart,
leap=11, stratum=16, precision=-24, rootdelay=0.0, rootdisp=0.015,
refid=INIT, reftime=00000000.00000000 2036-02-07T06:28:16.000Z, tc=0, peer=0,
offset=0.0, frequency=0.0, sys_jitter=0.0, clk_jitter=6e-05,
clock=eeba13f0.da43d289 2026-12-02T03:50:08.852Z, processor="x86_64",
system="Linux/6.18.44-fc-v669", version="ntpd ntpsec-1.2.2", clk_wander=0.0,
mintc=0
`, b.String())
}

// TestCookedPeerAsNTPsec: peer variables (rv &1 of ntpsec's local clock)
// print as ntpq printed them: reach in octal, flash as "00 ok", leap in
// binary, filt* right-aligned with tabs, addresses as sent.
func TestCookedPeerAsNTPsec(t *testing.T) {
	raw := "srcadr=127.127.1.0, srcport=123, dstadr=127.0.0.1, dstport=123, leap=0,\r\n" +
		"hmode=3, stratum=10, ppoll=6, hpoll=6, precision=-24, rootdelay=0.000,\r\n" +
		"rootdisp=10.000, refid=LOCL, reftime=0x00000000.00000000,\r\n" +
		"rec=0xeeba13f0.49871600, xmt=0xeeba13f0.4985e5b2, reach=0x1, unreach=0,\r\n" +
		"delay=0.000000, offset=0.000000, jitter=0.000000, dispersion=7937.500000,\r\n" +
		"keyid=0, filtdelay= 0.00 0.00, pmode=4, flash=0x0, mode=0, headway=0,\r\n" +
		`srchost="LOCAL(0)", ntscookies=-1`
	vs, st := mode6.ParseVars([]byte(raw))
	assert.True(t, st.Clean(), "%+v", st)
	var b strings.Builder
	writeVars(&b, 17767, 0x9014, vs, "conf, reach, sel_reject, 1 event, reachable", false)
	assert.Equal(t, `associd=17767 status=9014 conf, reach, sel_reject, 1 event, reachable,
srcadr=127.127.1.0, srcport=123, dstadr=127.0.0.1, dstport=123, leap=00,
hmode=3, stratum=10, ppoll=6, hpoll=6, precision=-24, rootdelay=0.0,
rootdisp=10.0, refid=LOCL,
reftime=00000000.00000000 2036-02-07T06:28:16.000Z,
rec=eeba13f0.49871600 2026-12-02T03:50:08.287Z,
xmt=eeba13f0.4985e5b2 2026-12-02T03:50:08.287Z, reach=001, unreach=0,
delay=0.0, offset=0.0, jitter=0.0, dispersion=7937.5, keyid=0,
 filtdelay =0.00	0.00, pmode=4, flash=00 ok, mode=0, headway=0,
srchost="LOCAL(0)", ntscookies=-1
`, b.String())
}

// TestCookVar: each kind of value as ntpq cooks it (facts from ntpsec
// 1.2.2's ntpq and its Python number parsing), and hostile values still
// escaped.
func TestCookVar(t *testing.T) {
	for _, c := range []struct {
		v    mode6.Var
		want string
	}{
		{mode6.Var{Name: "reach", Value: "0xff"}, "reach=377"},
		{mode6.Var{Name: "reach", Value: "0"}, "reach=000"},
		{mode6.Var{Name: "reach", Value: "1.5"}, "reach=1.5"}, // ntpq fails here
		{mode6.Var{Name: "flash", Value: "0x0"}, "flash=00 ok"},
		{mode6.Var{Name: "flash", Value: "0x1400"}, "flash=1400 peer_dist peer_unreach"},
		{mode6.Var{Name: "flash", Value: "0x2000"}, "flash=2000"},
		{mode6.Var{Name: "leap", Value: "2"}, "leap=10"},
		{mode6.Var{Name: "leap", Value: "7"}, "leap=7"},
		{mode6.Var{Name: "tc", Value: "0x10"}, "tc=16"},
		{mode6.Var{Name: "x", Value: "007"}, "x=7.0"}, // int(…, 0) refuses leading zeros, float takes them
		{mode6.Var{Name: "offset", Value: "-0.000"}, "offset=-0.0"},
		{mode6.Var{Name: "offset", Value: "123.456789"}, "offset=123.456789"},
		{mode6.Var{Name: "frequency", Value: "1e16"}, "frequency=1e+16"},
		{mode6.Var{Name: "frequency", Value: "12345.0e3"}, "frequency=12345000.0"},
		{mode6.Var{Name: "foo", Value: "bar"}, `foo="bar"`},
		{mode6.Var{Name: "foo", Bare: true}, `foo=""`},
		{mode6.Var{Name: "refid", Value: "GPS"}, "refid=GPS"},
		{mode6.Var{Name: "clock", Value: "0xeeba13f0.fffffed8"}, "clock=eeba13f0.fffffed8 2026-12-02T03:50:09.000Z"},
		{mode6.Var{Name: "clock", Value: "0x6a000000.00000000"}, "clock=6a000000.00000000 1956-05-10T03:48:16.000Z"},
		{mode6.Var{Name: "clock", Value: "0x5f000000.00000000"}, "clock=5f000000.00000000 2086-08-10T10:33:36.000Z"},
		{mode6.Var{Name: "clock", Value: "junk\x1b[2J"}, "clock=junk^[[2J"},
		{mode6.Var{Name: "org", Value: "0x1"}, "org=0x1"},
		{mode6.Var{Name: "system", Value: "a\x1b]0;x\x07", Quoted: true}, `system="a^[]0;x^G"`},
		{mode6.Var{Name: "filtoffset", Value: " 0.01 -0.20"}, "filtoffset =0.01\t-0.20"},
	} {
		assert.Equal(t, c.want, cookVar(c.v), "%+v", c.v)
	}
}

// TestFoldItems: ntpq's rule, an item with its ", " that would take the
// line past 78 columns starts the next line.
func TestFoldItems(t *testing.T) {
	a, b := strings.Repeat("a", 73), strings.Repeat("b", 72)
	assert.Equal(t, "x=1\n", foldItems([]string{"x=1"}))
	assert.Equal(t, a+", y\n", foldItems([]string{a, "y"}), "75+3 is 78: fits")
	assert.Equal(t, b+", yy,\nz\n", foldItems([]string{b, "yy", "z"}))
	assert.Equal(t, a+",\nlong"+", y\n", foldItems([]string{a, "long", "y"}))
	long := strings.Repeat("c", 100)
	assert.Equal(t, long+",\nd\n", foldItems([]string{long, "d"}))
}
