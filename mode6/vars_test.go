package mode6_test

import (
	"runtime"
	"strings"
	"testing"

	"github.com/ntpctl/ntpctl/mode6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func names(vs mode6.Vars) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Name)
	}
	return out
}

func TestParseVarsNTPsec(t *testing.T) {
	rep := reassemble(t, "ntpsec-rv-v4")
	vs, st := mode6.ParseVars(rep.Data)
	assert.True(t, st.Clean())
	assert.Equal(t, []string{"leap", "stratum", "precision", "rootdelay", "rootdisp", "refid", "reftime", "tc",
		"peer", "offset", "frequency", "sys_jitter", "clk_jitter", "clock", "processor", "system", "version",
		"clk_wander", "mintc"}, names(vs), "ntpsec 1.2.2's order")
	v, ok := vs.Get("version")
	require.True(t, ok)
	assert.Equal(t, mode6.Var{Name: "version", Value: "ntpd ntpsec-1.2.2", Quoted: true}, v)
	val, _ := vs.Lookup("refid")
	assert.Equal(t, "INIT", val)
	val, _ = vs.Lookup("precision")
	assert.Equal(t, "-24", val)
	val, _ = vs.Lookup("reftime")
	assert.Equal(t, "0x00000000.00000000", val)
}

func TestParseVarsClassic(t *testing.T) {
	vs, st := mode6.ParseVars(reassemble(t, "classic-rv-v4").Data)
	assert.True(t, st.Clean())
	assert.Equal(t, []string{"version", "processor", "system", "leap", "stratum", "precision", "rootdelay",
		"rootdisp", "refid", "reftime", "clock", "peer", "tc", "mintc", "offset", "frequency", "sys_jitter",
		"clk_jitter", "clk_wander"}, names(vs), "ntpd 4.2.8's order")
	val, _ := vs.Lookup("version")
	assert.Equal(t, "ntpd 4.2.8p18@1.4062-o Thu Nov 26 14:04:21 UTC 2026 (1)", val)
}

func TestParseVarsCases(t *testing.T) {
	tests := []struct {
		name string
		text string
		want mode6.Vars
		st   mode6.ParseStats
	}{
		{"folded lines", "a=1, b=2,\r\nc=3\r\n", mode6.Vars{{Name: "a", Value: "1"}, {Name: "b", Value: "2"}, {Name: "c", Value: "3"}}, mode6.ParseStats{}},
		{"no spaces", "foo=4223,blah=248,x=23,quux=1", mode6.Vars{{Name: "foo", Value: "4223"}, {Name: "blah", Value: "248"}, {Name: "x", Value: "23"}, {Name: "quux", Value: "1"}}, mode6.ParseStats{}},
		{"quoted with comma, equals and spaces", `system="a, b=c ", d=1`, mode6.Vars{{Name: "system", Value: "a, b=c ", Quoted: true}, {Name: "d", Value: "1"}}, mode6.ParseStats{}},
		{"empty value", "a=, b=2", mode6.Vars{{Name: "a", Value: ""}, {Name: "b", Value: "2"}}, mode6.ParseStats{}},
		{"empty quoted value", `a="", b`, mode6.Vars{{Name: "a", Value: "", Quoted: true}, {Name: "b", Bare: true}}, mode6.ParseStats{}},
		{"value-less items", "stratum,version,\r\nleap", mode6.Vars{{Name: "stratum", Bare: true}, {Name: "version", Bare: true}, {Name: "leap", Bare: true}}, mode6.ParseStats{}},
		{"array with leading blank kept", "filtdelay= 0.33 0.16 0.20, x=1", mode6.Vars{{Name: "filtdelay", Value: " 0.33 0.16 0.20"}, {Name: "x", Value: "1"}}, mode6.ParseStats{}},
		{"blanks before a quote", `a=  "q", b`, mode6.Vars{{Name: "a", Value: "q", Quoted: true}, {Name: "b", Bare: true}}, mode6.ParseStats{}},
		{"a name with a blank", `flag version="x"`, mode6.Vars{{Name: "flag version", Value: "x", Quoted: true}}, mode6.ParseStats{}},
		{"trailing blanks", "a=1  , b =2", mode6.Vars{{Name: "a", Value: "1"}, {Name: "b", Value: "2"}}, mode6.ParseStats{}},
		{"duplicates kept in order", "a=1, b=2, a=3", mode6.Vars{{Name: "a", Value: "1"}, {Name: "b", Value: "2"}, {Name: "a", Value: "3"}}, mode6.ParseStats{}},
		{"NULs after the text", "a=1\r\n\x00\x00\x00", mode6.Vars{{Name: "a", Value: "1"}}, mode6.ParseStats{Dropped: 3}},
		{"binary junk inside a value (ntpsec 1.2.2)", "filtdelay= 0.00 0.\x94\xba\xb2\xee 0.00, x=1", mode6.Vars{{Name: "filtdelay", Value: " 0.00 0. 0.00"}, {Name: "x", Value: "1"}}, mode6.ParseStats{Dropped: 4}},
		{"non-ASCII inside quotes is kept", "system=\"Linux caf\xc3\xa9\", x=\x01\"a\x02b\"", mode6.Vars{{Name: "system", Value: "Linux caf\u00e9", Quoted: true}, {Name: "x", Value: "ab", Quoted: true}}, mode6.ParseStats{Dropped: 2}},
		{"missing separator (facebook/time fixture)", "filtdelay= 0.29 0.18 0.24filtoffset= 0.17 0.02,\r\nfiltdisp= 0.00",
			mode6.Vars{{Name: "filtdelay", Value: " 0.29 0.18 0.24"}, {Name: "filtoffset", Value: " 0.17 0.02"}, {Name: "filtdisp", Value: " 0.00"}}, mode6.ParseStats{Repaired: 1}},
		{"missing separator after an all-letter value", "refid=INITstratum=16", mode6.Vars{{Name: "refid", Value: "INIT"}, {Name: "stratum", Value: "16"}}, mode6.ParseStats{Repaired: 1}},
		{"missing separator after a quote", `version="ntpd 4"stratum=2, x="a""b"`, mode6.Vars{{Name: "version", Value: "ntpd 4", Quoted: true},
			{Name: "stratum", Value: "2"}, {Name: "x", Value: "a", Quoted: true}, {Name: `"b"`, Bare: true}}, mode6.ParseStats{Repaired: 2}},
		{"unterminated quote", `a=1, version="ntpd 4.2`, mode6.Vars{{Name: "a", Value: "1"}, {Name: "version", Value: "ntpd 4.2", Quoted: true}}, mode6.ParseStats{Unterminated: 1}},
		{"text after a closing quote", `a="x"yz, b=1`, mode6.Vars{{Name: "a", Value: "x", Quoted: true}, {Name: "yz", Bare: true}, {Name: "b", Value: "1"}}, mode6.ParseStats{Repaired: 1}},
		{"item without a name", "=5, a=1", mode6.Vars{{Name: "a", Value: "1"}}, mode6.ParseStats{Skipped: 1}},
		{"equals inside an unquoted value without a name", "a=1=2", mode6.Vars{{Name: "a", Value: "1=2"}}, mode6.ParseStats{}},
		{"only separators", ",\r\n, ,", nil, mode6.ParseStats{}},
		{"empty", "", nil, mode6.ParseStats{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			vs, st := mode6.ParseVars([]byte(tc.text))
			assert.Equal(t, tc.want, vs)
			assert.Equal(t, tc.st, st)
		})
	}
}

func TestParseVarsJunkCapture(t *testing.T) {
	rep := reassemble(t, "ntpsec-rv-peer")
	vs, st := mode6.ParseVars(rep.Data)
	assert.Positive(t, st.Dropped)
	assert.Zero(t, st.Repaired)
	srchost, _ := vs.Lookup("srchost")
	assert.Equal(t, "LOCAL(0)", srchost)
	assert.Contains(t, names(vs), "filtdisp")
	assert.Equal(t, "ntscookies", vs[len(vs)-1].Name)

	// R6-5, two fragments with junk, from docs/wire-spec.md §3.4.
	v := vectors(t)
	var r mode6.Reassembler
	require.NoError(t, r.Add(v["R6-5.1"]))
	require.NoError(t, r.Add(v["R6-5.2"]))
	vs, st = mode6.ParseVars(r.Data())
	assert.Positive(t, st.Dropped)
	val, _ := vs.Lookup("srchost")
	assert.Equal(t, "LOCAL(0)", val)
	val, _ = vs.Lookup("filtoffset")
	// The junk 54 be 87 8d 9e 55 leaves its printable "TU"; the value cut
	// across the two fragments is whole.
	assert.Equal(t, "TU"+strings.Repeat(" 0.00", 16), val)
}

// TestAppendVarsFoldsLikeNtpd: re-encoding the parsed system variables of
// real replies gives the text the servers sent, folds and all.
func TestAppendVarsFoldsLikeNtpd(t *testing.T) {
	for _, name := range []string{"ntpsec-rv-v4", "ntpsec-rv-v6", "ntpsec-rv-multifrag", "classic-rv-v4"} {
		data := reassemble(t, name).Data
		vs, _ := mode6.ParseVars(data)
		assert.Equal(t, string(data), string(mode6.AppendVars(nil, vs))+"\r\n", name)
	}
	v := vectors(t)
	for _, name := range []string{"R6-1", "R6-2"} {
		var p mode6.Packet
		require.NoError(t, p.DecodeFromBytes(v[name]))
		vs, _ := mode6.ParseVars(p.Data)
		assert.Equal(t, string(p.Data), string(mode6.AppendVars(nil, vs))+"\r\n", name)
	}
}

func TestAppendVarsLines(t *testing.T) {
	var vs mode6.Vars
	for range 20 {
		vs = append(vs, mode6.Var{Name: "abcdefgh", Value: "0.000000"})
	}
	text := string(mode6.AppendVars(nil, vs))
	for _, line := range strings.Split(text, "\r\n") {
		assert.Less(t, len(line), mode6.MaxLineLen, "%q", line)
	}
	long := mode6.Vars{{Name: "a", Value: "1"}, {Name: "x", Value: strings.Repeat("y", 100)}, {Name: "b", Value: "2"}}
	assert.Equal(t, "a=1,\r\nx="+strings.Repeat("y", 100)+",\r\nb=2", string(mode6.AppendVars(nil, long)), "an item longer than a line stands alone")
	back, _ := mode6.ParseVars(mode6.AppendVars(nil, long))
	assert.Equal(t, long, back)

	// A long run of commas does not make ParseVars allocate for each.
	many := []byte("a" + strings.Repeat(",", 15000))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	vs, _ = mode6.ParseVars(many)
	runtime.ReadMemStats(&after)
	assert.Len(t, vs, 1)
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(40000), "bytes allocated for one variable in 15,000 commas")
}
